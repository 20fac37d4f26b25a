//! The SFT trainer (`r1lab::sft::trainer`) end to end on a tiny random Qwen2.5-VL: sharegpt records with and
//! without images are rendered with the chat fixture's tokenizer and template (`tests/fixtures/qwen2_5_vl_chat`),
//! cut to `max_length`, batched, and trained. The model fixture (`tests/fixtures/qwen2_5_vl_model/model`) has a
//! 512-token vocabulary while the chat fixture's tokenizer has 642 ids, so each test writes a checkpoint folder
//! with the fixture's config (vision patch 2, temporal 2, merge 2) widened to that vocabulary and Qwen's special
//! ids, random weights drawn under a fixed seed, and a `preprocessor_config.json` with patch size 2 and at most
//! 256 pixels per image (12–15 image tokens).
//!
//! Proves: (a) memorising four conversations (two with images) drives the assistant-token loss far down;
//! (b) frozen vision tower / merger parameters stay bit-identical while the decoder moves; (c) the gradient of one
//! optimizer step is the same with 1, 2 or 4 micro-batches; (d) a run resumed from step k (weights + AdamW state)
//! sees the same batches and ends bit-identical to the uninterrupted run; (e) the errors of `prepare`.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use r1lab::data::sharegpt::SftRecord;
use r1lab::model::qwen2_5_vl::{Config, Qwen2_5_VL};
use r1lab::processor::chat::ChatProcessor;
use r1lab::processor::image::ImageProcessorConfig;
use r1lab::repro::manifest::train::{AdamW as AdamWSettings, LrSchedule, Modality, SftSettings};
use r1lab::sft::labels::IGNORE_INDEX;
use r1lab::sft::trainer::{ImageCut, PrepareOptions, SftData, SftStepMetrics, SftTrainer, prepare};
use r1lab::tch::{Device, Kind, Tensor, nn};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// Serialises seeded initialisation: `manual_seed` is process-global.
static INIT: Mutex<()> = Mutex::new(());

/// A checkpoint folder (config, random weights, tokenizer, template, image processor) and a media folder with
/// two fixture images under `images/`.
fn checkpoint() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let chat = fixtures().join("qwen2_5_vl_chat");
    for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.json"] {
        std::fs::copy(chat.join(f), tmp.path().join(f)).unwrap();
    }
    let mut pre: Value =
        serde_json::from_str(&std::fs::read_to_string(chat.join("preprocessor_config.json")).unwrap()).unwrap();
    pre["patch_size"] = 2.into();
    pre["min_pixels"] = 64.into();
    pre["max_pixels"] = 256.into();
    std::fs::write(tmp.path().join("preprocessor_config.json"), pre.to_string()).unwrap();
    let model_dir = fixtures().join("qwen2_5_vl_model/model");
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(model_dir.join("config.json")).unwrap()).unwrap();
    // The chat fixture's tokenizer: 642 ids, Qwen's added tokens at 620..641.
    cfg["text_config"]["vocab_size"] = 642.into();
    cfg["text_config"]["eos_token_id"] = 622.into();
    cfg["text_config"]["bos_token_id"] = 620.into();
    cfg["text_config"]["pad_token_id"] = 620.into();
    for (k, v) in [("image_token_id", 632), ("video_token_id", 633), ("vision_start_token_id", 629)] {
        cfg[k] = v.into();
    }
    cfg["vision_end_token_id"] = 630.into();
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    std::fs::write(tmp.path().join("config.json"), &text).unwrap();
    let parsed = Config::parse(&text, "test").unwrap();
    {
        let _g = INIT.lock().unwrap();
        r1lab::tch::manual_seed(0);
        let vs = nn::VarStore::new(Device::Cpu);
        let _m = Qwen2_5_VL::new(&vs.root(), &parsed).unwrap();
        vs.save(tmp.path().join("model.safetensors")).unwrap();
    }
    std::fs::create_dir(tmp.path().join("images")).unwrap();
    for (src, dst) in [("rgb_56x84.png", "a.png"), ("palette_50x35.png", "b.png")] {
        std::fs::copy(fixtures().join("processor").join(src), tmp.path().join("images").join(dst)).unwrap();
    }
    tmp
}

