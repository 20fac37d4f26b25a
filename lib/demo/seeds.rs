//! `r1lab demo --seeds 1,2,3`: the chain once per seed, then each stage's held-out numbers as mean ± 95 % CI over
//! the seeds and the paired stage-to-stage differences (issue 6's proof: "accuracy after RL is higher than after the
//! cold start by more than the 95 % CI over ≥ 3 seeds").
//!
//! Seed `s` sets `seeds.base = s` in every stage manifest (the only change; the seeded copies are written to
//! `<runs>/seed<s>/manifests/<i>.toml` and recorded in each run), and the stages run in `<runs>/seed<s>/`, so a
//! stage's parent is the same seed's previous stage. The data and the tiny model are the chain's, shared by all
//! seeds: the seeds vary initialisation draws, data order and sampling, not the data set.
//!
//! Statistics: Student-t 95 % CI of the mean over seeds ([`crate::repro::sweep::mean_ci`]); a difference is paired
//! by seed (later stage − earlier stage of the same seed), and it "clears its CI" when its mean minus its CI
//! half-width is above zero.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use serde::Serialize;
use toml::Table;

use super::{Chain, DemoOptions, SummaryRow, run_options, run_stages, summary_table};
use crate::io::write_atomic;
use crate::repro::sweep::{mean_ci, set_seed};

/// The metrics summarized over seeds.
const KEYS: [&str; 3] = ["heldout.acc", "heldout.format", "heldout.len"];

/// One stage over the seeds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageOverSeeds {
    pub stage: String,
    /// Per key: (mean, 95 % CI half-width, per-seed values in seed order).
    pub stats: BTreeMap<String, (f64, Option<f64>, Vec<f64>)>,
}

/// A paired difference between two stages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairedDiff {
    pub earlier: String,
    pub later: String,
    pub key: String,
    pub per_seed: Vec<f64>,
    pub mean: f64,
    pub ci: Option<f64>,
}

impl PairedDiff {
    /// The mean is above zero by more than the CI half-width.
    pub fn clears_ci(&self) -> bool {
        self.ci.is_some_and(|h| self.mean - h > 0.0)
    }
}

/// Runs the chain once per seed; returns each seed's summary rows, and writes `<runs>/<chain>-seeds.{md,json}`.
pub fn run(chain: &Chain, opts: &DemoOptions) -> Result<Vec<(u64, Vec<SummaryRow>)>> {
    let mut seen = opts.seeds.clone();
    seen.sort_unstable();
    seen.dedup();
    ensure!(seen.len() == opts.seeds.len(), "--seeds {:?} names a seed twice", opts.seeds);
    let mut per_seed = Vec::new();
    for &seed in &opts.seeds {
        let root = opts.runs_root.join(format!("seed{seed}"));
        let manifests = seeded_manifests(chain, opts, seed, &root)?;
        println!("demo: seed {seed} in {}", root.display());
        let rows = run_stages(&manifests, &run_options(opts, &root))?;
        println!("{}", summary_table(&rows));
        per_seed.push((seed, rows));
    }
    let (stages, diffs) = summarize(&per_seed)?;
    let md = markdown(&opts.seeds, &stages, &diffs);
    println!("{md}");
    std::fs::create_dir_all(&opts.runs_root)?;
    let path = opts.runs_root.join(format!("{}-seeds.md", chain.name));
    write_atomic(&path, md.as_bytes())?;
    let json = serde_json::json!({ "seeds": opts.seeds, "stages": stages, "differences": diffs, "runs": per_seed });
    write_atomic(&opts.runs_root.join(format!("{}-seeds.json", chain.name)), &serde_json::to_vec_pretty(&json)?)?;
    println!("summary over seeds: {}", path.display());
    Ok(per_seed)
}

/// The chain's manifests with `seeds.base = seed`, written under `<root>/manifests/`.
fn seeded_manifests(chain: &Chain, opts: &DemoOptions, seed: u64, root: &std::path::Path) -> Result<Vec<PathBuf>> {
    let dir = root.join("manifests");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut out = Vec::new();
    for (i, m) in chain.manifests.iter().enumerate() {
        let path = opts.repo_root.join(m);
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut t: Table = text.parse().with_context(|| format!("{} is not TOML", path.display()))?;
        set_seed(&mut t, seed)?;
        let file = dir.join(format!("{i}.toml"));
        write_atomic(&file, toml::to_string_pretty(&t)?.as_bytes())?;
        out.push(file);
    }
    Ok(out)
}

