//! Parity of the whole Qwen2.5-VL (`r1lab::model::qwen2_5_vl::Qwen2_5_VL`: vision tower, `<|image_pad|>` scatter,
//! `get_rope_index`, decoder) and of greedy generation (`r1lab::model::sampling::generate`) with transformers 5.17
//! `Qwen2_5_VLForConditionalGeneration`, against the fixtures written by `tests/fixtures/qwen2_5_vl_model.py` (no
//! Python at test time).
//!
//! Asserted (f32, CPU; `R1LAB_TEST_DEVICE=cuda` runs the same on a GPU):
//! - logits from `input_ids` + `pixel_values` + `image_grid_thw` at unpadded positions: max abs difference ≤ 1e-4
//!   (printed with `--nocapture`) for text only, one image, two images of odd merged sizes in one prompt, and a
//!   left-padded batch mixing image and text-only rows;
//! - greedy decoding of the mixed batch, 32 new tokens, EOS ids [2, 477, 295] (two rows stop early and are padded
//!   while the third runs to the limit): `generate` with the KV cache, and a full recompute per step without it,
//!   give tokens identical to transformers' `generate` (with and without cache);
//! - sampling with a fixed seed gives the same sequence alone and inside the mixed batch.
//! - `r1lab forward` / `r1lab generate` run on a random checkpoint folder with the chat fixture's tokenizer, template
//!   and image processor: the written logits equal the library's forward, and a seed fixes the sampled text.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use r1lab::model::qwen2_5_vl::rope::continuation_position_ids;
use r1lab::model::qwen2_5_vl::vision::grids_from_tensor;
use r1lab::model::qwen2_5_vl::{Images, Qwen2_5_VL};
use r1lab::model::sampling::{Generation, SamplingParams, decode_loop, generate};
use r1lab::tch::{Device, Kind, Tensor};
use serde_json::Value;

const LOGITS_TOL: f64 = 1e-4;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_model")
}

fn device() -> Device {
    match std::env::var("R1LAB_TEST_DEVICE").as_deref() {
        Ok("cuda") => Device::Cuda(0),
        _ => Device::Cpu,
    }
}

fn model() -> Qwen2_5_VL {
    Qwen2_5_VL::from_dir(&dir().join("model"), device(), Kind::Float).unwrap()
}

fn tensors() -> HashMap<String, Tensor> {
    Tensor::read_safetensors(dir().join("cases.safetensors")).unwrap().into_iter().collect()
}

/// `input_ids`, `attention_mask`, f32 `pixel_values` and grids of a case.
struct Case {
    ids: Tensor,
    mask: Tensor,
    pixels: Option<Tensor>,
    grids: Vec<[i64; 3]>,
}

impl Case {
    fn load(t: &HashMap<String, Tensor>, name: &str) -> Self {
        let get = |k: &str| t.get(&format!("{name}.{k}"));
        let grids = get("image_grid_thw").map(|g| grids_from_tensor(g).unwrap()).unwrap_or_default();
        Case {
            ids: get("input_ids").unwrap().shallow_clone(),
            mask: get("attention_mask").unwrap().shallow_clone(),
            pixels: get("pixel_values").map(|p| p.to_kind(Kind::Float).to_device(device())),
            grids,
        }
    }

    fn images(&self) -> Option<Images<'_>> {
        self.pixels.as_ref().map(|p| Images { pixel_values: p, grid_thw: &self.grids })
    }
}

#[test]
fn logits_match_transformers() {
    let _g = r1lab::tch::no_grad_guard();
    let m = model();
    let t = tensors();
    for name in ["text_only", "one_image", "two_images", "mixed_batch"] {
        let c = Case::load(&t, name);
        let want = &t[&format!("{name}.logits")];
        let got = m.forward(&c.ids, Some(&c.mask), c.images()).unwrap().to_device(Device::Cpu);
        assert_eq!(got.size(), want.size(), "{name}");
        let keep = c.mask.unsqueeze(-1).to_kind(Kind::Float);
        let diff = ((got - want).abs() * keep).max().double_value(&[]);
        println!("{name}: logits max abs diff {diff:.3e} (grids {:?})", c.grids);
        assert!(diff <= LOGITS_TOL, "{name}: logits differ from transformers by {diff}");
    }
}

