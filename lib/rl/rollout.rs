//! Rollouts: `n` sampled responses per prompt from the policy's batched sampler (papers_spec §0.2 steps 1–2,
//! EasyR1 605e106 `RayPPOTrainer.fit` → `generate_sequences`).
//!
//! - **Prompts** ([`RlPrompt::from_record`]): an EasyR1 record's `problem` is split on `<image>` into text and
//!   image items of one user turn, in order (EasyR1 `RLHFDataset`); without `<image>` the images, if any, come
//!   first. The turn is rendered with the checkpoint's chat template with the generation prompt and no system
//!   message (so Qwen2.5-VL's template inserts its default one, papers_spec §0.1 / pitfall 13), unless the
//!   manifest sets `data.system_prompt`.
//! - **Sampling**: the group of prompt `p` is `n` copies of it (EasyR1 `repeat(n, interleave=True)`: the batch is
//!   prompt-major); sample `j` of the prompt with uid `u` at RL step `s` draws from the seed
//!   `seed::derive(base, Rollout, s, u, j)`, so a sequence's tokens depend only on (weights, prompt, seed) and a
//!   resumed run draws the same. Generation runs in chunks of `chunk` sequences (left-padded prompts); each
//!   distinct prompt of a chunk is prefilled once, images included, and its cache shared by its samples.
//! - **Truncation**: a response that reaches `max_new_tokens` without an EOS is kept and flagged (EasyR1 keeps
//!   it; under PTST the hard formatting reward then gives it 0, papers_spec §1.5).
//! - **Text**: responses are decoded with special tokens skipped (EasyR1 `reward.skip_special_tokens: true`), so
//!   the trailing `<|im_end|>` is not part of the text the reward sees; the response length `L` counts every
//!   generated token including that EOS (the response-mask sum EasyR1 passes to length rewards).
//!
//! Deliberate deviations: the sampler is r1lab's own ([`crate::model::sampling`]) instead of vLLM, seeded per
//! sequence; its log-probs are kept for diagnostics only, the trainer recomputes the old log-probs (pitfall 11).
use std::path::Path;

use anyhow::{Context, Result, ensure};
use tch::{Device, Kind, Tensor};

use crate::data::easyr1::RlRecord;
use crate::model::qwen2_5_vl::Images;
use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::model::sampling::{SamplingParams, generate_grouped};
use crate::processor::chat::{ChatProcessor, ContentPart, Message, RenderOptions};
use crate::processor::image::{ImageProcessorConfig, load_image, load_image_bytes};
use crate::repro::seed::{self, SeedDomain};

/// A prompt ready for rollouts.
#[derive(Debug)]
pub struct RlPrompt {
    /// Stable uid (the record's row in its locked data file): the `prompt` of the rollout seeds.
    pub uid: u64,
    /// The rendered prompt ids, `<|image_pad|>` expanded, no padding.
    pub input_ids: Vec<i64>,
    /// `(patches, C·T·P·P)` of this prompt's images, in order; `None` for a text-only prompt.
    pub pixel_values: Option<Tensor>,
    /// One `[t, h, w]` per image.
    pub grids: Vec<[i64; 3]>,
    pub ground_truth: String,
}

