//! The Hub cache layout shared with Python's `huggingface_hub` (style_anchors B5):
//! `<cache>/<models|datasets>--org--name/{blobs/<etag>, refs/<branch>, snapshots/<commit>/<file>}`, and where
//! the cache folder is by environment. Reading only; hf-hub writes.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::HubRepo;
use crate::repro::manifest::source::is_hex;

/// `$XDG_CACHE_HOME`, else `~/.cache`.
pub(crate) fn user_cache(get: &impl Fn(&str) -> Option<String>) -> PathBuf {
    get("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(get("HOME").unwrap_or_else(|| "/".to_string())).join(".cache"))
}

/// Python's `HF_HOME`: `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else `~/.cache/huggingface`.
pub(crate) fn hf_home(get: &impl Fn(&str) -> Option<String>) -> PathBuf {
    get("HF_HOME").map(PathBuf::from).unwrap_or_else(|| user_cache(get).join("huggingface"))
}

/// The hub cache folder as Python resolves it: `$HF_HUB_CACHE`, `$HUGGINGFACE_HUB_CACHE`, else `<HF_HOME>/hub`.
pub fn default_cache_dir(get: &impl Fn(&str) -> Option<String>) -> PathBuf {
    get("HF_HUB_CACHE")
        .or_else(|| get("HUGGINGFACE_HUB_CACHE"))
        .map(PathBuf::from)
        .unwrap_or_else(|| hf_home(get).join("hub"))
}

/// `models--org--name` (or `datasets--...`), as hf-hub's `Repo::folder_name` and Python's `repo_folder_name`.
pub fn repo_folder(repo: &HubRepo) -> String {
    format!("{}--{}", repo.kind.plural(), repo.repo.replace('/', "--"))
}

pub(crate) fn repo_dir(cache_dir: &Path, repo: &HubRepo) -> PathBuf {
    cache_dir.join(repo_folder(repo))
}

pub(crate) fn snapshot_dir(cache_dir: &Path, repo: &HubRepo, commit: &str) -> PathBuf {
    repo_dir(cache_dir, repo).join("snapshots").join(commit)
}

/// The commit `repo.revision` stands for locally: itself when pinned, else the content of `refs/<revision>`.
fn local_commit(cache_dir: &Path, repo: &HubRepo) -> Option<String> {
    if repo.is_pinned() {
        return Some(repo.revision.clone());
    }
    let commit = std::fs::read_to_string(repo_dir(cache_dir, repo).join("refs").join(&repo.revision)).ok()?;
    let commit = commit.trim();
    is_hex(commit, 40).then(|| commit.to_string())
}

/// Where the file is (or would be) in the cache, for messages.
pub(crate) fn expected_path(cache_dir: &Path, repo: &HubRepo, file: &str) -> PathBuf {
    match local_commit(cache_dir, repo) {
        Some(commit) => snapshot_dir(cache_dir, repo, &commit).join(file),
        None => repo_dir(cache_dir, repo).join("refs").join(&repo.revision),
    }
}

/// `snapshots/<commit>/<file>` if it exists and leads to a file (a dangling link counts as missing).
pub(crate) fn cached_file(cache_dir: &Path, repo: &HubRepo, file: &str) -> Option<PathBuf> {
    let commit = local_commit(cache_dir, repo)?;
    let path = snapshot_dir(cache_dir, repo, &commit).join(file);
    path.is_file().then_some(path)
}

/// Removes `path` if it is a symlink whose target is gone (e.g. a deleted corrupt blob), so that hf-hub,
/// which skips creating a link when one "exists" but fails on a dangling one, can link the new blob.
pub(crate) fn remove_dangling_link(path: &Path) -> Result<()> {
    let is_link = path.symlink_metadata().map(|m| m.file_type().is_symlink()).unwrap_or(false);
    if is_link && !path.exists() {
        std::fs::remove_file(path)
            .with_context(|| format!("removing the dangling cache link {} before fetching again", path.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_names_match_python() {
        let m = HubRepo::model("Qwen/Qwen2.5-VL-7B-Instruct", "main");
        assert_eq!(repo_folder(&m), "models--Qwen--Qwen2.5-VL-7B-Instruct");
        assert_eq!(repo_folder(&HubRepo::dataset("a/b", "main")), "datasets--a--b");
    }

    #[test]
    fn pinned_commit_reads_the_snapshot_without_refs() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "a".repeat(40);
        let repo = HubRepo::model("o/n", &sha);
        assert_eq!(cached_file(dir.path(), &repo, "x/c.json"), None);
        let snap = snapshot_dir(dir.path(), &repo, &sha);
        std::fs::create_dir_all(snap.join("x")).unwrap();
        std::fs::write(snap.join("x/c.json"), "{}").unwrap();
        assert_eq!(cached_file(dir.path(), &repo, "x/c.json"), Some(snap.join("x/c.json")));
        // A branch resolves through refs/<branch> only.
        let main = HubRepo::model("o/n", "main");
        assert_eq!(cached_file(dir.path(), &main, "x/c.json"), None);
        std::fs::create_dir_all(repo_dir(dir.path(), &main).join("refs")).unwrap();
        std::fs::write(repo_dir(dir.path(), &main).join("refs/main"), format!("{sha}\n")).unwrap();
        assert_eq!(cached_file(dir.path(), &main, "x/c.json"), Some(snap.join("x/c.json")));
    }

    #[test]
    fn dangling_links_are_removed_and_others_kept() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("l");
        std::os::unix::fs::symlink("missing", &link).unwrap();
        assert!(cached_file(dir.path(), &HubRepo::model("o/n", &"b".repeat(40)), "l").is_none());
        remove_dangling_link(&link).unwrap();
        assert!(link.symlink_metadata().is_err());
        std::fs::write(dir.path().join("f"), "x").unwrap();
        remove_dangling_link(&dir.path().join("f")).unwrap();
        assert!(dir.path().join("f").exists());
    }
}
