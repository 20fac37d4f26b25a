//! The actor's loss for one micro-batch: a clipped policy-gradient surrogate, aggregated over tokens, plus
//! optional KL-to-reference and entropy terms (papers_spec §0.2 step 6, §2.5, §2.6).
//!
//! Implements, with per-token ratio `r = exp(log π_θ − log π_old)` and advantage `A`:
//! - PPO clip (Schulman et al. 2017, arXiv 1707.06347, Eq. 7) with DAPO's clip-higher (Yu et al. 2025,
//!   arXiv 2503.14476, §3.1: separate ε_low/ε_high): `max(−A·r, −A·clip(r, 1−ε_low, 1+ε_high))`.
//!   EasyR1 605e106 `compute_policy_loss` is ε_low = ε_high = 0.2.
//! - Dual-clip PPO (Ye et al. 2020, arXiv 1912.09729): for A < 0 the loss is additionally capped at `−c·A`.
//!   This is verl 0.9.1 `compute_policy_loss_vanilla` (`clip_ratio_c` = 3.0) and the ReVisual fork's
//!   `compute_policy_loss` (`clip_ratio_dual` = 3.0, ε 0.2/0.25).
//! - The log-ratio clamp before `exp` as a named option ([`LogRatioClamp`]): none (EasyR1 605e106), ±20 (verl
//!   0.9.1), or ReVisual's pre-clip `[ln 1e-3, ln 1e3]`.
//! - Loss aggregation ([`Aggregation`]), matching verl `agg_loss`: EasyR1's micro-batch token-mean, DAPO's
//!   global token-mean, the GRPO paper's sequence-mean of token-means (DeepSeekMath Eq. 3; Vision-R1 Eq. 1–2
//!   and ReVisual-R1 Eq. 2–3 write the same `1/G Σ_i 1/|o_i| Σ_t`), and Dr.GRPO's constant-length
//!   normalisation (Liu et al. 2025, arXiv 2503.20783; verl `seq-mean-token-sum-norm`).
//! - The total `pg + β·KL − c_ent·H` ([`ActorLoss`]); KL estimators in kl.rs, entropy in entropy.rs.
//! - Metrics: clip fraction (`pg_clipfrac`, fraction of tokens where the clipped term wins), the dual-clip
//!   fraction (`pg_clipfrac_lower`) and `ppo_kl = mean(log π_old − log π_θ)`, all micro-batch token-means as
//!   the references log them.
//!
//! Every aggregation returns this micro-batch's *share* of the mini-batch objective: summing the returned
//! losses (and their gradients) over the micro-batches of a mini-batch gives the mini-batch loss. For
//! EasyR1's token-mean this is `masked_mean / gradient_accumulation`, exactly what its actor backpropagates.
//!
//! Deliberate deviations: the ReVisual fork computes the clipped ratio as `exp(clamp(log r, ln(1−ε_low),
//! ln(1+ε_high)))`; here it is `clamp(r, 1−ε_low, 1+ε_high)` as in EasyR1/verl (equal up to one float32
//! rounding). EasyR1 divides the summed loss by the accumulation count; here each term is divided (same
//! value up to rounding). verl's other policy losses (GSPO, SAPO, CISPO, clip-cov, ...) are not implemented.
use anyhow::{Result, ensure};
use tch::{Kind, Tensor};

use crate::rl::entropy::{EntropyEstimator, EntropySchedule};
use crate::rl::kl::KlEstimator;

/// Clamp of `log π_θ − log π_old` before the exponential.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LogRatioClamp {
    /// EasyR1 605e106: no clamp.
    None,
    /// Clamp the log-ratio to `[lo, hi]`: ±20 in verl 0.9.1 ([`LogRatioClamp::VERL`]), `[ln 1e-3, ln 1e3]` in
    /// the ReVisual fork ([`LogRatioClamp::revisual`]).
    Range { lo: f64, hi: f64 },
}

