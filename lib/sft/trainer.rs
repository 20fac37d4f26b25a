//! The cold-start SFT loop, after LLaMA-Factory's SFT stage (HF `Trainer`) as both papers run it (papers_spec §1.3
//! Vision-R1, §2.3 ReVisual-R1): cross-entropy on assistant tokens of chat-template-rendered conversations
//! ([`examples`]), `global_batch` sequences per optimizer step in `grad_accumulation` micro-batches of
//! `global_batch / grad_accumulation` sequences, padded on the right (LLaMA-Factory's training collator; the model
//! handles any attention mask), the loss of each micro-batch normalised by the target count of the whole step
//! (HF ≥ 4.46 `num_items_in_batch`, [`Normalization::GlobalTokenMean`], so the accumulated gradient is the
//! gradient of one big batch), AdamW with HF's decay groups ([`DecayFilter::HfTrainer`]), global grad-norm clipping,
//! and the HF `cosine` (or constant) schedule with `warmup_steps = ceil(ratio · total)`, stepped once per
//! optimizer step. LLaMA-Factory's `freeze_vision_tower` / `freeze_multi_modal_projector` are [`Frozen::vision`].
//!
//! Data order: epoch `e` visits the examples in the permutation [`seed::epoch_order`] drawn from
//! `seed::rng(base_seed, DataOrder, e, 0, 0)`, so optimizer step `s` always sees the same examples and a run resumed
//! at step `s` ([`SftTrainer::run`] with `s..total`) replays the uninterrupted run's batches without any sampler
//! state. Each epoch has `floor(N / global_batch)` optimizer steps and `total = epochs · floor(N / global_batch)`.
//!
//! Deviations, all deliberate:
//! - the last `N mod global_batch` examples of each epoch's permutation are not used (HF keeps the short last
//!   batch, `dataloader_drop_last = false`; at the papers' scale this is at most one step per epoch), so every step
//!   has exactly `global_batch` sequences;
//! - the permutation is r1lab's own Fisher–Yates over ChaCha8, not PyTorch's `RandomSampler`;
//! - a step whose gradient norm is not finite is skipped (EasyR1's rule, [`AdamW::clip_and_step`]: no update,
//!   AdamW's step count unchanged) but still consumes its batch and its scheduler step (HF would apply it);
//! - every optimized parameter has a gradient at every step, zero where the step does not reach it (an unfrozen
//!   vision tower on a step without images), and is updated from its AdamW moments, as with PyTorch's
//!   `zero_grad(set_to_none=False)`; HF (`set_to_none=True`) skips such parameters. Zero-filling keeps a resumed
//!   run bit-identical to the uninterrupted one whatever steps preceded it;
//! - one process sees the whole global batch (no data-parallel ranks); images are decoded and preprocessed when
//!   their micro-batch is built, not cached.
pub mod examples;

use std::ops::Range;
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use tch::{Kind, Tensor, nn};

use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::model::qwen2_5_vl::model::Images;
use crate::repro::manifest::train::{LrSchedule as ScheduleKind, SftSettings};
use crate::repro::seed;
use crate::sft::labels::IGNORE_INDEX;
use crate::sft::loss::{Normalization, sft_loss};
use crate::train::optim::{AdamW, AdamWConfig, DecayFilter, Frozen, MERGER_PREFIX};
use crate::train::schedule::{LrSchedule, warmup_steps_hf};

pub use examples::{ImageCut, PrepareOptions, PrepareStats, SftData, SftExample, prepare};

/// What one optimizer step did, handed to the caller's callback.
#[derive(Debug, Clone, PartialEq)]
pub struct SftStepMetrics {
    /// Optimizer steps done after this one (1-based number of this step in the run).
    pub step: usize,
    pub total_steps: usize,
    /// Epoch of this step (0-based).
    pub epoch: usize,
    /// The step's loss: summed target cross-entropy / target tokens of the step (global token mean).
    pub loss: f64,
    pub lr: f64,
    /// Global L2 gradient norm before clipping.
    pub grad_norm: f64,
    /// True when the norm was not finite and the update was skipped.
    pub skipped: bool,
    /// Non-padding tokens of the step.
    pub tokens: i64,
    /// Trained next-token targets of the step.
    pub target_tokens: i64,
    pub tokens_per_s: f64,
    /// Wall-clock seconds of the step (batch building, forward, backward, update).
    pub wall_s: f64,
}

