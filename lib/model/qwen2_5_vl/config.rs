//! `config.json` of a Qwen2.5-VL checkpoint, field names verbatim from transformers 5.17
//! (`Qwen2_5_VLConfig`, `Qwen2_5_VLTextConfig`, `Qwen2_5_VLVisionConfig`).
//!
//! Two layouts exist and both load through [`Config::from_file`]:
//! - **nested**, written by recent transformers: `text_config` and `vision_config` objects;
//! - **flat**, the published Qwen2.5-VL-7B-Instruct file (`transformers_version` 4.41.2): the text keys sit at
//!   the top level next to the token ids, only `vision_config` is nested, and the M-RoPE split is given as
//!   `rope_scaling = {"type": "mrope", "mrope_section": [16, 24, 24]}` with a top-level `rope_theta`.
//!
//! As in transformers, when `text_config` is present, text keys repeated at the top level are ignored.
//!
//! Key policy (the same for every section):
//! - keys r1lab reads are struct fields; an unknown key is an error naming the key, the section and the file;
//! - transformers' bookkeeping keys ([`IGNORED_KEYS`]: `architectures`, `torch_dtype`, `transformers_version`,
//!   `id2label`, generation defaults of old configs, ...) are accepted and ignored: none of them changes the
//!   forward pass;
//! - a key is required when it fixes a tensor shape and transformers' default for it would build a different
//!   model from the published one (text sizes; vision `depth`, `hidden_size`, `intermediate_size`, `num_heads`,
//!   `out_hidden_size`); every other key falls back to transformers' default, and nowhere else is a default
//!   invented. `mrope_section` defaults to `[16, 24, 24]` as in `Qwen2_5_VLRotaryEmbedding`.
//!
//! [`Config::validate`] then rejects what would not run or would silently differ from transformers
//! (head sizes, `mrope_section` sum, `fullatt_block_indexes` range, merger width, sliding-window attention).
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// transformers bookkeeping keys (whitespace-separated) that may appear in any section and never change the
/// model's outputs.
pub const IGNORED_KEYS: &str = "\
    _name_or_path _commit_hash _attn_implementation _attn_implementation_autoset add_cross_attention \
    architectures auto_map bad_words_ids begin_suppress_tokens chunk_size_feed_forward \
    cross_attention_hidden_size decoder_start_token_id diversity_penalty do_sample dtype early_stopping \
    encoder_no_repeat_ngram_size exponential_decay_length_penalty finetuning_task forced_bos_token_id \
    forced_eos_token_id id2label is_decoder is_encoder_decoder label2id length_penalty max_length min_length \
    no_repeat_ngram_size num_beam_groups num_beams num_return_sequences output_attentions output_hidden_states \
    output_scores prefix problem_type pruned_heads remove_invalid_values repetition_penalty return_dict \
    return_dict_in_generate sep_token_id suppress_tokens task_specific_params temperature tf_legacy_loss \
    tie_encoder_decoder tokenizer_class top_k top_p torch_dtype torchscript transformers_version typical_p \
    use_bfloat16";

/// Keys that belong to the top level in both layouts.
const TOP_LEVEL_KEYS: &[&str] = &[
    "model_type",
    "text_config",
    "vision_config",
    "image_token_id",
    "video_token_id",
    "vision_start_token_id",
    "vision_end_token_id",
    "vision_token_id",
    "tie_word_embeddings",
];

/// Keys transformers 4.5x also copied into `text_config`; they are read from the top level only.
const TEXT_SECTION_COPIES: &[&str] =
    &["image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id", "vision_token_id"];

