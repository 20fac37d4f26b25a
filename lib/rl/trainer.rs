//! One GRPO step as EasyR1 605e106 `RayPPOTrainer.fit` runs it (papers_spec §0.2; both papers trained with
//! EasyR1): rollouts → rule rewards → old (and reference) log-probs → group advantages → [PAD] → actor update,
//! with the per-step metrics of issue 4 item 9.
//!
//! 1. [`super::rollout::rollout`]: `group_size` responses per prompt, seeded per (step, prompt uid, sample).
//! 2. Rewards ([`RewardFn`]) on the decoded text with the response length in tokens; the scalar is the
//!    sequence score `s_i` (EasyR1 places it on the last response token and sums, the same number).
//! 3. `old_log_probs` by the current weights before any update, `ref_log_probs` by the frozen reference when
//!    the loss has a KL term; both with logits divided by the rollout temperature.
//! 4. [`super::advantage::sequence_advantages`] over the prompt groups (GRPO z-score or Dr.GRPO).
//! 5. PAD ([`super::pad`], ReVisual-R1 only): picks (and repeats) the sequences to train on from their
//!    sequence advantages, seeded by `seed::derive(base, Pad, step, 0, 0)`; an empty selection (paper variant)
//!    skips the update of this step, which is counted.
//! 6. [`super::update::update`]: mini-batches of `update_prompts × group_size` sequences.
//!
//! [`grpo_step`] is [`generate_scored`] (steps 1–2) then [`train_on`] (steps 3–6); `rl::run` calls the two
//! halves itself under DAPO dynamic sampling ([`super::dynamic`]), which draws several batches before training.
//!
//! Deliberate deviations: none in the algorithm. Timing splits are wall-clock seconds of this process
//! (rollout / log-prob / update); `tokens_per_s` counts prompt + response tokens of the rollout batch over the
//! whole step, like EasyR1's `perf/throughput` per device.
use std::time::Instant;

use anyhow::{Result, ensure};
use tch::{Kind, Tensor};

use super::advantage::{AdvantageConfig, sequence_advantages};
use super::dynamic::DynamicStats;
use super::experience::{Experience, log_probs_no_grad};
use super::pad::{self, Pad};
use super::reward::{RewardFn, RewardScore};
use super::rollout::{RlPrompt, Rollout, RolloutSeeds, rollout};
use super::update::{UpdateConfig, UpdateMetrics, update};
use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::model::sampling::SamplingParams;
use crate::repro::seed::{self, SeedDomain};
use crate::train::optim::AdamW;

/// Everything one GRPO step needs besides the models and the data.
#[derive(Debug, Clone)]
pub struct GrpoConfig {
    pub group_size: usize,
    /// `max_new_tokens`, temperature, top-p/k and EOS ids of the rollouts.
    pub sampling: SamplingParams,
    pub advantage: AdvantageConfig,
    /// PAD and its `normalize_by_length` flag.
    pub pad: Option<(Pad, bool)>,
    /// The update; its `mini_batch` counts sequences.
    pub update: UpdateConfig,
    /// Sequences per generate call.
    pub rollout_chunk: usize,
    /// Sequences per old/reference log-prob forward.
    pub log_prob_chunk: usize,
}

impl GrpoConfig {
    pub fn validate(&self) -> Result<()> {
        ensure!(self.group_size > 0, "group_size must be >= 1");
        self.sampling.validate()?;
        ensure!(self.sampling.max_new_tokens > 0, "max_new_tokens must be >= 1");
        ensure!(
            !self.sampling.is_greedy(),
            "GRPO rollouts need sampling (temperature > 0): greedy groups have no variance"
        );
        ensure!(
            (self.update.temperature - self.sampling.temperature).abs() < 1e-12,
            "the update divides logits by {} but rollouts sample at temperature {}; they must match",
            self.update.temperature,
            self.sampling.temperature
        );
        if let Some((p, _)) = &self.pad {
            p.validate()?;
        }
        self.update.validate()?;
        ensure!(self.rollout_chunk > 0 && self.log_prob_chunk > 0, "chunk sizes must be >= 1");
        Ok(())
    }
}

/// One sampled response with its score, for the samples table.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleRow {
    pub step: u64,
    pub prompt_uid: u64,
    pub sample: usize,
    /// The response's token ids.
    pub response: Vec<i64>,
    pub text: String,
    pub response_len: usize,
    pub truncated: bool,
    pub reward: RewardScore,
    pub advantage: f64,
    /// How many times PAD put it in the training batch (1 without PAD).
    pub selected: usize,
}

