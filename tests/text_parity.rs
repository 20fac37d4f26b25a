//! Parity of the Qwen2.5-VL text decoder (`r1lab::model::qwen2_5_vl::{rope, text, weights}`) with transformers
//! 5.17, against the fixtures written by `tests/fixtures/qwen2_5_vl_text.py` (no Python at test time).
//!
//! Asserted (f32, CPU; `R1LAB_TEST_DEVICE=cuda` runs the same on a GPU):
//! - `get_rope_index` position ids and `rope_deltas`: identical, on the forward cases and on `rope_index.json`;
//! - logits at unpadded positions: max abs difference ≤ 1e-4 (measured: 0, bit-identical; printed with
//!   `--nocapture`); in bf16 against transformers loaded with `dtype=bfloat16`: ≤ 1/32 (measured: 0);
//! - KV-cache incremental decoding equals the full forward within 1e-4;
//! - greedy decoding of 24 tokens, with and without KV cache: identical to transformers' `generate`, for text-only
//!   prompts (single and left-padded) and for the left-padded image/text batch (which exercises `rope_deltas`);
//! - the tied checkpoint is a single file, the untied one sharded; both leave exactly the `visual.*` tensors
//!   unused.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use r1lab::model::qwen2_5_vl::Config;
use r1lab::model::qwen2_5_vl::rope::{RopeIndexSpec, continuation_position_ids};
use r1lab::model::qwen2_5_vl::text::{TextModel, scatter_image_embeds};
use r1lab::model::qwen2_5_vl::weights::load_safetensors;
use r1lab::tch::{Device, Kind, Tensor, nn};
use serde_json::Value;

const LOGITS_TOL: f64 = 1e-4;
/// bf16 against transformers' bf16 (`from_pretrained(dtype=bfloat16)`): measured identical; allowed one bf16 step
/// at the logits' scale (|logit| < 4.4 here, where a step is 1/32).
const BF16_TOL: f64 = 1.0 / 32.0;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_text")
}

fn device() -> Device {
    match std::env::var("R1LAB_TEST_DEVICE").as_deref() {
        Ok("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    }
}

fn meta() -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join("cases.json")).unwrap()).unwrap()
}

struct Loaded {
    cfg: Config,
    model: TextModel,
    spec: RopeIndexSpec,
    _vs: nn::VarStore,
}

fn load(tag: &str) -> Loaded {
    load_as(tag, Kind::Float)
}

/// The checkpoint loaded into a VarStore of `kind` (the f32 file is cast on copy).
fn load_as(tag: &str, kind: Kind) -> Loaded {
    let path = dir().join(tag);
    let cfg = Config::from_file(&path.join("config.json")).unwrap();
    let mut vs = nn::VarStore::new(device());
    vs.set_kind(kind);
    let model = TextModel::new(&vs.root(), &cfg).unwrap();
    let report = load_safetensors(&vs, &path).unwrap();
    report.ensure_all_used(&["visual."]).unwrap();
    assert!(!report.unused.is_empty() && report.unused.iter().all(|k| k.starts_with("visual.")));
    assert_eq!(report.files.len() > 1, tag == "untied", "{tag}: {:?}", report.files);
    let spec = RopeIndexSpec::from_config(&cfg);
    Loaded { cfg, model, spec, _vs: vs }
}

fn tensors(tag: &str) -> HashMap<String, Tensor> {
    Tensor::read_safetensors(dir().join(format!("{tag}.cases.safetensors"))).unwrap().into_iter().collect()
}

fn grids(v: &Value) -> Vec<[i64; 3]> {
    v.as_array().unwrap().iter().map(|g| serde_json::from_value(g.clone()).unwrap()).collect()
}

/// Max abs difference over the unpadded positions of (B, L, V) logits.
fn masked_max_abs(a: &Tensor, b: &Tensor, mask: &Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let keep = mask.to_device(a.device()).unsqueeze(-1).to_kind(Kind::Float);
    ((a.to_kind(Kind::Float) - b.to_device(a.device())) * keep).abs().max().double_value(&[])
}

fn check_forward_cases(tag: &str) {
    let m = load(tag);
    let t = tensors(tag);
    let meta = meta();
    let cases = meta["models"][tag]["grids"].as_object().unwrap();
    assert!(!cases.is_empty());
    for (name, g) in cases {
        let get = |k: &str| t[&format!("{name}.{k}")].to_device(device());
        let (ids, mask) = (get("input_ids"), get("attention_mask"));
        let idx = m.spec.get_rope_index(&ids, Some(&mask), &grids(g)).unwrap();
        assert!(idx.position_ids.equal(&get("position_ids")), "{tag}/{name}: position ids differ");
        assert!(idx.rope_deltas.equal(&get("rope_deltas")), "{tag}/{name}: rope deltas differ");
        let embeds =
            scatter_image_embeds(&m.model.embed(&ids), &ids, m.cfg.image_token_id, &get("image_embeds")).unwrap();
        let logits = m.model.forward(&embeds, &idx.position_ids, Some(&mask), None).unwrap();
        let d = masked_max_abs(&logits, &get("logits"), &mask);
        let scale = logits.abs().max().double_value(&[]);
        println!("{tag}/{name}: logits max abs diff {d:.3e} (max |logit| {scale:.2}, shape {:?})", logits.size());
        assert!(d <= LOGITS_TOL, "{tag}/{name}: logits max abs diff {d} > {LOGITS_TOL}");
    }
}