/// The whole checkpoint config. Serializes to the nested layout.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "d_model_type")]
    pub model_type: String,
    pub text_config: TextConfig,
    pub vision_config: VisionConfig,
    #[serde(default = "d_image_token_id")]
    pub image_token_id: i64,
    #[serde(default = "d_video_token_id")]
    pub video_token_id: i64,
    #[serde(default = "d_vision_start_token_id")]
    pub vision_start_token_id: i64,
    #[serde(default = "d_vision_end_token_id")]
    pub vision_end_token_id: i64,
    /// Legacy (published 7B config); unused by transformers 5.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vision_token_id: Option<i64>,
    /// Whether `lm_head` shares `embed_tokens`' weight. Resolved with transformers' rule: also true when only
    /// a pre-v5 `text_config.tie_word_embeddings` says so.
    #[serde(default)]
    pub tie_word_embeddings: bool,
}

/// `text_config` (nested layout) or the top-level text keys (flat layout).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    /// `None` means `num_attention_heads` (no GQA), as in transformers.
    #[serde(default)]
    pub num_key_value_heads: Option<usize>,
    /// Not a transformers key for this model (it uses `hidden_size / num_attention_heads`); accepted when it
    /// agrees, because some exported configs carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_dim: Option<usize>,
    #[serde(default = "d_silu")]
    pub hidden_act: String,
    #[serde(default = "d_max_position_embeddings")]
    pub max_position_embeddings: usize,
    #[serde(default = "d_text_rms_norm_eps")]
    pub rms_norm_eps: f64,
    /// transformers >= 5: `{"rope_type": "default", "rope_theta": .., "mrope_section": [..]}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
    /// transformers < 5: `{"type": "mrope", "mrope_section": [..]}`; takes precedence, as in transformers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_scaling: Option<RopeParameters>,
    /// transformers < 5: used when the rope dict has no `rope_theta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
    #[serde(default)]
    pub attention_dropout: f64,
    #[serde(default)]
    pub use_sliding_window: bool,
    #[serde(default = "d_sliding_window")]
    pub sliding_window: Option<usize>,
    #[serde(default = "d_max_window_layers")]
    pub max_window_layers: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer_types: Option<Vec<String>>,
    #[serde(default = "d_bos_token_id")]
    pub bos_token_id: Option<i64>,
    #[serde(default = "d_eos_token_id")]
    pub eos_token_id: Option<TokenIds>,
    #[serde(default)]
    pub pad_token_id: Option<i64>,
    #[serde(default = "d_initializer_range")]
    pub initializer_range: f64,
    #[serde(default = "d_true")]
    pub use_cache: bool,
    /// Pre-v5 location of the tying flag; see [`Config::tie_word_embeddings`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tie_word_embeddings: Option<bool>,
}

/// `vision_config`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VisionConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_type: Option<String>,
    pub depth: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_heads: usize,
    /// Width of the patch merger's output: must equal the text `hidden_size`.
    pub out_hidden_size: usize,
    #[serde(default = "d_silu")]
    pub hidden_act: String,
    #[serde(default = "d_in_channels")]
    pub in_channels: usize,
    /// Legacy spelling of `in_channels` (published 7B config); must agree with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_chans: Option<usize>,
    #[serde(default = "d_patch_size")]
    pub patch_size: usize,
    /// Legacy (published 7B config), unused by transformers; must equal `patch_size`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spatial_patch_size: Option<usize>,
    #[serde(default = "d_two")]
    pub spatial_merge_size: usize,
    #[serde(default = "d_two")]
    pub temporal_patch_size: usize,
    #[serde(default = "d_tokens_per_second")]
    pub tokens_per_second: usize,
    /// Side of an attention window in pixels (112 = 4x4 merged tokens).
    #[serde(default = "d_window_size")]
    pub window_size: usize,
    /// Blocks with full (per-image) attention; the others use window attention.
    #[serde(default = "d_fullatt_block_indexes")]
    pub fullatt_block_indexes: Vec<usize>,
    #[serde(default = "d_initializer_range")]
    pub initializer_range: f64,
    /// transformers >= 5: `{"rope_type": "axial", "rope_theta": 10000.0}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_parameters: Option<RopeParameters>,
}

