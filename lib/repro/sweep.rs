//! `r1lab sweep MANIFEST --set key=v1,v2 [--set ...] --seeds 1,2,3 [--metric NAME]` (issue 5 item 6): a grid of
//! manifest variants with paired seeds, run with `r1lab run`'s code, summarised like the papers' ablation tables.
//!
//! - `--set` takes a dotted key into the manifest TOML (`train.optimizer.lr`; a number selects an array element,
//!   `train.schedule.0.steps`) and comma-separated values, each read as a TOML value (`1e-3`, `true`, `"x"`),
//!   else as a string. The key's parent table must exist; the key itself is checked by the manifest's strict
//!   schema. Values cannot contain commas. A grid file's coupled axis ([`crate::repro::grid`]) sets several keys
//!   per value; its column is its keys joined by " + ", its values shown as `key=value` pairs joined by "; ".
//! - The grid is the cartesian product of the `--set` axes × the seed list: every cell runs every seed
//!   (`seeds.base`), so cells are compared on the same seeds (paired). Each run's manifest is a copy with
//!   `id = "<paper>/<stage>_c<cell>"`, written to `<out>/cells/c<cell>-s<seed>.toml`.
//! - Every cell's manifest is built and validated before anything runs, so a misspelt key or an invalid
//!   combination (say `group_size = 1` with GRPO z-scores) stops the sweep up front, naming the cell.
//! - Runs go to `<out>/runs/` ([`RunControl::record_root`]); parent runs are looked up in `RunOptions::runs_root`.
//!   A run that already finished (same run id) is reused, so an interrupted sweep continues where it stopped.
//! - Results: `sweep.parquet` (cell, one column per key, seed, run id, metric), `sweep_summary.parquet` (per cell:
//!   n, mean, sample std, the 95 % CI half-width `t_{0.975,n-1}·s/√n` and its bounds; null for n = 1),
//!   `sweep.png` (mean and CI bounds per cell) and a markdown table (returned and printed by the CLI).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use polars::prelude::{Column, DataFrame, ParquetWriter};
use toml::{Table, Value};

use crate::io::{write_atomic, write_atomic_with};
use crate::pipeline::{RunControl, RunOptions, run_manifest_with};
use crate::plot::{LineChart, Series};
use crate::repro::manifest::Manifest;
use crate::repro::record::{CodeState, RunRecord, run_id};

/// One axis: a `--set key=v1,v2` axis, or a grid's coupled axis whose every value sets several keys together
/// ([`crate::repro::grid`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// The axis' column in the tables: its dotted key (a coupled axis: its keys joined by " + ").
    pub key: String,
    /// What each value sets: `(dotted key, TOML value)` pairs, applied in order (one pair on a `--set` axis).
    pub values: Vec<Vec<(String, Value)>>,
}

impl Axis {
    /// Parses `key=v1,v2,...`.
    pub fn parse(arg: &str) -> Result<Self> {
        let (key, values) = arg
            .split_once('=')
            .with_context(|| format!("--set {arg:?} is not key=v1,v2,...; e.g. train.optimizer.lr=1e-3,3e-3"))?;
        let key = key.trim().to_string();
        ensure!(!key.is_empty() && !key.split('.').any(str::is_empty), "--set {arg:?}: empty key part");
        ensure!(key != "seeds.base" && key != "id", "--set {key}: the sweep sets it (use --seeds for seeds.base)");
        let values: Vec<Value> = values.split(',').map(|v| parse_value(v.trim())).collect();
        ensure!(values.iter().all(|v| v.as_str() != Some("")), "--set {arg:?} has an empty value");
        Ok(Self::single(&key, values))
    }

    /// An axis over one key.
    pub fn single(key: &str, values: Vec<Value>) -> Self {
        Self { key: key.to_string(), values: values.into_iter().map(|v| vec![(key.to_string(), v)]).collect() }
    }
}

/// A TOML value (`1e-3`, `true`, `"x"`, `[1, 2]`), else the text as a string.
fn parse_value(text: &str) -> Value {
    format!("v = {text}")
        .parse::<Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| Value::String(text.to_string()))
}

