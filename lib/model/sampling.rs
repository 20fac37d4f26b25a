//! Batched autoregressive generation with a KV cache, for left-padded prompts: the decoding loop of transformers'
//! `GenerationMixin._sample` with its logits processors, per-sequence seeded randomness, and the per-token
//! log-probabilities an RL rollout needs.
//!
//! - [`filter_logits`]: `TemperatureLogitsWarper` → `TopKLogitsWarper` → `TopPLogitsWarper`, in that order (the
//!   order transformers builds them in `_get_logits_processor`), with their semantics: top-k keeps every token whose
//!   score is ≥ the k-th largest (ties kept), top-p sorts ascending and drops the tokens whose cumulative probability
//!   is ≤ `1 - top_p`, always keeping the most likely one; filtered scores are `-inf`. The scores are f32, as
//!   `generate` casts the last-position logits to f32 first.
//! - [`decode_loop`]: greedy (`argmax`, first index on ties, as `torch.argmax`) when `greedy` or `temperature ==
//!   0`, else sampling from `softmax` of the filtered scores by inverse CDF with one uniform number per step from the
//!   sequence's own `ChaCha8Rng` (seeded from its seed; no torch RNG). A sequence's output depends only on its own
//!   logits and seed, not on the batch it is in (up to the model's own numerics across batch shapes). Sequences
//!   stop on any of `eos_token_ids` (the EOS is kept in the output); finished ones are fed a pad token while the
//!   others continue (their outputs are discarded), as `generate` pads them with `pad_token_id`, until enough
//!   are done to retire them from the batch (see [`decode_loop`]).
//! - [`generate`]: [`decode_loop`] on [`Qwen2_5_VL`] (`prefill`, then one cached `decode` per step);
//!   [`generate_grouped`] prefills each distinct prompt once for all its samples.
//!
//! **Log-probabilities**: `log_softmax(logits / temperature)` of the chosen token, i.e. after temperature and
//! *before* top-k/top-p and token suppression (what EasyR1's actor recomputes as `old_log_probs` and vLLM reports with
//! `logprobs_mode="processed_logprobs"` when no top-k/top-p is set); with greedy decoding, of the raw logits.
//!
//! Deviations: transformers' `generate` defaults `top_k` to 50; here `top_k == 0` disables it (vLLM's and EasyR1's
//! default) and `top_p == 1.0` disables top-p. No repetition penalty, min-p or `min_new_tokens`.
use anyhow::{Result, ensure};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

use super::qwen2_5_vl::{Images, Qwen2_5_VL};

/// How to pick the next token.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// Divides the logits before sampling; 0 means greedy.
    pub temperature: f64,
    /// Nucleus sampling mass in (0, 1]; 1 disables it.
    pub top_p: f64,
    /// Keep the `top_k` most likely tokens; 0 disables it.
    pub top_k: i64,
    pub max_new_tokens: usize,
    /// A sequence stops after emitting any of these.
    pub eos_token_ids: Vec<i64>,
    /// Argmax regardless of temperature.
    pub greedy: bool,
    /// Token ids never sampled (transformers' `suppress_tokens`): their scores are set to `-inf` before the
    /// choice. Rollouts suppress `<|image_pad|>` / `<|video_pad|>`, which would otherwise be read as image
    /// placeholders when the response is fed back to the model.
    pub suppress_tokens: Vec<i64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 1.0,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens: 256,
            eos_token_ids: vec![],
            greedy: false,
            suppress_tokens: vec![],
        }
    }
}

impl SamplingParams {
    /// Greedy decoding of at most `max_new_tokens`, stopping on `eos_token_ids`.
    pub fn greedy(max_new_tokens: usize, eos_token_ids: Vec<i64>) -> Self {
        Self { temperature: 0.0, max_new_tokens, eos_token_ids, greedy: true, ..Default::default() }
    }

