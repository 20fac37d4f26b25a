//! Placing a local model folder into the Hub cache as repository `repo_id` at a **content revision**, so that it is
//! resolved by [`super::Hub::fetch`] (offline, sha256-verified) exactly as a downloaded checkpoint is. Used for the
//! embedded default's models: the tiny random-init repository ([`crate::model::tiny::install`]) and the committed
//! base checkpoint (`assets/tiny-base/`, issue 6 item 3).
//!
//! Layout: `<cache>/models--org--name/{blobs/<sha256>, snapshots/<revision>/<file> -> ../../blobs/<sha256>,
//! refs/main}`. The revision is the first 40 hex digits of SHA-256 over `<repo_id>\n` and one `<file>\t<sha256>\n`
//! line per file in name order, so the same files give the same revision on every machine. Idempotent: a blob or
//! link that is already right is left alone (only a missing or corrupt one is written); every write is atomic.
//! Deviation from `huggingface_hub`: every blob is named by its sha256, also the small JSON files (the Hub names
//! non-LFS blobs by their git SHA-1), so every file is verified on fetch even without pinned hashes.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use sha2::{Digest, Sha256};

use super::{HubRepo, repo_folder};
use crate::io::{sha256_file, write_atomic};

/// What [`install_dir`] placed.
#[derive(Debug, Clone)]
pub struct Installed {
    pub revision: String,
    /// `(file, sha256, written)`: `written` is false where the cache already held it.
    pub files: Vec<(String, String, bool)>,
    pub snapshot: PathBuf,
}

/// The content revision of `repo_id` holding `files` (`(name, sha256)`), see the module header.
pub fn content_revision(repo_id: &str, files: &[(String, String)]) -> String {
    let mut h = Sha256::new();
    h.update(format!("{repo_id}\n"));
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort();
    for (f, sha) in sorted {
        h.update(format!("{f}\t{sha}\n"));
    }
    format!("{:x}", h.finalize())[..40].to_string()
}

/// Installs `files` of folder `src` into the cache `cache_dir` as model repository `repo_id`.
pub fn install_dir(repo_id: &str, src: &Path, files: &[String], cache_dir: &Path) -> Result<Installed> {
    ensure!(!files.is_empty(), "nothing to install from {} as {repo_id}: the file list is empty", src.display());
    let mut hashed = Vec::new();
    for f in files {
        let path = src.join(f);
        ensure!(path.is_file(), "{} is missing: {repo_id} cannot be installed without it", path.display());
        hashed.push((f.clone(), sha256_file(&path)?));
    }
    let revision = content_revision(repo_id, &hashed);
    let repo_dir = cache_dir.join(repo_folder(&HubRepo::model(repo_id, &revision)));
    let snapshot = repo_dir.join("snapshots").join(&revision);
    let mut placed = Vec::new();
    for (f, sha) in hashed {
        let blob = repo_dir.join("blobs").join(&sha);
        let mut written = false;
        if !(blob.is_file() && sha256_file(&blob)? == sha) {
            write_atomic(&blob, &std::fs::read(src.join(&f)).with_context(|| format!("reading {}", f))?)?;
            // As huggingface_hub leaves blobs (tempfile would keep them owner-only).
            std::fs::set_permissions(&blob, std::os::unix::fs::PermissionsExt::from_mode(0o644))
                .with_context(|| format!("making {} readable", blob.display()))?;
            written = true;
        }
        let link = snapshot.join(&f);
        let target = Path::new("../../blobs").join(&sha);
        if std::fs::read_link(&link).ok().as_deref() != Some(target.as_path()) {
            std::fs::create_dir_all(&snapshot).with_context(|| format!("creating {}", snapshot.display()))?;
            let tmp = snapshot.join(format!(".tmp-link-{f}"));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(&target, &tmp).with_context(|| format!("linking {}", tmp.display()))?;
            std::fs::rename(&tmp, &link).with_context(|| format!("placing the cache link {}", link.display()))?;
            written = true;
        }
        placed.push((f, sha, written));
    }
    let refs = repo_dir.join("refs").join("main");
    if std::fs::read_to_string(&refs).ok().as_deref() != Some(revision.as_str()) {
        write_atomic(&refs, revision.as_bytes())?;
    }
    Ok(Installed { revision, files: placed, snapshot })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, HubOptions};

    #[test]
    fn installed_folder_is_fetched_verified_and_reinstall_writes_nothing() {
        let src = tempfile::tempdir().unwrap();
        let cache = tempfile::tempdir().unwrap();
        std::fs::write(src.path().join("config.json"), b"{}").unwrap();
        std::fs::write(src.path().join("model.safetensors"), b"weights").unwrap();
        let files = vec!["config.json".to_string(), "model.safetensors".to_string()];
        let a = install_dir("org/m", src.path(), &files, cache.path()).unwrap();
        assert!(a.files.iter().all(|f| f.2));
        let b = install_dir("org/m", src.path(), &files, cache.path()).unwrap();
        assert_eq!(a.revision, b.revision);
        assert!(b.files.iter().all(|f| !f.2), "a second install leaves the cache alone");
        let hub = Hub::new(HubOptions::new(cache.path()));
        let got = hub.fetch(&HubRepo::model("org/m", &a.revision), "model.safetensors").unwrap();
        assert_eq!(std::fs::read(got).unwrap(), b"weights");
        // Other content, other revision; a repo id is part of the revision.
        std::fs::write(src.path().join("model.safetensors"), b"other").unwrap();
        assert_ne!(install_dir("org/m", src.path(), &files, cache.path()).unwrap().revision, a.revision);
        assert_ne!(content_revision("org/n", &[]), content_revision("org/m", &[]));
        let err = install_dir("org/m", src.path(), &["absent.json".into()], cache.path()).unwrap_err();
        assert!(err.to_string().contains("absent.json"), "{err}");
    }
}