/// How a value appears in the tables.
fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// How an axis value appears in the tables: the value of a one-key axis, else `key=value` pairs joined by "; ".
fn show_sets(sets: &[(String, Value)]) -> String {
    match sets {
        [(_, v)] => show(v),
        _ => sets.iter().map(|(k, v)| format!("{k}={}", show(v))).collect::<Vec<_>>().join("; "),
    }
}

/// The sweep to run.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepSpec {
    pub axes: Vec<Axis>,
    pub seeds: Vec<u64>,
    /// A key of the runs' final metrics, e.g. `heldout.acc`.
    pub metric: String,
}

/// One planned run.
#[derive(Debug, Clone)]
pub struct PlannedRun {
    pub cell: usize,
    /// `(key, shown value)` per axis.
    pub values: Vec<(String, String)>,
    pub seed: u64,
    pub manifest: Manifest,
    pub text: String,
}

/// Sets `seeds.base` of a manifest table to `seed` (sweeps, grid chains and `demo --seeds` all pair runs by it).
pub fn set_seed(table: &mut Table, seed: u64) -> Result<()> {
    set_dotted(table, "seeds.base", Value::Integer(i64::try_from(seed).context("seed too large")?))
}

/// Sets `key` (dotted; numbers index arrays) in `table` to `value`.
pub fn set_dotted(table: &mut Table, key: &str, value: Value) -> Result<()> {
    let parts: Vec<&str> = key.split('.').collect();
    let (last, path) = parts.split_last().context("empty key")?;
    let mut node: &mut Value = table.get_mut(path.first().copied().unwrap_or(last)).with_context(|| {
        format!("{key}: the manifest has no {:?}; keys must exist in the manifest's tables", parts[0])
    })?;
    if path.is_empty() {
        *node = value;
        return Ok(());
    }
    for (i, part) in path.iter().enumerate().skip(1) {
        let here = parts[..=i].join(".");
        node = match node {
            Value::Table(t) => t.get_mut(*part).with_context(|| format!("{key}: the manifest has no {here}"))?,
            Value::Array(a) => {
                let idx: usize = part.parse().with_context(|| format!("{key}: {here} indexes an array"))?;
                a.get_mut(idx).with_context(|| format!("{key}: {here} is past the array's end"))?
            }
            _ => bail!("{key}: {} is a value, not a table", parts[..i].join(".")),
        };
    }
    match node {
        Value::Table(t) => {
            t.insert(last.to_string(), value);
        }
        Value::Array(a) => {
            let idx: usize = last.parse().with_context(|| format!("{key}: the last part indexes an array"))?;
            *a.get_mut(idx).with_context(|| format!("{key}: index {idx} is past the array's end"))? = value;
        }
        _ => bail!("{key}: {} is a value, not a table", path.join(".")),
    }
    Ok(())
}

/// Every run of the grid, each manifest built and validated (errors name the cell and seed).
pub fn plan(base_text: &str, spec: &SweepSpec) -> Result<Vec<PlannedRun>> {
    ensure!(!spec.seeds.is_empty(), "--seeds is empty; give at least one seed, e.g. --seeds 1,2,3");
    let mut sorted = spec.seeds.clone();
    sorted.sort();
    sorted.dedup();
    ensure!(sorted.len() == spec.seeds.len(), "--seeds repeats a seed");
    let base: Table = base_text.parse().context("the base manifest is not TOML")?;
    let base_manifest = Manifest::from_toml_str(base_text).context("the base manifest is invalid")?;
    let (paper, stage) = base_manifest.id.split_once('/').context("manifest id has no '/'")?;
    let mut cells: Vec<Vec<(usize, usize)>> = vec![Vec::new()];
    for (a, axis) in spec.axes.iter().enumerate() {
        cells = cells
            .into_iter()
            .flat_map(|c| (0..axis.values.len()).map(move |v| [c.clone(), vec![(a, v)]].concat()))
            .collect();
    }
    let mut out = Vec::new();
    for (cell, choice) in cells.iter().enumerate() {
        for &seed in &spec.seeds {
            let mut t = base.clone();
            let mut values = Vec::new();
            for &(a, v) in choice {
                let axis = &spec.axes[a];
                for (key, value) in &axis.values[v] {
                    set_dotted(&mut t, key, value.clone()).with_context(|| format!("sweep cell {cell}"))?;
                }
                values.push((axis.key.clone(), show_sets(&axis.values[v])));
            }
            set_seed(&mut t, seed)?;
            set_dotted(&mut t, "id", Value::String(format!("{paper}/{stage}_c{cell}")))?;
            let text = toml::to_string_pretty(&t)?;
            let shown: Vec<String> = values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let manifest = Manifest::from_toml_str(&text)
                .with_context(|| format!("sweep cell {cell} ({}) seed {seed} is invalid", shown.join(", ")))?;
            out.push(PlannedRun { cell, values, seed, manifest, text });
        }
    }
    Ok(out)
}

