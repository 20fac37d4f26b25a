//! Reading a finished run folder in a notebook (issue 7): its metrics as a polars table and as curves with the
//! PTST stage boundaries marked, its sampled rollouts (`samples/*.parquet`) as one table, its held-out evaluations
//! (`eval/<suite>-stepNNNNNN.jsonl`) as tables, and images from files.
//!
//! Everything here only reads what [`crate::pipeline`] wrote (module doc there: the run folder's layout).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use polars::df;
use polars::prelude::{Column, DataFrame, DataType, IntoLazy, ParquetReader, SerReader, col, lit};

use super::Png;
use crate::eval::heldout::EvalRow;
use crate::plot::{LineChart, Series as Curve};
use crate::repro::record::Metrics;

/// Every row of `<dir>/metrics.parquet`.
pub fn metrics(dir: &Path) -> Result<Metrics> {
    Metrics::read_parquet(&dir.join("metrics.parquet"), u64::MAX)
        .with_context(|| format!("reading the metrics of run {}", dir.display()))
}

/// `(step, label)` where the metric `stage` (0-based) changes: the first step of every stage after the first.
pub fn stage_boundaries(m: &Metrics) -> Vec<(f64, String)> {
    let s = m.series("stage");
    s.windows(2)
        .filter(|w| w[1].1 != w[0].1)
        .map(|w| (w[0].0 as f64 + 0.5, format!("stage {} starts", w[1].1 as u64 + 1)))
        .collect()
}

/// One chart of the named metrics against the step, finite values only, with the stage boundaries marked.
/// A name that was never logged is an error listing the logged ones.
pub fn curves(m: &Metrics, title: &str, y_label: &str, names: &[&str]) -> Result<LineChart> {
    let logged = m.names();
    let mut chart = LineChart::new(title, "step", y_label);
    for name in names {
        if !logged.iter().any(|n| n == name) {
            bail!("no metric {name:?} in this run; logged: {logged:?}");
        }
        let pts = m.series(name).into_iter().filter(|(_, v)| v.is_finite()).map(|(s, v)| (s as f64, v));
        chart = chart.series(Curve::new(*name, pts));
    }
    for (x, label) in stage_boundaries(m) {
        chart = chart.marker(x, label);
    }
    Ok(chart)
}

/// Several runs' metrics on one chart, each series named `<label>: <metric>`, steps offset so the runs follow
/// each other (a chained pipeline); a marker at every run's start after the first.
pub fn chained_curves(runs: &[(&str, &Metrics)], title: &str, y_label: &str, metric: &str) -> Result<LineChart> {
    let mut chart = LineChart::new(title, "step (chained)", y_label);
    let mut offset = 0.0;
    for (i, (label, m)) in runs.iter().enumerate() {
        let pts: Vec<(f64, f64)> =
            m.series(metric).into_iter().filter(|(_, v)| v.is_finite()).map(|(s, v)| (offset + s as f64, v)).collect();
        if i > 0 {
            chart = chart.marker(offset, format!("{label} starts"));
        }
        if !pts.is_empty() {
            chart = chart.series(Curve::new(format!("{label}: {metric}"), pts));
        }
        offset += m.series(metric).last().map_or(0.0, |(s, _)| *s as f64);
    }
    Ok(chart)
}

/// The rollout files of a run folder, sorted: `samples/*.parquet` (one per checkpoint interval) and the older
/// single-file layout `samples-*.parquet`.
pub fn sample_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let parquet_in = |folder: &Path, prefix: &str| -> Result<Vec<PathBuf>> {
        if !folder.is_dir() {
            return Ok(Vec::new());
        }
        Ok(std::fs::read_dir(folder)
            .with_context(|| format!("listing {}", folder.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix) && n.ends_with(".parquet"))
            })
            .collect())
    };
    let mut files = parquet_in(&dir.join("samples"), "")?;
    files.extend(parquet_in(dir, "samples-")?);
    files.sort();
    Ok(files)
}

/// Every sampled response of a GRPO run (one row per response: step, prompt, reward, advantage, PAD selection,
/// text), without the token-id lists.
pub fn samples(dir: &Path) -> Result<DataFrame> {
    let files = sample_files(dir)?;
    if files.is_empty() {
        bail!("run {} has no samples/*.parquet or samples-*.parquet (is it a finished GRPO run?)", dir.display());
    }
    let mut frames = Vec::new();
    for f in &files {
        let file = std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
        let df = ParquetReader::new(file).finish().with_context(|| format!("reading {}", f.display()))?;
        frames.push(df.drop("response_ids").unwrap_or(df));
    }
    let mut out = frames.remove(0);
    for f in frames {
        out.vstack_mut(&f).context("stacking the samples tables")?;
    }
    Ok(out)
}

