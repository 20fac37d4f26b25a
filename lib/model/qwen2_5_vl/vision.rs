//! The Qwen2.5-VL vision tower, `Qwen2_5_VisionTransformerPretrainedModel` of transformers 5.17
//! (`model.visual` of `Qwen2_5_VLForConditionalGeneration`), in tch.
//!
//! [`VisionTower::forward`] takes the processor's `pixel_values` `(N, C*T*P*P)` (patches of all images
//! concatenated, each image's patches in merge-block order) and its `image_grid_thw` rows, and returns the
//! merged image features `(N / merge², out_hidden_size)` in the same image order, ready to replace the
//! `<|image_pad|>` embeddings. Steps, as in transformers:
//!
//! 1. patch embedding ([`layers::PatchEmbed`]);
//! 2. `get_vision_window_index` ([`index::window_index`]): hidden states and the rotary tables are permuted,
//!    one merge unit (`merge²` consecutive patches) at a time, into window order;
//! 3. the 2-D rotary embedding (`Qwen2_5_VLVisionRotaryEmbedding`, "axial", `head_dim / 4` frequencies
//!    shared by rows and columns: angles `[h·f, w·f, h·f, w·f]`), positions from `get_vision_position_ids`
//!    ([`index::position_ids`]);
//! 4. `depth` blocks: those in `fullatt_block_indexes` attend within each frame (`cu_seqlens`), the others
//!    within each window (`cu_window_seqlens`);
//! 5. the patch merger, then the inverse window permutation (`argsort(window_index)`).
//!
//! Weight names are the published checkpoint's keys under the path given to [`VisionTower::new`]
//! (`vs.root() / "visual"`): `patch_embed.proj.weight`, `blocks.{i}.{norm1,norm2}.weight`,
//! `blocks.{i}.attn.{qkv,proj}.{weight,bias}`, `blocks.{i}.mlp.{gate_proj,up_proj,down_proj}.{weight,bias}`,
//! `merger.ln_q.weight`, `merger.mlp.{0,2}.{weight,bias}`.
//!
//! Deviations from transformers, none of which changes the function computed (see the submodules):
//! - attention is block-diagonal by construction: segments of equal length are gathered and run as one batch
//!   of `scaled_dot_product_attention` (no mask, no per-segment loop); flash-attention's varlen path is not
//!   used;
//! - empty padding windows are never created instead of being dropped by `unique_consecutive`.
//!
//! Precision follows transformers: weights and activations in the VarStore's kind (f32 or bf16), RMSNorm and
//! the rotary embedding in f32. Every op exists on CUDA; index tensors are built on the host and moved to the
//! weights' device once per call.
pub mod index;
pub mod layers;

use anyhow::{Context, Result, ensure};
use tch::{Device, Kind, Tensor, nn, nn::Module};

use self::index::{Grid, SegmentPlan};
use self::layers::{PatchEmbed, PatchMerger, Rotary, Segments, VisionBlock};
use super::config::VisionConfig;

/// `Qwen2_5_VisionTransformerPretrainedModel`.
#[derive(Debug)]
pub struct VisionTower {
    patch_embed: PatchEmbed,
    blocks: Vec<VisionBlock>,
    merger: PatchMerger,
    cfg: VisionConfig,
}

/// Output of [`VisionTower::forward_with_states`].
#[derive(Debug)]
pub struct VisionOutput {
    /// Merger output `(patches / merge², out_hidden_size)`, in image order (transformers' `pooler_output`).
    pub image_embeds: Tensor,
    /// Patch embedding output `(patches, hidden_size)`, in the input patch order; only when states were asked for.
    pub patch_embed: Option<Tensor>,
    /// Output of each block `(patches, hidden_size)`, in **window order** as transformers keeps it inside the
    /// tower (the last one is transformers' `last_hidden_state`); empty unless states were asked for.
    pub block_states: Vec<Tensor>,
}

impl VisionTower {
    /// Builds the tower under `p` (normally `vs.root() / "visual"`) with freshly initialized weights; load a
    /// checkpoint into the VarStore afterwards. `cfg` should come from a validated [`super::Config`].
    pub fn new(p: nn::Path, cfg: &VisionConfig) -> Result<Self> {
        ensure!(
            cfg.num_heads > 0 && cfg.hidden_size.is_multiple_of(cfg.num_heads) && cfg.head_dim().is_multiple_of(4),
            "vision_config: hidden_size {} / num_heads {} must give a head dimension that is a multiple of 4 \
             (2-D rotary embedding); validate the config with Config::validate",
            cfg.hidden_size,
            cfg.num_heads
        );
        ensure!(
            cfg.window_merged_tokens() > 0 && cfg.spatial_merge_size > 0,
            "vision_config: window_size {} is smaller than one merged token ({} px)",
            cfg.window_size,
            cfg.patch_size * cfg.spatial_merge_size
        );
        if let Some(&i) = cfg.fullatt_block_indexes.iter().find(|&&i| i >= cfg.depth) {
            anyhow::bail!("vision_config: fullatt_block_indexes contains {i} but depth is {}", cfg.depth);
        }
        let patch_embed = PatchEmbed::new(
            &p / "patch_embed",
            cfg.in_channels,
            cfg.temporal_patch_size,
            cfg.patch_size,
            cfg.hidden_size,
        );
        let blocks = (0..cfg.depth)
            .map(|i| VisionBlock::new(&p / "blocks" / i, cfg.hidden_size, cfg.num_heads, cfg.intermediate_size))
            .collect();
        let merger = PatchMerger::new(&p / "merger", cfg.hidden_size, cfg.spatial_merge_size, cfg.out_hidden_size);
        Ok(Self { patch_embed, blocks, merger, cfg: cfg.clone() })
    }

