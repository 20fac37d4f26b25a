//! End-to-end test of `r1lab::hub` through the real hf-hub download path, against a hub-shaped HTTP server
//! on 127.0.0.1 (ephemeral port) started by each test and stopped at its end.
//!
//! The server answers the requests hf-hub 0.4.3 makes (`src/api/sync.rs`) the way huggingface.co does:
//! - `GET /<repo>/resolve/<commit>/<file>` of a git-tracked file: `200`/`206` with `ETag: "<git oid>"`,
//!   `X-Repo-Commit`, `Accept-Ranges`, and `Content-Range` for a Range request;
//! - the same for an LFS file: `302` to an absolute CDN URL on another host name (`localhost`, still this
//!   server) with `X-Linked-Etag: "<sha256>"`,
//!   `X-Linked-Size`, `X-Repo-Commit`; the CDN (`/cdn/<sha256>`) serves Range requests;
//! - a branch (`main`) on a git-tracked file: `307` with a relative `Location` to
//!   `/api/resolve-cache/<repo>/<commit>/<file>`, as the Hub does now;
//! - unknown revision or file: `404` with `X-Error-Code`; injected faults: a status code, or a body cut short;
//! - `HEAD` (Python's `huggingface_hub` probes with it) gets the same answer without a body.
//!
//! Deviation: the git oid is a stand-in (the first 40 hex digits of the sha256) rather than git's SHA-1 of the
//! blob; clients only use it as an opaque blob name.
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use r1lab::hub::{Hub, HubOptions, HubRepo, sha256_file};
use sha2::{Digest, Sha256};

const COMMIT: &str = "5a7c0e1d9b3f4a6c8e2d0b1a3c5e7f9d2b4a6c8e";
const OTHER_COMMIT: &str = "ffffffffffffffffffffffffffffffffffffffff";
/// The server shuts itself down after this long even if a test forgets to stop it.
const SERVER_LIFETIME: Duration = Duration::from_secs(60);

fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

struct RepoFile {
    bytes: Vec<u8>,
    lfs: bool,
}

#[derive(Default)]
struct Faults {
    /// File name -> HTTP status answered on its resolve URL.
    status: HashMap<String, u16>,
    /// File names whose CDN body is cut in half (once).
    truncate_once: Vec<String>,
    /// Answer with this commit instead of the real one.
    wrong_commit: bool,
}

struct State {
    /// URL prefix of the repository: `Org/tiny` or `datasets/Org/tiny`.
    prefix: String,
    files: BTreeMap<String, RepoFile>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<String>>,
    base: String,
}

struct FakeHub {
    state: Arc<State>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    fn start(prefix: &str, files: Vec<(&str, Vec<u8>, bool)>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let files = files.into_iter().map(|(n, bytes, lfs)| (n.to_string(), RepoFile { bytes, lfs })).collect();
        let state = Arc::new(State {
            prefix: prefix.to_string(),
            files,
            faults: Mutex::default(),
            log: Mutex::default(),
            base,
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            while !sp.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let _ = handle(&st, stream);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(e) => panic!("accept failed: {e}"),
                }
            }
        });
        Self { state, stop, thread: Some(thread) }
    }

    fn endpoint(&self) -> String {
        self.state.base.clone()
    }

    fn requests(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }

    fn faults(&self) -> std::sync::MutexGuard<'_, Faults> {
        self.state.faults.lock().unwrap()
    }

    /// Stops accepting connections and waits for the server thread; the port is closed afterwards.
    fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Request {
    head: bool,
    path: String,
    headers: HashMap<String, String>,
}

fn read_request(stream: &mut TcpStream) -> std::io::Result<Request> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default();
    let path = first.split(' ').nth(1).unwrap_or("/").split('?').next().unwrap_or("/").to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok(Request { head: first.starts_with("HEAD "), path, headers })
}

/// How much of a body to send: all, the first half (then hang up: a cut download), or none (a HEAD request).
#[derive(Clone, Copy, PartialEq)]
enum Body {
    All,
    Half,
    Headers,
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    headers: &[(&str, String)],
    body: &[u8],
    send: Body,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        307 => "Temporary Redirect",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Error",
    };
    let mut head = format!("HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n", body.len());
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(match send {
        Body::All => body,
        Body::Half => &body[..body.len() / 2],
        Body::Headers => b"",
    })?;
    stream.flush()
}

