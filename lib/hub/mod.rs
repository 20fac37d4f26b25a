//! Hugging Face Hub files pinned by commit (issue 3 item 6, style_anchors B5).
//!
//! A model or dataset is named by its repository id, a 40-hex commit and optionally the sha256 of each
//! file ([`HubRepo`], built from a manifest's [`Source::Hub`]). [`Hub::fetch`] returns the path of a file in
//! the standard cache that Python's `huggingface_hub` also uses
//! (`<cache>/models--org--name/{blobs/<etag>, refs/<branch>, snapshots/<commit>/<file> -> ../../blobs/<etag>}`):
//!
//! - a pinned commit is looked up directly at `snapshots/<commit>/<file>` (hf-hub's own `Cache::get` needs a
//!   `refs/` entry that Python does not write for commits), so a cache prepared by Python works offline;
//! - a missing file is downloaded through the `hf-hub` crate (0.4.3, sync `ureq` API) unless offline mode is
//!   on (`HF_HUB_OFFLINE=1` or [`HubOptions::offline`]), in which case nothing touches the network and the
//!   error names the missing path and how to fill the cache;
//! - every returned file is stream-hashed with SHA-256 and compared with the pinned hash, or, when no hash is
//!   pinned and the blob is an LFS blob (named by its 64-hex sha256), with its blob name; a mismatch is an
//!   error naming the repository, file, both hashes, the blob and what to do (a blob unchanged since it was
//!   last verified is not hashed again, see [`HubOptions::verified_dir`]);
//! - a moving revision (a branch or tag such as `main`: anything that is not 40 lowercase hex digits) is
//!   refused unless [`HubOptions::allow_moving_revision`] is set.
//!
//! hf-hub writes a download to `blobs/<etag>.part` and renames it into place only once the body is complete
//! (ureq fails a body that ends before its `Content-Length`), so a blob is never half-written; an interrupted
//! `.part` is resumed with an HTTP Range request on the next fetch and is then covered by the hash check.
//!
//! Deviations from Python's `huggingface_hub`, all from hf-hub 0.4.3: a download also writes
//! `refs/<commit>` (a file holding the commit itself) and leaves `blobs/<etag>.lock` files; a moving
//! revision already present in `refs/` is read from the cache without asking the server again (Python
//! re-resolves it online); hf-hub sets no HTTP timeouts, so a server that stalls mid-body stalls the fetch.
//! Python (huggingface_hub 2.4.0) reads a cache written here, and this module reads one Python wrote
//! (`tests/hub_download.rs`, the ignored interop test).
mod cache;
pub mod cli;
mod download;
pub mod install;
mod verify;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use crate::repro::manifest::Source;
use crate::repro::manifest::source::is_hex;

pub use cache::{default_cache_dir, repo_folder};
pub use verify::sha256_file;

/// The public Hub.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// What kind of repository: the cache folder prefix and URL path differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepoKind {
    Model,
    Dataset,
}

impl RepoKind {
    /// `models` / `datasets`, as in the cache folder name.
    pub fn plural(self) -> &'static str {
        match self {
            RepoKind::Model => "models",
            RepoKind::Dataset => "datasets",
        }
    }
}

/// One Hub repository at one revision, with the files to fetch and optionally their sha256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubRepo {
    /// `owner/name`.
    pub repo: String,
    pub kind: RepoKind,
    /// A 40-hex commit (or, only when allowed, a branch or tag).
    pub revision: String,
    /// Path in the repository -> pinned sha256 (64 lowercase hex), or `None` for "any content".
    pub files: BTreeMap<String, Option<String>>,
}

impl HubRepo {
    pub fn new(kind: RepoKind, repo: &str, revision: &str) -> Self {
        Self { repo: repo.to_string(), kind, revision: revision.to_string(), files: BTreeMap::new() }
    }

    pub fn model(repo: &str, revision: &str) -> Self {
        Self::new(RepoKind::Model, repo, revision)
    }

    pub fn dataset(repo: &str, revision: &str) -> Self {
        Self::new(RepoKind::Dataset, repo, revision)
    }

