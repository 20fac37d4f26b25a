//! Entropy bonus: what is measured per token and how its coefficient moves over optimizer steps. The actor
//! loss subtracts `coef · aggregate(entropy)` (loss.rs).
//!
//! Implements:
//! - True entropy from logits, `H = logsumexp(z) − Σ softmax(z)·z` (EasyR1 605e106 `compute_entropy_loss`,
//!   verl 0.9.1 `verl_F.entropy_from_logits`), coefficient `entropy_coeff` (EasyR1 default 1e-3).
//! - ReVisual-R1's estimator and schedule (papers_spec §2.5–2.6; fork `verl/workers/actor/dp_actor.py`
//!   `update_policy`, `_anneal_entropy_coef`): the "entropy" is `−log π(a_t)` of the sampled tokens, and the
//!   coefficient is 0 during a warm-up of W optimizer steps, β0 right after it, then decays by λ per optimizer
//!   step (or linearly by (β0 − βmin)/total_updates), never below βmin. Paper: β0 0.02, βmin 0, λ 0.985,
//!   W 140; released config: W 20.
//!
//! Deliberate deviations: the fork averages `−log π` with a micro-batch masked mean whatever the loss
//! aggregation; here the entropy term uses the actor loss's [`crate::rl::loss::Aggregation`], which is the
//! same thing for the fork's `MicroBatchTokenMean` (its division by the gradient-accumulation count moves from
//! the summed loss to each term). The schedule is a pure function of the optimizer step instead of actor
//! state, so a resumed run gets the same coefficient; it replays the fork's update rule step by step, so the
//! float64 values are identical to the fork's.
use anyhow::{Result, bail, ensure};
use tch::{Kind, Tensor};

/// What the per-token entropy is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntropyEstimator {
    /// The categorical entropy of the full next-token distribution (needs the logits).
    FromLogits,
    /// ReVisual fork: `−log π(a_t)` of the sampled token, an unbiased single-sample estimate of H whose
    /// gradient pushes down the log-prob of every sampled token.
    SampledNegLogProb,
}

impl EntropyEstimator {
    /// Per-token entropy `[B, T]` (float32, differentiable). `logits` is `[B, T, V]` (temperature already
    /// applied, as the log-probs were computed) and is required by `FromLogits`.
    pub fn per_token(&self, logits: Option<&Tensor>, log_probs: &Tensor) -> Result<Tensor> {
        match self {
            EntropyEstimator::FromLogits => match logits {
                Some(logits) => from_logits(logits, log_probs),
                None => {
                    bail!("EntropyEstimator::FromLogits needs the response logits; pass them or use SampledNegLogProb")
                }
            },
            EntropyEstimator::SampledNegLogProb => Ok(sampled_neg_log_prob(log_probs)),
        }
    }
}

/// `H(softmax(z))` over the last dimension, computed as `logsumexp(z) − Σ softmax(z)·z`.
pub fn token_entropy(logits: &Tensor) -> Tensor {
    let z = logits.to_kind(Kind::Float);
    let p = z.softmax(-1, Kind::Float);
    z.logsumexp([-1], false) - (p * &z).sum_dim_intlist(-1, false, Kind::Float)
}

fn from_logits(logits: &Tensor, log_probs: &Tensor) -> Result<Tensor> {
    let (ls, lp) = (logits.size(), log_probs.size());
    ensure!(
        ls.len() == lp.len() + 1 && ls[..lp.len()] == lp[..],
        "logits {ls:?} must be [batch, response_len, vocab] matching the log-probs {lp:?}"
    );
    Ok(token_entropy(logits))
}

fn sampled_neg_log_prob(log_probs: &Tensor) -> Tensor {
    -log_probs.to_kind(Kind::Float)
}

/// How the entropy coefficient decays after the warm-up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Decay {
    /// `c ← max(βmin, λ·c)` per optimizer step (fork `entropy_schedule: exp`).
    Exponential { rate: f64 },
    /// `c ← max(βmin, c − (β0 − βmin)/max(1, total_updates))` per optimizer step.
    Linear { total_updates: u64 },
}

/// The entropy coefficient as a function of the optimizer step (0-based, counted across RL steps).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum EntropySchedule {
    /// The same coefficient at every step (EasyR1: 1e-3 with `FromLogits`; 0 turns the bonus off).
    Constant { coef: f64 },
    /// ReVisual-R1: 0 for steps `0..=warmup_steps`, `init` at `warmup_steps + 1`, then decayed per step.
    Annealed { warmup_steps: u64, init: f64, min: f64, decay: Decay },
}

impl EntropySchedule {
    /// ReVisual-R1's released config (`examples/main.sh`): β0 0.02, βmin 0, λ 0.985, warm-up 20.
    pub fn revisual_code() -> Self {
        EntropySchedule::Annealed { warmup_steps: 20, init: 0.02, min: 0.0, decay: Decay::Exponential { rate: 0.985 } }
    }

