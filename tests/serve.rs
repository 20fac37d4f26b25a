//! `r1lab serve` on the tiny Qwen2.5-VL over loopback (issue 9): OpenAI-shaped completions with images, `n`,
//! seeds, stop strings and usage; concurrent requests batched with the same outputs as sequential ones;
//! malformed JSON, invalid fields, oversized bodies and images answered with 4xx and a message; cancelled
//! connections neither stop nor wedge the server.
use std::io::{Cursor, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, OnceLock};
use std::time::Duration;

use r1lab::model::tiny::{TinySpec, install};
use r1lab::serve::api::{ChatMessage, ChatRequest, ChatResponse, ModelList};
use r1lab::serve::request::{Limits, png_data_uri};
use r1lab::serve::{ServeOptions, Server, start};
use serde_json::{Value, json};

struct Shared {
    _root: tempfile::TempDir,
    snapshot: std::path::PathBuf,
    server: Server,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let spec = TinySpec::small();
        let repo = install(&spec, &root.path().join("hub")).unwrap();
        let mut opts = ServeOptions::new(repo.snapshot.clone());
        opts.model_name = "tiny".into();
        opts.threads = 12;
        opts.max_batch = 16;
        opts.limits = Limits { max_body_bytes: 256 << 10, max_image_bytes: 64 << 10, ..Limits::default() };
        let server = start(&opts).unwrap();
        Shared { _root: root, snapshot: repo.snapshot, server }
    })
}

fn url(path: &str) -> String {
    format!("http://{}{path}", shared().server.addr())
}

/// POSTs a raw body; returns (status, JSON body).
fn post(body: &str) -> (u16, Value) {
    let r = ureq::post(&url("/v1/chat/completions")).set("Content-Type", "application/json").send_string(body);
    let (code, resp) = match r {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(c, r)) => (c, r),
        Err(e) => panic!("transport error: {e}"),
    };
    (code, serde_json::from_str(&resp.into_string().unwrap()).unwrap())
}

fn chat(req: &ChatRequest) -> ChatResponse {
    let (code, v) = post(&serde_json::to_string(req).unwrap());
    assert_eq!(code, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

fn png(w: u32, h: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8 ^ seed, (y * 5) as u8, seed]));
    let mut out = Vec::new();
    img.write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png).unwrap();
    out
}

fn greedy(text: &str, max_tokens: usize) -> ChatRequest {
    ChatRequest {
        messages: vec![ChatMessage::text("user", text)],
        max_tokens: Some(max_tokens),
        temperature: Some(0.0),
        ..Default::default()
    }
}

#[test]
fn models_images_n_seeds_stop_and_usage() {
    let models: ModelList =
        serde_json::from_str(&ureq::get(&url("/v1/models")).call().unwrap().into_string().unwrap()).unwrap();
    assert_eq!(models.data[0].id, "tiny");

    let req = ChatRequest {
        messages: vec![
            ChatMessage::text("system", "You are a helpful assistant."),
            ChatMessage::user_with_images("How many bars are there?", &[png_data_uri(&png(56, 84, 3))]),
        ],
        max_tokens: Some(6),
        temperature: Some(1.0),
        n: Some(3),
        seed: Some(11),
        ..Default::default()
    };
    let a = chat(&req);
    assert_eq!(a.object, "chat.completion");
    assert_eq!(a.choices.len(), 3);
    let u = a.usage;
    assert!(u.prompt_tokens > 20, "the image's pad tokens count as prompt tokens: {u:?}");
    assert!(u.completion_tokens >= 3 && u.completion_tokens <= 18, "{u:?}");
    assert_eq!(u.total_tokens, u.prompt_tokens + u.completion_tokens);
    for c in &a.choices {
        assert!(c.finish_reason == "stop" || c.finish_reason == "length");
    }
    // Seeded: the same request gives the same samples.
    assert_eq!(chat(&req).texts(), a.texts());
    // A file path works like the data URI.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    std::fs::write(&path, png(56, 84, 3)).unwrap();
    let by_path = ChatRequest {
        messages: vec![
            ChatMessage::text("system", "You are a helpful assistant."),
            ChatMessage::user_with_images("How many bars are there?", &[path.display().to_string()]),
        ],
        ..req.clone()
    };
    assert_eq!(chat(&by_path).texts(), a.texts());

    // Stop strings cut the text before the first occurrence, finish_reason `stop`.
    let full = chat(&greedy("What is 7 plus 5?", 12));
    let text = &full.choices[0].message.content;
    assert!(text.chars().count() >= 2, "the tiny model produced {text:?}");
    let stop: String = text.chars().nth(1).unwrap().to_string();
    let cut = chat(&ChatRequest {
        stop: Some(r1lab::serve::api::Stop::One(stop.clone())),
        ..greedy("What is 7 plus 5?", 12)
    });
    assert_eq!(cut.choices[0].message.content, text[..text.find(&stop).unwrap()]);
    assert_eq!(cut.choices[0].finish_reason, "stop");
    assert!(cut.usage.completion_tokens <= full.usage.completion_tokens);
    assert_eq!(cut.usage.prompt_tokens, full.usage.prompt_tokens);
}