impl LogRatioClamp {
    pub const VERL: Self = LogRatioClamp::Range { lo: -20.0, hi: 20.0 };

    /// The ReVisual fork's pre-clip: ratio within [1e-3, 1e3].
    pub fn revisual() -> Self {
        LogRatioClamp::Range { lo: 1e-3f64.ln(), hi: 1e3f64.ln() }
    }

    fn apply(&self, log_ratio: Tensor) -> Tensor {
        match *self {
            LogRatioClamp::None => log_ratio,
            LogRatioClamp::Range { lo, hi } => log_ratio.clamp(lo, hi),
        }
    }
}

/// The per-token policy-gradient surrogate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Surrogate {
    /// PPO clip; `eps_low != eps_high` is DAPO's clip-higher.
    PpoClip { eps_low: f64, eps_high: f64 },
    /// Dual-clip PPO: as `PpoClip`, and for A < 0 the loss never exceeds `−c·A` (`c > 1`).
    DualClip { eps_low: f64, eps_high: f64, c: f64 },
}

/// Per-token surrogate loss and which tokens each clip bound.
struct SurrogateOut {
    loss: Tensor,
    clipped: Tensor,
    clipped_lower: Option<Tensor>,
}

impl Surrogate {
    /// EasyR1 605e106: symmetric ε = 0.2, no dual clip.
    pub const EASYR1: Self = Surrogate::PpoClip { eps_low: 0.2, eps_high: 0.2 };
    /// ReVisual fork: ε_low 0.2, ε_high 0.25, dual clip 3.0 (use with [`LogRatioClamp::revisual`]).
    pub const REVISUAL: Self = Surrogate::DualClip { eps_low: 0.2, eps_high: 0.25, c: 3.0 };

    pub fn validate(&self) -> Result<()> {
        let (eps_low, eps_high) = match *self {
            Surrogate::PpoClip { eps_low, eps_high } => (eps_low, eps_high),
            Surrogate::DualClip { eps_low, eps_high, c } => {
                ensure!(c.is_finite() && c > 1.0, "dual-clip c must be a finite number > 1 (verl asserts it), got {c}");
                (eps_low, eps_high)
            }
        };
        ensure!((0.0..1.0).contains(&eps_low), "clip eps_low must be in [0, 1) so that 1 - eps_low > 0, got {eps_low}");
        ensure!(eps_high.is_finite() && eps_high >= 0.0, "clip eps_high must be finite and >= 0, got {eps_high}");
        Ok(())
    }

    fn per_token(&self, ratio: &Tensor, advantages: &Tensor) -> SurrogateOut {
        match *self {
            Surrogate::PpoClip { eps_low, eps_high } => ppo_clip(ratio, advantages, eps_low, eps_high),
            Surrogate::DualClip { eps_low, eps_high, c } => dual_clip(ratio, advantages, eps_low, eps_high, c),
        }
    }
}

fn ppo_clip(ratio: &Tensor, advantages: &Tensor, eps_low: f64, eps_high: f64) -> SurrogateOut {
    let neg_adv = -advantages;
    let unclipped = &neg_adv * ratio;
    let clipped = &neg_adv * ratio.clamp(1.0 - eps_low, 1.0 + eps_high);
    let was_clipped = clipped.gt_tensor(&unclipped);
    SurrogateOut { loss: unclipped.maximum(&clipped), clipped: was_clipped, clipped_lower: None }
}

fn dual_clip(ratio: &Tensor, advantages: &Tensor, eps_low: f64, eps_high: f64, c: f64) -> SurrogateOut {
    let SurrogateOut { loss: ppo, clipped, .. } = ppo_clip(ratio, advantages, eps_low, eps_high);
    let cap = -advantages * c;
    let negative = advantages.lt(0.0);
    let lower = ppo.gt_tensor(&cap).logical_and(&negative);
    let loss = cap.minimum(&ppo).where_self(&negative, &ppo);
    SurrogateOut { loss, clipped, clipped_lower: Some(lower) }
}

