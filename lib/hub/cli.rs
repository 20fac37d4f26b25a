//! `r1lab hub fetch REPO --revision SHA --file F [--file F]... [--sha256 F=HEX]...`: fills the Hub cache
//! (or checks it, with `--offline`) and prints one `<file>\t<path>` line per file on stdout.
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};

use super::{Hub, HubOptions, HubRepo, RepoKind};

#[derive(Debug, Subcommand)]
pub enum HubCommand {
    /// Download files of a Hub repository at a pinned commit into the cache (or verify them offline).
    Fetch(FetchArgs),
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// Repository id, `owner/name`.
    pub repo: String,
    /// A 40-hex commit (a branch or tag only with --allow-moving-revision).
    #[arg(long)]
    pub revision: String,
    /// A file in the repository; repeat for several.
    #[arg(long = "file", required = true)]
    pub files: Vec<String>,
    /// Pinned hash of a file, `FILE=SHA256`; repeat for several. The file is fetched too.
    #[arg(long = "sha256", value_name = "FILE=SHA256")]
    pub sha256: Vec<String>,
    /// The repository is a dataset (default: a model).
    #[arg(long)]
    pub dataset: bool,
    /// Never touch the network (also on with HF_HUB_OFFLINE=1).
    #[arg(long)]
    pub offline: bool,
    /// Accept a branch or tag as --revision.
    #[arg(long)]
    pub allow_moving_revision: bool,
    /// Hub cache folder [default: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub].
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Hub URL [default: $HF_ENDPOINT, else https://huggingface.co].
    #[arg(long)]
    pub endpoint: Option<String>,
}

impl FetchArgs {
    /// The repository and options these arguments describe, on top of `base` (usually the environment).
    pub fn resolve(&self, base: HubOptions) -> Result<(HubRepo, HubOptions)> {
        let kind = if self.dataset { RepoKind::Dataset } else { RepoKind::Model };
        let mut repo = HubRepo::new(kind, &self.repo, &self.revision);
        for f in &self.files {
            repo.files.insert(f.clone(), None);
        }
        for pair in &self.sha256 {
            let (file, sha) = pair
                .split_once('=')
                .with_context(|| format!("--sha256 {pair:?} is not FILE=SHA256 (e.g. config.json=<64 hex>)"))?;
            repo.files.insert(file.to_string(), Some(sha.to_string()));
        }
        let opts = HubOptions {
            cache_dir: self.cache_dir.clone().unwrap_or(base.cache_dir),
            endpoint: self.endpoint.clone().map(|e| e.trim_end_matches('/').to_string()).unwrap_or(base.endpoint),
            offline: self.offline || base.offline,
            allow_moving_revision: self.allow_moving_revision || base.allow_moving_revision,
            ..base
        };
        Ok((repo, opts))
    }
}

/// Runs a `hub` subcommand with options from the environment.
pub fn run(command: &HubCommand) -> Result<()> {
    match command {
        HubCommand::Fetch(args) => {
            let (repo, opts) = args.resolve(HubOptions { progress: true, ..HubOptions::from_env() })?;
            let files = Hub::new(opts).fetch_all(&repo)?;
            for (name, path) in &files {
                println!("{name}\t{}", path.display());
            }
            eprintln!("hub: {} file(s) of {} ready", files.len(), repo.label());
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
        c: HubCommand,
    }

    #[test]
    fn arguments_build_repo_and_options() {
        let sha = "1".repeat(64);
        let t = T::try_parse_from([
            "t",
            "fetch",
            "Org/m",
            "--revision",
            "main",
            "--file",
            "a.json",
            "--sha256",
            &format!("b.bin={sha}"),
            "--dataset",
            "--offline",
            "--allow-moving-revision",
            "--cache-dir",
            "/c",
        ])
        .unwrap();
        let HubCommand::Fetch(args) = t.c;
        let (repo, opts) = args.resolve(HubOptions::new("/env")).unwrap();
        assert_eq!(repo, HubRepo::dataset("Org/m", "main").with_file("a.json", None).with_file("b.bin", Some(&sha)));
        assert!(opts.offline && opts.allow_moving_revision);
        assert_eq!(opts.cache_dir, PathBuf::from("/c"));
        assert!(T::try_parse_from(["t", "fetch", "Org/m", "--revision", "x"]).is_err(), "--file is required");
        let t = T::try_parse_from(["t", "fetch", "Org/m", "--revision", "x", "--file", "a", "--sha256", "nohash"]);
        let HubCommand::Fetch(args) = t.unwrap().c;
        assert!(format!("{:#}", args.resolve(HubOptions::new("/e")).unwrap_err()).contains("FILE=SHA256"));
    }
}
