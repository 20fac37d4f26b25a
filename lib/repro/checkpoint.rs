//! Training checkpoints with verification, for exact resume and parent-run lineage (issue 5 items 2 and 4;
//! style_anchors B10 "checkpoints with optimizer, RNG and data cursor", B11 L1 "resume from the checkpoint at
//! step s").
//!
//! Layout, `<run_dir>/checkpoints/step-{step:06}/`:
//! - `model/`: a Hugging Face model folder (`config.json`, `model.safetensors`, written by
//!   [`crate::model::qwen2_5_vl::save`]) plus the processor files of the run's model source folder that exist
//!   ([`PROCESSOR_FILES`]), so `Qwen2_5_VL::from_dir` and `ChatProcessor::from_dir` open it directly and a later
//!   stage can start from it;
//! - `optimizer.safetensors`: [`AdamW::state_tensors`] (moments and step), when given;
//! - `reference.safetensors`: the frozen reference policy's tensors (needed to resume mid-stage under PTST
//!   `reference = stage_init`), when given;
//! - `trainer.json` ([`TrainerState`]): kind (sft | grpo), `next_step`, `updates`, PTST stage index, manifest
//!   sha256, run id and free-form counters;
//! - `checkpoint.json` ([`CheckpointRecord`]), written last: the sha256 of every other file (path relative to
//!   the step folder, `/`-separated) and `params_sha256`, the canonical parameter hash of the policy.
//!
//! `params_sha256` is the canonical parameter hash of [`hash`] (B10; the `sha256` of a `ParentRun` model source):
//! [`params_sha256`] of the live policy equals [`params_sha256_safetensors`] of its saved `model/` folder.
//!
//! Crash safety: the step folder is built under `checkpoints/.tmp-step-{step:06}-*` and renamed into place when
//! complete ([`replace_dir`]); a folder without `checkpoint.json` (or a leftover `.tmp-*`) is never a
//! checkpoint. `keep_last` pruning runs only after the new checkpoint is in place and deletes a pruned
//! folder's `checkpoint.json` first, so an interrupted prune leaves no "complete" half-deleted checkpoint.
//!
//! Deliberate deviations from B10: the folder is `checkpoints/step-{step:06}` (not `ckpt/step_{step:06}`); the
//! model is a loadable HF folder instead of a bare `model.safetensors`; there is no data cursor or RNG state
//! because data order and every draw are pure functions of (seed, step) (`rl::run`, `repro::seed`), so
//! `next_step` is the cursor; the model is always written as one `model.safetensors` (no shards), though
//! hashing and loading accept sharded folders. Verification reads every file twice (file hash, then the
//! parameter hash of the safetensors), acceptable at checkpoint frequency.
pub mod hash;

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use tch::Tensor;

pub use self::hash::{params_sha256, params_sha256_safetensors};
use crate::io::{sha256_file, write_atomic};
use crate::model::qwen2_5_vl::Qwen2_5_VL;
use crate::model::qwen2_5_vl::config::Config;
use crate::model::qwen2_5_vl::save::{SaveOptions, replace_dir, state_dict, write_checkpoint_files, write_safetensors};
use crate::model::qwen2_5_vl::weights::load_safetensors;
use crate::repro::record::RunRecord;
use crate::train::optim::AdamW;

/// Version of the `checkpoint.json` layout.
pub const CHECKPOINT_SCHEMA_VERSION: u32 = 1;
/// The folder of a run holding its checkpoints.
pub const CHECKPOINTS_DIR: &str = "checkpoints";
/// The model folder inside a checkpoint.
pub const MODEL_DIR: &str = "model";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";
pub const REFERENCE_FILE: &str = "reference.safetensors";
pub const TRAINER_FILE: &str = "trainer.json";
/// Written last; its presence makes a folder a checkpoint.
pub const RECORD_FILE: &str = "checkpoint.json";
/// Copied from the model source folder into `model/` when present.
pub const PROCESSOR_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    "chat_template.json",
    "chat_template.jinja",
    "preprocessor_config.json",
    "generation_config.json",
];

const CORRUPT: &str = "the checkpoint is corrupt; delete it to fall back to the previous one";

/// Which trainer wrote the checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainerKind {
    Sft,
    Grpo,
}