/// A rope dict (`rope_parameters` or legacy `rope_scaling`). Only the default/M-RoPE kinds exist for this
/// model; other keys (`factor`, yarn, ...) are rejected as unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RopeParameters {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_type: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrope_section: Option<Vec<usize>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rope_theta: Option<f64>,
}

/// `eos_token_id` is an int or a list of ints in HF configs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenIds {
    One(i64),
    Many(Vec<i64>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<i64> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

/// Defaults of transformers 5.17 (`configuration_qwen2_5_vl.py`), one function per serde default.
macro_rules! defaults {
    ($($name:ident: $t:ty = $v:expr;)*) => { $(fn $name() -> $t { $v })* };
}
defaults! {
    d_model_type: String = "qwen2_5_vl".into();
    d_image_token_id: i64 = 151655;
    d_video_token_id: i64 = 151656;
    d_vision_start_token_id: i64 = 151652;
    d_vision_end_token_id: i64 = 151653;
    d_silu: String = "silu".into();
    d_max_position_embeddings: usize = 32768;
    d_text_rms_norm_eps: f64 = 1e-5;
    d_sliding_window: Option<usize> = Some(4096);
    d_max_window_layers: Option<usize> = Some(80);
    d_bos_token_id: Option<i64> = Some(151643);
    d_eos_token_id: Option<TokenIds> = Some(TokenIds::One(151645));
    d_initializer_range: f64 = 0.02;
    d_true: bool = true;
    d_in_channels: usize = 3;
    d_patch_size: usize = 14;
    d_two: usize = 2;
    d_tokens_per_second: usize = 4;
    d_window_size: usize = 112;
    d_fullatt_block_indexes: Vec<usize> = vec![7, 15, 23, 31];
}

/// transformers' default M-RoPE split (`Qwen2_5_VLRotaryEmbedding`), used when the config has none.
pub const DEFAULT_MROPE_SECTION: [usize; 3] = [16, 24, 24];
const DEFAULT_TEXT_ROPE_THETA: f64 = 1_000_000.0;
const DEFAULT_VISION_ROPE_THETA: f64 = 10_000.0;

impl Config {
    /// Reads, parses (nested or flat layout) and validates `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the Qwen2.5-VL config {}", path.display()))?;
        let origin = path.display().to_string();
        let cfg = Self::parse(&text, &origin)?;
        cfg.validate().with_context(|| format!("invalid Qwen2.5-VL config {origin}"))?;
        Ok(cfg)
    }

    /// Parses either layout without validating; `origin` names the source in error messages.
    pub fn parse(json: &str, origin: &str) -> Result<Self> {
        let value: Value = serde_json::from_str(json).with_context(|| format!("{origin} is not valid JSON"))?;
        let Value::Object(mut top) = value else { bail!("{origin}: expected a JSON object at the top level") };
        remove_ignored(&mut top);
        let vision = match top.remove("vision_config") {
            Some(Value::Object(v)) => v,
            Some(other) => bail!("{origin}: `vision_config` must be an object, found {other}"),
            None => bail!("{origin}: missing required key `vision_config`"),
        };
        let nested = matches!(top.get("text_config"), Some(Value::Object(_)));
        let mut text_map = match top.remove("text_config") {
            Some(Value::Object(t)) => {
                // Nested layout: top-level text keys are shadowed by `text_config`, as in transformers.
                let stray: Vec<String> =
                    top.keys().filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())).cloned().collect();
                for key in stray {
                    ensure!(
                        TEXT_KEYS.contains(&key.as_str()),
                        "{origin}: unknown key `{key}` at the top level; r1lab does not know what it means for \
                         Qwen2.5-VL (if it is harmless bookkeeping, add it to IGNORED_KEYS in \
                         lib/model/qwen2_5_vl/config.rs)"
                    );
                    top.remove(&key);
                }
                t
            }
            None | Some(Value::Null) => {
                // Flat layout: everything that is not a top-level key is a text key.
                let keys: Vec<String> = top.keys().filter(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())).cloned().collect();
                let mut t = Map::new();
                for key in keys {
                    let v = top.remove(&key).expect("key listed above");
                    t.insert(key, v);
                }
                t
            }
            Some(other) => bail!("{origin}: `text_config` must be an object, found {other}"),
        };
        for key in TEXT_SECTION_COPIES {
            text_map.remove(*key);
        }
        let text_section = if nested { "text_config" } else { "top level (flat layout, text keys)" };
        let text: TextConfig = section(text_map, text_section, origin)?;
        let vision: VisionConfig = section(vision, "vision_config", origin)?;
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Top {
            #[serde(default = "d_model_type")]
            model_type: String,
            #[serde(default = "d_image_token_id")]
            image_token_id: i64,
            #[serde(default = "d_video_token_id")]
            video_token_id: i64,
            #[serde(default = "d_vision_start_token_id")]
            vision_start_token_id: i64,
            #[serde(default = "d_vision_end_token_id")]
            vision_end_token_id: i64,
            #[serde(default)]
            vision_token_id: Option<i64>,
            #[serde(default)]
            tie_word_embeddings: bool,
        }
        let t: Top = section(top, "top level", origin)?;
        let tie_word_embeddings = t.tie_word_embeddings || text.tie_word_embeddings == Some(true);
        Ok(Config {
            model_type: t.model_type,
            text_config: text,
            vision_config: vision,
            image_token_id: t.image_token_id,
            video_token_id: t.video_token_id,
            vision_start_token_id: t.vision_start_token_id,
            vision_end_token_id: t.vision_end_token_id,
            vision_token_id: t.vision_token_id,
            tie_word_embeddings,
        })
    }

    /// Checks that the model described can be built and behaves as transformers' would.
    pub fn validate(&self) -> Result<()> {
        ensure!(
            self.model_type == "qwen2_5_vl",
            "model_type is `{}`, expected `qwen2_5_vl` (this is not a Qwen2.5-VL checkpoint)",
            self.model_type
        );
        self.text_config.validate().context("text_config")?;
        self.vision_config.validate().context("vision_config")?;
        let (t, v) = (&self.text_config, &self.vision_config);
        ensure!(
            v.out_hidden_size == t.hidden_size,
            "vision_config.out_hidden_size ({}) must equal the text hidden_size ({}): image features replace \
             token embeddings",
            v.out_hidden_size,
            t.hidden_size
        );
        for (name, id) in [
            ("image_token_id", self.image_token_id),
            ("video_token_id", self.video_token_id),
            ("vision_start_token_id", self.vision_start_token_id),
            ("vision_end_token_id", self.vision_end_token_id),
        ] {
            ensure!(
                (0..t.vocab_size as i64).contains(&id),
                "{name} {id} is outside the vocabulary (vocab_size {})",
                t.vocab_size
            );
        }
        Ok(())
    }

    /// Number of parameters of `Qwen2_5_VLForConditionalGeneration` built from this config, and how many of
    /// them are in the vision tower (`model.visual`). A tied `lm_head` is counted once, as torch does.
    pub fn num_parameters(&self) -> (u64, u64) {
        let (t, v) = (&self.text_config, &self.vision_config);
        let lin = |i: usize, o: usize, bias: bool| (i * o + if bias { o } else { 0 }) as u64;
        let (vh, vi) = (v.hidden_size, v.intermediate_size);
        let vblock =
            2 * vh as u64 + lin(vh, 3 * vh, true) + lin(vh, vh, true) + 2 * lin(vh, vi, true) + lin(vi, vh, true);
        let merged = vh * v.spatial_merge_size * v.spatial_merge_size;
        let visual = (v.in_channels * v.temporal_patch_size * v.patch_size * v.patch_size * vh) as u64
            + v.depth as u64 * vblock
            + vh as u64
            + lin(merged, merged, true)
            + lin(merged, v.out_hidden_size, true);
        let (h, kv) = (t.hidden_size, t.num_key_value_heads() * t.head_dim());
        let layer = lin(h, h, true) + 2 * lin(h, kv, true) + lin(h, h, false) + 3 * lin(h, t.intermediate_size, false);
        let mut text = (t.vocab_size * h) as u64 + t.num_hidden_layers as u64 * (layer + 2 * h as u64) + h as u64;
        if !self.tie_word_embeddings {
            text += (t.vocab_size * h) as u64;
        }
        (visual + text, visual)
    }
}

