//! `r1lab run` end to end on the tiny Qwen2.5-VL (issues 5 and 6): a cold-start SFT manifest whose model comes
//! from the Hub cache, then a two-stage PTST GRPO manifest whose model is the SFT run's checkpoint (`parent_run`),
//! both leaving complete run records; and a run killed with SIGKILL after a checkpoint that `--resume` finishes
//! with exactly the parameters, `metrics.parquet`, `fingerprints.jsonl` and final metrics (byte for byte) of an
//! uninterrupted run of the same manifest.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use r1lab::data::synthetic::export::export;
use r1lab::data::synthetic::{Config as SynthConfig, Family, Split};
use r1lab::hub::HubOptions;
use r1lab::model::tiny::{TinySpec, install};
use r1lab::pipeline::{RunOptions, run_manifest};
use r1lab::repro::checkpoint;
use r1lab::repro::record::{CodeState, RunRecord, Status, run_id};

struct Setup {
    root: tempfile::TempDir,
    hub: HubOptions,
    model_source: String,
}

fn setup() -> Setup {
    let root = tempfile::tempdir().unwrap();
    let hub = HubOptions { offline: true, ..HubOptions::new(root.path().join("hub")) };
    let spec = TinySpec::small();
    let repo = install(&spec, &hub.cache_dir).unwrap();
    let files: Vec<String> = repo.files.iter().map(|(f, h, _)| format!("\"{f}\" = \"{h}\"")).collect();
    let model_source = format!(
        "{{ kind = \"hub\", repo = \"{}\", revision = \"{}\", files = {{ {} }} }}",
        repo.repo_id,
        repo.revision,
        files.join(", ")
    );
    let cfg = SynthConfig { seed: 0, level: 1, size: 112 };
    let data = root.path().join("data");
    export(&data.join("rl"), &Family::ALL, &cfg, Split::Train, 3).unwrap();
    export(&data.join("rl"), &Family::ALL, &cfg, Split::Test, 2).unwrap();
    common::bridged_data(&data.join("cold"), 6);
    Setup { root, hub, model_source }
}

fn header(id: &str, parent: Option<&str>) -> String {
    let parent = parent.map(|p| format!("parent = \"{p}\"\n")).unwrap_or_default();
    format!(
        "schema_version = 1\nid = \"{id}\"\nlock = {{ state = \"unlocked\", reason = \"test\" }}\n\
         [paper]\narxiv = \"2503.06749\"\nversion = \"v4\"\nsection = \"test\"\n\
         [stage]\nname = \"{}\"\n{parent}",
        id.split('/').nth(1).unwrap()
    )
}

const EVAL: &str = "[[eval]]\nname = \"heldout\"\nsource = { kind = \"local\", path = \"data/rl\" }\nsplit = \"test\"\n\
                    max_new_tokens = 8\ntemperature = 0.6\ntop_p = 0.95\n";

fn sft_manifest(s: &Setup, id: &str, epochs: u32, every: u64) -> PathBuf {
    let text = format!(
        "{}[model]\nsource = {}\ndtype = \"f32\"\n\
         [data]\nsource = {{ kind = \"local\", path = \"data/cold\" }}\nsplit = \"train_bridge\"\n\
         [seeds]\nbase = 3\n\
         [train]\nalgo = \"sft\"\nepochs = {epochs}\nglobal_batch = 4\ngrad_accumulation = 2\nmax_length = 512\n\
         freeze_vision = false\nfreeze_merger = false\nmodality = \"multimodal\"\n\
         [train.optimizer]\nlr = 1e-3\nbetas = [0.9, 0.999]\neps = 1e-8\nweight_decay = 0.0\ngrad_clip = 1.0\n\
         schedule = \"cosine\"\nwarmup_ratio = 0.1\n{EVAL}[checkpoint]\nevery_steps = {every}\ninclude_optimizer = true\n",
        header(id, None),
        s.model_source
    );
    let path = s.root.path().join(format!("{}.toml", id.replace('/', "_")));
    std::fs::write(&path, text).unwrap();
    path
}

