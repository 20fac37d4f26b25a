//! Ablation grid files, `experiments/<paper>/grids/<table>.grid.toml` (issue 5 item 7): a paper table written as a
//! sweep, run by `r1lab sweep --grid FILE` with [`crate::repro::sweep`]'s planner and runner, plus the paper's
//! numbers per cell to print beside ours.
//!
//! Format (paths relative to the repository root; every table rejects unknown keys):
//! ```toml
//! table = "Vision-R1 Tab.5 v4"           # what the grid reproduces
//! manifest = "experiments/vision_r1/ptst_stage1_stage2.toml"
//! seeds = [20250306]                      # every cell runs every seed (paired)
//! metric = "mathvista_testmini.acc"       # the final metric tabulated
//! base_label = "GRPO"                     # optional: also run the base manifest unchanged, as this cell
//! [[axis]]                                # cartesian product, last axis fastest (as `--set`)
//! key = "train.schedule"                  # dotted key, as `--set`
//! values = [[{ max_new_tokens = 4096, group_size = 16, steps = 100 }]]   # TOML values, any type
//! labels = ["4K×16"]                      # one per value: how the paper names it
//! [[published]]
//! cell = "4K×16"                          # a cell label: axis labels joined by " × ", base_label, or a chain label
//! source = "Tab.5 v4"
//! metrics = { "mathvista_testmini.acc" = 73.5 }
//! ```
//! A row that is an order of stages rather than a key (ReVisual-R1 Tab.3) is written instead of `manifest`/`axis`
//! as `[[chain]] label = "...", manifests = [...]`: each chain runs its manifests in order per seed (`seeds.base`
//! set to the seed in every stage), in its own runs folder so a stage's parent is that chain's previous run, and
//! the metric is read from the last stage. Each manifest's `stage.parent` must be the previous manifest's id.
//!
//! Outputs: axis grids write what `r1lab sweep` writes (the base cell, when asked, into `<out>/base/`); chain grids
//! write their runs under `<out>/chains/<n>/s<seed>/`. Both write `grid.md`: ours (mean ± 95 % CI per cell, by label)
//! beside the published numbers. Deliberate deviation from `--set`: values are written as TOML in the file, so
//! they may contain commas, tables and arrays (a whole PTST schedule).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::io::write_atomic;
use crate::pipeline::{RunControl, RunOptions, run_manifest_with};
use crate::repro::manifest::Manifest;
use crate::repro::record::{CodeState, RunRecord, run_id};
use crate::repro::sweep::{self, Axis, CellSummary, SweepRow, SweepSpec, set_dotted};

/// A grid file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grid {
    /// The table the grid reproduces, e.g. `Vision-R1 Tab.5 v4`.
    pub table: String,
    /// The base manifest the axes change (axis grids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest: Option<PathBuf>,
    /// Also run the base manifest unchanged, as the cell with this label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_label: Option<String>,
    pub seeds: Vec<u64>,
    pub metric: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub axis: Vec<GridAxis>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<GridChain>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
}

/// One `[[axis]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridAxis {
    pub key: String,
    pub values: Vec<Value>,
    /// How the paper names each value, in order.
    pub labels: Vec<String>,
}

/// One `[[chain]]`: stage manifests run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridChain {
    pub label: String,
    pub manifests: Vec<PathBuf>,
}

/// The paper's numbers for one cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    pub cell: String,
    pub source: String,
    pub metrics: BTreeMap<String, f64>,
}

/// What [`Grid::check`] planned.
#[derive(Debug, Clone, PartialEq)]
pub struct GridCheck {
    pub cells: Vec<String>,
    /// Runs the grid would make (cells × seeds; a chain counts each of its stages).
    pub runs: usize,
}

/// What a grid run produced.
#[derive(Debug, Clone)]
pub struct GridOutcome {
    pub dir: PathBuf,
    /// `(cell label, summary over seeds)`, in cell order.
    pub cells: Vec<(String, CellSummary)>,
    pub markdown: String,
}

