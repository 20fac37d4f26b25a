//! The actor update of one RL step (papers_spec §0.2 step 6–7; EasyR1 605e106
//! `DataParallelPPOActor.update_policy`, the ReVisual fork's `dp_actor.py`): `ppo_epochs` passes over the
//! training batch, split into mini-batches of `mini_batch` sequences (one optimizer step each), each split
//! into micro-batches of `micro_batch` sequences whose losses are back-propagated and accumulated:
//!
//! ```text
//! for epoch in 0..ppo_epochs:
//!   for mini in batch.chunks(mini_batch):                 # in order; the last chunk may be smaller
//!     for micro in mini.chunks(micro_batch):
//!       logp, logits = actor(micro) / T                   # experience::response_log_probs
//!       loss = ActorLoss(logp, old_logp, A, ref_logp, logits; mini-batch totals, update u)   # rl::loss
//!       loss.backward()                                   # each share already carries its 1/#micro factor
//!     clip grad-norm, skip the step if it is not finite, AdamW(lr(u)); u += 1
//! ```
//!
//! `u` counts mini-batch updates across RL steps and PTST stages (the entropy annealing of the ReVisual fork and
//! the LR schedule are functions of it, papers_spec §2.6). Skipped steps advance `u` too (the fork updates the
//! entropy coefficient after every mini-batch whatever the norm).
//!
//! Deliberate deviations: EasyR1 optionally shuffles the mini-batches (`shuffle: false` in both papers'
//! configs); here their order is the batch order (prompt-major, or PAD's draw order).
use anyhow::{Result, ensure};
use tch::Device;

use super::experience::{Experience, collate, per_token, response_log_probs, response_log_probs_recomputed};
use super::loss::{ActorInputs, ActorLoss, MiniBatchScale, PolicyInputs};
use super::rollout::RlPrompt;
use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::rl::entropy::EntropyEstimator;
use crate::train::optim::AdamW;

/// How the update splits and scores the batch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UpdateConfig {
    pub loss: ActorLoss,
    pub ppo_epochs: usize,
    /// Sequences per optimizer step (EasyR1 `global_batch_size × n`).
    pub mini_batch: usize,
    /// Sequences per forward/backward.
    pub micro_batch: usize,
    /// The rollout temperature (logits are divided by it).
    pub temperature: f64,
    pub grad_clip: Option<f64>,
    /// Recompute each decoder layer's activations in the backward pass instead of keeping them
    /// ([`crate::model::qwen2_5_vl::text::Recompute`]): EasyR1's `enable_gradient_checkpointing`.
    pub recompute: bool,
}

impl UpdateConfig {
    pub fn validate(&self) -> Result<()> {
        self.loss.validate()?;
        ensure!(self.ppo_epochs > 0, "ppo_epochs must be >= 1");
        ensure!(self.mini_batch > 0 && self.micro_batch > 0, "mini_batch and micro_batch must be >= 1");
        ensure!(self.temperature > 0.0, "the update needs the rollout temperature > 0, got {}", self.temperature);
        Ok(())
    }
}

/// Means over the optimizer steps (losses, norms) or micro-batches (token statistics) of one update.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct UpdateMetrics {
    pub optimizer_steps: u64,
    pub skipped_steps: u64,
    pub pg_loss: f64,
    pub kl: Option<f64>,
    pub entropy: Option<f64>,
    pub entropy_coef: f64,
    pub clip_frac: f64,
    pub clip_frac_lower: f64,
    pub ppo_kl: f64,
    /// Mean of the pre-clip gradient norms of the applied steps (NaN if every step was skipped).
    pub grad_norm: f64,
    pub lr: f64,
    /// Response tokens trained on (counting repeats).
    pub tokens: u64,
}

