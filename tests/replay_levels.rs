//! Replay levels L0 (data order), L2 (numeric) and L3 (statistical) end to end on the tiny Qwen2.5-VL (issue 5
//! item 5; `lib/repro/replay.rs`), with SFT stages of two or three steps and one short GRPO stage on the CPU:
//!
//! - a record whose metrics and fingerprints come from the same manifest run with `grad_accumulation = 1` instead
//!   of 2 fails L1 (the loss of a step is summed over one micro-batch instead of two and the gradients are
//!   accumulated in one backward pass instead of two, so the float summation order changes; on the CPU this
//!   moved the step-2 loss by 9.5e-7, about 1.4e-7 relative, with identical grad-norm bits) but passes L2 with
//!   `rtol = 1e-4`, reusing the L1 rerun; a record whose step-2 `grad_norm` is scaled by 1.5 reaches L1 over its
//!   first step (its fingerprints are intact) but fails L2, in a rerun of its own, naming step 2, `grad_norm`,
//!   both values and the allowed difference;
//! - L3 over seeds 1 and 2 passes with a loose `atol` and fails with `atol = 0` for a record whose final loss is
//!   far outside the seeds' prediction interval, reporting per-seed values, mean and interval;
//! - L0 regenerates the data order from the seed: an SFT record whose step-2 example digest was edited, and a GRPO
//!   record whose step-2 prompt uids were swapped in `samples/*.parquet`, stop at L0 naming step 2;
//! - bad `[replay]` sections are refused at load naming their key, and a manifest without one hashes as before;
//! - `r1lab replay --level l0` attempts nothing above L0.
mod common;

use std::path::{Path, PathBuf};

use polars::prelude::{Column, ParquetReader, ParquetWriter, SerReader};
use r1lab::pipeline::{RunControl, RunOptions, run_manifest_with};
use r1lab::repro::manifest::Manifest;
use r1lab::repro::record::Metrics;
use r1lab::repro::replay::{Level, ReplayOptions, replay_with};

/// A temp folder with the tiny model in an offline Hub cache and cold-start (SFT) and RL data.
type Setup = common::Workspace;

fn setup() -> Setup {
    let s = Setup::new();
    common::bridged_data(&s.root.path().join("data/cold"), 3);
    let cfg = r1lab::data::synthetic::Config { seed: 0, level: 1, size: 112 };
    let families = r1lab::data::synthetic::Family::ALL;
    let split = r1lab::data::synthetic::Split::Train;
    r1lab::data::synthetic::export::export(&s.root.path().join("data/rl"), &families, &cfg, split, 2).unwrap();
    s
}

fn opts(s: &Setup) -> RunOptions {
    s.run_options()
}

fn head(name: &str) -> String {
    format!(
        "schema_version = 1\nid = \"replay_test/{name}\"\nlock = {{ state = \"unlocked\", reason = \"hand-written\" }}\n\
         [paper]\narxiv = \"2503.06749\"\nversion = \"v4\"\nsection = \"test\"\n[stage]\nname = \"{name}\"\n\
         [model]\nsource = {{ kind = \"hub\", repo = \"r1lab/tiny-qwen2.5-vl\", revision = \"main\" }}\ndtype = \"f32\"\n"
    )
}

/// SFT on `examples` cold-start records in batches of 4 split into `accumulation` micro-batches, then `replay`.
fn sft_text(name: &str, examples: u64, accumulation: u32, replay: &str) -> String {
    format!(
        "{}[data]\nsource = {{ kind = \"local\", path = \"data/cold\" }}\nsplit = \"train_bridge\"\n\
         filters = {{ max_examples = {examples} }}\n[seeds]\nbase = 5\n\
         [train]\nalgo = \"sft\"\nepochs = 1\nglobal_batch = 4\ngrad_accumulation = {accumulation}\nmax_length = 512\n\
         freeze_vision = false\nfreeze_merger = false\nmodality = \"multimodal\"\n\
         [train.optimizer]\nlr = 1e-3\nbetas = [0.9, 0.999]\neps = 1e-8\nweight_decay = 0.0\ngrad_clip = 1.0\n\
         schedule = \"cosine\"\nwarmup_ratio = 0.1\n[checkpoint]\nevery_steps = 2\ninclude_optimizer = false\n{replay}",
        head(name)
    )
}

/// Writes `text` as `<name>.toml`, locks it and returns the locked copy.
fn locked(s: &Setup, name: &str, text: &str) -> PathBuf {
    let path = s.root.path().join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    s.lock(&path)
}

fn run(s: &Setup, path: &Path) -> PathBuf {
    run_manifest_with(path, &opts(s), &RunControl::default()).unwrap().dir
}

