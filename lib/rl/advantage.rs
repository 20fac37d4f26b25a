//! Outcome advantages for GRPO-family training, one scalar per response broadcast to its tokens.
//!
//! Implements:
//! - GRPO's group z-score `A_i = (s_i − mean_g(s)) / (std_g(s) + ε)`, the advantage inside Vision-R1 Eq. 1–2
//!   and ReVisual-R1 Eq. 2–3 (DeepSeekMath §4.1.2, outcome supervision), as EasyR1 605e106
//!   `compute_grpo_outcome_advantage` and verl 0.9.1 `core_algos.compute_grpo_outcome_advantage` compute it
//!   (papers_spec §0.2 step 5): `s_i` is the sum of the token-level rewards, std is `torch.std` (unbiased,
//!   N−1), ε = 1e-6, then `A_i · response_mask`.
//! - Dr.GRPO (Liu et al., arXiv 2503.20783): the same without the division by std (verl
//!   `norm_adv_by_std_in_grpo=False`).
//! - The zero-variance-group fraction (groups whose rewards are all equal give no gradient).
//!
//! Named choices (where the references differ):
//! - Size-1 groups ([`SingletonGroup`]): EasyR1 605e106 and verl give a size-1 group mean 0 / std 1; the
//!   ReVisual fork asserts `rollout.n > 1`.
//! - Equal-reward groups ([`ZeroVarianceGroup`]): the references compute the group mean in float32 with
//!   torch's reduction, which for equal but non-dyadic rewards leaves a residue (seven rewards of 0.3:
//!   mean − 0.3 = 3e-8, std = 3e-8, so every member gets A ≈ 0.029 instead of 0). `TorchNumerics` reproduces
//!   this bit for bit (the group statistics use the same libtorch kernels on the same float32 values);
//!   `ExactZero` gives such groups exactly 0, as papers_spec §4 states. With binary rewards both agree.
//!
//! Deliberate deviations: none in `TorchNumerics` mode. Group statistics are always computed on the CPU in
//! float32 (the references do the same on the driver), whatever device the mask lives on.
use std::collections::HashMap;

use anyhow::{Result, bail, ensure};
use tch::{Device, Kind, Tensor};

/// How a group's rewards become advantages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Estimator {
    /// GRPO: `(s − mean) / (std + eps)` with unbiased std. EasyR1 and verl use `eps = 1e-6`.
    Grpo { eps: f64 },
    /// Dr.GRPO: `s − mean`, no std normalisation.
    DrGrpo,
}

/// What a group with a single response gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingletonGroup {
    /// EasyR1 605e106 and verl: mean 0 and std 1, so `A = s / (1 + eps)` (GRPO) or `A = s` (Dr.GRPO).
    ZeroMeanUnitStd,
    /// ReVisual fork: an error (`assert len > 1, "GRPO needs rollout.n > 1."`).
    Reject,
}

/// What a group whose rewards are all equal gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroVarianceGroup {
    /// Whatever float32 torch arithmetic gives (0 for dyadic rewards such as 0/1, a residue otherwise).
    TorchNumerics,
    /// Exactly 0.
    ExactZero,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdvantageConfig {
    pub estimator: Estimator,
    pub singleton: SingletonGroup,
    pub zero_variance: ZeroVarianceGroup,
}

impl Default for AdvantageConfig {
    /// EasyR1 605e106 GRPO, bit for bit.
    fn default() -> Self {
        Self {
            estimator: Estimator::Grpo { eps: 1e-6 },
            singleton: SingletonGroup::ZeroMeanUnitStd,
            zero_variance: ZeroVarianceGroup::TorchNumerics,
        }
    }
}

/// Counts over the groups of one batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Distinct group ids.
    pub groups: usize,
    /// Groups with one response.
    pub singleton_groups: usize,
    /// Groups with at least two responses whose rewards are all equal.
    pub zero_variance_groups: usize,
}

impl GroupStats {
    /// `zero_variance_groups / (groups − singleton_groups)`, 0 when there is no group of two or more.
    pub fn zero_variance_fraction(&self) -> f64 {
        let multi = self.groups - self.singleton_groups;
        if multi == 0 { 0.0 } else { self.zero_variance_groups as f64 / multi as f64 }
    }
}

impl Estimator {
    /// Advantages of one group's members from its float32 scores and statistics (0-d tensors).
    fn apply(&self, scores: &Tensor, mean: &Tensor, std: &Tensor) -> Tensor {
        match *self {
            Estimator::Grpo { eps } => z_score(scores, mean, std, eps),
            Estimator::DrGrpo => centered(scores, mean),
        }
    }
}