impl Grid {
    /// Reads and parses `path`, checking its shape (not yet the manifests: see [`Grid::check`]).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading grid file {}", path.display()))?;
        let g: Grid = toml::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "grid file {}: {} (see lib/repro/grid.rs for the format)",
                path.display(),
                e.to_string().trim_end()
            )
        })?;
        g.validate().with_context(|| format!("invalid grid file {}", path.display()))?;
        Ok(g)
    }

    fn validate(&self) -> Result<()> {
        ensure!(!self.table.trim().is_empty(), "`table` is empty; name the paper table the grid reproduces");
        ensure!(self.metric.contains('.'), "metric = {:?} must be \"<suite>.<metric>\"", self.metric);
        ensure!(!self.seeds.is_empty(), "`seeds` is empty; give at least one seed");
        let mut s = self.seeds.clone();
        s.sort();
        s.dedup();
        ensure!(s.len() == self.seeds.len(), "`seeds` repeats a seed");
        match (&self.manifest, self.chain.is_empty()) {
            (Some(_), true) => {
                ensure!(!self.axis.is_empty(), "an axis grid needs at least one [[axis]]");
                for a in &self.axis {
                    ensure!(!a.values.is_empty(), "axis {}: `values` is empty", a.key);
                    ensure!(
                        a.labels.len() == a.values.len(),
                        "axis {}: {} labels for {} values; give one label per value",
                        a.key,
                        a.labels.len(),
                        a.values.len()
                    );
                    ensure!(
                        a.key != "seeds.base" && a.key != "id",
                        "axis {}: the grid sets it (use `seeds` for seeds)",
                        a.key
                    );
                }
            }
            (None, false) => {
                ensure!(
                    self.axis.is_empty() && self.base_label.is_none(),
                    "a chain grid has no [[axis]] or base_label"
                );
                for c in &self.chain {
                    ensure!(!c.manifests.is_empty(), "chain {:?} lists no manifests", c.label);
                }
            }
            _ => anyhow::bail!("a grid has either `manifest` with [[axis]] or [[chain]] rows, not both or neither"),
        }
        let cells = self.cell_labels();
        let mut unique = cells.clone();
        unique.sort();
        unique.dedup();
        ensure!(unique.len() == cells.len(), "two cells share a label; labels must be distinct: {cells:?}");
        for p in &self.published {
            ensure!(cells.contains(&p.cell), "published cell {:?} is not a cell of the grid; cells: {cells:?}", p.cell);
        }
        Ok(())
    }

    /// The cell labels, in run order: the base cell, then the axis cells (last axis fastest), or the chains.
    pub fn cell_labels(&self) -> Vec<String> {
        if !self.chain.is_empty() {
            return self.chain.iter().map(|c| c.label.clone()).collect();
        }
        let mut cells: Vec<String> = vec![String::new()];
        for a in &self.axis {
            cells = cells
                .iter()
                .flat_map(|c| a.labels.iter().map(move |l| if c.is_empty() { l.clone() } else { format!("{c} × {l}") }))
                .collect();
        }
        self.base_label.iter().cloned().chain(cells).collect()
    }

    /// The sweep of the axes (an axis grid's cells without the base cell).
    pub fn spec(&self) -> SweepSpec {
        SweepSpec {
            axes: self.axis.iter().map(|a| Axis { key: a.key.clone(), values: a.values.clone() }).collect(),
            seeds: self.seeds.clone(),
            metric: self.metric.clone(),
        }
    }

    /// Builds and validates every run's manifest (paths relative to `root`); errors name the cell or chain.
    pub fn check(&self, root: &Path) -> Result<GridCheck> {
        let mut runs = 0;
        if let Some(m) = &self.manifest {
            let text = read(root, m)?;
            let planned =
                sweep::plan(&text, &self.spec()).with_context(|| format!("planning the axes over {}", m.display()))?;
            runs += planned.len();
            if self.base_label.is_some() {
                runs += sweep::plan(&text, &SweepSpec { axes: vec![], ..self.spec() })?.len();
            }
        }
        for c in &self.chain {
            let mut previous: Option<Manifest> = None;
            for m in &c.manifests {
                let manifest = Manifest::load(&root.join(m)).with_context(|| format!("chain {:?}", c.label))?;
                if let Some(p) = &previous {
                    ensure!(
                        manifest.stage.parent.as_deref() == Some(p.id.as_str()),
                        "chain {:?}: {} has stage.parent = {:?} but follows {}; a chain stage starts from the one before",
                        c.label,
                        m.display(),
                        manifest.stage.parent,
                        p.id
                    );
                }
                previous = Some(manifest);
            }
            runs += c.manifests.len() * self.seeds.len();
        }
        Ok(GridCheck { cells: self.cell_labels(), runs })
    }
}

