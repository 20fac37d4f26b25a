//! `r1lab eval run` (lib/eval/bench/generate.rs, run.rs) with the tiny Qwen2.5-VL on CPU over the checked-in
//! benchmark fixtures: the CLI end to end with a Hub `repo@revision` model (reports, outputs, run.json), the exact
//! prompt of each preset (system prompt present or absent, image placement, pixel bounds), byte-identical outputs
//! for the same seed, resume after losing the last stored responses, average@k samples on AIME, and Vision-R1's
//! re-query rule (a random tiny model never closes `</answer>` in a few tokens, so every item is re-queried).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use r1lab::backend::DeviceSpec;
use r1lab::eval::bench::cli::{BenchArgs, EvalCommand};
use r1lab::eval::bench::generate::{GenRecord, Generator, image_config, render_prompt};
use r1lab::eval::bench::preset::{Preset, REVISUAL_SYSTEM_PROMPT};
use r1lab::eval::bench::run::{RunArgs, STORE_FILE, run};
use r1lab::eval::bench::{Benchmark, load};
use r1lab::model::qwen2_5_vl::model::run::load as load_model;
use r1lab::model::sampling::SamplingParams;
use r1lab::model::tiny::{TinyRepo, TinySpec, install};
use r1lab::processor::chat::ChatProcessor;
use r1lab::processor::image::ImageProcessorConfig;
use serde_json::Value;

struct Tiny {
    _dir: tempfile::TempDir,
    hub: PathBuf,
    repo: TinyRepo,
}

/// The tiny model installed once into a temporary Hub cache.
fn tiny() -> &'static Tiny {
    static T: OnceLock<Tiny> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let hub = dir.path().join("hub");
        let repo = install(&TinySpec::small(), &hub).unwrap();
        Tiny { _dir: dir, hub, repo }
    })
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bench").join(name)
}

