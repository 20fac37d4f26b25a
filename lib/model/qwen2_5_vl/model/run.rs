//! One-prompt jobs on a checkpoint folder, behind `r1lab forward` and `r1lab generate`: the prompt is rendered
//! with the folder's chat template as one user turn (the images first, then the text, as Qwen2.5-VL's examples
//! order them; `add_generation_prompt`), the images preprocessed with its `preprocessor_config.json` (transformers'
//! defaults when absent) and tokenized with its `tokenizer.json`, as `Qwen2_5_VLProcessor` does.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use tch::{Device, Kind, Tensor};

use super::{Images, Qwen2_5_VL};
use crate::model::sampling::{Generation, SamplingParams, generate};
use crate::processor::chat::{ChatProcessor, ContentPart, Message, PREPROCESSOR_CONFIG_FILE, RenderOptions};
use crate::processor::image::ImageProcessorConfig;

/// The model inputs of one rendered prompt.
#[derive(Debug)]
pub struct PromptInputs {
    /// The rendered chat prompt (before `<|image_pad|>` expansion).
    pub text: String,
    /// `(1, L)` i64.
    pub input_ids: Tensor,
    /// `(1, L)` i64, all ones.
    pub attention_mask: Tensor,
    /// `(patches, C*T*P*P)` f32, when there are images.
    pub pixel_values: Option<Tensor>,
    /// One `[t, h, w]` per image.
    pub grids: Vec<[i64; 3]>,
}

impl PromptInputs {
    pub fn images(&self) -> Option<Images<'_>> {
        self.pixel_values.as_ref().map(|p| Images { pixel_values: p, grid_thw: &self.grids })
    }

    /// `image_grid_thw` `(images, 3)` i64.
    pub fn image_grid_thw(&self) -> Tensor {
        Tensor::from_slice(&self.grids.concat()).view([self.grids.len() as i64, 3])
    }
}

/// Renders, preprocesses and tokenizes `prompt` with `images` using the processor files in `dir`.
pub fn encode_prompt(processor: &ChatProcessor, dir: &Path, prompt: &str, images: &[PathBuf]) -> Result<PromptInputs> {
    let mut parts: Vec<ContentPart> =
        images.iter().map(|p| ContentPart::image(Some(&p.display().to_string()))).collect();
    parts.push(ContentPart::text(prompt));
    let conv = vec![Message::with_parts("user", parts)];
    let (pixel_values, grids) = if images.is_empty() {
        (None, vec![])
    } else {
        let pre = dir.join(PREPROCESSOR_CONFIG_FILE);
        let cfg = if pre.exists() { ImageProcessorConfig::from_file(&pre)? } else { ImageProcessorConfig::default() };
        let inputs = cfg.preprocess_files(images)?;
        (Some(inputs.pixel_values), inputs.grids)
    };
    let opts = RenderOptions { add_generation_prompt: true, ..Default::default() };
    let batch = processor.encode(std::slice::from_ref(&conv), &grids, opts)?;
    let (input_ids, attention_mask) = batch.to_tensors();
    let text = batch.texts.into_iter().next().unwrap_or_default();
    Ok(PromptInputs { text, input_ids, attention_mask, pixel_values, grids })
}

/// `f32` / `bf16` (also `float32`, `bfloat16`) to a kind.
pub fn parse_dtype(name: &str) -> Result<Kind> {
    match name {
        "f32" | "float32" | "float" => Ok(Kind::Float),
        "bf16" | "bfloat16" => Ok(Kind::BFloat16),
        other => anyhow::bail!("unknown dtype `{other}`: use f32 or bf16"),
    }
}

/// Loads the model and the processor of `dir`.
pub fn load(dir: &Path, device: Device, kind: Kind) -> Result<(Qwen2_5_VL, ChatProcessor)> {
    let processor = ChatProcessor::from_dir(dir)
        .with_context(|| format!("loading the tokenizer and chat template of {}", dir.display()))?;
    let model = Qwen2_5_VL::from_dir(dir, device, kind)?;
    let vocab = model.config.text_config.vocab_size;
    ensure!(
        processor.tokenizer.vocab_size() <= vocab,
        "{}: the tokenizer has {} tokens but the model's vocab_size is {vocab}; the tokenizer files do not belong \
         to this checkpoint",
        dir.display(),
        processor.tokenizer.vocab_size()
    );
    let image_pad = i64::from(processor.tokenizer.special().image_pad);
    ensure!(
        image_pad == model.config.image_token_id,
        "{}: the tokenizer's <|image_pad|> is id {image_pad} but config.json's image_token_id is {}; the tokenizer \
         files do not belong to this checkpoint",
        dir.display(),
        model.config.image_token_id
    );
    Ok((model, processor))
}

