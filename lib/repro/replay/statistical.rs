//! Replay L3, statistical agreement of the training outcome (style_anchors B11; settings from the manifest's
//! `[replay.statistical]`, [`crate::repro::manifest::replay`], whose header states and justifies the rule): the
//! recorded manifest is rerun in full once per listed seed (the seed replaces `seeds.base`; everything else,
//! including the pinned inputs, is the record's), and each listed final metric passes when
//! `|recorded − mean| <= max(t_{0.975,n−1} · s · sqrt(1 + 1/n), atol)`. The report gives every seed's value, the
//! mean, the sample std, the 95 % CI of the mean ([`crate::repro::sweep::mean_ci`]), the prediction half-width
//! and the verdict.
//!
//! The reruns go to `<replay dir>/l3/runs/<run id>/` with their manifests beside them (`seed-<s>.toml`), so the
//! report can be audited run by run. Deviation from B11: only final metrics are compared, not the reward and
//! length curves at intermediate checkpoints.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::io::write_atomic;
use crate::pipeline::{RunControl, RunOptions, run_manifest_with};
use crate::repro::manifest::Manifest;
use crate::repro::manifest::replay::StatisticalSpec;
use crate::repro::sweep::{mean_ci, t975};

/// One metric's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricStat {
    pub metric: String,
    pub recorded: f64,
    /// `(seed, value)` in the spec's seed order.
    pub per_seed: Vec<(u64, f64)>,
    pub mean: f64,
    pub std: Option<f64>,
    /// Half-width of the 95 % CI of the seeds' mean (reported, not the rule).
    pub ci95: Option<f64>,
    /// Half-width of the 95 % prediction interval of one more run.
    pub prediction95: Option<f64>,
    /// `max(prediction95, atol)`.
    pub allowed: f64,
    /// `|recorded − mean|`.
    pub difference: f64,
    pub passed: bool,
}

/// L3: the final metrics of reruns over the listed seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct L3Report {
    pub attempted: bool,
    pub reached: bool,
    pub seeds: Vec<u64>,
    pub atol: f64,
    pub metrics: Vec<MetricStat>,
    /// The reruns' folders, in seed order.
    pub runs: Vec<String>,
    pub note: String,
}

impl L3Report {
    pub fn not_attempted(note: impl Into<String>) -> Self {
        Self {
            attempted: false,
            reached: false,
            seeds: Vec::new(),
            atol: 0.0,
            metrics: Vec::new(),
            runs: Vec::new(),
            note: note.into(),
        }
    }

    /// The first metric that failed.
    pub fn first_failure(&self) -> Option<&MetricStat> {
        self.metrics.iter().find(|m| !m.passed)
    }
}

/// Applies the L3 rule to one metric.
pub fn judge(metric: &str, recorded: f64, per_seed: Vec<(u64, f64)>, atol: f64) -> MetricStat {
    let values: Vec<f64> = per_seed.iter().map(|(_, v)| *v).collect();
    let n = values.len();
    let (mean, std, ci95) = mean_ci(&values);
    let prediction95 = std.map(|s| t975(n as u64 - 1) * s * (1.0 + 1.0 / n as f64).sqrt());
    let allowed = prediction95.unwrap_or(0.0).max(atol);
    let difference = (recorded - mean).abs();
    MetricStat {
        metric: metric.into(),
        recorded,
        per_seed,
        mean,
        std,
        ci95,
        prediction95,
        allowed,
        difference,
        passed: difference <= allowed,
    }
}

/// Reads `final_metrics.json` of a run folder.
pub fn final_metrics(run_dir: &Path) -> Result<BTreeMap<String, f64>> {
    let path = run_dir.join("final_metrics.json");
    let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// Reruns `manifest` once per seed of `spec` under `out_dir/l3/` and judges the metrics against the record in
/// `run_dir`.
pub fn run(
    manifest: &Manifest,
    run_dir: &Path,
    spec: &StatisticalSpec,
    out_dir: &Path,
    opts: &RunOptions,
) -> Result<L3Report> {
    let recorded = final_metrics(run_dir)?;
    let missing: Vec<&String> = spec.metrics.iter().filter(|m| !recorded.contains_key(*m)).collect();
    let mut report = L3Report { seeds: spec.seeds.clone(), atol: spec.atol, ..L3Report::not_attempted("") };
    if !missing.is_empty() {
        let known: Vec<&String> = recorded.keys().collect();
        report.note = format!(
            "not attempted: the record's final_metrics.json has no {missing:?}; replay.statistical.metrics must be \
             among {known:?}"
        );
        return Ok(report);
    }
    let dir = out_dir.join("l3");
    let control = RunControl { require_locked: false, max_steps: None, record_root: Some(dir.join("runs")) };
    let mut values: BTreeMap<&str, Vec<(u64, f64)>> = BTreeMap::new();
    for &seed in &spec.seeds {
        let mut m = manifest.clone();
        m.seeds.base = seed;
        let path = dir.join(format!("seed-{seed}.toml"));
        write_atomic(&path, m.to_toml_string()?.as_bytes())?;
        let out = run_manifest_with(&path, opts, &control).with_context(|| format!("L3 rerun with seed {seed}"))?;
        report.runs.push(out.dir.display().to_string());
        for name in &spec.metrics {
            let v = *out.final_metrics.get(name).with_context(|| {
                format!("the L3 rerun with seed {seed} ({}) has no final metric {name:?}", out.dir.display())
            })?;
            values.entry(name.as_str()).or_default().push((seed, v));
        }
    }
    report.attempted = true;
    report.metrics = spec
        .metrics
        .iter()
        .map(|name| judge(name, recorded[name], values.remove(name.as_str()).unwrap_or_default(), spec.atol))
        .collect();
    report.reached = report.metrics.iter().all(|m| m.passed);
    report.note = format!(
        "{} seeds; pass when |recorded - mean| <= max(t95 * std * sqrt(1 + 1/n), atol = {})",
        spec.seeds.len(),
        spec.atol
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_uses_the_prediction_interval_with_an_atol_floor() {
        // Seeds 1.0, 2.0, 3.0: mean 2, s = 1, t(2) = 4.3027, prediction half-width 4.3027 · sqrt(4/3).
        let seeds = vec![(1, 1.0), (2, 2.0), (3, 3.0)];
        let half = 4.3027 * (4.0f64 / 3.0).sqrt();
        let inside = judge("acc", 2.0 + half - 1e-9, seeds.clone(), 0.0);
        assert!(inside.passed && (inside.allowed - half).abs() < 1e-12, "{inside:?}");
        assert!((inside.ci95.unwrap() - 4.3027 / 3f64.sqrt()).abs() < 1e-12, "the CI of the mean is reported");
        assert!(!judge("acc", 2.0 + half + 1e-9, seeds.clone(), 0.0).passed);
        assert!(judge("acc", 2.0 + half + 1e-9, seeds, 10.0).passed, "atol is a floor");
        // Seeds that agree exactly: only atol allows a difference.
        let same = vec![(1, 0.5), (2, 0.5)];
        assert!(judge("acc", 0.5, same.clone(), 0.0).passed);
        let off = judge("acc", 0.51, same.clone(), 0.0);
        assert!(!off.passed && off.allowed == 0.0 && off.std == Some(0.0), "{off:?}");
        assert!(judge("acc", 0.51, same, 0.02).passed);
    }
}