impl TextConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads.max(1)
    }

    pub fn num_key_value_heads(&self) -> usize {
        self.num_key_value_heads.unwrap_or(self.num_attention_heads)
    }

    /// The rope dict transformers uses: `rope_scaling` if given, else `rope_parameters`.
    fn rope(&self) -> Option<&RopeParameters> {
        self.rope_scaling.as_ref().or(self.rope_parameters.as_ref())
    }

    pub fn rope_theta(&self) -> f64 {
        self.rope().and_then(|r| r.rope_theta).or(self.rope_theta).unwrap_or(DEFAULT_TEXT_ROPE_THETA)
    }

    /// How the rotary half-dimension is split between the temporal, height and width position ids.
    pub fn mrope_section(&self) -> Vec<usize> {
        self.rope().and_then(|r| r.mrope_section.clone()).unwrap_or_else(|| DEFAULT_MROPE_SECTION.to_vec())
    }

    pub fn eos_token_ids(&self) -> Vec<i64> {
        self.eos_token_id.as_ref().map(TokenIds::to_vec).unwrap_or_default()
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads()),
        ] {
            ensure!(v > 0, "{name} must be positive");
        }
        ensure!(
            self.hidden_size.is_multiple_of(self.num_attention_heads),
            "hidden_size {} is not divisible by num_attention_heads {}",
            self.hidden_size,
            self.num_attention_heads
        );
        ensure!(
            self.num_attention_heads.is_multiple_of(self.num_key_value_heads()),
            "num_attention_heads {} is not a multiple of num_key_value_heads {}",
            self.num_attention_heads,
            self.num_key_value_heads()
        );
        let head_dim = self.head_dim();
        if let Some(hd) = self.head_dim {
            ensure!(hd == head_dim, "head_dim {hd} differs from hidden_size / num_attention_heads = {head_dim}");
        }
        ensure!(head_dim.is_multiple_of(2), "the head dimension {head_dim} must be even for rotary embeddings");
        ensure!(self.hidden_act == "silu", "hidden_act `{}` is not supported (only `silu`)", self.hidden_act);
        ensure!(self.rms_norm_eps > 0.0, "rms_norm_eps must be positive");
        if let Some(rope) = self.rope() {
            let kind = rope.rope_type.as_deref().or(rope.type_.as_deref()).unwrap_or("default");
            ensure!(
                kind == "default" || kind == "mrope",
                "rope type `{kind}` is not supported (only M-RoPE: `default`/`mrope`)"
            );
        }
        ensure!(self.rope_theta() > 0.0, "rope_theta must be positive");
        let section = self.mrope_section();
        ensure!(
            section.len() == 3 && section.iter().sum::<usize>() == head_dim / 2,
            "mrope_section {section:?} must have 3 entries (t, h, w) summing to head_dim / 2 = {}",
            head_dim / 2
        );
        ensure!(
            !self.use_sliding_window,
            "use_sliding_window = true is not supported (Qwen2.5-VL checkpoints use full attention)"
        );
        if let Some(types) = &self.layer_types {
            ensure!(
                types.len() == self.num_hidden_layers,
                "layer_types has {} entries for {} layers",
                types.len(),
                self.num_hidden_layers
            );
            if let Some((i, t)) = types.iter().enumerate().find(|(_, t)| t.as_str() != "full_attention") {
                bail!("layer_types[{i}] is `{t}`; only `full_attention` is supported");
            }
        }
        Ok(())
    }
}