fn upto(level: Level) -> ReplayOptions {
    ReplayOptions { steps: None, max_level: level }
}

/// Rewrites `metrics.parquet` of `dir` with `f` applied to every (step, name, value).
fn edit_metrics(dir: &Path, f: impl Fn(u64, &str, f64) -> f64) {
    let path = dir.join("metrics.parquet");
    let m = Metrics::read_parquet(&path, u64::MAX).unwrap();
    let mut rows: std::collections::BTreeMap<u64, Vec<(String, f64)>> = Default::default();
    for name in m.names() {
        for (step, v) in m.series(&name) {
            rows.entry(step).or_default().push((name.clone(), f(step, &name, v)));
        }
    }
    let mut out = Metrics::new();
    for (step, values) in rows {
        let named: Vec<(&str, f64)> = values.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        out.log(step, &named).unwrap();
    }
    out.write_parquet(&path).unwrap();
}

const NUMERIC: &str =
    "[replay.numeric]\nsteps = 3\nrtol = 1e-4\natol = 1e-7\nfields = [\"loss\", \"grad_norm\", \"lr\", \"examples\"]\n";

#[test]
fn l2_passes_across_an_accumulation_split_and_names_the_first_field_out_of_tolerance() {
    let s = setup();
    let a = run(&s, &locked(&s, "split2", &sft_text("split2", 12, 2, NUMERIC)));
    let b = run(&s, &locked(&s, "split1", &sft_text("split1", 12, 1, NUMERIC)));

    // The record of `a` as a machine with another summation order would have written it.
    for f in ["metrics.parquet", "fingerprints.jsonl"] {
        std::fs::copy(b.join(f), a.join(f)).unwrap();
    }
    let r = replay_with(&a, &opts(&s), &upto(Level::L3)).unwrap();
    assert!(r.l0.passed, "{:#?}", r.l0);
    assert!(r.l0.data_order.checked && r.l0.data_order.steps_compared == 2, "{:#?}", r.l0.data_order);
    let d = r.l1.first_divergence.as_ref().expect("the accumulation split changes the last bits");
    assert!((1..=2).contains(&d.step), "{r:#?}");
    assert!(["grad_norm", "loss"].contains(&d.field.as_str()), "{d:?}");
    assert!(r.l2.attempted && r.l2.reached && r.l2.steps_compared == 2, "{:#?}", r.l2);
    assert_eq!(r.l2.replay_run, r.l1.replay_run, "L2 reuses the L1 rerun");
    assert_eq!(r.level, "L2");
    assert!(r.summary.starts_with("L2 reached for 2 steps; L1 diverged at step "), "{}", r.summary);
    assert!(!r.l3.attempted && r.l3.note.contains("[replay.statistical]"), "{:#?}", r.l3);
    eprintln!("L2 max |replayed - recorded| across the split: {:?}", r.l2.max_abs_diff);
    assert!(r.l2.max_abs_diff["loss"] > 0.0 || r.l2.max_abs_diff["grad_norm"] > 0.0);

    // Restore a's own record, then scale its step-2 grad norm: L1 still holds, L2 names the field.
    let a2 = run(&s, &locked(&s, "tampered", &sft_text("tampered", 12, 2, NUMERIC)));
    edit_metrics(&a2, |step, name, v| if step == 2 && name == "grad_norm" { v * 1.5 } else { v });
    // L1 over its first step only, so L2 (2 steps) reruns on its own.
    let r = replay_with(&a2, &opts(&s), &ReplayOptions { steps: Some(1), max_level: Level::L2 }).unwrap();
    assert_eq!((r.level.as_str(), r.l1.reached, r.l1.steps_compared), ("L1", true, 1), "{r:#?}");
    assert!(r.l2.replay_run.as_deref().unwrap().contains("replay-1/l2/"), "{:?}", r.l2.replay_run);
    let v = r.l2.first_violation.as_ref().unwrap();
    assert_eq!((v.step, v.field.as_str()), (2, "grad_norm"), "{v:?}");
    let (rec, rep, allowed) = (v.recorded.unwrap(), v.replayed.unwrap(), v.allowed.unwrap());
    assert!((rec / rep - 1.5).abs() < 1e-12 && (allowed - (1e-7 + 1e-4 * rec)).abs() < 1e-15, "{v:?}");
    assert!(!r.l2.reached && r.summary.contains("L2 out of tolerance at step 2 in field grad_norm"), "{}", r.summary);
}