#[test]
fn greedy_generation_matches_transformers() {
    let m = model();
    let t = tensors();
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(dir().join("cases.json")).unwrap()).unwrap();
    let n = meta["new_tokens"].as_u64().unwrap() as usize;
    let want: Vec<Vec<i64>> = serde_json::from_value(meta["generate"].clone()).unwrap();
    let c = Case::load(&t, "mixed_batch");
    let eos: Vec<i64> = serde_json::from_value(meta["eos_token_ids"].clone()).unwrap();
    let params = SamplingParams::greedy(n, eos.clone());
    let got = generate(&m, &c.ids, Some(&c.mask), c.images(), &params, &[0, 0, 0]).unwrap();
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        // transformers pads a finished row with pad_token_id 0 after its EOS.
        let end = w.iter().position(|x| eos.contains(x)).map_or(w.len(), |p| p + 1);
        assert_eq!(g.tokens, w[..end], "row {i}: greedy tokens differ from transformers");
        assert!(w[end..].iter().all(|&x| x == 0), "row {i}: transformers pads after the EOS");
        assert_eq!(g.truncated, end == n && !eos.contains(&w[n - 1]), "row {i}");
        assert_eq!(g.logprobs.len(), g.tokens.len());
        assert!(g.logprobs.iter().all(|l| l.is_finite() && *l <= 0.0));
    }
    // Without a KV cache: every step recomputes the whole sequence (prompt positions from `get_rope_index`, generated
    // ones from `rope_deltas`; generated tokens are text whatever their id), against transformers' `use_cache=False`.
    let want_no_cache: Vec<Vec<i64>> = serde_json::from_value(meta["generate_no_cache"].clone()).unwrap();
    assert_eq!(want_no_cache, want);
    let no_cache = greedy_without_cache(&m, &c, &params);
    for (i, (a, b)) in no_cache.iter().zip(&got).enumerate() {
        assert_eq!(a.tokens, b.tokens, "row {i}: greedy without cache differs");
        let d = a.logprobs.iter().zip(&b.logprobs).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
        assert!(d < 1e-4, "row {i}: log-probs with and without cache differ by {d}");
    }
    let lens: Vec<usize> = got.iter().map(|g| g.tokens.len()).collect();
    assert!(lens.iter().any(|&l| l < n) && lens.contains(&n), "the fixture should stop some rows early: {lens:?}");
    println!("greedy tokens identical (lengths {lens:?} of at most {n}, EOS {eos:?})");
}

fn greedy_without_cache(m: &Qwen2_5_VL, c: &Case, params: &SamplingParams) -> Vec<Generation> {
    let _g = r1lab::tch::no_grad_guard();
    let idx = m.rope_spec().get_rope_index(&c.ids, Some(&c.mask), &c.grids).unwrap();
    let mut embeds = m.inputs_embeds(&c.ids, c.images()).unwrap();
    let (mut pos, mut mask) = (idx.position_ids.to_device(device()), c.mask.to_device(device()));
    let first = m.text.forward(&embeds, &pos, Some(&mask), None).unwrap().select(1, -1);
    let mut deltas = idx.rope_deltas.shallow_clone();
    decode_loop(first, params, &vec![0; c.ids.size()[0] as usize], |next, keep| {
        if let Some(k) = keep {
            (mask, embeds, pos) = (mask.index_select(0, k), embeds.index_select(0, k), pos.index_select(1, k));
            deltas = deltas.index_select(0, &k.to_device(deltas.device()));
        }
        mask = Tensor::cat(&[&mask, &next.ones_like()], 1);
        embeds = Tensor::cat(&[&embeds, &m.text.embed(next)], 1);
        pos = Tensor::cat(&[&pos, &continuation_position_ids(&mask, &deltas, 1)], 2);
        Ok(m.text.forward(&embeds, &pos, Some(&mask), None)?.select(1, -1))
    })
    .unwrap()
}

#[test]
fn seeded_sampling_does_not_depend_on_the_batch() {
    let m = model();
    let t = tensors();
    let c = Case::load(&t, "mixed_batch");
    let params = SamplingParams { temperature: 1.0, top_p: 0.9, top_k: 50, max_new_tokens: 16, ..Default::default() };
    let batch = generate(&m, &c.ids, Some(&c.mask), c.images(), &params, &[11, 12, 13]).unwrap();
    // Row 2 alone: its unpadded tokens and its own image (the last grid).
    let row = c.ids.get(2);
    let keep = c.mask.get(2).nonzero().view(-1);
    let ids = row.index_select(0, &keep).unsqueeze(0);
    let last = c.grids[2];
    let patches = last.iter().product::<i64>();
    let pixels = c.pixels.as_ref().unwrap();
    let own = pixels.narrow(0, pixels.size()[0] - patches, patches);
    let grids = [last];
    let alone =
        generate(&m, &ids, None, Some(Images { pixel_values: &own, grid_thw: &grids }), &params, &[13]).unwrap();
    assert_eq!(alone[0].tokens, batch[2].tokens);
    let again =
        generate(&m, &ids, None, Some(Images { pixel_values: &own, grid_thw: &grids }), &params, &[14]).unwrap();
    assert_ne!(again[0].tokens, alone[0].tokens, "another seed should give another sample");
}