fn grpo_manifest(s: &Setup, parent: &str) -> PathBuf {
    let text = format!(
        "{}[model]\nsource = {{ kind = \"parent_run\", stage = \"{parent}\" }}\ndtype = \"f32\"\n\
         [data]\nsource = {{ kind = \"local\", path = \"data/rl\" }}\nsplit = \"train\"\n\
         [seeds]\nbase = 3\n\
         [train]\nalgo = \"grpo\"\nschedule = [{{ max_new_tokens = 8, group_size = 4, steps = 1 }}, \
         {{ max_new_tokens = 16, group_size = 2, steps = 1 }}]\n\
         carry_over = {{ optimizer = \"reset\", reference = \"stage_init\" }}\nrollout_batch_prompts = 2\n\
         update_batch_prompts = 1\nmicro_batch = 4\nppo_epochs = 1\nfreeze_vision = false\n\
         sampling = {{ temperature = 1.0, top_p = 1.0, max_prompt_tokens = 256 }}\nreward = {{ kind = \"vision_r1_hard\" }}\n\
         advantage = {{ estimator = {{ kind = \"grpo\", eps = 1e-6 }}, singleton = \"zero_mean_unit_std\", zero_variance = \"torch_numerics\" }}\n\
         surrogate = {{ kind = \"ppo_clip\", eps_low = 0.2, eps_high = 0.2 }}\nlog_ratio_clamp = {{ kind = \"none\" }}\n\
         aggregation = {{ kind = \"micro_batch_token_mean\" }}\nkl = {{ estimator = \"k3\", coef = 1e-2 }}\n\
         [train.optimizer]\nlr = 1e-4\nbetas = [0.9, 0.999]\neps = 1e-8\nweight_decay = 1e-2\ngrad_clip = 1.0\n\
         schedule = \"constant\"\nwarmup_ratio = 0.0\n{EVAL}every_steps = 1\n[checkpoint]\nevery_steps = 1\ninclude_optimizer = true\n",
        header("pipe_test/ptst", Some(parent)),
    );
    let path = s.root.path().join("ptst.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn opts(s: &Setup, runs: &Path) -> RunOptions {
    common::test_run_options(s.root.path(), runs, &s.hub)
}

#[test]
fn cold_start_then_ptst_leave_complete_records() {
    let s = setup();
    let runs = s.root.path().join("runs");
    let sft = run_manifest(&sft_manifest(&s, "pipe_test/cold_start", 1, 2), &opts(&s, &runs)).unwrap();
    assert!(sft.record.is_complete());
    assert!(sft.record.inputs.keys().any(|k| k == "model/model.safetensors"), "{:?}", sft.record.inputs);
    for k in ["loss", "heldout.acc", "heldout.format", "heldout.len"] {
        assert!(sft.final_metrics.contains_key(k), "{k} missing from {:?}", sft.final_metrics);
    }
    let ckpt = checkpoint::latest(&sft.dir).unwrap().expect("a final checkpoint");
    assert!(sft.dir.join("metrics.parquet").is_file() && sft.dir.join("eval").is_dir());

    let rl = run_manifest(&grpo_manifest(&s, "pipe_test/cold_start"), &opts(&s, &runs)).unwrap();
    let parent_key = format!("parent/pipe_test/cold_start@{}", ckpt.step());
    assert_eq!(rl.record.inputs.get(&parent_key), Some(&ckpt.record.params_sha256), "{:?}", rl.record.inputs);
    // The child's run id is keyed on the parent checkpoint it resolved: a retrained parent makes a new child run.
    let code = CodeState::detect(s.root.path());
    let manifest = &rl.record.manifest;
    let with_parent = run_id(manifest, &code, Some(&ckpt.record.params_sha256)).unwrap();
    assert_eq!(rl.record.run_id, with_parent);
    assert_ne!(with_parent, run_id(manifest, &code, Some(&"0".repeat(64))).unwrap());
    for k in ["reward_mean", "kl", "stage", "heldout.acc"] {
        assert!(rl.final_metrics.contains_key(k), "{k} missing from {:?}", rl.final_metrics);
    }
    assert_eq!(rl.final_metrics["stage"], 1.0, "the second PTST stage ran last");
    assert!(!rl.final_metrics.contains_key("time_rollout_s"), "wall-clock values belong in timing.parquet");
    assert!(rl.dir.join("timing.parquet").is_file() && rl.dir.join("fingerprints.jsonl").is_file());
    for seg in ["samples/step000001-000001.parquet", "samples/step000002-000002.parquet"] {
        assert!(rl.dir.join(seg).is_file(), "{seg} missing");
    }
    assert_eq!(checkpoint::latest(&rl.dir).unwrap().unwrap().step(), 2);
    // Evaluation draws do not depend on the step (common random numbers, eval::heldout): PTST's step-0 evaluation of
    // the cold start's final weights, sampled at T 0.6 with the same base seed, repeats the cold start's final one.
    let read = |p: PathBuf| std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let sft_final = read(sft.dir.join(format!("eval/heldout-step{:06}.jsonl", ckpt.step())));
    assert!(!sft_final.is_empty());
    assert_eq!(read(rl.dir.join("eval/heldout-step000000.jsonl")), sft_final);
}

fn cli(s: &Setup, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_r1lab"));
    c.current_dir(s.root.path()).env("HF_HUB_CACHE", &s.hub.cache_dir).env("HF_HUB_OFFLINE", "1");
    c.env_remove("HF_HOME").args(["--device", "cpu"]).args(args);
    c
}

#[test]
fn a_killed_run_resumes_to_the_uninterrupted_result() {
    let s = setup();
    let manifest = sft_manifest(&s, "pipe_test/long", 6, 2);
    let m = manifest.to_str().unwrap();
    let straight = run_manifest(&manifest, &opts(&s, &s.root.path().join("straight"))).unwrap();
    let want = checkpoint::latest(&straight.dir).unwrap().unwrap();

    let runs = s.root.path().join("killed");
    let mut child = cli(&s, &["run", m, "--runs", runs.to_str().unwrap(), "--quiet"]).spawn().unwrap();
    let run_dir = runs.join(&straight.record.run_id);
    let t0 = Instant::now();
    while checkpoint::latest(&run_dir).ok().flatten().is_none() {
        assert!(t0.elapsed() < Duration::from_secs(300), "no checkpoint after 300 s");
        assert!(child.try_wait().unwrap().is_none(), "the run ended before it could be killed");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let rec = RunRecord::read(&run_dir).unwrap();
    assert_eq!(rec.status, Status::Running, "a killed run's record still says running");
    let first = checkpoint::latest(&run_dir).unwrap().unwrap().step();
    assert!(first < want.step(), "killed at step {first}, after the end");

    // Resumed by its run folder (`r1lab run --resume RUN_DIR`).
    let out = cli(&s, &["run", run_dir.to_str().unwrap(), "--quiet", "--resume"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rec = RunRecord::require_complete(&run_dir).unwrap();
    assert_eq!(rec.manifest_sha256, straight.record.manifest_sha256);
    let got = checkpoint::latest(&run_dir).unwrap().unwrap();
    assert_eq!(got.step(), want.step());
    assert_eq!(got.record.params_sha256, want.record.params_sha256, "resumed parameters differ");
    for f in ["metrics.parquet", "fingerprints.jsonl", "final_metrics.json"] {
        let (a, b) = (std::fs::read(straight.dir.join(f)).unwrap(), std::fs::read(run_dir.join(f)).unwrap());
        assert!(a == b, "{f} of the resumed run differs from the uninterrupted run's");
    }
    assert!(run_dir.join("timing.parquet").is_file());
    let again = cli(&s, &["run", m, "--runs", runs.to_str().unwrap(), "--quiet", "--resume"]).output().unwrap();
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("already finished"));
}