#[test]
fn tied_logits_match_transformers() {
    check_forward_cases("tied");
}

#[test]
fn untied_sharded_logits_match_transformers() {
    check_forward_cases("untied");
}

#[test]
fn rope_index_matches_transformers() {
    let cfg = Config::from_file(&dir().join("tied/config.json")).unwrap();
    let spec = RopeIndexSpec::from_config(&cfg);
    let cases: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(dir().join("rope_index.json")).unwrap()).unwrap();
    for (i, c) in cases.iter().enumerate() {
        let ids: Vec<Vec<i64>> = serde_json::from_value(c["input_ids"].clone()).unwrap();
        let ids = Tensor::from_slice2(&ids);
        let mask = (!c["attention_mask"].is_null()).then(|| {
            Tensor::from_slice2(&serde_json::from_value::<Vec<Vec<i64>>>(c["attention_mask"].clone()).unwrap())
        });
        let idx = spec.get_rope_index(&ids, mask.as_ref(), &grids(&c["grids"])).unwrap();
        let want: Vec<Vec<Vec<i64>>> = serde_json::from_value(c["position_ids"].clone()).unwrap();
        let got = Vec::<Vec<Vec<i64>>>::try_from(&idx.position_ids).unwrap();
        assert_eq!(got, want, "rope_index.json case {i}: position ids");
        let want: Vec<Vec<i64>> = serde_json::from_value(c["rope_deltas"].clone()).unwrap();
        assert_eq!(Vec::<Vec<i64>>::try_from(&idx.rope_deltas).unwrap(), want, "case {i}: rope deltas");
    }
}

/// A prompt for [`greedy`]: left-padded ids, mask, and the images' grids and features (none for text).
struct Prompt {
    ids: Tensor,
    mask: Tensor,
    grids: Vec<[i64; 3]>,
    image_embeds: Option<Tensor>,
}

/// Greedy continuation of `n` tokens: with the KV cache (prefill, then one token per step) or by a full forward
/// over the whole sequence at each step.
fn greedy(m: &Loaded, p: &Prompt, n: i64, use_cache: bool) -> Tensor {
    let _g = r1lab::tch::no_grad_guard();
    let (mut ids, mut mask) = (p.ids.to_device(device()), p.mask.to_device(device()));
    let prompt_len = ids.size()[1];
    let idx = m.spec.get_rope_index(&ids, Some(&mask), &p.grids).unwrap();
    let mut embeds = m.model.embed(&ids);
    if let Some(feats) = &p.image_embeds {
        embeds = scatter_image_embeds(&embeds, &ids, m.cfg.image_token_id, feats).unwrap();
    }
    let mut cache = m.model.new_cache();
    let mut logits = m.model.forward(&embeds, &idx.position_ids, Some(&mask), Some(&mut cache)).unwrap();
    for step in 0..n {
        let next = logits.select(1, -1).argmax(-1, true);
        ids = Tensor::cat(&[&ids, &next], 1);
        mask = Tensor::cat(&[&mask, &next.ones_like()], 1);
        if step + 1 == n {
            break;
        }
        let next_embeds = m.model.embed(&next);
        logits = if use_cache {
            let pos = continuation_position_ids(&mask, &idx.rope_deltas, 1);
            m.model.forward(&next_embeds, &pos, Some(&mask), Some(&mut cache)).unwrap()
        } else {
            // Generated tokens are text whatever their id (the random model does emit the image token id).
            embeds = Tensor::cat(&[&embeds, &next_embeds], 1);
            let generated = ids.size()[1] - prompt_len;
            let new_pos = continuation_position_ids(&mask, &idx.rope_deltas, generated);
            let pos = Tensor::cat(&[&idx.position_ids, &new_pos], 2);
            m.model.forward(&embeds, &pos, Some(&mask), None).unwrap()
        };
    }
    ids.narrow(1, prompt_len, n)
}

