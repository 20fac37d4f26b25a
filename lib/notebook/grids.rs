//! The papers' ablation grids in a notebook (notebook 06, issue 7): which grid files to run (an environment
//! variable holding one or more paths, defaulting to the CI-sized twins under `experiments/embedded/ci/`), which
//! cold-start runs their "from the cold start" cells need first ([`cold_starts`]: one per paper), and a
//! finished grid ([`crate::repro::grid::run_grid`]) as polars tables and a chart: every run, the cells in the
//! paper's table shape with the published numbers beside ours, and the paired per-seed differences against one
//! reference cell with their 95 % CIs (Vision-R1 Tab.5/Tab.6, ReVisual-R1 Tab.3/Tab.4; papers_spec §1.8, §2.11).
//!
//! Choices (notebook plumbing, not from either paper):
//! - The variable holds paths separated by `,` (relative to the repository root unless absolute), so one
//!   notebook run can reproduce several tables. The cold starts are lists too, paired in order: the i-th cold-start
//!   manifest is prepared with the i-th chain file and opened from the i-th record folder if records are given;
//!   one chain file serves every manifest.
//! - The reference of the paired differences is the paper's final recipe when the grid has it as a cell
//!   ([`reference_cell`]: Vision-R1's 4K×16→8K×8 and cold start, ReVisual-R1's PAD and CS+MRL+TRL), else the
//!   first cell.
//! - evcxr shows only the last display of each kind that a cell prints, so several grids' tables are shown as one
//!   HTML block ([`titled_tables`]) and their charts as one PNG, stacked top to bottom ([`stacked_png`]).
//! - The chart puts the paper's value of one published metric beside our metric on one percent axis; the two
//!   are different benchmarks (ours: the held-out split), so the chart compares shapes, not levels.
use std::path::PathBuf;

use anyhow::{Result, bail, ensure};
use polars::df;
use polars::prelude::{Column, DataFrame};

use super::lab::Lab;
use super::{Html, Png, table};
use crate::plot::{LineChart, Series};
use crate::repro::grid::Grid;
use crate::repro::sweep::{CellSummary, mean_ci};

/// The entries of `$var` (`,`-separated, blanks dropped), else of `default` (same form).
fn env_list(var: &str, default: &str) -> Vec<String> {
    let list = std::env::var(var).ok().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| default.to_string());
    list.split(',').map(str::trim).filter(|p| !p.is_empty()).map(String::from).collect()
}

/// The grid files named by `$var` (`,`-separated), else by `default` (same form).
pub fn grid_files(lab: &Lab, var: &str, default: &str) -> Vec<PathBuf> {
    env_list(var, default).iter().map(|p| lab.repo_root.join(p)).collect()
}

/// A cold-start run the grids start from: its manifest, the chain file whose data it is prepared with, and the
/// finished run folder to open instead of running it, if one was named.
#[derive(Debug, Clone, PartialEq)]
pub struct ColdStart {
    pub manifest: PathBuf,
    pub chain: String,
    pub record: Option<PathBuf>,
}

/// The cold starts named by `$manifests_var`, `$chains_var` and `$records_var` (each `,`-separated, paired in
/// order; the first two default to `default_manifests` and `default_chains`, records to none). One chain file
/// serves every manifest; otherwise the lists must have equal lengths, and records, when given, one per manifest.
pub fn cold_starts(
    lab: &Lab,
    (manifests_var, default_manifests): (&str, &str),
    (chains_var, default_chains): (&str, &str),
    records_var: &str,
) -> Result<Vec<ColdStart>> {
    let manifests = env_list(manifests_var, default_manifests);
    let chains = env_list(chains_var, default_chains);
    let records = env_list(records_var, "");
    pair_cold_starts(lab, (manifests_var, manifests), (chains_var, chains), (records_var, records))
}

