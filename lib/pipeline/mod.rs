//! `r1lab run MANIFEST`: one experiment stage from its manifest to a complete run record (issue 5; style_anchors
//! B9–B10). The same code runs the 7B stages on a GPU and the embedded default on a CPU.
//!
//! 1. Load and validate the manifest; the run id is `record::run_id` (manifest hash, code commit, seed).
//! 2. Resolve the model, the data and the eval suites to local files ([`resolve`]), hashing every input.
//! 3. Start the run record (`run.json`, status `running`), or reopen it with `--resume` and continue from its
//!    newest complete checkpoint.
//! 4. Train: SFT ([`sft`]) or GRPO under the PTST schedule ([`grpo`]), logging every step to `metrics.parquet`
//!    (deterministic values), `timing.parquet` (wall-clock values) and `fingerprints.jsonl`,
//!    evaluating the suites every `every_steps` and at the end ([`crate::eval::heldout`]), and checkpointing every
//!    `checkpoint.every_steps` and at the end ([`crate::repro::checkpoint`]). An evaluation-only stage
//!    (`train.algo = "none"`, [`eval_only`]) evaluates once at step 0 and checkpoints nothing.
//! 5. Finish the record with the outputs' hashes and the final metrics (`final_metrics.json`); on error, mark it
//!    failed with the error and return the error.
pub mod eval_only;
pub mod grpo;
pub mod mixed;
pub mod resolve;
pub mod sft;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use tch::{Device, Kind};

use crate::backend::{DeviceSpec, EnvInfo};
use crate::eval::heldout::EvalSummary;
use crate::hub::{Hub, HubOptions};
use crate::io::write_atomic;
use crate::model::qwen2_5_vl::model::run::parse_dtype;
use crate::repro::fingerprint::Fingerprints;
use crate::repro::manifest::{Manifest, TrainSettings};
use crate::repro::record::{CodeState, Metrics, Run, RunRecord, run_id};
use resolve::{Resolved, Roots};

/// Wall-clock metrics of a run.
pub const TIMING_FILE: &str = "timing.parquet";
/// Per-step fingerprints of a run.
pub const FINGERPRINTS_FILE: &str = "fingerprints.jsonl";

/// How `r1lab run` runs a manifest.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Repository root: relative local sources are resolved against it, the code commit is read from it.
    pub repo_root: PathBuf,
    /// Where run folders go (`artifacts/runs`).
    pub runs_root: PathBuf,
    pub device: DeviceSpec,
    /// Continue a run whose record says `running` or `failed` from its newest checkpoint.
    pub resume: bool,
    /// Draw progress bars on stderr (when it is a terminal).
    pub progress: bool,
    /// Hub cache and offline mode for `hub` sources (`HubOptions::from_env()` in the CLI).
    pub hub: HubOptions,
}

/// Controls of a run beyond [`RunOptions`], for `r1lab run --require-locked`, `r1lab replay` and `r1lab sweep`
/// (crate::repro::{lock, replay, sweep}); the default is a plain `r1lab run`.
#[derive(Debug, Clone, Default)]
pub struct RunControl {
    /// Refuse a manifest that is not locked ([`crate::repro::lock::require_locked`]).
    pub require_locked: bool,
    /// Stop after this many training steps (the schedules still span the manifest's full length, so steps
    /// `1..=k` are those of the full run).
    pub max_steps: Option<u64>,
    /// Put the run folder here instead of in `RunOptions::runs_root` (parent runs are still looked up there).
    pub record_root: Option<PathBuf>,
}

/// What a finished run produced.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub record: RunRecord,
    /// Last value of every logged metric plus the final evaluation.
    pub final_metrics: BTreeMap<String, f64>,
}

/// A resolved eval suite.
#[derive(Debug)]
pub struct SuiteData {
    pub index: usize,
    pub file: PathBuf,
    /// The suite's prompts, encoded (images preprocessed) at its first evaluation and reused by the later ones.
    pub prompts: Option<Vec<crate::rl::rollout::RlPrompt>>,
}

