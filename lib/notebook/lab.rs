//! Driving one stage from a notebook (issue 7): where the repository, the runs and the Hub cache are, which manifest
//! to run (an environment variable, defaulting to the CI-sized embedded twin), preparing the embedded data, and
//! "run, reuse or open" a stage with progress lines while it trains.
//!
//! Every stage notebook reads top to bottom as: `Lab::from_env()` → `lab.manifest(VAR, default)` →
//! `lab.prepare_if_embedded(..)` → `lab.run_or_open(..)` → inspect the run folder ([`super::runs`]).
//!
//! Choices (not from either paper; notebook plumbing only):
//! - The repository root is this crate's `CARGO_MANIFEST_DIR` (the notebooks depend on r1lab by path), so a
//!   notebook works from any working folder.
//! - Notebook runs go to `$R1LAB_RUNS` (default `target/notebook-runs`) and the Hub cache to `$HF_HUB_CACHE`
//!   (default `target/notebook-hub`), both git-ignored, so executing the notebooks never touches `artifacts/runs`
//!   or `~/.cache`. The default cache is offline: the embedded model is installed into it by
//!   [`crate::demo::prepare`]; set `HF_HUB_CACHE` (and `HF_HUB_OFFLINE=0`) to replay a 7B manifest.
//! - Progress: the pipeline's progress bars only draw on a terminal, so while a stage runs a watcher thread prints
//!   one line every `R1LAB_PROGRESS_S` seconds (default 15) with the evaluations and checkpoints written so far.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::backend::DeviceSpec;
use crate::demo::{Chain, prepare};
use crate::hub::HubOptions;
use crate::pipeline::{RunOptions, RunOutcome, finished_outcome, run_manifest};
use crate::repro::record::RunRecord;

/// Where a notebook's stages read and write.
#[derive(Debug, Clone)]
pub struct Lab {
    pub repo_root: PathBuf,
    pub runs_root: PathBuf,
    pub hub: HubOptions,
    pub device: DeviceSpec,
}

fn env_nonempty(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty())
}

impl Lab {
    /// The repository root, runs folder, Hub cache and device from the environment (see the module doc).
    pub fn from_env() -> Result<Self> {
        let repo_root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let runs_root = env_nonempty("R1LAB_RUNS")
            .map(|p| repo_root.join(p))
            .unwrap_or_else(|| repo_root.join("target/notebook-runs"));
        let hub = match env_nonempty("HF_HUB_CACHE") {
            Some(_) => HubOptions::from_env(),
            None => HubOptions { offline: true, ..HubOptions::new(repo_root.join("target/notebook-hub")) },
        };
        let device = DeviceSpec::from_env().context("reading R1LAB_DEVICE (auto, cpu, cuda or cuda:N)")?;
        Ok(Self { repo_root, runs_root, hub, device })
    }

    /// The manifest named by `$var`, else `default` (both relative to the repository root unless absolute).
    pub fn manifest(&self, var: &str, default: &str) -> PathBuf {
        let rel = env_nonempty(var).unwrap_or_else(|| default.to_string());
        self.repo_root.join(rel)
    }

    /// Whether `manifest` is one of the embedded ones (its data is built by [`Lab::prepare`]).
    pub fn is_embedded(&self, manifest: &Path) -> bool {
        manifest.starts_with(self.repo_root.join("experiments/embedded"))
    }

    /// Builds the tiny model and the data of the chain file `chain` (relative to the repository root); idempotent.
    pub fn prepare(&self, chain: &str) -> Result<Chain> {
        let path = self.repo_root.join(chain);
        let c = Chain::load(&path)?;
        let secs = prepare(&c, &self.repo_root, &self.hub)
            .with_context(|| format!("preparing the data of {}", path.display()))?;
        println!("prepared {} in {secs:.1} s: data in {}", c.name, self.repo_root.join(&c.data.out).display());
        Ok(c)
    }

    /// [`Lab::prepare`] when `manifest` is embedded; a manifest of real data resolves its own sources.
    pub fn prepare_if_embedded(&self, manifest: &Path, chain: &str) -> Result<Option<Chain>> {
        if self.is_embedded(manifest) { self.prepare(chain).map(Some) } else { Ok(None) }
    }

    pub fn run_options(&self) -> RunOptions {
        RunOptions {
            repo_root: self.repo_root.clone(),
            runs_root: self.runs_root.clone(),
            device: self.device,
            resume: false,
            progress: true,
            hub: self.hub.clone(),
        }
    }

