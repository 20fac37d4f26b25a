//! `r1lab replay RUN_DIR [--steps K] [--level l0|l1|l2|l3]` (issue 5 item 5; style_anchors B11, the replay
//! ladder): reruns a recorded run and reports the highest level it reached and, where a level failed, the first
//! thing that differed.
//!
//! - L0 inputs: the manifest recorded in `run.json` round-trips to its recorded sha256 (through its TOML text
//!   too), re-resolving its inputs today (model, data and eval files, parent checkpoint, the same way
//!   `r1lab run` does) gives exactly the recorded input hashes, and the data order of the first K steps
//!   regenerates from `seeds.base` ([`order`]: SFT example indices, GRPO prompt uids; the first differing step is
//!   named). The code commit is compared and reported but does not fail L0 (a replay at another commit is how a
//!   regression is found; the run id then differs). Failing L0 means "not the same experiment": nothing reruns.
//! - L1 bitwise prefix: on the same device (`env.device` of the record, e.g. `cpu` or `cuda:0`), the recorded
//!   manifest reruns for its first K steps (default: every recorded step) into `<RUN_DIR>/replay-<n>/<run id>/`,
//!   stopping with [`RunControl::max_steps`] (schedules keep their full length, so step k draws and computes what
//!   it did in the full run), and its `fingerprints.jsonl` is compared with the record's line by line: the first
//!   `(step, field)` that differs is named with both values.
//! - L2 numeric ([`numeric`], the manifest's `[replay.numeric]`): the first `steps` rows of the rerun's
//!   `metrics.parquet` (the L1 rerun when it covers them, else a rerun of its own, which is how a record from
//!   another device kind is checked) agree with the record's within `rtol`/`atol`; the first
//!   `(step, field, recorded, replayed, allowed)` outside is named.
//! - L3 statistical ([`statistical`], `[replay.statistical]`): full reruns with each listed base seed; the record's
//!   final metrics must lie within the seeds' 95 % prediction interval widened to at least `atol`.
//!
//! Levels above L0 are separate checks of different strength, not strictly nested (a record from a GPU can pass
//! L2 and L3 without L1): each is attempted when L0 passed, `--level` allows it, and (L2, L3) the manifest has its
//! section; the reported level is the highest that passed, and the summary names every attempted level that
//! failed. `--level` caps the cost: L3 trains `seeds` full runs.
//!
//! The report is printed as JSON by the CLI and written to `<RUN_DIR>/replay-<n>/replay.json`.
//!
//! Deviations from B11: L1 starts from the run's initial inputs, not from a checkpoint at step s; L2 compares
//! logged step metrics of a free-running rerun instead of a teacher-forced golden batch (see
//! `repro::manifest::replay`); L3 compares final metrics only.
pub mod numeric;
pub mod order;
pub mod statistical;

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
use crate::repro::record::{CodeState, Metrics, RunRecord};
use numeric::L2Report;
use order::DataOrderReport;
use statistical::L3Report;

/// The highest level a replay may attempt (`--level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, clap::ValueEnum)]
pub enum Level {
    L0,
    L1,
    L2,
    L3,
}

/// How far and how long a replay goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplayOptions {
    /// Limit L0's data order and L1 to the first K steps (default: every recorded step).
    pub steps: Option<u64>,
    /// The highest level to attempt.
    pub max_level: Level,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self { steps: None, max_level: Level::L3 }
    }
}

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

/// L0: inputs, manifest and data order identical.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct L0Report {
    pub passed: bool,
    pub manifest_sha256: String,
    pub manifest_round_trip: bool,
    pub inputs_checked: usize,
    pub input_differences: Vec<InputDiff>,
    pub data_order: DataOrderReport,
    pub code: CodeCompare,
    /// Resolving the inputs or reading the recorded order failed (a file gone or changed under a pin): the error.
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
    /// `none`, `L0`, `L1`, `L2` or `L3`.
    pub level: String,
    pub summary: String,
    pub l0: L0Report,
    pub l1: L1Report,
    pub l2: L2Report,
    pub l3: L3Report,
}

/// Replays the run in `run_dir` up to L3 (see the module doc). `opts.runs_root` is where parent runs are looked
/// up (normally the folder holding `run_dir`); `steps` limits L0's data order and L1 to the first K steps.
pub fn replay(run_dir: &Path, opts: &RunOptions, steps: Option<u64>) -> Result<ReplayReport> {
    replay_with(run_dir, opts, &ReplayOptions { steps, ..ReplayOptions::default() })
}