impl RlPrompt {
    /// Encodes an EasyR1 record. Images come from the record's bytes, else from its path (relative paths
    /// resolved against `image_dir`). `system_prompt` (the manifest's `data.system_prompt`) is sent as a system
    /// message before the user turn; None sends none.
    pub fn from_record(
        processor: &ChatProcessor,
        image_cfg: &ImageProcessorConfig,
        record: &RlRecord,
        uid: u64,
        image_dir: &Path,
        system_prompt: Option<&str>,
    ) -> Result<Self> {
        let ctx = || format!("encoding RL prompt {} ({:?})", uid, record.id);
        let images = record
            .images
            .iter()
            .enumerate()
            .map(|(i, img)| match (&img.bytes, &img.path) {
                (Some(bytes), _) => load_image_bytes(bytes, img.path.as_deref().unwrap_or("inline image")),
                (None, Some(path)) => load_image(&image_dir.join(path)),
                (None, None) => anyhow::bail!("image {i} has neither bytes nor a path"),
            })
            .collect::<Result<Vec<_>>>()
            .with_context(ctx)?;
        let pieces: Vec<&str> = record.problem.split("<image>").collect();
        let placeholders = pieces.len() - 1;
        let mut parts = Vec::new();
        if placeholders == 0 {
            parts.extend(images.iter().map(|_| ContentPart::image(None)));
            parts.push(ContentPart::text(&record.problem));
        } else {
            ensure!(
                placeholders == images.len(),
                "{}: the problem has {placeholders} <image> placeholders but the record has {} images; fix the data",
                ctx(),
                images.len()
            );
            for (i, text) in pieces.iter().enumerate() {
                if i > 0 {
                    parts.push(ContentPart::image(None));
                }
                if !text.is_empty() {
                    parts.push(ContentPart::text(text));
                }
            }
        }
        let (pixel_values, grids) = if images.is_empty() {
            (None, vec![])
        } else {
            let inputs = image_cfg.preprocess(&images).with_context(ctx)?;
            (Some(inputs.pixel_values), inputs.grids)
        };
        let conv: Vec<Message> =
            system_prompt.map(Message::system).into_iter().chain([Message::with_parts("user", parts)]).collect();
        let opts = RenderOptions { add_generation_prompt: true, ..Default::default() };
        let batch = processor.encode(std::slice::from_ref(&conv), &grids, opts).with_context(ctx)?;
        let input_ids = batch.input_ids.into_iter().next().context("the processor returned no row")?;
        Ok(Self { uid, input_ids, pixel_values, grids, ground_truth: record.answer.trim().to_string() })
    }

    /// A text-only prompt from already-tokenized ids (tests, synthetic tasks without a chat template).
    pub fn from_ids(uid: u64, input_ids: Vec<i64>, ground_truth: &str) -> Self {
        Self { uid, input_ids, pixel_values: None, grids: vec![], ground_truth: ground_truth.to_string() }
    }
}

/// One sampled response.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Index of the prompt in the slice given to [`rollout`].
    pub prompt: usize,
    /// Index within the prompt's group.
    pub sample: usize,
    /// Generated ids (ending with the EOS unless truncated).
    pub response: Vec<i64>,
    /// The sampler's `log_softmax(logits / T)` of each token (diagnostics; not used for the loss).
    pub sampler_log_probs: Vec<f32>,
    pub truncated: bool,
    /// The response decoded with special tokens skipped.
    pub text: String,
    /// The rollout seed this sequence was sampled with.
    pub seed: u64,
}

/// What fixes the sampling seeds of one batch of generations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolloutSeeds {
    pub base: u64,
    /// `Rollout` for training, `Eval` for evaluation.
    pub domain: SeedDomain,
    /// The global RL step (PTST stages continue the count), or the evaluated checkpoint's step.
    pub step: u64,
}

impl RolloutSeeds {
    /// The seeds of RL step `step`.
    pub fn rollout(base: u64, step: u64) -> Self {
        Self { base, domain: SeedDomain::Rollout, step }
    }

    pub fn of(&self, uid: u64, sample: usize) -> u64 {
        seed::derive(self.base, self.domain, self.step, uid, sample as u64)
    }
}

/// Left-pads prompt rows with `pad`: `(input_ids, attention_mask)` `(B, L)` i64 on `device`.
pub fn left_pad(rows: &[&[i64]], pad: i64, device: Device) -> (Tensor, Tensor) {
    let len = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let (mut ids, mut mask) = (Vec::with_capacity(rows.len() * len), Vec::with_capacity(rows.len() * len));
    for r in rows {
        ids.extend(std::iter::repeat_n(pad, len - r.len()).chain(r.iter().copied()));
        mask.extend(std::iter::repeat_n(0i64, len - r.len()).chain(std::iter::repeat_n(1, r.len())));
    }
    let shape = [rows.len() as i64, len as i64];
    (Tensor::from_slice(&ids).view(shape).to_device(device), Tensor::from_slice(&mask).view(shape).to_device(device))
}

/// The images of `prompts` (in order) as one `pixel_values` tensor and grid list, or `None` if none has images.
pub fn stack_images(prompts: &[&RlPrompt], device: Device, kind: Kind) -> Option<(Tensor, Vec<[i64; 3]>)> {
    let pixels: Vec<&Tensor> = prompts.iter().filter_map(|p| p.pixel_values.as_ref()).collect();
    if pixels.is_empty() {
        return None;
    }
    let grids = prompts.iter().flat_map(|p| p.grids.iter().copied()).collect();
    Some((Tensor::cat(&pixels, 0).to_device(device).to_kind(kind), grids))
}