/// The metrics of one RL step.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StepMetrics {
    pub step: u64,
    pub prompts: usize,
    pub sequences: usize,
    pub reward_mean: f64,
    /// Population std of the rewards of the step.
    pub reward_std: f64,
    pub accuracy: Option<f64>,
    pub format_rate: Option<f64>,
    pub response_len_mean: f64,
    pub response_len_max: usize,
    pub truncation_rate: f64,
    pub zero_variance_frac: f64,
    /// PAD's effective set |E| and the sequences it returned (None without PAD).
    pub pad_effective: Option<usize>,
    pub pad_selected: Option<usize>,
    /// No update ran (PAD selected nothing).
    pub update_skipped: bool,
    /// Kept / generated groups under DAPO dynamic sampling (None without it).
    pub dynamic: Option<DynamicStats>,
    pub update: UpdateMetrics,
    pub tokens_per_s: f64,
    pub time_rollout_s: f64,
    pub time_log_prob_s: f64,
    pub time_update_s: f64,
    pub time_total_s: f64,
}

/// The models, optimizer and counters a GRPO run carries from step to step.
pub struct GrpoState<'a> {
    pub policy: &'a Qwen2_5_VL,
    /// Frozen reference policy, required when the loss has a KL term.
    pub reference: Option<&'a Qwen2_5_VL>,
    pub optimizer: &'a mut AdamW,
    /// Mini-batch updates done so far (the `u` of the LR and entropy schedules).
    pub updates: u64,
}

/// Runs RL step `step` (global, 0-based) on `prompts`; `decode` turns response ids into text, `lr(u)` gives the
/// learning rate of update `u`. Returns the step's metrics and one row per sampled response.
#[allow(clippy::too_many_arguments)]
pub fn grpo_step(
    state: &mut GrpoState,
    prompts: &[RlPrompt],
    cfg: &GrpoConfig,
    reward: &dyn RewardFn,
    base_seed: u64,
    step: u64,
    pad_id: i64,
    decode: impl Fn(&[i64]) -> Result<String>,
    lr: impl Fn(u64) -> f64,
) -> Result<(StepMetrics, Vec<SampleRow>)> {
    let t0 = Instant::now();
    let (rollouts, scores) =
        generate_scored(state.policy, prompts, cfg, reward, RolloutSeeds::rollout(base_seed, step), pad_id, decode)?;
    let generated = Generated { rollouts, scores, started: t0, time_rollout_s: t0.elapsed().as_secs_f64() };
    train_on(state, prompts, generated, cfg, base_seed, step, pad_id, lr)
}

/// Rollouts of a step (possibly several batches under dynamic sampling) with their rewards, ready to train on.
pub struct Generated {
    /// `prompt` indexes the prompt slice given to [`train_on`].
    pub rollouts: Vec<Rollout>,
    pub scores: Vec<RewardScore>,
    /// When the step started (for `time_total_s` and `tokens_per_s`).
    pub started: Instant,
    pub time_rollout_s: f64,
}

/// Steps 1–2: `group_size` rollouts per prompt drawn with `seeds`, and their rewards (checked finite).
pub fn generate_scored(
    policy: &Qwen2_5_VL,
    prompts: &[RlPrompt],
    cfg: &GrpoConfig,
    reward: &dyn RewardFn,
    seeds: RolloutSeeds,
    pad_id: i64,
    decode: impl Fn(&[i64]) -> Result<String>,
) -> Result<(Vec<Rollout>, Vec<RewardScore>)> {
    cfg.validate()?;
    ensure!(!prompts.is_empty(), "GRPO step {} got no prompts", seeds.step);
    let rollouts = rollout(policy, prompts, cfg.group_size, &cfg.sampling, seeds, cfg.rollout_chunk, pad_id, decode)?;
    let scores: Vec<RewardScore> =
        rollouts.iter().map(|r| reward.score(&r.text, &prompts[r.prompt].ground_truth, r.response.len())).collect();
    if let Some((i, s)) = scores.iter().enumerate().find(|(_, s)| !s.overall.is_finite()) {
        anyhow::bail!("reward of sequence {i} at step {} is {}; rewards must be finite", seeds.step, s.overall);
    }
    Ok((rollouts, scores))
}

