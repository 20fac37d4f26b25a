//! M-RoPE of the Qwen2.5-VL text decoder, as transformers 5.17 implements it:
//! - [`MRope`]: `Qwen2_5_VLRotaryEmbedding` (cos/sin from 3-D position ids `(3, B, L)`, the rotary half-dimension
//!   split *in chunks* by `mrope_section` between the temporal, height and width ids, then duplicated) and
//!   `apply_rotary_pos_emb` / `rotate_half` ([`apply_rotary`]);
//! - [`RopeIndexSpec::get_rope_index`]: `Qwen2_5_VLModel.get_rope_index` (+ `get_vision_position_ids`), the 3-D
//!   position ids of a (left-padded) batch mixing text and image placeholder blocks, and the `rope_deltas`;
//! - [`continuation_position_ids`]: the positions of tokens appended while decoding (the `rope_deltas` branch of
//!   `Qwen2_5_VLModel.compute_3d_position_ids`).
//!
//! Deviations, all deliberate:
//! - **video is not supported**: a `<|video_pad|>` token in the input is an error (transformers would use
//!   `video_grid_thw` and `second_per_grid_ts`);
//! - transformers assigns the image grids to consecutive runs of `<|image_pad|>` tokens without checking their
//!   lengths (a mismatch surfaces as a shape error, or silently shifts later images); here a run whose length is not
//!   `t * h * w / merge²` of its grid, or grids left over at the end, are errors naming the row;
//! - the index is computed on the host (the ids are small); the outputs are put on the device of `input_ids`.
//!
//! As in transformers, an image block starting at position `p` gets t/h/w ids `p + (i_t, i_h, i_w)` over its merged
//! grid, the text after it continues at `p + max(h, w) / merge` (the temporal extent is ignored), padded positions
//! get id 0, and `rope_deltas = max id + 1 - number of unpadded tokens`.
use anyhow::{Result, bail, ensure};
use tch::{Device, Kind, Tensor};

use super::config::{Config, TextConfig};

/// Rotary frequencies of the text decoder (`Qwen2_5_VLRotaryEmbedding`).
#[derive(Debug)]
pub struct MRope {
    /// `1 / theta^(2i / head_dim)`, f32, shape `(head_dim / 2,)`.
    inv_freq: Tensor,
    /// How many of the `head_dim / 2` frequencies follow the t, h and w ids.
    section: Vec<i64>,
}

impl MRope {
    pub fn new(cfg: &TextConfig, device: Device) -> Self {
        let dim = cfg.head_dim() as i64;
        // Same f32 arithmetic as `compute_default_rope_parameters`: 1 / base^(arange(0, dim, 2) / dim).
        let exponent = Tensor::arange_start_step(0, dim, 2, (Kind::Float, device)) / dim as f64;
        let inv_freq = Tensor::pow_scalar(cfg.rope_theta(), &exponent).reciprocal();
        let section = cfg.mrope_section().iter().map(|&s| s as i64).collect();
        Self { inv_freq, section }
    }

    /// `(cos, sin)`, each `(B, L, head_dim)` of `kind`, for position ids `(3, B, L)` (integer) on the model's
    /// device. Computed in f32 and cast, as transformers does.
    pub fn cos_sin(&self, position_ids: &Tensor, kind: Kind) -> (Tensor, Tensor) {
        let pos = position_ids.to_kind(Kind::Float).unsqueeze(-1); // (3, B, L, 1)
        let freqs = pos * self.inv_freq.view([1, 1, 1, -1]); // (3, B, L, head_dim / 2)
        let pick = |f: Tensor| {
            let chunks = f.split_with_sizes(self.section.as_slice(), -1);
            let parts: Vec<Tensor> = chunks.iter().enumerate().map(|(i, c)| c.get((i % 3) as i64)).collect();
            let half = Tensor::cat(&parts, -1);
            Tensor::cat(&[&half, &half], -1).to_kind(kind)
        };
        (pick(freqs.cos()), pick(freqs.sin()))
    }
}

