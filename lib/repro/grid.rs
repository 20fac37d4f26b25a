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
//! [[axis]]                                # a coupled axis: each value sets several keys together
//! labels = ["Baseline", "Zero"]           # one per [[axis.sets]] table that follows, in order
//! [[axis.sets]]                           # quoted dotted keys -> values; a key that a value leaves out
//! "train" = { algo = "none" }             # keeps the base manifest's value
//! [[axis.sets]]
//! "train.schedule" = [{ max_new_tokens = 4096, group_size = 16, steps = 300 }]
//! "train.reward" = { kind = "r1v_format_accuracy", format_weight = 0.5 }
//! "data.system_prompt" = "..."
//! [[chain]]                               # optional, also beside `manifest`: stage manifests run in order
//! label = "SFT+RL"
//! manifests = ["experiments/x/sft.toml", "experiments/x/rl.toml"]
//! [[published]]
//! cell = "4K×16"                          # a cell label: axis labels joined by " × ", base_label, or a chain label
//! source = "Tab.5 v4"
//! metrics = { "mathvista_testmini.acc" = 73.5 }
//! ```
//! An axis has either `key` + `values` or `sets`, a list of tables (the `[[axis.sets]]` tables above, or inline:
//! `sets = [{ "train" = { algo = "none" } }, ...]`). Write their keys quoted: an unquoted `train.schedule = ...` is
//! the nested table `train = { schedule = ... }`, which would replace all of `[train]`. A coupled axis is one column
//! of the paper's table whose rows differ in several settings at once (Vision-R1-Zero changes the schedule, the
//! reward and the system prompt); its column in the tables is its keys joined by " + ". Errors at load name the
//! axis: labels and values of different lengths, an empty `sets` entry, `id` / `seeds`, or a key that two axes (or
//! two keys of one entry) both reach, since the result would depend on the order they are applied in.
//!
//! A row that is an order of stages rather than a key (ReVisual-R1 Tab.3) is a `[[chain]] label = "...",
//! manifests = [...]`: each chain runs its manifests in order per seed (`seeds.base` set to the seed in every
//! stage), in its own runs folder so a stage's parent is that chain's previous run, and the metric is read from the
//! last stage. Each manifest's `stage.parent` must be the previous manifest's id. A grid has a base `manifest` with
//! axes, chains, or both (then the cells are the base cell, the axis cells, then the chains).
//!
//! Outputs: axis grids write what `r1lab sweep` writes (the base cell, when asked, into `<out>/base/`); chain rows
//! write their runs under `<out>/chains/<n>/s<seed>/` and their table to `<out>/chains/sweep.md`. Both write
//! `grid.md`: ours (mean ± 95 % CI per cell, by label) beside the published numbers. Deliberate deviation from
//! `--set`: values are written as TOML in the file, so they may contain commas, tables and arrays (a whole PTST
//! schedule).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

use crate::io::write_atomic;
use crate::pipeline::{RunControl, RunOptions};
use crate::repro::manifest::{Manifest, TrainSettings};
use crate::repro::record::CodeState;
use crate::repro::sweep::{self, Axis, CellSummary, SweepRow, SweepSpec, set_seed};

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

/// One `[[axis]]`: `key` with `values`, or coupled `sets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GridAxis {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<Value>,
    /// A coupled axis: per value, the dotted keys it sets and their values.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sets: Vec<Table>,
    /// How the paper names each value, in order.
    pub labels: Vec<String>,
}

impl GridAxis {
    /// What each value sets, as `(dotted key, value)` pairs.
    fn entries(&self) -> Vec<Vec<(String, Value)>> {
        match &self.key {
            Some(k) => self.values.iter().map(|v| vec![(k.clone(), v.clone())]).collect(),
            None => self.sets.iter().map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect()).collect(),
        }
    }

    /// Every key the axis sets, in first-use order.
    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = Vec::new();
        for (k, _) in self.entries().into_iter().flatten() {
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys
    }

    /// How errors and tables name the axis: its key, or its keys joined by " + ".
    pub fn name(&self) -> String {
        self.key.clone().unwrap_or_else(|| self.keys().join(" + "))
    }

    /// The sweep axis.
    pub fn to_axis(&self) -> Axis {
        Axis { key: self.name(), values: self.entries() }
    }

    fn validate(&self) -> Result<()> {
        let n = match (&self.key, self.sets.is_empty()) {
            (Some(_), true) => self.values.len(),
            (None, false) => {
                ensure!(
                    self.values.is_empty(),
                    "axis {}: `values` needs `key`; a coupled axis has only `sets`",
                    self.name()
                );
                self.sets.len()
            }
            (Some(k), false) => bail!("axis {k}: give either `key` with `values` or `sets`, not both"),
            (None, true) => bail!("an [[axis]] has neither `key` with `values` nor `sets`; labels {:?}", self.labels),
        };
        let name = self.name();
        ensure!(n > 0, "axis {name}: `values` is empty");
        ensure!(
            self.labels.len() == n,
            "axis {name}: {} labels for {n} values; give one label per value",
            self.labels.len()
        );
        for (label, entry) in self.labels.iter().zip(self.entries()) {
            ensure!(!entry.is_empty(), "axis {name}: the value labelled {label:?} sets no key");
            let keys: Vec<&String> = entry.iter().map(|(k, _)| k).collect();
            for (i, k) in keys.iter().enumerate() {
                ensure!(!k.is_empty() && !k.split('.').any(str::is_empty), "axis {name}: key {k:?} has an empty part");
                ensure!(
                    !overlaps(k, "id") && !overlaps(k, "seeds.base"),
                    "axis {name}: {k} is set by the grid (use `seeds` for seeds)"
                );
                if let Some(other) = keys[i + 1..].iter().find(|o| overlaps(k, o)) {
                    bail!("axis {name}: the value labelled {label:?} sets both {k} and {other}; set one of them");
                }
            }
        }
        Ok(())
    }
}

