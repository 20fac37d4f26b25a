//! Downloads through hf-hub 0.4.3's sync API, and turns its errors into messages that say what to do.
//!
//! hf-hub's protocol (`src/api/sync.rs`): `GET <endpoint>/<repo>/resolve/<revision>/<file>` with
//! `Range: bytes=0-0` and redirects off, following relative redirects itself; the answer must carry
//! `X-Repo-Commit`, `X-Linked-Etag` (LFS, on the redirect to the CDN) or `ETag`, and `Content-Range` (on the
//! answer or, for an absolute redirect, on the redirect target). The body is then fetched with
//! `Range: bytes=<already downloaded>-` into `blobs/<etag>.part`, renamed to `blobs/<etag>`, and linked from
//! `snapshots/<X-Repo-Commit>/<file>`.
use std::path::PathBuf;

use anyhow::{Result, anyhow};
use hf_hub::api::sync::{ApiBuilder, ApiError};
use hf_hub::{Cache, Repo, RepoType};

use super::{HubOptions, HubRepo, RepoKind};

/// Downloads `file` of `repo` into the cache and returns its snapshot path. A pinned commit is always
/// downloaded (the caller has checked the cache); a moving revision goes through hf-hub's `get`, which reads
/// `refs/<revision>` first.
pub(crate) fn download(opts: &HubOptions, repo: &HubRepo, file: &str) -> Result<PathBuf> {
    let api = ApiBuilder::from_cache(Cache::new(opts.cache_dir.clone()))
        .with_endpoint(opts.endpoint.clone())
        .with_token(opts.token.clone())
        .with_progress(opts.progress)
        .build()
        .map_err(|e| anyhow!("setting up the Hub client for {}: {e}", opts.endpoint))?;
    let kind = match repo.kind {
        RepoKind::Model => RepoType::Model,
        RepoKind::Dataset => RepoType::Dataset,
    };
    let api_repo = api.repo(Repo::with_revision(repo.repo.clone(), kind, repo.revision.clone()));
    let url = api_repo.url(file);
    let result = if repo.is_pinned() { api_repo.download(file) } else { api_repo.get(file) };
    result.map_err(|e| anyhow!("downloading {file} of {} from {url}: {}", repo.label(), explain(&e, opts)))
}

/// The cause and what to do about it.
fn explain(err: &ApiError, opts: &HubOptions) -> String {
    match err {
        ApiError::TooManyRetries(inner) => format!("gave up after retries: {}", explain(inner, opts)),
        ApiError::RequestError(e) => match e.as_ref() {
            ureq::Error::Status(code, resp) => {
                let said = [resp.header("x-error-code"), resp.header("x-error-message")]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(": ");
                let said = if said.is_empty() { String::new() } else { format!(" ({said})") };
                let hint = match code {
                    401 | 403 => {
                        "the repository is gated or private: accept its terms on the Hub and set HF_TOKEN \
                                     (or $HF_HOME/token)"
                    }
                    404 => "check the repository id, the revision and the file name",
                    416 => "the range request was refused; delete the matching blobs/*.part file and retry",
                    500..=599 => "the server failed; retry later, or use a prepared cache offline (HF_HUB_OFFLINE=1)",
                    _ => "check HF_ENDPOINT and retry",
                };
                format!("the server answered HTTP {code}{said}; {hint}")
            }
            ureq::Error::Transport(t) => format!(
                "could not reach {}: {t}; check the network and HF_ENDPOINT, or work offline from a prepared cache \
                 (HF_HUB_OFFLINE=1)",
                opts.endpoint
            ),
        },
        ApiError::MissingHeader(h) | ApiError::InvalidHeader(h) => format!(
            "the answer lacks a valid `{h}` header, so {} does not behave like the Hub; check HF_ENDPOINT",
            opts.endpoint
        ),
        ApiError::InvalidResume => {
            "the partial download (blobs/*.part) is longer than the file; delete it and retry".to_string()
        }
        ApiError::LockAcquisition(p) => {
            format!("another process holds the download lock {}; wait for it or delete the lock", p.display())
        }
        ApiError::IoError(e) => format!(
            "I/O error while receiving the file or writing it under {}: {e}; a partial download stays in \
             blobs/<etag>.part and is resumed by the next fetch",
            opts.cache_dir.display()
        ),
        other => other.to_string(),
    }
}
