//! Manifest sources to local paths, with the hashes the run record keeps as its inputs (style_anchors B9/B10):
//!
//! - `hub`: every file listed in `files` is fetched through [`crate::hub::Hub`] (the Python-compatible cache,
//!   offline when `HF_HUB_OFFLINE` is set) and checked against its sha256; a model is the snapshot folder holding
//!   `config.json`, a data split the listed file named `<split>.<ext>` (or starting with `<split>`).
//! - `local`: a path relative to the repository root; a folder or a file. Files listed in `files` must hash to
//!   the given sha256 (error naming the file otherwise).
//! - `parent_run`: the checkpoint of a finished run of the parent stage at that step whose parameter hash
//!   matches ([`crate::repro::checkpoint::find_parent`]); its `model/` folder is the model.
//! - `mixed`: several data files; resolved member by member by [`super::mixed::data_files`], not here.
//!
//! The recorded inputs are `<role>/<file name>` → sha256 of each file used (the data file itself for data, not
//! the images it references).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::hub::{Hub, HubRepo, RepoKind};
use crate::io::sha256_file;
use crate::repro::checkpoint;
use crate::repro::manifest::Source;
use crate::repro::record::RunRecord;

/// Where to look for things while resolving.
#[derive(Debug, Clone)]
pub struct Roots {
    /// Relative `local` paths are relative to this folder (the repository root).
    pub repo: PathBuf,
    /// Finished runs of parent stages are looked up here.
    pub runs: PathBuf,
}

/// A resolved source: the path and the hashes of the files it contributed.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    pub path: PathBuf,
    pub inputs: BTreeMap<String, String>,
}

/// The model folder of `source`.
pub fn model_dir(source: &Source, roots: &Roots, hub: &Hub) -> Result<Resolved> {
    let r = match source {
        Source::Hub { .. } => {
            let repo = HubRepo::from_source(source, RepoKind::Model)?;
            let files = hub.fetch_all(&repo)?;
            let config = files
                .iter()
                .find(|(name, _)| name == "config.json")
                .with_context(|| format!("{}: `files` must list config.json", repo.label()))?;
            let dir = config.1.parent().context("config.json has no folder")?.to_path_buf();
            Resolved { path: dir, inputs: hashes("model", &files)? }
        }
        Source::Local { path, files } => {
            let dir = roots.repo.join(path);
            ensure!(dir.join("config.json").is_file(), "model folder {} has no config.json", dir.display());
            let mut inputs = check_listed(&dir, files, "model")?;
            if files.is_empty() {
                inputs = hash_folder(&dir, "model")?;
            }
            Resolved { path: dir, inputs }
        }
        Source::ParentRun { stage, step, sha256 } => {
            let (ckpt, step, sha256) = match (step, sha256) {
                (Some(step), Some(sha)) => {
                    (checkpoint::find_parent(&roots.runs, stage, *step, sha)?, *step, sha.clone())
                }
                _ => newest_parent(&roots.runs, stage, *step)?,
            };
            let dir = ckpt.join(checkpoint::MODEL_DIR);
            let mut inputs = BTreeMap::new();
            inputs.insert(format!("parent/{stage}@{step}"), sha256);
            Resolved { path: dir, inputs }
        }
        Source::Mixed { .. } => bail!("a mixed source is training data, not a model"),
    };
    Ok(r)
}

/// The data file of `split` in `source`, with extension `ext` (`json` for sharegpt SFT data, `parquet` for
/// EasyR1 RL data).
pub fn data_file(source: &Source, split: &str, ext: &str, roots: &Roots, hub: &Hub, role: &str) -> Result<Resolved> {
    match source {
        Source::Hub { .. } => {
            let repo = HubRepo::from_source(source, RepoKind::Dataset)?;
            let files = hub.fetch_all(&repo)?;
            let pick = pick_split(files.iter().map(|(n, _)| n.as_str()), split, ext)
                .with_context(|| format!("{}: no listed file for split {split:?} (.{ext})", repo.label()))?;
            let path = files.iter().find(|(n, _)| n == pick).map(|(_, p)| p.clone()).context("picked file vanished")?;
            let inputs = hashes(role, &files[..].iter().filter(|(n, _)| n == pick).cloned().collect::<Vec<_>>())?;
            Ok(Resolved { path, inputs })
        }
        Source::Local { path, files } => {
            let p = roots.repo.join(path);
            let file = if p.is_dir() {
                let names: Vec<String> = std::fs::read_dir(&p)
                    .with_context(|| format!("listing {}", p.display()))?
                    .filter_map(|e| e.ok().and_then(|e| e.file_name().into_string().ok()))
                    .collect();
                let pick = pick_split(names.iter().map(String::as_str), split, ext).with_context(|| {
                    format!("{} has no {split}.{ext} (nor a .{ext} file starting with {split:?})", p.display())
                })?;
                p.join(pick)
            } else {
                ensure!(p.is_file(), "data source {} does not exist", p.display());
                p.clone()
            };
            let base = if file.parent() == Some(p.as_path()) { p.clone() } else { file.parent().unwrap().into() };
            let mut inputs = check_listed(&base, files, role)?;
            let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("data").to_string();
            inputs.insert(format!("{role}/{name}"), sha256_file(&file)?);
            Ok(Resolved { path: file, inputs })
        }
        Source::ParentRun { .. } => bail!("a parent run is a model source, not a data source"),
        Source::Mixed { .. } => {
            bail!("a mixed source has one file per member; resolve it with `pipeline::mixed::data_files`")
        }
    }
}

