//! A GRPO run over a PTST schedule ([`super::schedule::Ptst`]; one stage = plain GRPO): data order, the
//! stage boundaries' carry-over rules, the reference policy, and one [`super::trainer::grpo_step`] per RL step.
//!
//! - **Data order** (EasyR1 `RandomSampler` + `drop_last=True`, papers_spec §0.2 step 1): epoch `e` is the
//!   permutation [`seed::epoch_order`] (the same as SFT's), cut into
//!   `rollout_prompts`-sized batches, the remainder dropped; global RL step `s` takes batch `s mod B` of epoch
//!   `s div B`. The batch of a step is therefore a pure function of (seed, step, data size): a resumed run at step
//!   `s` sees exactly the batches of the uninterrupted run. A prompt's uid is its row in the data.
//! - **Stage boundaries**: at the first step of stage `k > 0`, [`OptimizerCarry::Reset`] replaces AdamW by a fresh
//!   one (moments zero; the update counter `u` of the LR and entropy schedules keeps counting — deliberate, so the
//!   annealed entropy coefficient does not restart), and [`ReferencePolicy::StageInit`] copies the current policy
//!   into the reference.
//! - **Data cursor** ([`GrpoRunner::gen_batches`]): the rollout batches drawn so far. Without dynamic sampling it
//!   equals the step, so step `s` takes batch `s` as above and its rollout seeds use `s`. Under DAPO dynamic
//!   sampling ([`super::dynamic`]) a step may draw several batches: draw `c` of the cursor takes the batch the
//!   rule above gives for index `c`, seeded with `c` in place of the step, and the cursor is checkpointed (the
//!   `gen_batches` counter of `trainer.json`) so a resumed run draws what the uninterrupted one drew.
//! - **Reference**: built as a frozen copy of the initial policy when the loss has a KL term; none otherwise.
//!
//! Deliberate deviations: EasyR1 reshuffles with a torch generator seeded once per run; the permutation here is
//! r1lab's own seeded stream (same distribution, different draws).
use anyhow::{Result, ensure};
use tch::Tensor;

use super::advantage::AdvantageConfig;
use super::dynamic::{self, DynamicSampling, DynamicStats, Next};
use super::loss::ActorLoss;
use super::pad::Pad;
use super::reward::RewardFn;
use super::rollout::{RlPrompt, Rollout, RolloutSeeds};
use super::schedule::{OptimizerCarry, Ptst, ReferencePolicy, StagePosition};
use super::trainer::{Generated, GrpoConfig, GrpoState, SampleRow, StepMetrics, generate_scored, train_on};
use super::update::UpdateConfig;
use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::model::sampling::SamplingParams;
use crate::repro::manifest::GrpoSettings;
use crate::repro::manifest::train::LrSchedule as ManifestLr;
use crate::repro::seed;
use crate::train::optim::{AdamW, AdamWConfig, DecayFilter, Frozen};
use crate::train::schedule::LrSchedule;

/// Everything a GRPO run is configured with (from a manifest's `[train]`, see `repro::manifest::train`).
#[derive(Debug, Clone)]
pub struct GrpoRunConfig {
    pub ptst: Ptst,
    pub rollout_prompts: usize,
    /// Prompts per optimizer step (EasyR1 `global_batch_size`); mini-batches hold `update_prompts × G_s` sequences.
    pub update_prompts: usize,
    /// Sequences per forward/backward of the update.
    pub micro_batch: usize,
    pub ppo_epochs: usize,
    /// Temperature, top-p/k, EOS and suppressed ids; `max_new_tokens` is set per stage.
    pub sampling: SamplingParams,
    pub advantage: AdvantageConfig,
    pub pad: Option<(Pad, bool)>,
    /// DAPO dynamic sampling (None: every drawn group is trained on).
    pub dynamic: Option<DynamicSampling>,
    pub loss: ActorLoss,
    pub grad_clip: Option<f64>,
    /// Recompute decoder activations in the backward pass (`train.recompute_activations`).
    pub recompute: bool,
    pub adamw: AdamWConfig,
    pub lr: LrSchedule,
    pub frozen: Frozen,
    pub base_seed: u64,
    pub rollout_chunk: usize,
    pub log_prob_chunk: usize,
}