    /// The finished run of `manifest`: the run folder named by `$record_var` if set (a finished run record, e.g.
    /// copied from a GPU machine), else an earlier finished run of the same manifest, code and seed, else a new
    /// run (resumed from its newest checkpoint if an unfinished one exists), with progress lines while it trains.
    pub fn run_or_open(&self, manifest: &Path, record_var: &str) -> Result<RunOutcome> {
        if let Some(dir) = env_nonempty(record_var) {
            let dir = self.repo_root.join(dir);
            let out = open_run(&dir).with_context(|| format!("opening the run record named by ${record_var}"))?;
            println!("opened finished run {} ({})", out.record.run_id, dir.display());
            return Ok(out);
        }
        self.run_or_reuse(manifest)
    }

    /// An earlier finished run of `manifest` (same manifest, code and seed), else a new run (resumed from its
    /// newest checkpoint if an unfinished one exists), with progress lines while it trains.
    pub fn run_or_reuse(&self, manifest: &Path) -> Result<RunOutcome> {
        let opts = self.run_options();
        if let Some(done) = finished_outcome(manifest, &opts)? {
            println!("reusing finished run {} ({})", done.record.run_id, done.dir.display());
            return Ok(done);
        }
        println!("running {} …", manifest.display());
        let t0 = Instant::now();
        let out = with_progress(&self.runs_root, || match run_manifest(manifest, &opts) {
            Err(e) if is_unfinished(&e) => {
                println!("an unfinished run of this manifest exists: resuming it from its newest checkpoint");
                run_manifest(manifest, &RunOptions { resume: true, ..opts.clone() })
            }
            r => r,
        })
        .with_context(|| format!("running {}", manifest.display()))?;
        println!("finished {} in {:.1} s: {}", out.record.run_id, t0.elapsed().as_secs_f64(), out.dir.display());
        Ok(out)
    }
}

/// Whether a failed start means the run folder already exists unfinished (then `--resume` continues it).
fn is_unfinished(e: &anyhow::Error) -> bool {
    let msg = format!("{e:#}");
    msg.contains("already holds a run record")
}

/// A finished run folder as an outcome (its `run.json` must say finished).
pub fn open_run(dir: &Path) -> Result<RunOutcome> {
    let record = RunRecord::require_complete(dir)?;
    let path = dir.join("final_metrics.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let final_metrics = serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))?;
    Ok(RunOutcome { dir: dir.to_path_buf(), record, final_metrics })
}

/// Runs `f` while a thread prints a line every `R1LAB_PROGRESS_S` seconds: elapsed time and, for the newest run
/// folder under `runs_root`, how many evaluations and checkpoints it holds.
pub fn with_progress<T>(runs_root: &Path, f: impl FnOnce() -> T) -> T {
    let every = env_nonempty("R1LAB_PROGRESS_S").and_then(|s| s.parse::<f64>().ok()).unwrap_or(15.0).max(0.5);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<()>();
    let root = runs_root.to_path_buf();
    let flag = stop.clone();
    let t0 = Instant::now();
    let watcher = std::thread::spawn(move || {
        while !flag.load(Ordering::SeqCst) {
            if rx.recv_timeout(Duration::from_secs_f64(every)).is_ok() {
                break;
            }
            println!("  … {:.0} s{}", t0.elapsed().as_secs_f64(), newest_run_state(&root));
        }
    });
    let out = f();
    stop.store(true, Ordering::SeqCst);
    let _ = tx.send(());
    let _ = watcher.join();
    out
}

fn newest_run_state(root: &Path) -> String {
    let newest = std::fs::read_dir(root).ok().and_then(|it| {
        it.filter_map(|e| e.ok())
            .filter(|e| e.path().join("run.json").is_file())
            .max_by_key(|e| e.path().join("run.json").metadata().and_then(|m| m.modified()).ok())
    });
    let Some(run) = newest else { return String::new() };
    let count = |sub: &str| std::fs::read_dir(run.path().join(sub)).map(|it| it.count()).unwrap_or(0);
    format!(
        ": {} has {} evaluation(s), {} checkpoint(s)",
        run.file_name().to_string_lossy(),
        count("eval"),
        count("checkpoints")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_falls_back_to_the_default_and_embedded_is_by_folder() {
        let lab = Lab::from_env().unwrap();
        let var = "R1LAB_TEST_UNSET_MANIFEST_VAR";
        let m = lab.manifest(var, "experiments/embedded/ci/vision_r1_cold_start.toml");
        assert!(m.is_file(), "{}", m.display());
        assert!(lab.is_embedded(&m));
        assert!(!lab.is_embedded(&lab.repo_root.join("experiments/vision_r1/cold_start.toml")));
    }

    #[test]
    fn progress_returns_the_closure_value_and_stops_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(with_progress(dir.path(), || 7), 7);
    }

    #[test]
    fn opening_an_unfinished_folder_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let err = format!("{:#}", open_run(dir.path()).unwrap_err());
        assert!(err.contains(&dir.path().display().to_string()), "{err}");
    }
}
