//! `r1lab lock`, `r1lab run --require-locked`, `r1lab replay` and `r1lab sweep` end to end on the tiny
//! Qwen2.5-VL (issue 5 items 2, 5, 6), with short SFT stages so that every test runs in seconds on a CPU:
//!
//! - locking a manifest whose model is a Hub branch (`main`, resolved through the offline cache's refs) and whose
//!   data is a local folder pins both; the locked copy runs under `--require-locked`, the unlocked original is
//!   refused, and a changed data file or model blob is refused naming the file;
//! - a replay of a finished run reaches L1 for all its steps; after the record's fingerprints are edited it names
//!   the first diverging step and field; after a data file changed it stops below L0, naming the file;
//! - a 2 values × 2 seeds sweep writes a 4-row table and a 2-cell summary; an unknown key or an invalid combination
//!   stops the sweep before anything runs. (The manifest loader's own refusals of unknown keys and invalid
//!   combinations are tested in `lib/repro/manifest/tests.rs`: `unknown_keys_are_refused_at_every_level`,
//!   `other_invalid_combinations_name_their_key`.)
mod common;

use std::path::{Path, PathBuf};

use polars::prelude::{ParquetReader, SerReader};
use r1lab::data::synthetic::Split;
use r1lab::hub::Hub;
use r1lab::pipeline::resolve::Roots;
use r1lab::pipeline::{RunControl, RunOptions, run_manifest_with};
use r1lab::repro::lock::lock_file;
use r1lab::repro::manifest::{Manifest, Source};
use r1lab::repro::record::{CodeState, run_id};
use r1lab::repro::replay::replay;
use r1lab::repro::sweep::{Axis, SweepSpec, run_or_reuse, run_sweep};

/// A temp folder with the tiny model in an offline Hub cache (`refs/main` → its commit) and cold-start data.
type Setup = common::Workspace;

fn setup() -> Setup {
    let s = Setup::new();
    common::bridged_data(&s.root.path().join("data/cold"), 3);
    let cfg = r1lab::data::synthetic::Config { seed: 0, level: 1, size: 112 };
    let families = r1lab::data::synthetic::Family::ALL;
    r1lab::data::synthetic::export::export(&s.root.path().join("data/rl"), &families, &cfg, Split::Train, 2).unwrap();
    s
}