/// Summary of a [`SftTrainer::run`].
#[derive(Debug, Clone, PartialEq)]
pub struct SftReport {
    /// Optimizer steps run by this call.
    pub steps_run: usize,
    /// Steps of the whole run (all epochs).
    pub total_steps: usize,
    pub skipped_steps: usize,
    /// Loss of the last step run.
    pub final_loss: Option<f64>,
    /// Counts of the preparation (truncated and dropped examples).
    pub prepare: PrepareStats,
    /// Examples of each epoch's permutation left unused (`N mod global_batch`).
    pub unused_per_epoch: usize,
}

/// Forward/backward of one step's micro-batches (gradients accumulated in the parameters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Accumulated {
    pub loss: f64,
    pub tokens: i64,
    pub target_tokens: i64,
}

/// The SFT loop over a Qwen2.5-VL (see the module doc). The optimizer holds the parameter handles of the
/// VarStore it was built on; train the model that owns (or was built on) that VarStore.
#[derive(Debug)]
pub struct SftTrainer {
    settings: SftSettings,
    base_seed: u64,
    opt: AdamW,
    /// The permutation of the last epoch used: (epoch, example count, order).
    order: Option<(usize, usize, Vec<usize>)>,
    /// Handles of the optimized variables (to give every one of them a gradient, see [`Self::run`]).
    params: Vec<Tensor>,
}

impl SftTrainer {
    /// AdamW over the trainable variables of `vs` with the stage's settings; freezes the vision tower and/or the
    /// merger as the settings say.
    pub fn new(settings: &SftSettings, base_seed: u64, vs: &nn::VarStore) -> Result<Self> {
        ensure!(settings.epochs > 0, "train.epochs must be >= 1");
        ensure!(
            settings.grad_accumulation > 0
                && settings.global_batch > 0
                && settings.global_batch.is_multiple_of(settings.grad_accumulation),
            "train.global_batch ({}) must be a positive multiple of train.grad_accumulation ({})",
            settings.global_batch,
            settings.grad_accumulation
        );
        let o = &settings.optimizer;
        let cfg = AdamWConfig {
            beta1: o.betas[0],
            beta2: o.betas[1],
            eps: o.eps,
            weight_decay: o.weight_decay,
            decay: DecayFilter::HfTrainer,
            states: o.states,
        };
        let frozen = match (settings.freeze_vision, settings.freeze_merger) {
            (true, merger) => Frozen::vision(merger),
            (false, true) => Frozen::prefixes(&[MERGER_PREFIX]),
            (false, false) => Frozen::none(),
        };
        let opt = AdamW::new(vs, cfg, &frozen).context(
            "building the SFT optimizer (a model from Qwen2_5_VL::from_dir is frozen: call \
             model.var_store_mut().unwrap().unfreeze() first)",
        )?;
        let mut params: Vec<(String, Tensor)> = vs.variables().into_iter().filter(|(_, t)| t.requires_grad()).collect();
        params.sort_by(|a, b| a.0.cmp(&b.0));
        let params = params.into_iter().map(|(_, t)| t).collect();
        Ok(Self { settings: settings.clone(), base_seed, opt, order: None, params })
    }

    /// [`Self::new`] over the VarStore the model owns ([`Qwen2_5_VL::from_dir`], unfrozen).
    pub fn for_model(settings: &SftSettings, base_seed: u64, model: &Qwen2_5_VL) -> Result<Self> {
        let vs = model.var_store().context(
            "the model does not own its VarStore (built with Qwen2_5_VL::new): use SftTrainer::new with that VarStore",
        )?;
        Self::new(settings, base_seed, vs)
    }

    pub fn settings(&self) -> &SftSettings {
        &self.settings
    }

    /// The optimizer (its state is `state_tensors()` / `load_state_tensors()` for checkpoints).
    pub fn optimizer(&self) -> &AdamW {
        &self.opt
    }

    pub fn optimizer_mut(&mut self) -> &mut AdamW {
        &mut self.opt
    }

    /// Optimizer steps per epoch for `num_examples`: `floor(N / global_batch)`.
    pub fn steps_per_epoch(&self, num_examples: usize) -> Result<usize> {
        let gb = self.settings.global_batch as usize;
        ensure!(
            num_examples >= gb,
            "{num_examples} SFT examples are fewer than one global batch ({gb}); lower train.global_batch"
        );
        Ok(num_examples / gb)
    }

