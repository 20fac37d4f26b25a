//! Per-token estimators of KL(π_θ ‖ π_ref) from the sampled tokens' log-probabilities, used as a loss term
//! (`use_kl_loss`, papers_spec §0.2 step 6).
//!
//! Implements Schulman's estimators (J. Schulman, "Approximating KL divergence", 2020), with
//! `d = log π_θ(a) − log π_ref(a)`:
//! - k1 = d (verl `kl_penalty` "k1"/"kl");
//! - k2 = ½ d² (verl "k2"/"mse");
//! - k3 = exp(−d) + d − 1, clamped to [−10, 10] (verl "k3"/"low_var_kl"; EasyR1 605e106 and the ReVisual fork
//!   `compute_kl(..., "low_var_kl")`). This is Vision-R1's written KL `π_ref/π_θ − log(π_ref/π_θ) − 1`
//!   (paper v1 §3.4) and the KL both papers trained with.
//!
//! Deliberate deviations: k3 clamps `−d` to [−20, 20] before the exponential as verl 0.9.1 does, and EasyR1
//! 605e106 / the ReVisual fork do not. For every finite input the value is the same (whenever the inner clamp
//! binds the outer ±10 clamp binds too, and both have zero gradient there); the inner clamp only avoids
//! `inf − inf = NaN` when a log-prob is −inf. Computed in float32 (the ReVisual fork casts to float32 first).
//! Not implemented: verl's straight-through "k3+" variants, "abs", "full".
use anyhow::{Result, ensure};
use tch::{Kind, Tensor};

/// Which KL estimator the loss uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KlEstimator {
    /// `log π_θ − log π_ref`: unbiased for the KL value, high variance, can be negative per token.
    K1,
    /// `½ (log π_θ − log π_ref)²`.
    K2,
    /// `low_var_kl`: `exp(ref − logp) − (ref − logp) − 1` clamped to ±10; always ≥ 0.
    K3,
}

impl KlEstimator {
    /// Per-token estimate `[B, T]` (float32, differentiable in `log_probs`).
    pub fn per_token(&self, log_probs: &Tensor, ref_log_probs: &Tensor) -> Result<Tensor> {
        ensure!(
            log_probs.size() == ref_log_probs.size(),
            "log-probs {:?} and reference log-probs {:?} must have the same shape",
            log_probs.size(),
            ref_log_probs.size()
        );
        let (logp, reference) = (log_probs.to_kind(Kind::Float), ref_log_probs.to_kind(Kind::Float));
        Ok(match self {
            KlEstimator::K1 => k1(&logp, &reference),
            KlEstimator::K2 => k2(&logp, &reference),
            KlEstimator::K3 => k3(&logp, &reference),
        })
    }
}

fn k1(logp: &Tensor, reference: &Tensor) -> Tensor {
    logp - reference
}

fn k2(logp: &Tensor, reference: &Tensor) -> Tensor {
    (logp - reference).square() * 0.5
}

fn k3(logp: &Tensor, reference: &Tensor) -> Tensor {
    let log_ratio = (reference - logp).clamp(-20.0, 20.0);
    (log_ratio.exp() - &log_ratio - 1.0).clamp(-10.0, 10.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(e: KlEstimator, logp: &[f32], reference: &[f32]) -> Vec<f32> {
        let t = e.per_token(&Tensor::from_slice(logp), &Tensor::from_slice(reference)).unwrap();
        Vec::<f32>::try_from(&t).unwrap()
    }

    #[test]
    fn equal_policies_give_zero_for_every_estimator() {
        for e in [KlEstimator::K1, KlEstimator::K2, KlEstimator::K3] {
            assert_eq!(values(e, &[-1.5, -0.2], &[-1.5, -0.2]), vec![0.0, 0.0], "{e:?}");
        }
    }

    #[test]
    fn k3_formula_and_clamp() {
        // d = logp − ref = −0.5: k3 = e^{0.5} − 0.5 − 1.
        let v = values(KlEstimator::K3, &[-1.0, -1.0, -1.0, f32::NEG_INFINITY], &[-0.5, 29.0, -31.0, -1.0]);
        assert!((v[0] - (0.5f32.exp() - 1.5)).abs() < 1e-6, "{v:?}");
        assert_eq!(&v[1..], &[10.0, 10.0, 10.0]);
        assert_eq!(values(KlEstimator::K1, &[-1.0], &[-0.5]), vec![-0.5]);
        assert_eq!(values(KlEstimator::K2, &[-1.0], &[-0.5]), vec![0.125]);
    }

    #[test]
    fn shape_mismatch_is_an_error() {
        let err = KlEstimator::K3
            .per_token(&Tensor::zeros([2, 3], tch::kind::FLOAT_CPU), &Tensor::zeros([2, 4], tch::kind::FLOAT_CPU));
        assert!(err.unwrap_err().to_string().contains("same shape"));
    }
}
