//! Experiment manifests, `experiments/<paper>/<stage>.toml` (issue 5 item 1; style_anchors B9): everything a
//! stage depends on, validated at load, with a canonical hash that run records and run ids are built from.
//!
//! Top-level keys: `schema_version`, `id`, `lock`, `paper`, `stage`, `model`, `data`, `seeds`, `train`
//! (train.rs), `eval`, `checkpoint`, `expected`. Every table rejects unknown keys; a missing key is an error
//! (only a few optional settings have a default, and the resolved manifest written into a record spells them
//! all out). Settings of one training kind on the other (PAD on SFT) are unknown keys; invalid combinations
//! (group size 1 with GRPO z-scores, eps_low ≥ 1, an empty PTST schedule, a moving revision in a locked
//! manifest, `data.transform` on a non-SFT stage, an evaluation-only stage without suites) are load errors naming
//! the key. `[data]`'s prompt settings (system prompt, format prompt, target transform) are applied by [`prompt`].
//! `data.source` may mix several data sets ([`mix`]); `train.dynamic_sampling` is DAPO's group filter ([`dynamic`]).
//! The optional `replay` table ([`replay`]: L2/L3 replay tolerances) is left out of the hash when absent.
//!
//! Hash: [`Manifest::sha256`] is the sha256 of the canonical JSON of the resolved manifest (object keys sorted
//! at every level, no whitespace, serde_json number formatting), so formatting, comments and key order in the
//! TOML do not change it, and every value does.
//!
//! Deliberate deviations from B9: the `[code]`, `[runtime]` and `[determinism]` tables are not part of the
//! manifest yet (the run record captures the code commit and environment, record.rs); the lock state is one
//! explicit `lock` table instead of `[*.request]` tables, because `r1lab lock` does not exist yet. Real-model
//! manifests whose revisions cannot be resolved offline say `lock = { state = "unlocked", reason = ... }`.
pub mod dynamic;
pub mod mix;
pub mod prompt;
pub mod replay;
pub mod source;
pub mod train;

use std::path::Path;

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::train::optim::StatePrecision;

pub use prompt::DataTransform;
pub use source::{DataFilters, DataSpec, ModelSpec, Source};
pub use train::{EvalOnlySettings, GrpoSettings, SftSettings, TrainSettings};

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub schema_version: u32,
    /// `<paper>/<stage>`, e.g. `vision_r1/ptst_stage1_stage2`.
    pub id: String,
    pub lock: LockState,
    pub paper: PaperRef,
    pub stage: StageRef,
    pub model: ModelSpec,
    pub data: DataSpec,
    pub seeds: Seeds,
    pub train: TrainSettings,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub eval: Vec<EvalSuite>,
    pub checkpoint: CheckpointPolicy,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expected: Vec<Expected>,
    /// Replay tolerances (L2 numeric, L3 statistical); absent: the hash is that of a manifest without it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replay: Option<replay::ReplaySpec>,
}