fn read(root: &Path, path: &Path) -> Result<String> {
    let file = root.join(path);
    std::fs::read_to_string(&file).with_context(|| format!("reading manifest {} named by the grid", file.display()))
}

/// Runs the grid at `path` into `out` and writes `grid.md` (ours beside the published numbers).
pub fn run_grid(path: &Path, opts: &RunOptions, out: &Path) -> Result<GridOutcome> {
    let grid = Grid::load(path)?;
    let root = &opts.repo_root;
    grid.check(root).with_context(|| format!("checking grid {}", path.display()))?;
    let labels = grid.cell_labels();
    let summaries = match &grid.manifest {
        Some(m) => {
            let mut s = Vec::new();
            if grid.base_label.is_some() {
                let base = SweepSpec { axes: vec![], ..grid.spec() };
                s.extend(sweep::run_sweep(&root.join(m), &base, opts, &out.join("base"))?.summary);
            }
            s.extend(sweep::run_sweep(&root.join(m), &grid.spec(), opts, out)?.summary);
            s
        }
        None => run_chains(&grid, opts, out)?,
    };
    let cells: Vec<(String, CellSummary)> = labels.into_iter().zip(summaries).collect();
    let markdown = beside_published(&grid, &cells);
    write_atomic(&out.join("grid.md"), markdown.as_bytes())?;
    Ok(GridOutcome { dir: out.to_path_buf(), cells, markdown })
}

/// Each chain × seed: its manifests in order with `seeds.base = seed`, in `<out>/chains/<n>/s<seed>/`.
fn run_chains(grid: &Grid, opts: &RunOptions, out: &Path) -> Result<Vec<CellSummary>> {
    let code = CodeState::detect(&opts.repo_root);
    let mut rows = Vec::new();
    for (cell, chain) in grid.chain.iter().enumerate() {
        for &seed in &grid.seeds {
            let dir = out.join("chains").join(cell.to_string()).join(format!("s{seed}"));
            let chain_opts = RunOptions { runs_root: dir.join("runs"), ..opts.clone() };
            let mut last = None;
            for (i, m) in chain.manifests.iter().enumerate() {
                let mut t: Table =
                    read(&opts.repo_root, m)?.parse().with_context(|| format!("{} is not TOML", m.display()))?;
                set_dotted(&mut t, "seeds.base", Value::Integer(i64::try_from(seed).context("seed too large")?))?;
                let text = toml::to_string_pretty(&t)?;
                let manifest =
                    Manifest::from_toml_str(&text).with_context(|| format!("{} with seed {seed}", m.display()))?;
                let file = dir.join(format!("{i}.toml"));
                write_atomic(&file, text.as_bytes())?;
                let id = run_id(&manifest, &code)?;
                let run_dir = chain_opts.runs_root.join(&id);
                let finished = run_dir.join("run.json").is_file() && RunRecord::read(&run_dir)?.is_complete();
                if !finished {
                    run_manifest_with(&file, &chain_opts, &RunControl::default())
                        .with_context(|| format!("chain {:?} seed {seed}: running {}", chain.label, m.display()))?;
                }
                last = Some((id, run_dir));
            }
            let (id, run_dir) = last.context("empty chain")?;
            let bytes = std::fs::read(run_dir.join("final_metrics.json"))
                .with_context(|| format!("reading {}/final_metrics.json", run_dir.display()))?;
            let metrics: BTreeMap<String, f64> = serde_json::from_slice(&bytes)?;
            let value = *metrics.get(&grid.metric).with_context(|| {
                format!(
                    "run {id} has no final metric {:?}; known: {:?}",
                    grid.metric,
                    metrics.keys().collect::<Vec<_>>()
                )
            })?;
            rows.push(SweepRow { cell, values: vec![("chain".into(), chain.label.clone())], seed, run_id: id, value });
        }
    }
    let summary = sweep::summarize(&rows);
    let md = sweep::markdown(&["chain".into()], &grid.metric, &summary);
    write_atomic(&out.join("sweep.md"), md.as_bytes())?;
    Ok(summary)
}

