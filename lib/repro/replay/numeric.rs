//! Replay L2, numeric agreement (style_anchors B11; tolerances from the manifest's `[replay.numeric]`,
//! [`crate::repro::manifest::replay`]): the rerun's `metrics.parquet` columns are compared with the record's step by
//! step for the first K training steps, `|replayed - recorded| <= atol + rtol · |recorded|`, and the first
//! `(step, field)` outside its tolerance is named with both values and the allowed difference.
//!
//! A value the record does not hold at a step is not compared (a replay stopped at step K evaluates there, the full
//! run may not have); a value the record holds and the replay lacks is a violation. Two NaNs agree; a NaN against a
//! number does not.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::repro::manifest::replay::NumericSpec;
use crate::repro::record::Metrics;

/// The first value outside its tolerance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Violation {
    pub step: u64,
    pub field: String,
    pub recorded: Option<f64>,
    pub replayed: Option<f64>,
    /// The largest allowed |replayed − recorded|.
    pub allowed: Option<f64>,
}

/// L2: numeric agreement of the first K steps' metrics.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct L2Report {
    pub attempted: bool,
    pub reached: bool,
    /// Training steps compared (rows `1..=K`; the step-0 row is compared too when it holds a listed field).
    pub steps_compared: u64,
    pub first_violation: Option<Violation>,
    /// Per field, the largest |replayed − recorded| over the compared values.
    pub max_abs_diff: BTreeMap<String, f64>,
    /// The rerun whose metrics were compared (the L1 replay's when it covered enough steps).
    pub replay_run: Option<String>,
    pub note: String,
}

impl L2Report {
    pub fn not_attempted(note: impl Into<String>) -> Self {
        Self {
            attempted: false,
            reached: false,
            steps_compared: 0,
            first_violation: None,
            max_abs_diff: BTreeMap::new(),
            replay_run: None,
            note: note.into(),
        }
    }
}

/// What [`compare`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    pub first_violation: Option<Violation>,
    pub max_abs_diff: BTreeMap<String, f64>,
    /// Listed fields that are no column of the record.
    pub unknown_fields: Vec<String>,
}

/// Compares the rows of steps `0..=k` of `recorded` and `replayed`, in step order, fields in the spec's order.
pub fn compare(recorded: &Metrics, replayed: &Metrics, spec: &NumericSpec, k: u64) -> Comparison {
    let names = recorded.names();
    let unknown_fields: Vec<String> = spec.fields.iter().filter(|f| !names.contains(f)).cloned().collect();
    let series = |m: &Metrics, f: &str| -> BTreeMap<u64, f64> { m.series(f).into_iter().collect() };
    let rec: Vec<BTreeMap<u64, f64>> = spec.fields.iter().map(|f| series(recorded, f)).collect();
    let rep: Vec<BTreeMap<u64, f64>> = spec.fields.iter().map(|f| series(replayed, f)).collect();
    let mut steps: Vec<u64> = rec.iter().flat_map(|s| s.keys().copied()).filter(|&s| s <= k).collect();
    steps.sort_unstable();
    steps.dedup();
    let mut max_abs_diff = BTreeMap::new();
    let mut first_violation = None;
    for step in steps {
        for (i, field) in spec.fields.iter().enumerate() {
            let Some(&a) = rec[i].get(&step) else { continue };
            let b = rep[i].get(&step).copied();
            let tol = spec.tolerance(field);
            let allowed = tol.allowed(a);
            let ok = match b {
                Some(b) if a.is_nan() && b.is_nan() => true,
                Some(b) => {
                    let d = (b - a).abs();
                    let entry = max_abs_diff.entry(field.clone()).or_insert(0.0f64);
                    *entry = entry.max(d);
                    d <= allowed
                }
                None => false,
            };
            if !ok && first_violation.is_none() {
                first_violation = Some(Violation {
                    step,
                    field: field.clone(),
                    recorded: Some(a),
                    replayed: b,
                    allowed: Some(allowed),
                });
            }
        }
    }
    Comparison { first_violation, max_abs_diff, unknown_fields }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repro::manifest::replay::Tolerance;

    fn metrics(rows: &[(u64, &[(&str, f64)])]) -> Metrics {
        let mut m = Metrics::new();
        for (s, v) in rows {
            m.log(*s, v).unwrap();
        }
        m
    }

    fn spec(fields: &[&str]) -> NumericSpec {
        NumericSpec {
            steps: 2,
            rtol: 1e-3,
            atol: 1e-6,
            fields: fields.iter().map(|f| f.to_string()).collect(),
            per_field: BTreeMap::new(),
        }
    }

    #[test]
    fn names_the_first_step_and_field_outside_tolerance() {
        let rec = metrics(&[(1, &[("loss", 2.0), ("grad_norm", 1.0)]), (2, &[("loss", 1.0), ("grad_norm", 0.5)])]);
        let close = metrics(&[(1, &[("loss", 2.001), ("grad_norm", 1.0)]), (2, &[("loss", 1.0), ("grad_norm", 0.5)])]);
        let c = compare(&rec, &close, &spec(&["loss", "grad_norm"]), 2);
        assert_eq!(c.first_violation, None, "2.001 is within 1e-6 + 1e-3·2");
        assert!((c.max_abs_diff["loss"] - 0.001).abs() < 1e-12);
        let far = metrics(&[(1, &[("loss", 2.0), ("grad_norm", 1.0)]), (2, &[("loss", 1.0), ("grad_norm", 0.6)])]);
        let v = compare(&rec, &far, &spec(&["loss", "grad_norm"]), 2).first_violation.unwrap();
        assert_eq!((v.step, v.field.as_str(), v.recorded, v.replayed), (2, "grad_norm", Some(0.5), Some(0.6)));
        assert_eq!(v.allowed, Some(1e-6 + 0.5e-3));
        assert_eq!(compare(&rec, &far, &spec(&["loss", "grad_norm"]), 1).first_violation, None, "only steps <= k");
        let mut loose = spec(&["loss", "grad_norm"]);
        loose.per_field.insert("grad_norm".into(), Tolerance { rtol: 0.5, atol: 0.0 });
        assert_eq!(compare(&rec, &far, &loose, 2).first_violation, None);
    }

    #[test]
    fn missing_values_nan_and_unknown_fields() {
        let rec = metrics(&[(1, &[("loss", f64::NAN)]), (2, &[("loss", 1.0), ("acc", 0.5)])]);
        let rep = metrics(&[(1, &[("loss", f64::NAN), ("acc", 0.1)]), (2, &[("loss", 1.0)])]);
        let c = compare(&rec, &rep, &spec(&["loss", "acc", "nope"]), 2);
        let v = c.first_violation.unwrap();
        assert_eq!((v.step, v.field.as_str(), v.replayed), (2, "acc", None), "the replay lacks a recorded value");
        assert_eq!(c.unknown_fields, ["nope"]);
        let nan = metrics(&[(1, &[("loss", 1.0)]), (2, &[("loss", f64::NAN), ("acc", 0.5)])]);
        assert_eq!(compare(&rec, &nan, &spec(&["loss"]), 2).first_violation.unwrap().step, 1);
    }
}
