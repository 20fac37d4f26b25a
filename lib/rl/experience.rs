//! The trainer's view of a rollout batch: per-sequence experience (response, advantage, old and reference
//! log-probs), collated into padded tensors for one forward pass, and the response log-probabilities the
//! actor, the old policy and the reference compute on them (papers_spec §0.2 step 3, EasyR1 605e106
//! `DataParallelPPOActor._forward_micro_batch` / `compute_log_prob`).
//!
//! Layout of a collated micro-batch: `[left-padded prompt | response right-padded]`, `(B, P + T)`, attention mask
//! 0 on both paddings; the response logits are those of positions `P − 1 .. P + T − 1` (each predicts the next
//! token), divided by the rollout temperature before `log_softmax` (EasyR1 `logits.div_(temperature)`), in f32.
//! The same function gives the current, old (`no_grad`, before the update) and reference log-probs, so the
//! first mini-batch's ratio is exactly 1 up to the numerics of batch composition.
//!
//! Deliberate deviations: EasyR1 removes padding (`unpad_input`, flash-attention varlen) and packs the batch;
//! here padding is masked instead, which gives the same values up to floating-point summation order. The
//! vision tower runs once per sequence (as in EasyR1, where every sequence carries its own `pixel_values`).
use anyhow::{Result, ensure};
use tch::{Device, Kind, Tensor};

use super::rollout::{RlPrompt, left_pad, stack_images};
use crate::model::qwen2_5_vl::text::Recompute;
use crate::model::qwen2_5_vl::{Images, Qwen2_5_VL};

/// One response sequence as the update sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Experience {
    /// Index of its prompt in the step's prompt slice.
    pub prompt: usize,
    pub response: Vec<i64>,
    /// The sequence's scalar advantage (broadcast to every response token).
    pub advantage: f32,
    /// `log π_old` per response token (recomputed before the update).
    pub old_log_probs: Vec<f32>,
    /// `log π_ref` per response token, when a KL term is configured.
    pub ref_log_probs: Option<Vec<f32>>,
}

/// Padded tensors of some sequences (on the model's device).
#[derive(Debug)]
pub struct Collated {
    /// `(B, P + T)` i64.
    pub input_ids: Tensor,
    /// `(B, P + T)` i64.
    pub attention_mask: Tensor,
    /// `P`, the padded prompt length.
    pub prompt_len: i64,
    /// `(B, T)` i64 response ids (0 on padding).
    pub responses: Tensor,
    /// `(B, T)` f32, 1 on response tokens.
    pub response_mask: Tensor,
    pixel_values: Option<Tensor>,
    grids: Vec<[i64; 3]>,
}

impl Collated {
    pub fn images(&self) -> Option<Images<'_>> {
        self.pixel_values.as_ref().map(|p| Images { pixel_values: p, grid_thw: &self.grids })
    }

    pub fn rows(&self) -> i64 {
        self.responses.size()[0]
    }

    pub fn response_len(&self) -> i64 {
        self.responses.size()[1]
    }
}

/// Collates `(prompt index, response)` pairs. Every response must be non-empty.
pub fn collate(
    prompts: &[RlPrompt],
    rows: &[(usize, &[i64])],
    pad_id: i64,
    device: Device,
    image_kind: Kind,
) -> Result<Collated> {
    ensure!(!rows.is_empty(), "collate: no sequences");
    let t = rows.iter().map(|(_, r)| r.len()).max().unwrap_or(0);
    ensure!(rows.iter().all(|(_, r)| !r.is_empty()), "collate: a response is empty; the sampler emits >= 1 token");
    let row_prompts: Vec<&RlPrompt> = rows.iter().map(|&(p, _)| &prompts[p]).collect();
    let ids: Vec<&[i64]> = row_prompts.iter().map(|p| p.input_ids.as_slice()).collect();
    let (prompt_ids, prompt_mask) = left_pad(&ids, pad_id, device);
    let responses: Vec<&[i64]> = rows.iter().map(|(_, r)| *r).collect();
    let (resp, resp_mask) = right_pad(&responses, t, pad_id);
    let b = rows.len() as i64;
    let responses = Tensor::from_slice(&resp).view([b, t as i64]).to_device(device);
    let resp_mask = Tensor::from_slice(&resp_mask).view([b, t as i64]).to_device(device);
    let images = stack_images(&row_prompts, device, image_kind);
    let (pixel_values, grids) = match images {
        Some((p, g)) => (Some(p), g),
        None => (None, vec![]),
    };
    Ok(Collated {
        input_ids: Tensor::cat(&[&prompt_ids, &responses], 1),
        attention_mask: Tensor::cat(&[&prompt_mask, &resp_mask], 1),
        prompt_len: prompt_ids.size()[1],
        responses,
        response_mask: resp_mask.to_kind(Kind::Float),
        pixel_values,
        grids,
    })
}

fn right_pad(rows: &[&[i64]], t: usize, pad: i64) -> (Vec<i64>, Vec<i64>) {
    let (mut ids, mut mask) = (Vec::with_capacity(rows.len() * t), Vec::with_capacity(rows.len() * t));
    for r in rows {
        ids.extend(r.iter().copied().chain(std::iter::repeat_n(pad, t - r.len())));
        mask.extend(std::iter::repeat_n(1i64, r.len()).chain(std::iter::repeat_n(0, t - r.len())));
    }
    (ids, mask)
}