/// [`replay`] with a level cap.
pub fn replay_with(run_dir: &Path, opts: &RunOptions, ropts: &ReplayOptions) -> Result<ReplayReport> {
    let record = RunRecord::require_complete(run_dir)?;
    let out_dir = next_replay_dir(run_dir)?;
    let steps = ropts.steps;
    let l0 = level0(&record, run_dir, opts, steps.unwrap_or(u64::MAX));
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
    // The L1 rerun (folder, steps it ran), reused by L2 when it covers L2's steps.
    let mut rerun: Option<(PathBuf, u64)> = None;
    if !l0.passed {
        l1.note = "not attempted: L0 failed (not the same experiment)".into();
    } else if ropts.max_level < Level::L1 {
        l1.note = "not attempted: --level l0".into();
    } else if device_recorded.as_deref() != Some(env.device.as_str()) {
        l1.note = format!("not attempted: recorded on {device_recorded:?}, this machine runs on {}", env.device);
    } else if !recorded_fp.is_file() {
        l1.note = format!("not attempted: {} has no {FINGERPRINTS_FILE}", run_dir.display());
    } else {
        rerun = Some(level1(&record, &recorded_fp, &out_dir, opts, steps, &mut l1)?);
    }
    let spec = record.manifest.replay.as_ref();
    let l2 = match spec.and_then(|r| r.numeric.as_ref()) {
        _ if !l0.passed => L2Report::not_attempted("not attempted: L0 failed"),
        _ if ropts.max_level < Level::L2 => L2Report::not_attempted("not attempted: --level below l2"),
        None => L2Report::not_attempted("not attempted: the manifest has no [replay.numeric] tolerances"),
        Some(n) => level2(&record, run_dir, n, &out_dir, opts, rerun.as_ref())?,
    };
    let l3 = match spec.and_then(|r| r.statistical.as_ref()) {
        _ if !l0.passed => L3Report::not_attempted("not attempted: L0 failed"),
        _ if ropts.max_level < Level::L3 => L3Report::not_attempted("not attempted: --level below l3"),
        None => L3Report::not_attempted("not attempted: the manifest has no [replay.statistical] seeds"),
        Some(st) => statistical::run(&record.manifest, run_dir, st, &out_dir, opts)?,
    };
    let level = if !l0.passed {
        "none"
    } else if l3.reached {
        "L3"
    } else if l2.reached {
        "L2"
    } else if l1.reached {
        "L1"
    } else {
        "L0"
    };
    let summary = summarize(level, &l0, &l1, &l2, &l3);
    let report = ReplayReport {
        run_dir: run_dir.display().to_string(),
        run_id: record.run_id.clone(),
        level: level.into(),
        summary,
        l0,
        l1,
        l2,
        l3,
    };
    write_atomic(&out_dir.join("replay.json"), serde_json::to_string_pretty(&report)?.as_bytes())?;
    Ok(report)
}