    pub fn config(&self) -> &VisionConfig {
        &self.cfg
    }

    /// Merged image features `(patches / merge², out_hidden_size)`; see the module doc.
    pub fn forward(&self, pixel_values: &Tensor, grid_thw: &[Grid]) -> Result<Tensor> {
        Ok(self.run(pixel_values, grid_thw, false)?.image_embeds)
    }

    /// [`Self::forward`] plus the intermediate states (patch embedding and every block's output), to localise
    /// differences against a reference.
    pub fn forward_with_states(&self, pixel_values: &Tensor, grid_thw: &[Grid]) -> Result<VisionOutput> {
        self.run(pixel_values, grid_thw, true)
    }

    fn run(&self, pixel_values: &Tensor, grids: &[Grid], keep: bool) -> Result<VisionOutput> {
        let merge = self.cfg.spatial_merge_size as i64;
        let unit = merge * merge;
        let total = index::check_grids(grids, merge).context("vision tower input")?;
        let patch_len = self.patch_embed.patch_len();
        ensure!(
            pixel_values.size() == [total, patch_len],
            "pixel_values has shape {:?} but image_grid_thw {grids:?} describes {total} patches of {patch_len} \
             values (in_channels * temporal_patch_size * patch_size²): pass the processor's pixel_values and \
             image_grid_thw of the same images, in the same order",
            pixel_values.size()
        );
        let device = self.patch_embed.device();
        let to_dev = |v: &[i64]| Tensor::from_slice(v).to_device(device);

        let (window, cu_window) = index::window_index(grids, merge, self.cfg.window_merged_tokens() as i64);
        let window_t = to_dev(&window);
        let unwindow = to_dev(&index::inverse_permutation(&window));
        let window_segments = segments(&cu_window, &to_dev)?;
        let frame_segments = segments(&index::cu_seqlens(grids), &to_dev)?;
        let to_window_order = |x: &Tensor| {
            let cols = x.size()[1];
            x.view([total / unit, unit, cols]).index_select(0, &window_t).view([total, cols])
        };

        let embedded = self.patch_embed.forward(&pixel_values.to_device(device));
        let mut hidden = to_window_order(&embedded);
        let rope = self.rotary(grids, device);
        let rope = Rotary { cos: to_window_order(&rope.cos), sin: to_window_order(&rope.sin) };
        let mut block_states = Vec::new();
        for (i, block) in self.blocks.iter().enumerate() {
            let segs = if self.cfg.fullatt_block_indexes.contains(&i) { &frame_segments } else { &window_segments };
            hidden = block.forward(&hidden, &rope, segs);
            if keep {
                block_states.push(hidden.shallow_clone());
            }
        }
        let image_embeds = self.merger.forward(&hidden).index_select(0, &unwindow);
        Ok(VisionOutput { image_embeds, patch_embed: keep.then_some(embedded), block_states })
    }

    /// cos/sin tables `(patches, head_dim)` in f32, in input patch order (`rot_pos_emb`).
    fn rotary(&self, grids: &[Grid], device: Device) -> Rotary {
        let spatial = (self.cfg.head_dim() / 2) as i64;
        let exponents = Tensor::arange_start_step(0, spatial, 2, (Kind::Float, device)) / spatial as f64;
        let inv_freq = Tensor::pow_scalar(self.cfg.rope_theta(), &exponents).reciprocal();
        let pos: Vec<i64> = index::position_ids(grids, self.cfg.spatial_merge_size as i64).concat();
        let pos = Tensor::from_slice(&pos).to_device(device).view([-1, 2, 1]).to_kind(Kind::Float);
        let freqs = (pos * inv_freq).flatten(1, 2);
        let angles = Tensor::cat(&[&freqs, &freqs], -1);
        Rotary { cos: angles.cos(), sin: angles.sin() }
    }
}

/// Moves a [`SegmentPlan`] for `cu` to the device.
fn segments(cu: &[i64], to_dev: &impl Fn(&[i64]) -> Tensor) -> Result<Segments> {
    let plan = SegmentPlan::new(cu)?;
    Ok(Segments {
        groups: plan.groups.iter().map(|(len, count, rows)| (*len, *count, to_dev(rows))).collect(),
        inverse: plan.inverse.as_deref().map(to_dev),
    })
}

/// `image_grid_thw` `(images, 3)` as rows.
pub fn grids_from_tensor(grid_thw: &Tensor) -> Result<Vec<Grid>> {
    ensure!(
        grid_thw.dim() == 2 && grid_thw.size()[1] == 3,
        "image_grid_thw must have shape (images, 3), got {:?}",
        grid_thw.size()
    );
    let flat = Vec::<i64>::try_from(grid_thw.to_kind(Kind::Int64).flatten(0, -1)).context("reading image_grid_thw")?;
    Ok(flat.chunks(3).map(|c| [c[0], c[1], c[2]]).collect())
}

#[cfg(test)]
mod tests;