/// [`cold_starts`] on the lists read (each with the variable it came from, for the errors).
fn pair_cold_starts(
    lab: &Lab,
    (manifests_var, manifests): (&str, Vec<String>),
    (chains_var, mut chains): (&str, Vec<String>),
    (records_var, records): (&str, Vec<String>),
) -> Result<Vec<ColdStart>> {
    ensure!(!manifests.is_empty(), "{manifests_var} names no cold-start manifest");
    if chains.len() == 1 {
        chains = vec![chains[0].clone(); manifests.len()];
    }
    if chains.len() != manifests.len() {
        bail!(
            "{} cold-start manifest(s) ({manifests_var} or its default: {manifests:?}) but {} chain file(s) \
             ({chains_var} or its default: {chains:?}); give one chain file, or one per manifest in the same order",
            manifests.len(),
            chains.len()
        );
    }
    if !records.is_empty() && records.len() != manifests.len() {
        bail!(
            "{} run folder(s) in {records_var} for {} cold-start manifest(s) {manifests:?}; name one finished run \
             per manifest, in the same order, or unset {records_var}",
            records.len(),
            manifests.len()
        );
    }
    let record = |i: usize| records.get(i).map(|r| lab.repo_root.join(r));
    Ok(manifests
        .iter()
        .zip(chains)
        .enumerate()
        .map(|(i, (m, chain))| ColdStart { manifest: lab.repo_root.join(m), chain, record: record(i) })
        .collect())
}

/// The cell labels the papers' final recipes carry in their ablation tables, in the order they are looked for.
const FINAL_RECIPES: [&str; 4] = ["4K×16→8K×8", "Vision-R1", "PAD", "CS+MRL+TRL"];

/// The cell the paired differences are taken against: the paper's final recipe if it is a cell, else the first.
pub fn reference_cell(cells: &[(String, CellSummary)]) -> Option<&str> {
    FINAL_RECIPES.iter().find_map(|r| cells.iter().find(|(l, _)| l == r)).or(cells.first()).map(|(l, _)| l.as_str())
}

/// One row per run: cell, seed and the grid's metric.
pub fn runs_table(grid: &Grid, cells: &[(String, CellSummary)]) -> Result<DataFrame> {
    let (mut label, mut seed, mut value) = (vec![], vec![], vec![]);
    for (l, c) in cells {
        for (s, v) in &c.per_seed {
            label.push(l.clone());
            seed.push(*s);
            value.push(*v);
        }
    }
    let df = DataFrame::new(
        label.len(),
        vec![
            Column::new("cell".into(), label),
            Column::new("seed".into(), seed),
            Column::new(grid.metric.as_str().into(), value),
        ],
    )?;
    Ok(df)
}

/// The paper's table shape: one row per cell (the paper's rows, in the grid's order) with our mean, its 95 % CI
/// and bounds, then one column per published metric (`paper <metric>`, null where the paper has no number) and
/// where the published row was copied from.
pub fn paper_table(grid: &Grid, cells: &[(String, CellSummary)]) -> Result<DataFrame> {
    let mut keys: Vec<&String> = grid.published.iter().flat_map(|p| p.metrics.keys()).collect();
    keys.sort();
    keys.dedup();
    let published = |label: &str| grid.published.iter().find(|p| p.cell == label);
    let ours = |f: fn(&CellSummary) -> Option<f64>| cells.iter().map(|(_, c)| f(c)).collect::<Vec<_>>();
    let mut cols = vec![
        Column::new("cell".into(), cells.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>()),
        Column::new("n".into(), cells.iter().map(|(_, c)| c.n as u64).collect::<Vec<_>>()),
        Column::new(format!("ours {} mean", grid.metric).into(), ours(|c| Some(c.mean))),
        Column::new("± 95% CI".into(), ours(|c| c.ci95)),
        Column::new("ci95_low".into(), ours(|c| c.ci95.map(|h| c.mean - h))),
        Column::new("ci95_high".into(), ours(|c| c.ci95.map(|h| c.mean + h))),
    ];
    for k in keys {
        let vals: Vec<Option<f64>> =
            cells.iter().map(|(l, _)| published(l).and_then(|p| p.metrics.get(k).copied())).collect();
        cols.push(Column::new(format!("paper {k}").into(), vals));
    }
    let source: Vec<Option<String>> = cells.iter().map(|(l, _)| published(l).map(|p| p.source.clone())).collect();
    cols.push(Column::new("paper source".into(), source));
    Ok(DataFrame::new(cells.len(), cols)?)
}

