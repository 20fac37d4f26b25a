//! The endpoint pipelines end to end (issue 9): `r1lab data bridge-endpoint` and `r1lab data curate` run as child
//! processes against `r1lab serve`'s server (in this process, tiny Qwen2.5-VL, loopback, ephemeral port) on
//! synthetic EasyR1 data; each run is killed with SIGKILL after some items are stored, then rerun, and every item
//! id must appear exactly once in the stored results and in the per-item outputs. The tiny model's outputs are
//! gibberish, so the filter drops (nearly) everything: what is checked is the bookkeeping (counts add up, the
//! stats match the stored results, prompt hashes recorded, resume skips what was done).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use r1lab::data::easyr1::read_parquet;
use r1lab::data::synthetic::export::export;
use r1lab::data::synthetic::{Config as SynthConfig, Family, Split};
use r1lab::model::tiny::{TinySpec, install};
use r1lab::serve::{ServeOptions, Server, start};
use serde_json::Value;

struct Setup {
    root: tempfile::TempDir,
    server: Server,
    input: PathBuf,
    ids: Vec<String>,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let spec = TinySpec::small();
    let repo = install(&spec, &root.path().join("hub")).unwrap();
    let mut opts = ServeOptions::new(repo.snapshot.clone());
    opts.threads = 4;
    let server = start(&opts).unwrap();
    let data = root.path().join("data");
    export(&data, &Family::ALL, &SynthConfig { seed: 0, level: 1, size: 112 }, Split::Train, 3).unwrap();
    let input = data.join("train.parquet");
    let ids = read_parquet(&input).unwrap().into_iter().map(|r| r.id).collect();
    Setup { root, server, input, ids }
}

fn prompts() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts").display().to_string()
}

fn spawn(args: &[String]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_r1lab")).args(args).env("R1LAB_DEVICE", "cpu").spawn().unwrap()
}

fn stored_ids(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().into())
        .collect()
}

/// Starts the pipeline, kills it once `at_least` items are stored (before all are), reruns it to the end.
/// Returns the number stored when killed.
fn kill_and_resume(args: &[String], results: &Path, at_least: usize, total: usize) -> usize {
    let mut child = spawn(args);
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let n = stored_ids(results).len();
        if n >= at_least {
            break;
        }
        assert!(child.try_wait().unwrap().is_none(), "the pipeline exited before storing {at_least} items");
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let status = child.wait().unwrap();
    let killed_at = stored_ids(results).len();
    assert!(!status.success() && killed_at < total, "the run finished ({killed_at}/{total}) before it was killed");
    let status = spawn(args).wait().unwrap();
    assert!(status.success(), "the resumed run failed");
    killed_at
}

fn assert_each_once(found: &[String], ids: &[String]) {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for f in found {
        *counts.entry(f.as_str()).or_default() += 1;
    }
    for id in ids {
        assert_eq!(counts.get(id.as_str()), Some(&1), "item {id} appears {:?} times", counts.get(id.as_str()));
    }
    assert_eq!(found.len(), ids.len(), "unexpected extra items");
}

fn common(s: &Setup, out: &Path) -> Vec<String> {
    [
        "--input",
        &s.input.display().to_string(),
        "--out",
        &out.display().to_string(),
        "--prompts",
        &prompts(),
        "--endpoint",
        &s.server.base_url(),
        "--concurrency",
        "1",
        "--backoff-s",
        "0.05",
    ]
    .iter()
    .map(|a| a.to_string())
    .collect()
}

