//! Checkpoints on disk (`repro::checkpoint`, issue 5 "exact resume" and parent-run lineage): save → verify →
//! load restores policy, AdamW state and reference bit for bit; the model folder opens with `from_dir` and the
//! chat processor; corrupted files are named by `verify`; half-written checkpoints are ignored; `keep_last`
//! prunes; `find_parent` finds a parent stage's checkpoint by params hash; and a GRPO run stopped after 4 steps,
//! written to disk, dropped and resumed into fresh objects reproduces the uninterrupted 6-step run bit for bit
//! (the file-based version of tests/grpo_ptst.rs).
mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use common::{Exact, decode, digit_prompts, model_dir, ptst_config};
use r1lab::model::qwen2_5_vl::Qwen2_5_VL;
use r1lab::model::qwen2_5_vl::save::{SaveOptions, save_model};
use r1lab::processor::chat::ChatProcessor;
use r1lab::repro::checkpoint::{
    self, CheckpointInfo, CheckpointParts, PROCESSOR_FILES, TrainerKind, TrainerState, complete_checkpoints,
};
use r1lab::repro::manifest::{Manifest, Source};
use r1lab::repro::record::{CodeState, Run};
use r1lab::rl::rollout::RlPrompt;
use r1lab::rl::run::GrpoRunner;
use r1lab::rl::trainer::SampleRow;
use r1lab::tch::{Device, Kind, Tensor};
use r1lab::train::optim::{AdamW, AdamWConfig, Frozen};

fn chat_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_chat")
}

fn policy() -> Qwen2_5_VL {
    Qwen2_5_VL::from_dir(&model_dir(), Device::Cpu, Kind::Float).unwrap()
}

fn weights(m: &Qwen2_5_VL) -> HashMap<String, Tensor> {
    m.var_store().unwrap().variables().into_iter().map(|(k, t)| (k, t.detach().copy())).collect()
}

fn same(a: &HashMap<String, Tensor>, b: &HashMap<String, Tensor>) -> bool {
    a.len() == b.len() && a.iter().all(|(k, t)| b.get(k).is_some_and(|u| t.equal(u)))
}

fn same_named(a: &[(String, Tensor)], b: &[(String, Tensor)]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|((ka, ta), (kb, tb))| ka == kb && ta.equal(tb))
}

fn trainer(next_step: u64) -> TrainerState {
    TrainerState {
        kind: TrainerKind::Sft,
        next_step,
        updates: 2 * next_step,
        stage: 0,
        manifest_sha256: "ab".repeat(32),
        run_id: "test-run".into(),
        counters: BTreeMap::from([("epoch".to_string(), 1)]),
    }
}

/// A policy one AdamW step away from the fixture (non-zero moments), its optimizer, and the reference = the
/// fixture weights.
fn trained() -> (Qwen2_5_VL, AdamW, Qwen2_5_VL) {
    let mut model = policy();
    let reference = model.frozen_copy().unwrap();
    let vs = model.var_store_mut().unwrap();
    vs.unfreeze();
    let mut opt = AdamW::new(vs, AdamWConfig::EASYR1, &Frozen::none()).unwrap();
    let loss = vs.variables().values().map(|t| (t * t).sum(Kind::Float)).fold(Tensor::from(0.0f32), |a, b| a + b);
    loss.backward();
    opt.clip_and_step(1e-3, Some(1.0)).unwrap();
    (model, opt, reference)
}

fn save_trained(run_dir: &Path, step: u64, keep_last: Option<u32>) -> (CheckpointInfo, Qwen2_5_VL, AdamW, Qwen2_5_VL) {
    let (model, opt, reference) = trained();
    let t = trainer(step);
    let parts = CheckpointParts {
        model: &model,
        processor_dir: Some(&chat_dir()),
        optimizer: Some(&opt),
        reference: Some(&reference),
        trainer: &t,
        keep_last,
    };
    let info = checkpoint::save(run_dir, step, &parts).unwrap();
    (info, model, opt, reference)
}