impl VisionConfig {
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_heads.max(1)
    }

    pub fn rope_theta(&self) -> f64 {
        self.rope_parameters.as_ref().and_then(|r| r.rope_theta).unwrap_or(DEFAULT_VISION_ROPE_THETA)
    }

    /// Side of an attention window in merged tokens (`window_size / spatial_merge_size / patch_size`).
    pub fn window_merged_tokens(&self) -> usize {
        self.window_size / self.spatial_merge_size / self.patch_size
    }

    fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("depth", self.depth),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_heads", self.num_heads),
            ("out_hidden_size", self.out_hidden_size),
            ("patch_size", self.patch_size),
            ("spatial_merge_size", self.spatial_merge_size),
            ("temporal_patch_size", self.temporal_patch_size),
        ] {
            ensure!(v > 0, "{name} must be positive");
        }
        ensure!(
            self.hidden_size.is_multiple_of(self.num_heads),
            "hidden_size {} is not divisible by num_heads {}",
            self.hidden_size,
            self.num_heads
        );
        ensure!(
            self.head_dim().is_multiple_of(4),
            "the head dimension {} must be a multiple of 4 for the 2-D (height, width) rotary embedding",
            self.head_dim()
        );
        ensure!(self.in_channels == 3, "in_channels {} is not supported (images are RGB)", self.in_channels);
        if let Some(c) = self.in_chans {
            ensure!(c == self.in_channels, "in_chans {c} disagrees with in_channels {}", self.in_channels);
        }
        if let Some(p) = self.spatial_patch_size {
            ensure!(p == self.patch_size, "spatial_patch_size {p} disagrees with patch_size {}", self.patch_size);
        }
        ensure!(self.hidden_act == "silu", "hidden_act `{}` is not supported (only `silu`)", self.hidden_act);
        ensure!(
            self.window_merged_tokens() > 0,
            "window_size {} is smaller than one merged token ({} px)",
            self.window_size,
            self.patch_size * self.spatial_merge_size
        );
        let mut seen = vec![false; self.depth];
        for &i in &self.fullatt_block_indexes {
            ensure!(
                i < self.depth,
                "fullatt_block_indexes contains {i}, but there are only {} blocks (depth)",
                self.depth
            );
            ensure!(!seen[i], "fullatt_block_indexes lists block {i} twice");
            seen[i] = true;
        }
        if let Some(rope) = &self.rope_parameters {
            ensure!(rope.mrope_section.is_none(), "vision rope_parameters must not have an mrope_section");
        }
        Ok(())
    }
}

