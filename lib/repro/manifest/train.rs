//! A stage's training settings (`[train]`, style_anchors B9 `[rl]`/`[optim]`): SFT or GRPO, as an enum so that
//! a setting of one kind on the other (PAD on an SFT stage) is an unknown key at load; or no training at all
//! (`algo = "none"`, an evaluation-only stage).
//!
//! Field values follow papers_spec §1.3 (Vision-R1 SFT), §1.5 (PTST), §2.3 (ReVisual cold start), §2.5–2.8
//! (ReVisual RL). GRPO settings mirror the enums of `lib/rl` (which carry no serde derives) one for one and
//! convert into them, so the manifest and the trainer cannot drift; validation reuses their `validate()`.
//!
//! Deliberate deviations from B9: PTST's length schedule lives in one manifest (`schedule`, one entry per
//! stage) with the carry-over between its stages as explicit required settings, instead of one file per PTST
//! stage; advantage normalisation is named by `rl::advantage` (`grpo` with eps) rather than `group_zscore`.
use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};

use crate::rl::advantage::{AdvantageConfig, Estimator, SingletonGroup, ZeroVarianceGroup};
use crate::rl::entropy::{Decay, EntropyEstimator, EntropySchedule};
use crate::rl::kl::KlEstimator;
use crate::rl::loss::{ActorLoss, Aggregation, EntropyTerm, KlTerm, LogRatioClamp, PolicyLoss, Surrogate};
use crate::rl::pad::{Pad, TauSchedule};
use crate::rl::reward::{EfficientLength, Reward};
use crate::rl::schedule::{self as rl_schedule, Ptst};
use crate::train::optim::StatePrecision;

/// `[train]`: what the stage does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "algo", rename_all = "snake_case")]
pub enum TrainSettings {
    Sft(SftSettings),
    Grpo(Box<GrpoSettings>),
    /// `algo = "none"`: no training, the stage only evaluates the model it starts from (Vision-R1 Tab.5
    /// "Baseline", the untrained Qwen2.5-VL-7B-Instruct; papers_spec §1.8). See [`EvalOnlySettings`].
    #[serde(rename = "none")]
    EvalOnly(EvalOnlySettings),
}

/// An evaluation-only stage (`train = { algo = "none" }`, no other key): `r1lab run` evaluates every `[[eval]]`
/// suite once, at step 0, and writes no checkpoint, so such a run cannot be a parent. Suites without a `scorer`
/// score with Vision-R1's hard formatting reward, as SFT stages do. `data.source` is resolved and recorded as an
/// input like any stage's (EasyR1 parquet, as for GRPO), and its `system_prompt` / `format_prompt` shape the
/// evaluation prompts, but no training example is read. Eval `every_steps` and the checkpoint policy have no effect
/// (there are no steps), so a training manifest turned evaluation-only by a grid keeps them. Refused at load: no
/// `[[eval]]` suite, and `data.transform`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalOnlySettings {}

/// AdamW as both papers use it (papers_spec §0.2 step 7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdamW {
    pub lr: f64,
    pub betas: [f64; 2],
    pub eps: f64,
    pub weight_decay: f64,
    /// Gradient-norm clip (None: no clipping).
    pub grad_clip: Option<f64>,
    pub schedule: LrSchedule,
    pub warmup_ratio: f64,
    /// Where the moments and the update of bf16 parameters live (`f32_moments`, `f32_master`, `param_dtype`);
    /// left out: `f32_moments`. See [`crate::train::optim::StatePrecision`].
    #[serde(default, skip_serializing_if = "is_default_states")]
    pub states: StatePrecision,
}