/// Everything a stage runner gets.
pub struct StageContext<'a> {
    pub manifest: &'a Manifest,
    pub model_dir: PathBuf,
    pub data_file: PathBuf,
    /// Every training data file: `[data_file]`, or one per member of a mixed source (`data_file` is the first).
    pub data_files: Vec<PathBuf>,
    pub suites: Vec<SuiteData>,
    pub device: Device,
    pub kind: Kind,
    pub run: &'a mut Run,
    /// Deterministic per-step values (`metrics.parquet`: byte-identical across replays on the same device kind).
    pub metrics: Metrics,
    /// Wall-clock values (`timing.parquet`: throughput and time splits, which no replay reproduces).
    pub timings: Metrics,
    /// `fingerprints.jsonl`.
    pub fingerprints: Fingerprints,
    pub progress: bool,
    /// Resume from this checkpoint folder.
    pub resume_from: Option<PathBuf>,
    /// Stop after this many steps ([`RunControl::max_steps`]).
    pub max_steps: Option<u64>,
}

impl StageContext<'_> {
    /// Writes the metrics table and plots so far (after every evaluation and at the end).
    pub fn flush_metrics(&mut self, plot: &[&str]) -> Result<()> {
        let names = self.metrics.names();
        let present: Vec<&str> = plot.iter().copied().filter(|p| names.iter().any(|n| n == p)).collect();
        if !present.is_empty() {
            self.run.write_metrics(&self.metrics, &present)?;
        }
        if !self.timings.is_empty() {
            self.timings.write_parquet(&self.run.dir().join(TIMING_FILE))?;
            self.run.add_output(TIMING_FILE)?;
        }
        if !self.fingerprints.steps.is_empty() {
            self.fingerprints.write(&self.run.dir().join(FINGERPRINTS_FILE))?;
            self.run.add_output(FINGERPRINTS_FILE)?;
        }
        Ok(())
    }

    /// Restores the tables of a run resumed after `next_step` completed steps.
    pub fn restore(&mut self, next_step: u64) -> Result<()> {
        let dir = self.run.dir().to_path_buf();
        self.metrics = Metrics::read_parquet(&dir.join("metrics.parquet"), next_step + 1)?;
        if dir.join(TIMING_FILE).is_file() {
            self.timings = Metrics::read_parquet(&dir.join(TIMING_FILE), next_step + 1)?;
        }
        if dir.join(FINGERPRINTS_FILE).is_file() {
            self.fingerprints = Fingerprints::read(&dir.join(FINGERPRINTS_FILE), next_step + 1)?;
        }
        Ok(())
    }

    /// Logs an evaluation at `step` and writes its rows to `eval/<suite>-step<step>.jsonl`.
    pub fn log_eval(
        &mut self,
        step: u64,
        suite: &str,
        summary: &EvalSummary,
        rows: &[crate::eval::heldout::EvalRow],
    ) -> Result<()> {
        let values = summary.metrics(suite);
        let named: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        self.metrics.append(step, &named)?;
        let mut text = String::new();
        for r in rows {
            text.push_str(&serde_json::to_string(r)?);
            text.push('\n');
        }
        let rel = format!("eval/{suite}-step{step:06}.jsonl");
        let path = self.run.dir().join(&rel);
        std::fs::create_dir_all(path.parent().unwrap())?;
        write_atomic(&path, text.as_bytes())?;
        self.run.add_output(&rel)
    }
}

/// Runs the manifest at `path` (see the module doc).
pub fn run_manifest(path: &Path, opts: &RunOptions) -> Result<RunOutcome> {
    run_manifest_with(path, opts, &RunControl::default())
}