#[test]
fn bridging_resumes_after_a_kill_without_losing_or_repeating_items() {
    let s = setup();
    let out = s.root.path().join("bridge");
    let mut args = vec!["data".to_string(), "bridge-endpoint".into()];
    args.extend(common(&s, &out));
    for a in ["--pseudo-cot-tokens", "6", "--description-tokens", "6", "--reasoning-tokens", "8"] {
        args.push(a.into());
    }
    let results = out.join("results.jsonl");
    let killed_at = kill_and_resume(&args, &results, 2, s.ids.len());
    assert_each_once(&stored_ids(&results), &s.ids);

    let stats: Value = serde_json::from_slice(&std::fs::read(out.join("bridge_stats.json")).unwrap()).unwrap();
    assert_eq!(stats["items"], s.ids.len());
    assert_eq!(stats["stored"], s.ids.len());
    assert_eq!(stats["skipped_on_resume"], killed_at);
    let c = &stats["counts"];
    let dropped: u64 =
        ["wrong_answer", "empty", "inconsistent", "reward_check"].iter().map(|k| c[k].as_u64().unwrap()).sum();
    assert_eq!(c["total"], s.ids.len());
    assert_eq!(c["kept"].as_u64().unwrap() + dropped, s.ids.len() as u64);
    assert!(stats["prompt_tokens"].as_u64().unwrap() > 0 && stats["completion_tokens"].as_u64().unwrap() > 0);
    for t in ["pseudo_cot", "description", "reasoning"] {
        assert_eq!(stats["prompts_sha256"][t].as_str().unwrap().len(), 64);
    }
    let verdicts: Vec<String> = std::fs::read_to_string(out.join("samples.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().into())
        .collect();
    assert_each_once(&verdicts, &s.ids);
    let sft = r1lab::data::sharegpt::read_json(&out.join("bridge.json")).unwrap();
    assert_eq!(sft.len() as u64, c["kept"].as_u64().unwrap());
    assert_eq!(read_parquet(&out.join("bridge_easyr1.parquet")).unwrap().len(), sft.len());
    // Every stored item went through the three steps.
    let first: Value =
        serde_json::from_str(std::fs::read_to_string(&results).unwrap().lines().next().unwrap()).unwrap();
    assert_eq!(first["value"]["usage"].as_array().unwrap().len(), 3);
    for step in 0..3 {
        assert!(first["value"]["usage"][step]["prompt_tokens"].as_u64().unwrap() > 0);
    }
    // A rerun of a finished output does nothing new; changed prompts are refused.
    let status = spawn(&args).wait().unwrap();
    assert!(status.success());
    assert_each_once(&stored_ids(&results), &s.ids);
    let stats: Value = serde_json::from_slice(&std::fs::read(out.join("bridge_stats.json")).unwrap()).unwrap();
    assert_eq!(stats["skipped_on_resume"], s.ids.len());
    let tampered = s.root.path().join("prompts");
    for (dir, files) in [("bridging/v1", ["pseudo_cot", "description", "reasoning"])] {
        std::fs::create_dir_all(tampered.join(dir)).unwrap();
        for f in files {
            let src = Path::new(&prompts()).join(dir).join(format!("{f}.txt"));
            let text = std::fs::read_to_string(src).unwrap() + if f == "reasoning" { "\n" } else { "" };
            std::fs::write(tampered.join(dir).join(format!("{f}.txt")), text).unwrap();
        }
    }
    let mut changed = args.clone();
    let i = changed.iter().position(|a| a == "--prompts").unwrap();
    changed[i + 1] = tampered.display().to_string();
    let out_run = Command::new(env!("CARGO_BIN_EXE_r1lab")).args(&changed).env("R1LAB_DEVICE", "cpu").output().unwrap();
    assert!(!out_run.status.success());
    assert!(String::from_utf8_lossy(&out_run.stderr).contains("prompt templates differ"));
}

#[test]
fn curation_resumes_after_a_kill_and_balances_by_topic() {
    let s = setup();
    let out = s.root.path().join("curate");
    let mut args = vec!["data".to_string(), "curate".into()];
    args.extend(common(&s, &out));
    for a in
        ["--k", "3", "--max-tokens", "8", "--balance", "topic", "--total", "4", "--min-pass", "0", "--max-pass", "1"]
    {
        args.push(a.into());
    }
    let results = out.join("results.jsonl");
    let killed_at = kill_and_resume(&args, &results, 2, s.ids.len());
    assert_each_once(&stored_ids(&results), &s.ids);
    let stats: Value = serde_json::from_slice(&std::fs::read(out.join("curation_stats.json")).unwrap()).unwrap();
    assert_eq!(stats["scored"], s.ids.len());
    assert_eq!(stats["skipped_on_resume"], killed_at);
    assert_eq!(stats["in_band"], s.ids.len());
    let hist_total: u64 = stats["pass_rate_histogram"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(hist_total, s.ids.len() as u64);
    for line in std::fs::read_to_string(&results).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["value"]["k"], 3);
        assert_eq!(v["value"]["answers"].as_array().unwrap().len(), 3);
    }
    // Four families, four selected: one per topic.
    let curated = read_parquet(&out.join("curated.parquet")).unwrap();
    assert_eq!(curated.len(), 4);
    let mut topics: Vec<String> = curated.iter().map(|r| r.id.split('-').next().unwrap().to_string()).collect();
    topics.sort();
    topics.dedup();
    assert_eq!(topics.len(), 4, "{topics:?}");
    for (k, v) in stats["per_key"].as_object().unwrap() {
        assert_eq!(v["selected"], 1, "{k}");
        assert_eq!(v["in_band"], 3, "{k}");
    }
}