fn args(benchmark: Benchmark, preset: Preset, out: &Path) -> RunArgs {
    let root = match benchmark {
        Benchmark::MathVista => fixture("mathvista"),
        Benchmark::Aime24 => fixture("aime24"),
        other => panic!("no fixture wired for {other}"),
    };
    RunArgs {
        benchmark,
        root,
        model: tiny().repo.snapshot.display().to_string(),
        preset,
        out: out.to_path_buf(),
        limit: Some(2),
        max_new_tokens: Some(5),
        batch: 4,
        seed: 3,
        dtype: "f32".into(),
        judge_url: None,
        judge_model: None,
        label: "tiny".into(),
    }
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn cli_end_to_end_with_a_hub_model_writes_reports_and_run_json() {
    let t = tiny();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("eval");
    let model = format!("{}@{}", t.repo.repo_id, t.repo.revision);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_r1lab"))
        .args(["eval", "run", "--benchmark", "mathvista_testmini", "--preset", "vision_r1", "--model", &model])
        .args(["--limit", "2", "--max-new-tokens", "6", "--batch", "2", "--seed", "11"])
        .arg("--root")
        .arg(fixture("mathvista"))
        .arg("--out")
        .arg(&out)
        .env("HF_HUB_CACHE", &t.hub)
        .env("HF_HUB_OFFLINE", "1")
        .env("R1LAB_CACHE", tmp.path().join("r1lab-cache"))
        .env("R1LAB_DEVICE", "cpu")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&o.stdout).starts_with("mathvista_testmini\taccuracy\t"), "{stderr}");
    for f in [
        "run.json",
        "outputs.jsonl",
        STORE_FILE,
        "items.jsonl",
        "benchmarks.parquet",
        "categories.parquet",
        "vision_r1_tab1.md",
        "revisual_r1_tab2.md",
    ] {
        assert!(out.join(f).is_file(), "missing {f}; stderr: {stderr}");
    }
    let rec: Value = serde_json::from_slice(&std::fs::read(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(rec["status"], "finished");
    assert_eq!(rec["model"]["repo"], t.repo.repo_id.as_str());
    assert_eq!(rec["model"]["revision"], t.repo.revision.as_str());
    let pinned: BTreeMap<&str, &str> = t.repo.files.iter().map(|(f, sha, _)| (f.as_str(), sha.as_str())).collect();
    for (f, sha) in &pinned {
        assert_eq!(rec["model"]["files"][f], *sha, "{f}");
    }
    assert_eq!(rec["settings"]["preset"], "vision_r1");
    assert_eq!(rec["settings"]["seed"], 11);
    let s = &rec["settings"]["sampling"];
    assert_eq!((s["temperature"].as_f64(), s["top_p"].as_f64(), s["top_k"].as_i64()), (Some(0.6), Some(0.95), Some(0)));
    assert_eq!(s["max_new_tokens"], 6);
    assert_eq!(rec["overrides"]["max_new_tokens"], serde_json::json!({"preset": 16000, "used": 6}));
    assert_eq!(rec["settings"]["protocol"]["requery"], "while_missing:</answer>:4");
    assert_eq!(rec["settings"]["protocol"]["system_prompt"], Value::Null);
    assert_eq!((rec["items"].as_u64(), rec["batch"].as_u64(), rec["device"].as_str()), (Some(2), Some(2), Some("cpu")));
    assert!(rec["start_time"].as_str().unwrap() <= rec["end_time"].as_str().unwrap());
    assert!(rec["code"].get("commit").is_some() && rec["r1lab_version"].is_string());
    assert_eq!(rec["extraction"]["kind"], "rules");
    assert_eq!(rec["metrics"][0]["kind"], "accuracy");
    for f in ["outputs.jsonl", "items.jsonl", "benchmarks.parquet", "vision_r1_tab1.md"] {
        assert_eq!(rec["outputs"][f].as_str().unwrap(), r1lab::io::sha256_file(&out.join(f)).unwrap(), "{f}");
    }
    // Re-query rule: a response is kept at the first try that closes </answer>, else after 4 extra tries.
    let outputs = read_jsonl(&out.join("outputs.jsonl"));
    assert_eq!(outputs.len(), 2);
    let mut extra = 0;
    for r in &outputs {
        let n = r["requeries"].as_u64().unwrap();
        let closed = r["response"].as_str().unwrap().contains("</answer>");
        assert!(n <= 4 && (closed || n == 4), "{r}");
        assert!(r["n_tokens"].as_u64().unwrap() <= 6);
        extra += n;
    }
    assert_eq!(rec["generation"]["requeries"], extra);
    assert!(extra > 0, "a random tiny model closes </answer> within 6 tokens at every try: {outputs:?}");
    let items = read_jsonl(&out.join("items.jsonl"));
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["response"], outputs[0]["response"]);
}