/// [`run_manifest`] under `control`.
pub fn run_manifest_with(path: &Path, opts: &RunOptions, control: &RunControl) -> Result<RunOutcome> {
    // `path` is a manifest, or (with --resume) the folder of the run to continue, whose record holds the manifest.
    let (manifest, run_folder) = if path.is_dir() {
        ensure!(
            opts.resume,
            "{} is a run folder; a run folder can only be continued: add --resume (or pass a manifest)",
            path.display()
        );
        (RunRecord::read(path)?.manifest, Some(path))
    } else {
        (Manifest::load(path)?, None)
    };
    if control.require_locked {
        crate::repro::lock::require_locked(&manifest, path)?;
    }
    let code = CodeState::detect(&opts.repo_root);
    let (record_root, id) = match run_folder {
        Some(dir) => {
            let name = dir.file_name().and_then(|n| n.to_str()).context("the run folder has no name")?;
            (dir.parent().unwrap_or(Path::new(".")).to_path_buf(), name.to_string())
        }
        None => {
            let parent =
                resolve::parent_key(&manifest.model.source, &opts.runs_root).context("resolving model.source")?;
            let id = run_id(&manifest, &code, parent.as_deref())?;
            (control.record_root.clone().unwrap_or_else(|| opts.runs_root.clone()), id)
        }
    };
    let record_root = &record_root;
    let roots = Roots { repo: opts.repo_root.clone(), runs: opts.runs_root.clone() };
    let hub = Hub::new(opts.hub.clone());
    let model: Resolved = resolve::model_dir(&manifest.model.source, &roots, &hub).context("resolving model.source")?;
    let ext = match manifest.train {
        TrainSettings::Sft(_) => "json",
        TrainSettings::Grpo(_) | TrainSettings::EvalOnly(_) => "parquet",
    };
    let (data_files, data_inputs) =
        mixed::data_files(&manifest.data, ext, &roots, &hub).context("resolving data.source")?;
    let mut inputs = model.inputs.clone();
    inputs.extend(data_inputs);
    let mut suites = Vec::new();
    for (i, suite) in manifest.eval.iter().enumerate() {
        let r =
            resolve::data_file(&suite.source, &suite.split, "parquet", &roots, &hub, &format!("eval/{}", suite.name))
                .with_context(|| format!("resolving eval[{i}] ({})", suite.name))?;
        inputs.extend(r.inputs);
        suites.push(SuiteData { index: i, file: r.path, prompts: None });
    }
    let device = opts.device.resolve()?;
    let env = EnvInfo::collect(opts.device, device);
    let (mut run, resume_from) = if opts.resume {
        let run = Run::reopen(record_root, &id, &manifest)?;
        let ckpt = crate::repro::checkpoint::latest(run.dir())?.map(|c| c.dir);
        (run, ckpt)
    } else {
        (Run::start(record_root, &id, &manifest, code, &env, inputs)?, None)
    };
    let kind = parse_dtype(&manifest.model.dtype)?;
    let mut ctx = StageContext {
        manifest: &manifest,
        model_dir: model.path,
        data_file: data_files[0].clone(),
        data_files,
        suites,
        device,
        kind,
        run: &mut run,
        metrics: Metrics::new(),
        timings: Metrics::new(),
        fingerprints: Fingerprints::default(),
        progress: opts.progress,
        resume_from,
        max_steps: control.max_steps,
    };
    let result = match &manifest.train {
        TrainSettings::Sft(s) => sft::run_stage(&mut ctx, s),
        TrainSettings::Grpo(s) => grpo::run_stage(&mut ctx, s),
        TrainSettings::EvalOnly(_) => eval_only::run_stage(&mut ctx),
    };
    match result {
        Ok(final_metrics) => {
            let json = serde_json::to_vec_pretty(&final_metrics)?;
            write_atomic(&run.dir().join("final_metrics.json"), &json)?;
            run.add_output("final_metrics.json")?;
            let dir = run.dir().to_path_buf();
            let record = run.finish()?;
            Ok(RunOutcome { dir, record, final_metrics })
        }
        Err(e) => {
            let msg = format!("{e:#}");
            run.fail(&msg).context("marking the run failed")?;
            Err(e)
        }
    }
}

/// The outcome of an earlier finished run of the manifest at `path` (same manifest hash, code commit and seed, so
/// the same run id), if there is one: `make demo` run twice reuses the stages that already finished.
pub fn finished_outcome(path: &Path, opts: &RunOptions) -> Result<Option<RunOutcome>> {
    let manifest = Manifest::load(path)?;
    // A stage whose parent has not finished cannot have finished either.
    let Ok(parent) = resolve::parent_key(&manifest.model.source, &opts.runs_root) else { return Ok(None) };
    let id = run_id(&manifest, &CodeState::detect(&opts.repo_root), parent.as_deref())?;
    let dir = opts.runs_root.join(&id);
    if !dir.join("run.json").is_file() {
        return Ok(None);
    }
    let record = RunRecord::read(&dir)?;
    if !record.is_complete() {
        return Ok(None);
    }
    let path = dir.join("final_metrics.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let final_metrics = serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    Ok(Some(RunOutcome { dir, record, final_metrics }))
}

/// The last logged value of every metric.
pub fn last_values(m: &Metrics) -> BTreeMap<String, f64> {
    m.names().into_iter().filter_map(|n| m.series(&n).last().map(|(_, v)| (n.clone(), *v))).collect()
}