#[test]
fn concurrent_requests_are_batched_and_match_sequential_answers() {
    let prompts: Vec<String> = (0..8).map(|i| format!("Question {i}: what is {i} times {}?", i + 3)).collect();
    // Different max_tokens share a batch (each sequence is cut at its own limit).
    fn limit(i: usize) -> usize {
        4 + i % 3
    }
    fn ask(p: &str, i: usize) -> (String, String) {
        let r = chat(&greedy(p, limit(i)));
        assert!(r.usage.completion_tokens <= limit(i), "{:?}", r.usage);
        (r.texts()[0].clone(), r.choices[0].finish_reason.clone())
    }
    let sequential: Vec<(String, String)> = prompts.iter().enumerate().map(|(i, p)| ask(p, i)).collect();
    // Keep the model busy so that the next requests queue up together.
    let busy = std::thread::spawn(|| chat(&greedy("Describe a long bar chart in detail.", 48)));
    std::thread::sleep(Duration::from_millis(50));
    let barrier = Arc::new(Barrier::new(prompts.len()));
    let handles: Vec<_> = prompts
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, p)| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                b.wait();
                ask(&p, i)
            })
        })
        .collect();
    let concurrent: Vec<(String, String)> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    busy.join().unwrap();
    assert_eq!(concurrent, sequential);
    let stats = shared().server.stats();
    assert!(stats.max_batch_seen.load(Ordering::Relaxed) >= 2, "no batch of more than one sequence was run");
    assert!(stats.batches.load(Ordering::Relaxed) < stats.sequences.load(Ordering::Relaxed));
}

