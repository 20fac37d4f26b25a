//! End-to-end tests of `r1lab bench`: the tiny config on the CPU with the smallest shapes (the numbers are not
//! checked, only that they are measured, reported and passed on), and the baseline plumbing with a stand-in
//! script that records what it was asked to run.
use std::path::Path;
use std::process::{Command, Output};

fn r1lab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_r1lab"))
        .args(["--device", "cpu", "bench"])
        .args(args)
        .env_remove("R1LAB_BENCH_PYTHON")
        .output()
        .expect("r1lab binary runs")
}

fn text(o: &Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/tiny-base/config.json");

fn report(dir: &Path, workload: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{workload}.json"))).unwrap()).unwrap()
}

#[test]
fn rollout_bench_measures_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let shape = ["--batch", "3", "--prompt-len", "6", "--new-tokens", "4", "--warmup", "0", "--iters", "2"];
    let o = r1lab(&[&["rollout", "--model", TINY, "--dtype", "f32", "--out", out][..], &shape].concat());
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("| decode roofline (% of bandwidth) |") && t.contains("| tokens/s |"), "{t}");
    let j = report(dir.path(), "rollout");
    assert_eq!(j["r1lab"]["measured"]["iter_times_s"].as_array().unwrap().len(), 2);
    let f = &j["r1lab"]["figures"];
    assert!(f["tokens_per_s"].as_f64().unwrap() > 0.0 && f["mfu"].as_f64().unwrap() > 0.0, "{f}");
    assert!(j["peaks"]["measured_flops"].as_f64().unwrap() > 0.0);
    assert!(j["r1lab"]["measured"]["peak_memory"].as_u64().unwrap() > 0);
    assert_eq!(j["shape"]["new_tokens"], 4);
    assert!(j["baseline"].is_null());
}

/// A stand-in for scripts/bench/hf_baseline.py: writes a fixed measurement and the arguments it got.
const FAKE_BASELINE: &str = r#"
import json, sys
args = sys.argv[1:]
out = args[args.index("--out") + 1]
json.dump({"iter_times_s": [2.0, 2.0, 4.0], "phases": {"forward_backward_s": 1.5, "optimizer_s": 0.5},
           "memory": {"device_used_peak_bytes": 1 << 30}, "versions": {"torch": "fake"}, "device": {"type": "cpu"},
           "argv": args}, open(out, "w"))
"#;

#[test]
fn update_bench_runs_the_baseline_with_the_same_workload_and_prints_ratios() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fake_baseline.py");
    std::fs::write(&script, FAKE_BASELINE).unwrap();
    let out = dir.path().join("reports");
    let o = r1lab(&[
        "update",
        "--model",
        TINY,
        "--dtype",
        "f32",
        "--batch",
        "4",
        "--micro-batch",
        "2",
        "--prompt-len",
        "5",
        "--response-len",
        "3",
        "--warmup",
        "0",
        "--iters",
        "1",
        "--recompute",
        "--baseline",
        "--python",
        "python3",
        "--script",
        script.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let t = text(&o);
    assert!(t.contains("| metric | r1lab | transformers/PyTorch | gain |"), "{t}");
    assert!(t.contains("| phase old_log_probs (s) |") && t.contains("| baseline phase optimizer_s (s) |"), "{t}");
    let j = report(&out, "update");
    let b = &j["baseline"];
    // The baseline's median step and the tokens/s and MFU derived from it with r1lab's formulas.
    assert_eq!(b["figures"]["step_time_s"], 2.0);
    assert_eq!(b["figures"]["tokens_per_s"], 4.0 * 8.0 / 2.0);
    let argv: Vec<String> = serde_json::from_value(b["raw"]["argv"].clone()).unwrap();
    for want in ["--workload=update", "--batch=4", "--micro-batch=2", "--response-len=3", "--gradient-checkpointing"] {
        assert!(argv.iter().any(|a| a == want), "{want} not passed: {argv:?}");
    }
    let config = argv.iter().find_map(|a| a.strip_prefix("--config=")).expect("a config is passed");
    let passed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    assert_eq!(passed["text_config"]["hidden_size"], 128, "the baseline builds the same model");
    assert_eq!(j["shape"]["recompute"], true);
    assert_eq!(j["shape"]["states"], "param_dtype");
}

#[test]
fn bad_inputs_name_what_is_wrong() {
    let o = r1lab(&["rollout", "--model", "/nonexistent/config.json", "--dtype", "f32"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("/nonexistent/config.json"), "{}", text(&o));
    let o = r1lab(&["update", "--model", TINY, "--states", "f16_master"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("f16_master"), "{}", text(&o));
    let o = r1lab(&["update", "--model", TINY, "--dtype", "f32", "--batch", "3", "--micro-batch", "2", "--iters", "1"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("micro_batch"), "{}", text(&o));
}
