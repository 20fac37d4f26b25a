//! The whole Qwen2.5-VL, `Qwen2_5_VLForConditionalGeneration` of transformers 5.17: the vision tower
//! ([`super::vision::VisionTower`], keys `visual.*`), the text decoder and LM head ([`super::text::TextModel`], keys
//! `model.*`, `lm_head.*`), glued as `Qwen2_5_VLModel.forward` glues them:
//!
//! 1. `get_image_features`: the vision tower runs once over the `pixel_values` of all images of the batch (in
//!    order), giving `(patches / merge², hidden)` features;
//! 2. `get_placeholder_mask` + `masked_scatter`: the features replace the `<|image_pad|>` embeddings, in row-major
//!    order ([`super::text::scatter_image_embeds`]);
//! 3. `compute_3d_position_ids` / `get_rope_index`: 3-D M-RoPE position ids and `rope_deltas`
//!    ([`super::rope::RopeIndexSpec::get_rope_index`]);
//! 4. the decoder and `lm_head`: logits `(B, L, vocab)`.
//!
//! [`Qwen2_5_VL::prefill`] and [`Qwen2_5_VL::decode`] are the two halves of `generate` with a KV cache (the decode
//! positions from `rope_deltas`, the branch transformers takes once the cache is non-empty); the sampling loop is
//! [`crate::model::sampling`].
//!
//! Deviations, all deliberate:
//! - position ids always come from `get_rope_index`, also for text-only batches. transformers uses
//!   `get_rope_index` only when `image_grid_thw` is given and otherwise lets the text model count positions from the
//!   cache position, ignoring left padding; the two agree on unpadded text-only rows, and here a left-padded
//!   text-only row gets the same positions it would get alone (what `generate` gives it too);
//! - video inputs are not supported (an error from `get_rope_index`);
//! - no `logits_to_keep`: [`Qwen2_5_VL::forward`] returns the logits of every position, [`Qwen2_5_VL::prefill`] only
//!   those of the last one.
pub mod run;

use std::path::Path;

use anyhow::{Context, Result, ensure};
use tch::{Device, Kind, Tensor, nn};

use super::config::Config;
use super::rope::{RopeIndexSpec, continuation_position_ids};
use super::text::{KvCache, Recompute, TextModel, scatter_image_embeds};
use super::vision::VisionTower;
use super::vision::index::Grid;
use super::weights::{LoadReport, load_safetensors};

/// The processor's image inputs of a whole batch: `pixel_values` `(patches, C*T*P*P)` of all images concatenated in
/// the order their `<|image_pad|>` blocks appear (row by row), and one `image_grid_thw` row per image.
#[derive(Debug, Clone, Copy)]
pub struct Images<'a> {
    pub pixel_values: &'a Tensor,
    pub grid_thw: &'a [Grid],
}

/// `Qwen2_5_VLForConditionalGeneration` (named as in transformers).
#[allow(non_camel_case_types)]
#[derive(Debug)]
pub struct Qwen2_5_VL {
    pub visual: VisionTower,
    pub text: TextModel,
    pub config: Config,
    spec: RopeIndexSpec,
    device: Device,
    /// Owns the variables when built by [`Self::from_dir`].
    vs: Option<nn::VarStore>,
}

/// What [`Qwen2_5_VL::prefill`] returns.
#[derive(Debug)]
pub struct Prefill {
    /// Logits of the last prompt position `(B, vocab)`, in the model dtype.
    pub last_logits: Tensor,
    /// `(B, 1)` from `get_rope_index`, needed to place the generated tokens.
    pub rope_deltas: Tensor,
}

impl Qwen2_5_VL {
    /// Builds the model under `root` (the VarStore root: variables `visual.*`, `model.*`, `lm_head.*`), with fresh
    /// weights; load a checkpoint afterwards ([`load_safetensors`]) or use [`Self::from_dir`].
    pub fn new(root: &nn::Path, cfg: &Config) -> Result<Self> {
        cfg.validate().context("building Qwen2.5-VL")?;
        let visual = VisionTower::new(root / "visual", &cfg.vision_config)?;
        let text = TextModel::new(root, cfg)?;
        Ok(Self {
            visual,
            text,
            config: cfg.clone(),
            spec: RopeIndexSpec::from_config(cfg),
            device: root.device(),
            vs: None,
        })
    }

