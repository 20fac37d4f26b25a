//! SHA-256 checks of cached Hub files: against the pinned hash, or, with no pin, against the blob name of an
//! LFS blob (the Hub names LFS blobs by the sha256 of their content; small git files are named by their git
//! SHA-1 and are only checked when pinned).
//!
//! Hashing is slow in an unoptimised build (about 22 MB/s, so minutes for a 7B checkpoint), so a successful
//! check may leave a stamp (`<verified_dir>/<sha256 of the blob path>`: hash, size, mtime); a blob whose
//! size and modification time still match its stamp is not hashed again. Any write to the blob changes its
//! mtime and brings the full check back; a change that restores the mtime on purpose is not caught.
use std::path::Path;
use std::time::UNIX_EPOCH;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::HubRepo;
use crate::repro::manifest::source::is_hex;

pub use crate::io::sha256_file;

/// `<hash> <size> <mtime ns>` of a blob as last verified.
fn stamp_line(sha: &str, meta: &std::fs::Metadata) -> Option<String> {
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?.as_nanos();
    Some(format!("{sha} {} {mtime}\n", meta.len()))
}

fn stamp_path(dir: &Path, blob: &Path) -> std::path::PathBuf {
    dir.join(format!("{:x}", Sha256::digest(blob.as_os_str().as_encoded_bytes())))
}

/// Checks `path` (a snapshot entry of `file` in `repo`) against `expected`, else against its LFS blob name.
/// With `verified_dir`, a blob unchanged since its last successful check is not hashed again.
pub(crate) fn check(
    repo: &HubRepo,
    file: &str,
    path: &Path,
    expected: Option<&str>,
    verified_dir: Option<&Path>,
) -> Result<()> {
    let blob = std::fs::canonicalize(path).with_context(|| format!("resolving the cache entry {}", path.display()))?;
    let blob_name = blob.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
    let (want, what) = match expected {
        Some(e) => (e.to_string(), "pinned sha256"),
        None if is_hex(&blob_name, 64) => (blob_name, "sha256 in its LFS blob name"),
        None => return Ok(()),
    };
    let meta = std::fs::metadata(&blob).with_context(|| format!("reading the metadata of {}", blob.display()))?;
    let stamp = verified_dir.and_then(|d| Some((stamp_path(d, &blob), stamp_line(&want, &meta)?)));
    if let Some((stamp_file, line)) = &stamp
        && std::fs::read_to_string(stamp_file).is_ok_and(|old| &old == line)
    {
        return Ok(());
    }
    let actual = sha256_file(&blob)?;
    if actual != want {
        bail!(
            "sha256 mismatch for {file} of {}: expected {want} ({what}), got {actual} (cache entry {} -> blob {}). \
             The cached copy is corrupt or was modified, or the pin is wrong. Delete {} and {} and fetch again \
             (`r1lab hub fetch {} --revision {} --file {file}`); if the file at this commit really has this \
             content, correct the pin in the manifest",
            repo.label(),
            path.display(),
            blob.display(),
            blob.display(),
            path.display(),
            repo.repo,
            repo.revision,
        );
    }
    if let Some((stamp_file, line)) = stamp {
        // Best effort: an unwritable stamp folder only costs a re-hash next time.
        let _ = crate::io::write_atomic(&stamp_file, line.as_bytes());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn hashes_known_vectors() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("e"), b"").unwrap();
        std::fs::write(dir.path().join("abc"), b"abc").unwrap();
        assert_eq!(sha256_file(&dir.path().join("e")).unwrap(), EMPTY);
        assert_eq!(sha256_file(&dir.path().join("abc")).unwrap(), ABC);
    }

    #[test]
    fn pinned_and_lfs_blob_names_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let repo = HubRepo::model("o/n", &"c".repeat(40));
        let blobs = dir.path().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join(ABC), b"abc").unwrap();
        let link = dir.path().join("w.bin");
        std::os::unix::fs::symlink(blobs.join(ABC), &link).unwrap();
        check(&repo, "w.bin", &link, None, None).unwrap();
        check(&repo, "w.bin", &link, Some(ABC), None).unwrap();
        let err = format!("{:#}", check(&repo, "w.bin", &link, Some(EMPTY), None).unwrap_err());
        assert!(err.contains("w.bin") && err.contains("o/n@") && err.contains(EMPTY) && err.contains(ABC), "{err}");
        std::fs::write(blobs.join(ABC), b"abd").unwrap();
        let err = format!("{:#}", check(&repo, "w.bin", &link, None, None).unwrap_err());
        assert!(err.contains("LFS blob name") && err.contains("Delete"), "{err}");
        // A git-tracked file (40-hex blob name) without a pin is not checked.
        let git = blobs.join("d".repeat(40));
        std::fs::write(&git, b"{}").unwrap();
        check(&repo, "c.json", &git, None, None).unwrap();
    }

    #[test]
    fn stamps_skip_unchanged_blobs_only() {
        let dir = tempfile::tempdir().unwrap();
        let stamps = dir.path().join("stamps");
        let repo = HubRepo::model("o/n", &"c".repeat(40));
        let blob = dir.path().join(ABC);
        std::fs::write(&blob, b"abc").unwrap();
        check(&repo, "w", &blob, Some(ABC), Some(&stamps)).unwrap();
        assert_eq!(std::fs::read_dir(&stamps).unwrap().count(), 1);
        check(&repo, "w", &blob, Some(ABC), Some(&stamps)).unwrap();
        // A write (new mtime) is hashed again and caught.
        let mtime = std::fs::metadata(&blob).unwrap().modified().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&blob, b"abd").unwrap();
        assert!(check(&repo, "w", &blob, Some(ABC), Some(&stamps)).is_err());
        // The documented limit: restoring the old mtime by hand hides the change.
        std::fs::File::options().write(true).open(&blob).unwrap().set_modified(mtime).unwrap();
        check(&repo, "w", &blob, Some(ABC), Some(&stamps)).unwrap();
        // A different pin never reuses the stamp.
        assert!(check(&repo, "w", &blob, Some(EMPTY), Some(&stamps)).is_err());
    }
}