/// One row per cell: our mean ± 95 % CI of the grid's metric, then the paper's value of every published metric.
pub fn beside_published(grid: &Grid, cells: &[(String, CellSummary)]) -> String {
    let mut keys: Vec<&String> = grid.published.iter().flat_map(|p| p.metrics.keys()).collect();
    keys.sort();
    keys.dedup();
    let head: Vec<String> = keys.iter().map(|k| format!("paper {k}")).collect();
    let mut s = format!("{}: ours ({}) beside the published numbers\n\n", grid.table, grid.metric);
    s.push_str(&format!("| cell | n | ours mean | ± 95% CI | {} | source |\n", head.join(" | ")));
    s.push_str(&format!("|---|---|---|---|{}---|\n", "---|".repeat(keys.len())));
    for (label, c) in cells {
        let p = grid.published.iter().find(|p| &p.cell == label);
        let paper: Vec<String> =
            keys.iter().map(|k| p.and_then(|p| p.metrics.get(*k)).map_or("–".into(), |v| format!("{v}"))).collect();
        let ci = c.ci95.map_or("n/a".to_string(), |h| format!("{h:.4}"));
        let source = p.map_or("–", |p| p.source.as_str());
        s.push_str(&format!("| {label} | {} | {:.4} | {ci} | {} | {source} |\n", c.n, c.mean, paper.join(" | ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grids(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                grids(&p, out);
            } else if p.to_string_lossy().ends_with(".grid.toml") {
                out.push(p);
            }
        }
    }

    #[test]
    fn every_checked_in_grid_parses_and_every_cell_validates() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut files = vec![];
        grids(&root.join("experiments"), &mut files);
        assert!(files.len() >= 8, "expected the 4 paper grids and their 4 embedded twins, found {files:?}");
        for f in &files {
            let g = Grid::load(f).unwrap_or_else(|e| panic!("{e:#}"));
            if let Some(m) = &g.manifest {
                assert!(root.join(m).is_file(), "{} names a missing manifest {}", f.display(), m.display());
            }
            let check = g.check(root).unwrap_or_else(|e| panic!("{}: {e:#}", f.display()));
            assert!(check.runs >= 2 * g.seeds.len(), "{}: {} runs", f.display(), check.runs);
            assert!(!g.published.is_empty() || f.to_string_lossy().contains("embedded"), "{}", f.display());
        }
    }

    #[test]
    fn cell_labels_follow_the_planners_order() {
        let base = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/embedded/vision_r1_ptst.toml"),
        )
        .unwrap();
        let g: Grid = toml::from_str(
            r#"
            table = "t"
            manifest = "experiments/embedded/vision_r1_ptst.toml"
            base_label = "base"
            seeds = [1, 2]
            metric = "heldout.acc"
            [[axis]]
            key = "train.optimizer.lr"
            values = [1e-3, 2e-3]
            labels = ["lo", "hi"]
            [[axis]]
            key = "train.schedule"
            values = [[{ max_new_tokens = 8, group_size = 2, steps = 1 }], [{ max_new_tokens = 9, group_size = 3, steps = 1 }]]
            labels = ["a", "b"]
            [[published]]
            cell = "hi × a"
            source = "x"
            metrics = { "heldout.acc" = 0.5 }
            "#,
        )
        .unwrap();
        g.validate().unwrap();
        let labels = g.cell_labels();
        assert_eq!(labels, ["base", "lo × a", "lo × b", "hi × a", "hi × b"]);
        // The planner's cell c carries the values the label names.
        for p in sweep::plan(&base, &g.spec()).unwrap() {
            let t: Table = p.text.parse().unwrap();
            let (lr, sched) = (&t["train"]["optimizer"]["lr"], &t["train"]["schedule"]);
            let names: Vec<&str> = labels[p.cell + 1].split(" × ").collect();
            let i = g.axis[0].labels.iter().position(|l| l == names[0]).unwrap();
            let j = g.axis[1].labels.iter().position(|l| l == names[1]).unwrap();
            assert_eq!((lr, sched), (&g.axis[0].values[i], &g.axis[1].values[j]), "cell {}", p.cell);
        }
        let mut bad = g.clone();
        bad.published[0].cell = "hi × c".into();
        assert!(bad.validate().unwrap_err().to_string().contains("not a cell"));
        let mut bad = g.clone();
        bad.axis[0].labels.pop();
        assert!(bad.validate().unwrap_err().to_string().contains("one label per value"));
        let mut bad = g.clone();
        bad.chain.push(GridChain { label: "x".into(), manifests: vec![] });
        assert!(bad.validate().is_err());
    }

    #[test]
    fn chains_must_follow_their_parents() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let chain = |m: &[&str]| Grid {
            table: "t".into(),
            manifest: None,
            base_label: None,
            seeds: vec![1],
            metric: "heldout.acc".into(),
            axis: vec![],
            chain: vec![GridChain { label: "c".into(), manifests: m.iter().map(PathBuf::from).collect() }],
            published: vec![],
        };
        let ok =
            chain(&["experiments/embedded/revisual_r1_cold_start.toml", "experiments/embedded/revisual_r1_mrl.toml"]);
        assert_eq!(ok.check(root).unwrap().runs, 2);
        let skip =
            chain(&["experiments/embedded/revisual_r1_cold_start.toml", "experiments/embedded/revisual_r1_trl.toml"]);
        let err = skip.check(root).unwrap_err().to_string();
        assert!(err.contains("stage.parent") && err.contains("embedded_revisual_r1/cold_start"), "{err}");
    }

    #[test]
    fn published_numbers_print_beside_ours() {
        let g: Grid = toml::from_str(
            "table = \"T\"\nmanifest = \"m\"\nseeds = [1]\nmetric = \"a.acc\"\n[[axis]]\nkey = \"k\"\nvalues = [1, 2]\n\
             labels = [\"x\", \"y\"]\n[[published]]\ncell = \"y\"\nsource = \"Tab.1\"\nmetrics = { \"a.acc\" = 47.5 }\n",
        )
        .unwrap();
        let rows = [
            SweepRow { cell: 0, values: vec![], seed: 1, run_id: "r0".into(), value: 0.25 },
            SweepRow { cell: 1, values: vec![], seed: 1, run_id: "r1".into(), value: 0.5 },
        ];
        let cells: Vec<_> = g.cell_labels().into_iter().zip(sweep::summarize(&rows)).collect();
        let md = beside_published(&g, &cells);
        assert!(md.contains("| x | 1 | 0.2500 | n/a | – | – |"), "{md}");
        assert!(md.contains("| y | 1 | 0.5000 | n/a | 47.5 | Tab.1 |"), "{md}");
    }
}