/// Serves `bytes` honouring a `Range: bytes=a-[b]` header.
fn serve_bytes(
    stream: &mut TcpStream,
    req: &Request,
    bytes: &[u8],
    mut headers: Vec<(&str, String)>,
    send: Body,
) -> std::io::Result<()> {
    let len = bytes.len();
    headers.push(("Accept-Ranges", "bytes".into()));
    let Some(range) = req.headers.get("range").and_then(|r| r.strip_prefix("bytes=")) else {
        return respond(stream, 200, &headers, bytes, send);
    };
    let (a, b) = range.split_once('-').unwrap();
    let start: usize = a.parse().unwrap();
    let end: usize = if b.is_empty() { len - 1 } else { b.parse::<usize>().unwrap().min(len - 1) };
    if start >= len {
        headers.push(("Content-Range", format!("bytes */{len}")));
        return respond(stream, 416, &headers, b"", send);
    }
    headers.push(("Content-Range", format!("bytes {start}-{end}/{len}")));
    respond(stream, 206, &headers, &bytes[start..=end], send)
}

fn handle(st: &State, mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let req = read_request(&mut stream)?;
    let range = req.headers.get("range").cloned().unwrap_or_default();
    let all = if req.head { Body::Headers } else { Body::All };
    st.log.lock().unwrap().push(format!("{} {} {range}", if req.head { "HEAD" } else { "GET" }, req.path));
    let not_found = |stream: &mut TcpStream, code: &str| {
        respond(stream, 404, &[("X-Error-Code", code.to_string())], b"not found", all)
    };
    if let Some(sha) = req.path.strip_prefix("/cdn/") {
        let Some((name, f)) = st.files.iter().find(|(_, f)| f.lfs && sha256_hex(&f.bytes) == sha) else {
            return not_found(&mut stream, "EntryNotFound");
        };
        let cut = {
            let mut faults = st.faults.lock().unwrap();
            let pos = faults.truncate_once.iter().position(|n| n == name).filter(|_| !range.contains("=0-0"));
            pos.map(|p| faults.truncate_once.remove(p)).is_some()
        };
        let send = if cut { Body::Half } else { all };
        return serve_bytes(&mut stream, &req, &f.bytes, vec![("ETag", format!("\"{sha}\""))], send);
    }
    // `/<prefix>/resolve/<rev>/<file>` or `/api/resolve-cache/<prefix>/<commit>/<file>`.
    let (rev_and_file, via_cache) = match req.path.strip_prefix(&format!("/{}/resolve/", st.prefix)) {
        Some(rest) => (rest.to_string(), false),
        None => match req.path.strip_prefix(&format!("/api/resolve-cache/{}/", st.prefix)) {
            Some(rest) => (rest.to_string(), true),
            None => return not_found(&mut stream, "RepoNotFound"),
        },
    };
    let (rev, file) = rev_and_file.split_once('/').unwrap_or((&rev_and_file, ""));
    let is_branch = rev == "main" && !via_cache;
    if rev != COMMIT && !is_branch {
        return not_found(&mut stream, "RevisionNotFound");
    }
    if let Some(&status) = st.faults.lock().unwrap().status.get(file) {
        return respond(&mut stream, status, &[], b"internal error", all);
    }
    let Some(f) = st.files.get(file) else { return not_found(&mut stream, "EntryNotFound") };
    let commit = if st.faults.lock().unwrap().wrong_commit { OTHER_COMMIT } else { COMMIT };
    let sha = sha256_hex(&f.bytes);
    let oid = sha[..40].to_string();
    if f.lfs {
        let headers = [
            // Another host name for the same loopback server, as the Hub's CDN is another host.
            ("Location", format!("{}/cdn/{sha}", st.base.replace("127.0.0.1", "localhost"))),
            ("X-Linked-Etag", format!("\"{sha}\"")),
            ("X-Linked-Size", f.bytes.len().to_string()),
            ("X-Repo-Commit", commit.to_string()),
            ("ETag", format!("\"{oid}\"")),
        ];
        return respond(&mut stream, 302, &headers, b"", all);
    }
    if is_branch {
        let location = format!("/api/resolve-cache/{}/{commit}/{file}", st.prefix);
        return respond(&mut stream, 307, &[("Location", location), ("X-Repo-Commit", commit.into())], b"", all);
    }
    let headers = vec![("ETag", format!("\"{oid}\"")), ("X-Repo-Commit", commit.to_string())];
    serve_bytes(&mut stream, &req, &f.bytes, headers, all)
}