fn flip_byte(path: &Path, from_end: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let i = bytes.len() - 1 - from_end;
    bytes[i] ^= 0x40;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn save_verify_load_round_trip_is_bit_exact() {
    let tmp = tempfile::tempdir().unwrap();
    let (info, model, opt, reference) = save_trained(tmp.path(), 7, None);
    assert_eq!(info.dir, tmp.path().join("checkpoints/step-000007"));
    let files: Vec<&str> = info.record.files.keys().map(String::as_str).collect();
    assert_eq!(
        files,
        [
            "model/chat_template.json",
            "model/config.json",
            "model/model.safetensors",
            "model/preprocessor_config.json",
            "model/tokenizer.json",
            "model/tokenizer_config.json",
            "optimizer.safetensors",
            "reference.safetensors",
            "trainer.json",
        ]
    );
    let verified = checkpoint::verify(&info.dir).unwrap();
    assert_eq!(verified, info);
    assert_eq!(checkpoint::latest(tmp.path()).unwrap(), Some(info.clone()));
    assert_eq!(verified.trainer, trainer(7));
    let live_hash = checkpoint::params_sha256(model.var_store().unwrap()).unwrap();
    assert_eq!(info.record.params_sha256, live_hash);
    assert_eq!(checkpoint::params_sha256_safetensors(&info.model_dir()).unwrap(), live_hash);

    // Load into fresh objects.
    let mut fresh = policy();
    fresh.var_store_mut().unwrap().unfreeze();
    let mut fresh_opt = AdamW::new(fresh.var_store().unwrap(), AdamWConfig::EASYR1, &Frozen::none()).unwrap();
    let mut fresh_ref = trained().0.frozen_copy().unwrap();
    assert!(!same(&weights(&fresh), &weights(&model)) && !same(&weights(&fresh_ref), &weights(&reference)));
    checkpoint::load_into(&verified, &mut fresh, Some(&mut fresh_opt), Some(&mut fresh_ref)).unwrap();
    assert!(same(&weights(&fresh), &weights(&model)), "policy weights differ after load");
    assert!(same(&weights(&fresh_ref), &weights(&reference)), "reference weights differ after load");
    assert!(same_named(&fresh_opt.state_tensors(), &opt.state_tensors()), "AdamW state differs after load");
    assert_eq!(fresh_opt.steps_done(), 1);

    // The model folder is a loadable HF folder with the processor files of the source.
    let reopened = Qwen2_5_VL::from_dir(&info.model_dir(), Device::Cpu, Kind::Float).unwrap();
    assert!(same(&weights(&reopened), &weights(&model)));
    for f in PROCESSOR_FILES {
        let src = chat_dir().join(f);
        let dst = info.model_dir().join(f);
        assert_eq!(src.is_file(), dst.is_file(), "{f}");
        if src.is_file() {
            assert_eq!(std::fs::read(&src).unwrap(), std::fs::read(&dst).unwrap(), "{f}");
        }
    }
    ChatProcessor::from_dir(&info.model_dir()).unwrap();
    // The parameter hash reads sharded folders too.
    let sharded = tmp.path().join("sharded");
    let opts = SaveOptions { max_shard_bytes: Some(100_000) };
    assert!(save_model(&model, &sharded, opts).unwrap().files.len() > 3);
    assert_eq!(checkpoint::params_sha256_safetensors(&sharded).unwrap(), live_hash);
    assert!(ChatProcessor::from_dir(&model_dir()).is_err(), "the bare fixture has no tokenizer");

    // Loading into a bf16 model cannot be exact and says so.
    let mut bf16 = Qwen2_5_VL::from_dir(&model_dir(), Device::Cpu, Kind::BFloat16).unwrap();
    let e = format!("{:#}", checkpoint::load_into(&verified, &mut bf16, None, None).unwrap_err());
    assert!(e.contains("dtype"), "{e}");
}

#[test]
fn corrupted_files_are_named_by_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let (info, ..) = save_trained(tmp.path(), 3, None);
    for rel in ["model/model.safetensors", "optimizer.safetensors", "reference.safetensors", "trainer.json"] {
        let path = info.dir.join(rel);
        let good = std::fs::read(&path).unwrap();
        flip_byte(&path, 3);
        let e = format!("{:#}", checkpoint::verify(&info.dir).unwrap_err());
        assert!(e.contains(rel) && e.contains("corrupt") && e.contains("delete it"), "{rel}: {e}");
        let e = format!("{:#}", checkpoint::latest(tmp.path()).unwrap_err());
        assert!(e.contains(rel), "latest must not skip a corrupt newest checkpoint: {e}");
        std::fs::write(&path, good).unwrap();
    }
    checkpoint::verify(&info.dir).unwrap();

    // Tampering that also rewrites the file hash is caught by the parameter hash.
    let st = info.dir.join("model/model.safetensors");
    flip_byte(&st, 0);
    let mut record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(info.dir.join("checkpoint.json")).unwrap()).unwrap();
    record["files"]["model/model.safetensors"] = r1lab::io::sha256_file(&st).unwrap().into();
    std::fs::write(info.dir.join("checkpoint.json"), serde_json::to_vec(&record).unwrap()).unwrap();
    let e = format!("{:#}", checkpoint::verify(&info.dir).unwrap_err());
    assert!(e.contains("parameters") && e.contains("corrupt"), "{e}");

    // A file the record does not list, and a missing one.
    flip_byte(&st, 0);
    record["files"]["model/model.safetensors"] = r1lab::io::sha256_file(&st).unwrap().into();
    std::fs::write(info.dir.join("checkpoint.json"), serde_json::to_vec(&record).unwrap()).unwrap();
    checkpoint::verify(&info.dir).unwrap();
    std::fs::write(info.dir.join("stray.bin"), b"x").unwrap();
    let e = format!("{:#}", checkpoint::verify(&info.dir).unwrap_err());
    assert!(e.contains("stray.bin"), "{e}");
    std::fs::remove_file(info.dir.join("stray.bin")).unwrap();
    std::fs::remove_file(info.dir.join("optimizer.safetensors")).unwrap();
    let e = format!("{:#}", checkpoint::verify(&info.dir).unwrap_err());
    assert!(e.contains("optimizer.safetensors") && e.contains("missing"), "{e}");
}