    /// Loads `dir/config.json` and the safetensors checkpoint in `dir` (single `model.safetensors` or shards listed
    /// by `model.safetensors.index.json`) onto `device` in `kind` (f32 or bf16; the file's dtype is cast on copy).
    /// Every checkpoint tensor must be used. The variables are frozen (inference); to train, call
    /// `model.var_store_mut().unwrap().unfreeze()`.
    pub fn from_dir(dir: &Path, device: Device, kind: Kind) -> Result<Self> {
        let cfg = Config::from_file(&dir.join("config.json"))?;
        let mut vs = nn::VarStore::new(device);
        vs.set_kind(kind);
        let mut model = Self::new(&vs.root(), &cfg)?;
        let report = Self::load(&vs, dir)?;
        report.ensure_all_used(&[]).with_context(|| format!("loading Qwen2.5-VL from {}", dir.display()))?;
        vs.freeze();
        model.vs = Some(vs);
        Ok(model)
    }

    /// A trainable model with fresh weights (tch's default initialisers) in a VarStore it owns, on `device` in
    /// `kind`: benchmarks on real shapes without a download.
    pub fn with_fresh_weights(cfg: &Config, device: Device, kind: Kind) -> Result<Self> {
        let mut vs = nn::VarStore::new(device);
        vs.set_kind(kind);
        let mut model = Self::new(&vs.root(), cfg)?;
        model.vs = Some(vs);
        Ok(model)
    }

    fn load(vs: &nn::VarStore, dir: &Path) -> Result<LoadReport> {
        load_safetensors(vs, dir).with_context(|| format!("loading the Qwen2.5-VL checkpoint in {}", dir.display()))
    }

    /// The VarStore, when the model owns it ([`Self::from_dir`]).
    pub fn var_store(&self) -> Option<&nn::VarStore> {
        self.vs.as_ref()
    }

    /// The VarStore, mutably (to unfreeze it for training), when the model owns it.
    pub fn var_store_mut(&mut self) -> Option<&mut nn::VarStore> {
        self.vs.as_mut()
    }

    /// A frozen copy with its own VarStore on the same device and in the same dtype: the reference policy of RL
    /// (`π_ref`, papers_spec §0.2 step 3). Needs a model that owns its VarStore.
    pub fn frozen_copy(&self) -> Result<Self> {
        let src = self.vs.as_ref().context("frozen_copy needs a model that owns its VarStore (from_dir)")?;
        let mut vs = nn::VarStore::new(self.device);
        vs.set_kind(self.text.dtype());
        let mut model = Self::new(&vs.root(), &self.config)?;
        vs.copy(src).context("copying the weights into the reference model")?;
        vs.freeze();
        model.vs = Some(vs);
        Ok(model)
    }

    /// Overwrites this model's weights with `other`'s (same config; both must own their VarStores). Used to reset
    /// the reference policy to the current policy at a PTST stage boundary.
    pub fn copy_weights_from(&mut self, other: &Self) -> Result<()> {
        ensure!(self.config == other.config, "copy_weights_from: the two models have different configs");
        let src = other.vs.as_ref().context("copy_weights_from: the source does not own its VarStore")?;
        let dst = self.vs.as_mut().context("copy_weights_from: the target does not own its VarStore")?;
        dst.copy(src).context("copying model weights")
    }

    /// Device of the weights.
    pub fn device(&self) -> Device {
        self.device
    }

    /// `get_rope_index` for this config.
    pub fn rope_spec(&self) -> RopeIndexSpec {
        self.spec
    }

