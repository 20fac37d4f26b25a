//! SFT end to end on the tiny Qwen2.5-VL text decoder (tests/fixtures/qwen2_5_vl_text/tied, vocab 512): labels
//! from assistant spans, the shifted cross-entropy, two accumulated micro-batches per optimizer step under
//! HF's global token-mean, AdamW (LLaMA-Factory settings) with grad clipping and the HF cosine schedule.
//! Asserts that memorising two short conversations drives the loss far down, that the frozen
//! `model.embed_tokens` does not move, and that the accumulated gradient equals the one-batch gradient.
use std::path::Path;

use r1lab::model::qwen2_5_vl::Config;
use r1lab::model::qwen2_5_vl::rope::RopeIndexSpec;
use r1lab::model::qwen2_5_vl::text::TextModel;
use r1lab::sft::labels::{ChatMarkers, TrainedEnd, assistant_labels};
use r1lab::sft::loss::{Normalization, count_targets, sft_loss};
use r1lab::tch::{Device, Kind, Tensor, nn};
use r1lab::train::optim::{AdamW, AdamWConfig, Frozen};
use r1lab::train::schedule::LrSchedule;

// Synthetic ids inside the tiny vocab: 1 <|im_start|>, 2 <|im_end|>, 9 "\n", 7 "assistant", 5 "user".
fn markers() -> ChatMarkers {
    ChatMarkers { im_start: 1, im_end: 2, assistant_header: vec![7, 9], newline: 9 }
}

fn conversations() -> Vec<Vec<i64>> {
    vec![
        vec![1, 5, 9, 100, 101, 2, 9, 1, 7, 9, 200, 201, 202, 203, 2, 9],
        vec![1, 5, 9, 110, 2, 9, 1, 7, 9, 300, 301, 302, 303, 304, 305, 2, 9],
    ]
}

struct Batch {
    ids: Tensor,
    mask: Tensor,
    labels: Tensor,
}

/// Left-padded batch (pad id 0) with labels.
fn batch(rows: &[Vec<i64>]) -> Batch {
    let len = rows.iter().map(Vec::len).max().unwrap();
    let (mut ids, mut mask, mut labels) = (vec![], vec![], vec![]);
    for r in rows {
        let pad = len - r.len();
        ids.extend(std::iter::repeat_n(0, pad).chain(r.iter().copied()));
        mask.extend(std::iter::repeat_n(0i64, pad).chain(std::iter::repeat_n(1, r.len())));
        labels.extend(std::iter::repeat_n(-100, pad));
        labels.extend(assistant_labels(r, &markers(), TrainedEnd::ImEndAndNewline).unwrap());
    }
    let shape = [rows.len() as i64, len as i64];
    let t = |v: &[i64]| Tensor::from_slice(v).view(shape);
    Batch { ids: t(&ids), mask: t(&mask), labels: t(&labels) }
}

fn model() -> (nn::VarStore, TextModel, RopeIndexSpec) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_text/tied");
    let cfg = Config::from_file(&dir.join("config.json")).unwrap();
    r1lab::tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let m = TextModel::new(&vs.root(), &cfg).unwrap();
    (vs, m, RopeIndexSpec::from_config(&cfg))
}

fn loss(m: &TextModel, spec: &RopeIndexSpec, b: &Batch, norm: Normalization) -> Tensor {
    let pos = spec.get_rope_index(&b.ids, Some(&b.mask), &[]).unwrap().position_ids;
    let logits = m.forward(&m.embed(&b.ids), &pos, Some(&b.mask), None).unwrap();
    sft_loss(&logits, &b.labels, norm).unwrap()
}

#[test]
fn tiny_text_model_memorises_assistant_turns() {
    let (vs, m, spec) = model();
    let convs = conversations();
    let micro: Vec<Batch> = convs.iter().map(|c| batch(std::slice::from_ref(c))).collect();
    let step_targets: i64 = micro.iter().map(|b| count_targets(&b.labels)).sum();
    assert_eq!(step_targets, 6 + 8, "content + <|im_end|> + \\n of each assistant turn");
    let frozen = Frozen::prefixes(&["model.embed_tokens."]);
    let cfg = AdamWConfig { weight_decay: 0.01, ..AdamWConfig::LLAMA_FACTORY_SFT };
    let mut opt = AdamW::new(&vs, cfg, &frozen).unwrap();
    let embed_before = vs.variables()["model.embed_tokens.weight"].copy();
    let steps = 30;
    let sched = LrSchedule::hf_cosine(3e-3, 0.1, steps, 0.0);
    let mut first = None;
    let mut last = 0.0;
    for step in 0..steps {
        let mut total = 0.0;
        for b in &micro {
            let l = loss(&m, &spec, b, Normalization::GlobalTokenMean { step_targets });
            l.backward();
            total += l.double_value(&[]);
        }
        let r = opt.clip_and_step(sched.lr(step), Some(1.0)).unwrap();
        assert!(!r.skipped && r.grad_norm.is_finite());
        first.get_or_insert(total);
        last = total;
    }
    let first = first.unwrap();
    println!("SFT loss {first:.4} -> {last:.4} in {steps} steps");
    assert!(first > 5.0 && last < 0.5 * first, "loss {first} -> {last}");
    assert!(vs.variables()["model.embed_tokens.weight"].equal(&embed_before), "frozen embeddings moved");
}

#[test]
fn accumulated_micro_batches_equal_one_padded_batch() {
    let convs = conversations();
    // One model for both runs: `manual_seed` is process-global and the other test draws from it concurrently.
    let (vs, m, spec) = model();
    let grad_of = |micro: &[Batch], n: i64| {
        for b in micro {
            loss(&m, &spec, b, Normalization::GlobalTokenMean { step_targets: n }).backward();
        }
        let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        vars.sort_by(|a, b| a.0.cmp(&b.0));
        let g = Tensor::cat(&vars.iter().map(|(_, v)| v.grad().reshape([-1])).collect::<Vec<_>>(), 0).copy();
        for (_, v) in vars.iter_mut() {
            v.zero_grad();
        }
        g
    };
    let big = batch(&convs);
    let n = count_targets(&big.labels);
    let g_big = grad_of(&[big], n);
    let micro: Vec<Batch> = convs.iter().map(|c| batch(std::slice::from_ref(c))).collect();
    let g_acc = grad_of(&micro, n);
    let d = (&g_big - &g_acc).abs().max().double_value(&[]);
    let scale = g_big.abs().max().double_value(&[]);
    println!("accumulated vs one batch: max |dgrad| {d:e} (max |grad| {scale:e})");
    assert!(d <= 1e-5 * scale.max(1.0), "{d:e}");
    assert_eq!(g_big.kind(), Kind::Float);
}