fn is_default_states(s: &StatePrecision) -> bool {
    *s == StatePrecision::default()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrSchedule {
    Constant,
    Cosine,
}

impl AdamW {
    fn validate(&self, key: &str) -> Result<()> {
        ensure!(self.lr.is_finite() && self.lr > 0.0, "{key}.lr must be > 0, got {}", self.lr);
        ensure!(
            self.betas.iter().all(|b| (0.0..1.0).contains(b)),
            "{key}.betas must both be in [0, 1), got {:?}",
            self.betas
        );
        ensure!(self.eps.is_finite() && self.eps > 0.0, "{key}.eps must be > 0, got {}", self.eps);
        ensure!(self.weight_decay >= 0.0, "{key}.weight_decay must be >= 0, got {}", self.weight_decay);
        if let Some(c) = self.grad_clip {
            ensure!(c.is_finite() && c > 0.0, "{key}.grad_clip must be > 0 (or left out), got {c}");
        }
        ensure!((0.0..1.0).contains(&self.warmup_ratio), "{key}.warmup_ratio must be in [0, 1)");
        Ok(())
    }
}

/// Which modalities the SFT data carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    /// ReVisual-R1's text-only cold start (papers_spec §2.3).
    TextOnly,
    /// Vision-R1's image + CoT cold start (papers_spec §1.3).
    Multimodal,
}

/// Supervised fine-tuning (cross-entropy on assistant tokens).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SftSettings {
    pub epochs: u32,
    /// Sequences per optimizer step, across devices and accumulation.
    pub global_batch: u32,
    pub grad_accumulation: u32,
    /// Longest tokenised sequence (LLaMA-Factory `cutoff_len`).
    pub max_length: u32,
    pub freeze_vision: bool,
    pub freeze_merger: bool,
    pub modality: Modality,
    pub optimizer: AdamW,
}

impl SftSettings {
    fn validate(&self) -> Result<()> {
        ensure!(self.epochs > 0, "train.epochs must be >= 1");
        ensure!(self.grad_accumulation > 0, "train.grad_accumulation must be >= 1");
        ensure!(
            self.global_batch > 0 && self.global_batch.is_multiple_of(self.grad_accumulation),
            "train.global_batch ({}) must be a positive multiple of train.grad_accumulation ({})",
            self.global_batch,
            self.grad_accumulation
        );
        ensure!(self.max_length > 0, "train.max_length must be >= 1");
        self.optimizer.validate("train.optimizer")
    }
}

/// One PTST stage (papers_spec §1.5): generation budget, group size and RL steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LengthStage {
    pub max_new_tokens: u32,
    pub group_size: u32,
    pub steps: u32,
}

/// What the next PTST stage inherits; the paper leaves both UNVERIFIED, so they must be written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CarryOver {
    pub optimizer: OptimizerCarry,
    pub reference: ReferencePolicy,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerCarry {
    /// Fresh AdamW moments at every schedule stage (a new EasyR1 launch per stage).
    Reset,
    /// Keep the moments across schedule stages.
    Carry,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferencePolicy {
    /// π_ref = the weights this manifest starts from, for every schedule stage.
    ManifestInit,
    /// π_ref = the weights each schedule stage starts from (EasyR1's behaviour when stages are separate runs).
    StageInit,
}

/// Rollout sampling.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sampling {
    pub temperature: f64,
    pub top_p: f64,
    pub max_prompt_tokens: u32,
}

