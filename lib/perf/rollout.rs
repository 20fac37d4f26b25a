//! `r1lab bench rollout`: r1lab's batched sampler ([`crate::model::sampling::generate`]) on `batch` text prompts
//! of `prompt_len` random tokens, generating exactly `new_tokens` each (no EOS: every sequence runs the full
//! length, so every run does the same work), temperature 1, no top-k/top-p. The same workload as
//! `scripts/bench/hf_baseline.py --workload rollout` (transformers `generate` with `min_new_tokens = max_new_tokens`).
//!
//! Reported: the whole generation's time (median over `iters` after `warmup`), a prefill alone (its median), and
//! from them decode throughput, MFU and the fraction of the bandwidth roofline the decode steps reach
//! ([`super::cost::GenerationCost`]).
use anyhow::{Result, ensure};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::cost::{GenerationCost, TextShape};
use super::device::{MemoryProbe, Peaks, timed};
use super::{Measured, median};
use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::model::sampling::{SamplingParams, generate};

/// The rollout workload.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct RolloutShape {
    pub batch: usize,
    pub prompt_len: usize,
    pub new_tokens: usize,
}

impl RolloutShape {
    /// Checked before anything is built.
    pub fn validate(&self) -> Result<()> {
        ensure!(self.batch > 0 && self.prompt_len > 0 && self.new_tokens > 0, "rollout shape must be positive");
        Ok(())
    }
}

/// `rows` prompts of `len` ids drawn uniformly below every special token (no image placeholders), seeded.
pub fn random_prompts(model: &Qwen2_5_VL, rows: usize, len: usize, seed: u64) -> Vec<Vec<i64>> {
    let c = &model.config;
    let limit = [c.text_config.vocab_size as i64, c.image_token_id, c.video_token_id, c.vision_start_token_id]
        .into_iter()
        .min()
        .unwrap_or(1)
        .max(1);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..rows).map(|_| (0..len).map(|_| rng.random_range(0..limit)).collect()).collect()
}

/// Runs the workload and measures it.
pub fn run(
    model: &Qwen2_5_VL,
    shape: RolloutShape,
    warmup: usize,
    iters: usize,
    seed: u64,
    probe: &MemoryProbe,
) -> Result<Measured> {
    shape.validate()?;
    let device = model.device();
    let rows = random_prompts(model, shape.batch, shape.prompt_len, seed);
    let flat: Vec<i64> = rows.concat();
    let ids = Tensor::from_slice(&flat).view([shape.batch as i64, shape.prompt_len as i64]).to_device(device);
    let mask = ids.ones_like();
    let params = SamplingParams { temperature: 1.0, max_new_tokens: shape.new_tokens, ..Default::default() };
    let seeds: Vec<u64> = (0..shape.batch as u64).map(|i| seed.wrapping_mul(1_000_003).wrapping_add(i)).collect();
    let gen_once = || -> Result<()> {
        let out = generate(model, &ids, Some(&mask), None, &params, &seeds)?;
        ensure!(
            out.iter().all(|g| g.tokens.len() == shape.new_tokens),
            "the sampler stopped early; the benchmark needs exactly {} tokens per sequence",
            shape.new_tokens
        );
        Ok(())
    };
    let prefill_once = || -> Result<()> {
        let _g = tch::no_grad_guard();
        let mut cache = model.text.new_cache();
        let p = model.prefill(&ids, Some(&mask), None, &mut cache)?;
        let _ = p.last_logits.to_kind(Kind::Float).sum(Kind::Float).double_value(&[]);
        Ok(())
    };
    for _ in 0..warmup {
        gen_once()?;
        prefill_once()?;
    }
    probe.reset();
    let mut times = Vec::with_capacity(iters);
    let mut prefill = Vec::with_capacity(iters);
    for _ in 0..iters.max(1) {
        times.push(timed(device, gen_once)?.1);
        prefill.push(timed(device, prefill_once)?.1);
    }
    Ok(Measured { iter_times_s: times, prefill_s: Some(median(&prefill)), phases: vec![], peak_memory: probe.peak()? })
}

/// Throughput and efficiency of a measured rollout (r1lab's or the baseline's: the same formulas for both).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RolloutFigures {
    pub step_time_s: f64,
    pub tokens_per_s: f64,
    pub prefill_s: Option<f64>,
    /// Generated tokens per second over the decode steps alone (`batch · (new − 1)` tokens).
    pub decode_tokens_per_s: Option<f64>,
    /// Model FLOPs of the decode steps over their time, as a fraction of the peak FLOP/s.
    pub decode_mfu: Option<f64>,
    /// Bytes the decode steps must read over their time, as a fraction of the peak bandwidth.
    pub decode_roofline: Option<f64>,
    /// Model FLOPs of the whole generation over its time, as a fraction of the peak FLOP/s.
    pub mfu: f64,
}

impl RolloutFigures {
    pub fn of(m: &Measured, shape: RolloutShape, text: &TextShape, elem: f64, peaks: &Peaks) -> Self {
        let step = median(&m.iter_times_s);
        let (b, p, n) = (shape.batch as f64, shape.prompt_len as f64, shape.new_tokens as f64);
        let cost = GenerationCost::of(text, b, p, n, elem);
        let decode_s = m.prefill_s.map(|pre| step - pre).filter(|d| *d > 0.0 && cost.decode_steps > 0.0);
        Self {
            step_time_s: step,
            tokens_per_s: b * n / step,
            prefill_s: m.prefill_s,
            decode_tokens_per_s: decode_s.map(|d| b * cost.decode_steps / d),
            decode_mfu: decode_s.map(|d| cost.decode_flops / d / peaks.flops()),
            decode_roofline: decode_s.map(|d| cost.decode_bytes / peaks.bandwidth() / d),
            mfu: (cost.prefill_flops + cost.decode_flops) / step / peaks.flops(),
        }
    }
}