    /// Adds a file to fetch, with its pinned sha256 if known.
    pub fn with_file(mut self, name: &str, sha256: Option<&str>) -> Self {
        self.files.insert(name.to_string(), sha256.map(str::to_string));
        self
    }

    /// The Hub repository of a manifest source (`model.source` is a model, `data.source` a dataset).
    pub fn from_source(source: &Source, kind: RepoKind) -> Result<Self> {
        match source {
            Source::Hub { repo, revision, files } => Ok(Self {
                repo: repo.clone(),
                kind,
                revision: revision.clone(),
                files: files.iter().map(|(k, v)| (k.clone(), Some(v.clone()))).collect(),
            }),
            other => bail!("source {other:?} is not a Hub repository; only `kind = \"hub\"` sources are fetched"),
        }
    }

    /// Whether the revision is an immutable 40-hex commit.
    pub fn is_pinned(&self) -> bool {
        is_hex(&self.revision, 40)
    }

    /// `model Qwen/Qwen2.5-VL-7B-Instruct@<revision>`, for messages.
    pub fn label(&self) -> String {
        let kind = match self.kind {
            RepoKind::Model => "model",
            RepoKind::Dataset => "dataset",
        };
        format!("{kind} {}@{}", self.repo, self.revision)
    }

    fn check(&self) -> Result<()> {
        let parts: Vec<&str> = self.repo.split('/').collect();
        ensure!(
            parts.len() == 2 && parts.iter().all(|p| !p.is_empty() && *p != "." && *p != ".."),
            "Hub repository {:?} is not of the form \"owner/name\"",
            self.repo
        );
        ensure!(!self.revision.trim().is_empty(), "{}: the revision is empty; give a 40-hex commit", self.label());
        for (name, sha) in &self.files {
            check_file_name(self, name)?;
            if let Some(sha) = sha {
                ensure!(
                    is_hex(sha, 64),
                    "{}: the pinned sha256 of {name:?} is {sha:?}, not 64 lowercase hex digits",
                    self.label()
                );
            }
        }
        Ok(())
    }
}

fn check_file_name(repo: &HubRepo, name: &str) -> Result<()> {
    let path = Path::new(name);
    ensure!(
        !name.is_empty()
            && !name.contains('\\')
            && path.components().all(|c| matches!(c, std::path::Component::Normal(_))),
        "{}: file name {name:?} is not a relative path inside the repository (no leading '/', '.' or '..')",
        repo.label()
    );
    Ok(())
}

/// Where files are cached, where they come from, and what is allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubOptions {
    /// The hub cache folder (the one holding `models--org--name`), e.g. `~/.cache/huggingface/hub`.
    pub cache_dir: PathBuf,
    /// Hub base URL, e.g. `https://huggingface.co` or a mirror.
    pub endpoint: String,
    /// Bearer token for gated or private repositories.
    pub token: Option<String>,
    /// Never touch the network; a file missing from the cache is an error.
    pub offline: bool,
    /// Accept a branch or tag as revision (not reproducible: the files may change).
    pub allow_moving_revision: bool,
    /// Show a download progress bar on stderr.
    pub progress: bool,
    /// Where stamps of verified blobs are kept so that an unchanged blob is not hashed again
    /// (see `verify.rs`); `None`: hash on every fetch.
    pub verified_dir: Option<PathBuf>,
}

