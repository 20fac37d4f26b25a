//! `[replay]`: the tolerances of replay levels L2 (numeric) and L3 (statistical) (issue 5 item 5; style_anchors
//! B11), checked by `r1lab replay` ([`crate::repro::replay`]). Optional: a manifest without it hashes exactly as
//! before the section existed (it is left out of the canonical JSON when absent).
//!
//! ```toml
//! [replay.numeric]        # L2: metrics.parquet columns, step by step
//! steps = 5               # the first K training steps (step-0 rows, e.g. the first evaluation, are included)
//! rtol = 1e-3             # |replayed - recorded| <= atol + rtol * |recorded|   (numpy `isclose`)
//! atol = 1e-5
//! fields = ["loss", "grad_norm", "reward_mean"]
//! per_field = { grad_norm = { rtol = 1e-2, atol = 1e-4 } }   # optional overrides
//!
//! [replay.statistical]    # L3: final_metrics.json over reruns with other base seeds
//! seeds = [1, 2, 3]       # each replaces seeds.base for one full rerun (at least 2, distinct)
//! metrics = ["heldout.acc"]
//! atol = 0.01             # floor of the allowed difference, in the metric's unit
//! ```
//!
//! L3's rule (applied in `repro::replay::statistical`): with the replay seeds' values `x_1..x_n` (mean `m`, sample
//! std `s`), the recorded value `r` passes when `|r - m| <= max(t_{0.975, n-1} · s · sqrt(1 + 1/n), atol)`. The first
//! term is the 95 % *prediction* interval of one more run under the same seed distribution; the record is one such
//! run, so this is the right question ("is our run a plausible draw of this experiment?"), whereas the 95 % CI of
//! the mean (`t · s / sqrt(n)`, reported alongside) shrinks to zero with more seeds and would reject a faithful
//! record ever more often. `atol` is B11's `abs_tol` floor: it covers metrics the seeds do not move (`s = 0`, e.g.
//! a saturated accuracy on a tiny suite) and the granularity of accuracies on finite suites.
//!
//! Deviation from B11: B11's L2 is a teacher-forced golden batch through a checkpoint; here L2 compares a rerun's
//! logged scalar metrics (rollouts are *not* forced to the recorded tokens), which is only meaningful for the few
//! steps before sampling amplifies a rounding difference (hence `steps`). B11's `k·σ` is replaced by the t-based
//! prediction interval above.
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};

/// `[replay]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplaySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub numeric: Option<NumericSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistical: Option<StatisticalSpec>,
}

/// `[replay.numeric]`: L2 tolerances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NumericSpec {
    /// Compare the first K training steps.
    pub steps: u64,
    pub rtol: f64,
    pub atol: f64,
    /// `metrics.parquet` column names.
    pub fields: Vec<String>,
    /// Tolerances of single fields that differ from `rtol`/`atol`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_field: BTreeMap<String, Tolerance>,
}

/// A relative and an absolute tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

impl Tolerance {
    /// The largest allowed `|replayed - recorded|`.
    pub fn allowed(&self, recorded: f64) -> f64 {
        self.atol + self.rtol * recorded.abs()
    }

    fn validate(&self, key: &str) -> Result<()> {
        ensure!(
            self.rtol.is_finite() && self.rtol >= 0.0,
            "{key}.rtol must be a finite number >= 0, got {}",
            self.rtol
        );
        ensure!(
            self.atol.is_finite() && self.atol >= 0.0,
            "{key}.atol must be a finite number >= 0, got {}",
            self.atol
        );
        Ok(())
    }
}

impl NumericSpec {
    /// The tolerance of `field` (its `per_field` entry, else the section's).
    pub fn tolerance(&self, field: &str) -> Tolerance {
        self.per_field.get(field).copied().unwrap_or(Tolerance { rtol: self.rtol, atol: self.atol })
    }
}

/// `[replay.statistical]`: L3 settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatisticalSpec {
    /// Base seeds of the reruns, each replacing `seeds.base`.
    pub seeds: Vec<u64>,
    /// `final_metrics.json` keys.
    pub metrics: Vec<String>,
    /// Floor of the allowed |recorded − mean|.
    pub atol: f64,
}