    /// Optimizer steps of the whole run: `epochs · floor(N / global_batch)`.
    pub fn total_steps(&self, num_examples: usize) -> Result<usize> {
        Ok(self.settings.epochs as usize * self.steps_per_epoch(num_examples)?)
    }

    /// The learning-rate schedule of the run (HF `ceil` warmup).
    pub fn schedule(&self, num_examples: usize) -> Result<LrSchedule> {
        let total = self.total_steps(num_examples)?;
        let o = &self.settings.optimizer;
        let s = match o.schedule {
            ScheduleKind::Cosine => LrSchedule::hf_cosine(o.lr, o.warmup_ratio, total, 0.0),
            ScheduleKind::Constant => {
                LrSchedule::ConstantWithWarmup { base_lr: o.lr, warmup_steps: warmup_steps_hf(total, o.warmup_ratio) }
            }
        };
        s.validate()?;
        Ok(s)
    }

    /// Indices of the examples of optimizer step `step` (0-based), in micro-batch order.
    pub fn step_examples(&mut self, step: usize, num_examples: usize) -> Result<Vec<usize>> {
        let spe = self.steps_per_epoch(num_examples)?;
        let total = self.total_steps(num_examples)?;
        ensure!(step < total, "step {step} is past the end of the run ({total} steps)");
        let epoch = step / spe;
        if !matches!(&self.order, Some((e, n, _)) if *e == epoch && *n == num_examples) {
            self.order = Some((epoch, num_examples, seed::epoch_order(self.base_seed, epoch as u64, num_examples)));
        }
        let gb = self.settings.global_batch as usize;
        let order = &self.order.as_ref().expect("set above").2;
        let at = (step % spe) * gb;
        Ok(order[at..at + gb].to_vec())
    }

    /// Forward and backward of every micro-batch of step `step`, gradients accumulated into the parameters
    /// (not zeroed first, no update): what [`Self::run`] does before clipping and stepping.
    pub fn accumulate(&mut self, model: &Qwen2_5_VL, data: &SftData, step: usize) -> Result<Accumulated> {
        let idx = self.step_examples(step, data.examples.len())?;
        let target_tokens: i64 = idx.iter().map(|&i| data.examples[i].targets()).sum();
        let micro = (self.settings.global_batch / self.settings.grad_accumulation) as usize;
        let norm = Normalization::GlobalTokenMean { step_targets: target_tokens };
        let (mut loss, mut tokens) = (0.0, 0);
        for chunk in idx.chunks(micro) {
            let b = collate(data, chunk, model)?;
            let logits = model.forward(&b.input_ids, Some(&b.attention_mask), b.images())?;
            let l = sft_loss(&logits, &b.labels, norm).with_context(|| format!("SFT loss of step {step}"))?;
            l.backward();
            loss += l.double_value(&[]);
            tokens += b.tokens;
        }
        Ok(Accumulated { loss, tokens, target_tokens })
    }

    /// The whole run from the first step.
    pub fn train(
        &mut self,
        model: &Qwen2_5_VL,
        data: &SftData,
        on_step: impl FnMut(&SftStepMetrics) -> Result<()>,
    ) -> Result<SftReport> {
        let total = self.total_steps(data.examples.len())?;
        self.run(model, data, 0..total, on_step)
    }

    /// Optimizer steps `steps` (0-based, within the run's total): `k..total` resumes after `k` steps, given the
    /// model weights and optimizer state ([`AdamW::load_state_tensors`]) saved after step `k`.
    pub fn run(
        &mut self,
        model: &Qwen2_5_VL,
        data: &SftData,
        steps: Range<usize>,
        mut on_step: impl FnMut(&SftStepMetrics) -> Result<()>,
    ) -> Result<SftReport> {
        let n = data.examples.len();
        let total = self.total_steps(n)?;
        ensure!(steps.end <= total, "steps {steps:?} run past the end of the run ({total} optimizer steps)");
        let schedule = self.schedule(n)?;
        let spe = self.steps_per_epoch(n)?;
        let clip = self.settings.optimizer.grad_clip;
        self.define_grads();
        self.opt.zero_grad();
        let mut report = SftReport {
            steps_run: 0,
            total_steps: total,
            skipped_steps: 0,
            final_loss: None,
            prepare: data.stats,
            unused_per_epoch: n - spe * self.settings.global_batch as usize,
        };
        for step in steps {
            let t0 = Instant::now();
            let acc = self.accumulate(model, data, step)?;
            let lr = schedule.lr(step);
            let r = self.opt.clip_and_step(lr, clip).with_context(|| format!("optimizer step {}", step + 1))?;
            let wall_s = t0.elapsed().as_secs_f64();
            let m = SftStepMetrics {
                step: step + 1,
                total_steps: total,
                epoch: step / spe,
                loss: acc.loss,
                lr,
                grad_norm: r.grad_norm,
                skipped: r.skipped,
                tokens: acc.tokens,
                target_tokens: acc.target_tokens,
                tokens_per_s: acc.tokens as f64 / wall_s.max(1e-9),
                wall_s,
            };
            report.steps_run += 1;
            report.skipped_steps += usize::from(r.skipped);
            report.final_loss = Some(acc.loss);
            on_step(&m).with_context(|| format!("the step callback failed at step {}", m.step))?;
        }
        Ok(report)
    }
}

