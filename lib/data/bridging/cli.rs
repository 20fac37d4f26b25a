//! `r1lab data bridge --family all --n N --split train|test --out DIR [--seed S] [--level 1..3]
//! [--size PX] [--bridge-seed B] [--p-slip P] [--p-catch P] [--caption-ablation] [--text]`.
//!
//! Generates the problems exactly as `data synth` does (same flags, same streams, so the ids and
//! images are those of a `data synth` export with the same flags), runs the bridging pipeline and
//! writes into `DIR`:
//!
//! | file | what |
//! |---|---|
//! | `{split}_bridge.json`, `images/*.png` | kept samples, sharegpt (`write_dataset`), images of kept problems |
//! | `{split}_bridge_text.json` | with `--text`: kept text-twin samples, no images |
//! | `dataset_info.json` | LLaMA-Factory entries for the above (merged) |
//! | `bridge_stats.json` | [`BridgeReport`]: settings and the stats of every run |
//! | `{split}_bridge_{run}.jsonl` | every sample of a run: description, raw reasoning, verdict |
//!
//! and prints the kept/total table (one line per family and run). With `--caption-ablation` the
//! plain-caption run (App.B) is added to the stats and the table; its samples are not written as a
//! dataset.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use serde::{Deserialize, Serialize};

use super::describer::DescribeMode;
use super::filter::MIN_REASONING_WORDS;
use super::pipeline::{BridgeConfig, BridgeRun, bridge, bridge_text};
use super::reasoner::Knobs;
use super::stats::BridgeStats;
use crate::data::cli::{SynthArgs, parse_families};
use crate::data::sharegpt::write_dataset;
use crate::data::synthetic::{Config, Split, generate_mix};
use crate::io::write_atomic;

#[derive(Debug, Args)]
pub struct BridgeArgs {
    /// The problems to bridge, generated as `data synth` generates them.
    #[command(flatten)]
    pub synth: SynthArgs,
    /// Seed of the describer and reasoner streams.
    #[arg(long, default_value_t = 0)]
    pub bridge_seed: u64,
    /// Probability of an arithmetic slip per reasoning.
    #[arg(long, default_value_t = Knobs::default().p_slip)]
    pub p_slip: f64,
    /// Probability that a reflection catches the slip.
    #[arg(long, default_value_t = Knobs::default().p_catch)]
    pub p_catch: f64,
    /// Probability that a count lists the cells of the shapes it counts.
    #[arg(long, default_value_t = Knobs::default().p_positions)]
    pub p_positions: f64,
    /// Also run the plain-caption ablation (App.B) and report it.
    #[arg(long)]
    pub caption_ablation: bool,
    /// Also build the text-only twin data set (ReVisual-R1's text cold start).
    #[arg(long)]
    pub text: bool,
}

/// `bridge_stats.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeReport {
    pub synth: Config,
    pub split: Split,
    pub bridge: BridgeConfig,
    pub min_reasoning_words: usize,
    pub runs: Vec<BridgeStats>,
}

pub fn run(a: &BridgeArgs) -> Result<()> {
    for (name, p) in [("--p-slip", a.p_slip), ("--p-catch", a.p_catch), ("--p-positions", a.p_positions)] {
        anyhow::ensure!((0.0..=1.0).contains(&p), "{name} {p} is not a probability: use a value in 0..=1");
    }
    let families = parse_families(&a.synth.family)?;
    let synth = Config { seed: a.synth.seed, level: a.synth.level, size: a.synth.size };
    let problems = generate_mix(&families, &synth, a.synth.split, a.synth.n)?;
    let knobs = Knobs { p_slip: a.p_slip, p_catch: a.p_catch, p_positions: a.p_positions, ..Knobs::default() };
    let cfg = BridgeConfig { seed: a.bridge_seed, knobs };

    let main = bridge(&problems, DescribeMode::PseudoCotConditioned, &cfg)?;
    let mut files = vec![write_dataset(
        &a.synth.out,
        &format!("{}_bridge", a.synth.split),
        &main.records,
        &main.kept_problems(&problems),
    )?];
    let mut runs = vec![main];
    if a.caption_ablation {
        runs.push(bridge(&problems, DescribeMode::Caption, &cfg)?);
    }
    if a.text {
        let text = bridge_text(&problems, &cfg)?;
        files.push(write_dataset(&a.synth.out, &format!("{}_bridge_text", a.synth.split), &text.records, &[])?);
        runs.push(text);
    }
    for r in &runs {
        files.push(write_samples(&a.synth.out, a.synth.split, r)?);
    }
    let report = BridgeReport {
        synth,
        split: a.synth.split,
        bridge: cfg,
        min_reasoning_words: MIN_REASONING_WORDS,
        runs: runs.iter().map(|r| r.stats.clone()).collect(),
    };
    let stats_path = a.synth.out.join("bridge_stats.json");
    write_atomic(&stats_path, &serde_json::to_vec_pretty(&report)?)?;
    files.push(stats_path);

    println!("{}", BridgeStats::header());
    for r in &runs {
        for line in r.stats.table() {
            println!("{line}");
        }
    }
    for f in &files {
        println!("wrote {}", f.display());
    }
    Ok(())
}

/// Every sample of a run as JSON lines.
fn write_samples(out: &Path, split: Split, r: &BridgeRun) -> Result<PathBuf> {
    let mut lines = Vec::new();
    for s in &r.samples {
        serde_json::to_writer(&mut lines, s).with_context(|| format!("serialising bridged sample {}", s.id))?;
        lines.push(b'\n');
    }
    let path = out.join(format!("{split}_bridge_{}.jsonl", r.stats.run));
    write_atomic(&path, &lines)?;
    Ok(path)
}
