//! Unit tests of [`super::VisionTower`] that need no fixture: shapes, weight names, input errors, and the
//! independence of images batched in one call. Parity with transformers is in `tests/vision_parity.rs`.
use super::*;

fn tiny() -> VisionConfig {
    let json = r#"{"depth": 3, "hidden_size": 16, "intermediate_size": 24, "num_heads": 2, "out_hidden_size": 20,
                   "window_size": 56, "fullatt_block_indexes": [1]}"#;
    serde_json::from_str(json).unwrap()
}

fn tower(kind: Kind) -> (nn::VarStore, VisionTower) {
    tch::manual_seed(3);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let tower = VisionTower::new(vs.root() / "visual", &tiny()).unwrap();
    vs.set_kind(kind);
    (vs, tower)
}

fn pixels(grids: &[Grid]) -> Tensor {
    let n: i64 = grids.iter().map(|g| g.iter().product::<i64>()).sum();
    Tensor::randn([n, 3 * 2 * 14 * 14], (Kind::Float, Device::Cpu))
}

#[test]
fn weight_names_are_the_checkpoint_keys() {
    let (vs, _) = tower(Kind::Float);
    let mut names: Vec<String> = vs.variables().into_keys().collect();
    names.sort();
    let block0: Vec<&str> = names.iter().filter(|n| n.starts_with("visual.blocks.0.")).map(|s| s.as_str()).collect();
    assert_eq!(
        block0,
        [
            "visual.blocks.0.attn.proj.bias",
            "visual.blocks.0.attn.proj.weight",
            "visual.blocks.0.attn.qkv.bias",
            "visual.blocks.0.attn.qkv.weight",
            "visual.blocks.0.mlp.down_proj.bias",
            "visual.blocks.0.mlp.down_proj.weight",
            "visual.blocks.0.mlp.gate_proj.bias",
            "visual.blocks.0.mlp.gate_proj.weight",
            "visual.blocks.0.mlp.up_proj.bias",
            "visual.blocks.0.mlp.up_proj.weight",
            "visual.blocks.0.norm1.weight",
            "visual.blocks.0.norm2.weight",
        ]
    );
    let rest: Vec<&str> = names.iter().filter(|n| !n.starts_with("visual.blocks.")).map(|s| s.as_str()).collect();
    assert_eq!(
        rest,
        [
            "visual.merger.ln_q.weight",
            "visual.merger.mlp.0.bias",
            "visual.merger.mlp.0.weight",
            "visual.merger.mlp.2.bias",
            "visual.merger.mlp.2.weight",
            "visual.patch_embed.proj.weight",
        ]
    );
    assert_eq!(names.len(), 3 * 12 + 6);
    assert_eq!(vs.variables()["visual.patch_embed.proj.weight"].size(), [16, 3, 2, 14, 14]);
    assert_eq!(vs.variables()["visual.merger.mlp.0.weight"].size(), [64, 64]);
}

#[test]
fn images_in_one_call_are_independent() {
    let (_vs, tower) = tower(Kind::Float);
    let grids = [[1, 6, 10], [1, 4, 4], [2, 2, 6]];
    let x = pixels(&grids);
    let all = tower.forward(&x, &grids).unwrap();
    assert_eq!(all.size(), [(60 + 16 + 24) / 4, 20]);
    let (mut row, mut out_row) = (0, 0);
    for g in grids {
        let n = g.iter().product::<i64>();
        let alone = tower.forward(&x.narrow(0, row, n), &[g]).unwrap();
        let diff = (alone - all.narrow(0, out_row, n / 4)).abs().max().double_value(&[]);
        assert!(diff < 1e-5, "image {g:?} differs by {diff} when batched");
        row += n;
        out_row += n / 4;
    }
}

#[test]
fn states_have_the_right_shapes() {
    let (_vs, tower) = tower(Kind::Float);
    let grids = [[1, 6, 6]];
    let out = tower.forward_with_states(&pixels(&grids), &grids).unwrap();
    assert_eq!(out.image_embeds.size(), [9, 20]);
    assert_eq!(out.patch_embed.unwrap().size(), [36, 16]);
    assert_eq!(out.block_states.len(), 3);
    assert!(out.block_states.iter().all(|s| s.size() == [36, 16]));
}

#[test]
fn runs_in_bf16() {
    let (_vs, tower) = tower(Kind::BFloat16);
    let grids = [[1, 6, 10]];
    let out = tower.forward(&pixels(&grids), &grids).unwrap();
    assert_eq!(out.kind(), Kind::BFloat16);
    assert_eq!(out.size(), [15, 20]);
}

#[test]
fn inconsistent_inputs_are_errors() {
    let (_vs, tower) = tower(Kind::Float);
    let err = tower.forward(&pixels(&[[1, 4, 4]]), &[[1, 4, 6]]).unwrap_err().to_string();
    assert!(err.contains("describes 24 patches"), "{err}");
    let err = tower.forward(&pixels(&[[1, 3, 4]]), &[[1, 3, 4]]).unwrap_err();
    assert!(format!("{err:#}").contains("multiples of spatial_merge_size"), "{err:#}");
    let narrow = Tensor::zeros([16, 10], (Kind::Float, Device::Cpu));
    assert!(tower.forward(&narrow, &[[1, 4, 4]]).is_err());
}

#[test]
fn bad_configs_are_rejected() {
    let vs = nn::VarStore::new(Device::Cpu);
    let mut cfg = tiny();
    cfg.num_heads = 8; // head_dim 2
    assert!(VisionTower::new(vs.root() / "v", &cfg).is_err());
    let mut cfg = tiny();
    cfg.fullatt_block_indexes = vec![3];
    assert!(VisionTower::new(vs.root() / "w", &cfg).is_err());
}

#[test]
fn grids_from_a_tensor() {
    let t = Tensor::from_slice(&[1i64, 4, 6, 2, 2, 2]).view([2, 3]);
    assert_eq!(grids_from_tensor(&t).unwrap(), vec![[1, 4, 6], [2, 2, 2]]);
    assert!(grids_from_tensor(&Tensor::from_slice(&[1i64, 2])).is_err());
}