    /// ReVisual-R1 paper Table 5: warm-up 140, otherwise as the code.
    pub fn revisual_paper() -> Self {
        EntropySchedule::Annealed { warmup_steps: 140, init: 0.02, min: 0.0, decay: Decay::Exponential { rate: 0.985 } }
    }

    /// Rejects negative or non-finite coefficients, `min > init`, and decay rates outside (0, 1].
    pub fn validate(&self) -> Result<()> {
        match *self {
            EntropySchedule::Constant { coef } => {
                ensure!(coef.is_finite(), "entropy coefficient must be finite, got {coef}")
            }
            EntropySchedule::Annealed { init, min, decay, .. } => {
                ensure!(
                    init.is_finite() && (0.0..=init).contains(&min),
                    "annealed entropy coefficient needs 0 <= min <= init, got min {min}, init {init}"
                );
                if let Decay::Exponential { rate } = decay {
                    ensure!(rate > 0.0 && rate <= 1.0, "entropy decay rate must be in (0, 1], got {rate}");
                }
            }
        }
        Ok(())
    }

    /// The coefficient used in optimizer step `step`.
    pub fn coef_at(&self, step: u64) -> f64 {
        match *self {
            EntropySchedule::Constant { coef } => coef,
            EntropySchedule::Annealed { warmup_steps, init, min, decay } => {
                annealed(step, warmup_steps, init, min, decay)
            }
        }
    }
}

/// Replays the fork: after optimizer step u, `c = 0` if u < W, `c = init` if u == W, else one decay; the
/// coefficient used in step j is the value after step j − 1 (0 for j = 0).
fn annealed(step: u64, warmup: u64, init: f64, min: f64, decay: Decay) -> f64 {
    if step <= warmup {
        return 0.0;
    }
    let mut c = init;
    for _ in 0..step - warmup - 1 {
        let next = match decay {
            Decay::Exponential { rate } => min.max(c * rate),
            Decay::Linear { total_updates } => min.max(c - (init - min) / total_updates.max(1) as f64),
        };
        if next == c {
            break; // reached its floor: every later step keeps it
        }
        c = next;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annealing_matches_papers_spec_vector() {
        let s = EntropySchedule::revisual_code();
        s.validate().unwrap();
        for j in 0..=20 {
            assert_eq!(s.coef_at(j), 0.0, "step {j}");
        }
        assert_eq!(s.coef_at(21), 0.02);
        assert!((s.coef_at(22) - 0.0197).abs() < 1e-15);
        assert!((s.coef_at(23) - 0.019_404_5).abs() < 1e-15);
        // 200 decays after onset: 0.02 · 0.985^200 ≈ 9.7e-4 (papers_spec §2.6).
        assert!((s.coef_at(221) - 0.02 * 0.985f64.powi(200)).abs() < 1e-12);
        assert!((s.coef_at(221) - 9.7e-4).abs() < 1e-5);
        assert_eq!(EntropySchedule::revisual_paper().coef_at(140), 0.0);
        assert_eq!(EntropySchedule::revisual_paper().coef_at(141), 0.02);
    }

    #[test]
    fn linear_decay_stops_at_min() {
        let s = EntropySchedule::Annealed {
            warmup_steps: 0,
            init: 0.02,
            min: 0.005,
            decay: Decay::Linear { total_updates: 3 },
        };
        assert_eq!(s.coef_at(1), 0.02);
        assert!((s.coef_at(2) - 0.015).abs() < 1e-15);
        assert_eq!(s.coef_at(1_000_000), 0.005);
        let bad = EntropySchedule::Annealed {
            warmup_steps: 0,
            init: 0.01,
            min: 0.02,
            decay: Decay::Linear { total_updates: 3 },
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn entropy_of_uniform_and_sampled_estimator() {
        let logits = Tensor::zeros([1, 2, 11], tch::kind::FLOAT_CPU);
        let logp = Tensor::from_slice(&[-0.5f32, -2.0]).view([1, 2]);
        let h = EntropyEstimator::FromLogits.per_token(Some(&logits), &logp).unwrap();
        assert!((h.double_value(&[0, 1]) - 11f64.ln()).abs() < 1e-6);
        let s = EntropyEstimator::SampledNegLogProb.per_token(None, &logp).unwrap();
        assert_eq!(Vec::<f32>::try_from(&s.view([-1])).unwrap(), vec![0.5, 2.0]);
        assert!(EntropyEstimator::FromLogits.per_token(None, &logp).is_err());
        let wrong = Tensor::zeros([1, 3, 11], tch::kind::FLOAT_CPU);
        assert!(EntropyEstimator::FromLogits.per_token(Some(&wrong), &logp).is_err());
    }
}
