//! Where a stage's model and data come from (style_anchors B5, B9 `[model]`/`[data]`): a Hugging Face Hub
//! repository pinned by a 40-hex commit plus optional per-file sha256 (the LFS oid), a local directory, or the
//! checkpoint of a parent run identified by its hash; or, for training data only, two or more of those mixed
//! into one set (`kind = "mixed"`, [`super::mix`]: ReVisual-R1 Tab.3 "CS+Mixed-RL").
//!
//! Deliberate deviation from B9: hashes are written as bare 64-hex strings (no `sha256:` prefix); the key
//! name already says which hash it is.
use std::collections::BTreeMap;

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};

/// One input of a stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A Hub repository at a commit. `files` maps a path in the repository to the sha256 of its bytes.
    Hub {
        repo: String,
        revision: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        files: BTreeMap<String, String>,
    },
    /// A local folder (relative paths are relative to the repository root). `files` as for `Hub`.
    Local {
        path: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        files: BTreeMap<String, String>,
    },
    /// The checkpoint a parent stage's run wrote: its manifest id, the step, and the canonical parameter hash of
    /// the checkpoint (`repro::checkpoint`). In an unlocked manifest `step` and `sha256` may be left out: the final
    /// checkpoint of the newest finished run of that stage is used, and its step and hash go into run.json.
    ParentRun {
        stage: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
    },
    /// Two or more data sources read as one training set ([`super::mix`]): each member names its own source
    /// and split, and `mix` says how their rows are combined. Only `data.source` of a GRPO or evaluation-only
    /// stage may be mixed; members cannot be mixed themselves.
    Mixed { mix: super::mix::MixRule, members: Vec<super::mix::MixMember> },
}

impl Source {
    /// Checks the source; `key` names it in errors (e.g. `model.source`). A Hub revision must be a 40-hex
    /// commit unless the manifest is unlocked.
    pub fn validate(&self, key: &str, locked: bool) -> Result<()> {
        match self {
            Source::Hub { repo, revision, files } => {
                let parts: Vec<&str> = repo.split('/').collect();
                ensure!(
                    parts.len() == 2 && parts.iter().all(|p| !p.is_empty()),
                    "{key}.repo = {repo:?} is not a Hub repository name of the form \"owner/name\""
                );
                ensure!(!revision.trim().is_empty(), "{key}.revision is empty; give a 40-hex commit");
                if locked && !is_hex(revision, 40) {
                    bail!(
                        "{key}.revision = {revision:?} is not a 40-hex commit; pin the commit (lowercase hex) or mark \
                         the manifest unlocked with `lock = {{ state = \"unlocked\", reason = \"...\" }}`"
                    );
                }
                validate_files(key, files)
            }
            Source::Local { path, files } => {
                ensure!(!path.trim().is_empty(), "{key}.path is empty; give the folder holding the files");
                if locked && files.is_empty() {
                    bail!(
                        "{key} is a local folder without file hashes in a locked manifest; list them as \
                         `files = {{ \"name\" = \"<sha256>\" }}` or mark the manifest unlocked"
                    );
                }
                validate_files(key, files)
            }
            Source::ParentRun { stage, step, sha256 } => {
                ensure!(!stage.trim().is_empty(), "{key}.stage is empty; name the parent stage's manifest id");
                match sha256 {
                    Some(h) => ensure!(is_hex(h, 64), "{key}.sha256 = {h:?} is not a 64-hex sha256 of the checkpoint"),
                    None => ensure!(
                        !locked,
                        "{key} has no sha256: a locked manifest must pin the parent checkpoint's parameter hash"
                    ),
                }
                ensure!(step.is_some() || !locked, "{key} has no step: a locked manifest must pin the parent's step");
                Ok(())
            }
            Source::Mixed { members, .. } => super::mix::validate_members(key, members, locked),
        }
    }

    /// Whether this source is pinned by content: a Hub commit, a local folder with file hashes, or a parent
    /// checkpoint hash.
    pub fn is_locked(&self) -> bool {
        match self {
            Source::Hub { revision, .. } => is_hex(revision, 40),
            Source::Local { files, .. } => !files.is_empty(),
            Source::ParentRun { step, sha256, .. } => step.is_some() && sha256.is_some(),
            Source::Mixed { members, .. } => members.iter().all(|m| m.source.is_locked()),
        }
    }
}

fn validate_files(key: &str, files: &BTreeMap<String, String>) -> Result<()> {
    for (name, hash) in files {
        ensure!(!name.trim().is_empty(), "{key}.files has an empty file name");
        ensure!(
            is_hex(hash, 64),
            "{key}.files.{name:?} = {hash:?} is not a 64-hex sha256 (lowercase, no prefix); hash the file's bytes"
        );
    }
    Ok(())
}