/// GRPO with the EasyR1-family update (papers_spec §0.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpoSettings {
    pub schedule: Vec<LengthStage>,
    pub carry_over: CarryOver,
    /// Prompts sampled per RL step.
    pub rollout_batch_prompts: u32,
    /// Prompts per optimizer step (mini-batch).
    pub update_batch_prompts: u32,
    /// Sequences per micro-batch; semantic under `micro_batch_token_mean`.
    pub micro_batch: u32,
    pub ppo_epochs: u32,
    pub freeze_vision: bool,
    /// Recompute each decoder layer's activations in the backward pass instead of keeping them (EasyR1
    /// `worker.actor.model.enable_gradient_checkpointing`): the same gradients for less memory and one more
    /// forward. Left out: off. It does not change results, but it is part of the manifest's hash.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recompute_activations: bool,
    pub sampling: Sampling,
    pub reward: RewardSpec,
    pub advantage: AdvantageSpec,
    pub surrogate: SurrogateSpec,
    pub log_ratio_clamp: LogRatioClampSpec,
    pub aggregation: AggregationSpec,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kl: Option<KlSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entropy: Option<EntropySpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad: Option<PadSpec>,
    /// DAPO dynamic sampling ([`super::dynamic`]); left out: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dynamic_sampling: Option<super::dynamic::DynamicSamplingSpec>,
    pub optimizer: AdamW,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RewardSpec {
    VisionR1Hard,
    R1vFormatAccuracy { format_weight: f64 },
    BoxedAccuracy,
    EfficientLength { budget: usize, alpha: f64, delta: f64 },
    RevisualCode { efficient_length: Option<EfficientLengthSpec> },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EfficientLengthSpec {
    pub budget: usize,
    pub alpha: f64,
    pub delta: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvantageSpec {
    pub estimator: EstimatorSpec,
    pub singleton: SingletonSpec,
    pub zero_variance: ZeroVarianceSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EstimatorSpec {
    Grpo { eps: f64 },
    DrGrpo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SingletonSpec {
    ZeroMeanUnitStd,
    Reject,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ZeroVarianceSpec {
    TorchNumerics,
    ExactZero,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SurrogateSpec {
    PpoClip { eps_low: f64, eps_high: f64 },
    DualClip { eps_low: f64, eps_high: f64, c: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum LogRatioClampSpec {
    None,
    Range { lo: f64, hi: f64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum AggregationSpec {
    MicroBatchTokenMean,
    GlobalTokenMean,
    SeqMeanTokenMean,
    ConstantLength { len: usize },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlSpec {
    pub estimator: KlEstimatorSpec,
    pub coef: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KlEstimatorSpec {
    K1,
    K2,
    K3,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntropySpec {
    pub estimator: EntropyEstimatorSpec,
    pub schedule: EntropyScheduleSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntropyEstimatorSpec {
    FromLogits,
    SampledNegLogProb,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum EntropyScheduleSpec {
    Constant { coef: f64 },
    Annealed { warmup_steps: u64, init: f64, min: f64, decay: DecaySpec },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DecaySpec {
    Exponential { rate: f64 },
    Linear { total_updates: u64 },
}

/// PAD (papers_spec §2.8): the method and whether sequence advantages are length-normalised first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PadSpec {
    pub method: PadMethodSpec,
    pub normalize_by_length: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PadMethodSpec {
    Paper { t_low: f64, t_high: f64, rho: f64, tau: TauSpec },
    ReleasedCode { t_low: f64, t_high: f64, alpha: f64, ratio: f64, replacement: bool },
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TauSpec {
    Constant { tau: f64 },
    Linear { start: f64, end: f64, steps: u64 },
}

impl From<EfficientLengthSpec> for EfficientLength {
    fn from(e: EfficientLengthSpec) -> Self {
        EfficientLength { budget: e.budget, alpha: e.alpha, delta: e.delta }
    }
}

impl From<RewardSpec> for Reward {
    fn from(r: RewardSpec) -> Self {
        match r {
            RewardSpec::VisionR1Hard => Reward::VisionR1Hard,
            RewardSpec::R1vFormatAccuracy { format_weight } => Reward::R1vFormatAccuracy { format_weight },
            RewardSpec::BoxedAccuracy => Reward::BoxedAccuracy,
            RewardSpec::EfficientLength { budget, alpha, delta } => {
                Reward::EfficientLength(EfficientLength { budget, alpha, delta })
            }
            RewardSpec::RevisualCode { efficient_length } => {
                Reward::RevisualCode { efficient_length: efficient_length.map(Into::into) }
            }
        }
    }
}

impl From<AdvantageSpec> for AdvantageConfig {
    fn from(a: AdvantageSpec) -> Self {
        AdvantageConfig {
            estimator: match a.estimator {
                EstimatorSpec::Grpo { eps } => Estimator::Grpo { eps },
                EstimatorSpec::DrGrpo => Estimator::DrGrpo,
            },
            singleton: match a.singleton {
                SingletonSpec::ZeroMeanUnitStd => SingletonGroup::ZeroMeanUnitStd,
                SingletonSpec::Reject => SingletonGroup::Reject,
            },
            zero_variance: match a.zero_variance {
                ZeroVarianceSpec::TorchNumerics => ZeroVarianceGroup::TorchNumerics,
                ZeroVarianceSpec::ExactZero => ZeroVarianceGroup::ExactZero,
            },
        }
    }
}

impl From<EntropySpec> for EntropyTerm {
    fn from(e: EntropySpec) -> Self {
        let estimator = match e.estimator {
            EntropyEstimatorSpec::FromLogits => EntropyEstimator::FromLogits,
            EntropyEstimatorSpec::SampledNegLogProb => EntropyEstimator::SampledNegLogProb,
        };
        let schedule = match e.schedule {
            EntropyScheduleSpec::Constant { coef } => EntropySchedule::Constant { coef },
            EntropyScheduleSpec::Annealed { warmup_steps, init, min, decay } => EntropySchedule::Annealed {
                warmup_steps,
                init,
                min,
                decay: match decay {
                    DecaySpec::Exponential { rate } => Decay::Exponential { rate },
                    DecaySpec::Linear { total_updates } => Decay::Linear { total_updates },
                },
            },
        };
        EntropyTerm { estimator, schedule }
    }
}

impl From<PadMethodSpec> for Pad {
    fn from(p: PadMethodSpec) -> Self {
        match p {
            PadMethodSpec::Paper { t_low, t_high, rho, tau } => Pad::Paper {
                t_low,
                t_high,
                rho,
                tau: match tau {
                    TauSpec::Constant { tau } => TauSchedule::Constant { tau },
                    TauSpec::Linear { start, end, steps } => TauSchedule::Linear { start, end, steps },
                },
            },
            PadMethodSpec::ReleasedCode { t_low, t_high, alpha, ratio, replacement } => {
                Pad::ReleasedCode { t_low, t_high, alpha, ratio, replacement }
            }
        }
    }
}

impl GrpoSettings {
    /// The actor loss this stage trains with (`rl::loss::ActorLoss`).
    pub fn actor_loss(&self) -> ActorLoss {
        let surrogate = match self.surrogate {
            SurrogateSpec::PpoClip { eps_low, eps_high } => Surrogate::PpoClip { eps_low, eps_high },
            SurrogateSpec::DualClip { eps_low, eps_high, c } => Surrogate::DualClip { eps_low, eps_high, c },
        };
        let log_ratio_clamp = match self.log_ratio_clamp {
            LogRatioClampSpec::None => LogRatioClamp::None,
            LogRatioClampSpec::Range { lo, hi } => LogRatioClamp::Range { lo, hi },
        };
        let aggregation = match self.aggregation {
            AggregationSpec::MicroBatchTokenMean => Aggregation::MicroBatchTokenMean,
            AggregationSpec::GlobalTokenMean => Aggregation::GlobalTokenMean,
            AggregationSpec::SeqMeanTokenMean => Aggregation::SeqMeanTokenMean,
            AggregationSpec::ConstantLength { len } => Aggregation::ConstantLength { len },
        };
        let kl = self.kl.map(|k| KlTerm {
            estimator: match k.estimator {
                KlEstimatorSpec::K1 => KlEstimator::K1,
                KlEstimatorSpec::K2 => KlEstimator::K2,
                KlEstimatorSpec::K3 => KlEstimator::K3,
            },
            coef: k.coef,
        });
        ActorLoss {
            policy: PolicyLoss { surrogate, log_ratio_clamp, aggregation },
            kl,
            entropy: self.entropy.map(Into::into),
        }
    }

    pub fn reward(&self) -> Reward {
        self.reward.into()
    }

    pub fn advantage(&self) -> AdvantageConfig {
        self.advantage.into()
    }

    pub fn pad(&self) -> Option<Pad> {
        self.pad.map(|p| p.method.into())
    }

    pub fn dynamic_sampling(&self) -> Option<crate::rl::dynamic::DynamicSampling> {
        self.dynamic_sampling.map(Into::into)
    }

    /// The PTST schedule with its carry-over rules (`rl::schedule::Ptst`).
    pub fn ptst(&self) -> Ptst {
        Ptst {
            stages: self
                .schedule
                .iter()
                .map(|s| rl_schedule::LengthStage {
                    max_new_tokens: s.max_new_tokens as usize,
                    group_size: s.group_size as usize,
                    steps: u64::from(s.steps),
                })
                .collect(),
            optimizer: match self.carry_over.optimizer {
                OptimizerCarry::Reset => rl_schedule::OptimizerCarry::Reset,
                OptimizerCarry::Carry => rl_schedule::OptimizerCarry::Carry,
            },
            reference: match self.carry_over.reference {
                ReferencePolicy::ManifestInit => rl_schedule::ReferencePolicy::ManifestInit,
                ReferencePolicy::StageInit => rl_schedule::ReferencePolicy::StageInit,
            },
        }
    }

    /// Total RL steps over the schedule.
    pub fn total_steps(&self) -> u64 {
        self.schedule.iter().map(|s| s.steps as u64).sum()
    }

    fn validate(&self) -> Result<()> {
        if self.schedule.is_empty() {
            bail!("train.schedule is empty; give at least one {{ max_new_tokens, group_size, steps }} stage");
        }
        let z_score = matches!(self.advantage.estimator, EstimatorSpec::Grpo { .. });
        for (i, s) in self.schedule.iter().enumerate() {
            let key = format!("train.schedule[{i}]");
            ensure!(s.max_new_tokens > 0 && s.steps > 0, "{key}: max_new_tokens and steps must be >= 1");
            ensure!(s.group_size > 0, "{key}.group_size must be >= 1");
            if s.group_size == 1 && (z_score || self.advantage.singleton == SingletonSpec::Reject) {
                bail!(
                    "{key}.group_size = 1 with GRPO advantages: a group of one has no variance to normalise by; \
                     use group_size >= 2"
                );
            }
        }
        ensure!(self.rollout_batch_prompts > 0, "train.rollout_batch_prompts must be >= 1");
        ensure!(
            self.update_batch_prompts > 0 && self.rollout_batch_prompts.is_multiple_of(self.update_batch_prompts),
            "train.update_batch_prompts ({}) must divide train.rollout_batch_prompts ({})",
            self.update_batch_prompts,
            self.rollout_batch_prompts
        );
        ensure!(self.micro_batch > 0, "train.micro_batch must be >= 1");
        ensure!(self.ppo_epochs > 0, "train.ppo_epochs must be >= 1");
        let s = &self.sampling;
        ensure!(s.temperature.is_finite() && s.temperature > 0.0, "train.sampling.temperature must be > 0");
        ensure!(s.top_p > 0.0 && s.top_p <= 1.0, "train.sampling.top_p must be in (0, 1], got {}", s.top_p);
        ensure!(s.max_prompt_tokens > 0, "train.sampling.max_prompt_tokens must be >= 1");
        if let EstimatorSpec::Grpo { eps } = self.advantage.estimator {
            ensure!(eps.is_finite() && eps >= 0.0, "train.advantage.estimator.eps must be >= 0, got {eps}");
        }
        let loss = self.actor_loss();
        loss.policy.surrogate.validate().context("train.surrogate")?;
        loss.policy.aggregation.validate().context("train.aggregation")?;
        loss.policy.validate().context("train.log_ratio_clamp")?;
        loss.validate().context("train.kl / train.entropy")?;
        if let Some(pad) = self.pad() {
            pad.validate().context("train.pad.method")?;
        }
        if let Some(d) = &self.dynamic_sampling {
            let accuracy = !matches!(self.reward, RewardSpec::EfficientLength { .. });
            super::dynamic::validate(d, self.pad.is_some(), accuracy)?;
        }
        let efficient = match self.reward {
            RewardSpec::R1vFormatAccuracy { format_weight } => {
                ensure!((0.0..=1.0).contains(&format_weight), "train.reward.format_weight must be in [0, 1]");
                None
            }
            RewardSpec::EfficientLength { budget, alpha, delta } => Some(EfficientLengthSpec { budget, alpha, delta }),
            RewardSpec::RevisualCode { efficient_length } => efficient_length,
            RewardSpec::VisionR1Hard | RewardSpec::BoxedAccuracy => None,
        };
        if let Some(e) = efficient {
            ensure!(
                e.budget > 0 && e.alpha.is_finite() && e.delta.is_finite(),
                "train.reward efficient_length needs budget >= 1 and finite alpha, delta"
            );
        }
        self.optimizer.validate("train.optimizer")
    }
}

impl TrainSettings {
    pub fn validate(&self) -> Result<()> {
        match self {
            TrainSettings::Sft(s) => s.validate(),
            TrainSettings::Grpo(g) => g.validate(),
            TrainSettings::EvalOnly(_) => Ok(()),
        }
    }
}