/// One finished run.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRow {
    pub cell: usize,
    pub values: Vec<(String, String)>,
    pub seed: u64,
    pub run_id: String,
    pub value: f64,
}

/// One cell over its seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct CellSummary {
    pub cell: usize,
    pub values: Vec<(String, String)>,
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n − 1); None for n = 1.
    pub std: Option<f64>,
    /// 95 % CI half-width with Student t; None for n = 1.
    pub ci95: Option<f64>,
    pub per_seed: Vec<(u64, f64)>,
}

/// What a sweep produced.
#[derive(Debug, Clone)]
pub struct SweepOutcome {
    pub dir: PathBuf,
    pub rows: Vec<SweepRow>,
    pub summary: Vec<CellSummary>,
    pub markdown: String,
}

/// The two-sided 95 % quantile of Student's t with `df` degrees of freedom (`t_{0.975, df}`): exact table values
/// to df = 30, then the Cornish–Fisher expansion around the normal quantile (error < 1e-4).
pub fn t975(df: u64) -> f64 {
    const TABLE: [f64; 30] = [
        12.7062, 4.3027, 3.1824, 2.7764, 2.5706, 2.4469, 2.3646, 2.3060, 2.2622, 2.2281, 2.2010, 2.1788, 2.1604,
        2.1448, 2.1314, 2.1199, 2.1098, 2.1009, 2.0930, 2.0860, 2.0796, 2.0739, 2.0687, 2.0639, 2.0595, 2.0555, 2.0518,
        2.0484, 2.0452, 2.0423,
    ];
    assert!(df > 0, "t quantile needs df >= 1");
    if df <= 30 {
        return TABLE[df as usize - 1];
    }
    let (z, n) = (1.959_963_984_540_054_f64, df as f64);
    z + (z.powi(3) + z) / (4.0 * n) + (5.0 * z.powi(5) + 16.0 * z.powi(3) + 3.0 * z) / (96.0 * n * n)
}

/// `(mean, sample std, 95 % CI half-width)` of `xs` (std and CI None for fewer than 2 values).
pub fn mean_ci(xs: &[f64]) -> (f64, Option<f64>, Option<f64>) {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (mean, None, None);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    let std = var.sqrt();
    (mean, Some(std), Some(t975(xs.len() as u64 - 1) * std / n.sqrt()))
}

/// The finished run of `manifest` under `control.record_root` (or `opts.runs_root`) if there is one with the id
/// `code` gives it, else a new run of `file`; returns its id and folder. A new run is read from the folder it
/// reports: its id depends on the code state when it starts, which a commit made during a sweep changes.
pub fn run_or_reuse(
    manifest: &Manifest,
    file: &Path,
    code: &CodeState,
    opts: &RunOptions,
    control: &RunControl,
) -> Result<(String, PathBuf)> {
    let root = control.record_root.as_ref().unwrap_or(&opts.runs_root);
    // With an unpinned parent that cannot be resolved yet, nothing can be reused: the run reports the error.
    let parent = crate::pipeline::resolve::parent_key(&manifest.model.source, &opts.runs_root).ok().flatten();
    let planned = root.join(run_id(manifest, code, parent.as_deref())?);
    let dir = if planned.join("run.json").is_file() && RunRecord::read(&planned)?.is_complete() {
        planned
    } else {
        run_manifest_with(file, opts, control)?.dir
    };
    let id = dir.file_name().context("a run folder has a name")?.to_string_lossy().into_owned();
    Ok((id, dir))
}