/// Totals of the mini-batch (one optimizer step) that the current micro-batch belongs to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MiniBatchScale {
    /// Micro-batches in the mini-batch (EasyR1's gradient-accumulation count).
    pub micro_batches: usize,
    /// Response tokens (mask sum) in the whole mini-batch.
    pub tokens: f64,
    /// Sequences with at least one response token in the whole mini-batch.
    pub sequences: f64,
}

impl MiniBatchScale {
    /// Totals from the response masks of every micro-batch of the mini-batch.
    pub fn of(masks: &[&Tensor]) -> Result<Self> {
        ensure!(!masks.is_empty(), "a mini-batch needs at least one micro-batch");
        let (mut tokens, mut sequences) = (0.0, 0.0);
        for m in masks {
            ensure!(m.dim() == 2, "response mask must be [batch, response_len], got shape {:?}", m.size());
            let m = m.to_kind(Kind::Float);
            tokens += m.sum(Kind::Float).double_value(&[]);
            sequences += m.sum_dim_intlist(-1, false, Kind::Float).gt(0.0).sum(Kind::Float).double_value(&[]);
        }
        Ok(Self { micro_batches: masks.len(), tokens, sequences })
    }

    /// A mini-batch made of this one micro-batch.
    pub fn single(mask: &Tensor) -> Result<Self> {
        Self::of(&[mask])
    }
}

/// How a `[B, T]` per-token loss becomes this micro-batch's scalar share of the mini-batch loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    /// EasyR1 (both papers): token-mean within the micro-batch, divided by the number of micro-batches.
    /// Short and long responses are weighted differently depending on what shares their micro-batch.
    MicroBatchTokenMean,
    /// DAPO: token-sum divided by the mini-batch's token count (verl `token-mean` with a global count).
    GlobalTokenMean,
    /// GRPO paper: token-mean per sequence, then mean over the mini-batch's non-empty sequences.
    SeqMeanTokenMean,
    /// Dr.GRPO: token-sum per sequence divided by a constant (the generation budget), then mean over the
    /// mini-batch's non-empty sequences (verl `seq-mean-token-sum-norm` with `loss_scale_factor = len`).
    ConstantLength { len: usize },
}

impl Aggregation {
    pub fn validate(&self) -> Result<()> {
        if let Aggregation::ConstantLength { len } = self {
            ensure!(*len > 0, "Dr.GRPO constant length must be > 0 (use the max response length)");
        }
        Ok(())
    }

    /// This micro-batch's share of the mini-batch loss (differentiable).
    pub fn aggregate(&self, loss_mat: &Tensor, mask: &Tensor, scale: &MiniBatchScale) -> Result<Tensor> {
        ensure!(
            loss_mat.size() == mask.size() && mask.dim() == 2,
            "per-token loss {:?} and response mask {:?} must both be [batch, response_len]",
            loss_mat.size(),
            mask.size()
        );
        ensure!(scale.micro_batches > 0, "mini-batch scale has zero micro-batches");
        let mask = mask.to_kind(Kind::Float);
        let needs = |total: f64, what: &str| {
            ensure!(total > 0.0, "mini-batch has no {what}; cannot aggregate the loss (is every response empty?)");
            Ok(())
        };
        Ok(match *self {
            Aggregation::MicroBatchTokenMean => micro_batch_token_mean(loss_mat, &mask, scale.micro_batches),
            Aggregation::GlobalTokenMean => {
                needs(scale.tokens, "response tokens")?;
                global_token_mean(loss_mat, &mask, scale.tokens)
            }
            Aggregation::SeqMeanTokenMean => {
                needs(scale.sequences, "non-empty responses")?;
                seq_mean_token_mean(loss_mat, &mask, scale.sequences)
            }
            Aggregation::ConstantLength { len } => {
                needs(scale.sequences, "non-empty responses")?;
                constant_length(loss_mat, &mask, scale.sequences, len as f64)
            }
        })
    }
}