    pub fn is_greedy(&self) -> bool {
        self.greedy || self.temperature == 0.0
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.temperature >= 0.0 && self.temperature.is_finite(),
            "sampling temperature must be ≥ 0 (0 = greedy), got {}",
            self.temperature
        );
        ensure!(self.top_p > 0.0 && self.top_p <= 1.0, "top_p must be in (0, 1] (1 = off), got {}", self.top_p);
        ensure!(self.top_k >= 0, "top_k must be ≥ 0 (0 = off), got {}", self.top_k);
        Ok(())
    }
}

/// One sequence's output.
#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated ids, ending with the EOS when one was emitted.
    pub tokens: Vec<i64>,
    /// `log_softmax(logits / temperature)` of each generated token (see the module doc).
    pub logprobs: Vec<f32>,
    /// True when `max_new_tokens` was reached without an EOS.
    pub truncated: bool,
}

/// Temperature, then top-k, then top-p on `scores` `(B, V)`, returned in f32 with filtered entries at `-inf`.
/// Ignores `greedy` (temperature 0 is treated as 1 here).
pub fn filter_logits(scores: &Tensor, params: &SamplingParams) -> Tensor {
    let raw = scores.to_kind(Kind::Float);
    // Never in place: `to_kind` may alias the caller's tensor.
    let mut s = if params.temperature > 0.0 && params.temperature != 1.0 { raw / params.temperature } else { raw };
    let vocab = *s.size().last().unwrap_or(&0);
    if params.top_k > 0 && params.top_k < vocab {
        let (top, _) = s.topk(params.top_k, -1, true, true);
        let kth = top.narrow(-1, params.top_k - 1, 1);
        s = s.masked_fill(&s.lt_tensor(&kth), f64::NEG_INFINITY);
    }
    if params.top_p < 1.0 {
        let (sorted, idx) = s.sort(-1, false);
        let cum = sorted.softmax(-1, Kind::Float).cumsum(-1, Kind::Float);
        let remove = cum.le(1.0 - params.top_p);
        let _ = remove.narrow(-1, vocab - 1, 1).fill_(0);
        let remove = remove.scatter(-1, &idx, &remove);
        s = s.masked_fill(&remove, f64::NEG_INFINITY);
    }
    s
}

/// `scores` `(B, V)` with the columns `ids` set to `-inf` (ids outside the vocabulary are ignored).
fn suppress(scores: Tensor, ids: &[i64]) -> Tensor {
    let vocab = *scores.size().last().unwrap_or(&0);
    let cols: Vec<i64> = ids.iter().copied().filter(|&i| (0..vocab).contains(&i)).collect();
    if cols.is_empty() {
        return scores;
    }
    let index = Tensor::from_slice(&cols).to_device(scores.device());
    scores.index_fill(-1, &index, f64::NEG_INFINITY)
}

/// Inverse-CDF draw per row of `probs` `(B, V)` with uniforms `u` in [0, 1): the first index whose cumulative
/// probability exceeds `u · total` (never a zero-probability token).
fn inverse_cdf(probs: &Tensor, u: &[f64]) -> Tensor {
    let cdf = probs.to_kind(Kind::Double).cumsum(-1, Kind::Double);
    let vocab = *cdf.size().last().unwrap_or(&1);
    let total = cdf.narrow(-1, vocab - 1, 1);
    let u = Tensor::from_slice(u).to_device(cdf.device()).view([-1, 1]);
    cdf.le_tensor(&(u * total)).sum_dim_intlist(-1, false, Kind::Int64).clamp_max(vocab - 1)
}

/// Finished rows leave the decode batch once they are at least this fraction of it (see [`decode_loop`]).
const RETIRE_FRACTION: usize = 4;