#[test]
fn each_preset_builds_its_prompt_exactly() {
    let dir = &tiny().repo.snapshot;
    let processor = ChatProcessor::from_dir(dir).unwrap();
    let items = load(Benchmark::MathVista, &fixture("mathvista")).unwrap();
    let item = &items[0];
    assert_eq!(item.images.len(), 1);
    let image = "<|vision_start|><|image_pad|><|vision_end|>";
    let q = &item.question;
    let default_system = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n";
    let revisual_system = format!("<|im_start|>system\n{REVISUAL_SYSTEM_PROMPT}<|im_end|>\n");
    let tail = "<|im_end|>\n<|im_start|>assistant\n";
    assert_eq!(
        render_prompt(&processor, Preset::VisionR1, item).unwrap(),
        format!("{default_system}<|im_start|>user\n{image}{q}{tail}")
    );
    assert_eq!(
        render_prompt(&processor, Preset::ReVisualR1, item).unwrap(),
        format!("{revisual_system}<|im_start|>user\n{image}{q}{tail}")
    );
    assert_eq!(
        render_prompt(&processor, Preset::ReVisualR1Repo, item).unwrap(),
        format!("{revisual_system}<|im_start|>user\n{q}{image}{tail}")
    );
    // Text-only (AIME): no image placeholder at all.
    let aime = load(Benchmark::Aime24, &fixture("aime24")).unwrap();
    let text = render_prompt(&processor, Preset::ReVisualR1, &aime[0]).unwrap();
    assert_eq!(text, format!("{revisual_system}<|im_start|>user\n{}{tail}", aime[0].question));

    // Pixel bounds: the 8x8 fixture image becomes 112x112 (the checkpoint's minimum, 16 merged tokens) under
    // Vision-R1 and 448x448 (ReVisual-R1's 256*28*28 minimum, 256 tokens) under ReVisual-R1.
    let (model, processor) = load_model(dir, tch::Device::Cpu, tch::Kind::Float).unwrap();
    let base = ImageProcessorConfig::from_file(&dir.join("preprocessor_config.json")).unwrap();
    let pad = i64::from(processor.tokenizer.special().image_pad);
    for (preset, grid, tokens) in [(Preset::VisionR1, [1, 8, 8], 16), (Preset::ReVisualR1, [1, 32, 32], 256)] {
        let g = Generator {
            model: &model,
            processor: &processor,
            images: image_config(preset, &base).unwrap(),
            preset,
            params: SamplingParams::default(),
            batch: 1,
            base_seed: 0,
        };
        let p = g.encode(0, item).unwrap();
        assert_eq!(p.grids, vec![grid], "{preset}");
        assert_eq!(p.input_ids.iter().filter(|&&t| t == pad).count(), tokens, "{preset}");
    }
}

#[test]
fn same_seed_gives_identical_bytes_and_resume_regenerates_only_the_lost_items() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    let mut cfg = args(Benchmark::MathVista, Preset::VisionR1, &a);
    cfg.limit = Some(3);
    cfg.batch = 1;
    let first = run(&cfg, DeviceSpec::Cpu).unwrap();
    assert_eq!(first.generation.unwrap().generated_now, 3);
    run(&RunArgs { out: b.clone(), ..cfg.clone() }, DeviceSpec::Cpu).unwrap();
    run(&RunArgs { out: c.clone(), seed: 4, ..cfg.clone() }, DeviceSpec::Cpu).unwrap();
    let bytes = |dir: &Path, f: &str| std::fs::read(dir.join(f)).unwrap();
    for f in ["outputs.jsonl", "items.jsonl", STORE_FILE, "benchmarks.parquet", "categories.parquet"] {
        assert_eq!(bytes(&a, f), bytes(&b, f), "{f} differs between two runs with the same seed");
    }
    assert_ne!(bytes(&a, "outputs.jsonl"), bytes(&c, "outputs.jsonl"), "another seed, other responses");

    // Lose the last two stored responses; the rerun generates exactly those, with the same bytes.
    let store = a.join(STORE_FILE);
    let text = std::fs::read_to_string(&store).unwrap();
    let kept: Vec<&str> = text.lines().take(1).collect();
    std::fs::write(&store, format!("{}\n", kept.join("\n"))).unwrap();
    let again = run(&cfg, DeviceSpec::Cpu).unwrap();
    let counts = again.generation.unwrap();
    assert_eq!((counts.generated_now, counts.resumed), (2, 1));
    assert_eq!(bytes(&a, "outputs.jsonl"), bytes(&b, "outputs.jsonl"));
    assert_eq!(bytes(&a, STORE_FILE), bytes(&b, STORE_FILE));
    // `outputs.jsonl` is an `eval bench --outputs` file (3 = every fixture item): rescoring it writes the same records.
    let bench = BenchArgs {
        benchmark: Benchmark::MathVista,
        root: fixture("mathvista"),
        outputs: a.join("outputs.jsonl"),
        out: tmp.path().join("rescored"),
        label: "tiny".into(),
        judge_url: None,
        judge_model: None,
    };
    r1lab::eval::bench::cli::run(&EvalCommand::Bench(bench)).unwrap();
    assert_eq!(bytes(&a, "items.jsonl"), bytes(&tmp.path().join("rescored"), "items.jsonl"));
    // Nothing left to generate: a third run only rescores.
    assert_eq!(run(&cfg, DeviceSpec::Cpu).unwrap().generation.unwrap().generated_now, 0);

    // Other generation settings into the same folder are refused, naming the difference.
    let err = format!("{:#}", run(&RunArgs { seed: 9, ..cfg.clone() }, DeviceSpec::Cpu).unwrap_err());
    assert!(err.contains("other settings") && err.contains("`seed` was 3, now 9"), "{err}");
}

