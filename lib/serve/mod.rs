//! `r1lab serve` (issue 9): an OpenAI-compatible HTTP server over the tch Qwen2.5-VL, so that the data pipelines
//! (`crate::datagen`) and any OpenAI client can call a local checkpoint as they would call vLLM's
//! `vllm serve` (which the papers' authors used for generation at scale).
//!
//! - Routes: `POST /v1/chat/completions` ([`api::ChatRequest`] → [`api::ChatResponse`]), `GET /v1/models`,
//!   `GET /health`. Anything else is a 404 (unknown path) or 405 (wrong method), with an OpenAI error body.
//! - Threads: `threads` HTTP handler threads (`tiny_http`, synchronous) parse and validate requests
//!   ([`request::validate`]: 400 for malformed JSON or bad fields, 413 for bodies over
//!   [`request::Limits::max_body_bytes`] and oversized images) and queue them for the one model thread
//!   ([`worker`]), which batches everything waiting. At most `threads` requests are in flight; more wait in the
//!   listener's accept queue.
//! - Binds to `127.0.0.1` unless told otherwise; port 0 picks a free port ([`Server::addr`] reports it and the
//!   CLI prints `listening on http://ADDR`).
//! - A client that disconnects before its answer is ready is not an error: the answer is dropped.
//!
//! Deviations from vLLM's server: no streaming, no log-probabilities, no tools, no `/v1/completions`; stop
//! strings are cut after generation (see [`worker`]). Requests without a `seed` take seeds from a server
//! counter, so a run of requests is reproducible from a fresh server but not across concurrent orderings;
//! pipelines send explicit seeds.
pub mod api;
pub mod request;
pub mod worker;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow};
use tch::{Device, Kind};
use tiny_http::{Header, Method, Response};

use api::{ApiError, ChatRequest, ChatResponse, ModelCard, ModelList};
use request::Limits;
use worker::{Task, WorkerConfig, WorkerStats};

/// How to serve.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub model_dir: PathBuf,
    /// The name reported by `/v1/models` and in responses (requests may name any model).
    pub model_name: String,
    /// `127.0.0.1` by default.
    pub host: String,
    /// 0 picks a free port.
    pub port: u16,
    pub device: Device,
    pub kind: Kind,
    /// Most sequences per generate call.
    pub max_batch: usize,
    /// HTTP handler threads (= requests in flight).
    pub threads: usize,
    pub limits: Limits,
}

impl ServeOptions {
    /// Loopback, a free port, CPU f32, batches of up to 32 sequences, 16 handler threads, default limits.
    pub fn new(model_dir: PathBuf) -> Self {
        let model_name = model_dir.file_name().map_or("model".into(), |n| n.to_string_lossy().into_owned());
        Self {
            model_dir,
            model_name,
            host: "127.0.0.1".into(),
            port: 0,
            device: Device::Cpu,
            kind: Kind::Float,
            max_batch: 32,
            threads: 16,
            limits: Limits::default(),
        }
    }
}

/// A running server.
pub struct Server {
    addr: SocketAddr,
    http: Arc<tiny_http::Server>,
    stats: Arc<WorkerStats>,
    handlers: Vec<JoinHandle<()>>,
    worker: Option<JoinHandle<()>>,
}