/// Per-stage statistics and the paired differences of each stage against the one before it.
pub fn summarize(per_seed: &[(u64, Vec<SummaryRow>)]) -> Result<(Vec<StageOverSeeds>, Vec<PairedDiff>)> {
    let first = &per_seed.first().context("no seeds ran")?.1;
    let names: Vec<&str> = first.iter().map(|r| r.stage.as_str()).collect();
    for (seed, rows) in per_seed {
        let theirs: Vec<&str> = rows.iter().map(|r| r.stage.as_str()).collect();
        ensure!(theirs == names, "seed {seed} ran stages {theirs:?}, the first seed {names:?}");
    }
    let value = |stage: usize, key: &str| -> Vec<f64> {
        per_seed.iter().filter_map(|(_, rows)| rows[stage].values.get(key).copied()).collect()
    };
    let n = per_seed.len();
    let stages = names
        .iter()
        .enumerate()
        .map(|(i, name)| StageOverSeeds {
            stage: name.to_string(),
            stats: KEYS
                .iter()
                .filter_map(|k| {
                    let v = value(i, k);
                    (v.len() == n).then(|| {
                        let (mean, _, ci) = mean_ci(&v);
                        (k.to_string(), (mean, ci, v))
                    })
                })
                .collect(),
        })
        .collect();
    let mut diffs = Vec::new();
    for i in 1..names.len() {
        for key in ["heldout.acc", "heldout.format"] {
            let (a, b) = (value(i - 1, key), value(i, key));
            if a.len() != n || b.len() != n {
                continue;
            }
            let d: Vec<f64> = b.iter().zip(&a).map(|(x, y)| x - y).collect();
            let (mean, _, ci) = mean_ci(&d);
            diffs.push(PairedDiff {
                earlier: names[i - 1].to_string(),
                later: names[i].to_string(),
                key: key.to_string(),
                per_seed: d,
                mean,
                ci,
            });
        }
    }
    Ok((stages, diffs))
}

fn fmt(mean: f64, ci: Option<f64>) -> String {
    match ci {
        Some(h) => format!("{mean:.1} ± {h:.1}"),
        None => format!("{mean:.1}"),
    }
}

fn list(v: &[f64]) -> String {
    v.iter().map(|x| format!("{x:.1}")).collect::<Vec<_>>().join(", ")
}

/// The two tables: stages (mean ± 95 % CI, per seed) and paired differences.
pub fn markdown(seeds: &[u64], stages: &[StageOverSeeds], diffs: &[PairedDiff]) -> String {
    let seeds_txt = seeds.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
    let mut s = format!(
        "Seeds {seeds_txt} (mean ± 95 % CI, Student t)\n\n| stage | held-out acc % | per seed | format % | per seed | \
         mean length |\n|---|---|---|---|---|---|\n"
    );
    let cell = |st: &StageOverSeeds, k: &str| {
        st.stats.get(k).map_or(("-".into(), "-".into()), |(m, h, v)| (fmt(*m, *h), list(v)))
    };
    for st in stages {
        let (acc, acc_s) = cell(st, "heldout.acc");
        let (format, format_s) = cell(st, "heldout.format");
        let (len, _) = cell(st, "heldout.len");
        s.push_str(&format!("| {} | {acc} | {acc_s} | {format} | {format_s} | {len} |\n", st.stage));
    }
    s.push_str("\n| later − earlier | metric | mean difference | per seed | clears the CI |\n|---|---|---|---|---|\n");
    for d in diffs {
        s.push_str(&format!(
            "| {} − {} | {} | {} | {} | {} |\n",
            d.later,
            d.earlier,
            d.key,
            fmt(d.mean, d.ci),
            list(&d.per_seed),
            if d.clears_ci() { "yes" } else { "no" }
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stage: &str, acc: f64, format: f64) -> SummaryRow {
        let values = [("heldout.acc", acc), ("heldout.format", format), ("heldout.len", 10.0)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        SummaryRow { stage: stage.into(), run: None, values, wall_s: 0.0 }
    }

    #[test]
    fn stages_get_means_and_paired_differences_clear_their_ci_only_when_consistent() {
        let per_seed = vec![
            (1, vec![row("untrained", 0.0, 0.0), row("cs", 20.0, 96.0), row("rl", 30.0, 97.0)]),
            (2, vec![row("untrained", 0.0, 0.0), row("cs", 24.0, 98.0), row("rl", 33.0, 95.0)]),
            (3, vec![row("untrained", 0.0, 0.0), row("cs", 22.0, 97.0), row("rl", 32.0, 99.0)]),
        ];
        let (stages, diffs) = summarize(&per_seed).unwrap();
        assert_eq!(stages.len(), 3);
        let (mean, ci, v) = &stages[1].stats["heldout.acc"];
        assert_eq!((*mean, v.clone()), (22.0, vec![20.0, 24.0, 22.0]));
        // sd 2, t(2) = 4.303: half-width 4.303 * 2 / sqrt(3).
        assert!((ci.unwrap() - 4.303 * 2.0 / 3f64.sqrt()).abs() < 0.01, "{ci:?}");
        let rl_acc = diffs.iter().find(|d| d.later == "rl" && d.key == "heldout.acc").unwrap();
        assert_eq!(rl_acc.per_seed, vec![10.0, 9.0, 10.0]);
        assert!(rl_acc.clears_ci());
        let rl_format = diffs.iter().find(|d| d.later == "rl" && d.key == "heldout.format").unwrap();
        assert!(!rl_format.clears_ci(), "{rl_format:?}");
        let md = markdown(&[1, 2, 3], &stages, &diffs);
        assert!(md.contains("| rl − cs | heldout.acc | 9.7 ± 1.4 | 10.0, 9.0, 10.0 | yes |"), "{md}");
    }

    #[test]
    fn seeds_that_ran_different_stages_are_an_error() {
        let per_seed = vec![(1, vec![row("a", 1.0, 1.0), row("b", 2.0, 2.0)]), (2, vec![row("a", 1.0, 1.0)])];
        let e = summarize(&per_seed).unwrap_err().to_string();
        assert!(e.contains("seed 2 ran stages"), "{e}");
    }
}