impl SftTrainer {
    /// Gives every optimized variable a (zero) gradient, so that a variable a step does not reach is stepped with
    /// a zero gradient whether or not an earlier step of this process reached it (module doc).
    fn define_grads(&self) {
        let missing: Vec<Tensor> =
            self.params.iter().filter(|p| !p.grad().defined()).map(|p| p.sum(Kind::Float) * 0.0).collect();
        if !missing.is_empty() {
            Tensor::stack(&missing, 0).sum(Kind::Float).backward();
        }
    }
}

/// One right-padded micro-batch on the model's device.
struct MicroBatch {
    input_ids: Tensor,
    attention_mask: Tensor,
    labels: Tensor,
    pixel_values: Option<Tensor>,
    grids: Vec<[i64; 3]>,
    tokens: i64,
}

impl MicroBatch {
    fn images(&self) -> Option<Images<'_>> {
        self.pixel_values.as_ref().map(|p| Images { pixel_values: p, grid_thw: &self.grids })
    }
}

fn collate(data: &SftData, idx: &[usize], model: &Qwen2_5_VL) -> Result<MicroBatch> {
    let device = model.device();
    let rows: Vec<&SftExample> = idx.iter().map(|&i| &data.examples[i]).collect();
    let len = rows.iter().map(|e| e.input_ids.len()).max().unwrap_or(0);
    let (mut ids, mut mask, mut labels) = (Vec::new(), Vec::new(), Vec::new());
    let mut pixels = Vec::new();
    let mut grids = Vec::new();
    for (&i, e) in idx.iter().zip(&rows) {
        let pad = len - e.input_ids.len();
        ids.extend(e.input_ids.iter().copied().chain(std::iter::repeat_n(data.pad_id, pad)));
        mask.extend(std::iter::repeat_n(1i64, e.input_ids.len()).chain(std::iter::repeat_n(0, pad)));
        labels.extend(e.labels.iter().copied().chain(std::iter::repeat_n(IGNORE_INDEX, pad)));
        if !e.images.is_empty() {
            let inputs = data
                .image_cfg
                .preprocess_files(&e.images)
                .with_context(|| format!("images of SFT example {i} (record {})", e.record))?;
            ensure!(
                inputs.grids == e.grids,
                "the images of SFT example {i} (record {}) now give grids {:?}, not the {:?} they had when the data \
                 was prepared; were the files changed? prepare the data again",
                e.record,
                inputs.grids,
                e.grids
            );
            pixels.push(inputs.pixel_values);
            grids.extend(inputs.grids);
        }
    }
    let shape = [rows.len() as i64, len as i64];
    let t = |v: &[i64]| Tensor::from_slice(v).view(shape).to_device(device);
    let pixel_values = if pixels.is_empty() {
        None
    } else {
        let cat = Tensor::cat(&pixels, 0);
        let v = &model.config.vision_config;
        let want = (v.in_channels * v.temporal_patch_size * v.patch_size * v.patch_size) as i64;
        ensure!(
            cat.size()[1] == want,
            "the image processor makes patches of {} values but the model's vision tower takes {want} \
             (3 · temporal_patch_size · patch_size²): use the checkpoint's own preprocessor_config.json",
            cat.size()[1]
        );
        Some(cat.to_device(device))
    };
    Ok(MicroBatch {
        tokens: mask.iter().sum(),
        input_ids: t(&ids),
        attention_mask: t(&mask),
        labels: t(&labels),
        pixel_values,
        grids,
    })
}
