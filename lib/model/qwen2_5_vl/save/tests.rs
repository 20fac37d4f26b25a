//! Parity of [`super::save_pretrained`] with transformers' `save_pretrained`, without Python at test time: the
//! fixture `tests/fixtures/qwen2_5_vl_model/model` was written by transformers 5.17 (`qwen2_5_vl_model.py`).
use std::collections::BTreeMap;

use super::*;
use crate::model::qwen2_5_vl::Images;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_model/model")
}

/// name -> (dtype, shape, raw bytes) of a safetensors file.
fn tensors_of(path: &Path) -> BTreeMap<String, (Kind, Vec<i64>, Vec<u8>)> {
    Tensor::read_safetensors(path)
        .unwrap()
        .into_iter()
        .map(|(k, t)| {
            let mut buf = vec![0u8; nbytes(&t) as usize];
            t.copy_data_u8(&mut buf, t.numel());
            (k, (t.kind(), t.size(), buf))
        })
        .collect()
}

#[test]
fn save_reproduces_the_transformers_checkpoint() {
    let model = Qwen2_5_VL::from_dir(&fixture(), Device::Cpu, Kind::Float).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckpt");
    let saved = save_model(&model, &out, SaveOptions::default()).unwrap();
    assert_eq!(saved.files, vec![CONFIG_FILE.to_string(), SAFETENSORS_FILE.to_string()]);

    let theirs = tensors_of(&fixture().join(SAFETENSORS_FILE));
    let ours = tensors_of(&out.join(SAFETENSORS_FILE));
    assert!(model.config.tie_word_embeddings && !ours.contains_key("lm_head.weight"));
    assert_eq!(theirs.keys().collect::<Vec<_>>(), ours.keys().collect::<Vec<_>>(), "key sets differ");
    for (k, (kind, shape, bytes)) in &theirs {
        let (k2, s2, b2) = &ours[k];
        assert_eq!((kind, shape), (k2, s2), "{k}: dtype/shape");
        assert!(bytes == b2, "{k}: tensor bytes differ");
    }
    // The whole file, header layout included, is what the safetensors library wrote.
    let (a, b) =
        (std::fs::read(fixture().join(SAFETENSORS_FILE)).unwrap(), std::fs::read(out.join(SAFETENSORS_FILE)).unwrap());
    assert!(a == b, "model.safetensors is not byte-identical ({} vs {} bytes)", a.len(), b.len());

    // config.json: an equal Config, and the same JSON as transformers' apart from `transformers_version`.
    let cfg = Config::from_file(&out.join(CONFIG_FILE)).unwrap();
    assert_eq!(cfg, model.config);
    let json = |p: &Path| -> Value { serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap() };
    let mut theirs = json(&fixture().join(CONFIG_FILE));
    theirs.as_object_mut().unwrap().remove("transformers_version");
    assert_eq!(json(&out.join(CONFIG_FILE)), theirs);
    let text = std::fs::read_to_string(out.join(CONFIG_FILE)).unwrap();
    assert!(text.starts_with("{\n  \"architectures\": [\n") && text.ends_with("}\n"), "{text}");
}

#[test]
fn save_load_forward_round_trip_gives_identical_logits() {
    let _g = tch::no_grad_guard();
    let model = Qwen2_5_VL::from_dir(&fixture(), Device::Cpu, Kind::Float).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckpt");
    save_model(&model, &out, SaveOptions::default()).unwrap();
    let again = Qwen2_5_VL::from_dir(&out, Device::Cpu, Kind::Float).unwrap();
    let id = model.config.image_token_id;
    let ids = Tensor::from_slice2(&[[3i64, 502, id, id, id, id, 503, 7, 9]]);
    let pixels = Tensor::randn([16, 24], (Kind::Float, Device::Cpu));
    let grids = [[1, 4, 4]];
    let images = Some(Images { pixel_values: &pixels, grid_thw: &grids });
    let a = model.forward(&ids, None, images).unwrap();
    let b = again.forward(&ids, None, images).unwrap();
    assert!(a.equal(&b), "logits differ after save -> load");
}

#[test]
fn shards_bf16_and_replaces_an_existing_checkpoint() {
    let mut model = Qwen2_5_VL::from_dir(&fixture(), Device::Cpu, Kind::Float).unwrap();
    model.var_store_mut().unwrap().set_kind(Kind::BFloat16);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckpt");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("stale.txt"), "old").unwrap();
    let saved = save_model(&model, &out, SaveOptions { max_shard_bytes: Some(100_000) }).unwrap();
    let shards: Vec<&String> = saved.files.iter().filter(|f| f.starts_with("model-")).collect();
    assert!(shards.len() >= 2, "{:?}", saved.files);
    assert!(saved.files.contains(&INDEX_FILE.to_string()) && !out.join("stale.txt").exists());
    // Only the checkpoint is left beside it: no temporary or old folders.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let text = std::fs::read_to_string(out.join(CONFIG_FILE)).unwrap();
    assert!(text.contains("\"dtype\": \"bfloat16\""), "{text}");
    let again = Qwen2_5_VL::from_dir(&out, Device::Cpu, Kind::BFloat16).unwrap();
    let (a, b) = (model.var_store().unwrap().variables(), again.var_store().unwrap().variables());
    assert_eq!(a.len(), b.len());
    for (k, v) in &a {
        assert_eq!(v.kind(), Kind::BFloat16);
        assert!(v.equal(&b[k]), "{k}");
    }
}

#[test]
fn a_failed_save_leaves_the_old_checkpoint() {
    let model = Qwen2_5_VL::from_dir(&fixture(), Device::Cpu, Kind::Float).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ckpt");
    save_model(&model, &out, SaveOptions::default()).unwrap();
    let before = std::fs::read(out.join(SAFETENSORS_FILE)).unwrap();
    // An int64 variable has no config dtype: config.json fails before anything is renamed.
    let ivs = nn::VarStore::new(Device::Cpu);
    let _ = ivs.root().add("x", Tensor::from_slice(&[1i64, 2]), false);
    let e = save_pretrained(&ivs, &model.config, &out, SaveOptions::default()).unwrap_err();
    assert!(format!("{e:#}").contains("cannot save a checkpoint of dtype"), "{e:#}");
    assert_eq!(std::fs::read(out.join(SAFETENSORS_FILE)).unwrap(), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
