//! The layers of the Qwen2.5-VL vision tower (transformers 5.17 `modeling_qwen2_5_vl.py`):
//!
//! - the norms are the text decoder's [`RmsNorm`] (`Qwen2_5_VLRMSNorm`) with eps [`RMS_NORM_EPS`];
//! - [`PatchEmbed`] is `Qwen2_5_VisionPatchEmbed`;
//! - [`VisionAttention`] is `Qwen2_5_VLVisionAttention` with `apply_rotary_pos_emb_vision`;
//! - [`VisionMlp`] is `Qwen2_5_VLMLP(bias=True)`;
//! - [`VisionBlock`] is `Qwen2_5_VLVisionBlock`;
//! - [`PatchMerger`] is `Qwen2_5_VLPatchMerger`.
//!
//! Deliberate deviation (same function, fewer kernel calls): transformers' sdpa/eager path splits q/k/v at
//! `cu_seqlens` and calls attention once per segment; here all segments of the same length are gathered by a
//! [`Segments`] plan into one batch and attended with one `scaled_dot_product_attention` call per distinct
//! length. No mask is built (memory stays O(segment²), not O(S²)) and no masked-out score enters a softmax;
//! the f32 fixtures come out bit-identical to transformers.
use tch::{Kind, Tensor, nn, nn::Module};

pub use crate::model::qwen2_5_vl::text::RmsNorm;

/// `eps` of every RMSNorm of the vision tower (hard-coded in transformers, not a config key).
pub const RMS_NORM_EPS: f64 = 1e-6;

/// Weight init used when building: kaiming-uniform as torch's `nn.Linear`; loading a checkpoint overwrites it.
fn linear(p: nn::Path, i: usize, o: usize) -> nn::Linear {
    nn::linear(p, i as i64, o as i64, nn::LinearConfig { bias: true, ..Default::default() })
}

/// The vision tower's norms: the text decoder's [`RmsNorm`] with the vision eps.
fn rms_norm(p: nn::Path, dim: usize) -> RmsNorm {
    RmsNorm::new(p, dim as i64, RMS_NORM_EPS)
}

/// `(N, C*T*P*P)` flattened patches to `(N, hidden)`.
#[derive(Debug)]
pub struct PatchEmbed {
    /// `(hidden, C, T, P, P)`, checkpoint key `patch_embed.proj.weight`.
    weight: Tensor,
    hidden: i64,
}

impl PatchEmbed {
    pub fn new(p: nn::Path, in_channels: usize, temporal: usize, patch: usize, hidden: usize) -> Self {
        let shape = [hidden, in_channels, temporal, patch, patch].map(|d| d as i64);
        let weight = (p / "proj").var("weight", &shape, nn::init::DEFAULT_KAIMING_UNIFORM);
        Self { weight, hidden: hidden as i64 }
    }

    pub fn device(&self) -> tch::Device {
        self.weight.device()
    }

    /// Number of values in one flattened patch (`C*T*P*P`).
    pub fn patch_len(&self) -> i64 {
        self.weight.size()[1..].iter().product()
    }
}

impl Module for PatchEmbed {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let k = self.weight.size();
        let kernel = [k[2], k[3], k[4]];
        let patches = xs.to_kind(self.weight.kind()).view([-1, k[1], k[2], k[3], k[4]]);
        patches.conv3d(&self.weight, None::<Tensor>, kernel, 0, 1, 1).view([-1, self.hidden])
    }
}

/// Block-diagonal attention plan on the device: see [`super::index::SegmentPlan`].
#[derive(Debug)]
pub struct Segments {
    /// `(length, count, rows)` with `rows` an int64 index tensor of `length * count` rows.
    pub groups: Vec<(i64, i64, Tensor)>,
    pub inverse: Option<Tensor>,
}

/// Rotary tables `(S, head_dim)` in f32, already in the order of the hidden states.
#[derive(Debug)]
pub struct Rotary {
    pub cos: Tensor,
    pub sin: Tensor,
}

fn rotate_half(x: &Tensor) -> Tensor {
    let half = x.size()[x.dim() - 1] / 2;
    let (x1, x2) = (x.narrow(-1, 0, half), x.narrow(-1, half, half));
    Tensor::cat(&[-x2, x1], -1)
}