/// For every cell but `reference`: the per-seed differences `cell − reference` over the seeds both ran, their
/// mean and 95 % CI half-width (Student t; null below 2 pairs).
pub fn paired_differences(cells: &[(String, CellSummary)], reference: &str) -> Result<DataFrame> {
    let base = cells.iter().find(|(l, _)| l == reference).map(|(_, c)| c);
    let base = base.ok_or_else(|| {
        let labels: Vec<&str> = cells.iter().map(|(l, _)| l.as_str()).collect();
        anyhow::anyhow!("reference cell {reference:?} is not a cell of the grid; cells: {labels:?}")
    })?;
    let (mut label, mut pairs, mut mean, mut ci) = (vec![], vec![], vec![], vec![]);
    for (l, c) in cells.iter().filter(|(l, _)| l != reference) {
        let diffs: Vec<f64> = c
            .per_seed
            .iter()
            .filter_map(|(s, v)| base.per_seed.iter().find(|(b, _)| b == s).map(|(_, b)| v - b))
            .collect();
        let (m, _, h) = if diffs.is_empty() { (f64::NAN, None, None) } else { mean_ci(&diffs) };
        label.push(format!("{l} − {reference}"));
        pairs.push(diffs.len() as u64);
        mean.push((!diffs.is_empty()).then_some(m));
        ci.push(h);
    }
    let df = df!("difference" => label, "paired seeds" => pairs, "mean" => mean, "± 95% CI" => ci)?;
    Ok(df)
}

/// Our mean and 95 % CI bounds per cell (x = the cell's index in the tables), and the paper's `paper_metric` per
/// cell where published.
pub fn cells_chart(grid: &Grid, cells: &[(String, CellSummary)], paper_metric: &str) -> LineChart {
    let pts = |f: &dyn Fn(&CellSummary) -> f64| {
        cells.iter().enumerate().map(|(i, (_, c))| (i as f64, f(c))).collect::<Vec<_>>()
    };
    let mut chart = LineChart::new(format!("{}: ours (mean ± 95% CI) beside the paper", grid.table), "cell", "%")
        .series(Series::new(format!("ours {}", grid.metric), pts(&|c| c.mean)));
    if cells.iter().all(|(_, c)| c.ci95.is_some()) {
        chart = chart
            .series(Series::new("ours − CI", pts(&|c| c.mean - c.ci95.unwrap_or(0.0))))
            .series(Series::new("ours + CI", pts(&|c| c.mean + c.ci95.unwrap_or(0.0))));
    }
    let paper: Vec<(f64, f64)> = cells
        .iter()
        .enumerate()
        .filter_map(|(i, (l, _))| {
            let p = grid.published.iter().find(|p| &p.cell == l)?;
            p.metrics.get(paper_metric).map(|v| (i as f64, *v))
        })
        .collect();
    if !paper.is_empty() {
        chart = chart.series(Series::new(format!("paper {paper_metric}"), paper));
    }
    chart
}

/// Several tables as one HTML block, each under its title (the first `max_rows` rows of each).
pub fn titled_tables(parts: &[(String, DataFrame)], max_rows: usize) -> Html {
    let mut html = String::new();
    for (title, df) in parts {
        let Html(t) = table(df, max_rows);
        html.push_str(&format!("<h4>{}</h4>{t}", title.replace('&', "&amp;").replace('<', "&lt;")));
    }
    Html(html)
}