const VOCAB: i64 = 642;
const IMAGE_PAD: i64 = 632;

/// A random checkpoint folder a CLI can load: the fixture model's config with the chat fixture's vocabulary and
/// special ids and the real patch size (so that the chat fixture's tokenizer, template and image processor fit),
/// random weights.
fn cli_checkpoint() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let chat = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_chat");
    for f in ["tokenizer.json", "tokenizer_config.json", "chat_template.json", "preprocessor_config.json"] {
        std::fs::copy(chat.join(f), tmp.path().join(f)).unwrap();
    }
    let mut cfg: Value =
        serde_json::from_str(&std::fs::read_to_string(dir().join("model/config.json")).unwrap()).unwrap();
    // The chat fixture's tokenizer: 642 ids, Qwen's added tokens at 620..641 (151643.. in Qwen).
    cfg["text_config"]["vocab_size"] = VOCAB.into();
    cfg["text_config"]["eos_token_id"] = 622.into();
    cfg["text_config"]["bos_token_id"] = 620.into();
    cfg["text_config"]["pad_token_id"] = 620.into();
    for (k, v) in [("image_token_id", IMAGE_PAD), ("video_token_id", 633), ("vision_start_token_id", 629)] {
        cfg[k] = v.into();
    }
    cfg["vision_end_token_id"] = 630.into();
    cfg["vision_config"]["patch_size"] = 14.into();
    cfg["vision_config"]["window_size"] = 112.into();
    let text = serde_json::to_string_pretty(&cfg).unwrap();
    std::fs::write(tmp.path().join("config.json"), &text).unwrap();
    let parsed = r1lab::model::qwen2_5_vl::Config::parse(&text, "test").unwrap();
    let vs = r1lab::tch::nn::VarStore::new(Device::Cpu);
    let _m = Qwen2_5_VL::new(&vs.root(), &parsed).unwrap();
    vs.save(tmp.path().join("model.safetensors")).unwrap();
    tmp
}

#[test]
fn cli_forward_and_generate_run_on_a_checkpoint_folder() {
    let ckpt = cli_checkpoint();
    let image = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/processor/rgb_56x84.png");
    let out = ckpt.path().join("out/fwd.safetensors");
    let bin = env!("CARGO_BIN_EXE_r1lab");
    let run = |args: &[&str]| {
        let o = std::process::Command::new(bin).args(["--device", "cpu"]).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(o.status.success(), "r1lab {args:?} failed: {err}");
        (String::from_utf8_lossy(&o.stdout).to_string(), err)
    };
    let model = ckpt.path().to_str().unwrap();
    let (img, img2) = (image.to_str().unwrap(), image.to_str().unwrap());
    let o = out.to_str().unwrap();
    run(&["forward", "--model", model, "--prompt", "Describe.", "--image", img, "--image", img2, "--out", o]);
    let t: HashMap<String, Tensor> = Tensor::read_safetensors(&out).unwrap().into_iter().collect();
    let (ids, grid) = (&t["input_ids"], &t["image_grid_thw"]);
    assert_eq!(grid.size(), [2, 3]);
    assert_eq!(t["logits"].size(), [1, ids.size()[1], VOCAB]);
    assert_eq!(
        t["pixel_values"].size()[0],
        grids_from_tensor(grid).unwrap().iter().map(|g| g.iter().product::<i64>()).sum::<i64>()
    );
    let n_pad = ids.eq(IMAGE_PAD).sum(Kind::Int64).int64_value(&[]);
    assert_eq!(t["pixel_values"].size()[0], 4 * n_pad);
    // The written logits are the library's forward on the written inputs.
    let m = Qwen2_5_VL::from_dir(ckpt.path(), Device::Cpu, Kind::Float).unwrap();
    let grids = grids_from_tensor(grid).unwrap();
    let images = Images { pixel_values: &t["pixel_values"], grid_thw: &grids };
    let again = r1lab::tch::no_grad(|| m.forward(ids, None, Some(images)).unwrap());
    assert!(again.equal(&t["logits"]));

    let args = ["generate", "--model", model, "--prompt", "Hi", "--image", img, "--max-new-tokens", "5"];
    let (_, err) = run(&[&args[..], &["--temperature", "0.8", "--top-p", "0.9", "--seed", "3"]].concat());
    let summary: Value = serde_json::from_str(err.lines().last().unwrap()).unwrap();
    assert!(summary["tokens"].as_u64().unwrap() <= 5, "{summary}");
    let (text1, _) = run(&[&args[..], &["--temperature", "0.8", "--seed", "3"]].concat());
    let (text2, _) = run(&[&args[..], &["--temperature", "0.8", "--seed", "3"]].concat());
    assert_eq!(text1, text2, "the same seed gives the same text");
}