impl Server {
    /// The bound address (the real port when started with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn stats(&self) -> &WorkerStats {
        &self.stats
    }

    /// Blocks until the server stops (it does not stop by itself: for the CLI).
    pub fn wait(mut self) {
        for h in self.handlers.drain(..) {
            let _ = h.join();
        }
    }

    /// Stops accepting, lets the in-flight requests finish, and joins every thread.
    pub fn shutdown(mut self) {
        for _ in 0..self.handlers.len() {
            self.http.unblock();
        }
        for h in self.handlers.drain(..) {
            let _ = h.join();
        }
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// Loads the model (on its worker thread) and starts listening; returns once the model is loaded.
pub fn start(opts: &ServeOptions) -> Result<Server> {
    anyhow::ensure!(opts.max_batch > 0 && opts.threads > 0, "--max-batch and --threads must be at least 1");
    let (tx, rx) = mpsc::channel::<Task>();
    let (ready_tx, ready_rx) = mpsc::channel();
    let stats = Arc::new(WorkerStats::default());
    let cfg = WorkerConfig {
        model_dir: opts.model_dir.clone(),
        device: opts.device,
        kind: opts.kind,
        max_batch: opts.max_batch,
    };
    let wstats = stats.clone();
    let worker = std::thread::Builder::new()
        .name("r1lab-serve-model".into())
        .spawn(move || worker::run(cfg, rx, wstats, ready_tx))
        .context("starting the model thread")?;
    ready_rx
        .recv()
        .context("the model thread stopped while loading")?
        .map_err(|e| anyhow!("loading {} for serving: {e}", opts.model_dir.display()))?;
    let http = tiny_http::Server::http((opts.host.as_str(), opts.port))
        .map_err(|e| anyhow!("cannot listen on {}:{}: {e} (is the port in use?)", opts.host, opts.port))?;
    let addr = http.server_addr().to_ip().context("the server is not bound to an IP address")?;
    let http = Arc::new(http);
    let mut handlers = Vec::with_capacity(opts.threads);
    for i in 0..opts.threads {
        let (http, tx, opts) = (http.clone(), tx.clone(), opts.clone());
        let h = std::thread::Builder::new()
            .name(format!("r1lab-serve-http-{i}"))
            .spawn(move || {
                while let Ok(req) = http.recv() {
                    handle(req, &tx, &opts);
                }
            })
            .context("starting an HTTP thread")?;
        handlers.push(h);
    }
    Ok(Server { addr, http, stats, handlers, worker: Some(worker) })
}

fn json_response(status: u16, body: &impl serde::Serialize) -> Response<std::io::Cursor<Vec<u8>>> {
    let bytes = serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec());
    let header = Header::from_bytes(&b"Content-Type"[..], &b"application/json"[..]).expect("static header");
    Response::from_data(bytes).with_status_code(status).with_header(header)
}

fn error_response(e: &ApiError) -> Response<std::io::Cursor<Vec<u8>>> {
    json_response(e.status, &e.body())
}

/// Answers one request; write errors (the client went away) are ignored.
fn handle(mut req: tiny_http::Request, tx: &mpsc::Sender<Task>, opts: &ServeOptions) {
    let path = req.url().split('?').next().unwrap_or("").trim_end_matches('/').to_string();
    let method = req.method().clone();
    let response = match (path.as_str(), &method) {
        ("/v1/models", Method::Get) => {
            let card =
                ModelCard { id: opts.model_name.clone(), object: "model".into(), created: 0, owned_by: "r1lab".into() };
            json_response(200, &ModelList { object: "list".into(), data: vec![card] })
        }
        ("/health", Method::Get) => json_response(200, &serde_json::json!({"status": "ok"})),
        ("/v1/chat/completions", Method::Post) => match chat(&mut req, tx, opts) {
            Ok(r) => json_response(200, &r),
            Err(e) => error_response(&e),
        },
        ("/v1/models" | "/health", _) | ("/v1/chat/completions", _) => {
            error_response(&ApiError::new(405, format!("method {method} is not allowed on {path}")))
        }
        _ => error_response(&ApiError::new(
            404,
            format!("no route {path}: use POST /v1/chat/completions or GET /v1/models"),
        )),
    };
    let _ = req.respond(response);
}

fn chat(req: &mut tiny_http::Request, tx: &mpsc::Sender<Task>, opts: &ServeOptions) -> Result<ChatResponse, ApiError> {
    let max = opts.limits.max_body_bytes;
    if req.body_length().is_some_and(|n| n > max) {
        return Err(ApiError::new(413, format!("request body over the limit of {max} bytes")));
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| ApiError::bad_request(format!("reading the request body failed: {e}")))?;
    if body.len() > max {
        return Err(ApiError::new(413, format!("request body over the limit of {max} bytes")));
    }
    let parsed: ChatRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("the body is not a valid chat completion request: {e}")))?;
    let model = parsed.model.clone().unwrap_or_else(|| opts.model_name.clone());
    let job = request::validate(parsed, &opts.limits)?;
    let (reply_tx, reply_rx) = mpsc::channel();
    tx.send(Task { job, reply: reply_tx }).map_err(|_| ApiError::new(503, "the model thread has stopped"))?;
    let done = reply_rx.recv().map_err(|_| ApiError::new(503, "the model thread has stopped"))??;
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    static NEXT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    Ok(ChatResponse {
        id: format!("chatcmpl-r1lab-{}", NEXT_ID.fetch_add(1, Ordering::Relaxed)),
        object: "chat.completion".into(),
        created,
        model,
        choices: done.choices,
        usage: done.usage,
    })
}