fn z_score(scores: &Tensor, mean: &Tensor, std: &Tensor, eps: f64) -> Tensor {
    (scores - mean) / (std + eps)
}

fn centered(scores: &Tensor, mean: &Tensor) -> Tensor {
    scores - mean
}

/// Sequence scores `s_i = Σ_t r_{i,t}` from token-level rewards `[B, T]` (the references sum every position;
/// rewards live at the last valid token).
pub fn outcome_scores(token_rewards: &Tensor) -> Result<Tensor> {
    ensure!(
        token_rewards.dim() == 2,
        "token rewards must be [batch, response_len], got shape {:?}; place each reward at its last valid token",
        token_rewards.size()
    );
    Ok(token_rewards.sum_dim_intlist(-1, false, Kind::Float))
}

/// Per-sequence advantages `[B]` (float32, CPU) from sequence scores `[B]` and one group id per sequence
/// (the prompt uid; members of a group need not be contiguous).
pub fn sequence_advantages(
    cfg: &AdvantageConfig,
    scores: &Tensor,
    group_ids: &[usize],
) -> Result<(Tensor, GroupStats)> {
    ensure!(scores.dim() == 1, "sequence scores must be 1-D [batch], got shape {:?}", scores.size());
    let n = scores.size()[0] as usize;
    ensure!(
        n == group_ids.len(),
        "{n} sequence scores but {} group ids; give one group id (prompt index) per response",
        group_ids.len()
    );
    if let Estimator::Grpo { eps } = cfg.estimator {
        ensure!(eps.is_finite() && eps >= 0.0, "GRPO eps must be finite and >= 0, got {eps}");
    }
    let scores = scores.to_device(Device::Cpu).to_kind(Kind::Float).contiguous();
    let values = Vec::<f32>::try_from(&scores)?;
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        bail!("reward of sequence {i} is {}; the reward function must return finite scores", values[i]);
    }
    // Groups in order of first appearance, members in batch order, as the references iterate.
    let mut order: Vec<usize> = Vec::new();
    let mut members: HashMap<usize, Vec<i64>> = HashMap::new();
    for (i, &g) in group_ids.iter().enumerate() {
        members
            .entry(g)
            .or_insert_with(|| {
                order.push(g);
                Vec::new()
            })
            .push(i as i64);
    }
    let mut out = vec![0f32; n];
    let mut stats = GroupStats { groups: order.len(), ..GroupStats::default() };
    for g in order {
        let idx = &members[&g];
        let group = scores.index_select(0, &Tensor::from_slice(idx));
        let (mean, std) = if idx.len() == 1 {
            stats.singleton_groups += 1;
            if cfg.singleton == SingletonGroup::Reject {
                bail!(
                    "group {g} has a single response; GRPO needs rollout.n > 1 (or use SingletonGroup::ZeroMeanUnitStd)"
                );
            }
            (Tensor::from(0f32), Tensor::from(1f32))
        } else {
            (group.mean(Kind::Float), group.std(true))
        };
        let first = values[idx[0] as usize];
        let equal = idx.len() > 1 && idx.iter().all(|&i| values[i as usize] == first);
        stats.zero_variance_groups += usize::from(equal);
        let adv = if equal && cfg.zero_variance == ZeroVarianceGroup::ExactZero {
            vec![0f32; idx.len()]
        } else {
            Vec::<f32>::try_from(&cfg.estimator.apply(&group, &mean, &std))?
        };
        for (&i, a) in idx.iter().zip(adv) {
            out[i as usize] = a;
        }
    }
    Ok((Tensor::from_slice(&out), stats))
}

/// `A_i · mask_{i,t}`: the sequence advantages `[B]` on every response token of `mask` `[B, T]`, in the mask's
/// device and float32.
pub fn broadcast(seq_advantages: &Tensor, mask: &Tensor) -> Result<Tensor> {
    ensure!(mask.dim() == 2, "response mask must be [batch, response_len], got shape {:?}", mask.size());
    ensure!(
        seq_advantages.size() == [mask.size()[0]],
        "advantages {:?} do not match the response mask {:?}; expected one advantage per sequence",
        seq_advantages.size(),
        mask.size()
    );
    Ok(seq_advantages.to_device(mask.device()).to_kind(Kind::Float).unsqueeze(-1) * mask.to_kind(Kind::Float))
}

