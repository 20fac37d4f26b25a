use std::path::Path;

use tch::{Device, Kind, Tensor, nn};

use super::*;
use crate::model::qwen2_5_vl::rope::{RopeIndexSpec, continuation_position_ids};

fn tiny(tied: bool) -> Config {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_config/tiny.config.json");
    let mut cfg = Config::from_file(&path).unwrap();
    cfg.tie_word_embeddings = tied;
    cfg
}

fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
    (a.to_kind(Kind::Float) - b.to_kind(Kind::Float)).abs().max().double_value(&[])
}

#[test]
fn bool_mask_is_causal_padded_and_keeps_the_diagonal() {
    let m = Tensor::from_slice(&[0i64, 1, 1]).view([1, 3]);
    let mask = attention_bool_mask(&m, 1, 2);
    assert_eq!(mask.size(), vec![1, 1, 2, 3]);
    let rows = Vec::<Vec<bool>>::try_from(&mask.view([2, 3])).unwrap();
    assert_eq!(rows, vec![vec![false, true, false], vec![false, true, true]]);
    let rows = Vec::<Vec<bool>>::try_from(&attention_bool_mask(&m, 0, 3).view([3, 3])).unwrap();
    assert_eq!(rows[0], vec![true, false, false], "a padded query sees itself only");
}

#[test]
fn lm_head_is_tied_or_not() {
    for tied in [true, false] {
        let vs = nn::VarStore::new(Device::Cpu);
        let _m = TextModel::new(&vs.root(), &tiny(tied)).unwrap();
        assert_eq!(vs.variables().contains_key("lm_head.weight"), !tied);
        assert!(vs.variables().contains_key("model.layers.1.self_attn.q_proj.bias"));
        assert!(!vs.variables().contains_key("model.layers.1.self_attn.o_proj.bias"));
    }
}

/// Incremental decoding through the KV cache (left-padded batch with an image block) equals one full forward.
#[test]
fn kv_cache_matches_full_forward() {
    tch::manual_seed(0);
    let cfg = tiny(false);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = TextModel::new(&vs.root(), &cfg).unwrap();
    let spec = RopeIndexSpec::from_config(&cfg);
    let img = cfg.image_token_id;
    // Prompt: row 0 = 2 pads + 3 text + image (4 tokens) + 1 text; row 1 = 10 text. Then 3 decoded tokens.
    let prompt = Tensor::from_slice(&[0i64, 0, 5, 6, 7, img, img, img, img, 8, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20])
        .view([2, 10]);
    let pmask = Tensor::from_slice(&[0i64, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]).view([2, 10]);
    let idx = spec.get_rope_index(&prompt, Some(&pmask), &[[1, 4, 4]]).unwrap();
    let new = Tensor::from_slice(&[30i64, 31, 32, 40, 41, 42]).view([2, 3]);
    let ids = Tensor::cat(&[&prompt, &new], 1);
    let mask = Tensor::cat(&[&pmask, &new.ones_like()], 1);
    let pos = Tensor::cat(&[&idx.position_ids, &continuation_position_ids(&mask, &idx.rope_deltas, 3)], 2);
    let feats = Tensor::randn([4, 64], (Kind::Float, Device::Cpu));
    let embeds = scatter_image_embeds(&model.embed(&ids), &ids, img, &feats).unwrap();
    let full = model.forward(&embeds, &pos, Some(&mask), None).unwrap();

    // Padded positions are meaningless; compare the rest.
    let keep = mask.unsqueeze(-1).to_kind(Kind::Float);
    // A cache that grows (10 prompt positions, then doubled to 20) and one sized up front.
    for (mut cache, cap) in
        [(model.new_cache(), 20), (KvCache::with_capacity(cfg.text_config.num_hidden_layers, 13), 13)]
    {
        let mut got =
            vec![model.forward(&embeds.narrow(1, 0, 10), &idx.position_ids, Some(&pmask), Some(&mut cache)).unwrap()];
        for s in 10..13 {
            let m = mask.narrow(1, 0, s + 1);
            let p = continuation_position_ids(&m, &idx.rope_deltas, 1);
            got.push(model.forward(&embeds.narrow(1, s, 1), &p, Some(&m), Some(&mut cache)).unwrap());
        }
        assert_eq!((cache.seq_len(), cache.capacity()), (13, cap));
        let inc = Tensor::cat(&got, 1);
        let d = max_abs(&(&full * &keep), &(inc * &keep));
        assert!(d <= 1e-5, "incremental vs full max abs diff {d} (capacity {cap})");
    }
}