/// `values` where the mask is set, 0 elsewhere (NaN outside the mask does not leak in), times the mask.
fn masked(values: &Tensor, mask: &Tensor) -> Tensor {
    values.where_scalarother(&mask.ne(0.0), 0.0) * mask
}

/// Sum over the masked elements divided by (mask sum + 1e-8): the references' `masked_mean`, 0 when empty.
pub fn masked_mean(values: &Tensor, mask: &Tensor) -> Tensor {
    let mask = mask.to_kind(Kind::Float);
    masked(values, &mask).sum(Kind::Float) / (mask.sum(Kind::Float) + 1e-8)
}

fn micro_batch_token_mean(loss_mat: &Tensor, mask: &Tensor, micro_batches: usize) -> Tensor {
    masked_mean(loss_mat, mask) / micro_batches as f64
}

fn global_token_mean(loss_mat: &Tensor, mask: &Tensor, tokens: f64) -> Tensor {
    masked(loss_mat, mask).sum(Kind::Float) / tokens
}

fn seq_mean_token_mean(loss_mat: &Tensor, mask: &Tensor, sequences: f64) -> Tensor {
    let lengths = mask.sum_dim_intlist(-1, false, Kind::Float);
    let seq_losses = masked(loss_mat, mask).sum_dim_intlist(-1, false, Kind::Float) / (&lengths + 1e-8);
    masked(&seq_losses, &lengths.gt(0.0).to_kind(Kind::Float)).sum(Kind::Float) / sequences
}

fn constant_length(loss_mat: &Tensor, mask: &Tensor, sequences: f64, len: f64) -> Tensor {
    let lengths = mask.sum_dim_intlist(-1, false, Kind::Float);
    let seq_sums = masked(loss_mat, mask).sum_dim_intlist(-1, false, Kind::Float);
    masked(&seq_sums, &lengths.gt(0.0).to_kind(Kind::Float)).sum(Kind::Float) / sequences / len
}

/// The tensors of one micro-batch, all `[B, T]` over response tokens.
pub struct PolicyInputs<'a> {
    /// `log π_θ(a_t)` under the current parameters (carries the graph).
    pub log_probs: &'a Tensor,
    /// `log π_old(a_t)` recomputed before the update (no graph).
    pub old_log_probs: &'a Tensor,
    /// Token advantages, already multiplied by the mask (advantage.rs).
    pub advantages: &'a Tensor,
    /// 1 on response tokens, 0 on padding.
    pub response_mask: &'a Tensor,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PolicyMetrics {
    /// Fraction of response tokens where the clipped term was used (`pg_clipfrac`).
    pub clip_frac: f64,
    /// Fraction of response tokens where the dual clip bound (`pg_clipfrac_lower`; 0 without dual clip).
    pub clip_frac_lower: f64,
    /// `mean(log π_old − log π_θ)` after the log-ratio clamp (`ppo_kl`).
    pub ppo_kl: f64,
}

/// Surrogate, log-ratio clamp and aggregation: the policy-gradient part of the actor loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PolicyLoss {
    pub surrogate: Surrogate,
    pub log_ratio_clamp: LogRatioClamp,
    pub aggregation: Aggregation,
}

impl PolicyLoss {
    /// EasyR1 605e106 as Vision-R1 used it.
    pub const EASYR1: Self = PolicyLoss {
        surrogate: Surrogate::EASYR1,
        log_ratio_clamp: LogRatioClamp::None,
        aggregation: Aggregation::MicroBatchTokenMean,
    };

    /// The ReVisual fork: clip 0.2/0.25, dual clip 3, pre-clip [1e-3, 1e3], micro-batch token-mean.
    pub fn revisual() -> Self {
        PolicyLoss {
            surrogate: Surrogate::REVISUAL,
            log_ratio_clamp: LogRatioClamp::revisual(),
            aggregation: Aggregation::MicroBatchTokenMean,
        }
    }