#[test]
fn l3_passes_with_a_loose_tolerance_and_fails_with_a_tight_one() {
    let s = setup();
    let stat = |atol: &str| format!("[replay.statistical]\nseeds = [1, 2]\nmetrics = [\"loss\"]\natol = {atol}\n");
    let loose = run(&s, &locked(&s, "loose", &sft_text("loose", 8, 2, &stat("1000.0"))));
    let r = replay_with(&loose, &opts(&s), &upto(Level::L3)).unwrap();
    assert_eq!((r.level.as_str(), r.l3.reached), ("L3", true), "{r:#?}");
    let m = &r.l3.metrics[0];
    assert_eq!(m.per_seed.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2]);
    assert_ne!(m.per_seed[0].1, m.per_seed[1].1, "the seed changes the data order and the loss");
    assert_eq!(r.l3.runs.len(), 2);
    assert!(m.ci95.unwrap() > 0.0 && m.prediction95.unwrap() > m.ci95.unwrap() && m.allowed == 1000.0, "{m:?}");
    assert_eq!(r.summary, "L3 reached over 2 seeds; L1 reached for 2 steps");

    // A record whose final loss is 100 above what the seeds give: outside max(prediction interval, 0).
    let tight = run(&s, &locked(&s, "tight", &sft_text("tight", 8, 2, &stat("0.0"))));
    let path = tight.join("final_metrics.json");
    let mut fm: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    fm["loss"] = (fm["loss"].as_f64().unwrap() + 100.0).into();
    std::fs::write(&path, serde_json::to_vec(&fm).unwrap()).unwrap();
    let r = replay_with(&tight, &opts(&s), &upto(Level::L3)).unwrap();
    assert_eq!((r.level.as_str(), r.l3.attempted, r.l3.reached), ("L1", true, false), "{r:#?}");
    let m = r.l3.first_failure().unwrap();
    assert!(m.metric == "loss" && m.difference > m.allowed && m.allowed == m.prediction95.unwrap(), "{m:?}");
    assert!(r.summary.contains("L3 failed for loss"), "{}", r.summary);
    eprintln!(
        "L3 loss over seeds 1, 2: {:?}, mean {}, CI ±{:?}, prediction ±{:?}",
        m.per_seed, m.mean, m.ci95, m.prediction95
    );
}

#[test]
fn l0_names_the_first_step_whose_data_order_does_not_regenerate() {
    let s = setup();
    // SFT: the step-2 example digest of the record edited.
    let dir = run(&s, &locked(&s, "order", &sft_text("order", 12, 2, "")));
    let text = std::fs::read_to_string(dir.join("fingerprints.jsonl")).unwrap();
    let mut lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let first = lines[0]["examples"].clone();
    lines[1]["examples"] = first;
    std::fs::write(dir.join("fingerprints.jsonl"), lines.iter().map(|v| format!("{v}\n")).collect::<String>()).unwrap();
    let r = replay_with(&dir, &opts(&s), &upto(Level::L3)).unwrap();
    assert_eq!(r.level, "none", "{r:#?}");
    let d = r.l0.data_order.first_difference.as_ref().unwrap();
    assert_eq!((d.step, d.what.as_str()), (2, "examples digest"), "{d:?}");
    assert!(!r.l1.attempted && !r.l2.attempted && !r.l3.attempted);
    assert_eq!(r.summary, "L0 failed: the data order differs from the record at step 2 (examples digest)");

    // GRPO: two prompt uids of step 2 swapped in the samples table.
    let grpo = format!(
        "{}[data]\nsource = {{ kind = \"local\", path = \"data/rl\" }}\nsplit = \"train\"\n[seeds]\nbase = 5\n\
         [train]\nalgo = \"grpo\"\nschedule = [{{ max_new_tokens = 4, group_size = 2, steps = 2 }}]\n\
         carry_over = {{ optimizer = \"reset\", reference = \"stage_init\" }}\nrollout_batch_prompts = 2\n\
         update_batch_prompts = 2\nmicro_batch = 4\nppo_epochs = 1\nfreeze_vision = false\n\
         sampling = {{ temperature = 1.0, top_p = 1.0, max_prompt_tokens = 256 }}\nreward = {{ kind = \"vision_r1_hard\" }}\n\
         advantage = {{ estimator = {{ kind = \"grpo\", eps = 1e-6 }}, singleton = \"zero_mean_unit_std\", zero_variance = \"torch_numerics\" }}\n\
         surrogate = {{ kind = \"ppo_clip\", eps_low = 0.2, eps_high = 0.2 }}\nlog_ratio_clamp = {{ kind = \"none\" }}\n\
         aggregation = {{ kind = \"micro_batch_token_mean\" }}\n\
         [train.optimizer]\nlr = 1e-3\nbetas = [0.9, 0.999]\neps = 1e-8\nweight_decay = 0.0\ngrad_clip = 1.0\n\
         schedule = \"constant\"\nwarmup_ratio = 0.0\n[checkpoint]\nevery_steps = 2\ninclude_optimizer = false\n",
        head("rl_order")
    );
    let dir = run(&s, &locked(&s, "rl_order", &grpo));
    let r = replay_with(&dir, &opts(&s), &upto(Level::L0)).unwrap();
    assert!(r.l0.passed && r.l0.data_order.checked && r.l0.data_order.steps_compared == 2, "{:#?}", r.l0);
    assert_eq!((r.level.as_str(), r.l1.note.as_str()), ("L0", "not attempted: --level l0"));
    let file = std::fs::read_dir(dir.join("samples")).unwrap().next().unwrap().unwrap().path();
    let mut df = ParquetReader::new(std::fs::File::open(&file).unwrap()).finish().unwrap();
    let steps: Vec<u64> = df.column("step").unwrap().u64().unwrap().into_no_null_iter().collect();
    let uids: Vec<u64> = df.column("prompt_uid").unwrap().u64().unwrap().into_no_null_iter().collect();
    let at2: Vec<u64> = steps.iter().zip(&uids).filter(|(s, _)| **s == 1).map(|(_, u)| *u).collect();
    let (p, q) = (at2[0], *at2.iter().find(|u| **u != at2[0]).unwrap());
    let swapped: Vec<u64> = steps
        .iter()
        .zip(&uids)
        .map(|(s, u)| {
            if *s != 1 {
                *u
            } else if *u == p {
                q
            } else if *u == q {
                p
            } else {
                *u
            }
        })
        .collect();
    df.replace("prompt_uid", Column::new("prompt_uid".into(), swapped)).unwrap();
    ParquetWriter::new(std::fs::File::create(&file).unwrap()).finish(&mut df).unwrap();
    let r = replay_with(&dir, &opts(&s), &upto(Level::L1)).unwrap();
    let d = r.l0.data_order.first_difference.as_ref().unwrap();
    assert_eq!((r.level.as_str(), d.step, d.what.as_str()), ("none", 2, "prompt uids"), "{r:#?}");
    assert_eq!(d.recorded.as_deref(), Some(format!("{:?}", [q, p]).as_str()), "{d:?}");
}