/// `trainer.json`: the counters a trainer needs to continue exactly where it stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerState {
    pub kind: TrainerKind,
    /// The next step to run (= steps completed).
    pub next_step: u64,
    /// Optimizer updates done (drives the LR and entropy schedules).
    pub updates: u64,
    /// PTST stage index of the last completed step (0 for single-stage runs and SFT).
    pub stage: usize,
    pub manifest_sha256: String,
    pub run_id: String,
    /// Anything else a trainer counts (epoch, tokens seen, ...).
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
}

/// `checkpoint.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointRecord {
    pub schema_version: u32,
    pub step: u64,
    /// Canonical parameter hash of the policy (see the module docs).
    pub params_sha256: String,
    /// Every other file of the checkpoint (relative, `/`-separated) → sha256 of its bytes.
    pub files: BTreeMap<String, String>,
}

/// What goes into a checkpoint.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointParts<'a> {
    /// The policy; must own its VarStore (`Qwen2_5_VL::from_dir`).
    pub model: &'a Qwen2_5_VL,
    /// The run's model source folder, where the processor files are copied from (`None`: no processor files).
    pub processor_dir: Option<&'a Path>,
    /// Pass the optimizer when the manifest's `checkpoint.include_optimizer` is true.
    pub optimizer: Option<&'a AdamW>,
    pub reference: Option<&'a Qwen2_5_VL>,
    pub trainer: &'a TrainerState,
    /// `checkpoint.keep_last`: keep only the newest N complete checkpoints (None keeps all).
    pub keep_last: Option<u32>,
}

/// A verified checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub dir: PathBuf,
    pub record: CheckpointRecord,
    pub trainer: TrainerState,
}

impl CheckpointInfo {
    pub fn step(&self) -> u64 {
        self.record.step
    }

    /// The HF model folder (`Qwen2_5_VL::from_dir`, `ChatProcessor::from_dir`).
    pub fn model_dir(&self) -> PathBuf {
        self.dir.join(MODEL_DIR)
    }

    pub fn has_optimizer(&self) -> bool {
        self.record.files.contains_key(OPTIMIZER_FILE)
    }

    pub fn has_reference(&self) -> bool {
        self.record.files.contains_key(REFERENCE_FILE)
    }

    /// Refuses to resume a run of another manifest.
    pub fn require_manifest(&self, manifest_sha256: &str) -> Result<()> {
        ensure!(
            self.trainer.manifest_sha256 == manifest_sha256,
            "checkpoint {} belongs to manifest {} (run {}), not to {manifest_sha256}; resume with the manifest it \
             was written under or start a new run",
            self.dir.display(),
            self.trainer.manifest_sha256,
            self.trainer.run_id
        );
        Ok(())
    }
}

/// `step-{step:06}`.
pub fn step_dir_name(step: u64) -> String {
    format!("step-{step:06}")
}

fn parse_step_dir_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("step-")?;
    (digits.len() >= 6 && digits.bytes().all(|b| b.is_ascii_digit())).then(|| digits.parse().ok()).flatten()
}

