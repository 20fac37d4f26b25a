//! `r1lab tiny init [--cache DIR] [--seed N] [--data-seed N] [--size PX] [--problems N] [--vocab N]`: builds the
//! tiny Qwen2.5-VL repository ([`super::install`]) into the Hub cache and prints the repository id, the revision
//! and one `<sha256>  <file>  (written|unchanged)` line per file. Running it twice with the same options gives the
//! same revision and writes nothing the second time.
use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};

use super::{TINY_REPO_ID, TinySpec, install};
use crate::data::synthetic;
use crate::hub::HubOptions;
use crate::processor::train_bpe::BpeSpec;

#[derive(Debug, Subcommand)]
pub enum TinyCommand {
    /// Build the tiny model (config, trained BPE tokenizer, initial weights) into the Hub cache as
    /// r1lab/tiny-qwen2.5-vl at a content-hash revision.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Hub cache folder [default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// Seed of the weight initialisation.
    #[arg(long, default_value_t = TinySpec::default().seed)]
    pub seed: u64,
    /// Seed of the synthetic stream the tokenizer corpus is drawn from.
    #[arg(long, default_value_t = synthetic::Config::default().seed)]
    pub data_seed: u64,
    /// Synthetic image side in pixels (the preprocessor is set for 112..=448).
    #[arg(long, default_value_t = synthetic::Config::default().size)]
    pub size: u32,
    /// Train problems per family and level in the tokenizer corpus.
    #[arg(long, default_value_t = TinySpec::default().problems_per_family)]
    pub problems: usize,
    /// Target size of the learned BPE vocabulary (without the 22 added tokens).
    #[arg(long, default_value_t = BpeSpec::default().vocab_size)]
    pub vocab: usize,
}

impl InitArgs {
    pub fn spec(&self) -> TinySpec {
        let d = TinySpec::default();
        TinySpec {
            seed: self.seed,
            data: synthetic::Config { seed: self.data_seed, size: self.size, ..d.data },
            problems_per_family: self.problems,
            bpe: BpeSpec { vocab_size: self.vocab, ..d.bpe },
            ..d
        }
    }
}

/// Runs a `tiny` subcommand.
pub fn run(command: &TinyCommand) -> Result<()> {
    match command {
        TinyCommand::Init(args) => {
            let cache = args.cache.clone().unwrap_or_else(|| HubOptions::from_env().cache_dir);
            let repo = install(&args.spec(), &cache)?;
            println!("repo {TINY_REPO_ID}");
            println!("revision {}", repo.revision);
            for (file, sha, written) in &repo.files {
                println!("{sha}  {file}  ({})", if *written { "written" } else { "unchanged" });
            }
            eprintln!(
                "tiny: {} parameters, tokenizer {} tokens; {} (load with HubRepo::model(\"{TINY_REPO_ID}\", \"{}\"))",
                repo.parameters,
                repo.tokenizer_vocab,
                repo.snapshot.display(),
                repo.revision
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: TinyCommand,
    }

    #[test]
    fn arguments_build_the_spec() {
        let TinyCommand::Init(args) = T::try_parse_from(["t", "init"]).unwrap().c;
        assert_eq!(args.spec(), TinySpec::default());
        assert!(args.cache.is_none());
        let t = T::try_parse_from([
            "t",
            "init",
            "--cache",
            "/c",
            "--seed",
            "7",
            "--data-seed",
            "3",
            "--size",
            "112",
            "--problems",
            "5",
            "--vocab",
            "300",
        ])
        .unwrap();
        let TinyCommand::Init(args) = t.c;
        let spec = args.spec();
        assert_eq!(args.cache, Some(PathBuf::from("/c")));
        assert_eq!((spec.seed, spec.data.seed, spec.data.size), (7, 3, 112));
        assert_eq!((spec.problems_per_family, spec.bpe.vocab_size), (5, 300));
        assert_eq!(spec.arch, TinySpec::default().arch);
    }
}
