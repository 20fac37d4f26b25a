//! Learning-rate schedules as the papers' frameworks compute them (papers_spec §0.2 item 7, §1.3, §2.3).
//!
//! `lr(step) = base_lr · λ(step)`, where `step` counts the scheduler steps already taken (PyTorch `LambdaLR`:
//! the update number `k` (1-based) uses `λ(k − 1)`, so with warmup the very first update has lr 0, exactly as
//! in HF Trainer and EasyR1).
//! - [`LrSchedule::ConstantWithWarmup`]: transformers `get_constant_schedule_with_warmup`,
//!   `λ = step / max(1, W)` for `step < W`, else 1. EasyR1 605e106 (both papers' RL) builds it with
//!   `W = int(lr_warmup_ratio · training_steps)` ([`warmup_steps_easyr1`], floor) and steps it once per RL
//!   step; both papers use ratio 0, i.e. a constant lr.
//! - [`LrSchedule::Cosine`]: transformers `get_cosine_with_min_lr_schedule_with_warmup` (with
//!   `min_lr_rate = 0` it is `get_cosine_schedule_with_warmup`, LLaMA-Factory's `lr_scheduler_type: cosine`,
//!   the SFT of both papers): warmup as above, then with `p = (step − W) / max(1, N − W)`:
//!   `λ = max(0, r + (1 − r) · 0.5 · (1 + cos(π · 2c · p)))`, `c = 0.5` cycles, `r = min_lr / base_lr`.
//!   HF Trainer derives `W` from `warmup_ratio` as `ceil(N · ratio)` ([`warmup_steps_hf`],
//!   `TrainingArguments.get_warmup_steps`; 0.05 in both SFT configs), `N` = optimizer steps of the run.
//!
//! No deviations: the same f64 formulas (tests/optim_parity.rs compares with transformers 5.17).
use anyhow::{Result, ensure};

/// HF Trainer's warmup length from a ratio: `ceil(total_steps · ratio)`.
pub fn warmup_steps_hf(total_steps: usize, ratio: f64) -> usize {
    (total_steps as f64 * ratio).ceil() as usize
}

/// EasyR1's warmup length from a ratio: `int(ratio · total_steps)` (floor).
pub fn warmup_steps_easyr1(total_steps: usize, ratio: f64) -> usize {
    (ratio * total_steps as f64) as usize
}

/// A learning-rate schedule; [`LrSchedule::lr`] gives the lr for a scheduler step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LrSchedule {
    /// Linear warmup from 0 over `warmup_steps`, then `base_lr` (EasyR1).
    ConstantWithWarmup { base_lr: f64, warmup_steps: usize },
    /// Linear warmup, then half a cosine from `base_lr` down to `min_lr_rate · base_lr` at `total_steps`
    /// (LLaMA-Factory / HF; `min_lr_rate = 0` is plain `cosine`).
    Cosine { base_lr: f64, warmup_steps: usize, total_steps: usize, min_lr_rate: f64 },
}

impl LrSchedule {
    /// EasyR1: constant lr after `int(ratio · total_steps)` warmup steps.
    pub fn easyr1_constant(base_lr: f64, warmup_ratio: f64, total_steps: usize) -> Self {
        LrSchedule::ConstantWithWarmup { base_lr, warmup_steps: warmup_steps_easyr1(total_steps, warmup_ratio) }
    }

    /// HF Trainer / LLaMA-Factory `cosine` with `warmup_ratio` (`ceil`) and an optional floor `min_lr`.
    pub fn hf_cosine(base_lr: f64, warmup_ratio: f64, total_steps: usize, min_lr: f64) -> Self {
        let min_lr_rate = if base_lr > 0.0 { min_lr / base_lr } else { 0.0 };
        LrSchedule::Cosine {
            base_lr,
            warmup_steps: warmup_steps_hf(total_steps, warmup_ratio),
            total_steps,
            min_lr_rate,
        }
    }