/// Writes the checkpoint of `step` under `<run_dir>/checkpoints/` (see the module docs), replacing an existing
/// checkpoint of the same step, then prunes to `keep_last`.
pub fn save(run_dir: &Path, step: u64, parts: &CheckpointParts) -> Result<CheckpointInfo> {
    if let Some(k) = parts.keep_last {
        ensure!(k >= 1, "checkpoint keep_last = 0 would delete the checkpoint just written; use >= 1 or None");
    }
    let vs = parts
        .model
        .var_store()
        .context("saving a checkpoint needs a policy that owns its VarStore (built with Qwen2_5_VL::from_dir)")?;
    let root = run_dir.join(CHECKPOINTS_DIR);
    std::fs::create_dir_all(&root).with_context(|| format!("creating {}", root.display()))?;
    let name = step_dir_name(step);
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".tmp-{name}-"))
        .tempdir_in(&root)
        .with_context(|| format!("creating a temporary folder in {} for the checkpoint", root.display()))?;
    let model_dir = tmp.path().join(MODEL_DIR);
    std::fs::create_dir(&model_dir).with_context(|| format!("creating {}", model_dir.display()))?;
    write_checkpoint_files(vs, &parts.model.config, &model_dir, SaveOptions::default())
        .context("writing the policy into the checkpoint")?;
    if let Some(src) = parts.processor_dir {
        for file in PROCESSOR_FILES {
            let from = src.join(file);
            if from.is_file() {
                copy_synced(&from, &model_dir.join(file))?;
            }
        }
    }
    if let Some(opt) = parts.optimizer {
        write_safetensors(&opt.state_tensors(), &tmp.path().join(OPTIMIZER_FILE))
            .context("writing the optimizer state into the checkpoint")?;
    }
    if let Some(reference) = parts.reference {
        let rvs = reference.var_store().context("the reference policy must own its VarStore (frozen_copy)")?;
        write_safetensors(&state_dict(rvs, &reference.config)?, &tmp.path().join(REFERENCE_FILE))
            .context("writing the reference policy into the checkpoint")?;
    }
    let trainer = serde_json::to_vec_pretty(parts.trainer).context("serialising trainer.json")?;
    write_atomic(&tmp.path().join(TRAINER_FILE), &trainer)?;
    let mut files = BTreeMap::new();
    for rel in list_files(tmp.path())? {
        files.insert(rel.clone(), sha256_file(&tmp.path().join(&rel))?);
    }
    let record =
        CheckpointRecord { schema_version: CHECKPOINT_SCHEMA_VERSION, step, params_sha256: params_sha256(vs)?, files };
    let json = serde_json::to_vec_pretty(&record).context("serialising checkpoint.json")?;
    write_atomic(&tmp.path().join(RECORD_FILE), &json)?;
    let dir = root.join(&name);
    replace_dir(tmp, &dir)?;
    if let Some(k) = parts.keep_last {
        prune(&root, k as usize, step)?;
    }
    Ok(CheckpointInfo { dir, record, trainer: parts.trainer.clone() })
}

/// The record (`checkpoint.json`) of the checkpoint folder `dir`, read and schema-checked but not verified against
/// the files (see [`verify`]).
pub fn read_record(dir: &Path) -> Result<CheckpointRecord> {
    let rec_path = dir.join(RECORD_FILE);
    ensure!(
        rec_path.is_file(),
        "{} has no {RECORD_FILE}: it is not a complete checkpoint (an interrupted save?); delete it",
        dir.display()
    );
    let text = std::fs::read(&rec_path).with_context(|| format!("reading {}", rec_path.display()))?;
    let record: CheckpointRecord =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}: {CORRUPT}", rec_path.display()))?;
    ensure!(
        record.schema_version == CHECKPOINT_SCHEMA_VERSION,
        "{} has schema_version {} but this build reads {CHECKPOINT_SCHEMA_VERSION}",
        rec_path.display(),
        record.schema_version
    );
    Ok(record)
}

/// Re-hashes every file of the checkpoint folder `dir` and checks the parameter hash of its model against the
/// record. Errors name the file.
pub fn verify(dir: &Path) -> Result<CheckpointInfo> {
    let record = read_record(dir)?;
    let rec_path = dir.join(RECORD_FILE);
    if let Some(step) = dir.file_name().and_then(|n| n.to_str()).and_then(parse_step_dir_name) {
        ensure!(step == record.step, "{} records step {}: {CORRUPT}", dir.display(), record.step);
    }
    for required in [TRAINER_FILE, "model/config.json"] {
        ensure!(record.files.contains_key(required), "{} lists no {required}: {CORRUPT}", rec_path.display());
    }
    for (rel, want) in &record.files {
        let path = dir.join(rel);
        ensure!(path.is_file(), "{rel} of checkpoint {} is missing: {CORRUPT}", dir.display());
        let got = sha256_file(&path)?;
        ensure!(
            &got == want,
            "{rel} of checkpoint {} has sha256 {got}, the record says {want}: {CORRUPT}",
            dir.display()
        );
    }
    let on_disk: BTreeSet<String> = list_files(dir)?.into_iter().filter(|f| f != RECORD_FILE).collect();
    let extra: Vec<&String> = on_disk.iter().filter(|f| !record.files.contains_key(*f)).collect();
    ensure!(
        extra.is_empty(),
        "checkpoint {} holds files its record does not list: {extra:?}; {CORRUPT}",
        dir.display()
    );
    let model_dir = dir.join(MODEL_DIR);
    let params = params_sha256_safetensors(&model_dir)?;
    ensure!(
        params == record.params_sha256,
        "the parameters in {} hash to {params}, the record says {}: {CORRUPT}",
        model_dir.display(),
        record.params_sha256
    );
    let trainer_path = dir.join(TRAINER_FILE);
    let bytes = std::fs::read(&trainer_path).with_context(|| format!("reading {}", trainer_path.display()))?;
    let trainer =
        serde_json::from_slice(&bytes).with_context(|| format!("parsing {}: {CORRUPT}", trainer_path.display()))?;
    Ok(CheckpointInfo { dir: dir.to_path_buf(), record, trainer })
}