/// An unlocked SFT manifest: the model by branch name, the data by folder, `examples` records in batches of 4.
fn manifest(s: &Setup, name: &str, examples: u64) -> PathBuf {
    let text = format!(
        "schema_version = 1\nid = \"lock_test/{name}\"\nlock = {{ state = \"unlocked\", reason = \"hand-written\" }}\n\
         [paper]\narxiv = \"2503.06749\"\nversion = \"v4\"\nsection = \"test\"\n[stage]\nname = \"{name}\"\n\
         [model]\nsource = {{ kind = \"hub\", repo = \"r1lab/tiny-qwen2.5-vl\", revision = \"main\" }}\ndtype = \"f32\"\n\
         [data]\nsource = {{ kind = \"local\", path = \"data/cold\" }}\nsplit = \"train_bridge\"\n\
         filters = {{ max_examples = {examples} }}\n[seeds]\nbase = 5\n\
         [train]\nalgo = \"sft\"\nepochs = 1\nglobal_batch = 4\ngrad_accumulation = 2\nmax_length = 512\n\
         freeze_vision = false\nfreeze_merger = false\nmodality = \"multimodal\"\n\
         [train.optimizer]\nlr = 1e-3\nbetas = [0.9, 0.999]\neps = 1e-8\nweight_decay = 0.0\ngrad_clip = 1.0\n\
         schedule = \"cosine\"\nwarmup_ratio = 0.1\n[checkpoint]\nevery_steps = 2\ninclude_optimizer = false\n"
    );
    let path = s.root.path().join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// [`manifest`] locked: the runnable copy (an unlocked `main` revision is refused by the Hub layer).
fn locked_manifest(s: &Setup, name: &str, examples: u64) -> PathBuf {
    s.lock(&manifest(s, name, examples))
}

fn opts(s: &Setup) -> RunOptions {
    s.run_options()
}

fn roots(s: &Setup) -> Roots {
    s.roots()
}

const LOCKED: RunControl = RunControl { require_locked: true, max_steps: None, record_root: None };

/// Appends a byte to `path` (following a cache symlink to its blob) and returns the original bytes.
fn tamper(path: &Path) -> Vec<u8> {
    let before = std::fs::read(path).unwrap();
    let mut after = before.clone();
    after.push(b' ');
    std::fs::write(path, after).unwrap();
    before
}

#[test]
fn lock_pins_inputs_and_run_refuses_unlocked_or_tampered_inputs() {
    let s = setup();
    let path = manifest(&s, "locking", 8);
    let err = format!("{:#}", run_manifest_with(&path, &opts(&s), &LOCKED).unwrap_err());
    assert!(err.contains("is not locked") && err.contains("r1lab lock"), "{err}");

    let (locked_path, report) = lock_file(&path, &roots(&s), &Hub::new(s.hub.clone())).unwrap();
    assert!(report.is_locked(), "{:?}", report.unresolved);
    assert_eq!(locked_path, s.root.path().join("locking.lock.toml"));
    assert!(std::fs::read_to_string(&path).unwrap().contains("revision = \"main\""), "the original is untouched");
    let m = Manifest::load(&locked_path).unwrap();
    let Source::Hub { revision, files, .. } = &m.model.source else { panic!("{:?}", m.model.source) };
    assert_eq!(revision, &s.revision, "main resolved offline through refs/main");
    assert!(files.contains_key("model.safetensors") && files.contains_key("config.json"), "{files:?}");
    let Source::Local { files: data_files, .. } = &m.data.source else { panic!() };
    assert_eq!(data_files.keys().collect::<Vec<_>>(), ["train_bridge.json"]);

    let out = run_manifest_with(&locked_path, &opts(&s), &LOCKED).unwrap();
    assert!(out.record.is_complete() && out.record.manifest.is_locked());

    let data = s.root.path().join("data/cold/train_bridge.json");
    let original = tamper(&data);
    let err = format!("{:#}", run_manifest_with(&locked_path, &opts(&s), &LOCKED).unwrap_err());
    assert!(err.contains("train_bridge.json") && err.contains("the manifest pins"), "{err}");
    std::fs::write(&data, original).unwrap();

    let snapshot = s.hub.cache_dir.join("models--r1lab--tiny-qwen2.5-vl/snapshots").join(&s.revision);
    tamper(&snapshot.join("model.safetensors"));
    let err = format!("{:#}", run_manifest_with(&locked_path, &opts(&s), &LOCKED).unwrap_err());
    assert!(err.contains("sha256 mismatch for model.safetensors"), "{err}");
}

#[test]
fn replay_reaches_l1_and_names_the_first_divergence() {
    let s = setup();
    let out = run_manifest_with(&locked_manifest(&s, "replayed", 12), &opts(&s), &RunControl::default()).unwrap();
    let recorded = std::fs::read_to_string(out.dir.join("fingerprints.jsonl")).unwrap();
    let n = recorded.lines().count() as u64;
    assert!(n >= 2, "{n} steps: the divergence test needs 2");

    let r = replay(&out.dir, &opts(&s), None).unwrap();
    assert!(r.l0.passed && r.l0.manifest_round_trip && r.l0.input_differences.is_empty(), "{:#?}", r.l0);
    assert_eq!((r.level.as_str(), r.l1.steps_compared), ("L1", n), "{r:#?}");
    assert_eq!(r.summary, format!("L1 reached for {n} steps"));
    assert!(out.dir.join("replay-1/replay.json").is_file());

    // Perturb the record: step 2's grad norm.
    let mut lines: Vec<serde_json::Value> = recorded.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    lines[1]["grad_norm"] = serde_json::Value::String(format!("{:016x}", 1.5f64.to_bits()));
    let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(out.dir.join("fingerprints.jsonl"), text).unwrap();
    let r = replay(&out.dir, &opts(&s), Some(2)).unwrap();
    assert_eq!(r.level, "L0", "{r:#?}");
    let d = r.l1.first_divergence.as_ref().unwrap();
    assert_eq!((d.step, d.field.as_str()), (2, "grad_norm"));
    assert_eq!(r.summary, "L0 reached; L1 diverged at step 2 in field grad_norm");
    assert!(out.dir.join("replay-2/replay.json").is_file());

    tamper(&s.root.path().join("data/cold/train_bridge.json"));
    let r = replay(&out.dir, &opts(&s), None).unwrap();
    assert_eq!(r.level, "none");
    assert!(!r.l1.attempted);
    let err = r.l0.error.as_deref().unwrap_or_default();
    assert!(err.contains("train_bridge.json") && err.contains("the manifest pins"), "{r:#?}");
}

/// A locked three-step PTST GRPO manifest (2 + 1 steps) on the tiny model, no evaluation.
fn grpo_manifest(s: &Setup) -> PathBuf {
    let sft = std::fs::read_to_string(manifest(s, "grpo", 8)).unwrap();
    let head = &sft[..sft.find("[data]").unwrap()];
    let text = format!(
        "{head}[data]\nsource = {{ kind = \"local\", path = \"data/rl\" }}\nsplit = \"train\"\n[seeds]\nbase = 5\n\
         [train]\nalgo = \"grpo\"\nschedule = [{{ max_new_tokens = 8, group_size = 2, steps = 2 }}, \
         {{ max_new_tokens = 8, group_size = 2, steps = 1 }}]\n\
         carry_over = {{ optimizer = \"reset\", reference = \"stage_init\" }}\nrollout_batch_prompts = 2\n\
         update_batch_prompts = 1\nmicro_batch = 2\nppo_epochs = 1\nfreeze_vision = false\n\
         sampling = {{ temperature = 1.0, top_p = 1.0, max_prompt_tokens = 256 }}\nreward = {{ kind = \"vision_r1_hard\" }}\n\
         advantage = {{ estimator = {{ kind = \"grpo\", eps = 1e-6 }}, singleton = \"zero_mean_unit_std\", zero_variance = \"torch_numerics\" }}\n\
         surrogate = {{ kind = \"ppo_clip\", eps_low = 0.2, eps_high = 0.2 }}\nlog_ratio_clamp = {{ kind = \"none\" }}\n\
         aggregation = {{ kind = \"micro_batch_token_mean\" }}\nkl = {{ estimator = \"k3\", coef = 1e-2 }}\n\
         [train.optimizer]\nlr = 1e-3\nbetas = [0.9, 0.999]\neps = 1e-8\nweight_decay = 0.0\ngrad_clip = 1.0\n\
         schedule = \"constant\"\nwarmup_ratio = 0.0\n[checkpoint]\nevery_steps = 2\ninclude_optimizer = false\n"
    );
    let path = s.root.path().join("grpo.toml");
    std::fs::write(&path, text).unwrap();
    let (locked, report) = lock_file(&path, &roots(s), &Hub::new(s.hub.clone())).unwrap();
    assert!(report.is_locked(), "{:?}", report.unresolved);
    locked
}

#[test]
fn grpo_replay_of_a_prefix_reaches_l1() {
    let s = setup();
    let out = run_manifest_with(&grpo_manifest(&s), &opts(&s), &RunControl::default()).unwrap();
    let recorded = std::fs::read_to_string(out.dir.join("fingerprints.jsonl")).unwrap();
    assert_eq!(recorded.lines().count(), 3);
    let r = replay(&out.dir, &opts(&s), Some(2)).unwrap();
    assert_eq!((r.level.as_str(), r.l1.steps_compared), ("L1", 2), "{r:#?}");
    let replayed = PathBuf::from(r.l1.replay_run.unwrap()).join("fingerprints.jsonl");
    let lines = std::fs::read_to_string(replayed).unwrap();
    assert_eq!(lines.lines().count(), 2, "the replay stopped after 2 of 3 steps");
    assert!(recorded.starts_with(&lines), "tokens, rewards, advantages, loss and norm bits of steps 1-2 are equal");
}

#[test]
fn sweep_writes_the_grid_table_and_refuses_bad_cells_up_front() {
    let s = setup();
    let path = locked_manifest(&s, "swept", 8);
    let out = s.root.path().join("sweep");
    let spec =
        |set: &str| SweepSpec { axes: vec![Axis::parse(set).unwrap()], seeds: vec![1, 2], metric: "loss".into() };
    let err = format!("{:#}", run_sweep(&path, &spec("train.optimizer.lrr=1e-3"), &opts(&s), &out).unwrap_err());
    assert!(err.contains("lrr") && err.contains("cell 0"), "{err}");
    let err = format!("{:#}", run_sweep(&path, &spec("train.grad_accumulation=2,3"), &opts(&s), &out).unwrap_err());
    assert!(err.contains("cell 1") && err.contains("train.global_batch"), "{err}");
    assert!(!out.join("runs").exists(), "nothing ran");

    let sweep = run_sweep(&path, &spec("train.optimizer.lr=1e-3,1e-2"), &opts(&s), &out).unwrap();
    assert_eq!((sweep.rows.len(), sweep.summary.len()), (4, 2));
    let read = |f: &str| ParquetReader::new(std::fs::File::open(out.join(f)).unwrap()).finish().unwrap();
    let rows = read("sweep.parquet");
    assert_eq!(rows.height(), 4);
    let names: Vec<String> = rows.get_column_names().iter().map(|n| n.to_string()).collect();
    assert_eq!(names, ["cell", "train.optimizer.lr", "seed", "run_id", "loss"]);
    let summary = read("sweep_summary.parquet");
    assert_eq!(summary.height(), 2);
    for c in &sweep.summary {
        assert_eq!(c.n, 2);
        assert_eq!(c.per_seed.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2], "paired seeds");
        assert!(c.ci95.unwrap() >= 0.0 && c.mean.is_finite());
    }
    assert_ne!(sweep.rows[0].value, sweep.rows[1].value, "the seeds differ");
    assert!(out.join("sweep.png").is_file() && sweep.markdown.lines().count() == 4, "{}", sweep.markdown);
}