/// One line: the level reached, then what every attempted level below or beside it found.
fn summarize(level: &str, l0: &L0Report, l1: &L1Report, l2: &L2Report, l3: &L3Report) -> String {
    if level == "none" {
        return match &l0.data_order.first_difference {
            Some(d) => format!("L0 failed: the data order differs from the record at step {} ({})", d.step, d.what),
            None => "L0 failed: the inputs or the manifest differ from the record".into(),
        };
    }
    let mut parts = Vec::new();
    let l1_part = match &l1.first_divergence {
        _ if l1.reached => format!("L1 reached for {} steps", l1.steps_compared),
        Some(d) => format!("L1 diverged at step {} in field {}", d.step, d.field),
        None => format!("L1 {}", l1.note),
    };
    let l2_part = match &l2.first_violation {
        _ if l2.reached => format!("L2 reached for {} steps", l2.steps_compared),
        Some(v) => format!(
            "L2 out of tolerance at step {} in field {} (recorded {:?}, replayed {:?}, allowed {:?})",
            v.step, v.field, v.recorded, v.replayed, v.allowed
        ),
        None => format!("L2 {}", l2.note),
    };
    let l3_part = match l3.first_failure() {
        _ if l3.reached => format!("L3 reached over {} seeds", l3.seeds.len()),
        Some(m) => format!(
            "L3 failed for {} (recorded {}, seeds' mean {}, |difference| {} > allowed {})",
            m.metric, m.recorded, m.mean, m.difference, m.allowed
        ),
        None => format!("L3 {}", l3.note),
    };
    let head = match level {
        "L3" => l3_part.clone(),
        "L2" => l2_part.clone(),
        "L1" => l1_part.clone(),
        _ => "L0 reached".into(),
    };
    parts.push(head);
    if level != "L1" && (l1.attempted || level == "L0") {
        parts.push(l1_part);
    }
    if level != "L2" && l2.attempted {
        parts.push(l2_part);
    }
    if level != "L3" && l3.attempted {
        parts.push(l3_part);
    }
    parts.join("; ")
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

/// The inputs of `m` as `r1lab run` records them, and the resolved training data file.
fn resolve_inputs(m: &Manifest, roots: &Roots, hub: &Hub) -> Result<(BTreeMap<String, String>, PathBuf)> {
    let mut inputs = resolve::model_dir(&m.model.source, roots, hub).context("resolving model.source")?.inputs;
    let (data_files, data_inputs) =
        crate::pipeline::mixed::data_files(&m.data, data_ext(&m.train), roots, hub).context("resolving data.source")?;
    inputs.extend(data_inputs);
    for (i, s) in m.eval.iter().enumerate() {
        let r = resolve::data_file(&s.source, &s.split, "parquet", roots, hub, &format!("eval/{}", s.name))
            .with_context(|| format!("resolving eval[{i}] ({})", s.name))?;
        inputs.extend(r.inputs);
    }
    Ok((inputs, data_files[0].clone()))
}

/// L0 over the first `k` steps' data order.
fn level0(record: &RunRecord, run_dir: &Path, opts: &RunOptions, k: u64) -> L0Report {
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
    let resolved = resolve_inputs(m, &roots, &Hub::new(opts.hub.clone()));
    let (now, data_file, mut error) = match resolved {
        Ok((now, data)) => (now, Some(data), None),
        Err(e) => (BTreeMap::new(), None, Some(format!("{e:#}"))),
    };
    let input_differences = if error.is_some() { Vec::new() } else { diff_inputs(&record.inputs, &now) };
    let data_order = match data_file {
        Some(data) if input_differences.is_empty() => match order::check(m, run_dir, &data, k) {
            Ok(r) => r,
            Err(e) => {
                error = Some(format!("regenerating the data order: {e:#}"));
                DataOrderReport { checked: false, steps_compared: 0, first_difference: None, note: "failed".into() }
            }
        },
        _ => DataOrderReport {
            checked: false,
            steps_compared: 0,
            first_difference: None,
            note: "not checked: the inputs differ".into(),
        },
    };
    L0Report {
        passed: manifest_round_trip
            && error.is_none()
            && input_differences.is_empty()
            && data_order.first_difference.is_none(),
        manifest_sha256: record.manifest_sha256.clone(),
        manifest_round_trip,
        inputs_checked: record.inputs.len(),
        input_differences,
        data_order,
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
) -> Result<(PathBuf, u64)> {
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
    Ok((outcome.dir, k))
}

/// L2: the rerun's metrics (the L1 rerun's when it ran at least `spec.steps` steps) against the record's.
fn level2(
    record: &RunRecord,
    run_dir: &Path,
    spec: &crate::repro::manifest::replay::NumericSpec,
    out_dir: &Path,
    opts: &RunOptions,
    l1_rerun: Option<&(PathBuf, u64)>,
) -> Result<L2Report> {
    let metrics_file = run_dir.join("metrics.parquet");
    if !metrics_file.is_file() {
        return Ok(L2Report::not_attempted(format!("not attempted: {} has no metrics.parquet", run_dir.display())));
    }
    let recorded = Metrics::read_parquet(&metrics_file, u64::MAX)?;
    // The record's last step (a metrics row per training step).
    let last = recorded.names().iter().flat_map(|n| recorded.series(n)).map(|(s, _)| s).max().unwrap_or(0);
    let k = spec.steps.min(last);
    let dir = match l1_rerun {
        Some((dir, ran)) if *ran >= k => dir.clone(),
        _ => {
            let l2_dir = out_dir.join("l2");
            let manifest_path = l2_dir.join("manifest.toml");
            write_atomic(&manifest_path, record.manifest.to_toml_string()?.as_bytes())?;
            let control = RunControl { require_locked: false, max_steps: Some(k), record_root: Some(l2_dir) };
            run_manifest_with(&manifest_path, opts, &control).context("rerunning the recorded manifest for L2")?.dir
        }
    };
    let replayed = Metrics::read_parquet(&dir.join("metrics.parquet"), u64::MAX)?;
    let c = numeric::compare(&recorded, &replayed, spec, k);
    let mut report = L2Report {
        attempted: true,
        reached: false,
        steps_compared: k,
        first_violation: c.first_violation,
        max_abs_diff: c.max_abs_diff,
        replay_run: Some(dir.display().to_string()),
        note: format!("compared steps 0..={k} of {:?}", spec.fields),
    };
    if !c.unknown_fields.is_empty() {
        report.note = format!(
            "failed: replay.numeric.fields {:?} are no columns of the record's metrics.parquet (columns: {:?})",
            c.unknown_fields,
            recorded.names()
        );
    } else {
        report.reached = report.first_violation.is_none() && k > 0;
    }
    Ok(report)
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