impl HubOptions {
    /// Defaults for a given cache folder: the public Hub, no token, online, commits only, no progress bar.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            endpoint: DEFAULT_ENDPOINT.to_string(),
            token: None,
            offline: false,
            allow_moving_revision: false,
            progress: false,
            verified_dir: None,
        }
    }

    /// From the process environment, as Python's `huggingface_hub` reads it: `HF_HUB_CACHE` /
    /// `HUGGINGFACE_HUB_CACHE` / `HF_HOME` / `XDG_CACHE_HOME`, `HF_ENDPOINT`, `HF_TOKEN` (else the token file
    /// `$HF_HOME/token`), `HF_HUB_OFFLINE`; verification stamps go to `$R1LAB_CACHE/hub-verified`
    /// (default `~/.cache/r1lab`, outside the hub cache so Python's `scan_cache_dir` does not see them).
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// As [`HubOptions::from_env`], with variables read through `get` (for tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut opts = Self::new(default_cache_dir(&get));
        if let Some(endpoint) = get("HF_ENDPOINT") {
            opts.endpoint = endpoint.trim_end_matches('/').to_string();
        }
        opts.token = get("HF_TOKEN").or_else(|| {
            let file = cache::hf_home(&get).join("token");
            std::fs::read_to_string(file).ok().map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
        });
        opts.offline = get("HF_HUB_OFFLINE").is_some_and(|v| is_true(&v));
        let r1lab_cache =
            get("R1LAB_CACHE").map(PathBuf::from).unwrap_or_else(|| cache::user_cache(&get).join("r1lab"));
        opts.verified_dir = Some(r1lab_cache.join("hub-verified"));
        opts
    }
}

/// Python's `huggingface_hub.utils._is_true`.
fn is_true(v: &str) -> bool {
    matches!(v.trim().to_ascii_uppercase().as_str(), "1" | "ON" | "YES" | "TRUE")
}

/// Fetches and verifies Hub files into the cache.
#[derive(Debug, Clone)]
pub struct Hub {
    opts: HubOptions,
}

impl Hub {
    pub fn new(opts: HubOptions) -> Self {
        Self { opts }
    }

    /// [`HubOptions::from_env`].
    pub fn from_env() -> Self {
        Self::new(HubOptions::from_env())
    }

    pub fn options(&self) -> &HubOptions {
        &self.opts
    }

    /// The local path (`snapshots/<commit>/<file>`) of one file of `repo`, downloaded if missing and allowed,
    /// and checked against the sha256 pinned in `repo.files` (if any).
    pub fn fetch(&self, repo: &HubRepo, file: &str) -> Result<PathBuf> {
        repo.check()?;
        check_file_name(repo, file)?;
        self.check_revision(repo)?;
        let expected = repo.files.get(file).cloned().flatten();
        let cache_dir = &self.opts.cache_dir;
        let path = match cache::cached_file(cache_dir, repo, file) {
            Some(path) => path,
            None if self.opts.offline => bail!(
                "{file} of {} is not in the Hub cache ({}) and offline mode is on (HF_HUB_OFFLINE or --offline), \
                 so it was not downloaded; fetch it once with network access (`r1lab hub fetch {} --revision {} \
                 --file {file}`) or copy a cache that has it into {}",
                repo.label(),
                cache::expected_path(cache_dir, repo, file).display(),
                repo.repo,
                repo.revision,
                cache_dir.display()
            ),
            None => {
                if let Some(commit) = repo.is_pinned().then_some(repo.revision.as_str()) {
                    cache::remove_dangling_link(&cache::snapshot_dir(cache_dir, repo, commit).join(file))?;
                }
                let path = download::download(&self.opts, repo, file)?;
                if repo.is_pinned() {
                    let want = cache::snapshot_dir(cache_dir, repo, &repo.revision).join(file);
                    ensure!(
                        path == want,
                        "{file} of {}: the server at {} answered for a different commit (file stored at {}, \
                         expected {}); check that HF_ENDPOINT points at the Hub or a faithful mirror",
                        repo.label(),
                        self.opts.endpoint,
                        path.display(),
                        want.display()
                    );
                }
                path
            }
        };
        verify::check(repo, file, &path, expected.as_deref(), self.opts.verified_dir.as_deref())?;
        Ok(path)
    }

    /// Fetches every file listed in `repo.files` and returns `(name, path)` pairs in name order.
    pub fn fetch_all(&self, repo: &HubRepo) -> Result<Vec<(String, PathBuf)>> {
        ensure!(!repo.files.is_empty(), "{}: no files listed to fetch", repo.label());
        repo.files
            .keys()
            .map(|f| Ok((f.clone(), self.fetch(repo, f).with_context(|| format!("fetching {}", repo.label()))?)))
            .collect()
    }