/// Whether setting `a` and setting `b` touch the same value (equal, or one is a table holding the other).
fn overlaps(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}.")) || b.starts_with(&format!("{a}."))
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
        match &self.manifest {
            Some(_) => {
                ensure!(!self.axis.is_empty(), "a grid with a base `manifest` needs at least one [[axis]]");
                for a in &self.axis {
                    a.validate()?;
                }
                for (i, a) in self.axis.iter().enumerate() {
                    for b in &self.axis[i + 1..] {
                        for k in a.keys() {
                            if let Some(o) = b.keys().iter().find(|o| overlaps(&k, o)) {
                                bail!(
                                    "axes {} and {} both set {k} / {o}; a key belongs to one axis",
                                    a.name(),
                                    b.name()
                                );
                            }
                        }
                    }
                }
            }
            None => {
                ensure!(
                    !self.chain.is_empty(),
                    "a grid has a base `manifest` with [[axis]], [[chain]] rows, or both; this one has neither"
                );
                ensure!(
                    self.axis.is_empty() && self.base_label.is_none(),
                    "[[axis]] and base_label need a base `manifest`"
                );
            }
        }
        for c in &self.chain {
            ensure!(!c.manifests.is_empty(), "chain {:?} lists no manifests", c.label);
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
        let mut cells: Vec<String> = Vec::new();
        if self.manifest.is_some() {
            cells.push(String::new());
            for a in &self.axis {
                cells = cells
                    .iter()
                    .flat_map(|c| {
                        a.labels.iter().map(move |l| if c.is_empty() { l.clone() } else { format!("{c} × {l}") })
                    })
                    .collect();
            }
        }
        let chains = self.chain.iter().map(|c| c.label.clone());
        self.base_label.iter().cloned().chain(cells).chain(chains).collect()
    }

    /// The sweep of the axes (an axis grid's cells without the base cell).
    pub fn spec(&self) -> SweepSpec {
        SweepSpec {
            axes: self.axis.iter().map(GridAxis::to_axis).collect(),
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
                        !matches!(p.train, TrainSettings::EvalOnly(_)),
                        "chain {:?}: {} follows the evaluation-only stage {}, which writes no checkpoint to start from",
                        c.label,
                        m.display(),
                        p.id
                    );
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
    let mut summaries = Vec::new();
    if let Some(m) = &grid.manifest {
        if grid.base_label.is_some() {
            let base = SweepSpec { axes: vec![], ..grid.spec() };
            summaries.extend(sweep::run_sweep(&root.join(m), &base, opts, &out.join("base"))?.summary);
        }
        summaries.extend(sweep::run_sweep(&root.join(m), &grid.spec(), opts, out)?.summary);
    }
    if !grid.chain.is_empty() {
        summaries.extend(run_chains(&grid, opts, out)?);
    }
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
                set_seed(&mut t, seed)?;
                let text = toml::to_string_pretty(&t)?;
                let manifest =
                    Manifest::from_toml_str(&text).with_context(|| format!("{} with seed {seed}", m.display()))?;
                let file = dir.join(format!("{i}.toml"));
                write_atomic(&file, text.as_bytes())?;
                let done = sweep::run_or_reuse(&manifest, &file, &code, &chain_opts, &RunControl::default())
                    .with_context(|| format!("chain {:?} seed {seed}: running {}", chain.label, m.display()))?;
                last = Some(done);
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
    write_atomic(&out.join("chains").join("sweep.md"), md.as_bytes())?;
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
mod tests;
