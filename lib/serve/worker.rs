//! The batching model worker of `r1lab serve`: one thread owns the Qwen2.5-VL and its processor; HTTP handlers
//! queue validated [`Job`]s; the worker takes every job waiting (up to [`WorkerConfig::max_batch`] sequences),
//! groups them by temperature / top-p / top-k (one `sampling::generate` call shares one `SamplingParams`),
//! expands each job into its `n` sequences (seeds `seed + i`), renders and left-pads all prompts of a group into
//! one batch and generates them together, as vLLM's continuous batching does per step, here per batch. Jobs with
//! different `max_tokens` share a batch: it runs to the largest, and each sequence is cut at its own job's limit
//! (a sequence's tokens depend only on its own logits and seed, so the cut output is what a run with the smaller
//! limit gives).
//!
//! **Stop strings** are applied on the decoded text after generation: the text is cut before the earliest
//! occurrence of any stop string (the string itself is not returned, as OpenAI) and the finish reason becomes
//! `stop`; `completion_tokens` counts the tokens up to the shortest prefix whose decoding contains the stop
//! string. Deviation: generation does not halt early on a stop string (the sequence still runs to EOS or
//! `max_tokens`; only the returned text and counts are cut).
//!
//! Before a job joins a batch it is prepared alone ([`prepare`]): its images preprocessed, its chat rendered and
//! tokenized, and `prompt tokens + max_tokens` checked against the model's `max_position_embeddings`; a job that
//! fails there gets its own 400 and the others are unaffected.
//!
//! A job whose requester has gone (a cancelled connection) costs its generation but its reply is dropped without
//! error. A failing batch answers each of its jobs with a 500 naming the error; the worker keeps serving.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};

use anyhow::{Context, Result};
use tch::{Device, Kind, Tensor};

use super::api::{ApiError, AssistantMessage, Choice, Usage};
use super::request::Job;
use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::model::qwen2_5_vl::model::run::{eos_token_ids, load};
use crate::model::sampling::generate;
use crate::processor::chat::{ChatProcessor, PREPROCESSOR_CONFIG_FILE, RenderOptions};
use crate::processor::image::ImageProcessorConfig;

/// What the worker loads and how large a batch may be.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub model_dir: PathBuf,
    pub device: Device,
    pub kind: Kind,
    /// Most sequences (`n` counted) in one `generate` call.
    pub max_batch: usize,
}

/// The worker's result for one job.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub choices: Vec<Choice>,
    pub usage: Usage,
}

/// A queued job and where its answer goes.
pub struct Task {
    pub job: Job,
    pub reply: mpsc::Sender<Result<Completion, ApiError>>,
}

/// Counters shared with the HTTP side (read by tests and `/health`).
#[derive(Debug, Default)]
pub struct WorkerStats {
    pub batches: AtomicUsize,
    pub sequences: AtomicUsize,
    /// Largest batch run, in sequences.
    pub max_batch_seen: AtomicUsize,
    /// Replies nobody was waiting for any more.
    pub dropped_replies: AtomicUsize,
    /// Seeds for requests without one.
    pub next_seed: AtomicU64,
}

struct Loaded {
    model: Qwen2_5_VL,
    processor: ChatProcessor,
    images: ImageProcessorConfig,
    eos: Vec<i64>,
    /// `max_position_embeddings`.
    context: usize,
}