/// Plans, validates, runs and summarises the sweep of the manifest at `path` into `out`.
pub fn run_sweep(path: &Path, spec: &SweepSpec, opts: &RunOptions, out: &Path) -> Result<SweepOutcome> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading manifest {}", path.display()))?;
    let planned = plan(&text, spec).with_context(|| format!("planning the sweep of {}", path.display()))?;
    let code = CodeState::detect(&opts.repo_root);
    let runs = out.join("runs");
    let control = RunControl { require_locked: false, max_steps: None, record_root: Some(runs.clone()) };
    let mut rows = Vec::new();
    for p in &planned {
        let file = out.join("cells").join(format!("c{}-s{}.toml", p.cell, p.seed));
        write_atomic(&file, p.text.as_bytes())?;
        let (id, dir) = run_or_reuse(&p.manifest, &file, &code, opts, &control)
            .with_context(|| format!("running {}", file.display()))?;
        let metrics_file = dir.join("final_metrics.json");
        let bytes = std::fs::read(&metrics_file).with_context(|| format!("reading {}", metrics_file.display()))?;
        let metrics: std::collections::BTreeMap<String, f64> = serde_json::from_slice(&bytes)?;
        let value = *metrics.get(&spec.metric).with_context(|| {
            let known: Vec<&String> = metrics.keys().collect();
            format!("run {id} has no final metric {:?}; pick --metric from {known:?}", spec.metric)
        })?;
        rows.push(SweepRow { cell: p.cell, values: p.values.clone(), seed: p.seed, run_id: id, value });
    }
    let summary = summarize(&rows);
    let keys: Vec<String> = spec.axes.iter().map(|a| a.key.clone()).collect();
    write_rows(&out.join("sweep.parquet"), &keys, &spec.metric, &rows)?;
    write_summary(&out.join("sweep_summary.parquet"), &keys, &summary)?;
    plot(&out.join("sweep.png"), &spec.metric, &summary)?;
    let markdown = markdown(&keys, &spec.metric, &summary);
    write_atomic(&out.join("sweep.md"), markdown.as_bytes())?;
    Ok(SweepOutcome { dir: out.to_path_buf(), rows, summary, markdown })
}

/// Groups rows by cell (in cell order).
pub fn summarize(rows: &[SweepRow]) -> Vec<CellSummary> {
    let mut cells: Vec<CellSummary> = Vec::new();
    for r in rows {
        match cells.iter_mut().find(|c| c.cell == r.cell) {
            Some(c) => c.per_seed.push((r.seed, r.value)),
            None => cells.push(CellSummary {
                cell: r.cell,
                values: r.values.clone(),
                n: 0,
                mean: 0.0,
                std: None,
                ci95: None,
                per_seed: vec![(r.seed, r.value)],
            }),
        }
    }
    for c in &mut cells {
        let xs: Vec<f64> = c.per_seed.iter().map(|(_, v)| *v).collect();
        (c.mean, c.std, c.ci95) = mean_ci(&xs);
        c.n = xs.len();
    }
    cells.sort_by_key(|c| c.cell);
    cells
}

fn key_columns<'a>(keys: &[String], values: impl Iterator<Item = &'a Vec<(String, String)>> + Clone) -> Vec<Column> {
    keys.iter()
        .enumerate()
        .map(|(i, k)| Column::new(k.as_str().into(), values.clone().map(|v| v[i].1.clone()).collect::<Vec<_>>()))
        .collect()
}

fn write_frame(path: &Path, height: usize, columns: Vec<Column>) -> Result<()> {
    let mut df = DataFrame::new(height, columns).map_err(|e| anyhow::anyhow!("building {}: {e}", path.display()))?;
    write_atomic_with(path, |w| {
        ParquetWriter::new(w).finish(&mut df)?;
        Ok(())
    })
}