/// `apply_rotary_pos_emb_vision` on one of q/k, `(S, heads, head_dim)`: in f32, cast back.
fn apply_rotary(x: &Tensor, rope: &Rotary) -> Tensor {
    let xf = x.to_kind(Kind::Float);
    let (cos, sin) = (rope.cos.unsqueeze(1), rope.sin.unsqueeze(1));
    (&xf * cos + rotate_half(&xf) * sin).to_kind(x.kind())
}

#[derive(Debug)]
pub struct VisionAttention {
    qkv: nn::Linear,
    proj: nn::Linear,
    heads: i64,
    head_dim: i64,
}

impl VisionAttention {
    pub fn new(p: nn::Path, hidden: usize, heads: usize) -> Self {
        Self {
            qkv: linear(&p / "qkv", hidden, 3 * hidden),
            proj: linear(&p / "proj", hidden, hidden),
            heads: heads as i64,
            head_dim: (hidden / heads) as i64,
        }
    }

    /// `xs` `(S, hidden)`; attention only within the segments of `segments`.
    pub fn forward(&self, xs: &Tensor, rope: &Rotary, segments: &Segments) -> Tensor {
        let (s, h, d) = (xs.size()[0], self.heads, self.head_dim);
        let qkv = xs.apply(&self.qkv).view([s, 3, h, d]).permute([1, 0, 2, 3]);
        let q = apply_rotary(&qkv.get(0), rope).transpose(0, 1);
        let k = apply_rotary(&qkv.get(1), rope).transpose(0, 1);
        let v = qkv.get(2).transpose(0, 1);
        let scale = (d as f64).powf(-0.5);
        let outs: Vec<Tensor> = segments
            .groups
            .iter()
            .map(|(len, count, rows)| {
                // (heads, S, d) -> (count, heads, len, d)
                let gather = |t: &Tensor| t.index_select(1, rows).view([h, *count, *len, d]).transpose(0, 1);
                let o = Tensor::scaled_dot_product_attention(
                    &gather(&q),
                    &gather(&k),
                    &gather(&v),
                    None::<Tensor>,
                    0.0,
                    false,
                    scale,
                    false,
                );
                o.permute([0, 2, 1, 3]).reshape([count * len, h * d])
            })
            .collect();
        let out = Tensor::cat(&outs, 0);
        let out = match &segments.inverse {
            Some(inv) => out.index_select(0, inv),
            None => out,
        };
        out.apply(&self.proj)
    }
}

#[derive(Debug)]
pub struct VisionMlp {
    gate_proj: nn::Linear,
    up_proj: nn::Linear,
    down_proj: nn::Linear,
}

impl VisionMlp {
    pub fn new(p: nn::Path, hidden: usize, intermediate: usize) -> Self {
        Self {
            gate_proj: linear(&p / "gate_proj", hidden, intermediate),
            up_proj: linear(&p / "up_proj", hidden, intermediate),
            down_proj: linear(&p / "down_proj", intermediate, hidden),
        }
    }
}

impl Module for VisionMlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        (xs.apply(&self.gate_proj).silu() * xs.apply(&self.up_proj)).apply(&self.down_proj)
    }
}

#[derive(Debug)]
pub struct VisionBlock {
    norm1: RmsNorm,
    attn: VisionAttention,
    norm2: RmsNorm,
    mlp: VisionMlp,
}

impl VisionBlock {
    pub fn new(p: nn::Path, hidden: usize, heads: usize, intermediate: usize) -> Self {
        Self {
            norm1: rms_norm(&p / "norm1", hidden),
            attn: VisionAttention::new(&p / "attn", hidden, heads),
            norm2: rms_norm(&p / "norm2", hidden),
            mlp: VisionMlp::new(&p / "mlp", hidden, intermediate),
        }
    }

    pub fn forward(&self, xs: &Tensor, rope: &Rotary, segments: &Segments) -> Tensor {
        let xs = xs + self.attn.forward(&xs.apply(&self.norm1), rope, segments);
        &xs + xs.apply(&self.norm2).apply(&self.mlp)
    }
}

/// `ln_q` → group `merge²` consecutive patches → `mlp.0` → GELU (erf) → `mlp.2`.
#[derive(Debug)]
pub struct PatchMerger {
    ln_q: RmsNorm,
    fc1: nn::Linear,
    fc2: nn::Linear,
    merged: i64,
}