/// The charts rendered to PNG and stacked top to bottom into one image (white where one is narrower).
pub fn stacked_png(charts: &[LineChart]) -> Result<Png> {
    ensure!(!charts.is_empty(), "no chart to stack");
    let mut images = Vec::new();
    for c in charts {
        images.push(image::load_from_memory(&c.to_png()?)?.to_rgb8());
    }
    let width = images.iter().map(|i| i.width()).max().unwrap_or(0);
    let height = images.iter().map(|i| i.height()).sum();
    let mut out = image::RgbImage::from_pixel(width, height, image::Rgb([255, 255, 255]));
    let mut y = 0i64;
    for i in &images {
        image::imageops::overlay(&mut out, i, 0, y);
        y += i64::from(i.height());
    }
    let mut png = Vec::new();
    out.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)?;
    Ok(Png(png))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn cell(label: &str, per_seed: &[(u64, f64)]) -> (String, CellSummary) {
        let xs: Vec<f64> = per_seed.iter().map(|(_, v)| *v).collect();
        let (mean, std, ci95) = mean_ci(&xs);
        let c = CellSummary { cell: 0, values: vec![], n: xs.len(), mean, std, ci95, per_seed: per_seed.to_vec() };
        (label.to_string(), c)
    }

    fn root() -> &'static Path {
        Path::new(env!("CARGO_MANIFEST_DIR"))
    }

    #[test]
    fn ci_twins_keep_the_labels_and_published_numbers_of_the_other_scales() {
        for (ci, embedded, paper) in [
            ("vision_r1_tab5_ptst", "vision_r1_tab5_ptst", "vision_r1/grids/tab5_ptst"),
            ("vision_r1_tab6_cold_start", "vision_r1_tab6_cold_start", "vision_r1/grids/tab6_cold_start"),
            ("revisual_r1_tab4_pad", "revisual_r1_tab4_pad", "revisual_r1/grids/tab4_pad"),
            ("revisual_r1_tab3_stages", "revisual_r1_tab3_stages", "revisual_r1/grids/tab3_stages"),
        ] {
            let load = |rel: String| Grid::load(&root().join(rel)).unwrap();
            let ci = load(format!("experiments/embedded/ci/{ci}.grid.toml"));
            let embedded = load(format!("experiments/embedded/grids/{embedded}.grid.toml"));
            let paper = load(format!("experiments/{paper}.grid.toml"));
            assert_eq!(ci.cell_labels(), embedded.cell_labels());
            assert_eq!(ci.cell_labels(), paper.cell_labels());
            assert_eq!(ci.published, paper.published);
            assert_eq!((ci.seeds.len(), ci.metric.as_str()), (2, embedded.metric.as_str()));
            let check = ci.check(root()).unwrap();
            assert_eq!(check.cells, ci.cell_labels());
            // Every cell's (last) stage evaluates the suite the grid's metric names.
            let suite = ci.metric.split('.').next().unwrap();
            let last_stages = ci.manifest.iter().chain(ci.chain.iter().filter_map(|c| c.manifests.last()));
            for m in last_stages {
                let manifest = crate::repro::manifest::Manifest::load(&root().join(m)).unwrap();
                assert!(manifest.eval.iter().any(|e| e.name == suite), "{} has no eval {suite:?}", m.display());
            }
        }
    }

    #[test]
    fn grid_files_split_the_variable_and_fall_back_to_the_default() {
        let lab = Lab::from_env().unwrap();
        let files = grid_files(&lab, "R1LAB_TEST_UNSET_GRID_VAR", "a.grid.toml, b.grid.toml,");
        assert_eq!(files, vec![lab.repo_root.join("a.grid.toml"), lab.repo_root.join("b.grid.toml")]);
    }

    #[test]
    fn cold_starts_pair_manifests_chains_and_records_in_order() {
        let lab = Lab::from_env().unwrap();
        let unset = ("R1LAB_TEST_UNSET_COLD_VAR", "a.toml, b.toml");
        let both =
            cold_starts(&lab, unset, ("R1LAB_TEST_UNSET_CHAIN_VAR", "a.chain.toml,b.chain.toml"), "R1LAB_X").unwrap();
        assert_eq!(both.len(), 2);
        assert_eq!((both[1].manifest.clone(), both[1].chain.as_str()), (lab.repo_root.join("b.toml"), "b.chain.toml"));
        assert_eq!(both[0].record, None);
        // One chain file serves every manifest.
        let one = cold_starts(&lab, unset, ("R1LAB_TEST_UNSET_CHAIN_VAR", "c.chain.toml"), "R1LAB_X").unwrap();
        assert!(one.iter().all(|c| c.chain == "c.chain.toml"), "{one:?}");
        let err = cold_starts(&lab, unset, ("R1LAB_TEST_UNSET_CHAIN_VAR", "c,d,e"), "R1LAB_X").unwrap_err().to_string();
        assert!(err.contains("3 chain file(s)") && err.contains("R1LAB_TEST_UNSET_CHAIN_VAR"), "{err}");
        let list = |xs: &[&str]| xs.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let with_records =
            pair_cold_starts(&lab, ("M", list(&["a.toml", "b.toml"])), ("C", list(&["c"])), ("R", list(&["r1", "r2"])))
                .unwrap();
        assert_eq!(with_records[1].record, Some(lab.repo_root.join("r2")));
        let err = pair_cold_starts(&lab, ("M", list(&["a.toml", "b.toml"])), ("C", list(&["c"])), ("R", list(&["r1"])))
            .unwrap_err()
            .to_string();
        assert!(err.contains("1 run folder(s) in R"), "{err}");
        assert!(pair_cold_starts(&lab, ("M", vec![]), ("C", list(&["c"])), ("R", vec![])).is_err());
    }

    #[test]
    fn paper_table_puts_the_published_numbers_beside_ours() {
        let grid = Grid::load(&root().join("experiments/embedded/ci/vision_r1_tab6_cold_start.grid.toml")).unwrap();
        let cells = vec![cell("Vision-R1-Zero", &[(1, 10.0), (2, 20.0)]), cell("Vision-R1", &[(1, 30.0)])];
        let t = paper_table(&grid, &cells).unwrap();
        assert_eq!(t.height(), 2);
        let paper = t.column("paper mathvista_testmini.acc").unwrap().f64().unwrap();
        assert_eq!((paper.get(0), paper.get(1)), (Some(70.6), Some(73.5)));
        let ours = t.column("ours heldout.acc mean").unwrap().f64().unwrap();
        assert_eq!(ours.get(0), Some(15.0));
        // One seed: no CI.
        assert_eq!(t.column("± 95% CI").unwrap().f64().unwrap().get(1), None);
        assert_eq!(runs_table(&grid, &cells).unwrap().height(), 3);
        let chart = cells_chart(&grid, &cells, "mathvista_testmini.acc");
        assert_eq!(chart.series.last().unwrap().points, vec![(0.0, 70.6), (1.0, 73.5)]);
    }

    #[test]
    fn paired_differences_use_only_shared_seeds_against_the_final_recipe() {
        let cells =
            vec![cell("Vision-R1-Zero", &[(1, 1.0), (2, 4.0), (3, 9.0)]), cell("Vision-R1", &[(1, 0.0), (2, 2.0)])];
        assert_eq!(reference_cell(&cells), Some("Vision-R1"));
        let d = paired_differences(&cells, "Vision-R1").unwrap();
        assert_eq!(d.height(), 1);
        assert_eq!(d.column("paired seeds").unwrap().u64().unwrap().get(0), Some(2));
        assert_eq!(d.column("mean").unwrap().f64().unwrap().get(0), Some(1.5));
        // Differences 1 and 2: s = 1/√2, half-width t(1) · s / √2 = 12.7062 / 2.
        let h = d.column("± 95% CI").unwrap().f64().unwrap().get(0).unwrap();
        assert!((h - 12.7062 / 2.0).abs() < 1e-9, "{h}");
        let err = paired_differences(&cells, "PAD").unwrap_err().to_string();
        assert!(err.contains("\"PAD\"") && err.contains("Vision-R1-Zero"), "{err}");
        assert_eq!(reference_cell(&cells[..1]), Some("Vision-R1-Zero"));
    }

    #[test]
    fn several_tables_and_charts_become_one_display_each() {
        let grid = Grid::load(&root().join("experiments/embedded/ci/vision_r1_tab5_ptst.grid.toml")).unwrap();
        let cells = vec![cell("Baseline", &[(1, 0.0), (2, 1.0)]), cell("4K×16→8K×8", &[(1, 2.0), (2, 2.0)])];
        let t = runs_table(&grid, &cells).unwrap();
        let Html(html) = titled_tables(&[("A <1>".into(), t.clone()), ("B".into(), t)], 10);
        assert_eq!(html.matches("<table>").count(), 2);
        assert!(html.contains("<h4>A &lt;1></h4>"), "{html}");
        let chart = cells_chart(&grid, &cells, "mathvista_testmini.acc");
        let one = image::load_from_memory(&chart.to_png().unwrap()).unwrap();
        let Png(bytes) = stacked_png(&[chart.clone(), chart]).unwrap();
        let two = image::load_from_memory(&bytes).unwrap();
        assert_eq!((two.width(), two.height()), (one.width(), 2 * one.height()));
        assert!(stacked_png(&[]).is_err());
    }
}