/// The checkpoint of the newest finished run (by end time) of `stage` under `runs`, at `step` or its last
/// checkpoint, verified: `(folder, step, params_sha256)`.
pub fn newest_parent(runs: &Path, stage: &str, step: Option<u64>) -> Result<(PathBuf, u64, String)> {
    let (dir, s) = newest_parent_checkpoint(runs, stage, step)?;
    let info = checkpoint::verify(&dir)?;
    Ok((dir, s, info.record.params_sha256))
}

/// What a run id must add to the manifest for `source` to name one model: the parameter hash of the checkpoint an
/// unpinned parent-run source resolves to now (from its record; [`model_dir`] verifies it), so a retrained parent
/// gives its children new ids. `None` for every other source: its identity is in the manifest.
pub fn parent_key(source: &Source, runs: &Path) -> Result<Option<String>> {
    match source {
        Source::ParentRun { stage, step, sha256: None } => {
            let (dir, _) = newest_parent_checkpoint(runs, stage, *step)?;
            Ok(Some(checkpoint::read_record(&dir)?.params_sha256))
        }
        _ => Ok(None),
    }
}

/// The checkpoint folder (and step) of the newest finished run of `stage`: at `step`, or its last.
fn newest_parent_checkpoint(runs: &Path, stage: &str, step: Option<u64>) -> Result<(PathBuf, u64)> {
    let mut finished: Vec<(String, PathBuf)> = Vec::new();
    for e in std::fs::read_dir(runs).with_context(|| format!("listing the runs in {}", runs.display()))? {
        let dir = e?.path();
        if let Ok(rec) = RunRecord::read(&dir)
            && rec.manifest.id == stage
            && rec.is_complete()
        {
            finished.push((rec.end_time.unwrap_or_default(), dir));
        }
    }
    finished.sort();
    let (_, run) = finished
        .pop()
        .with_context(|| format!("no finished run of the parent stage {stage} in {}; run it first", runs.display()))?;
    let all = checkpoint::complete_checkpoints(&run.join(checkpoint::CHECKPOINTS_DIR))?;
    let (s, dir) = match step {
        Some(s) => all.into_iter().find(|(k, _)| *k == s),
        None => all.into_iter().last(),
    }
    .with_context(|| format!("run {} has no checkpoint at step {step:?}", run.display()))?;
    Ok((dir, s))
}

fn pick_split<'a>(names: impl Iterator<Item = &'a str>, split: &str, ext: &str) -> Option<&'a str> {
    let suffix = format!(".{ext}");
    let mut candidates: Vec<&str> = names.filter(|n| n.ends_with(&suffix)).collect();
    candidates.sort();
    let file = |n: &str| n.rsplit('/').next().unwrap_or(n).to_string();
    let exact = format!("{split}{suffix}");
    candidates
        .iter()
        .copied()
        .find(|n| file(n) == exact)
        .or_else(|| candidates.iter().copied().find(|n| file(n).starts_with(split)))
}

fn hashes(role: &str, files: &[(String, PathBuf)]) -> Result<BTreeMap<String, String>> {
    files.iter().map(|(name, path)| Ok((format!("{role}/{name}"), sha256_file(path)?))).collect()
}

fn check_listed(dir: &Path, files: &BTreeMap<String, String>, role: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (name, want) in files {
        let path = dir.join(name);
        let got = sha256_file(&path).with_context(|| format!("hashing {} listed in the manifest", path.display()))?;
        ensure!(
            &got == want,
            "{} has sha256 {got} but the manifest pins {want}: the file changed since the manifest was locked; \
             restore it or re-lock the manifest",
            path.display()
        );
        out.insert(format!("{role}/{name}"), got);
    }
    Ok(out)
}

fn hash_folder(dir: &Path, role: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let e = e?;
        if e.file_type()?.is_file()
            && let Some(name) = e.file_name().to_str()
        {
            out.insert(format!("{role}/{name}"), sha256_file(&e.path())?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_files_are_picked_by_name() {
        let names = ["data/test-00000.parquet", "data/train-00000.parquet", "README.md", "train.json"];
        assert_eq!(pick_split(names.iter().copied(), "train", "parquet"), Some("data/train-00000.parquet"));
        assert_eq!(pick_split(names.iter().copied(), "train", "json"), Some("train.json"));
        assert_eq!(pick_split(names.iter().copied(), "validation", "parquet"), None);
    }

    #[test]
    fn local_files_are_checked_against_their_pins() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train.json"), b"[]").unwrap();
        let roots = Roots { repo: dir.path().into(), runs: dir.path().join("runs") };
        let hub = Hub::new(crate::hub::HubOptions::new(dir.path().join("cache")));
        let good = sha256_file(&dir.path().join("train.json")).unwrap();
        let src = |h: &str| Source::Local { path: ".".into(), files: [("train.json".into(), h.into())].into() };
        let r = data_file(&src(&good), "train", "json", &roots, &hub, "data").unwrap();
        assert_eq!(r.path, dir.path().join("./train.json"));
        assert_eq!(r.inputs["data/train.json"], good);
        let err = data_file(&src(&"0".repeat(64)), "train", "json", &roots, &hub, "data").unwrap_err();
        assert!(format!("{err:#}").contains("the manifest pins"), "{err:#}");
        let err = data_file(&src(&good), "test", "json", &roots, &hub, "data").unwrap_err();
        assert!(format!("{err:#}").contains("test.json"), "{err:#}");
    }
}