/// The whole reference pipeline: token rewards `[B, T]` and response mask `[B, T]` to token advantages
/// `[B, T]` (what `compute_grpo_outcome_advantage` returns) plus the group counts.
pub fn token_advantages(
    cfg: &AdvantageConfig,
    token_rewards: &Tensor,
    mask: &Tensor,
    group_ids: &[usize],
) -> Result<(Tensor, GroupStats)> {
    ensure!(
        token_rewards.size() == mask.size(),
        "token rewards {:?} and response mask {:?} must have the same shape",
        token_rewards.size(),
        mask.size()
    );
    let (seq, stats) = sequence_advantages(cfg, &outcome_scores(token_rewards)?, group_ids)?;
    Ok((broadcast(&seq, mask)?, stats))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adv(cfg: &AdvantageConfig, scores: &[f32], ids: &[usize]) -> (Vec<f32>, GroupStats) {
        let (t, s) = sequence_advantages(cfg, &Tensor::from_slice(scores), ids).unwrap();
        (Vec::<f32>::try_from(&t).unwrap(), s)
    }

    #[test]
    fn one_correct_of_eight_matches_papers_spec_vector() {
        let mut r = [0f32; 8];
        r[0] = 1.0;
        let (a, s) = adv(&AdvantageConfig::default(), &r, &[7; 8]);
        assert!((a[0] - 2.47487).abs() < 1e-5, "{a:?}");
        assert!(a[1..].iter().all(|&x| (x + 0.35355).abs() < 1e-5), "{a:?}");
        assert_eq!(s, GroupStats { groups: 1, singleton_groups: 0, zero_variance_groups: 0 });
    }

    #[test]
    fn equal_rewards_give_zero_and_count_as_zero_variance() {
        let (a, s) = adv(&AdvantageConfig::default(), &[1.0; 4], &[0; 4]);
        assert_eq!(a, vec![0.0; 4]);
        assert_eq!(s.zero_variance_fraction(), 1.0);
        // 0.3 × 7: torch numerics leave a residue (A ≈ 0.029), ExactZero removes it.
        let (a, _) = adv(&AdvantageConfig::default(), &[0.3; 7], &[0; 7]);
        assert!(a.iter().all(|&x| x > 0.02 && x < 0.04), "{a:?}");
        let exact = AdvantageConfig { zero_variance: ZeroVarianceGroup::ExactZero, ..AdvantageConfig::default() };
        let (a, _) = adv(&exact, &[0.3; 7], &[0; 7]);
        assert_eq!(a, vec![0.0; 7]);
    }

    #[test]
    fn singleton_groups_follow_the_named_choice() {
        let (a, s) = adv(&AdvantageConfig::default(), &[0.7, 1.0, 0.0], &[5, 9, 9]);
        assert!((a[0] - 0.7 / (1.0 + 1e-6)).abs() < 1e-7);
        assert_eq!((s.groups, s.singleton_groups, s.zero_variance_groups), (2, 1, 0));
        assert_eq!(s.zero_variance_fraction(), 0.0);
        let reject = AdvantageConfig { singleton: SingletonGroup::Reject, ..AdvantageConfig::default() };
        let err = sequence_advantages(&reject, &Tensor::from_slice(&[0.7f32, 1.0, 0.0]), &[5, 9, 9]).unwrap_err();
        assert!(err.to_string().contains("group 5"), "{err}");
    }

    #[test]
    fn dr_grpo_only_centres() {
        let cfg = AdvantageConfig { estimator: Estimator::DrGrpo, ..AdvantageConfig::default() };
        let (a, _) = adv(&cfg, &[1.0, 0.0, 0.0, 3.0], &[1, 1, 2, 2]);
        assert_eq!(a, vec![0.5, -0.5, -1.5, 1.5]);
    }

    #[test]
    fn broadcast_masks_and_rejects_bad_input() {
        let mask = Tensor::from_slice(&[1f32, 1., 0., 1., 0., 0.]).view([2, 3]);
        let a = broadcast(&Tensor::from_slice(&[2f32, -1.]), &mask).unwrap();
        assert_eq!(Vec::<f32>::try_from(&a.view([-1])).unwrap(), vec![2., 2., 0., -1., 0., 0.]);
        assert!(broadcast(&Tensor::from_slice(&[2f32]), &mask).is_err());
        let nan = sequence_advantages(&AdvantageConfig::default(), &Tensor::from_slice(&[f32::NAN, 1.]), &[0, 0]);
        assert!(nan.unwrap_err().to_string().contains("sequence 0"));
        assert!(sequence_advantages(&AdvantageConfig::default(), &Tensor::from_slice(&[1f32]), &[0, 0]).is_err());
    }
}