/// Loads the model on the calling thread, reports the load result on `ready`, then serves `rx` until every
/// sender is gone.
pub fn run(
    cfg: WorkerConfig,
    rx: mpsc::Receiver<Task>,
    stats: Arc<WorkerStats>,
    ready: mpsc::Sender<Result<(), String>>,
) {
    let loaded = (|| -> Result<Loaded> {
        let (model, processor) = load(&cfg.model_dir, cfg.device, cfg.kind)?;
        let pre = cfg.model_dir.join(PREPROCESSOR_CONFIG_FILE);
        let images =
            if pre.exists() { ImageProcessorConfig::from_file(&pre)? } else { ImageProcessorConfig::default() };
        let eos = eos_token_ids(&model, &processor);
        let context = model.config.text_config.max_position_embeddings;
        Ok(Loaded { model, processor, images, eos, context })
    })();
    let loaded = match loaded {
        Ok(l) => {
            let _ = ready.send(Ok(()));
            l
        }
        Err(e) => {
            let _ = ready.send(Err(format!("{e:#}")));
            return;
        }
    };
    while let Ok(first) = rx.recv() {
        let mut tasks = vec![first];
        let mut seqs = tasks[0].job.n;
        while seqs < cfg.max_batch {
            match rx.try_recv() {
                Ok(t) => {
                    seqs += t.job.n;
                    tasks.push(t);
                }
                Err(_) => break,
            }
        }
        // Group by sampling parameters (f64s compared by bits); `max_tokens` may differ within a group.
        let mut groups: BTreeMap<(u64, u64, i64), Vec<(Task, Prepared)>> = BTreeMap::new();
        for mut t in tasks {
            if t.job.seed.is_none() {
                t.job.seed = Some(stats.next_seed.fetch_add(t.job.n as u64, Ordering::Relaxed));
            }
            let prepared = match prepare(&loaded, &t.job) {
                Ok(p) => p,
                Err(e) => {
                    let _ = t.reply.send(Err(e));
                    continue;
                }
            };
            let p = &t.job.params;
            groups.entry((p.temperature.to_bits(), p.top_p.to_bits(), p.top_k)).or_default().push((t, prepared));
        }
        for (_, group) in groups {
            for chunk in chunk_by_sequences(group, cfg.max_batch) {
                let n_seq: usize = chunk.iter().map(|(t, _)| t.job.n).sum();
                stats.batches.fetch_add(1, Ordering::Relaxed);
                stats.sequences.fetch_add(n_seq, Ordering::Relaxed);
                stats.max_batch_seen.fetch_max(n_seq, Ordering::Relaxed);
                let jobs: Vec<(&Job, &Prepared)> = chunk.iter().map(|(t, p)| (&t.job, p)).collect();
                match run_batch(&loaded, &jobs) {
                    Ok(done) => {
                        for ((t, _), c) in chunk.iter().zip(done) {
                            if t.reply.send(Ok(c)).is_err() {
                                stats.dropped_replies.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    Err(e) => {
                        let err = ApiError::new(500, format!("generation failed: {e:#}"));
                        for (t, _) in &chunk {
                            let _ = t.reply.send(Err(err.clone()));
                        }
                    }
                }
            }
        }
    }
}

/// Splits a group into chunks of at most `max` sequences (a job larger than `max` runs alone).
fn chunk_by_sequences(tasks: Vec<(Task, Prepared)>, max: usize) -> Vec<Vec<(Task, Prepared)>> {
    let mut out: Vec<Vec<(Task, Prepared)>> = vec![];
    let mut size = 0;
    for t in tasks {
        if out.is_empty() || size + t.0.job.n > max {
            out.push(vec![]);
            size = 0;
        }
        size += t.0.job.n;
        out.last_mut().expect("pushed").push(t);
    }
    out
}

/// A job's images preprocessed and its prompt length, checked before it joins a batch.
pub struct Prepared {
    pixel_values: Option<Tensor>,
    grids: Vec<[i64; 3]>,
    prompt_len: usize,
}

/// The 400 of a request that does not fit the model's context.
pub fn check_context(prompt_len: usize, max_tokens: usize, context: usize) -> Result<(), ApiError> {
    if prompt_len + max_tokens > context {
        return Err(ApiError::param(
            "max_tokens",
            format!(
                "the prompt has {prompt_len} tokens; with max_tokens {max_tokens} that exceeds the model's context \
                 of {context} tokens: shorten the prompt or lower max_tokens"
            ),
        ));
    }
    Ok(())
}

/// Preprocesses one job's images and renders it alone: a job that cannot be encoded gets its own 400 instead
/// of failing the batch it would join.
fn prepare(m: &Loaded, j: &Job) -> Result<Prepared, ApiError> {
    let (pixel_values, grids) = if j.images.is_empty() {
        (None, vec![])
    } else {
        let inputs = m
            .images
            .preprocess(&j.images)
            .map_err(|e| ApiError::bad_request(format!("the images cannot be preprocessed: {e:#}")))?;
        (Some(inputs.pixel_values), inputs.grids)
    };
    let opts = RenderOptions { add_generation_prompt: true, ..Default::default() };
    let one = m
        .processor
        .encode(std::slice::from_ref(&j.conversation), &grids, opts)
        .map_err(|e| ApiError::bad_request(format!("the chat template rejected the messages: {e:#}")))?;
    let prompt_len = one.input_ids[0].len();
    check_context(prompt_len, j.params.max_new_tokens, m.context)?;
    Ok(Prepared { pixel_values, grids, prompt_len })
}

/// Generates every sequence of `jobs` (same sampling parameters) in one batch.
fn run_batch(m: &Loaded, jobs: &[(&Job, &Prepared)]) -> Result<Vec<Completion>> {
    let mut convs = Vec::new();
    let mut pixels = Vec::new();
    let mut grids = Vec::new();
    let mut seeds = Vec::new();
    for (j, p) in jobs {
        for i in 0..j.n {
            convs.push(j.conversation.clone());
            pixels.extend(p.pixel_values.iter().map(Tensor::shallow_clone));
            grids.extend(p.grids.iter().copied());
            seeds.push(j.seed.unwrap_or(0).wrapping_add(i as u64));
        }
    }
    let pixel_values = if pixels.is_empty() { None } else { Some(Tensor::cat(&pixels, 0)) };
    let opts = RenderOptions { add_generation_prompt: true, ..Default::default() };
    let batch = m.processor.encode(&convs, &grids, opts)?;
    let (input_ids, mask) = batch.to_tensors();
    let device = m.model.device();
    let pv = pixel_values.map(|p| p.to_device(device));
    let images = pv.as_ref().map(|p| crate::model::qwen2_5_vl::Images { pixel_values: p, grid_thw: &grids });
    let longest = jobs.iter().map(|(j, _)| j.params.max_new_tokens).max().unwrap_or(1);
    let params = crate::model::sampling::SamplingParams {
        eos_token_ids: m.eos.clone(),
        max_new_tokens: longest,
        ..jobs[0].0.params.clone()
    };
    let gens =
        generate(&m.model, &input_ids.to_device(device), Some(&mask.to_device(device)), images, &params, &seeds)?;
    let mut gens = gens.into_iter();
    let mut out = Vec::with_capacity(jobs.len());
    for (j, p) in jobs {
        let mut choices = Vec::with_capacity(j.n);
        let mut completion = 0;
        for index in 0..j.n {
            let mut g = gens.next().context("generate returned fewer sequences than requested")?;
            if g.tokens.len() > j.params.max_new_tokens {
                // Ran longer for another job of the batch: cut at this job's limit (no EOS came before it).
                g.tokens.truncate(j.params.max_new_tokens);
                g.truncated = true;
            }
            let (text, tokens, stopped) = finish(&m.processor, &g.tokens, &j.stop)?;
            completion += tokens;
            let reason = if stopped || !g.truncated { "stop" } else { "length" };
            choices.push(Choice {
                index,
                message: AssistantMessage { role: "assistant".into(), content: text },
                finish_reason: reason.into(),
            });
        }
        let prompt = p.prompt_len;
        out.push(Completion {
            choices,
            usage: Usage { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion },
        });
    }
    Ok(out)
}

/// The returned text, the completion tokens counted, and whether a stop string cut it (see the module header).
fn finish(processor: &ChatProcessor, tokens: &[i64], stop: &[String]) -> Result<(String, usize, bool)> {
    let ids: Vec<u32> = tokens.iter().map(|&t| t as u32).collect();
    let text = processor.tokenizer.decode(&ids, true)?;
    let Some(cut) = stop.iter().filter_map(|s| text.find(s.as_str())).min() else {
        return Ok((text, tokens.len(), false));
    };
    let mut used = tokens.len();
    for k in 1..=ids.len() {
        let prefix = processor.tokenizer.decode(&ids[..k], true)?;
        if stop.iter().any(|s| prefix.contains(s.as_str())) {
            used = k;
            break;
        }
    }
    Ok((text[..cut].to_string(), used, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_overflow_is_a_400_naming_the_numbers() {
        assert!(check_context(100, 28, 128).is_ok());
        let e = check_context(100, 29, 128).unwrap_err();
        assert_eq!((e.status, e.param.as_deref()), (400, Some("max_tokens")));
        assert!(e.message.contains("100 tokens") && e.message.contains("context of 128"), "{}", e.message);
    }
}