    pub fn validate(&self) -> Result<()> {
        self.surrogate.validate()?;
        self.aggregation.validate()?;
        if let LogRatioClamp::Range { lo, hi } = self.log_ratio_clamp {
            ensure!(lo < hi, "log-ratio clamp needs lo < hi, got [{lo}, {hi}]");
        }
        Ok(())
    }

    /// This micro-batch's share of the policy-gradient loss (differentiable in `log_probs`) and its metrics.
    pub fn compute(&self, x: &PolicyInputs, scale: &MiniBatchScale) -> Result<(Tensor, PolicyMetrics)> {
        self.validate()?;
        let shape = x.response_mask.size();
        ensure!(shape.len() == 2, "response mask must be [batch, response_len], got shape {shape:?}");
        for (name, t) in [("log-probs", x.log_probs), ("old log-probs", x.old_log_probs), ("advantages", x.advantages)]
        {
            ensure!(t.size() == shape, "{name} have shape {:?} but the response mask is {shape:?}", t.size());
        }
        let mask = x.response_mask.to_kind(Kind::Float);
        let advantages = x.advantages.to_kind(Kind::Float);
        let finite = masked(&advantages.isfinite().to_kind(Kind::Float), &mask).sum(Kind::Float);
        ensure!(
            finite.double_value(&[]) == mask.sum(Kind::Float).double_value(&[]),
            "advantages contain NaN or inf on response tokens; check the rewards and the advantage estimator"
        );
        let log_ratio =
            self.log_ratio_clamp.apply(x.log_probs.to_kind(Kind::Float) - x.old_log_probs.to_kind(Kind::Float));
        let ratio = log_ratio.exp();
        let out = self.surrogate.per_token(&ratio, &advantages);
        let loss = self.aggregation.aggregate(&out.loss, &mask, scale)?;
        let frac = |t: &Tensor| masked_mean(&t.to_kind(Kind::Float), &mask).double_value(&[]);
        let metrics = PolicyMetrics {
            clip_frac: frac(&out.clipped),
            clip_frac_lower: out.clipped_lower.as_ref().map_or(0.0, frac),
            ppo_kl: tch::no_grad(|| masked_mean(&-&log_ratio, &mask).double_value(&[])),
        };
        Ok((loss, metrics))
    }
}

/// KL to the reference policy as a loss term, `coef · aggregate(estimator)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KlTerm {
    pub estimator: KlEstimator,
    pub coef: f64,
}

/// Entropy bonus, `− coef(step) · aggregate(estimator)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntropyTerm {
    pub estimator: EntropyEstimator,
    pub schedule: EntropySchedule,
}

/// Everything [`ActorLoss::compute`] needs for one micro-batch.
pub struct ActorInputs<'a> {
    pub policy: PolicyInputs<'a>,
    /// `log π_ref(a_t)`, required when a KL term is configured.
    pub ref_log_probs: Option<&'a Tensor>,
    /// Response logits `[B, T, V]`, required by [`EntropyEstimator::FromLogits`].
    pub logits: Option<&'a Tensor>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ActorMetrics {
    pub policy: PolicyMetrics,
    /// This micro-batch's share of the policy-gradient loss.
    pub pg_loss: f64,
    /// Token-mean of the KL estimate over the micro-batch, when a KL term is configured.
    pub kl: Option<f64>,
    /// Token-mean of the entropy estimate over the micro-batch, when an entropy term is configured.
    pub entropy: Option<f64>,
    /// The entropy coefficient used (0 without an entropy term).
    pub entropy_coef: f64,
}

/// The full actor loss: `pg + β·KL − c(step)·H`, each term aggregated the same way.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActorLoss {
    pub policy: PolicyLoss,
    pub kl: Option<KlTerm>,
    pub entropy: Option<EntropyTerm>,
}