/// Runs the update over `batch` (experience in training order, repeats allowed). `update` is the global
/// mini-batch update counter `u` before this call; `lr(u)` gives each step's learning rate. Returns the metrics
/// and the counter after the call.
#[allow(clippy::too_many_arguments)]
pub fn update(
    model: &Qwen2_5_VL,
    optimizer: &mut AdamW,
    prompts: &[RlPrompt],
    batch: &[&Experience],
    cfg: &UpdateConfig,
    pad_id: i64,
    mut update: u64,
    lr: impl Fn(u64) -> f64,
) -> Result<(UpdateMetrics, u64)> {
    cfg.validate()?;
    ensure!(!batch.is_empty(), "the update got an empty batch (PAD selected nothing?); skip the step instead");
    let device = model.device();
    let need_logits = matches!(cfg.loss.entropy, Some(e) if e.estimator == EntropyEstimator::FromLogits);
    let mut m = UpdateMetrics::default();
    let (mut micro_count, mut norm_sum) = (0u64, 0.0);
    let (mut kl_sum, mut ent_sum) = (0.0, 0.0);
    optimizer.zero_grad();
    for _ in 0..cfg.ppo_epochs {
        for mini in batch.chunks(cfg.mini_batch) {
            let micros: Vec<&[&Experience]> = mini.chunks(cfg.micro_batch).collect();
            let masks: Vec<tch::Tensor> = micros
                .iter()
                .map(|mb| {
                    let ones: Vec<Vec<f32>> = mb.iter().map(|e| vec![1.0; e.response.len()]).collect();
                    let rows: Vec<&[f32]> = ones.iter().map(Vec::as_slice).collect();
                    let t = rows.iter().map(|r| r.len()).max().unwrap_or(0) as i64;
                    per_token(&rows, t, Device::Cpu)
                })
                .collect::<Result<_>>()?;
            let scale = MiniBatchScale::of(&masks.iter().collect::<Vec<_>>())?;
            for mb in &micros {
                let rows: Vec<(usize, &[i64])> = mb.iter().map(|e| (e.prompt, e.response.as_slice())).collect();
                let c = collate(prompts, &rows, pad_id, device, model.text.dtype())?;
                let t = c.response_len();
                let old: Vec<&[f32]> = mb.iter().map(|e| e.old_log_probs.as_slice()).collect();
                let old = per_token(&old, t, device)?;
                let advantages: Vec<Vec<f32>> = mb.iter().map(|e| vec![e.advantage; e.response.len()]).collect();
                let advantages = per_token(&advantages.iter().map(Vec::as_slice).collect::<Vec<_>>(), t, device)?;
                let reference = if cfg.loss.kl.is_some() {
                    let rows = mb
                        .iter()
                        .map(|e| {
                            e.ref_log_probs.as_deref().ok_or_else(|| {
                                anyhow::anyhow!("a KL term is configured but the experience has no reference log-probs")
                            })
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Some(per_token(&rows, t, device)?)
                } else {
                    None
                };
                let (log_probs, logits, recompute) = if cfg.recompute {
                    let (lp, lg, rc) = response_log_probs_recomputed(model, &c, cfg.temperature, need_logits)?;
                    (lp, lg, Some(rc))
                } else {
                    let (lp, lg) = response_log_probs(model, &c, cfg.temperature, need_logits)?;
                    (lp, lg, None)
                };
                let inputs = ActorInputs {
                    policy: PolicyInputs {
                        log_probs: &log_probs,
                        old_log_probs: &old,
                        advantages: &advantages,
                        response_mask: &c.response_mask,
                    },
                    ref_log_probs: reference.as_ref(),
                    logits: logits.as_ref(),
                };
                let (loss, am) = cfg.loss.compute(&inputs, &scale, update)?;
                loss.backward();
                if let Some(rc) = recompute {
                    rc.backward(&model.text)?;
                }
                micro_count += 1;
                m.pg_loss += am.pg_loss;
                m.clip_frac += am.policy.clip_frac;
                m.clip_frac_lower += am.policy.clip_frac_lower;
                m.ppo_kl += am.policy.ppo_kl;
                kl_sum += am.kl.unwrap_or(0.0);
                ent_sum += am.entropy.unwrap_or(0.0);
                m.entropy_coef = am.entropy_coef;
                m.tokens += mb.iter().map(|e| e.response.len() as u64).sum::<u64>();
            }
            let step_lr = lr(update);
            let report = optimizer.clip_and_step(step_lr, cfg.grad_clip)?;
            m.lr = step_lr;
            m.optimizer_steps += 1;
            if report.skipped {
                m.skipped_steps += 1;
            } else {
                norm_sum += report.grad_norm;
            }
            update += 1;
        }
    }
    let micros = micro_count as f64;
    // pg_loss shares sum to the mini-batch loss: report the mean loss per optimizer step.
    m.pg_loss /= m.optimizer_steps as f64;
    m.clip_frac /= micros;
    m.clip_frac_lower /= micros;
    m.ppo_kl /= micros;
    m.kl = cfg.loss.kl.map(|_| kl_sum / micros);
    m.entropy = cfg.loss.entropy.map(|_| ent_sum / micros);
    let applied = m.optimizer_steps - m.skipped_steps;
    m.grad_norm = if applied > 0 { norm_sum / applied as f64 } else { f64::NAN };
    Ok((m, update))
}