impl GrpoRunConfig {
    pub fn validate(&self, data_len: usize) -> Result<()> {
        self.ptst.validate()?;
        ensure!(self.rollout_prompts > 0 && self.update_prompts > 0, "rollout and update batch sizes must be >= 1");
        ensure!(
            data_len >= self.rollout_prompts,
            "the data has {data_len} prompts, fewer than one rollout batch of {}; lower rollout_batch_prompts or add \
             data",
            self.rollout_prompts
        );
        self.lr.validate()?;
        if let Some(d) = &self.dynamic {
            d.validate()?;
            ensure!(self.pad.is_none(), "dynamic sampling and PAD both choose the training batch; use one of them");
        }
        self.stage_config(&self.ptst.stages[0]).validate()
    }

    /// The run a manifest's GRPO settings describe. `eos_token_ids` and `suppress_tokens` come from the model
    /// (see `model::qwen2_5_vl::model::run::eos_token_ids`); `chunk` is the sequences per generate / log-prob call.
    pub fn from_settings(
        s: &GrpoSettings,
        base_seed: u64,
        eos_token_ids: Vec<i64>,
        suppress_tokens: Vec<i64>,
        chunk: usize,
    ) -> Result<Self> {
        let updates_per_step = (s.rollout_batch_prompts / s.update_batch_prompts) as usize * s.ppo_epochs as usize;
        let total_updates = s.total_steps() as usize * updates_per_step;
        let o = &s.optimizer;
        let lr = match o.schedule {
            ManifestLr::Constant => LrSchedule::easyr1_constant(o.lr, o.warmup_ratio, total_updates),
            ManifestLr::Cosine => LrSchedule::hf_cosine(o.lr, o.warmup_ratio, total_updates, 0.0),
        };
        let cfg = Self {
            ptst: s.ptst(),
            rollout_prompts: s.rollout_batch_prompts as usize,
            update_prompts: s.update_batch_prompts as usize,
            micro_batch: s.micro_batch as usize,
            ppo_epochs: s.ppo_epochs as usize,
            sampling: SamplingParams {
                temperature: s.sampling.temperature,
                top_p: s.sampling.top_p,
                top_k: 0,
                max_new_tokens: s.schedule[0].max_new_tokens as usize,
                eos_token_ids,
                greedy: false,
                suppress_tokens,
            },
            advantage: s.advantage(),
            pad: s.pad.map(|p| (p.method.into(), p.normalize_by_length)),
            dynamic: s.dynamic_sampling(),
            loss: s.actor_loss(),
            grad_clip: o.grad_clip,
            recompute: s.recompute_activations,
            adamw: AdamWConfig {
                beta1: o.betas[0],
                beta2: o.betas[1],
                eps: o.eps,
                weight_decay: o.weight_decay,
                decay: DecayFilter::All,
                states: o.states,
            },
            lr,
            frozen: if s.freeze_vision { Frozen::vision(true) } else { Frozen::none() },
            base_seed,
            rollout_chunk: chunk,
            log_prob_chunk: chunk,
        };
        cfg.ptst.validate()?;
        Ok(cfg)
    }

    /// The per-step settings of a stage.
    pub fn stage_config(&self, stage: &super::schedule::LengthStage) -> GrpoConfig {
        GrpoConfig {
            group_size: stage.group_size,
            sampling: SamplingParams { max_new_tokens: stage.max_new_tokens, ..self.sampling.clone() },
            advantage: self.advantage,
            pad: self.pad,
            update: UpdateConfig {
                loss: self.loss,
                ppo_epochs: self.ppo_epochs,
                mini_batch: self.update_prompts * stage.group_size,
                micro_batch: self.micro_batch,
                temperature: self.sampling.temperature,
                grad_clip: self.grad_clip,
                recompute: self.recompute,
            },
            rollout_chunk: self.rollout_chunk,
            log_prob_chunk: self.log_prob_chunk,
        }
    }