/// `x * cos + rotate_half(x) * sin` for `x` of shape `(B, heads, L, head_dim)` and cos/sin `(B, L, head_dim)`.
pub fn apply_rotary(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Tensor {
    let half = x.size()[3] / 2;
    let (x1, x2) = (x.narrow(-1, 0, half), x.narrow(-1, half, half));
    let rotated = Tensor::cat(&[&x2.neg(), &x1], -1);
    x * cos.unsqueeze(1) + rotated * sin.unsqueeze(1)
}

/// The token ids and merge size `get_rope_index` needs, taken from the checkpoint config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RopeIndexSpec {
    pub image_token_id: i64,
    pub video_token_id: i64,
    pub spatial_merge_size: i64,
}

/// Output of [`RopeIndexSpec::get_rope_index`], on the device of the input ids.
#[derive(Debug)]
pub struct RopeIndex {
    /// `(3, B, L)` int64: temporal, height and width position ids; 0 at padded positions.
    pub position_ids: Tensor,
    /// `(B, 1)` int64: what to add to a token's unpadded index to get its (equal t/h/w) position id when decoding.
    pub rope_deltas: Tensor,
}

impl RopeIndexSpec {
    pub fn from_config(cfg: &Config) -> Self {
        Self {
            image_token_id: cfg.image_token_id,
            video_token_id: cfg.video_token_id,
            spatial_merge_size: cfg.vision_config.spatial_merge_size as i64,
        }
    }

    /// `get_rope_index` for `input_ids` `(B, L)`, an optional `attention_mask` `(B, L)` (1 = token, 0 = padding,
    /// any position) and the `(t, h, w)` patch grids of all images in the batch, in order of appearance.
    pub fn get_rope_index(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        image_grid_thw: &[[i64; 3]],
    ) -> Result<RopeIndex> {
        let size = input_ids.size();
        ensure!(size.len() == 2, "get_rope_index: input_ids must be (batch, seq_len), got shape {size:?}");
        let (b, l) = (size[0], size[1]);
        let ids = host_i64(input_ids)?;
        let mask = match attention_mask {
            Some(m) => {
                ensure!(m.size() == size, "get_rope_index: attention_mask shape {:?} != input_ids {size:?}", m.size());
                host_i64(m)?
            }
            None => vec![1; ids.len()],
        };
        let mut grids = image_grid_thw.iter();
        let mut pos = vec![0i64; (3 * b * l) as usize];
        let mut deltas = Vec::with_capacity(b as usize);
        for row in 0..b as usize {
            let span = row * l as usize..(row + 1) * l as usize;
            let kept: Vec<usize> = span.clone().filter(|&i| mask[i] != 0).map(|i| i - span.start).collect();
            let row_ids: Vec<i64> = kept.iter().map(|&j| ids[span.start + j]).collect();
            let (row_pos, delta) = self
                .row_positions(&row_ids, &mut grids)
                .map_err(|e| e.context(format!("get_rope_index, row {row}")))?;
            for (n, &j) in kept.iter().enumerate() {
                for (axis, p) in row_pos.iter().enumerate() {
                    pos[axis * (b * l) as usize + span.start + j] = p[n];
                }
            }
            deltas.push(delta);
        }
        let left = grids.len();
        ensure!(
            left == 0,
            "get_rope_index: {} image grids were given but {left} of them have no <|image_pad|> block (token {}) \
             in input_ids; pass exactly one grid per image, in order",
            image_grid_thw.len(),
            self.image_token_id
        );
        let device = input_ids.device();
        Ok(RopeIndex {
            position_ids: Tensor::from_slice(&pos).view([3, b, l]).to_device(device),
            rope_deltas: Tensor::from_slice(&deltas).view([b, 1]).to_device(device),
        })
    }