// ---------------------------------------------------------------------------------------------------------------

fn weights() -> Vec<u8> {
    (0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

const CONFIG: &[u8] = br#"{"model_type": "qwen2_5_vl", "hidden_size": 64}"#;

fn tiny_hub() -> FakeHub {
    FakeHub::start(
        "Org/tiny",
        vec![
            ("config.json", CONFIG.to_vec(), false),
            ("model.safetensors", weights(), true),
            ("sub/dir/notes.txt", b"nested".to_vec(), false),
        ],
    )
}

fn options(cache: &Path, hub: &FakeHub) -> HubOptions {
    HubOptions { endpoint: hub.endpoint(), ..HubOptions::new(cache) }
}

fn err_text<T: std::fmt::Debug>(r: anyhow::Result<T>) -> String {
    format!("{:#}", r.unwrap_err())
}

fn repo_dir(cache: &Path) -> PathBuf {
    cache.join("models--Org--tiny")
}

#[test]
fn download_lays_out_the_python_cache_and_rereads_offline() {
    let cache = tempfile::tempdir().unwrap();
    let server = tiny_hub();
    let w_sha = sha256_hex(&weights());
    let repo = HubRepo::model("Org/tiny", COMMIT)
        .with_file("config.json", Some(&sha256_hex(CONFIG)))
        .with_file("model.safetensors", Some(&w_sha))
        .with_file("sub/dir/notes.txt", None);
    let hub = Hub::new(options(cache.path(), &server));
    let got = hub.fetch_all(&repo).unwrap();
    let snap = repo_dir(cache.path()).join("snapshots").join(COMMIT);
    let names: Vec<_> = got.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    assert_eq!(
        names,
        vec![
            ("config.json", snap.join("config.json")),
            ("model.safetensors", snap.join("model.safetensors")),
            ("sub/dir/notes.txt", snap.join("sub/dir/notes.txt")),
        ]
    );
    // Snapshots are relative symlinks into blobs/; the LFS blob is named by its sha256, the git file by its oid.
    let link = std::fs::read_link(snap.join("model.safetensors")).unwrap();
    assert_eq!(link, PathBuf::from(format!("../../blobs/{w_sha}")));
    let link = std::fs::read_link(snap.join("config.json")).unwrap();
    assert_eq!(link, PathBuf::from(format!("../../blobs/{}", &sha256_hex(CONFIG)[..40])));
    assert_eq!(std::fs::read_link(snap.join("sub/dir/notes.txt")).unwrap().components().count(), 6);
    assert_eq!(std::fs::read(snap.join("model.safetensors")).unwrap(), weights());
    assert_eq!(sha256_file(&snap.join("config.json")).unwrap(), sha256_hex(CONFIG));
    let blobs: Vec<String> = std::fs::read_dir(repo_dir(cache.path()).join("blobs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(blobs.iter().all(|b| !b.ends_with(".part")), "{blobs:?}");
    // hf-hub used Range requests: a 0-0 probe, then the body.
    let log = server.requests();
    assert!(log.iter().any(|l| l.starts_with(&format!("GET /cdn/{w_sha} bytes=0-")) && !l.ends_with("0-0")), "{log:?}");
    // A second fetch is served from the cache without a request.
    let n = server.requests().len();
    hub.fetch_all(&repo).unwrap();
    assert_eq!(server.requests().len(), n);
    server.stop();

    // Server gone: offline and online-with-cache both read the same files.
    let offline = Hub::new(HubOptions { offline: true, ..HubOptions::new(cache.path()) });
    assert_eq!(offline.fetch_all(&repo).unwrap(), got);
    let online = Hub::new(HubOptions { endpoint: "http://127.0.0.1:9".into(), ..HubOptions::new(cache.path()) });
    assert_eq!(online.fetch(&repo, "model.safetensors").unwrap(), snap.join("model.safetensors"));
}

#[test]
fn datasets_use_their_own_url_and_folder() {
    let cache = tempfile::tempdir().unwrap();
    let server = FakeHub::start("datasets/Org/tiny", vec![("train.jsonl", b"{\"q\": 1}\n".to_vec(), true)]);
    let repo = HubRepo::dataset("Org/tiny", COMMIT);
    let path = Hub::new(options(cache.path(), &server)).fetch(&repo, "train.jsonl").unwrap();
    assert_eq!(path, cache.path().join("datasets--Org--tiny/snapshots").join(COMMIT).join("train.jsonl"));
    server.stop();
}

#[test]
fn tampered_blobs_are_refused() {
    let cache = tempfile::tempdir().unwrap();
    let server = tiny_hub();
    let w_sha = sha256_hex(&weights());
    let pinned = HubRepo::model("Org/tiny", COMMIT)
        .with_file("config.json", Some(&sha256_hex(CONFIG)))
        .with_file("model.safetensors", Some(&w_sha));
    let hub = Hub::new(options(cache.path(), &server));
    hub.fetch_all(&pinned).unwrap();
    server.stop();
    let offline = Hub::new(HubOptions { offline: true, ..HubOptions::new(cache.path()) });
    let blob = repo_dir(cache.path()).join("blobs").join(&w_sha);
    let mut tampered = weights();
    tampered[1000] ^= 1;
    std::fs::write(&blob, &tampered).unwrap();
    let err = err_text(offline.fetch(&pinned, "model.safetensors"));
    for part in ["sha256 mismatch", "model.safetensors", "Org/tiny@", COMMIT, &w_sha, &sha256_hex(&tampered), "Delete"]
    {
        assert!(err.contains(part), "missing {part:?} in: {err}");
    }
    // Without a pin, the LFS blob's own name still catches it.
    let unpinned = HubRepo::model("Org/tiny", COMMIT);
    assert!(err_text(offline.fetch(&unpinned, "model.safetensors")).contains("LFS blob name"));
    // A git-tracked file is checked against its pin.
    let config_blob = std::fs::canonicalize(repo_dir(cache.path()).join("snapshots").join(COMMIT).join("config.json"));
    std::fs::write(config_blob.unwrap(), b"{}").unwrap();
    assert!(err_text(offline.fetch(&pinned, "config.json")).contains("sha256 mismatch for config.json"));
}

#[test]
fn wrong_pin_on_download_is_refused_and_deleting_the_blob_refetches() {
    let cache = tempfile::tempdir().unwrap();
    let server = tiny_hub();
    let hub = Hub::new(options(cache.path(), &server));
    let wrong = HubRepo::model("Org/tiny", COMMIT).with_file("model.safetensors", Some(&"0".repeat(64)));
    let err = err_text(hub.fetch(&wrong, "model.safetensors"));
    assert!(err.contains("sha256 mismatch") && err.contains(&"0".repeat(64)), "{err}");
    // Following the advice (delete the blob) makes the next fetch download it again through the dangling link.
    let w_sha = sha256_hex(&weights());
    std::fs::remove_file(repo_dir(cache.path()).join("blobs").join(&w_sha)).unwrap();
    let right = HubRepo::model("Org/tiny", COMMIT).with_file("model.safetensors", Some(&w_sha));
    let path = hub.fetch(&right, "model.safetensors").unwrap();
    assert_eq!(std::fs::read(path).unwrap(), weights());
    server.stop();
}

#[test]
fn moving_revisions_are_refused_unless_allowed() {
    let cache = tempfile::tempdir().unwrap();
    let server = tiny_hub();
    let main = HubRepo::model("Org/tiny", "main");
    let err = err_text(Hub::new(options(cache.path(), &server)).fetch(&main, "config.json"));
    assert!(
        err.contains("\"main\"") && err.contains("40-hex commit") && err.contains("--allow-moving-revision"),
        "{err}"
    );
    assert!(server.requests().is_empty(), "refused before any request: {:?}", server.requests());

    let allowed = Hub::new(HubOptions { allow_moving_revision: true, ..options(cache.path(), &server) });
    let snap = repo_dir(cache.path()).join("snapshots").join(COMMIT);
    // A git file goes through the Hub's relative 307 to /api/resolve-cache; an LFS file through the CDN.
    assert_eq!(allowed.fetch(&main, "config.json").unwrap(), snap.join("config.json"));
    assert_eq!(allowed.fetch(&main, "model.safetensors").unwrap(), snap.join("model.safetensors"));
    assert!(server.requests().iter().any(|l| l.starts_with("GET /api/resolve-cache/Org/tiny/")));
    assert_eq!(std::fs::read_to_string(repo_dir(cache.path()).join("refs/main")).unwrap(), COMMIT);
    server.stop();
    // Offline, the branch resolves through refs/main; the pinned commit reads the same snapshot.
    let offline = HubOptions { offline: true, allow_moving_revision: true, ..HubOptions::new(cache.path()) };
    assert_eq!(Hub::new(offline).fetch(&main, "config.json").unwrap(), snap.join("config.json"));
}

#[test]
fn missing_files_offline_are_a_clear_error() {
    let cache = tempfile::tempdir().unwrap();
    let offline = Hub::new(HubOptions { offline: true, ..HubOptions::new(cache.path()) });
    let err = err_text(offline.fetch(&HubRepo::model("Org/tiny", COMMIT), "config.json"));
    for part in ["config.json", "Org/tiny@", "offline mode is on", "r1lab hub fetch Org/tiny --revision", "snapshots"] {
        assert!(err.contains(part), "missing {part:?} in: {err}");
    }
}

#[test]
fn server_errors_surface_and_leave_no_file() {
    let cache = tempfile::tempdir().unwrap();
    let server = tiny_hub();
    server.faults().status.insert("config.json".into(), 500);
    let hub = Hub::new(options(cache.path(), &server));
    let repo = HubRepo::model("Org/tiny", COMMIT);
    let err = err_text(hub.fetch(&repo, "config.json"));
    assert!(err.contains("HTTP 500") && err.contains("config.json") && err.contains(&server.endpoint()), "{err}");
    assert!(!repo_dir(cache.path()).join("snapshots").join(COMMIT).join("config.json").exists());
    let err = err_text(hub.fetch(&repo, "nope.bin"));
    assert!(err.contains("HTTP 404") && err.contains("EntryNotFound"), "{err}");
    server.faults().wrong_commit = true;
    let err = err_text(hub.fetch(&repo, "sub/dir/notes.txt"));
    assert!(err.contains("different commit"), "{err}");
    server.stop();
    let err = err_text(hub.fetch(&repo, "model.safetensors"));
    assert!(err.contains("could not reach"), "{err}");
}

#[test]
fn a_cut_download_leaves_only_a_part_file_and_resumes() {
    let cache = tempfile::tempdir().unwrap();
    let server = tiny_hub();
    server.faults().truncate_once.push("model.safetensors".into());
    let w_sha = sha256_hex(&weights());
    let repo = HubRepo::model("Org/tiny", COMMIT).with_file("model.safetensors", Some(&w_sha));
    let hub = Hub::new(options(cache.path(), &server));
    let err = err_text(hub.fetch(&repo, "model.safetensors"));
    assert!(err.contains("model.safetensors"), "{err}");
    let blobs = repo_dir(cache.path()).join("blobs");
    assert!(!blobs.join(&w_sha).exists(), "no half-written blob");
    let part = std::fs::metadata(blobs.join(format!("{w_sha}.part"))).unwrap().len();
    assert_eq!(part as usize, weights().len() / 2);
    assert!(!repo_dir(cache.path()).join("snapshots").join(COMMIT).join("model.safetensors").exists());
    // The next fetch resumes from the .part with a Range request and verifies the whole file.
    let path = hub.fetch(&repo, "model.safetensors").unwrap();
    assert_eq!(std::fs::read(path).unwrap(), weights());
    let resume = format!("GET /cdn/{w_sha} bytes={part}-");
    assert!(server.requests().contains(&resume), "{:?}", server.requests());
    server.stop();
}

#[test]
fn cli_fetches_then_verifies_offline() {
    let cache = tempfile::tempdir().unwrap();
    let server = tiny_hub();
    let w_sha = sha256_hex(&weights());
    let run = |extra: &[&str]| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_r1lab"));
        cmd.args(["hub", "fetch", "Org/tiny", "--cache-dir"]).arg(cache.path()).args(extra);
        for var in ["HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN", "HF_HOME", "HF_HUB_CACHE"] {
            cmd.env_remove(var);
        }
        // Verification stamps go to the test's folder, not the user's ~/.cache/r1lab.
        cmd.env("R1LAB_CACHE", cache.path().join("r1lab"));
        cmd.output().unwrap()
    };
    let endpoint = server.endpoint();
    let sha_arg = format!("model.safetensors={w_sha}");
    let out = run(&["--endpoint", &endpoint, "--revision", COMMIT, "--file", "config.json", "--sha256", &sha_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let snap = repo_dir(cache.path()).join("snapshots").join(COMMIT);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout,
        format!(
            "config.json\t{}\nmodel.safetensors\t{}\n",
            snap.join("config.json").display(),
            snap.join("model.safetensors").display()
        )
    );
    assert_eq!(std::fs::read_dir(cache.path().join("r1lab/hub-verified")).unwrap().count(), 1, "one LFS blob stamped");
    server.stop();
    let out = run(&["--offline", "--revision", COMMIT, "--file", "config.json", "--sha256", &sha_arg]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = run(&["--offline", "--revision", "main", "--file", "config.json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-moving-revision"));
}

/// A cache as Python's `huggingface_hub` lays it out: no `refs/<commit>`, a `.locks/` folder, relative links.
#[test]
fn python_made_caches_are_read_offline() {
    let cache = tempfile::tempdir().unwrap();
    let dir = repo_dir(cache.path());
    let w_sha = sha256_hex(&weights());
    std::fs::create_dir_all(dir.join("blobs")).unwrap();
    std::fs::create_dir_all(dir.join("refs")).unwrap();
    std::fs::create_dir_all(dir.join("snapshots").join(COMMIT)).unwrap();
    std::fs::create_dir_all(cache.path().join(".locks/models--Org--tiny")).unwrap();
    std::fs::write(dir.join("blobs").join(&w_sha), weights()).unwrap();
    std::fs::write(dir.join("refs/main"), COMMIT).unwrap();
    let link = dir.join("snapshots").join(COMMIT).join("model.safetensors");
    std::os::unix::fs::symlink(format!("../../blobs/{w_sha}"), &link).unwrap();
    let pinned = HubRepo::model("Org/tiny", COMMIT).with_file("model.safetensors", Some(&w_sha));
    let offline = Hub::new(HubOptions { offline: true, ..HubOptions::new(cache.path()) });
    assert_eq!(offline.fetch(&pinned, "model.safetensors").unwrap(), link);
    let main = Hub::new(HubOptions { offline: true, allow_moving_revision: true, ..HubOptions::new(cache.path()) });
    assert_eq!(main.fetch(&HubRepo::model("Org/tiny", "main"), "model.safetensors").unwrap(), link);
    assert!(err_text(offline.fetch(&pinned, "config.json")).contains("offline mode is on"));
}

/// Interop with Python: `huggingface_hub` downloads from the same server, r1lab reads its cache offline.
/// Needs a Python with `huggingface_hub` (not in the project venv):
/// `R1LAB_HF_PYTHON=/path/to/python cargo test --test hub_download -- --ignored`.
#[test]
#[ignore = "needs R1LAB_HF_PYTHON: a python with huggingface_hub"]
fn python_downloads_then_r1lab_reads_offline() {
    let python = std::env::var("R1LAB_HF_PYTHON").expect("set R1LAB_HF_PYTHON to a python with huggingface_hub");
    let cache = tempfile::tempdir().unwrap();
    let server = tiny_hub();
    let script = format!(
        "from huggingface_hub import hf_hub_download as d\n\
         for f in ['config.json', 'model.safetensors', 'sub/dir/notes.txt']:\n    d('Org/tiny', f, revision='{COMMIT}', cache_dir={:?})\n\
         d('Org/tiny', 'config.json', revision='main', cache_dir={:?})\n",
        cache.path(),
        cache.path()
    );
    let out = std::process::Command::new(python)
        .args(["-c", &script])
        .env("HF_ENDPOINT", server.endpoint())
        .env("HF_HUB_DISABLE_TELEMETRY", "1")
        .env_remove("HF_HUB_OFFLINE")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.stop();
    assert!(!repo_dir(cache.path()).join("refs").join(COMMIT).exists(), "Python writes no ref for a commit");
    let repo = HubRepo::model("Org/tiny", COMMIT)
        .with_file("config.json", Some(&sha256_hex(CONFIG)))
        .with_file("model.safetensors", Some(&sha256_hex(&weights())))
        .with_file("sub/dir/notes.txt", None);
    let offline = HubOptions { offline: true, allow_moving_revision: true, ..HubOptions::new(cache.path()) };
    let hub = Hub::new(offline);
    let snap = repo_dir(cache.path()).join("snapshots").join(COMMIT);
    let got = hub.fetch_all(&repo).unwrap();
    assert!(got.iter().all(|(name, path)| *path == snap.join(name)), "{got:?}");
    assert_eq!(hub.fetch(&HubRepo::model("Org/tiny", "main"), "config.json").unwrap(), snap.join("config.json"));
}
