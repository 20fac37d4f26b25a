//! PAD, Prioritized Advantage Distillation (ReVisual-R1 §4.1.1, App. Alg. 1; papers_spec §2.8): after the
//! advantages are computed, keep the sequences whose |advantage| is informative and resample the training
//! batch with priority to them.
//!
//! Two variants, because the paper and the released code differ (papers_spec §2.8, §3 pitfalls 7–8):
//! - Paper ([`Pad::Paper`]): `E = {i : T_low ≤ |A_i| ≤ T_high}`; if E is empty the batch is empty;
//!   otherwise draw `k' = min(⌈ρN⌉, |E|)` indices from E *without replacement* with
//!   `P(i) = softmax(|A_i|/τ)` over E (uniform if the normaliser is 0), τ decayed linearly from 1.0 to 0.3
//!   ([`TauSchedule`]).
//! - [`Pad::ReleasedCode`] (fork `verl/trainer/ray_trainer.py` L578–665, what produced the checkpoint):
//!   `E = {i : 0.03 < |A_i| < 0.97}` (strict), `p_i ∝ (|A_i| + 1e-8)^1.5`, `k = ⌊1.5·N⌋` draws *with*
//!   replacement (without: `min(k, |E|)`); an empty E or `k = 0` falls back to the full batch. With GRPO's
//!   unbiased-std advantages the upper threshold drops the minority outcome of most groups (§2.8 table).
//!
//! Deliberate deviations: the fork draws with `torch.multinomial` from the global torch RNG; here every draw
//! comes from a ChaCha8 stream seeded by the caller's explicit `seed` (derive it from the base seed and the RL
//! step, so a resumed run draws the same), so selections are reproducible but not bit-equal to the fork's.
//! Weights are computed in float64 (the fork: float32). In the fallback the fork logs 0 selected samples
//! while training on the full batch; [`PadSelection::selected`] counts what is actually returned and
//! [`PadSelection::fell_back`] says it was the fallback.
use anyhow::{Result, ensure};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tch::{Kind, Tensor};

/// The paper's temperature τ as a function of the RL step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TauSchedule {
    Constant {
        tau: f64,
    },
    /// `start + (end − start) · min(step / steps, 1)`.
    Linear {
        start: f64,
        end: f64,
        steps: u64,
    },
}

impl TauSchedule {
    /// "Typically decayed linearly from 1.0 to 0.3" over `steps` RL steps.
    pub fn paper(steps: u64) -> Self {
        TauSchedule::Linear { start: 1.0, end: 0.3, steps }
    }

