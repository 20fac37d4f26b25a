//! `r1lab bench update`: one GRPO optimizer step of r1lab's actor update ([`crate::rl::update::update`], EasyR1's
//! loss and AdamW, every parameter trainable) on `batch` text sequences of `prompt_len` random prompt tokens and
//! `response_len` random response tokens, `micro_batch` sequences per forward/backward. Before it, the old-policy
//! log-probs are computed without a graph, as the trainer does ([`crate::rl::experience::log_probs_no_grad`]), so
//! the first ratio is 1. The same workload as `scripts/bench/hf_baseline.py --workload update` (a plain PyTorch
//! step with the same clipped surrogate, token-mean, grad clip 1 and AdamW).
//!
//! Each iteration is one optimizer step on the whole batch; reported: its time (median), the old-log-prob pass
//! as a separate phase, peak memory per phase, tokens/s and MFU on the model FLOPs ([`super::cost`]).
use anyhow::{Result, ensure};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::cost::TextShape;
use super::device::{MemoryProbe, Peaks, timed};
use super::rollout::random_prompts;
use super::{Measured, Phase, median};
use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::rl::experience::{Experience, log_probs_no_grad};
use crate::rl::loss::{ActorLoss, PolicyLoss};
use crate::rl::rollout::RlPrompt;
use crate::rl::update::{UpdateConfig, update};
use crate::train::optim::{AdamW, AdamWConfig, Frozen, StatePrecision};

/// The update workload.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct UpdateShape {
    pub batch: usize,
    pub prompt_len: usize,
    pub response_len: usize,
    pub micro_batch: usize,
    /// Where AdamW keeps its moments and update ([`StatePrecision`]); `param_dtype` is plain PyTorch's choice.
    pub states: StatePrecision,
    /// Activation recomputation (the baseline's `--gradient-checkpointing`).
    pub recompute: bool,
}

impl UpdateShape {
    pub fn seq_len(&self) -> usize {
        self.prompt_len + self.response_len
    }

    /// Checked before anything is built: a 7B model takes minutes to initialise.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.batch > 0 && self.prompt_len > 0 && self.response_len > 0 && self.micro_batch > 0,
            "update shape must be positive"
        );
        ensure!(
            self.batch.is_multiple_of(self.micro_batch),
            "batch {} is not a multiple of micro_batch {}; the baseline splits the batch evenly",
            self.batch,
            self.micro_batch
        );
        Ok(())
    }
}

/// Runs the workload and measures it. The model must own its VarStore (it is trained).
pub fn run(
    model: &Qwen2_5_VL,
    shape: UpdateShape,
    warmup: usize,
    iters: usize,
    seed: u64,
    probe: &MemoryProbe,
) -> Result<Measured> {
    shape.validate()?;
    let vs =
        model.var_store().ok_or_else(|| anyhow::anyhow!("the update benchmark needs a model owning its weights"))?;
    let device = model.device();
    let prompts: Vec<RlPrompt> = random_prompts(model, shape.batch, shape.prompt_len, seed)
        .into_iter()
        .enumerate()
        .map(|(i, ids)| RlPrompt::from_ids(i as u64, ids, ""))
        .collect();
    let responses = random_prompts(model, shape.batch, shape.response_len, seed ^ 0x5eed);
    let rows: Vec<(usize, &[i64])> = responses.iter().enumerate().map(|(i, r)| (i, r.as_slice())).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let advantages: Vec<f32> = (0..shape.batch).map(|_| rng.random_range(-1.0..1.0)).collect();
    let cfg = UpdateConfig {
        loss: ActorLoss { policy: PolicyLoss::EASYR1, kl: None, entropy: None },
        ppo_epochs: 1,
        mini_batch: shape.batch,
        micro_batch: shape.micro_batch,
        temperature: 1.0,
        grad_clip: Some(1.0),
        recompute: shape.recompute,
    };
    let mut optimizer = AdamW::new(vs, AdamWConfig { states: shape.states, ..AdamWConfig::EASYR1 }, &Frozen::none())?;
    let old_pass = || log_probs_no_grad(model, &prompts, &rows, 1.0, shape.micro_batch, 0);
    let step = |optimizer: &mut AdamW, old: Vec<Vec<f32>>| -> Result<()> {
        let batch: Vec<Experience> = old
            .into_iter()
            .zip(&rows)
            .zip(&advantages)
            .map(|((old_log_probs, &(prompt, r)), &advantage)| Experience {
                prompt,
                response: r.to_vec(),
                advantage,
                old_log_probs,
                ref_log_probs: None,
            })
            .collect();
        let refs: Vec<&Experience> = batch.iter().collect();
        let (m, _) = update(model, optimizer, &prompts, &refs, &cfg, 0, 0, |_| 1e-6)?;
        ensure!(m.pg_loss.is_finite(), "the benchmark's loss is not finite ({})", m.pg_loss);
        Ok(())
    };
    for _ in 0..warmup {
        let old = old_pass()?;
        step(&mut optimizer, old)?;
    }
    let (mut old_times, mut times) = (Vec::new(), Vec::new());
    let (mut old_peak, mut step_peak) = (None::<u64>, None::<u64>);
    for _ in 0..iters.max(1) {
        probe.reset();
        let (old, s) = timed(device, old_pass)?;
        old_times.push(s);
        old_peak = old_peak.max(probe.peak()?);
        probe.reset();
        times.push(timed(device, || step(&mut optimizer, old))?.1);
        step_peak = step_peak.max(probe.peak()?);
    }
    let update_s = median(&times);
    Ok(Measured {
        iter_times_s: times,
        prefill_s: None,
        phases: vec![
            Phase { name: "old_log_probs".into(), time_s: median(&old_times), peak_memory: old_peak },
            Phase { name: "update".into(), time_s: update_s, peak_memory: step_peak },
        ],
        peak_memory: old_peak.max(step_peak),
    })
}

/// Throughput and MFU of a measured update (r1lab's or the baseline's).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct UpdateFigures {
    pub step_time_s: f64,
    pub tokens_per_s: f64,
    pub mfu: f64,
}

impl UpdateFigures {
    pub fn of(m: &Measured, shape: UpdateShape, text: &TextShape, peaks: &Peaks) -> Self {
        let step = median(&m.iter_times_s);
        let (b, s) = (shape.batch as f64, shape.seq_len() as f64);
        Self { step_time_s: step, tokens_per_s: b * s / step, mfu: text.train_flops(b, s) / step / peaks.flops() }
    }
}