    /// t/h/w position ids of one unpadded row, and its rope delta.
    fn row_positions<'a>(
        &self,
        ids: &[i64],
        grids: &mut impl Iterator<Item = &'a [i64; 3]>,
    ) -> Result<([Vec<i64>; 3], i64)> {
        ensure!(!ids.is_empty(), "the row has no unpadded token (attention_mask is all 0)");
        if let Some(i) = ids.iter().position(|&t| t == self.video_token_id) {
            bail!("video tokens (<|video_pad|>, id {}) are not supported; found one at index {i}", self.video_token_id);
        }
        let mut out: [Vec<i64>; 3] = Default::default();
        let mut current = 0i64;
        let mut i = 0;
        while i < ids.len() {
            let is_image = ids[i] == self.image_token_id;
            let end = (i..ids.len()).find(|&j| (ids[j] == self.image_token_id) != is_image).unwrap_or(ids.len());
            let run = (end - i) as i64;
            if !is_image {
                for axis in &mut out {
                    axis.extend(current..current + run);
                }
                current += run;
            } else {
                let Some(&[t, h, w]) = grids.next() else {
                    bail!("an <|image_pad|> block at index {i} has no image grid left (fewer grids than images)");
                };
                let m = self.spatial_merge_size;
                ensure!(
                    t > 0 && h % m == 0 && w % m == 0 && h > 0 && w > 0,
                    "image grid {:?} is not a positive grid divisible by spatial_merge_size {m}",
                    [t, h, w]
                );
                let (gh, gw) = (h / m, w / m);
                ensure!(
                    run == t * gh * gw,
                    "the <|image_pad|> block at index {i} has {run} tokens but its grid {:?} needs t*h*w/merge^2 = {} \
                     (were two images placed without a separator, or the grids given out of order?)",
                    [t, h, w],
                    t * gh * gw
                );
                for it in 0..t {
                    for ih in 0..gh {
                        for iw in 0..gw {
                            out[0].push(current + it);
                            out[1].push(current + ih);
                            out[2].push(current + iw);
                        }
                    }
                }
                current += h.max(w) / m;
            }
            i = end;
        }
        let max = out.iter().flat_map(|a| a.iter()).copied().max().unwrap_or(0);
        Ok((out, max + 1 - ids.len() as i64))
    }
}

/// Position ids `(3, B, new)` for the last `new` columns of `attention_mask` `(B, L_total)` (past + new tokens):
/// `(cumsum(mask) - 1 + rope_deltas)` on all three axes, as `compute_3d_position_ids` does once `rope_deltas` are
/// known. Padded positions get `rope_deltas` (unused: they are masked out).
pub fn continuation_position_ids(attention_mask: &Tensor, rope_deltas: &Tensor, new: i64) -> Tensor {
    let mask = attention_mask.to_kind(Kind::Int64);
    let pos = (mask.cumsum(-1, Kind::Int64) - 1).masked_fill(&mask.eq(0), 0);
    let total = pos.size()[1];
    let pos = pos.narrow(1, total - new, new) + rope_deltas.to_device(pos.device());
    pos.unsqueeze(0).repeat([3, 1, 1])
}