    pub fn tau_at(&self, step: u64) -> f64 {
        match *self {
            TauSchedule::Constant { tau } => tau,
            TauSchedule::Linear { start, end, steps } => {
                if step >= steps {
                    return end;
                }
                start + (end - start) * (step as f64 / steps as f64)
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pad {
    /// ReVisual-R1 Alg. 1 as written. T_low, T_high and ρ are not given in the paper.
    Paper { t_low: f64, t_high: f64, rho: f64, tau: TauSchedule },
    /// The released code; [`Pad::released_code`] has its values.
    ReleasedCode { t_low: f64, t_high: f64, alpha: f64, ratio: f64, replacement: bool },
}

/// What PAD chose for one RL step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PadSelection {
    /// Batch indices to train on, in draw order (may repeat when drawing with replacement).
    pub indices: Vec<usize>,
    /// |E|: sequences inside the thresholds (`pad/num_effective_samples`).
    pub effective: usize,
    /// `indices.len()` (`pad/num_selected_samples`, except in the fallback, see the module header).
    pub selected: usize,
    /// The released-code fallback to the full batch was taken.
    pub fell_back: bool,
}

impl Pad {
    /// `examples/config.yaml` + `main.sh`: thresholds 0.03/0.97, α 1.5, 1.5·N draws with replacement.
    pub fn released_code() -> Self {
        Pad::ReleasedCode { t_low: 0.03, t_high: 0.97, alpha: 1.5, ratio: 1.5, replacement: true }
    }

    pub fn validate(&self) -> Result<()> {
        match *self {
            Pad::Paper { t_low, t_high, rho, tau } => {
                ensure!(0.0 < t_low && t_low <= t_high, "PAD needs 0 < T_low <= T_high, got {t_low}, {t_high}");
                ensure!(rho.is_finite() && rho > 0.0, "PAD sample ratio rho must be > 0, got {rho}");
                let taus = match tau {
                    TauSchedule::Constant { tau } => [tau, tau],
                    TauSchedule::Linear { start, end, .. } => [start, end],
                };
                ensure!(taus.iter().all(|t| t.is_finite() && *t > 0.0), "PAD temperature must stay > 0, got {tau:?}");
            }
            Pad::ReleasedCode { t_low, t_high, alpha, ratio, .. } => {
                ensure!((0.0..t_high).contains(&t_low), "PAD needs 0 <= low < high, got {t_low}, {t_high}");
                ensure!(alpha.is_finite() && ratio.is_finite() && ratio >= 0.0, "PAD alpha/ratio must be finite");
            }
        }
        Ok(())
    }

    /// Chooses the training batch from the per-sequence advantages (signed or not; |·| is taken) of a batch
    /// of N sequences, at RL step `step` (for τ), drawing from `ChaCha8Rng::seed_from_u64(seed)`.
    pub fn select(&self, seq_advantages: &[f64], step: u64, seed: u64) -> Result<PadSelection> {
        self.validate()?;
        if let Some(i) = seq_advantages.iter().position(|a| !a.is_finite()) {
            anyhow::bail!("advantage of sequence {i} is {}; PAD needs finite advantages", seq_advantages[i]);
        }
        let abs: Vec<f64> = seq_advantages.iter().map(|a| a.abs()).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok(match *self {
            Pad::Paper { t_low, t_high, rho, tau } => {
                select_paper(&abs, t_low, t_high, rho, tau.tau_at(step), &mut rng)
            }
            Pad::ReleasedCode { t_low, t_high, alpha, ratio, replacement } => {
                select_released(&abs, t_low, t_high, alpha, ratio, replacement, &mut rng)
            }
        })
    }
}

fn select_paper(abs: &[f64], t_low: f64, t_high: f64, rho: f64, tau: f64, rng: &mut ChaCha8Rng) -> PadSelection {
    let effective: Vec<usize> = (0..abs.len()).filter(|&i| (t_low..=t_high).contains(&abs[i])).collect();
    if effective.is_empty() {
        return PadSelection { indices: vec![], effective: 0, selected: 0, fell_back: false };
    }
    let weights = softmax_weights(&effective.iter().map(|&i| abs[i]).collect::<Vec<_>>(), tau);
    let k = ((rho * abs.len() as f64).ceil() as usize).min(effective.len());
    let indices: Vec<usize> = draw_without_replacement(&weights, k, rng).into_iter().map(|j| effective[j]).collect();
    PadSelection { effective: effective.len(), selected: indices.len(), indices, fell_back: false }
}

fn select_released(
    abs: &[f64],
    t_low: f64,
    t_high: f64,
    alpha: f64,
    ratio: f64,
    replacement: bool,
    rng: &mut ChaCha8Rng,
) -> PadSelection {
    let n = abs.len();
    let effective: Vec<usize> = (0..n).filter(|&i| t_low < abs[i] && abs[i] < t_high).collect();
    let mut k = (n as f64 * ratio) as usize; // Python int(): truncation
    if !replacement {
        k = k.min(effective.len());
    }
    if effective.is_empty() || k == 0 {
        return PadSelection { indices: (0..n).collect(), effective: effective.len(), selected: n, fell_back: true };
    }
    let weights = power_weights(&effective.iter().map(|&i| abs[i]).collect::<Vec<_>>(), alpha);
    let drawn =
        if replacement { draw_with_replacement(&weights, k, rng) } else { draw_without_replacement(&weights, k, rng) };
    let indices: Vec<usize> = drawn.into_iter().map(|j| effective[j]).collect();
    PadSelection { effective: effective.len(), selected: indices.len(), indices, fell_back: false }
}

/// `exp(a/τ) / Σ exp(a/τ)`, shifted by the maximum for stability; uniform if the sum is not positive.
fn softmax_weights(abs: &[f64], tau: f64) -> Vec<f64> {
    let max = abs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = abs.iter().map(|a| ((a - max) / tau).exp()).collect();
    normalise(w)
}

/// `(a + 1e-8)^α / Σ (a + 1e-8)^α`.
fn power_weights(abs: &[f64], alpha: f64) -> Vec<f64> {
    normalise(abs.iter().map(|a| (a + 1e-8).powf(alpha)).collect())
}

fn normalise(w: Vec<f64>) -> Vec<f64> {
    let z: f64 = w.iter().sum();
    if z > 0.0 && z.is_finite() { w.into_iter().map(|x| x / z).collect() } else { vec![1.0 / w.len() as f64; w.len()] }
}

/// Index whose cumulative weight first exceeds `u·total`, skipping zero weights (rounding-safe).
fn pick(weights: &[f64], u: f64) -> usize {
    let total: f64 = weights.iter().sum();
    let target = u * total;
    let mut acc = 0.0;
    let mut last = 0;
    for (i, &w) in weights.iter().enumerate() {
        if w > 0.0 {
            acc += w;
            last = i;
            if target < acc {
                return i;
            }
        }
    }
    last
}

fn draw_with_replacement(weights: &[f64], k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    (0..k).map(|_| pick(weights, rng.random::<f64>())).collect()
}

/// Successive draws, each removing the drawn index (the scheme `torch.multinomial` uses without replacement).
fn draw_without_replacement(weights: &[f64], k: usize, rng: &mut ChaCha8Rng) -> Vec<usize> {
    let mut left = weights.to_vec();
    let mut out = Vec::with_capacity(k);
    for _ in 0..k.min(left.len()) {
        if left.iter().all(|&w| w <= 0.0) {
            // Only zero-weight entries remain (underflow): continue uniformly over the unpicked ones.
            for (i, w) in left.iter_mut().enumerate() {
                if !out.contains(&i) {
                    *w = 1.0;
                }
            }
        }
        let i = pick(&left, rng.random::<f64>());
        left[i] = 0.0;
        out.push(i);
    }
    out
}

/// Per-sequence advantage as the released code computes it before PAD: `Σ_t A_t·m_t / (Σ_t m_t + 1e-8)`
/// (`pad_normalize_by_length: true`) or `Σ_t A_t·m_t`, for token advantages and mask `[B, T]`.
pub fn sequence_advantages(advantages: &Tensor, mask: &Tensor, normalize_by_length: bool) -> Result<Vec<f64>> {
    ensure!(
        advantages.size() == mask.size() && mask.dim() == 2,
        "advantages {:?} and response mask {:?} must both be [batch, response_len]",
        advantages.size(),
        mask.size()
    );
    let mask = mask.to_kind(Kind::Float);
    let sums = (advantages.to_kind(Kind::Float) * &mask).sum_dim_intlist(-1, false, Kind::Float);
    let seq = if normalize_by_length { sums / (mask.sum_dim_intlist(-1, false, Kind::Float) + 1e-8) } else { sums };
    Ok(Vec::<f64>::try_from(&seq.to_device(tch::Device::Cpu))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// n = 8, k correct, unbiased std (papers_spec §2.8).
    fn group(k_correct: usize) -> Vec<f64> {
        let n = 8.0;
        let p = k_correct as f64 / n;
        let std = (n * p * (1.0 - p) / (n - 1.0)).sqrt();
        (0..8).map(|i| if i < k_correct { (1.0 - p) / std } else { -p / std }).collect()
    }

    #[test]
    fn released_code_drops_the_lone_correct_answer() {
        let adv = group(1);
        assert!((adv[0] - 2.47487).abs() < 1e-4 && (adv[1] + 0.35355).abs() < 1e-4);
        let sel = Pad::released_code().select(&adv, 0, 7).unwrap();
        assert_eq!((sel.effective, sel.selected, sel.fell_back), (7, 12, false));
        assert!(sel.indices.iter().all(|&i| (1..8).contains(&i)), "{:?}", sel.indices);
        let w = power_weights(&adv[1..].iter().map(|a| a.abs()).collect::<Vec<_>>(), 1.5);
        assert!(w.iter().all(|&p| (p - 1.0 / 7.0).abs() < 1e-12), "{w:?}");
        // k = 4 keeps both outcomes (|A| = 0.9354 < 0.97).
        assert_eq!(Pad::released_code().select(&group(4), 0, 7).unwrap().effective, 8);
    }

    #[test]
    fn released_code_falls_back_and_is_seeded() {
        let sel = Pad::released_code().select(&[0.0, 0.0, 2.0], 0, 1).unwrap();
        assert_eq!((sel.indices, sel.effective, sel.fell_back), (vec![0, 1, 2], 0, true));
        let adv = [0.1, -0.5, 0.9, 0.96, 0.2, -0.04];
        let a = Pad::released_code().select(&adv, 0, 42).unwrap();
        assert_eq!(a, Pad::released_code().select(&adv, 3, 42).unwrap());
        assert_ne!(a.indices, Pad::released_code().select(&adv, 0, 43).unwrap().indices);
        assert_eq!(a.selected, 9);
        let no_repl = Pad::ReleasedCode { t_low: 0.03, t_high: 0.97, alpha: 1.5, ratio: 1.5, replacement: false };
        let b = no_repl.select(&adv, 0, 42).unwrap();
        let mut sorted = b.indices.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3, 4, 5]);
    }

    #[test]
    fn released_code_weights_follow_power_law() {
        // Two effective sequences with |A| 0.2 and 0.8: P(second) = 0.8^1.5 / (0.2^1.5 + 0.8^1.5) = 8/9.
        let (mut hits, mut total) = (0usize, 0usize);
        for seed in 0..200 {
            let sel = Pad::released_code().select(&[0.2, -0.8], 0, seed).unwrap();
            hits += sel.indices.iter().filter(|&&i| i == 1).count();
            total += sel.selected;
        }
        let p = hits as f64 / total as f64;
        assert!((p - 8.0 / 9.0).abs() < 0.04, "{p}");
    }

    #[test]
    fn paper_variant_thresholds_budget_and_softmax() {
        let pad = Pad::Paper { t_low: 0.1, t_high: 2.0, rho: 0.5, tau: TauSchedule::paper(100) };
        let adv = [0.05, 0.1, -2.0, 2.5, 0.7, -1.2, 0.0, 0.3];
        let sel = pad.select(&adv, 0, 9).unwrap();
        assert_eq!((sel.effective, sel.selected), (5, 4)); // ⌈0.5·8⌉ = 4 of E = {1, 2, 4, 5, 7} (inclusive)
        let mut seen = sel.indices.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 4);
        assert!(seen.iter().all(|i| [1, 2, 4, 5, 7].contains(i)));
        let small =
            Pad::Paper { t_low: 0.1, t_high: 2.0, rho: 2.0, tau: TauSchedule::paper(100) }.select(&adv, 0, 9).unwrap();
        assert_eq!(small.selected, 5); // min(⌈ρN⌉, |E|)
        let empty = pad.select(&[0.0, 3.0], 0, 9).unwrap();
        assert_eq!((empty.indices.len(), empty.effective, empty.fell_back), (0, 0, false));
        assert!((TauSchedule::paper(100).tau_at(50) - 0.65).abs() < 1e-12);
        assert_eq!(TauSchedule::paper(100).tau_at(1000), 0.3);
        let w = softmax_weights(&[0.5, 1.0], 0.3);
        let expect = (1.0f64 / 0.3).exp() / ((0.5f64 / 0.3).exp() + (1.0f64 / 0.3).exp());
        assert!((w[1] - expect).abs() < 1e-12);
        // Empirically: first draw takes the larger |A| with that probability.
        let one = Pad::Paper { t_low: 0.1, t_high: 2.0, rho: 0.5, tau: TauSchedule::Constant { tau: 0.3 } };
        let hits = (0..400).filter(|&s| one.select(&[0.5, -1.0], 0, s).unwrap().indices == [1usize]).count();
        assert!((hits as f64 / 400.0 - expect).abs() < 0.06, "{hits}");
    }

    #[test]
    fn invalid_settings_and_sequence_advantages() {
        assert!(Pad::Paper { t_low: 0.0, t_high: 1.0, rho: 1.0, tau: TauSchedule::paper(10) }.validate().is_err());
        assert!(
            Pad::Paper { t_low: 0.1, t_high: 1.0, rho: 1.0, tau: TauSchedule::Constant { tau: 0.0 } }
                .validate()
                .is_err()
        );
        assert!(Pad::released_code().select(&[f64::NAN], 0, 0).is_err());
        let adv = Tensor::from_slice(&[0.5f32, 0.5, 0.0, -2.0, 0.0, 0.0]).view([2, 3]);
        let mask = Tensor::from_slice(&[1f32, 1., 0., 1., 0., 0.]).view([2, 3]);
        let v = sequence_advantages(&adv, &mask, true).unwrap();
        assert!((v[0] - 0.5).abs() < 1e-6 && (v[1] + 2.0).abs() < 1e-6);
        assert_eq!(sequence_advantages(&adv, &mask, false).unwrap(), vec![1.0, -2.0]);
        assert!(sequence_advantages(&adv, &mask.narrow(1, 0, 2), true).is_err());
    }
}