/// `r1lab forward`: runs the prompt and writes `logits` `(1, L, vocab)` f32, `input_ids`, `attention_mask` and, with
/// images, `pixel_values` and `image_grid_thw` to the safetensors file `out`. Returns the inputs.
pub fn forward_to_file(
    dir: &Path,
    device: Device,
    kind: Kind,
    prompt: &str,
    images: &[PathBuf],
    out: &Path,
) -> Result<PromptInputs> {
    let (model, processor) = load(dir, device, kind)?;
    let inputs = encode_prompt(&processor, dir, prompt, images)?;
    let logits = {
        let _g = tch::no_grad_guard();
        model.forward(&inputs.input_ids, Some(&inputs.attention_mask), inputs.images())?
    };
    let logits = logits.to_kind(Kind::Float).to_device(Device::Cpu);
    let mut named: Vec<(&str, Tensor)> = vec![
        ("logits", logits),
        ("input_ids", inputs.input_ids.shallow_clone()),
        ("attention_mask", inputs.attention_mask.shallow_clone()),
    ];
    if let Some(p) = &inputs.pixel_values {
        named.push(("pixel_values", p.shallow_clone()));
        named.push(("image_grid_thw", inputs.image_grid_thw()));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    Tensor::write_safetensors(&named, out).with_context(|| format!("writing {}", out.display()))?;
    Ok(inputs)
}

/// The EOS ids of a checkpoint: the config's `eos_token_id`s and the tokenizer's `<|im_end|>` (end of a chat turn).
pub fn eos_token_ids(model: &Qwen2_5_VL, processor: &ChatProcessor) -> Vec<i64> {
    let mut ids = model.config.text_config.eos_token_ids();
    let im_end = i64::from(processor.tokenizer.special().im_end);
    if !ids.contains(&im_end) {
        ids.push(im_end);
    }
    ids
}

/// `r1lab generate`: the generation and its decoded text (special tokens skipped).
pub fn generate_text(
    dir: &Path,
    device: Device,
    kind: Kind,
    prompt: &str,
    images: &[PathBuf],
    params: SamplingParams,
    seed: u64,
) -> Result<(Generation, String)> {
    let (model, processor) = load(dir, device, kind)?;
    let inputs = encode_prompt(&processor, dir, prompt, images)?;
    let params = SamplingParams { eos_token_ids: eos_token_ids(&model, &processor), ..params };
    let out = generate(&model, &inputs.input_ids, Some(&inputs.attention_mask), inputs.images(), &params, &[seed])?;
    let g = out.into_iter().next().context("generate returned no sequence")?;
    let ids: Vec<u32> = g.tokens.iter().map(|&t| t as u32).collect();
    let text = processor.tokenizer.decode(&ids, true)?;
    Ok((g, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_prompt_with_an_image() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
        let dir = root.join("qwen2_5_vl_chat");
        let processor = ChatProcessor::from_dir(&dir).unwrap();
        let img = root.join("processor/rgb_56x84.png");
        let p = encode_prompt(&processor, &dir, "What is this?", std::slice::from_ref(&img)).unwrap();
        assert!(p.text.contains("<|vision_start|><|image_pad|><|vision_end|>What is this?"), "{}", p.text);
        assert!(p.text.ends_with("<|im_start|>assistant\n"), "{}", p.text);
        let pad = i64::from(processor.tokenizer.special().image_pad);
        let n = p.input_ids.eq(pad).sum(Kind::Int64).int64_value(&[]);
        let [t, h, w] = p.grids[0];
        assert_eq!(n, t * h * w / 4);
        assert_eq!(p.pixel_values.as_ref().unwrap().size()[0], t * h * w);
        let text_only = encode_prompt(&processor, &dir, "Hi", &[]).unwrap();
        assert!(text_only.pixel_values.is_none() && text_only.grids.is_empty());
    }
}