#[test]
fn bad_replay_sections_are_refused_at_load_and_an_absent_one_keeps_the_hash() {
    let base = sft_text("hashed", 8, 2, "");
    let plain = Manifest::from_toml_str(&base).unwrap();
    assert!(plain.replay.is_none() && !plain.canonical_json().unwrap().contains("\"replay\":"));
    let with = Manifest::from_toml_str(&format!("{base}{NUMERIC}")).unwrap();
    assert_ne!(with.sha256().unwrap(), plain.sha256().unwrap(), "the tolerances are part of the experiment");
    let round = Manifest::from_toml_str(&with.to_toml_string().unwrap()).unwrap();
    assert_eq!(round.sha256().unwrap(), with.sha256().unwrap());
    let err = |section: &str| format!("{:#}", Manifest::from_toml_str(&format!("{base}{section}")).unwrap_err());
    assert!(err("[replay]\n").contains("neither `numeric` nor `statistical`"));
    assert!(err(&NUMERIC.replace("rtol = 1e-4", "rtol = -1.0")).contains("replay.numeric.rtol"));
    assert!(err(&NUMERIC.replace("steps = 3", "steps = 0")).contains("replay.numeric.steps"));
    assert!(err(&format!("{NUMERIC}tolerance = 1.0\n")).contains("tolerance"), "unknown key");
    let stat = "[replay.statistical]\nseeds = [4]\nmetrics = [\"heldout.acc\"]\natol = 0.01\n";
    assert!(err(stat).contains("replay.statistical.seeds has 1 seed"));
}

#[test]
fn cli_level_l0_attempts_nothing_above_l0() {
    let s = setup();
    let dir = run(&s, &locked(&s, "cli", &sft_text("cli", 8, 2, NUMERIC)));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_r1lab"))
        .current_dir(s.root.path())
        .env("HF_HUB_CACHE", &s.hub.cache_dir)
        .env("HF_HUB_OFFLINE", "1")
        .env("R1LAB_CACHE", s.root.path().join("r1lab-cache"))
        .env_remove("HF_HOME")
        .args(["--device", "cpu", "replay", dir.to_str().unwrap(), "--level", "l0"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["level"], "L0", "{report}");
    assert_eq!(report["l0"]["data_order"]["checked"], true, "{report}");
    assert_eq!(report["l2"]["note"], "not attempted: --level below l2", "{report}");
    assert!(!dir.join("replay-1").join("l2").exists());
}