/// Whether every moving reference is pinned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case", deny_unknown_fields)]
pub enum LockState {
    Locked,
    /// Some Hub revision is a branch or tag; `reason` says why it could not be pinned yet.
    Unlocked {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaperRef {
    /// e.g. `2503.06749`.
    pub arxiv: String,
    /// The paper version the numbers come from, e.g. `v4`.
    pub version: String,
    pub section: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
}

/// Lineage: this stage and the stage whose output it starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageRef {
    pub name: String,
    /// The parent stage's manifest id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seeds {
    /// Every draw derives from `(base, domain, step, prompt, sample)` (repro::seed).
    pub base: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalSuite {
    /// Benchmark name, e.g. `mathvista_testmini`.
    pub name: String,
    pub source: Source,
    /// Evaluate every N training steps (and at the end); None: only at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_steps: Option<u64>,
    /// Evaluate the initial weights too (step 0; verl's and EasyR1's `trainer.val_before_train`). A stage that
    /// continues its parent's run can leave it out when the parent's final evaluation is the same suite with the same
    /// base seed: evaluation draws do not depend on the step (eval::heldout), so it would repeat that evaluation. An
    /// evaluation-only stage (`train.algo = "none"`) evaluates every suite once whatever this says, so a grid can
    /// turn a training stage that sets it into its step-0 baseline.
    #[serde(default = "yes", skip_serializing_if = "is_yes")]
    pub before_train: bool,
    pub max_new_tokens: u32,
    pub temperature: f64,
    pub top_p: f64,
    /// The split (file stem) of the source to evaluate on.
    #[serde(default = "default_eval_split")]
    pub split: String,
    /// How responses are scored; left out: the stage's GRPO reward, or Vision-R1's hard formatting reward.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scorer: Option<train::RewardSpec>,
}

fn yes() -> bool {
    true
}

fn is_yes(b: &bool) -> bool {
    *b
}

fn default_eval_split() -> String {
    "test".into()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointPolicy {
    pub every_steps: u64,
    /// Keep only the newest N checkpoints; None keeps all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_last: Option<u32>,
    pub include_optimizer: bool,
}

/// A published number this stage should reproduce.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// `<suite>.<metric>`, e.g. `mathvista_testmini.acc`.
    pub metric: String,
    pub value: f64,
    /// Absolute tolerance, in the metric's unit.
    pub tolerance: f64,
    /// Where the number is printed, e.g. `Tab.5 v4`.
    pub source: String,
}

impl Manifest {
    /// Parses and validates a manifest.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        let m: Manifest = toml::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "{}\n(manifest keys are checked strictly: a misspelt key, a missing one, or a setting of the other \
                 training kind, such as `pad` on an SFT stage, is refused; fix or remove the key named above)",
                e.to_string().trim_end()
            )
        })?;
        m.validate()?;
        Ok(m)
    }

    /// Reads, parses and validates `path`; errors name the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading manifest {}", path.display()))?;
        Self::from_toml_str(&text).with_context(|| format!("invalid manifest {}", path.display()))
    }

    /// The resolved manifest as TOML (every default spelled out).
    pub fn to_toml_string(&self) -> Result<String> {
        toml::to_string_pretty(self).context("serialising the manifest to TOML")
    }

    /// Writes the resolved manifest atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::io::write_atomic(path, self.to_toml_string()?.as_bytes())
    }

    pub fn is_locked(&self) -> bool {
        self.lock == LockState::Locked
    }

    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.schema_version == SCHEMA_VERSION,
            "schema_version = {} is not supported by this build (expects {SCHEMA_VERSION}); migrate the manifest",
            self.schema_version
        );
        let parts: Vec<&str> = self.id.split('/').collect();
        ensure!(
            parts.len() == 2 && parts.iter().all(|p| is_name(p)),
            "id = {:?} must be \"<paper>/<stage>\" of [a-z0-9_] names",
            self.id
        );
        if let LockState::Unlocked { reason } = &self.lock {
            ensure!(!reason.trim().is_empty(), "lock.reason is empty; say why the manifest is not locked");
        }
        ensure!(!self.paper.arxiv.trim().is_empty(), "paper.arxiv is empty; give the arXiv id");
        ensure!(!self.paper.section.trim().is_empty(), "paper.section is empty");
        ensure!(is_name(&self.stage.name), "stage.name = {:?} must be a [a-z0-9_] name", self.stage.name);
        if let Some(parent) = &self.stage.parent {
            ensure!(parent != &self.id, "stage.parent is this manifest's own id");
            ensure!(parent.split('/').count() == 2, "stage.parent = {parent:?} must be a manifest id");
        }
        let locked = self.is_locked();
        self.model.validate(locked)?;
        self.data.validate(locked)?;
        if let Source::ParentRun { stage, .. } = &self.model.source {
            ensure!(
                self.stage.parent.as_deref() == Some(stage.as_str()),
                "model.source.stage = {stage:?} but stage.parent = {:?}; a parent-run source must be the parent",
                self.stage.parent
            );
        }
        self.train.validate()?;
        let states = match &self.train {
            TrainSettings::Sft(s) => Some(s.optimizer.states),
            TrainSettings::Grpo(g) => Some(g.optimizer.states),
            _ => None,
        };
        if let Some(states @ (StatePrecision::F32Master | StatePrecision::ParamDtype)) = states {
            ensure!(
                self.model.dtype == "bf16",
                "train.optimizer.states = {} only differs from the default for bf16 parameters, but model.dtype = \
                 {:?}; remove it or train in bf16",
                serde_json::to_string(&states)?,
                self.model.dtype
            );
        }
        if matches!(self.data.source, Source::Mixed { .. }) {
            ensure!(
                !matches!(self.train, TrainSettings::Sft(_)),
                "data.source is mixed, but this stage is SFT, which reads one sharegpt file; merge the SFT data into \
                 one file or use a single source"
            );
        }
        if self.data.transform.is_some() {
            ensure!(
                matches!(self.train, TrainSettings::Sft(_)),
                "data.transform rewrites SFT targets, but this stage is not SFT; remove it"
            );
        }
        if matches!(self.train, TrainSettings::EvalOnly(_)) {
            ensure!(
                !self.eval.is_empty(),
                "train.algo = \"none\" only evaluates, but the manifest has no [[eval]] suite; add one"
            );
        }
        for (i, e) in self.eval.iter().enumerate() {
            ensure!(
                !matches!(e.source, Source::Mixed { .. }),
                "eval[{i}].source is mixed; an eval suite reads one benchmark: give each its own [[eval]] suite"
            );
            e.source.validate(&format!("eval[{i}].source"), locked)?;
            ensure!(e.every_steps != Some(0), "eval[{i}].every_steps must be >= 1 (or left out)");
            ensure!(e.max_new_tokens > 0, "eval[{i}].max_new_tokens must be >= 1");
            ensure!(e.temperature >= 0.0 && e.top_p > 0.0 && e.top_p <= 1.0, "eval[{i}]: bad temperature/top_p");
        }
        ensure!(self.checkpoint.every_steps > 0, "checkpoint.every_steps must be >= 1");
        ensure!(self.checkpoint.keep_last != Some(0), "checkpoint.keep_last = 0 keeps nothing; use >= 1");
        for (i, x) in self.expected.iter().enumerate() {
            ensure!(x.metric.contains('.'), "expected[{i}].metric = {:?} must be \"<suite>.<metric>\"", x.metric);
            ensure!(x.value.is_finite(), "expected[{i}].value must be finite");
            ensure!(x.tolerance.is_finite() && x.tolerance >= 0.0, "expected[{i}].tolerance must be >= 0");
        }
        if let Some(r) = &self.replay {
            r.validate()?;
        }
        Ok(())
    }

    /// The canonical JSON of the resolved manifest (what [`Manifest::sha256`] hashes).
    pub fn canonical_json(&self) -> Result<String> {
        let value = serde_json::to_value(self).context("serialising the manifest")?;
        let mut out = String::new();
        write_canonical(&value, &mut out);
        Ok(out)
    }

    /// sha256 (64 lowercase hex) of [`Manifest::canonical_json`].
    pub fn sha256(&self) -> Result<String> {
        Ok(sha256_hex(self.canonical_json()?.as_bytes()))
    }
}

/// Lowercase hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// JSON with object keys sorted at every level and no whitespace (independent of serde_json's map order).
fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_mix_dynamic;