#[test]
fn cli_lock_writes_the_locked_copy_and_run_require_locked_refuses_the_original() {
    let s = setup();
    let path = manifest(&s, "cli", 4);
    let cli = |args: &[&str]| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_r1lab"));
        c.current_dir(s.root.path()).env("HF_HUB_CACHE", &s.hub.cache_dir).env("HF_HUB_OFFLINE", "1");
        c.env("R1LAB_CACHE", s.root.path().join("r1lab-cache")).env_remove("HF_HOME");
        c.args(["--device", "cpu"]).args(args).output().unwrap()
    };
    let out = cli(&["run", path.to_str().unwrap(), "--require-locked", "--quiet", "--runs", "runs"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("is not locked") && err.contains("cli.lock.toml"), "{err}");
    let out = cli(&["lock", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["unresolved"], serde_json::json!({}), "{report}");
    assert!(report["pinned"]["model.source"].as_str().unwrap().contains(&s.revision), "{report}");
    assert!(Manifest::load(&s.root.path().join("cli.lock.toml")).unwrap().is_locked());
}

#[test]
fn a_sweep_reads_a_new_run_from_the_folder_it_reports_whatever_id_it_planned() {
    // A commit during a sweep changes the id a run gets when it starts; the sweep must read that run, not the id it
    // planned with the code state of the sweep's start.
    let s = setup();
    let path = locked_manifest(&s, "moved", 8);
    let manifest = Manifest::load(&path).unwrap();
    let opts = opts(&s);
    let control = RunControl::default();
    let stale = CodeState { commit: Some("0".repeat(40)), dirty: Some(false) };
    let (id, dir) = run_or_reuse(&manifest, &path, &stale, &opts, &control).unwrap();
    assert_ne!(id, run_id(&manifest, &stale, None).unwrap(), "the planned id is not the run's");
    assert!(dir.join("final_metrics.json").is_file() && dir.ends_with(&id));
    let now = CodeState::detect(&opts.repo_root);
    let again = run_or_reuse(&manifest, &path, &now, &opts, &control).unwrap();
    assert_eq!(again, (id, dir), "a finished run with the current id is reused");
}