fn write_rows(path: &Path, keys: &[String], metric: &str, rows: &[SweepRow]) -> Result<()> {
    let mut cols = vec![Column::new("cell".into(), rows.iter().map(|r| r.cell as u64).collect::<Vec<_>>())];
    cols.extend(key_columns(keys, rows.iter().map(|r| &r.values)));
    cols.push(Column::new("seed".into(), rows.iter().map(|r| r.seed).collect::<Vec<_>>()));
    cols.push(Column::new("run_id".into(), rows.iter().map(|r| r.run_id.clone()).collect::<Vec<_>>()));
    cols.push(Column::new(metric.into(), rows.iter().map(|r| r.value).collect::<Vec<_>>()));
    write_frame(path, rows.len(), cols)
}

fn write_summary(path: &Path, keys: &[String], cells: &[CellSummary]) -> Result<()> {
    let f = |g: fn(&CellSummary) -> Option<f64>| cells.iter().map(g).collect::<Vec<_>>();
    let mut cols = vec![Column::new("cell".into(), cells.iter().map(|c| c.cell as u64).collect::<Vec<_>>())];
    cols.extend(key_columns(keys, cells.iter().map(|c| &c.values)));
    cols.push(Column::new("n".into(), cells.iter().map(|c| c.n as u64).collect::<Vec<_>>()));
    cols.push(Column::new("mean".into(), cells.iter().map(|c| c.mean).collect::<Vec<_>>()));
    cols.push(Column::new("std".into(), f(|c| c.std)));
    cols.push(Column::new("ci95_half_width".into(), f(|c| c.ci95)));
    cols.push(Column::new("ci95_low".into(), f(|c| c.ci95.map(|h| c.mean - h))));
    cols.push(Column::new("ci95_high".into(), f(|c| c.ci95.map(|h| c.mean + h))));
    write_frame(path, cells.len(), cols)
}

fn plot(path: &Path, metric: &str, cells: &[CellSummary]) -> Result<()> {
    let pts = |g: &dyn Fn(&CellSummary) -> f64| cells.iter().map(|c| (c.cell as f64, g(c))).collect::<Vec<_>>();
    let mut chart = LineChart::new(format!("sweep: {metric} (mean ± 95% CI)"), "cell", metric)
        .series(Series::new("mean", pts(&|c| c.mean)));
    if cells.iter().all(|c| c.ci95.is_some()) {
        chart = chart
            .series(Series::new("mean - CI", pts(&|c| c.mean - c.ci95.unwrap_or(0.0))))
            .series(Series::new("mean + CI", pts(&|c| c.mean + c.ci95.unwrap_or(0.0))));
    }
    chart.save_png(path)
}