/// Rows dropped from the cache (and one repeated) leave the others decoding as in the full batch.
#[test]
fn a_retained_row_decodes_as_in_the_full_batch() {
    tch::manual_seed(2);
    let cfg = tiny(true);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = TextModel::new(&vs.root(), &cfg).unwrap();
    let ids = Tensor::from_slice(&[0i64, 5, 6, 7, 9, 11, 12, 13, 14, 15, 3, 4, 8, 2, 1]).view([3, 5]);
    let mask = ids.ne(0).to_kind(Kind::Int64);
    let pos = |m: &Tensor, past: i64, n: i64| {
        (m.cumsum(1, Kind::Int64) - 1).clamp_min(0).narrow(1, past, n).unsqueeze(0).repeat([3, 1, 1])
    };
    let full = model.forward(&model.embed(&ids), &pos(&mask, 0, 5), Some(&mask), None).unwrap();
    let mut cache = model.new_cache_for(5);
    let prompt = |t: &Tensor| t.narrow(1, 0, 4);
    let _ = model.forward(&model.embed(&prompt(&ids)), &pos(&mask, 0, 4), Some(&prompt(&mask)), Some(&mut cache));
    let rows = Tensor::from_slice(&[2i64, 0, 2]);
    cache.select_rows(&rows);
    let (ids2, mask2) = (ids.index_select(0, &rows), mask.index_select(0, &rows));
    let last =
        model.forward(&model.embed(&ids2.narrow(1, 4, 1)), &pos(&mask2, 4, 1), Some(&mask2), Some(&mut cache)).unwrap();
    let want = full.index_select(0, &rows).narrow(1, 4, 1);
    // Up to the numerics of different batch shapes (logits here are of order 10).
    let d = max_abs(&last, &want);
    assert!(d <= 1e-4, "retained rows differ from the full batch by {d}");
    assert_eq!(cache.seq_len(), 5);
}

#[test]
fn bf16_forward_is_close_to_f32() {
    tch::manual_seed(1);
    let cfg = tiny(true);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = TextModel::new(&vs.root(), &cfg).unwrap();
    let mut vs16 = nn::VarStore::new(Device::Cpu);
    let model16 = TextModel::new(&vs16.root(), &cfg).unwrap();
    vs16.copy(&vs).unwrap();
    vs16.set_kind(Kind::BFloat16);
    let ids = Tensor::from_slice(&[3i64, 9, 27, 81, 243, 4]).view([1, 6]);
    let pos = Tensor::arange(6, (Kind::Int64, Device::Cpu)).view([1, 1, 6]).repeat([3, 1, 1]);
    let a = model.forward(&model.embed(&ids), &pos, None, None).unwrap();
    let b = model16.forward(&model16.embed(&ids), &pos, None, None).unwrap();
    assert_eq!(b.kind(), Kind::BFloat16);
    let scale = a.abs().max().double_value(&[]);
    let d = max_abs(&a, &b);
    assert!(d <= 0.05 * scale.max(1.0), "bf16 vs f32 max abs diff {d} (logit scale {scale})");
}

#[test]
fn scatter_checks_the_feature_count() {
    let emb = Tensor::zeros([1, 3, 2], (Kind::Float, Device::Cpu));
    let ids = Tensor::from_slice(&[1i64, 7, 7]).view([1, 3]);
    let f = Tensor::from_slice(&[1f32, 2., 3., 4.]).view([2, 2]);
    let out = scatter_image_embeds(&emb, &ids, 7, &f).unwrap();
    assert_eq!(Vec::<f32>::try_from(&out.view(-1)).unwrap(), vec![0., 0., 1., 2., 3., 4.]);
    assert!(scatter_image_embeds(&emb, &ids, 7, &f.narrow(0, 0, 1)).is_err());
}