/// Per step, from a samples table: groups (prompts), groups whose rewards are all equal (zero reward variance, so
/// zero advantage: they add no policy gradient) and their fraction, responses sampled, responses put into the
/// update (`selected` summed: PAD's draws with replacement count each time; 1 per response without PAD), how many
/// of those come from zero-variance groups, and that share of the update batch (`update_zero_variance_frac`).
pub fn group_variance(samples: &DataFrame) -> Result<DataFrame> {
    let out = samples
        .clone()
        .lazy()
        .group_by([col("step"), col("prompt_uid")])
        .agg([
            (col("reward").max() - col("reward").min()).alias("spread"),
            col("reward").count().alias("responses"),
            col("selected").sum().alias("selected"),
        ])
        .group_by([col("step")])
        .agg([
            col("prompt_uid").count().alias("groups"),
            col("spread").lt_eq(lit(1e-12)).cast(DataType::UInt32).sum().alias("zero_variance_groups"),
            col("responses").sum().alias("responses"),
            col("selected").sum().alias("selected"),
            col("selected").filter(col("spread").lt_eq(lit(1e-12))).sum().alias("selected_zero_variance"),
        ])
        .with_columns([
            (col("zero_variance_groups").cast(DataType::Float64) / col("groups").cast(DataType::Float64))
                .alias("zero_variance_frac"),
            (col("selected_zero_variance").cast(DataType::Float64) / col("selected").cast(DataType::Float64))
                .alias("update_zero_variance_frac"),
        ])
        .sort(["step"], Default::default())
        .collect()
        .context("grouping the samples by step and prompt")?;
    Ok(out)
}

/// The evaluation files of `suite` in a run folder by step (`eval/<suite>-stepNNNNNN.jsonl`).
pub fn eval_files(dir: &Path, suite: &str) -> Result<BTreeMap<u64, PathBuf>> {
    let eval = dir.join("eval");
    let prefix = format!("{suite}-step");
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(&eval).with_context(|| format!("listing {}", eval.display()))? {
        let p = e?.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if let Some(step) = name.strip_prefix(&prefix).and_then(|s| s.strip_suffix(".jsonl")) {
            out.insert(step.parse().with_context(|| format!("step in {}", p.display()))?, p);
        }
    }
    Ok(out)
}

/// The rows of one evaluation file.
pub fn read_eval_rows(path: &Path) -> Result<Vec<EvalRow>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1)))
        .collect()
}

/// Evaluation rows as a table (uid, ground truth, correct, format, length, truncated, reward, response).
pub fn eval_frame(rows: &[EvalRow]) -> Result<DataFrame> {
    let df = df!(
        "uid" => rows.iter().map(|r| r.uid).collect::<Vec<_>>(),
        "ground_truth" => rows.iter().map(|r| r.ground_truth.clone()).collect::<Vec<_>>(),
        "correct" => rows.iter().map(|r| r.correct).collect::<Vec<_>>(),
        "format_ok" => rows.iter().map(|r| r.format_ok).collect::<Vec<_>>(),
        "response_len" => rows.iter().map(|r| r.response_len as u64).collect::<Vec<_>>(),
        "truncated" => rows.iter().map(|r| r.truncated).collect::<Vec<_>>(),
        "reward" => rows.iter().map(|r| r.reward).collect::<Vec<_>>(),
        "response" => rows.iter().map(|r| r.response.clone()).collect::<Vec<_>>(),
    )?;
    Ok(df)
}

/// The newest evaluation of `suite` in a run folder as `(step, table)`.
pub fn latest_eval(dir: &Path, suite: &str) -> Result<(u64, DataFrame)> {
    let files = eval_files(dir, suite)?;
    let Some((step, path)) = files.last_key_value() else {
        bail!("run {} has no evaluation of suite {suite:?} under eval/", dir.display());
    };
    Ok((*step, eval_frame(&read_eval_rows(path)?)?))
}

/// A table of named runs' final metrics: one row per run, one column per key (null where a run lacks it).
pub fn final_metrics_table(runs: &[(&str, &BTreeMap<String, f64>)], keys: &[&str]) -> Result<DataFrame> {
    let mut columns = vec![Column::new("run".into(), runs.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>())];
    for k in keys {
        let values: Vec<Option<f64>> = runs.iter().map(|(_, m)| m.get(*k).copied()).collect();
        columns.push(Column::new((*k).into(), values));
    }
    DataFrame::new(runs.len(), columns).map_err(|e| anyhow::anyhow!("building the final-metrics table: {e}"))
}

