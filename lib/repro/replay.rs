//! `r1lab replay RUN_DIR [--steps K]` (issue 5 item 5; style_anchors B11, the replay ladder): reruns a recorded
//! run and reports the highest level it reached and, where it fell off, the first thing that differed.
//!
//! - L0 inputs: the manifest recorded in `run.json` round-trips to its recorded sha256 (through its TOML text
//!   too), and re-resolving its inputs today (model, data and eval files, parent checkpoint, the same way
//!   `r1lab run` does) gives exactly the recorded input hashes. The code commit is compared and reported but does
//!   not fail L0 (a replay at another commit is how a regression is found; the run id then differs).
//! - L1 bitwise prefix: on the same device (`env.device` of the record, e.g. `cpu` or `cuda:0`), the recorded
//!   manifest reruns for its first K steps (default: every recorded step) into `<RUN_DIR>/replay-<n>/<run id>/`,
//!   stopping with [`RunControl::max_steps`] (schedules keep their full length, so step k draws and computes what
//!   it did in the full run), and its `fingerprints.jsonl` is compared with the record's line by line: the first
//!   `(step, field)` that differs is named with both values.
//! - L2 numeric / L3 statistical: not attempted; the manifest has no tolerances or seed lists for them yet, and the
//!   report says so.
//!
//! The report is printed as JSON by the CLI and written to `<RUN_DIR>/replay-<n>/replay.json`.
//!
//! Deviations from B11: L0 does not regenerate the data order (it is a pure function of the seed, tested in
//! `repro::seed`), and L1 starts from the run's initial inputs, not from a checkpoint at step s.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::backend::EnvInfo;
use crate::hub::Hub;
use crate::io::write_atomic;
use crate::pipeline::resolve::{self, Roots};
use crate::pipeline::{FINGERPRINTS_FILE, RunControl, RunOptions, run_manifest_with};
use crate::repro::fingerprint::Fingerprints;
use crate::repro::lock::data_ext;
use crate::repro::manifest::Manifest;
use crate::repro::record::{CodeState, RunRecord};

/// Why L2 and L3 are not run.
pub const NOT_ATTEMPTED: &str = "not attempted (needs tolerances/seeds in the manifest)";

/// One input whose hash differs between the record and today.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InputDiff {
    pub name: String,
    pub recorded: Option<String>,
    pub now: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeCompare {
    pub recorded_commit: Option<String>,
    pub current_commit: Option<String>,
    pub same_commit: bool,
    pub current_dirty: Option<bool>,
}

/// L0: inputs and manifest identical.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct L0Report {
    pub passed: bool,
    pub manifest_sha256: String,
    pub manifest_round_trip: bool,
    pub inputs_checked: usize,
    pub input_differences: Vec<InputDiff>,
    pub code: CodeCompare,
    /// Resolving the inputs failed (a file gone or changed under a pin): the error.
    pub error: Option<String>,
}

/// The first field where the replay's fingerprints differ from the record's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Divergence {
    pub step: u64,
    pub field: String,
    pub recorded: Option<String>,
    pub replayed: Option<String>,
}

/// L1: bit-identical fingerprints for the first K steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct L1Report {
    pub attempted: bool,
    pub reached: bool,
    pub steps_compared: u64,
    pub first_divergence: Option<Divergence>,
    pub device_recorded: Option<String>,
    pub device_now: String,
    /// The replay's run folder.
    pub replay_run: Option<String>,
    pub note: String,
}

/// `replay.json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    pub run_dir: String,
    pub run_id: String,
    /// `none`, `L0` or `L1`.
    pub level: String,
    pub summary: String,
    pub l0: L0Report,
    pub l1: L1Report,
    pub l2: String,
    pub l3: String,
}