impl ActorLoss {
    pub fn validate(&self) -> Result<()> {
        self.policy.validate()?;
        if let Some(kl) = &self.kl {
            ensure!(kl.coef.is_finite() && kl.coef >= 0.0, "KL coefficient must be finite and >= 0, got {}", kl.coef);
        }
        if let Some(ent) = &self.entropy {
            ent.schedule.validate()?;
        }
        Ok(())
    }

    /// This micro-batch's share of the actor loss at optimizer step `optimizer_step` (0-based; it only
    /// matters for an annealed entropy coefficient), and its metrics.
    pub fn compute(
        &self,
        x: &ActorInputs,
        scale: &MiniBatchScale,
        optimizer_step: u64,
    ) -> Result<(Tensor, ActorMetrics)> {
        self.validate()?;
        let (mut loss, policy) = self.policy.compute(&x.policy, scale)?;
        let mut metrics = ActorMetrics { policy, pg_loss: loss.double_value(&[]), ..ActorMetrics::default() };
        let mask = x.policy.response_mask;
        let agg = self.policy.aggregation;
        if let Some(kl) = &self.kl {
            let Some(reference) = x.ref_log_probs else {
                anyhow::bail!(
                    "a KL term is configured but no reference log-probs were given; compute them or drop the KL term"
                );
            };
            let per_token = kl.estimator.per_token(x.policy.log_probs, reference)?;
            loss += agg.aggregate(&per_token, mask, scale)? * kl.coef;
            metrics.kl = Some(tch::no_grad(|| masked_mean(&per_token, mask).double_value(&[])));
        }
        if let Some(ent) = &self.entropy {
            let per_token = ent.estimator.per_token(x.logits, x.policy.log_probs)?;
            let coef = ent.schedule.coef_at(optimizer_step);
            loss -= agg.aggregate(&per_token, mask, scale)? * coef;
            metrics.entropy = Some(tch::no_grad(|| masked_mean(&per_token, mask).double_value(&[])));
            metrics.entropy_coef = coef;
        }
        Ok((loss, metrics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(v: &[f32], shape: [i64; 2]) -> Tensor {
        Tensor::from_slice(v).view(shape)
    }

    /// Loss of one single-token sequence with the given log-ratio and advantage.
    fn one(p: &PolicyLoss, log_ratio: f32, adv: f32) -> (f64, PolicyMetrics) {
        let (logp, old, a, m) =
            (t(&[log_ratio - 1.0], [1, 1]), t(&[-1.0], [1, 1]), t(&[adv], [1, 1]), t(&[1.0], [1, 1]));
        let x = PolicyInputs { log_probs: &logp, old_log_probs: &old, advantages: &a, response_mask: &m };
        let (loss, metrics) = p.compute(&x, &MiniBatchScale::single(&m).unwrap()).unwrap();
        (loss.double_value(&[]), metrics)
    }

    #[test]
    fn clipped_objective_matches_papers_spec_formulas() {
        let dual = PolicyLoss { log_ratio_clamp: LogRatioClamp::None, ..PolicyLoss::revisual() };
        let ppo = PolicyLoss { surrogate: Surrogate::PpoClip { eps_low: 0.2, eps_high: 0.25 }, ..dual };
        for ratio in [0.05f64, 0.5, 0.79, 0.9, 1.0, 1.1, 1.3, 2.0, 4.0, 40.0] {
            let clipped = ratio.clamp(0.8, 1.25);
            for adv in [1.5f64, -0.7] {
                let (got, m) = one(&dual, ratio.ln() as f32, adv as f32);
                let expected =
                    if adv > 0.0 { -adv * ratio.min(1.25) } else { (-adv * ratio).max(-adv * clipped).min(-3.0 * adv) };
                assert!(
                    (got - expected).abs() < 1e-5 * expected.abs().max(1.0),
                    "r {ratio} A {adv}: {got} vs {expected}"
                );
                assert_eq!(m.clip_frac_lower, if adv < 0.0 && ratio > 3.0 { 1.0 } else { 0.0 });
                let (got, m) = one(&ppo, ratio.ln() as f32, adv as f32);
                let expected = (-adv * ratio).max(-adv * clipped);
                assert!(
                    (got - expected).abs() < 1e-5 * expected.abs().max(1.0),
                    "r {ratio} A {adv}: {got} vs {expected}"
                );
                assert_eq!(
                    m.clip_frac,
                    if -adv * clipped > -adv * ratio + 1e-9 { 1.0 } else { 0.0 },
                    "r {ratio} A {adv}"
                );
                assert_eq!(m.clip_frac_lower, 0.0);
            }
        }
    }

    #[test]
    fn revisual_preclip_bounds_the_ratio() {
        let p = PolicyLoss::revisual();
        // log-ratio −10 → ratio 1e-3 (not e^-10); A > 0 keeps the unclipped low ratio.
        let (loss, m) = one(&p, -10.0, 2.0);
        assert!((loss + 2.0 * 1e-3).abs() < 1e-7, "{loss}");
        assert!((m.ppo_kl - 1e3f64.ln()).abs() < 1e-5);
        let (loss, _) = one(&PolicyLoss { log_ratio_clamp: LogRatioClamp::None, ..p }, -10.0, 2.0);
        assert!((loss + 2.0 * (-10f64).exp()).abs() < 1e-8, "{loss}");
        // log-ratio +10 → ratio 1e3; A < 0 → the dual clip caps at −3A.
        let (loss, m) = one(&p, 10.0, -0.5);
        assert!((loss - 1.5).abs() < 1e-6, "{loss}");
        assert_eq!((m.clip_frac, m.clip_frac_lower), (0.0, 1.0));
    }

    #[test]
    fn micro_batch_shares_sum_to_the_mini_batch_loss() {
        let loss = t(&[1., 2., 3., 4., 5., 6., 7., 8., 9.], [3, 3]);
        let mask = t(&[1., 1., 1., 1., 0., 0., 0., 0., 0.], [3, 3]);
        let (l1, l2) = (loss.narrow(0, 0, 1), loss.narrow(0, 1, 2));
        let (m1, m2) = (mask.narrow(0, 0, 1), mask.narrow(0, 1, 2));
        let scale = MiniBatchScale::of(&[&m1, &m2]).unwrap();
        assert_eq!((scale.micro_batches, scale.tokens, scale.sequences), (2, 4.0, 2.0));
        let whole = MiniBatchScale::single(&mask).unwrap();
        let expect = [
            (Aggregation::MicroBatchTokenMean, (2.0 + 4.0) / 2.0),
            (Aggregation::GlobalTokenMean, 10.0 / 4.0),
            (Aggregation::SeqMeanTokenMean, (2.0 + 4.0) / 2.0),
            (Aggregation::ConstantLength { len: 5 }, (6.0 / 5.0 + 4.0 / 5.0) / 2.0),
        ];
        for (agg, value) in expect {
            let shares = agg.aggregate(&l1, &m1, &scale).unwrap() + agg.aggregate(&l2, &m2, &scale).unwrap();
            assert!((shares.double_value(&[]) - value).abs() < 1e-6, "{agg:?}");
            if agg != Aggregation::MicroBatchTokenMean {
                let one = agg.aggregate(&loss, &mask, &whole).unwrap().double_value(&[]);
                assert!((one - value).abs() < 1e-6, "{agg:?}");
            }
        }
        // Micro-batch token-mean of the whole batch weighs tokens, not micro-batches: 10 / 4.
        let mb = Aggregation::MicroBatchTokenMean.aggregate(&loss, &mask, &whole).unwrap().double_value(&[]);
        assert!((mb - 2.5).abs() < 1e-6);
    }

    #[test]
    fn invalid_settings_and_inputs_are_errors() {
        let bad = [
            Surrogate::DualClip { eps_low: 0.2, eps_high: 0.2, c: 1.0 },
            Surrogate::PpoClip { eps_low: 1.0, eps_high: 0.2 },
            Surrogate::PpoClip { eps_low: 0.2, eps_high: -0.1 },
        ];
        for s in bad {
            assert!(s.validate().is_err(), "{s:?}");
        }
        assert!(Aggregation::ConstantLength { len: 0 }.validate().is_err());
        let p = PolicyLoss::EASYR1;
        let m = t(&[1., 1.], [1, 2]);
        let (logp, nan) = (t(&[-1., -1.], [1, 2]), t(&[f32::NAN, 0.], [1, 2]));
        let x = PolicyInputs { log_probs: &logp, old_log_probs: &logp, advantages: &nan, response_mask: &m };
        let err = p.compute(&x, &MiniBatchScale::single(&m).unwrap()).unwrap_err();
        assert!(err.to_string().contains("NaN"), "{err}");
        let short = t(&[0.], [1, 1]);
        let x = PolicyInputs { log_probs: &logp, old_log_probs: &logp, advantages: &short, response_mask: &m };
        assert!(p.compute(&x, &MiniBatchScale::single(&m).unwrap()).unwrap_err().to_string().contains("advantages"));
        let empty = t(&[0., 0.], [1, 2]);
        let scale = MiniBatchScale::single(&empty).unwrap();
        assert!(Aggregation::GlobalTokenMean.aggregate(&logp, &empty, &scale).is_err());
        let actor = ActorLoss { policy: p, kl: Some(KlTerm { estimator: KlEstimator::K3, coef: 0.01 }), entropy: None };
        let zero = t(&[0., 0.], [1, 2]);
        let x = ActorInputs {
            policy: PolicyInputs { log_probs: &logp, old_log_probs: &logp, advantages: &zero, response_mask: &m },
            ref_log_probs: None,
            logits: None,
        };
        assert!(
            actor.compute(&x, &MiniBatchScale::single(&m).unwrap(), 0).unwrap_err().to_string().contains("reference")
        );
    }

    #[test]
    fn annealed_sampled_entropy_pushes_sampled_log_probs_down() {
        // A = 0 and no KL: the only gradient is the entropy bonus, +c/n on each response token.
        let actor = ActorLoss {
            policy: PolicyLoss::revisual(),
            kl: None,
            entropy: Some(EntropyTerm {
                estimator: EntropyEstimator::SampledNegLogProb,
                schedule: EntropySchedule::revisual_code(),
            }),
        };
        let logp = t(&[-1., -2., -3., -4.], [2, 2]).set_requires_grad(true);
        let (old, zero, mask) = (t(&[-1., -2., -3., -4.], [2, 2]), t(&[0.; 4], [2, 2]), t(&[1., 1., 1., 0.], [2, 2]));
        let x = ActorInputs {
            policy: PolicyInputs { log_probs: &logp, old_log_probs: &old, advantages: &zero, response_mask: &mask },
            ref_log_probs: None,
            logits: None,
        };
        let scale = MiniBatchScale::single(&mask).unwrap();
        let (loss, m) = actor.compute(&x, &scale, 21).unwrap();
        assert_eq!(m.entropy_coef, 0.02);
        assert!((m.entropy.unwrap() - 2.0).abs() < 1e-6);
        assert!((loss.double_value(&[]) + 0.02 * 2.0).abs() < 1e-7);
        loss.backward();
        let g = Vec::<f32>::try_from(&logp.grad().view([-1])).unwrap();
        let c = 0.02f32 / 3.0;
        assert!(g.iter().zip([c, c, c, 0.0]).all(|(a, b)| (a - b).abs() < 1e-8), "{g:?}");
        let (loss, m) = actor.compute(&x, &scale, 20).unwrap();
        assert_eq!((m.entropy_coef, loss.double_value(&[])), (0.0, 0.0));
    }
}