/// The decoding loop: `first_logits` `(B, V)` are the prompt's last-position logits; `step(next, keep)` feeds
/// `next` `(b, 1)` (i64, on the logits' device) for the rows still in the batch and returns their following logits
/// `(b, V)`. `seeds[i]` seeds sequence `i` (unused when greedy).
///
/// Finished sequences are retired from the batch: once at least a quarter of the rows are done, `step` gets
/// `keep`, the i64 indices (into the previous step's rows, in order) of the rows that go on, and must drop the
/// others from its state (KV cache, attention mask, rope deltas) before feeding `next`, which then has
/// `keep.len()` rows. Until then finished rows are fed the pad token and their outputs ignored, so compaction
/// (a copy of the cache) happens a few times per generation, not at every finish.
pub fn decode_loop(
    first_logits: Tensor,
    params: &SamplingParams,
    seeds: &[u64],
    mut step: impl FnMut(&Tensor, Option<&Tensor>) -> Result<Tensor>,
) -> Result<Vec<Generation>> {
    params.validate()?;
    let size = first_logits.size();
    ensure!(size.len() == 2, "decode_loop: logits must be (batch, vocab), got {size:?}");
    let b = size[0] as usize;
    ensure!(seeds.len() == b, "decode_loop: {} seeds for a batch of {b}; pass one seed per sequence", seeds.len());
    let greedy = params.is_greedy();
    let mut rngs: Vec<ChaCha8Rng> = seeds.iter().map(|&s| ChaCha8Rng::seed_from_u64(s)).collect();
    let mut out: Vec<Generation> =
        (0..b).map(|_| Generation { tokens: vec![], logprobs: vec![], truncated: true }).collect();
    let mut done = vec![false; b];
    // The sequence behind each row of the current batch.
    let mut live: Vec<usize> = (0..b).collect();
    let pad = params.eos_token_ids.first().copied().unwrap_or(0);
    let device = first_logits.device();
    let mut logits = first_logits;
    for n in 0..params.max_new_tokens {
        let raw = logits.to_kind(Kind::Float);
        let scaled = if greedy || params.temperature == 1.0 { raw } else { raw / params.temperature };
        let logp = scaled.log_softmax(-1, Kind::Float);
        let scaled = suppress(scaled, &params.suppress_tokens);
        let next = if greedy {
            scaled.argmax(-1, false)
        } else {
            let probs =
                filter_logits(&scaled, &SamplingParams { temperature: 1.0, ..params.clone() }).softmax(-1, Kind::Float);
            let u: Vec<f64> = live.iter().map(|&i| if done[i] { 0.0 } else { rngs[i].random::<f64>() }).collect();
            inverse_cdf(&probs, &u)
        };
        // One device-to-host read per step: the chosen ids (exact in f64) and their log-probs together.
        let chosen = logp.gather(-1, &next.unsqueeze(-1), false).view(-1).to_kind(Kind::Double);
        let both =
            Vec::<f64>::try_from(Tensor::cat(&[next.to_kind(Kind::Double), chosen], 0).to_device(tch::Device::Cpu))?;
        let (ids, chosen_logp) = both.split_at(live.len());
        let mut ids: Vec<i64> = ids.iter().map(|&x| x as i64).collect();
        let chosen_logp: Vec<f32> = chosen_logp.iter().map(|&x| x as f32).collect();
        for (r, &i) in live.iter().enumerate() {
            if done[i] {
                ids[r] = pad;
                continue;
            }
            out[i].tokens.push(ids[r]);
            out[i].logprobs.push(chosen_logp[r]);
            if params.eos_token_ids.contains(&ids[r]) {
                done[i] = true;
                out[i].truncated = false;
            }
        }
        if live.iter().all(|&i| done[i]) || n + 1 == params.max_new_tokens {
            break;
        }
        let finished = live.iter().filter(|&&i| done[i]).count();
        let keep = if finished > 0 && finished * RETIRE_FRACTION >= live.len() {
            let rows: Vec<i64> = (0..live.len() as i64).filter(|&r| !done[live[r as usize]]).collect();
            live = rows.iter().map(|&r| live[r as usize]).collect();
            ids = rows.iter().map(|&r| ids[r as usize]).collect();
            Some(Tensor::from_slice(&rows).to_device(device))
        } else {
            None
        };
        logits = step(&Tensor::from_slice(&ids).view([-1, 1]).to_device(device), keep.as_ref())?;
    }
    Ok(out)
}