    pub fn validate(&self) -> Result<()> {
        let base = match *self {
            LrSchedule::ConstantWithWarmup { base_lr, .. } => base_lr,
            LrSchedule::Cosine { base_lr, total_steps, min_lr_rate, warmup_steps } => {
                ensure!(total_steps > 0, "cosine schedule needs total_steps > 0 (the optimizer steps of the run)");
                ensure!(
                    warmup_steps <= total_steps,
                    "cosine warmup ({warmup_steps} steps) is longer than the run ({total_steps} steps)"
                );
                ensure!(
                    (0.0..=1.0).contains(&min_lr_rate),
                    "cosine min_lr_rate (min_lr / base_lr) must be in [0, 1], got {min_lr_rate}"
                );
                base_lr
            }
        };
        ensure!(base.is_finite() && base >= 0.0, "base learning rate must be finite and >= 0, got {base}");
        Ok(())
    }

    /// The multiplier λ(step) (LambdaLR's lambda).
    pub fn factor(&self, step: usize) -> f64 {
        match *self {
            LrSchedule::ConstantWithWarmup { warmup_steps, .. } => constant_with_warmup(step, warmup_steps),
            LrSchedule::Cosine { warmup_steps, total_steps, min_lr_rate, .. } => {
                cosine_with_warmup(step, warmup_steps, total_steps, min_lr_rate)
            }
        }
    }

    /// The learning rate after `step` scheduler steps: `base_lr · λ(step)`.
    pub fn lr(&self, step: usize) -> f64 {
        let base = match *self {
            LrSchedule::ConstantWithWarmup { base_lr, .. } | LrSchedule::Cosine { base_lr, .. } => base_lr,
        };
        base * self.factor(step)
    }
}

/// transformers `_get_constant_schedule_with_warmup_lr_lambda`.
fn constant_with_warmup(step: usize, warmup: usize) -> f64 {
    if step < warmup { step as f64 / (warmup as f64).max(1.0) } else { 1.0 }
}

/// transformers `_get_cosine_schedule_with_warmup_lr_lambda` with `num_cycles = 0.5` and `min_lr_rate`.
fn cosine_with_warmup(step: usize, warmup: usize, total: usize, min_lr_rate: f64) -> f64 {
    if step < warmup {
        return step as f64 / warmup.max(1) as f64;
    }
    let progress = (step - warmup) as f64 / total.saturating_sub(warmup).max(1) as f64;
    let factor = 0.5 * (1.0 + (std::f64::consts::PI * 0.5 * 2.0 * progress).cos());
    let factor = factor * (1.0 - min_lr_rate) + min_lr_rate;
    factor.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_lengths_round_like_the_references() {
        // 2 epochs of Vision-R1's 200K/32 ≈ 12,500 steps; 0.05 of 101 steps: HF ceil → 6, EasyR1 floor → 5.
        assert_eq!(warmup_steps_hf(101, 0.05), 6);
        assert_eq!(warmup_steps_easyr1(101, 0.05), 5);
        assert_eq!(warmup_steps_hf(100, 0.0), 0);
        assert_eq!(warmup_steps_easyr1(100, 0.0), 0);
    }

    #[test]
    fn constant_schedule_warms_up_then_holds() {
        let s = LrSchedule::ConstantWithWarmup { base_lr: 1e-6, warmup_steps: 4 };
        let got: Vec<f64> = (0..6).map(|k| s.lr(k)).collect();
        assert_eq!(got, [0.0, 0.25e-6, 0.5e-6, 0.75e-6, 1e-6, 1e-6]);
        assert_eq!(LrSchedule::easyr1_constant(1e-6, 0.0, 10).lr(0), 1e-6);
    }

    #[test]
    fn cosine_reaches_the_floor_at_the_end() {
        let s = LrSchedule::hf_cosine(2e-5, 0.05, 100, 2e-6);
        s.validate().unwrap();
        assert_eq!(s.lr(0), 0.0);
        assert!((s.lr(5) - 2e-5).abs() < 1e-20);
        assert!((s.lr(100) - 2e-6).abs() < 1e-18);
        let mid = s.lr(5 + 95 / 2);
        assert!(mid < 2e-5 && mid > 2e-6);
        assert!(
            LrSchedule::Cosine { base_lr: 1.0, warmup_steps: 5, total_steps: 3, min_lr_rate: 0.0 }.validate().is_err()
        );
    }
}