impl ReplaySpec {
    /// Refuses an empty section and every bad value, naming its key.
    pub fn validate(&self) -> Result<()> {
        if self.numeric.is_none() && self.statistical.is_none() {
            bail!("[replay] has neither `numeric` nor `statistical`; add one of them or remove the section");
        }
        if let Some(n) = &self.numeric {
            ensure!(n.steps >= 1, "replay.numeric.steps must be >= 1 (the training steps to compare)");
            Tolerance { rtol: n.rtol, atol: n.atol }.validate("replay.numeric")?;
            names(&n.fields, "replay.numeric.fields", "metrics.parquet column")?;
            ensure!(
                !n.fields.iter().any(|f| f == "step"),
                "replay.numeric.fields lists `step`, which is the row key, not a metric; remove it"
            );
            for (field, tol) in &n.per_field {
                ensure!(
                    n.fields.contains(field),
                    "replay.numeric.per_field.{field} is not in replay.numeric.fields; add it there or remove it"
                );
                tol.validate(&format!("replay.numeric.per_field.{field}"))?;
            }
        }
        if let Some(s) = &self.statistical {
            ensure!(
                s.seeds.len() >= 2,
                "replay.statistical.seeds has {} seed(s); the rule needs a spread, so list at least 2",
                s.seeds.len()
            );
            let distinct: BTreeSet<u64> = s.seeds.iter().copied().collect();
            ensure!(distinct.len() == s.seeds.len(), "replay.statistical.seeds lists a seed twice: {:?}", s.seeds);
            names(&s.metrics, "replay.statistical.metrics", "final_metrics.json key")?;
            ensure!(
                s.atol.is_finite() && s.atol >= 0.0,
                "replay.statistical.atol must be a finite number >= 0, got {}",
                s.atol
            );
        }
        Ok(())
    }
}

fn names(list: &[String], key: &str, what: &str) -> Result<()> {
    ensure!(!list.is_empty(), "{key} is empty; list at least one {what}");
    let mut seen = BTreeSet::new();
    for f in list {
        ensure!(!f.trim().is_empty(), "{key} has an empty name");
        ensure!(seen.insert(f.as_str()), "{key} lists {f:?} twice");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ReplaySpec> {
        let s: ReplaySpec = toml::from_str(text)?;
        s.validate()?;
        Ok(s)
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn parses_both_levels_and_resolves_per_field_tolerances() {
        let s = parse(
            "[numeric]\nsteps = 3\nrtol = 1e-3\natol = 1e-5\nfields = [\"loss\", \"grad_norm\"]\n\
             per_field = { grad_norm = { rtol = 1e-2, atol = 0.0 } }\n\
             [statistical]\nseeds = [1, 2, 3]\nmetrics = [\"heldout.acc\"]\natol = 0.01\n",
        )
        .unwrap();
        let n = s.numeric.as_ref().unwrap();
        assert_eq!(n.tolerance("loss"), Tolerance { rtol: 1e-3, atol: 1e-5 });
        assert_eq!(n.tolerance("grad_norm"), Tolerance { rtol: 1e-2, atol: 0.0 });
        assert_eq!(n.tolerance("loss").allowed(-2.0), 1e-5 + 2e-3);
        assert_eq!(s.statistical.as_ref().unwrap().seeds, [1, 2, 3]);
    }

    #[test]
    fn bad_sections_name_their_key() {
        let num = |body: &str| format!("[numeric]\n{body}\n");
        let ok = "steps = 2\nrtol = 1e-3\natol = 0.0\nfields = [\"loss\"]";
        assert!(parse(&num(ok)).is_ok());
        assert!(err("").contains("neither `numeric` nor `statistical`"));
        assert!(err(&num(&ok.replace("steps = 2", "steps = 0"))).contains("replay.numeric.steps"));
        assert!(err(&num(&ok.replace("rtol = 1e-3", "rtol = -1.0"))).contains("replay.numeric.rtol"));
        assert!(err(&num(&ok.replace("atol = 0.0", "atol = nan"))).contains("replay.numeric.atol"));
        assert!(err(&num(&ok.replace("[\"loss\"]", "[]"))).contains("replay.numeric.fields is empty"));
        assert!(err(&num(&ok.replace("[\"loss\"]", "[\"loss\", \"loss\"]"))).contains("twice"));
        assert!(err(&num(&ok.replace("[\"loss\"]", "[\"step\"]"))).contains("row key"));
        let over = format!("{ok}\nper_field = {{ lr = {{ rtol = 0.1, atol = 0.0 }} }}");
        assert!(err(&num(&over)).contains("replay.numeric.per_field.lr is not in"));
        let over = format!("{ok}\nper_field = {{ loss = {{ rtol = 0.1, atol = -1.0 }} }}");
        assert!(err(&num(&over)).contains("replay.numeric.per_field.loss.atol"));
        assert!(err(&num(&format!("{ok}\nrtoll = 1.0"))).contains("rtoll"), "unknown keys are refused");

        let stat = |body: &str| format!("[statistical]\n{body}\n");
        let ok = "seeds = [1, 2]\nmetrics = [\"loss\"]\natol = 0.0";
        assert!(parse(&stat(ok)).is_ok());
        assert!(err(&stat(&ok.replace("[1, 2]", "[1]"))).contains("at least 2"));
        assert!(err(&stat(&ok.replace("[1, 2]", "[3, 3]"))).contains("seed twice"));
        assert!(err(&stat(&ok.replace("[\"loss\"]", "[]"))).contains("replay.statistical.metrics is empty"));
        assert!(err(&stat(&ok.replace("atol = 0.0", "atol = -0.5"))).contains("replay.statistical.atol"));
        assert!(err(&stat("seeds = [1, 2]\nmetrics = [\"loss\"]")).contains("atol"), "atol is required");
    }
}