    /// Row indices of the prompts of global RL step `step` over `data_len` prompts.
    pub fn batch_indices(&self, step: u64, data_len: usize) -> Vec<usize> {
        let per_epoch = (data_len / self.rollout_prompts) as u64;
        let (epoch, k) = (step / per_epoch, (step % per_epoch) as usize);
        let order = seed::epoch_order(self.base_seed, epoch, data_len);
        order[k * self.rollout_prompts..(k + 1) * self.rollout_prompts].to_vec()
    }
}

/// A GRPO run in progress: the policy, its reference and optimizer, and the counters a checkpoint must keep.
pub struct GrpoRunner<'a> {
    pub cfg: GrpoRunConfig,
    pub policy: &'a mut Qwen2_5_VL,
    pub reference: Option<Qwen2_5_VL>,
    pub optimizer: AdamW,
    /// The next RL step to run.
    pub next_step: u64,
    /// Mini-batch updates done.
    pub updates: u64,
    /// The data cursor: rollout batches drawn so far (= `next_step` without dynamic sampling).
    pub gen_batches: u64,
}

impl<'a> GrpoRunner<'a> {
    /// Starts a run at step 0: unfreezes the policy, applies `cfg.frozen`, builds AdamW and (with a KL term) the
    /// reference as a frozen copy of the initial policy.
    pub fn new(cfg: GrpoRunConfig, policy: &'a mut Qwen2_5_VL) -> Result<Self> {
        cfg.ptst.validate()?;
        let vs = policy.var_store_mut().ok_or_else(|| anyhow::anyhow!("the policy must own its VarStore"))?;
        vs.unfreeze();
        let optimizer = AdamW::new(vs, cfg.adamw, &cfg.frozen)?;
        let reference = match cfg.loss.kl {
            Some(_) => Some(policy.frozen_copy()?),
            None => None,
        };
        Ok(Self { cfg, policy, reference, optimizer, next_step: 0, updates: 0, gen_batches: 0 })
    }

    pub fn is_done(&self) -> bool {
        self.next_step >= self.cfg.ptst.total_steps()
    }

    /// Runs the next RL step on `data`; returns its stage position, metrics and samples.
    pub fn step(
        &mut self,
        data: &[RlPrompt],
        reward: &dyn RewardFn,
        pad_id: i64,
        decode: impl Fn(&[i64]) -> Result<String>,
    ) -> Result<(StagePosition, StepMetrics, Vec<SampleRow>)> {
        self.cfg.validate(data.len())?;
        let step = self.next_step;
        let pos = self.cfg.ptst.locate(step).ok_or_else(|| {
            anyhow::anyhow!("step {step} is past the end of the schedule ({} steps)", self.cfg.ptst.total_steps())
        })?;
        if pos.is_stage_boundary() {
            self.enter_stage()?;
        }
        let stage_cfg = self.cfg.stage_config(&pos.spec);
        let (prompts, generated, dynamic_stats) = self.draw(data, &stage_cfg, reward, step, pad_id, &decode)?;
        let lr = self.cfg.lr;
        let mut state = GrpoState {
            policy: &*self.policy,
            reference: self.reference.as_ref(),
            optimizer: &mut self.optimizer,
            updates: self.updates,
        };
        let (mut metrics, samples) =
            train_on(&mut state, &prompts, generated, &stage_cfg, self.cfg.base_seed, step, pad_id, |u| {
                lr.lr(u as usize)
            })?;
        metrics.dynamic = dynamic_stats;
        self.updates = state.updates;
        self.next_step += 1;
        Ok((pos, metrics, samples))
    }