#[test]
fn half_written_checkpoints_are_ignored_and_keep_last_prunes() {
    let tmp = tempfile::tempdir().unwrap();
    assert_eq!(checkpoint::latest(tmp.path()).unwrap(), None);
    let (first, ..) = save_trained(tmp.path(), 1, None);
    let root = tmp.path().join("checkpoints");
    // A crashed save before checkpoint.json: the step folder exists but holds no record ...
    let copy = |to: &Path, with_record: bool| {
        for rel in first.record.files.keys() {
            let dst = to.join(rel);
            std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
            std::fs::copy(first.dir.join(rel), dst).unwrap();
        }
        if with_record {
            std::fs::copy(first.dir.join("checkpoint.json"), to.join("checkpoint.json")).unwrap();
        }
    };
    copy(&root.join("step-000002"), false);
    // ... and a complete one left under its temporary name (crash before the rename).
    copy(&root.join(".tmp-step-000003-abcdef"), true);
    assert_eq!(checkpoint::latest(tmp.path()).unwrap(), Some(first.clone()));
    let e = format!("{:#}", checkpoint::verify(&root.join("step-000002")).unwrap_err());
    assert!(e.contains("not a complete checkpoint"), "{e}");

    // keep_last = 2 over steps 1, 4, 5, 6: the oldest complete ones go, only after the new one is in place.
    for step in [4, 5] {
        save_trained(tmp.path(), step, Some(2));
    }
    let steps = |root: &Path| complete_checkpoints(root).unwrap().into_iter().map(|(s, _)| s).collect::<Vec<_>>();
    assert_eq!(steps(&root), [4, 5]);
    let (last, ..) = save_trained(tmp.path(), 6, Some(2));
    assert_eq!(steps(&root), [5, 6]);
    assert_eq!(checkpoint::latest(tmp.path()).unwrap().unwrap(), last);
    assert!(!root.join("step-000001").exists() && !root.join("step-000004").exists());
    // Incomplete folders are not the pruner's business; no temporary folder of a finished save is left behind.
    let mut names: Vec<String> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, [".tmp-step-000003-abcdef", "step-000002", "step-000005", "step-000006"]);
}

fn manifest() -> Manifest {
    Manifest::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/vision_r1/ptst_stage1_stage2.toml"))
        .unwrap()
}