fn records() -> Vec<SftRecord> {
    let pair = |q: &str, a: &str, images: &[&str]| {
        SftRecord::pair(q.into(), a.into(), images.iter().map(|s| s.to_string()).collect())
    };
    vec![
        pair("<image>What is in the picture?", "<think>red bars</think><answer>3</answer>", &["images/a.png"]),
        pair("How many sides has a square?", "<think>a square has four</think><answer>4</answer>", &[]),
        pair("<image>Which colour?", "<think>look at it</think><answer>blue</answer>", &["images/b.png"]),
        pair("What is 2+2?", "<think>2+2=4</think><answer>4</answer>", &[]),
    ]
}

fn settings(global_batch: u32, grad_accumulation: u32, epochs: u32, lr: f64) -> SftSettings {
    SftSettings {
        epochs,
        global_batch,
        grad_accumulation,
        max_length: 256,
        freeze_vision: false,
        freeze_merger: false,
        modality: Modality::Multimodal,
        optimizer: AdamWSettings {
            lr,
            betas: [0.9, 0.999],
            eps: 1e-8,
            weight_decay: 0.0,
            grad_clip: Some(1.0),
            schedule: LrSchedule::Cosine,
            warmup_ratio: 0.1,
            states: Default::default(),
        },
    }
}

fn data(dir: &Path, recs: &[SftRecord], opts: &PrepareOptions) -> anyhow::Result<SftData> {
    let processor = ChatProcessor::from_dir(dir).unwrap();
    let image_cfg = ImageProcessorConfig::from_file(&dir.join("preprocessor_config.json")).unwrap();
    prepare(&processor, &image_cfg, recs, dir, opts)
}

fn opts(max_length: usize) -> PrepareOptions {
    PrepareOptions { max_length, modality: Modality::Multimodal, image_cut: ImageCut::Error }
}

fn trainable(dir: &Path) -> Qwen2_5_VL {
    let mut m = Qwen2_5_VL::from_dir(dir, Device::Cpu, Kind::Float).unwrap();
    m.var_store_mut().unwrap().unfreeze();
    m
}

fn snapshot(m: &Qwen2_5_VL) -> BTreeMap<String, Tensor> {
    m.var_store().unwrap().variables().into_iter().map(|(k, v)| (k, v.detach().copy())).collect()
}

#[test]
fn prepared_examples_render_label_and_expand_images() {
    let ckpt = checkpoint();
    let d = data(ckpt.path(), &records(), &opts(256)).unwrap();
    assert_eq!((d.stats.records, d.stats.examples, d.stats.truncated, d.stats.dropped_image_cut), (4, 4, 0, 0));
    let p = ChatProcessor::from_dir(ckpt.path()).unwrap();
    let image_pad = i64::from(p.tokenizer.special().image_pad);
    for (ex, rec) in d.examples.iter().zip(records()) {
        let trained: Vec<u32> =
            ex.input_ids.iter().zip(&ex.labels).filter(|(_, l)| **l != IGNORE_INDEX).map(|(&t, _)| t as u32).collect();
        assert_eq!(p.tokenizer.decode(&trained, false).unwrap(), format!("{}<|im_end|>\n", rec.messages[1].content));
        let pads = ex.input_ids.iter().filter(|&&t| t == image_pad).count() as i64;
        assert_eq!(pads, ex.grids.iter().map(|g| g.iter().product::<i64>() / 4).sum::<i64>());
        assert_eq!(ex.grids.len(), rec.images.len());
    }
    // 56x84 -> 12x16 pixels (multiples of 4, <= 256 pixels) -> grid 6x8 -> 12 tokens.
    assert_eq!(d.examples[0].grids, [[1, 6, 8]]);
}