#[test]
fn bad_requests_get_4xx_with_messages() {
    let msg = |v: &Value| v["error"]["message"].as_str().unwrap_or_default().to_string();
    let (c, v) = post("{\"messages\": [");
    assert_eq!(c, 400);
    assert!(msg(&v).contains("not a valid chat completion request"), "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    let (c, v) = post("{\"model\": \"tiny\"}");
    assert_eq!(c, 400);
    assert!(msg(&v).contains("messages"), "{v}");
    let (c, v) = post(&json!({"messages": [{"role": "user", "content": "hi"}], "n": 0}).to_string());
    assert_eq!((c, v["error"]["param"].as_str()), (400, Some("n")));
    let (c, v) = post(&json!({"messages": [{"role": "user", "content": "hi"}], "stream": true}).to_string());
    assert_eq!((c, v["error"]["param"].as_str()), (400, Some("stream")));
    let (c, v) = post(&json!({"messages": [{"role": "user", "content": "hi"}], "logprobs": true}).to_string());
    assert!(c == 400 && msg(&v).contains("logprobs"), "{v}");
    // Oversize image (limit 64 KiB encoded): 413.
    let noisy = image::RgbImage::from_fn(200, 200, |x, y| {
        let h = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)).wrapping_mul(2_246_822_519);
        image::Rgb([(h >> 8) as u8, (h >> 16) as u8, (h >> 24) as u8])
    });
    let mut big = Vec::new();
    noisy.write_to(&mut Cursor::new(&mut big), image::ImageFormat::Png).unwrap();
    assert!(big.len() > 64 << 10 && big.len() < 200 << 10);
    let req =
        ChatRequest { messages: vec![ChatMessage::user_with_images("q", &[png_data_uri(&big)])], ..Default::default() };
    let (c, v) = post(&serde_json::to_string(&req).unwrap());
    assert!(c == 413 && msg(&v).contains("exceeds the limit"), "{c} {v}");
    // A corrupt image: 400.
    let req = ChatRequest {
        messages: vec![ChatMessage::user_with_images("q", &["data:image/png;base64,iVBORw0KGgoAAAA".into()])],
        ..Default::default()
    };
    assert_eq!(post(&serde_json::to_string(&req).unwrap()).0, 400);
    // An image the processor refuses (aspect ratio over 200) is this request's 400, not the batch's 500.
    let thin = ChatRequest {
        messages: vec![ChatMessage::user_with_images("q", &[png_data_uri(&png(1000, 4, 1))])],
        max_tokens: Some(2),
        ..Default::default()
    };
    let (c, v) = post(&serde_json::to_string(&thin).unwrap());
    assert!(c == 400 && msg(&v).contains("aspect ratio"), "{c} {v}");
    // Body over 256 KiB: 413.
    let (c, v) = post(&json!({"messages": [{"role": "user", "content": "x".repeat(300 << 10)}]}).to_string());
    assert!(c == 413 && msg(&v).contains("body"), "{c} {v}");
    // Routes and methods.
    match ureq::get(&url("/v1/chat/completions")).call() {
        Err(ureq::Error::Status(c, _)) => assert_eq!(c, 405),
        other => panic!("expected 405, got {other:?}"),
    }
    match ureq::get(&url("/v2/nothing")).call() {
        Err(ureq::Error::Status(c, r)) => {
            assert_eq!(c, 404);
            assert!(r.into_string().unwrap().contains("/v1/chat/completions"));
        }
        other => panic!("expected 404, got {other:?}"),
    }
}

fn raw(bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(shared().server.addr()).unwrap();
    s.write_all(bytes).unwrap();
    s
}

#[test]
fn cancelled_connections_leave_the_server_serving() {
    let stats = shared().server.stats();
    // Half a header, then gone.
    drop(raw(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Le"));
    // A body shorter than announced, then gone.
    drop(raw(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"messages\":"));
    // A full request whose client leaves before the answer.
    let body = serde_json::to_string(&greedy("Count the red circles.", 24)).unwrap();
    let head = format!("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", body.len());
    let sequences = stats.sequences.load(Ordering::Relaxed);
    let s = raw(format!("{head}{body}").as_bytes());
    s.shutdown(std::net::Shutdown::Both).unwrap();
    drop(s);
    // The abandoned request is still generated (its answer goes nowhere) and every handler keeps serving:
    // more concurrent requests than handler threads all succeed.
    let handles: Vec<_> =
        (0..14).map(|i| std::thread::spawn(move || chat(&greedy(&format!("Still there {i}?"), 3)))).collect();
    for h in handles {
        assert_eq!(h.join().unwrap().choices.len(), 1);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while stats.sequences.load(Ordering::Relaxed) < sequences + 15 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(stats.sequences.load(Ordering::Relaxed) >= sequences + 15, "the abandoned request was not generated");
    // Still serving.
    let ok = chat(&greedy("Still there?", 4));
    assert_eq!(ok.choices.len(), 1);
}

#[test]
fn the_cli_binds_loopback_on_a_free_port_and_reports_it() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_r1lab"))
        .args([
            "serve",
            "--model",
            &shared().snapshot.display().to_string(),
            "--port",
            "0",
            "--served-model-name",
            "cli",
        ])
        .env("R1LAB_DEVICE", "cpu")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    /// Kills the server even when an assertion fails first.
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line.trim().strip_prefix("listening on http://").unwrap_or_else(|| panic!("{line:?}")).to_string();
    assert!(addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"), "{addr}");
    let models = ureq::get(&format!("http://{addr}/v1/models")).call().map(|r| r.into_string().unwrap());
    drop(child);
    let models: ModelList = serde_json::from_str(&models.unwrap()).unwrap();
    assert_eq!(models.data[0].id, "cli");
}