/// An image file shown inline (PNG, or re-encoded to PNG from any format the `image` crate reads).
pub fn image_file(path: &Path) -> Result<Png> {
    let bytes = std::fs::read(path).with_context(|| format!("reading image {}", path.display()))?;
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(Png(bytes));
    }
    let img = image::load_from_memory(&bytes).with_context(|| format!("decoding image {}", path.display()))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(Png(png))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ptst_metrics() -> Metrics {
        let mut m = Metrics::new();
        for (step, stage, r) in [(1, 0.0, 0.1), (2, 0.0, 0.2), (3, 1.0, 0.4), (4, 1.0, f64::NAN)] {
            m.log(step, &[("stage", stage), ("reward_mean", r)]).unwrap();
        }
        m
    }

    #[test]
    fn stage_boundary_sits_between_the_last_and_first_step_of_two_stages() {
        assert_eq!(stage_boundaries(&ptst_metrics()), vec![(2.5, "stage 2 starts".to_string())]);
    }

    #[test]
    fn curves_drop_non_finite_points_and_reject_unknown_metrics() {
        let m = ptst_metrics();
        let c = curves(&m, "reward", "reward", &["reward_mean"]).unwrap();
        assert_eq!(c.series[0].points, vec![(1.0, 0.1), (2.0, 0.2), (3.0, 0.4)]);
        assert_eq!(c.markers.len(), 1);
        let err = curves(&m, "x", "x", &["kl"]).unwrap_err().to_string();
        assert!(err.contains("\"kl\"") && err.contains("reward_mean"), "{err}");
    }

    #[test]
    fn chained_curves_offset_later_runs() {
        let a = ptst_metrics();
        let mut b = Metrics::new();
        b.log(1, &[("reward_mean", 0.5)]).unwrap();
        let c = chained_curves(&[("a", &a), ("b", &b)], "r", "r", "reward_mean").unwrap();
        assert_eq!(c.series[1].points, vec![(5.0, 0.5)]);
        assert_eq!(c.markers, vec![(4.0, "b starts".to_string())]);
    }

    #[test]
    fn group_variance_counts_groups_with_equal_rewards() {
        let df = df!(
            "step" => [1u64, 1, 1, 1, 2, 2],
            "prompt_uid" => [7u64, 7, 8, 8, 7, 7],
            "reward" => [1.0, 1.0, 0.0, 1.0, 0.5, 0.5],
            "selected" => [0u64, 0, 2, 1, 1, 1],
        )
        .unwrap();
        let g = group_variance(&df).unwrap();
        let zv: Vec<Option<u32>> = g.column("zero_variance_groups").unwrap().u32().unwrap().iter().collect();
        assert_eq!(zv, vec![Some(1), Some(1)]);
        let frac: Vec<Option<f64>> = g.column("zero_variance_frac").unwrap().f64().unwrap().iter().collect();
        assert_eq!(frac, vec![Some(0.5), Some(1.0)]);
        let sel: Vec<Option<u64>> = g.column("selected").unwrap().u64().unwrap().iter().collect();
        assert_eq!(sel, vec![Some(3), Some(2)]);
        let from_zero: Vec<Option<u64>> = g.column("selected_zero_variance").unwrap().u64().unwrap().iter().collect();
        assert_eq!(from_zero, vec![Some(0), Some(2)]);
        let share: Vec<Option<f64>> = g.column("update_zero_variance_frac").unwrap().f64().unwrap().iter().collect();
        assert_eq!(share, vec![Some(0.0), Some(1.0)]);
    }

    #[test]
    fn eval_files_are_found_by_suite_and_step() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("eval")).unwrap();
        let row = EvalRow {
            uid: 3,
            ground_truth: "8".into(),
            response: "<answer>8</answer>".into(),
            response_len: 5,
            truncated: false,
            correct: true,
            format_ok: Some(true),
            reward: 1.0,
        };
        let line = serde_json::to_string(&row).unwrap();
        std::fs::write(dir.path().join("eval/heldout-step000002.jsonl"), format!("{line}\n")).unwrap();
        std::fs::write(dir.path().join("eval/heldout-step000000.jsonl"), "").unwrap();
        std::fs::write(dir.path().join("eval/other-step000009.jsonl"), "").unwrap();
        let (step, df) = latest_eval(dir.path(), "heldout").unwrap();
        assert_eq!((step, df.height()), (2, 1));
        assert!(latest_eval(dir.path(), "missing").unwrap_err().to_string().contains("\"missing\""));
    }

    #[test]
    fn final_metrics_table_has_nulls_where_a_run_lacks_a_key() {
        let a = BTreeMap::from([("acc".to_string(), 1.0)]);
        let b = BTreeMap::from([("acc".to_string(), 2.0), ("kl".to_string(), 0.1)]);
        let t = final_metrics_table(&[("a", &a), ("b", &b)], &["acc", "kl"]).unwrap();
        assert_eq!(t.shape(), (2, 3));
        assert_eq!(t.column("kl").unwrap().null_count(), 1);
    }

    #[test]
    fn sample_files_are_found_in_both_layouts_sorted_by_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("samples")).unwrap();
        for f in [
            "samples/step000003-000004.parquet",
            "samples/step000001-000002.parquet",
            "samples-from-step000000.parquet",
        ] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        std::fs::write(dir.path().join("metrics.parquet"), b"").unwrap();
        let names: Vec<String> = sample_files(dir.path())
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "samples/step000001-000002.parquet",
                "samples/step000003-000004.parquet",
                "samples-from-step000000.parquet"
            ]
        );
        assert!(samples(tempfile::tempdir().unwrap().path()).is_err());
    }

    #[test]
    fn image_file_keeps_png_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let img = image::RgbImage::from_pixel(3, 2, image::Rgb([9, 9, 9]));
        let path = dir.path().join("x.png");
        img.save(&path).unwrap();
        let Png(bytes) = image_file(&path).unwrap();
        assert_eq!(bytes, std::fs::read(&path).unwrap());
    }
}