    /// Token embeddings of `input_ids` `(B, L)` with the image features scattered into the `<|image_pad|>`
    /// positions (`get_image_features` + `masked_scatter`).
    pub fn inputs_embeds(&self, input_ids: &Tensor, images: Option<Images>) -> Result<Tensor> {
        let device = self.device();
        let ids = input_ids.to_device(device);
        let embeds = self.text.embed(&ids);
        match images {
            Some(img) => {
                let feats = self.visual.forward(img.pixel_values, img.grid_thw).context("Qwen2.5-VL vision tower")?;
                scatter_image_embeds(&embeds, &ids, self.config.image_token_id, &feats)
            }
            None => {
                let n_pad = ids.eq(self.config.image_token_id).sum(Kind::Int64).int64_value(&[]);
                ensure!(
                    n_pad == 0,
                    "input_ids contain {n_pad} <|image_pad|> tokens (id {}) but no pixel_values / image_grid_thw \
                     were given; pass the processor's image inputs",
                    self.config.image_token_id
                );
                Ok(embeds)
            }
        }
    }

    /// Embeddings, 3-D position ids `(3, B, L)` and `rope_deltas` `(B, 1)` of a prompt batch.
    fn prepare(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        images: Option<Images>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let size = input_ids.size();
        ensure!(size.len() == 2, "input_ids must be (batch, seq_len), got {size:?}");
        let grids = images.map_or(&[][..], |i| i.grid_thw);
        let idx = self.spec.get_rope_index(&input_ids.to_device(Device::Cpu), attention_mask, grids)?;
        let embeds = self.inputs_embeds(input_ids, images)?;
        let device = embeds.device();
        Ok((embeds, idx.position_ids.to_device(device), idx.rope_deltas.to_device(device)))
    }

    /// Logits `(B, L, vocab)` of a (left-padded) batch; `attention_mask` `(B, L)` (1 = token, `None` = no
    /// padding), `images` for all `<|image_pad|>` blocks of the batch in order. Text-only rows and several images
    /// per row are fine.
    pub fn forward(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        images: Option<Images>,
    ) -> Result<Tensor> {
        let (embeds, pos, _) = self.prepare(input_ids, attention_mask, images)?;
        let mask = attention_mask.map(|m| m.to_device(embeds.device()));
        self.text.forward(&embeds, &pos, mask.as_ref(), None)
    }

    /// [`Self::forward`] for training with activation recomputation ([`Recompute`]): logits `(B, L, vocab)` whose
    /// graph stops at the last decoder layer's output; after `loss.backward()` call `backward` on the returned
    /// [`Recompute`] with `&self.text`.
    pub fn forward_recomputed(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        images: Option<Images>,
    ) -> Result<(Tensor, Recompute)> {
        let (embeds, pos, _) = self.prepare(input_ids, attention_mask, images)?;
        let mask = attention_mask.map(|m| m.to_device(embeds.device()));
        let (hidden, rc) = self.text.hidden_states_recomputed(&embeds, &pos, mask.as_ref())?;
        Ok((self.text.logits(&hidden), rc))
    }

    /// Runs the prompt through the model, filling `cache` (which must be empty, see [`TextModel::new_cache`]).
    pub fn prefill(
        &self,
        input_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        images: Option<Images>,
        cache: &mut KvCache,
    ) -> Result<Prefill> {
        ensure!(cache.seq_len() == 0, "prefill needs an empty KV cache (call cache.clear())");
        let (embeds, pos, rope_deltas) = self.prepare(input_ids, attention_mask, images)?;
        let mask = attention_mask.map(|m| m.to_device(embeds.device()));
        let hidden = self.text.hidden_states(&embeds, &pos, mask.as_ref(), Some(cache))?;
        Ok(Prefill { last_logits: self.text.logits(&hidden.select(1, -1)), rope_deltas })
    }