    fn check_revision(&self, repo: &HubRepo) -> Result<()> {
        if repo.is_pinned() || self.opts.allow_moving_revision {
            return Ok(());
        }
        bail!(
            "{}: revision {:?} is a moving name (a branch or tag), not a 40-hex commit, so the files it names can \
             change; pin the commit (the \"commits\" page of https://huggingface.co/{} lists them, and after one \
             fetch with moving revisions allowed, {} holds the one it resolved to) or allow it explicitly \
             (allow_moving_revision / --allow-moving-revision)",
            repo.label(),
            repo.revision,
            repo.repo,
            cache::repo_dir(&self.opts.cache_dir, repo).join("refs").join(&repo.revision).display()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn options_follow_python_environment_rules() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(a, _)| *a == k).map(|(_, v)| v.to_string())
        };
        let o = HubOptions::from_lookup(env(&[("HF_HOME", "/h"), ("HF_HUB_OFFLINE", "yes"), ("HF_TOKEN", "t")]));
        assert_eq!(o.cache_dir, PathBuf::from("/h/hub"));
        assert!(o.offline);
        assert_eq!(o.token.as_deref(), Some("t"));
        assert_eq!(o.endpoint, DEFAULT_ENDPOINT);
        let o = HubOptions::from_lookup(env(&[
            ("HF_HUB_CACHE", "/c"),
            ("HF_HOME", "/h"),
            ("HF_HUB_OFFLINE", "0"),
            ("HF_ENDPOINT", "http://127.0.0.1:9/"),
        ]));
        assert_eq!(o.cache_dir, PathBuf::from("/c"));
        assert!(!o.offline);
        assert_eq!(o.endpoint, "http://127.0.0.1:9");
        let o = HubOptions::from_lookup(env(&[("XDG_CACHE_HOME", "/x"), ("HOME", "/home/u")]));
        assert_eq!(o.cache_dir, PathBuf::from("/x/huggingface/hub"));
        assert_eq!(o.verified_dir, Some(PathBuf::from("/x/r1lab/hub-verified")));
    }

    #[test]
    fn moving_revision_is_refused_before_any_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::new(HubOptions { offline: true, ..HubOptions::new(dir.path()) });
        let err = format!("{:#}", hub.fetch(&HubRepo::model("Org/m", "main"), "config.json").unwrap_err());
        assert!(err.contains("Org/m@main") && err.contains("40-hex") && err.contains("allow_moving_revision"), "{err}");
        let hub = Hub::new(HubOptions { offline: true, allow_moving_revision: true, ..HubOptions::new(dir.path()) });
        let err = format!("{:#}", hub.fetch(&HubRepo::model("Org/m", "main"), "config.json").unwrap_err());
        assert!(err.contains("offline mode is on"), "{err}");
    }

    #[test]
    fn bad_names_and_hashes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let hub = Hub::new(HubOptions { offline: true, ..HubOptions::new(dir.path()) });
        for (repo, file) in [
            (HubRepo::model("noslash", SHA), "a"),
            (HubRepo::model("Org/m", SHA), "../escape"),
            (HubRepo::model("Org/m", SHA), "/abs"),
            (HubRepo::model("Org/m", SHA).with_file("a", Some("sha256:00")), "a"),
        ] {
            let err = format!("{:#}", hub.fetch(&repo, file).unwrap_err());
            assert!(!err.contains("offline mode"), "{err}");
        }
    }

    #[test]
    fn manifest_sources_convert() {
        let src = Source::Hub {
            repo: "Org/d".into(),
            revision: SHA.into(),
            files: [("train.parquet".to_string(), "f".repeat(64))].into(),
        };
        let r = HubRepo::from_source(&src, RepoKind::Dataset).unwrap();
        assert_eq!(r, HubRepo::dataset("Org/d", SHA).with_file("train.parquet", Some(&"f".repeat(64))));
        assert!(r.is_pinned());
        let local = Source::Local { path: "x".into(), files: [].into() };
        assert!(HubRepo::from_source(&local, RepoKind::Model).is_err());
    }
}