/// Samples `n` responses for each prompt (prompt-major order), `chunk` sequences per generate call.
/// `decode` turns response ids into text (the tokenizer's decode with special tokens skipped).
#[allow(clippy::too_many_arguments)]
pub fn rollout(
    model: &Qwen2_5_VL,
    prompts: &[RlPrompt],
    n: usize,
    params: &SamplingParams,
    seeds: RolloutSeeds,
    chunk: usize,
    pad_id: i64,
    decode: impl Fn(&[i64]) -> Result<String>,
) -> Result<Vec<Rollout>> {
    ensure!(n > 0 && chunk > 0, "rollout needs a group size and a chunk size >= 1 (got n={n}, chunk={chunk})");
    let jobs: Vec<(usize, usize)> = (0..prompts.len()).flat_map(|p| (0..n).map(move |j| (p, j))).collect();
    let kind = model.text.dtype();
    let mut out = Vec::with_capacity(jobs.len());
    for batch in jobs.chunks(chunk) {
        // Each distinct prompt of the chunk goes through the model once; its samples share the prefill.
        let mut distinct: Vec<usize> = batch.iter().map(|&(p, _)| p).collect();
        distinct.dedup();
        let rows: Vec<i64> =
            batch.iter().map(|&(p, _)| distinct.iter().position(|&d| d == p).unwrap_or(0) as i64).collect();
        let unique: Vec<&RlPrompt> = distinct.iter().map(|&p| &prompts[p]).collect();
        let ids: Vec<&[i64]> = unique.iter().map(|p| p.input_ids.as_slice()).collect();
        let (input_ids, mask) = left_pad(&ids, pad_id, model.device());
        let images = stack_images(&unique, model.device(), kind);
        let images_ref = images.as_ref().map(|(p, g)| Images { pixel_values: p, grid_thw: g });
        let batch_seeds: Vec<u64> = batch.iter().map(|&(p, j)| seeds.of(prompts[p].uid, j)).collect();
        let gens = generate_grouped(model, &input_ids, Some(&mask), images_ref, &rows, params, &batch_seeds)?;
        for ((&(p, j), g), seed) in batch.iter().zip(gens).zip(batch_seeds) {
            let text = decode(&g.tokens)?;
            out.push(Rollout {
                prompt: p,
                sample: j,
                response: g.tokens,
                sampler_log_probs: g.logprobs,
                truncated: g.truncated,
                text,
                seed,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn left_padding_and_seeds() {
        let (ids, mask) = left_pad(&[&[5, 6, 7], &[8]], 0, Device::Cpu);
        assert_eq!(Vec::<i64>::try_from(ids.view(-1)).unwrap(), vec![5, 6, 7, 0, 0, 8]);
        assert_eq!(Vec::<i64>::try_from(mask.view(-1)).unwrap(), vec![1, 1, 1, 0, 0, 1]);
        let s = RolloutSeeds::rollout(7, 3);
        assert_eq!(s.of(11, 2), seed::derive(7, SeedDomain::Rollout, 3, 11, 2));
        assert_ne!(s.of(11, 2), s.of(11, 3));
        assert_ne!(s.of(11, 2), RolloutSeeds::rollout(7, 4).of(11, 2));
        assert_ne!(s.of(11, 2), RolloutSeeds { domain: SeedDomain::Eval, ..s }.of(11, 2));
    }

    #[test]
    fn a_system_prompt_replaces_the_templates_default() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_chat");
        let processor = ChatProcessor::from_dir(&dir).unwrap();
        let record = RlRecord { id: "q".into(), images: vec![], problem: "What is 2+3?".into(), answer: "5".into() };
        let cfg = ImageProcessorConfig::default();
        let text = |system: Option<&str>| {
            let p = RlPrompt::from_record(&processor, &cfg, &record, 0, &dir, system).unwrap();
            processor.tokenizer.decode(&p.input_ids.iter().map(|&t| t as u32).collect::<Vec<_>>(), false).unwrap()
        };
        let plain = text(None);
        assert!(plain.starts_with("<|im_start|>system\nYou are a helpful assistant.<|im_end|>"), "{plain}");
        let r1v = text(Some("A conversation between User and Assistant."));
        assert!(
            r1v.starts_with(
                "<|im_start|>system\nA conversation between User and Assistant.<|im_end|>\n<|im_start|>user"
            ),
            "{r1v}"
        );
        assert!(!r1v.contains("helpful assistant") && r1v.ends_with("What is 2+3?<|im_end|>\n<|im_start|>assistant\n"));
    }
}