/// The newest complete checkpoint of the run in `run_dir`, verified; `None` when there is none. Folders without
/// `checkpoint.json` and temporary folders are ignored; a newest checkpoint that fails verification is an error
/// (never a silent fall-back to an older one).
pub fn latest(run_dir: &Path) -> Result<Option<CheckpointInfo>> {
    let root = run_dir.join(CHECKPOINTS_DIR);
    match complete_checkpoints(&root)?.pop() {
        Some((_, dir)) => verify(&dir).map(Some),
        None => Ok(None),
    }
}

/// Complete checkpoints (with `checkpoint.json`) under `root`, by increasing step; empty when `root` is absent.
pub fn complete_checkpoints(root: &Path) -> Result<Vec<(u64, PathBuf)>> {
    if !root.exists() {
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).with_context(|| format!("listing {}", root.display()))? {
        let entry = entry.with_context(|| format!("listing {}", root.display()))?;
        let Some(step) = entry.file_name().to_str().and_then(parse_step_dir_name) else { continue };
        if entry.path().join(RECORD_FILE).is_file() {
            out.push((step, entry.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Deletes the oldest complete checkpoints beyond `keep`, never `just_saved`.
fn prune(root: &Path, keep: usize, just_saved: u64) -> Result<()> {
    let all = complete_checkpoints(root)?;
    let excess = all.len().saturating_sub(keep);
    for (step, dir) in all.into_iter().filter(|(s, _)| *s != just_saved).take(excess) {
        std::fs::remove_file(dir.join(RECORD_FILE))
            .with_context(|| format!("pruning checkpoint step {step}: removing {}", dir.join(RECORD_FILE).display()))?;
        std::fs::remove_dir_all(&dir).with_context(|| format!("pruning checkpoint {}", dir.display()))?;
    }
    Ok(())
}

/// Loads a verified checkpoint into fresh objects built with the same config and settings: the policy's weights,
/// and optionally the AdamW state and the reference policy. The caller restores `info.trainer`'s counters. The
/// loaded policy must hash to the record's `params_sha256` (same dtype as saved), so a resume is exact.
pub fn load_into(
    info: &CheckpointInfo,
    model: &mut Qwen2_5_VL,
    optimizer: Option<&mut AdamW>,
    reference: Option<&mut Qwen2_5_VL>,
) -> Result<()> {
    let model_dir = info.model_dir();
    let cfg = Config::from_file(&model_dir.join("config.json"))?;
    ensure!(
        cfg == model.config,
        "the model config in {} differs from the model being resumed; build the model from that config",
        model_dir.display()
    );
    let vs = model.var_store().context("load_into needs a policy that owns its VarStore (Qwen2_5_VL::from_dir)")?;
    load_safetensors(vs, &model_dir)?.ensure_all_used(&[])?;
    let got = params_sha256(vs)?;
    ensure!(
        got == info.record.params_sha256,
        "after loading {} the policy hashes to {got}, not the recorded {} (is the model in another dtype than the \
         checkpoint?)",
        model_dir.display(),
        info.record.params_sha256
    );
    if let Some(opt) = optimizer {
        let path = info.dir.join(OPTIMIZER_FILE);
        ensure!(
            info.has_optimizer(),
            "checkpoint {} has no {OPTIMIZER_FILE} (saved without the optimizer); an exact resume needs it",
            info.dir.display()
        );
        let state = Tensor::read_safetensors(&path).with_context(|| format!("reading {}", path.display()))?;
        opt.load_state_tensors(state).with_context(|| format!("restoring AdamW from {}", path.display()))?;
    }
    if let Some(reference) = reference {
        let path = info.dir.join(REFERENCE_FILE);
        ensure!(
            info.has_reference(),
            "checkpoint {} has no {REFERENCE_FILE} (saved without a reference policy)",
            info.dir.display()
        );
        let rvs = reference.var_store().context("the reference policy must own its VarStore")?;
        load_safetensors(rvs, &path)?.ensure_all_used(&[])?;
    }
    Ok(())
}

/// The checkpoint folder of a complete run (`RunRecord::require_complete`) of manifest `stage_id` under
/// `runs_root` at `step` whose verified `params_sha256` is `sha256` (a `ParentRun` model source); its model is in
/// `<result>/model`. The error lists what was found instead.
pub fn find_parent(runs_root: &Path, stage_id: &str, step: u64, sha256: &str) -> Result<PathBuf> {
    let mut found = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(runs_root)
        .with_context(|| format!("listing the runs in {}", runs_root.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("run.json").is_file())
        .collect();
    entries.sort();
    for run_dir in entries {
        let name = run_dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        match RunRecord::read(&run_dir) {
            Ok(rec) if rec.manifest.id != stage_id => continue,
            Ok(_) => {}
            Err(e) => {
                found.push(format!("{name}: unreadable run.json ({e:#})"));
                continue;
            }
        }
        if let Err(e) = RunRecord::require_complete(&run_dir) {
            found.push(format!("{name}: {e:#}"));
            continue;
        }
        let checkpoints = complete_checkpoints(&run_dir.join(CHECKPOINTS_DIR))?;
        let Some((_, dir)) = checkpoints.iter().find(|(s, _)| *s == step) else {
            let steps: Vec<u64> = checkpoints.iter().map(|(s, _)| *s).collect();
            found.push(format!("{name}: complete, no checkpoint at step {step} (checkpoint steps {steps:?})"));
            continue;
        };
        let recorded = read_record(dir).map(|r| r.params_sha256);
        match recorded {
            Ok(h) if h == sha256 => match verify(dir) {
                Ok(_) => return Ok(dir.clone()),
                Err(e) => found.push(format!("{name}: step {step} matches but fails verification: {e:#}")),
            },
            Ok(h) => found.push(format!("{name}: step {step} has params_sha256 {h}")),
            Err(e) => found.push(format!("{name}: step {step}: {e:#}")),
        }
    }
    let found = if found.is_empty() { format!("no run of stage {stage_id} at all") } else { found.join("; ") };
    bail!(
        "no complete run of stage {stage_id} in {} has a checkpoint at step {step} with params_sha256 {sha256}; \
         found: {found}. Run the parent stage, or fix model.source in the manifest",
        runs_root.display()
    )
}

/// Every regular file under `dir`, as sorted `/`-separated relative paths.
fn list_files(dir: &Path) -> Result<Vec<String>> {
    fn walk(base: &Path, rel: &str, out: &mut Vec<String>) -> Result<()> {
        let here = if rel.is_empty() { base.to_path_buf() } else { base.join(rel) };
        for entry in std::fs::read_dir(&here).with_context(|| format!("listing {}", here.display()))? {
            let entry = entry.with_context(|| format!("listing {}", here.display()))?;
            let name = entry.file_name().into_string().map_err(|n| anyhow::anyhow!("file name {n:?} is not UTF-8"))?;
            let child = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let kind = entry.file_type().with_context(|| format!("reading {}", entry.path().display()))?;
            if kind.is_dir() {
                walk(base, &child, out)?;
            } else {
                out.push(child);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out)?;
    out.sort();
    Ok(out)
}

fn copy_synced(from: &Path, to: &Path) -> Result<()> {
    std::fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    File::open(to).and_then(|f| f.sync_all()).with_context(|| format!("flushing {}", to.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_folder_names_round_trip() {
        assert_eq!(step_dir_name(42), "step-000042");
        assert_eq!(parse_step_dir_name("step-000042"), Some(42));
        assert_eq!(parse_step_dir_name("step-1234567"), Some(1_234_567));
        for bad in ["step-42", ".tmp-step-000042-abc", "step-00004x", "model"] {
            assert_eq!(parse_step_dir_name(bad), None, "{bad}");
        }
    }
}