#[test]
fn greedy_generation_matches_transformers_generate() {
    let meta = meta();
    let n = meta["new_tokens"].as_i64().unwrap();
    for tag in ["tied", "untied"] {
        let m = load(tag);
        let t = tensors(tag);
        let gens = meta["models"][tag]["generate"].as_object().unwrap();
        assert!(gens.contains_key("mixed_batch"), "the fixture has an image prompt");
        for (name, g) in gens {
            let rows = |k: &str| Tensor::from_slice2(&serde_json::from_value::<Vec<Vec<i64>>>(g[k].clone()).unwrap());
            let (image_embeds, grids) = match g["image_embeds_of"].as_str() {
                Some(case) => (
                    Some(t[&format!("{case}.image_embeds")].shallow_clone()),
                    grids(&meta["models"][tag]["grids"][case]),
                ),
                None => (None, vec![]),
            };
            let prompt = Prompt { ids: rows("input_ids"), mask: rows("attention_mask"), grids, image_embeds };
            let want = rows("cache");
            for use_cache in [true, false] {
                let got = greedy(&m, &prompt, n, use_cache).to_device(Device::Cpu);
                assert!(
                    got.equal(&want),
                    "{tag}/{name} (cache {use_cache}): greedy tokens differ from transformers\n got {:?}\nwant {:?}",
                    Vec::<Vec<i64>>::try_from(&got).unwrap(),
                    Vec::<Vec<i64>>::try_from(&want).unwrap()
                );
            }
        }
    }
}

/// Prefill of the fixture's mixed image/text batch, then 4 decoded tokens through the cache, against one full
/// forward of prompt + continuation with the same position ids.
#[test]
fn kv_cache_incremental_equals_full_forward() {
    let _g = r1lab::tch::no_grad_guard();
    let m = load("tied");
    let t = tensors("tied");
    let meta = meta();
    let get = |k: &str| t[&format!("mixed_batch.{k}")].to_device(device());
    let (prompt, pmask) = (get("input_ids"), get("attention_mask"));
    let idx =
        m.spec.get_rope_index(&prompt, Some(&pmask), &grids(&meta["models"]["tied"]["grids"]["mixed_batch"])).unwrap();
    let b = prompt.size()[0];
    let new = Tensor::from_slice(&[7i64, 8, 9, 10]).to_device(device()).view([1, 4]).repeat([b, 1])
        + Tensor::arange(b, (Kind::Int64, device())).view([b, 1]);
    let ids = Tensor::cat(&[&prompt, &new], 1);
    let mask = Tensor::cat(&[&pmask, &new.ones_like()], 1);
    let pos = Tensor::cat(&[&idx.position_ids, &continuation_position_ids(&mask, &idx.rope_deltas, 4)], 2);
    let embeds = scatter_image_embeds(&m.model.embed(&ids), &ids, m.cfg.image_token_id, &get("image_embeds")).unwrap();
    let full = m.model.forward(&embeds, &pos, Some(&mask), None).unwrap();

    let l = prompt.size()[1];
    let mut cache = m.model.new_cache();
    let mut parts =
        vec![m.model.forward(&embeds.narrow(1, 0, l), &idx.position_ids, Some(&pmask), Some(&mut cache)).unwrap()];
    for s in l..l + 4 {
        let mk = mask.narrow(1, 0, s + 1);
        let p = continuation_position_ids(&mk, &idx.rope_deltas, 1);
        parts.push(m.model.forward(&embeds.narrow(1, s, 1), &p, Some(&mk), Some(&mut cache)).unwrap());
    }
    let inc = Tensor::cat(&parts, 1);
    let d = masked_max_abs(&inc, &full, &mask);
    println!("KV cache incremental vs full forward: max abs diff {d:.3e}");
    assert!(d <= LOGITS_TOL, "incremental vs full: {d}");
    // The prompt part also matches transformers.
    let d = masked_max_abs(&inc.narrow(1, 0, l), &get("logits"), &pmask);
    assert!(d <= LOGITS_TOL, "prefill vs transformers: {d}");
}

/// bf16 weights and activations against transformers' `model.to(torch.bfloat16)`.
#[test]
fn bf16_logits_match_transformers_bf16() {
    let _g = r1lab::tch::no_grad_guard();
    let m = load_as("tied", Kind::BFloat16);
    let t = tensors("tied");
    let meta = meta();
    let mut checked = 0;
    for (name, g) in meta["models"]["tied"]["grids"].as_object().unwrap() {
        let Some(want) = t.get(&format!("{name}.logits_bf16")) else { continue };
        let get = |k: &str| t[&format!("{name}.{k}")].to_device(device());
        let (ids, mask) = (get("input_ids"), get("attention_mask"));
        let idx = m.spec.get_rope_index(&ids, Some(&mask), &grids(g)).unwrap();
        let embeds =
            scatter_image_embeds(&m.model.embed(&ids), &ids, m.cfg.image_token_id, &get("image_embeds")).unwrap();
        let logits = m.model.forward(&embeds, &idx.position_ids, Some(&mask), None).unwrap();
        assert_eq!(logits.kind(), Kind::BFloat16);
        let d = masked_max_abs(&logits, &want.to_kind(Kind::Float), &mask);
        println!("tied/{name} bf16: logits max abs diff {d:.3e}");
        assert!(d <= BF16_TOL, "tied/{name} bf16: logits max abs diff {d} > {BF16_TOL}");
        checked += 1;
    }
    assert_eq!(checked, 2);
}