#[test]
fn average_at_k_draws_k_samples_per_aime_item() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("aime");
    let mut cfg = args(Benchmark::Aime24, Preset::ReVisualR1, &out);
    cfg.batch = 16;
    cfg.max_new_tokens = Some(3);
    let rec = run(&cfg, DeviceSpec::Cpu).unwrap();
    let k = Preset::ReVisualR1.samples_per_item(Benchmark::Aime24);
    assert_eq!(k, 32);
    assert_eq!(rec.settings.protocol.samples_per_item, k);
    let counts = rec.generation.unwrap();
    assert_eq!((counts.generated_now, counts.requeries), (2 * k, 0), "ReVisual-R1 never re-queries");
    let outputs: Vec<GenRecord> = std::fs::read_to_string(out.join("outputs.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let items = load(Benchmark::Aime24, &fixture("aime24")).unwrap();
    for item in &items[..2] {
        let samples: Vec<usize> = outputs.iter().filter(|g| g.id == item.id).map(|g| g.sample).collect();
        assert_eq!(samples, (0..k).collect::<Vec<_>>(), "{}", item.id);
    }
    // k samples of one item are drawn from k different seeds, so they are not all the same response.
    let first: std::collections::BTreeSet<&str> =
        outputs.iter().filter(|g| g.id == items[0].id).map(|g| g.response.as_str()).collect();
    assert!(first.len() > 1, "{first:?}");
    assert_eq!(rec.metrics[0].samples, k);
    assert_eq!(rec.metrics[0].n, 2);
}

/// A loopback chat-completions server that answers `B` to every request; returns its base URL and request count.
fn judge_server() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let reply = serde_json::json!({
                "id": "c", "object": "chat.completion", "created": 0, "model": "judge-m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "B"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            })
            .to_string();
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (base, count)
}

#[test]
fn a_judge_extracts_the_answers_when_given() {
    let (url, requests) = judge_server();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("judged");
    let mut cfg = args(Benchmark::MathVista, Preset::VisionR1, &out);
    cfg.max_new_tokens = Some(3);
    cfg.judge_url = Some(url.clone());
    cfg.judge_model = Some("judge-m".into());
    let rec = run(&cfg, DeviceSpec::Cpu).unwrap();
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts/judge/v1/mathvista_extract.txt");
    let sha = r1lab::datagen::prompts::Template::new("t", &std::fs::read_to_string(template).unwrap()).sha256;
    assert_eq!(
        rec.extraction,
        serde_json::json!({"kind": "judge", "url": url, "model": "judge-m", "prompt_version": "v1",
                           "templates": {"mathvista_extract": sha}})
    );
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(out.join("judge/judge.json").is_file());
    let items = read_jsonl(&out.join("items.jsonl"));
    assert!(items.iter().all(|r| r["extraction"] == "B"), "{items:?}");
    // MathVista item 1 is multiple choice with answer B: right by the judge's extraction, whatever the tiny model said.
    assert_eq!((items[0]["id"].as_str(), items[0]["correct"].as_bool()), (Some("1"), Some(true)));
    // Resumed: the judge's store answers, no new request.
    run(&cfg, DeviceSpec::Cpu).unwrap();
    assert_eq!(requests.load(std::sync::atomic::Ordering::SeqCst), 2);
}