#[test]
fn find_parent_by_stage_step_and_params_hash() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = tmp.path();
    let m = manifest();
    let code = || CodeState { commit: None, dirty: None };
    let env = || serde_json::json!({ "device": "cpu" });
    // A finished run with a checkpoint at step 2, and a crashed run of the same stage.
    let run = Run::start_with_env(runs, "parent-done", &m, code(), env(), BTreeMap::new()).unwrap();
    let (info, ..) = save_trained(run.dir(), 2, None);
    run.finish().unwrap();
    let crashed = Run::start_with_env(runs, "parent-crashed", &m, code(), env(), BTreeMap::new()).unwrap();
    save_trained(crashed.dir(), 2, None);
    drop(crashed);
    std::fs::create_dir(runs.join("not-a-run")).unwrap();

    let hash = info.record.params_sha256.clone();
    // The hash is what a manifest's `ParentRun` source pins.
    let source = Source::ParentRun { stage: m.id.clone(), step: Some(2), sha256: Some(hash.clone()) };
    source.validate("model.source", true).unwrap();
    let found = checkpoint::find_parent(runs, &m.id, 2, &hash).unwrap();
    assert_eq!(found, info.dir);
    Qwen2_5_VL::from_dir(&found.join("model"), Device::Cpu, Kind::Float).unwrap();

    let other = "0".repeat(64);
    let e = format!("{:#}", checkpoint::find_parent(runs, &m.id, 2, &other).unwrap_err());
    assert!(e.contains(&other) && e.contains(&format!("parent-done: step 2 has params_sha256 {hash}")), "{e}");
    assert!(e.contains("parent-crashed") && e.contains("not complete"), "{e}");
    let e = format!("{:#}", checkpoint::find_parent(runs, &m.id, 5, &hash).unwrap_err());
    assert!(e.contains("no checkpoint at step 5 (checkpoint steps [2])"), "{e}");
    let e = format!("{:#}", checkpoint::find_parent(runs, "vision_r1/other", 2, &hash).unwrap_err());
    assert!(e.contains("no run of stage vision_r1/other"), "{e}");
    // A corrupted match is not returned.
    flip_byte(&info.dir.join("reference.safetensors"), 0);
    let e = format!("{:#}", checkpoint::find_parent(runs, &m.id, 2, &hash).unwrap_err());
    assert!(e.contains("fails verification") && e.contains("reference.safetensors"), "{e}");
}

// ---------------------------------------------------------------------------------------------------------
// File-based exact resume of a two-stage GRPO run (the run of tests/grpo_ptst.rs).

type Log = Vec<Vec<SampleRow>>;

fn run_steps(runner: &mut GrpoRunner, data: &[RlPrompt], n: u64, log: &mut Log) {
    for _ in 0..n {
        let (_, _, samples) = runner.step(data, &Exact, 0, decode).unwrap();
        log.push(samples);
    }
}

#[test]
fn grpo_resumed_from_a_checkpoint_file_matches_the_uninterrupted_run() {
    let data = digit_prompts(5, 0, 12, 0);
    let mut model = policy();
    let mut straight: Log = vec![];
    let final_straight = {
        let mut r = GrpoRunner::new(ptst_config(), &mut model).unwrap();
        run_steps(&mut r, &data, 6, &mut straight);
        assert!(r.is_done());
        weights(r.policy)
    };

    // Run 4 steps (one into stage 2), write a checkpoint, drop everything.
    let tmp = tempfile::tempdir().unwrap();
    let mut first: Log = vec![];
    {
        let mut model = policy();
        let mut r = GrpoRunner::new(ptst_config(), &mut model).unwrap();
        run_steps(&mut r, &data, 4, &mut first);
        let stage = r.cfg.ptst.locate(r.next_step - 1).unwrap().stage;
        assert_eq!(stage, 1);
        let t = TrainerState {
            kind: TrainerKind::Grpo,
            next_step: r.next_step,
            updates: r.updates,
            stage,
            manifest_sha256: "cd".repeat(32),
            run_id: "grpo-resume".into(),
            counters: BTreeMap::new(),
        };
        let parts = CheckpointParts {
            model: &*r.policy,
            processor_dir: None,
            optimizer: Some(&r.optimizer),
            reference: r.reference.as_ref(),
            trainer: &t,
            keep_last: Some(1),
        };
        checkpoint::save(tmp.path(), r.next_step, &parts).unwrap();
    }
    assert_eq!(first[..], straight[..4]);

    // Resume from the file into fresh objects and run the last 2 steps.
    let info = checkpoint::latest(tmp.path()).unwrap().expect("a checkpoint");
    info.require_manifest(&"cd".repeat(32)).unwrap();
    assert!(info.require_manifest(&"ef".repeat(32)).is_err());
    assert_eq!((info.step(), info.trainer.next_step, info.trainer.updates), (4, 4, 8));
    let mut model = policy();
    let mut r = GrpoRunner::new(ptst_config(), &mut model).unwrap();
    checkpoint::load_into(&info, &mut *r.policy, Some(&mut r.optimizer), r.reference.as_mut()).unwrap();
    (r.next_step, r.updates) = (info.trainer.next_step, info.trainer.updates);
    assert_eq!(r.optimizer.steps_done(), 2, "stage 2's AdamW after one step");
    let mut resumed: Log = vec![];
    run_steps(&mut r, &data, 2, &mut resumed);
    assert!(r.is_done());
    assert_eq!(resumed[..], straight[4..], "the resumed steps sampled differently");
    assert!(same(&weights(r.policy), &final_straight), "resumed final weights differ");
}