impl PatchMerger {
    pub fn new(p: nn::Path, hidden: usize, merge: usize, out: usize) -> Self {
        let merged = hidden * merge * merge;
        let mlp = &p / "mlp";
        Self {
            ln_q: rms_norm(&p / "ln_q", hidden),
            fc1: linear(&mlp / 0, merged, merged),
            fc2: linear(&mlp / 2, merged, out),
            merged: merged as i64,
        }
    }
}

impl Module for PatchMerger {
    fn forward(&self, xs: &Tensor) -> Tensor {
        xs.apply(&self.ln_q).view([-1, self.merged]).apply(&self.fc1).gelu("none").apply(&self.fc2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn max_abs(a: &Tensor, b: &Tensor) -> f64 {
        (a - b).abs().max().double_value(&[])
    }

    #[test]
    fn rms_norm_matches_formula() {
        let vs = nn::VarStore::new(Device::Cpu);
        let norm = rms_norm(vs.root() / "n", 4);
        let x = Tensor::from_slice(&[1.0f32, -2.0, 3.0, -4.0]).view([1, 4]);
        let rms = (30.0f64 / 4.0 + RMS_NORM_EPS).sqrt();
        let expected = Tensor::from_slice(&[1.0, -2.0, 3.0, -4.0].map(|v: f64| (v / rms) as f32)).view([1, 4]);
        assert!(max_abs(&norm.forward(&x), &expected) < 1e-6);
    }

    #[test]
    fn patch_embed_is_a_linear_map_of_the_flat_patch() {
        tch::manual_seed(1);
        let vs = nn::VarStore::new(Device::Cpu);
        let pe = PatchEmbed::new(vs.root() / "pe", 3, 2, 4, 8);
        assert_eq!(pe.patch_len(), 3 * 2 * 4 * 4);
        let x = Tensor::randn([5, 96], (Kind::Float, Device::Cpu));
        // Stride = kernel = input size: the Conv3d is a product with the flattened kernel.
        let linear = x.matmul(&pe.weight.view([8, -1]).tr());
        assert!(max_abs(&pe.forward(&x), &linear) < 1e-5);
    }

    #[test]
    fn rotate_half_swaps_halves() {
        let x = Tensor::from_slice(&[1.0f32, 2.0, 3.0, 4.0]);
        assert_eq!(Vec::<f32>::try_from(rotate_half(&x)).unwrap(), vec![-3.0, -4.0, 1.0, 2.0]);
    }

    #[test]
    fn segmented_attention_equals_masked_attention() {
        tch::manual_seed(2);
        let vs = nn::VarStore::new(Device::Cpu);
        let attn = VisionAttention::new(vs.root() / "a", 8, 2);
        let s = 7;
        let x = Tensor::randn([s, 8], (Kind::Float, Device::Cpu));
        let angles = Tensor::randn([s, 2], (Kind::Float, Device::Cpu)) * 3.0;
        let angles = Tensor::cat(&[&angles, &angles], -1);
        let rope = Rotary { cos: angles.cos(), sin: angles.sin() };
        let cu = [0, 2, 5, 7];
        let plan = super::super::index::SegmentPlan::new(&cu).unwrap();
        let segments = Segments {
            groups: plan.groups.iter().map(|(l, c, r)| (*l, *c, Tensor::from_slice(r))).collect(),
            inverse: plan.inverse.as_deref().map(Tensor::from_slice),
        };
        let out = attn.forward(&x, &rope, &segments);
        // Reference: the same attention with a dense boolean block-diagonal mask.
        let seg: Vec<i64> = (0..s).map(|r| cu.iter().filter(|&&c| c <= r).count() as i64).collect();
        let seg = Tensor::from_slice(&seg);
        let mask = seg.unsqueeze(0).eq_tensor(&seg.unsqueeze(1));
        let qkv = x.apply(&attn.qkv).view([s, 3, 2, 4]).permute([1, 0, 2, 3]);
        let q = apply_rotary(&qkv.get(0), &rope).transpose(0, 1).unsqueeze(0);
        let k = apply_rotary(&qkv.get(1), &rope).transpose(0, 1).unsqueeze(0);
        let v = qkv.get(2).transpose(0, 1).unsqueeze(0);
        let o = Tensor::scaled_dot_product_attention(&q, &k, &v, Some(&mask), 0.0, false, None::<f64>, false);
        let expected = o.squeeze_dim(0).transpose(0, 1).reshape([s, 8]).apply(&attn.proj);
        assert!(max_abs(&out, &expected) < 1e-5);
    }
}