/// Generates continuations of a left-padded prompt batch (`input_ids`, `attention_mask` `(B, L)`, `images` of the
/// whole batch in order) with a KV cache sized for `L + max_new_tokens` positions; `seeds[i]` seeds sequence `i`.
pub fn generate(
    model: &Qwen2_5_VL,
    input_ids: &Tensor,
    attention_mask: Option<&Tensor>,
    images: Option<Images>,
    params: &SamplingParams,
    seeds: &[u64],
) -> Result<Vec<Generation>> {
    let rows: Vec<i64> = (0..input_ids.size()[0]).collect();
    generate_grouped(model, input_ids, attention_mask, images, &rows, params, seeds)
}

/// [`generate`] for samples that share prompts: `input_ids` holds each distinct prompt once, sequence `i` continues
/// prompt row `rows[i]` with seed `seeds[i]`. The prompts (and their images) go through the model once; each one's
/// cache, last logits, mask and rope deltas are then copied to its samples (a GRPO group of `n` rollouts costs one
/// prefill and one vision-tower pass instead of `n`). Outputs equal [`generate`] on the repeated prompts up to the
/// numerics of the batch shape.
pub fn generate_grouped(
    model: &Qwen2_5_VL,
    input_ids: &Tensor,
    attention_mask: Option<&Tensor>,
    images: Option<Images>,
    rows: &[i64],
    params: &SamplingParams,
    seeds: &[u64],
) -> Result<Vec<Generation>> {
    let _guard = tch::no_grad_guard();
    let device = model.device();
    let prompts = input_ids.size()[0];
    ensure!(
        rows.iter().all(|r| (0..prompts).contains(r)),
        "generate_grouped: sample rows {rows:?} must index the {prompts} prompts"
    );
    let prompt_mask = match attention_mask {
        Some(m) => m.to_device(device).to_kind(Kind::Int64),
        None => Tensor::ones(input_ids.size(), (Kind::Int64, device)),
    };
    let prompt_len = prompt_mask.size()[1];
    let mut cache = model.text.new_cache_for(prompt_len as usize + params.max_new_tokens);
    let prefill = model.prefill(input_ids, Some(&prompt_mask), images, &mut cache)?;
    let index = Tensor::from_slice(rows).to_device(device);
    let shared = rows.len() as i64 != prompts || rows.iter().enumerate().any(|(i, &r)| r != i as i64);
    let (first, prompt_mask, mut rope_deltas) = if shared {
        cache.select_rows(&index);
        let deltas = prefill.rope_deltas.index_select(0, &index.to_device(prefill.rope_deltas.device()));
        (prefill.last_logits.index_select(0, &index), prompt_mask.index_select(0, &index), deltas)
    } else {
        (prefill.last_logits, prompt_mask, prefill.rope_deltas)
    };
    // The attention mask of every position the generation can reach: generated tokens are never padding.
    let new = params.max_new_tokens as i64;
    let ones = Tensor::ones([rows.len() as i64, new], (Kind::Int64, device));
    let mut mask = Tensor::cat(&[&prompt_mask, &ones], 1);
    decode_loop(first, params, seeds, |next, keep| {
        if let Some(keep) = keep {
            mask = mask.index_select(0, keep);
            rope_deltas = rope_deltas.index_select(0, &keep.to_device(rope_deltas.device()));
            cache.select_rows(keep);
        }
        let seen = mask.narrow(1, 0, cache.seq_len() + 1);
        model.decode(next, &seen, &rope_deltas, &mut cache)
    })
}

#[cfg(test)]
mod tests;