#[test]
fn memorising_four_conversations_drives_the_loss_down() {
    let ckpt = checkpoint();
    let d = data(ckpt.path(), &records(), &opts(256)).unwrap();
    let model = trainable(ckpt.path());
    let s = settings(4, 2, 25, 5e-3);
    let mut trainer = SftTrainer::for_model(&s, 11, &model).unwrap();
    let schedule = trainer.schedule(4).unwrap();
    let mut seen: Vec<SftStepMetrics> = Vec::new();
    let report = trainer
        .train(&model, &d, |m| {
            seen.push(m.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!((report.steps_run, report.total_steps, report.skipped_steps, report.unused_per_epoch), (25, 25, 0, 0));
    let want_targets: i64 = d.examples.iter().map(|e| e.targets()).sum();
    for (k, m) in seen.iter().enumerate() {
        assert_eq!((m.step, m.epoch, m.total_steps), (k + 1, k, 25));
        assert_eq!(m.lr, schedule.lr(k));
        assert_eq!(m.target_tokens, want_targets);
        assert_eq!(m.tokens, d.examples.iter().map(|e| e.input_ids.len() as i64).sum::<i64>());
        assert!(!m.skipped && m.grad_norm.is_finite() && m.loss.is_finite());
    }
    let (first, last) = (seen[0].loss, seen[24].loss);
    let tps = seen.iter().map(|m| m.tokens_per_s).sum::<f64>() / seen.len() as f64;
    let curve: Vec<String> = seen.iter().step_by(5).map(|m| format!("{:.3}", m.loss)).collect();
    println!("SFT loss {first:.4} -> {last:.4} in 25 steps (every 5th: {curve:?}); {tps:.0} tokens/s on CPU");
    assert!(first > 5.0, "the random model should start far from the answers, got {first}");
    assert!(last < 0.01 * first, "loss {first} -> {last}");
    assert_eq!(report.final_loss, Some(last));
}

#[test]
fn frozen_vision_tower_and_merger_do_not_move() {
    let ckpt = checkpoint();
    let d = data(ckpt.path(), &records(), &opts(256)).unwrap();
    for freeze_merger in [false, true] {
        let model = trainable(ckpt.path());
        let before = snapshot(&model);
        let s = SftSettings { freeze_vision: true, freeze_merger, ..settings(4, 2, 3, 1e-3) };
        let mut trainer = SftTrainer::for_model(&s, 3, &model).unwrap();
        trainer.train(&model, &d, |_| Ok(())).unwrap();
        let after = snapshot(&model);
        for (name, b) in &before {
            let same = b.equal(&after[name]);
            let frozen = name.starts_with("visual.patch_embed.")
                || name.starts_with("visual.blocks.")
                || (freeze_merger && name.starts_with("visual.merger."));
            if frozen {
                assert!(same, "{name} is frozen but moved (freeze_merger = {freeze_merger})");
            } else if name.starts_with("visual.merger.") || name.starts_with("model.layers.") {
                assert!(!same, "{name} is trained but did not move (freeze_merger = {freeze_merger})");
            }
        }
        assert!(!before["model.embed_tokens.weight"].equal(&after["model.embed_tokens.weight"]));
    }
}

#[test]
fn accumulated_gradient_equals_one_batch_gradient() {
    let ckpt = checkpoint();
    let d = data(ckpt.path(), &records(), &opts(256)).unwrap();
    let model = trainable(ckpt.path());
    let grads = |ga: u32| {
        let mut t = SftTrainer::for_model(&settings(4, ga, 1, 1e-3), 5, &model).unwrap();
        t.optimizer_mut().zero_grad();
        let acc = t.accumulate(&model, &d, 0).unwrap();
        let vars = model.var_store().unwrap().variables();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        let g = Tensor::cat(&names.iter().map(|n| vars[*n].grad().reshape([-1])).collect::<Vec<_>>(), 0).copy();
        t.optimizer_mut().zero_grad();
        (acc, g)
    };
    let (one, g1) = grads(1);
    assert_eq!(one.target_tokens, d.examples.iter().map(|e| e.targets()).sum::<i64>());
    let scale = g1.abs().max().double_value(&[]);
    assert!(scale > 1e-3, "the gradient should not vanish: {scale}");
    for ga in [2, 4] {
        let (acc, g) = grads(ga);
        let d = (&g - &g1).abs().max().double_value(&[]);
        println!(
            "grad_accumulation {ga} vs 1: max |dgrad| {d:e} (max |grad| {scale:e}), loss {} vs {}",
            acc.loss, one.loss
        );
        assert!(d < 1e-6, "grad_accumulation {ga}: max |dgrad| {d:e}");
        assert!((acc.loss - one.loss).abs() < 1e-6 * one.loss, "loss {} vs {}", acc.loss, one.loss);
        assert_eq!((acc.tokens, acc.target_tokens), (one.tokens, one.target_tokens));
    }
}

#[test]
fn resumed_run_replays_the_uninterrupted_run() {
    let ckpt = checkpoint();
    let d = data(ckpt.path(), &records(), &opts(256)).unwrap();
    // 4 examples, global batch 2: 2 steps per epoch, 6 steps; resume inside epoch 1.
    let s = settings(2, 2, 3, 2e-3);
    let (total, k) = (6, 3);
    let full_model = trainable(ckpt.path());
    let mut full = SftTrainer::for_model(&s, 21, &full_model).unwrap();
    let mut full_metrics = Vec::new();
    full.train(&full_model, &d, |m| {
        full_metrics.push(m.clone());
        Ok(())
    })
    .unwrap();

    let first_model = trainable(ckpt.path());
    let mut first = SftTrainer::for_model(&s, 21, &first_model).unwrap();
    let r = first.run(&first_model, &d, 0..k, |_| Ok(())).unwrap();
    assert_eq!(r.steps_run, k);
    let saved = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(ckpt.path()).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() && f.file_name() != "model.safetensors" {
            std::fs::copy(f.path(), saved.path().join(f.file_name())).unwrap();
        }
    }
    first_model.var_store().unwrap().save(saved.path().join("model.safetensors")).unwrap();
    let optim = saved.path().join("optim.safetensors");
    Tensor::write_safetensors(&first.optimizer().state_tensors(), &optim).unwrap();

    let resumed_model = trainable(saved.path());
    let mut resumed = SftTrainer::for_model(&s, 21, &resumed_model).unwrap();
    resumed.optimizer_mut().load_state_tensors(Tensor::read_safetensors(&optim).unwrap()).unwrap();
    for step in 0..total {
        assert_eq!(resumed.step_examples(step, 4).unwrap(), full.step_examples(step, 4).unwrap(), "step {step}");
    }
    let mut resumed_metrics = Vec::new();
    resumed
        .run(&resumed_model, &d, k..total, |m| {
            resumed_metrics.push(m.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(resumed_metrics.len(), total - k);
    for (a, b) in resumed_metrics.iter().zip(&full_metrics[k..]) {
        assert_eq!((a.step, a.epoch, a.lr, a.tokens), (b.step, b.epoch, b.lr, b.tokens));
        assert_eq!(a.loss, b.loss, "step {}", a.step);
    }
    let (x, y) = (snapshot(&full_model), snapshot(&resumed_model));
    for (name, t) in &x {
        assert!(t.equal(&y[name]), "{name} differs after resuming at step {k}");
    }
    // The order is the seed's: another base seed visits the examples differently.
    let mut other = SftTrainer::for_model(&s, 22, &full_model).unwrap();
    let orders = |t: &mut SftTrainer| (0..total).map(|s| t.step_examples(s, 4).unwrap()).collect::<Vec<_>>();
    assert_ne!(orders(&mut other), orders(&mut full));
}

#[test]
fn prepare_errors_name_the_record_and_the_fix() {
    let ckpt = checkpoint();
    let err = |recs: &[SftRecord], o: &PrepareOptions| format!("{:#}", data(ckpt.path(), recs, o).unwrap_err());
    let text_only = PrepareOptions { modality: Modality::TextOnly, ..opts(256) };
    let e = err(&records(), &text_only);
    assert!(e.contains("SFT record 0") && e.contains("text_only"), "{e}");
    // Text-only records are fine under TextOnly.
    let texts: Vec<SftRecord> = records().into_iter().filter(|r| r.images.is_empty()).collect();
    assert_eq!(data(ckpt.path(), &texts, &text_only).unwrap().examples.len(), 2);

    let mut missing = records();
    missing[2].images = vec!["images/missing.png".into()];
    let e = err(&missing, &opts(256));
    assert!(e.contains("SFT record 2") && e.contains("missing.png"), "{e}");

    // max_length 24: the system prompt and the user turn leave no room for the 12 image tokens of record 0.
    let e = err(&records(), &opts(24));
    assert!(e.contains("SFT record 0") && e.contains("image tokens") && e.contains("max_length"), "{e}");
    let dropped = data(ckpt.path(), &records(), &PrepareOptions { image_cut: ImageCut::Drop, ..opts(24) }).unwrap();
    assert_eq!((dropped.stats.dropped_image_cut, dropped.stats.examples, dropped.stats.truncated), (2, 2, 2));
    for ex in &dropped.examples {
        assert_eq!(ex.input_ids.len(), 24);
        assert!(ex.truncated && ex.targets() > 0 && ex.grids.is_empty());
    }
    let model = trainable(ckpt.path());
    let e = SftTrainer::for_model(&settings(4, 2, 1, 1e-3), 0, &model).unwrap().train(&model, &dropped, |_| Ok(()));
    assert!(format!("{:#}", e.unwrap_err()).contains("fewer than one global batch"));
}

#[test]
fn caller_owned_var_store_and_bf16_model_train() {
    let ckpt = checkpoint();
    let d = data(ckpt.path(), &records(), &opts(256)).unwrap();
    let s = settings(4, 2, 6, 5e-3);
    let losses = |trainer: &mut SftTrainer, model: &Qwen2_5_VL| {
        let mut out = Vec::new();
        trainer
            .train(model, &d, |m| {
                out.push(m.loss);
                Ok(())
            })
            .unwrap();
        out
    };
    // A model built on the caller's VarStore (trainable as created).
    let cfg = Config::from_file(&ckpt.path().join("config.json")).unwrap();
    let vs = nn::VarStore::new(Device::Cpu);
    let model = {
        let _g = INIT.lock().unwrap();
        r1lab::tch::manual_seed(1);
        Qwen2_5_VL::new(&vs.root(), &cfg).unwrap()
    };
    let e = SftTrainer::for_model(&s, 0, &model).unwrap_err();
    assert!(format!("{e:#}").contains("SftTrainer::new"), "{e:#}");
    let before = vs.variables()["model.norm.weight"].copy();
    let f32_losses = losses(&mut SftTrainer::new(&s, 0, &vs).unwrap(), &model);
    assert!(!vs.variables()["model.norm.weight"].equal(&before));
    // bf16 weights: the update goes through f32 (train::optim), the loss is computed in f32.
    let mut bf16 = Qwen2_5_VL::from_dir(ckpt.path(), Device::Cpu, Kind::BFloat16).unwrap();
    bf16.var_store_mut().unwrap().unfreeze();
    let bf16_losses = losses(&mut SftTrainer::for_model(&s, 0, &bf16).unwrap(), &bf16);
    println!("caller-owned f32 loss {f32_losses:.3?}; bf16 loss {bf16_losses:.3?}");
    for l in [&f32_losses, &bf16_losses] {
        assert!(l.iter().all(|x| x.is_finite()) && l[5] < 0.5 * l[0], "{l:?}");
    }
    assert_eq!(bf16.var_store().unwrap().variables()["model.norm.weight"].kind(), Kind::BFloat16);
}