/// Replays the run in `run_dir` (see the module doc). `opts.runs_root` is where parent runs are looked up
/// (normally the folder holding `run_dir`); `steps` limits L1 to the first K steps.
pub fn replay(run_dir: &Path, opts: &RunOptions, steps: Option<u64>) -> Result<ReplayReport> {
    let record = RunRecord::require_complete(run_dir)?;
    let out_dir = next_replay_dir(run_dir)?;
    let l0 = level0(&record, opts);
    let env = EnvInfo::collect(opts.device, opts.device.resolve()?);
    let device_recorded = record.env.get("device").and_then(|d| d.as_str()).map(str::to_string);
    let mut l1 = L1Report {
        attempted: false,
        reached: false,
        steps_compared: 0,
        first_divergence: None,
        device_recorded: device_recorded.clone(),
        device_now: env.device.clone(),
        replay_run: None,
        note: String::new(),
    };
    let recorded_fp = run_dir.join(FINGERPRINTS_FILE);
    if !l0.passed {
        l1.note = "not attempted: L0 failed (not the same experiment)".into();
    } else if device_recorded.as_deref() != Some(env.device.as_str()) {
        l1.note = format!("not attempted: recorded on {device_recorded:?}, this machine runs on {}", env.device);
    } else if !recorded_fp.is_file() {
        l1.note = format!("not attempted: {} has no {FINGERPRINTS_FILE}", run_dir.display());
    } else {
        level1(&record, &recorded_fp, &out_dir, opts, steps, &mut l1)?;
    }
    let level = if l0.passed && l1.reached {
        "L1"
    } else if l0.passed {
        "L0"
    } else {
        "none"
    };
    let summary = match (&l1.first_divergence, level) {
        (_, "L1") => format!("L1 reached for {} steps", l1.steps_compared),
        (Some(d), _) => format!("L0 reached; L1 diverged at step {} in field {}", d.step, d.field),
        (None, "L0") => format!("L0 reached; L1 {}", l1.note),
        _ => "L0 failed: the inputs or the manifest differ from the record".into(),
    };
    let report = ReplayReport {
        run_dir: run_dir.display().to_string(),
        run_id: record.run_id.clone(),
        level: level.into(),
        summary,
        l0,
        l1,
        l2: NOT_ATTEMPTED.into(),
        l3: NOT_ATTEMPTED.into(),
    };
    write_atomic(&out_dir.join("replay.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}

/// `<run_dir>/replay-<n>/` for the first free n ≥ 1, created.
fn next_replay_dir(run_dir: &Path) -> Result<PathBuf> {
    for n in 1.. {
        let dir = run_dir.join(format!("replay-{n}"));
        if !dir.exists() {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            return Ok(dir);
        }
    }
    unreachable!("1.. is unbounded")
}

/// The inputs of `m` as `r1lab run` records them.
fn resolve_inputs(m: &Manifest, roots: &Roots, hub: &Hub) -> Result<BTreeMap<String, String>> {
    let mut inputs = resolve::model_dir(&m.model.source, roots, hub).context("resolving model.source")?.inputs;
    let data = resolve::data_file(&m.data.source, &m.data.split, data_ext(&m.train), roots, hub, "data")
        .context("resolving data.source")?;
    inputs.extend(data.inputs);
    for (i, s) in m.eval.iter().enumerate() {
        let r = resolve::data_file(&s.source, &s.split, "parquet", roots, hub, &format!("eval/{}", s.name))
            .with_context(|| format!("resolving eval[{i}] ({})", s.name))?;
        inputs.extend(r.inputs);
    }
    Ok(inputs)
}

fn level0(record: &RunRecord, opts: &RunOptions) -> L0Report {
    let m = &record.manifest;
    let direct = m.sha256().ok();
    let via_toml = m.to_toml_string().ok().and_then(|t| Manifest::from_toml_str(&t).ok()).and_then(|x| x.sha256().ok());
    let manifest_round_trip =
        direct.as_deref() == Some(record.manifest_sha256.as_str()) && via_toml.as_deref() == direct.as_deref();
    let current = CodeState::detect(&opts.repo_root);
    let code = CodeCompare {
        same_commit: current.commit.is_some() && current.commit == record.code.commit,
        recorded_commit: record.code.commit.clone(),
        current_commit: current.commit,
        current_dirty: current.dirty,
    };
    let roots = Roots { repo: opts.repo_root.clone(), runs: opts.runs_root.clone() };
    let (now, error) = match resolve_inputs(m, &roots, &Hub::new(opts.hub.clone())) {
        Ok(now) => (now, None),
        Err(e) => (BTreeMap::new(), Some(format!("{e:#}"))),
    };
    let input_differences = if error.is_some() { Vec::new() } else { diff_inputs(&record.inputs, &now) };
    L0Report {
        passed: manifest_round_trip && error.is_none() && input_differences.is_empty(),
        manifest_sha256: record.manifest_sha256.clone(),
        manifest_round_trip,
        inputs_checked: record.inputs.len(),
        input_differences,
        code,
        error,
    }
}

fn diff_inputs(recorded: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<InputDiff> {
    let names: std::collections::BTreeSet<&String> = recorded.keys().chain(now.keys()).collect();
    names
        .into_iter()
        .filter(|n| recorded.get(*n) != now.get(*n))
        .map(|n| InputDiff { name: n.clone(), recorded: recorded.get(n).cloned(), now: now.get(n).cloned() })
        .collect()
}

fn level1(
    record: &RunRecord,
    recorded_fp: &Path,
    out_dir: &Path,
    opts: &RunOptions,
    steps: Option<u64>,
    l1: &mut L1Report,
) -> Result<()> {
    let recorded = Fingerprints::read(recorded_fp, u64::MAX)?;
    let last = recorded.steps.last().map_or(0, |f| f.step);
    let k = steps.map_or(last, |k| k.min(last));
    let manifest_path = out_dir.join("manifest.toml");
    write_atomic(&manifest_path, record.manifest.to_toml_string()?.as_bytes())?;
    let control = RunControl { require_locked: false, max_steps: Some(k), record_root: Some(out_dir.to_path_buf()) };
    let outcome = run_manifest_with(&manifest_path, opts, &control).context("rerunning the recorded manifest")?;
    let replayed = Fingerprints::read(&outcome.dir.join(FINGERPRINTS_FILE), k + 1)?;
    let recorded = Fingerprints::read(recorded_fp, k + 1)?;
    l1.attempted = true;
    l1.replay_run = Some(outcome.dir.display().to_string());
    l1.first_divergence = first_divergence(&recorded, &replayed);
    l1.reached = l1.first_divergence.is_none() && !recorded.steps.is_empty();
    l1.steps_compared = recorded.steps.len() as u64;
    l1.note = match steps {
        Some(s) if s > last => format!("asked for {s} steps; the record has {last}"),
        _ => format!("compared steps 1..={k}"),
    };
    Ok(())
}

/// The first `(step, field)` where `replayed` differs from `recorded`: a missing or extra step is field `step`, a
/// field present on one side only counts as different.
pub fn first_divergence(recorded: &Fingerprints, replayed: &Fingerprints) -> Option<Divergence> {
    let n = recorded.steps.len().max(replayed.steps.len());
    for i in 0..n {
        let (a, b) = (recorded.steps.get(i), replayed.steps.get(i));
        let (Some(a), Some(b)) = (a, b) else {
            let s = a.or(b).map_or(0, |f| f.step);
            let show = |f: Option<&crate::repro::fingerprint::Fingerprint>| f.map(|f| f.step.to_string());
            return Some(Divergence { step: s, field: "step".into(), recorded: show(a), replayed: show(b) });
        };
        if a.step != b.step {
            let (r, p) = (Some(a.step.to_string()), Some(b.step.to_string()));
            return Some(Divergence { step: a.step.min(b.step), field: "step".into(), recorded: r, replayed: p });
        }
        let fields: std::collections::BTreeSet<&String> = a.fields.keys().chain(b.fields.keys()).collect();
        for f in fields {
            if a.fields.get(f) != b.fields.get(f) {
                return Some(Divergence {
                    step: a.step,
                    field: f.clone(),
                    recorded: a.fields.get(f).cloned(),
                    replayed: b.fields.get(f).cloned(),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repro::fingerprint::bits;

    fn fp(rows: &[(u64, &[(&'static str, f64)])]) -> Fingerprints {
        let mut f = Fingerprints::default();
        for (step, fields) in rows {
            f.push(*step, fields.iter().map(|(k, v)| (*k, bits(*v)))).unwrap();
        }
        f
    }

    #[test]
    fn divergence_names_step_and_field() {
        let a = fp(&[(1, &[("loss", 1.0), ("grad_norm", 2.0)]), (2, &[("loss", 0.5), ("grad_norm", 1.0)])]);
        assert_eq!(first_divergence(&a, &a), None);
        let b = fp(&[(1, &[("loss", 1.0), ("grad_norm", 2.0)]), (2, &[("loss", 0.5), ("grad_norm", 1.5)])]);
        let d = first_divergence(&a, &b).unwrap();
        assert_eq!((d.step, d.field.as_str()), (2, "grad_norm"));
        assert_eq!(d.recorded, Some(bits(1.0)));
        let short = fp(&[(1, &[("loss", 1.0), ("grad_norm", 2.0)])]);
        let d = first_divergence(&a, &short).unwrap();
        assert_eq!((d.step, d.field.as_str(), d.replayed.as_deref()), (2, "step", None));
        let extra = fp(&[(1, &[("loss", 1.0), ("grad_norm", 2.0), ("lr", 0.1)])]);
        assert_eq!(first_divergence(&short, &extra).unwrap().field, "lr");
    }

    #[test]
    fn input_differences_cover_both_sides() {
        let rec: BTreeMap<String, String> = [("a".into(), "1".into()), ("b".into(), "2".into())].into();
        let now: BTreeMap<String, String> = [("a".into(), "1".into()), ("c".into(), "3".into())].into();
        let d = diff_inputs(&rec, &now);
        assert_eq!(d.iter().map(|x| x.name.as_str()).collect::<Vec<_>>(), ["b", "c"]);
        assert!(diff_inputs(&rec, &rec).is_empty());
    }
}