/// Text keys accepted (and, in the nested layout, shadowed) at the top level; kept equal to the fields of
/// [`TextConfig`] by a unit test.
const TEXT_KEYS: &[&str] = &[
    "model_type",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "head_dim",
    "hidden_act",
    "max_position_embeddings",
    "rms_norm_eps",
    "rope_parameters",
    "rope_scaling",
    "rope_theta",
    "attention_dropout",
    "use_sliding_window",
    "sliding_window",
    "max_window_layers",
    "layer_types",
    "bos_token_id",
    "eos_token_id",
    "pad_token_id",
    "initializer_range",
    "use_cache",
    "tie_word_embeddings",
];

fn remove_ignored(map: &mut Map<String, Value>) {
    map.retain(|k, _| !IGNORED_KEYS.split_whitespace().any(|i| i == k));
}

/// Deserializes one section, naming the section and file in errors (serde names the key).
fn section<T: DeserializeOwned>(mut map: Map<String, Value>, name: &str, origin: &str) -> Result<T> {
    remove_ignored(&mut map);
    serde_json::from_value(Value::Object(map)).map_err(|e| {
        anyhow!(
            "{origin}, {name}: {e}. Check the key against transformers' Qwen2_5_VLConfig; harmless bookkeeping keys \
             can be added to IGNORED_KEYS in lib/model/qwen2_5_vl/config.rs"
        )
    })
}

#[cfg(test)]
mod tests;