/// The ablation-style table: one row per cell, the key values, n, mean ± CI, and the per-seed values.
pub fn markdown(keys: &[String], metric: &str, cells: &[CellSummary]) -> String {
    let row = |cols: Vec<String>| format!("| {} |\n", cols.join(" | "));
    let mut header: Vec<String> = vec!["cell".into()];
    header.extend(keys.iter().cloned());
    header.extend(["n".into(), format!("{metric} mean"), "± 95% CI".into(), "per seed".into()]);
    let mut s = row(header.clone());
    s.push_str(&format!("|{}\n", "---|".repeat(header.len())));
    for c in cells {
        let mut cols = vec![c.cell.to_string()];
        cols.extend(c.values.iter().map(|(_, v)| v.clone()));
        let seeds: Vec<String> = c.per_seed.iter().map(|(s, v)| format!("{s}: {v:.4}")).collect();
        cols.extend([
            c.n.to_string(),
            format!("{:.4}", c.mean),
            c.ci95.map_or("n/a".to_string(), |h| format!("{h:.4}")),
            seeds.join(", "),
        ]);
        s.push_str(&row(cols));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_parse_as_toml_else_strings() {
        let a = Axis::parse("train.optimizer.lr=1e-3, 3e-3").unwrap();
        assert_eq!(a, Axis::single("train.optimizer.lr", vec![Value::Float(1e-3), Value::Float(3e-3)]));
        let a = Axis::parse("train.modality=text,multimodal").unwrap();
        assert_eq!(a.values[0], vec![("train.modality".to_string(), Value::String("text".into()))]);
        assert!(Axis::parse("no_equals").is_err());
        assert!(Axis::parse("seeds.base=1,2").is_err());
        assert!(Axis::parse("a..b=1").is_err());
    }

    #[test]
    fn dotted_keys_reach_tables_and_arrays() {
        let mut t: Table =
            "[train]\nschedule = [{ steps = 1 }, { steps = 2 }]\n[train.optimizer]\nlr = 1.0\n".parse().unwrap();
        set_dotted(&mut t, "train.optimizer.lr", Value::Float(0.5)).unwrap();
        set_dotted(&mut t, "train.schedule.1.steps", Value::Integer(7)).unwrap();
        assert_eq!(t["train"]["optimizer"]["lr"], Value::Float(0.5));
        assert_eq!(t["train"]["schedule"][1]["steps"], Value::Integer(7));
        let err = set_dotted(&mut t, "trian.optimizer.lr", Value::Float(0.5)).unwrap_err().to_string();
        assert!(err.contains("\"trian\""), "{err}");
        assert!(set_dotted(&mut t, "train.schedule.5.steps", Value::Integer(1)).is_err());
    }

    #[test]
    fn student_t_confidence_intervals() {
        assert!((t975(1) - 12.7062).abs() < 1e-4 && (t975(30) - 2.0423).abs() < 1e-4);
        // Cornish–Fisher beyond the table: t_{0.975, 40} = 2.0211, t_{0.975, 120} = 1.9799.
        assert!((t975(40) - 2.0211).abs() < 2e-4 && (t975(120) - 1.9799).abs() < 1e-4);
        let (m, s, h) = mean_ci(&[1.0, 2.0, 3.0]);
        assert_eq!((m, s), (2.0, Some(1.0)));
        assert!((h.unwrap() - 4.3027 / 3f64.sqrt()).abs() < 1e-9);
        assert_eq!(mean_ci(&[5.0]), (5.0, None, None));
    }

    #[test]
    fn summary_groups_by_cell_and_prints_a_table() {
        let row = |cell, seed, value| SweepRow {
            cell,
            values: vec![("lr".into(), if cell == 0 { "0.1" } else { "0.2" }.into())],
            seed,
            run_id: format!("r{cell}{seed}"),
            value,
        };
        let rows = [row(0, 1, 1.0), row(0, 2, 3.0), row(1, 1, 2.0), row(1, 2, 2.0)];
        let s = summarize(&rows);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].n, s[0].mean, s[1].ci95), (2, 2.0, Some(0.0)));
        let md = markdown(&["lr".into()], "acc", &s);
        assert_eq!(md.lines().count(), 4);
        assert!(md.contains("| 0 | 0.1 | 2 | 2.0000 |") && md.contains("1: 1.0000, 2: 3.0000"), "{md}");
        let columns = |line: &str| line.matches('|').count();
        assert!(md.lines().all(|l| columns(l) == 7), "{md}");
    }

    #[test]
    fn a_sweep_without_axes_runs_the_manifest_over_the_seeds() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(root.join("experiments/embedded/vision_r1_cold_start.toml")).unwrap();
        let spec = SweepSpec { axes: vec![], seeds: vec![1, 2, 3], metric: "heldout.acc".into() };
        let runs = plan(&text, &spec).unwrap();
        assert_eq!(runs.iter().map(|r| (r.cell, r.seed)).collect::<Vec<_>>(), [(0, 1), (0, 2), (0, 3)]);
        assert!(runs.iter().all(|r| r.values.is_empty()));
        let rows: Vec<SweepRow> = runs
            .iter()
            .map(|r| SweepRow { cell: 0, values: vec![], seed: r.seed, run_id: String::new(), value: r.seed as f64 })
            .collect();
        let md = markdown(&[], "acc", &summarize(&rows));
        assert!(md.lines().all(|l| l.matches('|').count() == 6), "{md}");
        assert!(md.contains("| 0 | 3 | 2.0000 |"), "{md}");
    }
}