/// `s` is exactly `len` lowercase hex digits.
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Filters applied to a data source before training (B9 `[data]`), all optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataFilters {
    /// Drop prompts longer than this many tokens (EasyR1 `filter_overlong_prompts` with `max_prompt_length`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_prompt_tokens: Option<u64>,
    /// Keep only the first N examples (after the seeded order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_examples: Option<u64>,
    /// Images are resized into `[min_pixels, max_pixels]` (Qwen2-VL processor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_pixels: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_pixels: Option<u64>,
    /// Drop rows whose answer the grader cannot verify.
    #[serde(default)]
    pub require_verifiable_answer: bool,
}

/// The model a stage starts from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub source: Source,
    /// Parameter dtype for training: "bf16" | "f32".
    pub dtype: String,
}

/// The data a stage trains on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    pub source: Source,
    pub split: String,
    #[serde(default)]
    pub filters: DataFilters,
    /// Text appended to every user question (EasyR1's `format_prompt`, `{{ content | trim }} <text>`), for RL prompts,
    /// SFT user turns and evaluation prompts alike; e.g. ReVisual-R1's `\boxed{}` instruction
    /// ([`crate::data::format::REVISUAL_FORMAT_PROMPT`]). Left out: the question is used as it is (Vision-R1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format_prompt: Option<String>,
    /// A system message before every conversation, for RL prompts, SFT records and evaluation prompts alike
    /// (Vision-R1-Zero's R1-V prompt, papers_spec §1.6; [`super::prompt`]). Left out: no system message, so the
    /// chat template's default applies (papers_spec §0.1). An empty text is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// A rewrite of the SFT targets ([`super::prompt::DataTransform`]); SFT stages only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<super::prompt::DataTransform>,
}

impl ModelSpec {
    pub fn validate(&self, locked: bool) -> Result<()> {
        ensure!(
            !matches!(self.source, Source::Mixed { .. }),
            "model.source is `kind = \"mixed\"`, which only data can be; name one model source"
        );
        self.source.validate("model.source", locked)?;
        ensure!(
            matches!(self.dtype.as_str(), "bf16" | "f32"),
            "model.dtype = {:?} is not supported; use \"bf16\" or \"f32\"",
            self.dtype
        );
        Ok(())
    }
}

impl DataSpec {
    pub fn validate(&self, locked: bool) -> Result<()> {
        self.source.validate("data.source", locked)?;
        ensure!(!self.split.trim().is_empty(), "data.split is empty; name the split (e.g. \"train\")");
        let f = &self.filters;
        if let (Some(lo), Some(hi)) = (f.min_pixels, f.max_pixels) {
            ensure!(lo <= hi, "data.filters: min_pixels {lo} > max_pixels {hi}");
        }
        ensure!(f.max_examples != Some(0), "data.filters.max_examples = 0 leaves no data; remove it or raise it");
        if let Some(p) = &self.system_prompt {
            ensure!(!p.trim().is_empty(), "data.system_prompt is empty; give the system message or leave the key out");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_checks_length_and_case() {
        assert!(is_hex(&"a".repeat(40), 40));
        assert!(!is_hex(&"A".repeat(40), 40));
        assert!(!is_hex("main", 40));
        assert!(!is_hex(&"a".repeat(39), 40));
    }

    #[test]
    fn hub_revision_must_be_a_commit_when_locked() {
        let s = Source::Hub { repo: "Qwen/Qwen2.5-VL-7B-Instruct".into(), revision: "main".into(), files: [].into() };
        let err = s.validate("model.source", true).unwrap_err().to_string();
        assert!(err.contains("model.source.revision") && err.contains("40-hex"), "{err}");
        s.validate("model.source", false).unwrap();
        assert!(!s.is_locked());
    }

    #[test]
    fn file_hashes_and_repo_names_are_checked() {
        let files = [("config.json".to_string(), "sha256:abc".to_string())].into();
        let s = Source::Hub { repo: "Qwen/x".into(), revision: "0".repeat(40), files };
        assert!(s.validate("model.source", true).unwrap_err().to_string().contains("\"config.json\""));
        let s = Source::Hub { repo: "noslash".into(), revision: "0".repeat(40), files: [].into() };
        assert!(s.validate("data.source", true).unwrap_err().to_string().contains("data.source.repo"));
        let s = Source::Local { path: "data".into(), files: [].into() };
        assert!(s.validate("data.source", true).unwrap_err().to_string().contains("without file hashes"));
        s.validate("data.source", false).unwrap();
        let s = Source::ParentRun { stage: "a/b".into(), step: Some(100), sha256: Some("f".repeat(63)) };
        assert!(s.validate("model.source", true).unwrap_err().to_string().contains("model.source.sha256"));
        let s = Source::ParentRun { stage: "a/b".into(), step: None, sha256: None };
        s.validate("model.source", false).unwrap();
        assert!(!s.is_locked());
        assert!(s.validate("model.source", true).unwrap_err().to_string().contains("locked manifest must pin"));
    }
}