    /// The prompts and scored rollouts step `step` trains on: the cursor's next batch, or under dynamic
    /// sampling as many batches as it takes (see [`super::dynamic`]). Advances the cursor.
    fn draw(
        &mut self,
        data: &[RlPrompt],
        cfg: &GrpoConfig,
        reward: &dyn RewardFn,
        step: u64,
        pad_id: i64,
        decode: &impl Fn(&[i64]) -> Result<String>,
    ) -> Result<(Vec<RlPrompt>, Generated, Option<DynamicStats>)> {
        let started = std::time::Instant::now();
        let base = self.cfg.base_seed;
        let batch = |c: u64| -> Vec<RlPrompt> {
            self.cfg.batch_indices(c, data.len()).into_iter().map(|i| shallow_copy(&data[i])).collect()
        };
        let Some(dyn_cfg) = self.cfg.dynamic else {
            // Without dynamic sampling the cursor is the step itself (so a resume needs only `next_step`).
            let c = step;
            let prompts = batch(c);
            let seeds = RolloutSeeds::rollout(base, c);
            let (rollouts, scores) = generate_scored(&*self.policy, &prompts, cfg, reward, seeds, pad_id, decode)?;
            self.gen_batches = step + 1;
            let generated = Generated { rollouts, scores, started, time_rollout_s: started.elapsed().as_secs_f64() };
            return Ok((prompts, generated, None));
        };
        let target = self.cfg.rollout_prompts;
        let mut kept: Vec<RlPrompt> = Vec::with_capacity(target);
        let (mut rollouts, mut scores): (Vec<Rollout>, Vec<_>) = (Vec::new(), Vec::new());
        let mut stats = DynamicStats::default();
        loop {
            let c = self.gen_batches;
            let prompts = batch(c);
            let seeds = RolloutSeeds::rollout(base, c);
            let (rs, ss) = generate_scored(&*self.policy, &prompts, cfg, reward, seeds, pad_id, decode)?;
            self.gen_batches += 1;
            stats.gen_batches += 1;
            stats.generated += prompts.len();
            let prompt_of: Vec<usize> = rs.iter().map(|r| r.prompt).collect();
            let signal = dynamic::groups_with_signal(&dyn_cfg.values(&ss)?, &prompt_of, prompts.len())?;
            stats.with_signal += signal.iter().filter(|&&s| s).count();
            let mut slot = vec![None; prompts.len()];
            for (p, prompt) in prompts.into_iter().enumerate() {
                if signal[p] && kept.len() < target {
                    slot[p] = Some(kept.len());
                    kept.push(prompt);
                }
            }
            for (mut r, s) in rs.into_iter().zip(ss) {
                if let Some(k) = slot[r.prompt] {
                    r.prompt = k;
                    rollouts.push(r);
                    scores.push(s);
                }
            }
            match dynamic::next(kept.len(), target, stats.gen_batches, dyn_cfg.max_gen_batches) {
                Next::Train => break,
                Next::Draw => continue,
                Next::Exhausted => {
                    return Err(dynamic::exhausted(step, stats.with_signal, target, dyn_cfg.max_gen_batches));
                }
            }
        }
        stats.kept = kept.len();
        let generated = Generated { rollouts, scores, started, time_rollout_s: started.elapsed().as_secs_f64() };
        Ok((kept, generated, Some(stats)))
    }

    fn enter_stage(&mut self) -> Result<()> {
        if self.cfg.ptst.optimizer == OptimizerCarry::Reset {
            let vs = self.policy.var_store().ok_or_else(|| anyhow::anyhow!("the policy must own its VarStore"))?;
            self.optimizer = AdamW::new(vs, self.cfg.adamw, &self.cfg.frozen)?;
        }
        if self.cfg.ptst.reference == ReferencePolicy::StageInit
            && let Some(r) = self.reference.as_mut()
        {
            r.copy_weights_from(&*self.policy)?;
        }
        Ok(())
    }
}

fn shallow_copy(p: &RlPrompt) -> RlPrompt {
    RlPrompt {
        uid: p.uid,
        input_ids: p.input_ids.clone(),
        pixel_values: p.pixel_values.as_ref().map(Tensor::shallow_clone),
        grids: p.grids.clone(),
        ground_truth: p.ground_truth.clone(),
    }
}
