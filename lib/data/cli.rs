//! `r1lab data synth --family all|shapes|bars|digits|geometry --n N --split train|test --out DIR
//! [--seed S] [--level 1..3] [--size PX]`: writes a synthetic split in every format
//! (`data::synthetic::export`) and prints one line per file written.
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::synthetic::export::export;
use super::synthetic::{Config, Family, Split};

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Generate the synthetic visual reasoning task family (EasyR1 parquet, sharegpt JSON, traces).
    Synth(SynthArgs),
    /// Vision-R1 modality bridging on the synthetic family: describe, reason, filter (`data::bridging`).
    Bridge(super::bridging::cli::BridgeArgs),
    /// Modality bridging with real models behind an OpenAI-compatible endpoint (`datagen::bridge`).
    BridgeEndpoint(crate::datagen::cli::BridgeEndpointArgs),
    /// ReVisual-R1 curation: pass rates from an endpoint, a pass-rate band, balanced sampling (`datagen::curate`).
    Curate(crate::datagen::cli::CurateArgs),
}

#[derive(Debug, Args)]
pub struct SynthArgs {
    /// `all` or a comma-separated list of shapes, bars, digits, geometry.
    #[arg(long, default_value = "all")]
    pub family: String,
    /// Problems per family.
    #[arg(long, default_value_t = 100)]
    pub n: usize,
    /// `train` or `test` (held out).
    #[arg(long, default_value = "train")]
    pub split: Split,
    /// Output folder.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = Config::default().seed)]
    pub seed: u64,
    /// Difficulty 1, 2 or 3.
    #[arg(long, default_value_t = Config::default().level)]
    pub level: u8,
    /// Image side in pixels, a multiple of 28 in 112..=448.
    #[arg(long, default_value_t = Config::default().size)]
    pub size: u32,
}

/// The families named by `--family`.
pub fn parse_families(s: &str) -> Result<Vec<Family>> {
    if s == "all" {
        return Ok(Family::ALL.to_vec());
    }
    s.split(',').map(|f| f.trim().parse()).collect()
}

pub fn run(cmd: &DataCommand) -> Result<()> {
    let a = match cmd {
        DataCommand::Synth(a) => a,
        DataCommand::Bridge(b) => return super::bridging::cli::run(b),
        DataCommand::BridgeEndpoint(b) => return crate::datagen::cli::run_bridge(b),
        DataCommand::Curate(c) => return crate::datagen::cli::run_curate(c),
    };
    let families = parse_families(&a.family)?;
    let cfg = Config { seed: a.seed, level: a.level, size: a.size };
    let done = export(&a.out, &families, &cfg, a.split, a.n)?;
    for f in &done.files {
        println!("{}", f.display());
    }
    eprintln!("{} {} problems written to {}", done.problems.len(), a.split, a.out.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_parse() {
        assert_eq!(parse_families("all").unwrap().len(), 4);
        assert_eq!(parse_families("bars, digits").unwrap(), vec![Family::Bars, Family::Digits]);
        assert!(parse_families("bars,pies").is_err());
    }
}