    /// One decoding step: logits `(B, vocab)` of `next` `(B, 1)`, appended to `cache`. `attention_mask` is
    /// `(B, past + 1)` and already includes the new token.
    pub fn decode(
        &self,
        next: &Tensor,
        attention_mask: &Tensor,
        rope_deltas: &Tensor,
        cache: &mut KvCache,
    ) -> Result<Tensor> {
        let device = self.device();
        let mask = attention_mask.to_device(device);
        let pos = continuation_position_ids(&mask, rope_deltas, 1);
        let embeds = self.text.embed(&next.to_device(device));
        let hidden = self.text.hidden_states(&embeds, &pos, Some(&mask), Some(cache))?;
        Ok(self.text.logits(&hidden.select(1, -1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_model/model")
    }

    #[test]
    fn cached_decode_equals_full_forward() {
        let _g = tch::no_grad_guard();
        let m = Qwen2_5_VL::from_dir(&fixture(), Device::Cpu, Kind::Float).unwrap();
        let ids = Tensor::from_slice2(&[[0i64, 0, 5, 6, 7], [8, 9, 10, 11, 12]]);
        let mask = ids.ne(0).to_kind(Kind::Int64);
        let full = m.forward(&ids, Some(&mask), None).unwrap();
        let prompt = ids.narrow(1, 0, 4);
        let mut cache = m.text.new_cache();
        let p = m.prefill(&prompt, Some(&mask.narrow(1, 0, 4)), None, &mut cache).unwrap();
        let last = m.decode(&ids.narrow(1, 4, 1), &mask, &p.rope_deltas, &mut cache).unwrap();
        let d = (last - full.select(1, 4)).abs().max().double_value(&[]);
        assert!(d < 1e-5, "{d}");
        let d = (p.last_logits - full.select(1, 3)).abs().max().double_value(&[]);
        assert!(d < 1e-5, "{d}");
    }

    #[test]
    fn bf16_with_an_image_is_close_to_f32() {
        let _g = tch::no_grad_guard();
        let id = 500;
        let ids = Tensor::from_slice2(&[[3i64, 502, id, id, id, id, 503, 7]]);
        let pixels = Tensor::randn([16, 24], (Kind::Float, Device::Cpu));
        let grids = [[1, 4, 4]];
        let images = Some(Images { pixel_values: &pixels, grid_thw: &grids });
        let logits = |kind| {
            let m = Qwen2_5_VL::from_dir(&fixture(), Device::Cpu, kind).unwrap();
            m.forward(&ids, None, images).unwrap().to_kind(Kind::Float)
        };
        let (f, b) = (logits(Kind::Float), logits(Kind::BFloat16));
        let d = (&f - &b).abs().max().double_value(&[]);
        let scale = f.abs().max().double_value(&[]);
        assert!(d < 0.05 * scale.max(1.0), "bf16 vs f32: {d} (|logits| ≤ {scale})");
    }

    #[test]
    fn frozen_copy_is_independent_of_later_training() {
        let m = Qwen2_5_VL::from_dir(&fixture(), Device::Cpu, Kind::Float).unwrap();
        let copy = m.frozen_copy().unwrap();
        let ids = Tensor::from_slice2(&[[3i64, 4, 5]]);
        let logits = |m: &Qwen2_5_VL| tch::no_grad(|| m.forward(&ids, None, None).unwrap());
        let before = logits(&m);
        assert_eq!((logits(&copy) - &before).abs().max().double_value(&[]), 0.0);
        tch::no_grad(|| {
            for (_, mut t) in m.var_store().unwrap().variables() {
                let _ = t.g_add_scalar_(0.01);
            }
        });
        assert!((logits(&m) - &before).abs().max().double_value(&[]) > 0.0);
        assert_eq!((logits(&copy) - &before).abs().max().double_value(&[]), 0.0, "the copy shares storage");
        assert!(copy.var_store().unwrap().variables().values().all(|t| !t.requires_grad()));
        let mut copy = copy;
        copy.copy_weights_from(&m).unwrap();
        assert_eq!((logits(&copy) - logits(&m)).abs().max().double_value(&[]), 0.0);
    }

    #[test]
    fn image_tokens_without_images_is_an_error() {
        let m = Qwen2_5_VL::from_dir(&fixture(), Device::Cpu, Kind::Float).unwrap();
        let id = m.config.image_token_id;
        let ids = Tensor::from_slice2(&[[3i64, id, id, id, id, 4]]);
        let e = format!("{:#}", m.forward(&ids, None, None).unwrap_err());
        assert!(e.contains("image"), "{e}");
    }
}