/// Per-token values of ragged rows as a zero-padded `(B, T)` f32 tensor.
pub fn per_token(rows: &[&[f32]], t: i64, device: Device) -> Result<Tensor> {
    let mut flat = Vec::with_capacity(rows.len() * t as usize);
    for r in rows {
        ensure!(r.len() as i64 <= t, "per_token: a row has {} values but the batch is {t} tokens long", r.len());
        flat.extend(r.iter().copied().chain(std::iter::repeat_n(0.0, t as usize - r.len())));
    }
    Ok(Tensor::from_slice(&flat).view([rows.len() as i64, t]).to_device(device))
}

/// Response log-probs `(B, T)` f32 of `c` under `model`, from `log_softmax(logits / temperature)`; with
/// `keep_logits` also the temperature-scaled response logits `(B, T, V)` f32 (for the entropy term).
/// Carries the autograd graph unless called under `no_grad`.
pub fn response_log_probs(
    model: &Qwen2_5_VL,
    c: &Collated,
    temperature: f64,
    keep_logits: bool,
) -> Result<(Tensor, Option<Tensor>)> {
    let logits = model.forward(&c.input_ids, Some(&c.attention_mask), c.images())?;
    of_logits(&logits, c, temperature, keep_logits)
}

/// [`response_log_probs`] with activation recomputation: after `loss.backward()`, call
/// `recompute.backward(&model.text)` to reach the decoder layers and the embeddings.
pub fn response_log_probs_recomputed(
    model: &Qwen2_5_VL,
    c: &Collated,
    temperature: f64,
    keep_logits: bool,
) -> Result<(Tensor, Option<Tensor>, Recompute)> {
    let (logits, rc) = model.forward_recomputed(&c.input_ids, Some(&c.attention_mask), c.images())?;
    let (lp, kept) = of_logits(&logits, c, temperature, keep_logits)?;
    Ok((lp, kept, rc))
}

fn of_logits(logits: &Tensor, c: &Collated, temperature: f64, keep_logits: bool) -> Result<(Tensor, Option<Tensor>)> {
    ensure!(temperature > 0.0 && temperature.is_finite(), "log-probs need a temperature > 0, got {temperature}");
    let scaled = logits.narrow(1, c.prompt_len - 1, c.response_len()).to_kind(Kind::Float) / temperature;
    let log_probs = scaled.log_softmax(-1, Kind::Float).gather(-1, &c.responses.unsqueeze(-1), false).squeeze_dim(-1);
    Ok((log_probs, keep_logits.then_some(scaled)))
}

/// Response log-probs of `rows` as ragged `Vec<f32>`s (no graph), computed `chunk` sequences at a time:
/// the old-policy and reference passes.
pub fn log_probs_no_grad(
    model: &Qwen2_5_VL,
    prompts: &[RlPrompt],
    rows: &[(usize, &[i64])],
    temperature: f64,
    chunk: usize,
    pad_id: i64,
) -> Result<Vec<Vec<f32>>> {
    ensure!(chunk > 0, "log-prob chunk must be >= 1");
    let _g = tch::no_grad_guard();
    let mut out = Vec::with_capacity(rows.len());
    for part in rows.chunks(chunk) {
        let c = collate(prompts, part, pad_id, model.device(), model.text.dtype())?;
        let (lp, _) = response_log_probs(model, &c, temperature, false)?;
        let lp = lp.to_device(Device::Cpu);
        for (i, (_, r)) in part.iter().enumerate() {
            let row = Vec::<f32>::try_from(lp.get(i as i64).narrow(0, 0, r.len() as i64))?;
            ensure!(
                row.iter().all(|v| v.is_finite()),
                "non-finite log-prob in sequence {i} of a log-prob chunk; the model produced NaN/inf logits"
            );
            out.push(row);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collates_prompt_left_and_response_right() {
        let prompts = vec![RlPrompt::from_ids(0, vec![5, 6, 7], "1"), RlPrompt::from_ids(1, vec![8], "2")];
        let (r0, r1) = ([9i64], [10i64, 11]);
        let c = collate(&prompts, &[(0, &r0), (1, &r1)], 0, Device::Cpu, Kind::Float).unwrap();
        assert_eq!(c.prompt_len, 3);
        let ids = Vec::<i64>::try_from(c.input_ids.view(-1)).unwrap();
        assert_eq!(ids, vec![5, 6, 7, 9, 0, 0, 0, 8, 10, 11]);
        let mask = Vec::<i64>::try_from(c.attention_mask.view(-1)).unwrap();
        assert_eq!(mask, vec![1, 1, 1, 1, 0, 0, 0, 1, 1, 1]);
        assert_eq!(Vec::<f32>::try_from(c.response_mask.view(-1)).unwrap(), vec![1., 0., 1., 1.]);
        let v = per_token(&[&[1.0], &[2.0, 3.0]], 2, Device::Cpu).unwrap();
        assert_eq!(Vec::<f32>::try_from(v.view(-1)).unwrap(), vec![1., 0., 2., 3.]);
        assert!(per_token(&[&[1.0, 2.0, 3.0]], 2, Device::Cpu).is_err());
        assert!(collate(&prompts, &[(0, &[])], 0, Device::Cpu, Kind::Float).is_err());
    }
}