fn host_i64(t: &Tensor) -> Result<Vec<i64>> {
    let flat = t.to_device(Device::Cpu).to_kind(Kind::Int64).contiguous().view(-1);
    Ok(Vec::<i64>::try_from(&flat)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: RopeIndexSpec = RopeIndexSpec { image_token_id: 9, video_token_id: 8, spatial_merge_size: 2 };

    fn rows(t: &Tensor) -> Vec<Vec<i64>> {
        Vec::<Vec<i64>>::try_from(t).unwrap()
    }

    #[test]
    fn text_then_image_then_text() {
        // 2 text tokens, a 1x4x6 grid (2x3 merged = 6 tokens), 1 text token.
        let ids = Tensor::from_slice(&[1i64, 2, 9, 9, 9, 9, 9, 9, 3]).view([1, -1]);
        let r = SPEC.get_rope_index(&ids, None, &[[1, 4, 6]]).unwrap();
        let p = r.position_ids.squeeze_dim(1);
        assert_eq!(
            rows(&p),
            vec![vec![0, 1, 2, 2, 2, 2, 2, 2, 5], vec![0, 1, 2, 2, 2, 3, 3, 3, 5], vec![0, 1, 2, 3, 4, 2, 3, 4, 5],]
        );
        // max 5, 9 tokens -> delta -3.
        assert_eq!(rows(&r.rope_deltas), vec![vec![-3]]);
    }

    #[test]
    fn left_padding_gets_zero_and_text_rows_delta_zero() {
        let ids = Tensor::from_slice(&[0i64, 0, 5, 6, 7, 7, 9, 9, 9, 9]).view([2, 5]);
        let mask = Tensor::from_slice(&[0i64, 0, 1, 1, 1, 1, 1, 1, 1, 1]).view([2, 5]);
        let r = SPEC.get_rope_index(&ids, Some(&mask), &[[1, 4, 4]]).unwrap();
        assert_eq!(rows(&r.position_ids.get(0)), vec![vec![0, 0, 0, 1, 2], vec![0, 1, 1, 1, 1]]);
        assert_eq!(rows(&r.position_ids.get(2)), vec![vec![0, 0, 0, 1, 2], vec![0, 1, 2, 1, 2]]);
        assert_eq!(rows(&r.rope_deltas), vec![vec![0], vec![-2]]);
    }

    #[test]
    fn grid_mismatches_and_video_are_errors() {
        let ids = Tensor::from_slice(&[1i64, 9, 9, 9]).view([1, -1]);
        let e = SPEC.get_rope_index(&ids, None, &[[1, 4, 4]]).unwrap_err();
        assert!(format!("{e:#}").contains("has 3 tokens"), "{e:#}");
        let e = SPEC.get_rope_index(&ids, None, &[]).unwrap_err();
        assert!(format!("{e:#}").contains("no image grid left"), "{e:#}");
        let ids = Tensor::from_slice(&[1i64, 2]).view([1, -1]);
        let e = SPEC.get_rope_index(&ids, None, &[[1, 2, 2]]).unwrap_err();
        assert!(format!("{e:#}").contains("have no <|image_pad|> block"), "{e:#}");
        let ids = Tensor::from_slice(&[1i64, 8]).view([1, -1]);
        assert!(format!("{:#}", SPEC.get_rope_index(&ids, None, &[]).unwrap_err()).contains("video"));
    }

    #[test]
    fn continuation_adds_delta_to_unpadded_index() {
        let mask = Tensor::from_slice(&[0i64, 1, 1, 1, 1, 1, 1, 1]).view([2, 4]);
        let deltas = Tensor::from_slice(&[0i64, -3]).view([2, 1]);
        let p = continuation_position_ids(&mask, &deltas, 1);
        assert_eq!(p.size(), vec![3, 2, 1]);
        assert_eq!(rows(&p.get(1)), vec![vec![2], vec![0]]);
    }

    #[test]
    fn cos_sin_follow_sections() {
        let cfg = crate::model::qwen2_5_vl::Config::from_file(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_config/tiny.config.json"),
        )
        .unwrap();
        let rope = MRope::new(&cfg.text_config, Device::Cpu);
        // head_dim 16, section [2, 3, 3]: frequencies 0-1 follow t, 2-4 follow h, 5-7 follow w.
        let pos = Tensor::from_slice(&[1i64, 2, 3]).view([3, 1, 1]);
        let (cos, _) = rope.cos_sin(&pos, Kind::Float);
        assert_eq!(cos.size(), vec![1, 1, 16]);
        let inv = Vec::<f32>::try_from(&rope.inv_freq).unwrap();
        let got = Vec::<f32>::try_from(&cos.view(-1)).unwrap();
        for (i, f) in inv.iter().enumerate() {
            let p = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0][i];
            assert!((got[i] - (p * f).cos()).abs() < 1e-6);
            assert_eq!(got[i + 8], got[i]);
        }
    }
}