/// Steps 3–6 of RL step `step` on rollouts already drawn and scored: log-probs, advantages, PAD, the update.
#[allow(clippy::too_many_arguments)]
pub fn train_on(
    state: &mut GrpoState,
    prompts: &[RlPrompt],
    generated: Generated,
    cfg: &GrpoConfig,
    base_seed: u64,
    step: u64,
    pad_id: i64,
    lr: impl Fn(u64) -> f64,
) -> Result<(StepMetrics, Vec<SampleRow>)> {
    cfg.validate()?;
    ensure!(!prompts.is_empty(), "GRPO step {step} got no prompts");
    ensure!(
        cfg.update.loss.kl.is_none() || state.reference.is_some(),
        "the loss has a KL term but no reference model was given"
    );
    let Generated { rollouts, scores, started: t0, time_rollout_s: t_rollout } = generated;

    let t1 = Instant::now();
    let rows: Vec<(usize, &[i64])> = rollouts.iter().map(|r| (r.prompt, r.response.as_slice())).collect();
    let temp = cfg.update.temperature;
    let old = log_probs_no_grad(state.policy, prompts, &rows, temp, cfg.log_prob_chunk, pad_id)?;
    let reference = match (cfg.update.loss.kl, state.reference) {
        (Some(_), Some(r)) => Some(log_probs_no_grad(r, prompts, &rows, temp, cfg.log_prob_chunk, pad_id)?),
        _ => None,
    };
    let t_log_prob = t1.elapsed().as_secs_f64();

    let overall: Vec<f32> = scores.iter().map(|s| s.overall as f32).collect();
    let groups: Vec<usize> = rollouts.iter().map(|r| r.prompt).collect();
    let (adv, stats) = sequence_advantages(&cfg.advantage, &Tensor::from_slice(&overall), &groups)?;
    let adv = Vec::<f32>::try_from(&adv)?;
    let experience: Vec<Experience> = rollouts
        .iter()
        .zip(old)
        .enumerate()
        .map(|(i, (r, old))| Experience {
            prompt: r.prompt,
            response: r.response.clone(),
            advantage: adv[i],
            old_log_probs: old,
            ref_log_probs: reference.as_ref().map(|refs| refs[i].clone()),
        })
        .collect();

    let mut metrics = StepMetrics { step, ..Default::default() };
    let order: Vec<usize> = match &cfg.pad {
        None => (0..experience.len()).collect(),
        Some((p, normalize)) => {
            let sel = pad_select(p, *normalize, &experience, step, base_seed)?;
            metrics.pad_effective = Some(sel.effective);
            metrics.pad_selected = Some(sel.selected);
            sel.indices
        }
    };
    let t2 = Instant::now();
    if order.is_empty() {
        metrics.update_skipped = true;
    } else {
        let batch: Vec<&Experience> = order.iter().map(|&i| &experience[i]).collect();
        let (m, u) = update(state.policy, state.optimizer, prompts, &batch, &cfg.update, pad_id, state.updates, lr)?;
        metrics.update = m;
        state.updates = u;
    }
    let t_update = t2.elapsed().as_secs_f64();

    let mut selected = vec![0usize; experience.len()];
    for &i in &order {
        selected[i] += 1;
    }
    fill_rollout_metrics(&mut metrics, prompts, &rollouts, &scores);
    metrics.zero_variance_frac = stats.zero_variance_fraction();
    metrics.time_rollout_s = t_rollout;
    metrics.time_log_prob_s = t_log_prob;
    metrics.time_update_s = t_update;
    metrics.time_total_s = t0.elapsed().as_secs_f64();
    let tokens: usize = rollouts.iter().map(|r| prompts[r.prompt].input_ids.len() + r.response.len()).sum();
    metrics.tokens_per_s = tokens as f64 / metrics.time_total_s.max(1e-9);
    let samples = rollouts
        .iter()
        .enumerate()
        .map(|(i, r)| SampleRow {
            step,
            prompt_uid: prompts[r.prompt].uid,
            sample: r.sample,
            response: r.response.clone(),
            text: r.text.clone(),
            response_len: r.response.len(),
            truncated: r.truncated,
            reward: scores[i],
            advantage: f64::from(adv[i]),
            selected: selected[i],
        })
        .collect();
    Ok((metrics, samples))
}

fn pad_select(p: &Pad, normalize: bool, exp: &[Experience], step: u64, base_seed: u64) -> Result<pad::PadSelection> {
    let t = exp.iter().map(|e| e.response.len()).max().unwrap_or(0) as i64;
    let mask = Tensor::zeros([exp.len() as i64, t], (Kind::Float, tch::Device::Cpu));
    for (i, e) in exp.iter().enumerate() {
        let _ = mask.get(i as i64).narrow(0, 0, e.response.len() as i64).fill_(1.0);
    }
    let adv: Vec<f32> = exp.iter().map(|e| e.advantage).collect();
    let token_adv = Tensor::from_slice(&adv).unsqueeze(-1) * &mask;
    let seq = pad::sequence_advantages(&token_adv, &mask, normalize)?;
    p.select(&seq, step, seed::derive(base_seed, SeedDomain::Pad, step, 0, 0))
}

fn fill_rollout_metrics(m: &mut StepMetrics, prompts: &[RlPrompt], rollouts: &[Rollout], scores: &[RewardScore]) {
    let n = rollouts.len() as f64;
    m.prompts = prompts.len();
    m.sequences = rollouts.len();
    m.reward_mean = scores.iter().map(|s| s.overall).sum::<f64>() / n;
    m.reward_std = (scores.iter().map(|s| (s.overall - m.reward_mean).powi(2)).sum::<f64>() / n).sqrt();
    let part = |f: fn(&RewardScore) -> Option<f64>| -> Option<f64> {
        let v: Vec<f64> = scores.iter().filter_map(f).collect();
        (v.len() == scores.len()).then(|| v.iter().sum::<f64>() / n)
    };
    m.accuracy = part(|s| s.accuracy);
    m.format_rate = part(|s| s.format);
    m.response_len_mean = rollouts.iter().map(|r| r.response.len() as f64).sum::<f64>() / n;
    m.response_len_max = rollouts.iter().map(|r| r.response.len()).max().unwrap_or(0);
    m.truncation_rate = rollouts.iter().filter(|r| r.truncated).count() as f64 / n;
}
