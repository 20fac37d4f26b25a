//! The embedded default's model (issues 3 and 6): a tiny Qwen2.5-VL with the real architecture and file schema,
//! a byte-level BPE tokenizer trained on the synthetic task family, and deterministic initial weights, stored as
//! a Hugging Face-shaped repository `r1lab/tiny-qwen2.5-vl` in the standard Hub cache, so that it is resolved by
//! [`crate::hub::Hub::fetch`] (offline, sha256-verified) exactly as a downloaded real checkpoint is.
//!
//! **Files** ([`build_dir`]), the published Qwen2.5-VL-7B-Instruct's set:
//! - `config.json`: `Qwen2_5_VLForConditionalGeneration`, nested layout ([`super::qwen2_5_vl::save`]), from
//!   [`TinyArch`]: real patch 14 / temporal 2 / merge 2 / window 112 px, SiLU, RMSNorm eps 1e-6, M-RoPE theta
//!   1e6 with the section scaled to the head size (`[16, 24, 24]` / 4 = `[4, 6, 6]` for head_dim 32), GQA,
//!   `tokens_per_second` 2, one full-attention vision block (the last, as every 8th block in the real tower);
//!   only widths and depths are small. `vocab_size` is the tokenizer's size rounded up to a multiple of
//!   [`VOCAB_MULTIPLE`] (Qwen pads 151665 to 152064 the same way); the token ids are the tokenizer's;
//!   `tie_word_embeddings` is true (as Qwen2.5-VL-3B);
//! - `model.safetensors` (f32, tied `lm_head` not written): initialised as transformers' `_init_weights` does for
//!   this model: every weight of rank >= 2 (linear layers, the embedding, the Conv3d patch embedding) drawn
//!   from N(0, initializer_range) (`vision_config.initializer_range` under `visual.`, the text one elsewhere; both
//!   [`INITIALIZER_RANGE`], not Qwen's 0.02),
//!   biases zero, RMSNorm weights (the rank-1 weights) one. There is no padding row (no `pad_token_id`). The
//!   draws: parameter `i` in name order takes the stream `repro::seed::rng(seed, SeedDomain::Init, 0, i, 0)`
//!   (ChaCha8, read as little-endian u64 words `k`), and each pair of words gives two Box-Muller normals from the
//!   53-bit uniforms `u1 = 1 - (k1 >> 11) / 2^53`, `u2 = (k2 >> 11) / 2^53`: `sqrt(-2 ln u1) cos(2 pi u2)`, then
//!   the same with `sin`, in f64, scaled and rounded to f32. libtorch's generator is not used, so the weights
//!   depend on the seed alone, bit for bit wherever the libm gives the same `ln`/`sin`/`cos` (a difference
//!   would show as a different revision);
//! - `tokenizer.json`, `tokenizer_config.json` ([`crate::processor::train_bpe`]) and the processor's
//!   `chat_template.json` with the real Qwen2.5-VL chat template;
//! - `preprocessor_config.json`: the real Qwen2-VL image processor settings with `min_pixels` = 112² and
//!   `max_pixels` = 224² so that a synthetic image (`data::synthetic::Config.size`, 112..=448, default 224)
//!   takes 16 to 64 `<|image_pad|>` tokens (64 at the default size, no resize);
//! - `generation_config.json`: the published Instruct file's keys and values (`do_sample`, `temperature` 0.1,
//!   `top_p` 0.001, `top_k` 1, `repetition_penalty` 1.05), with bos/pad `<|endoftext|>` and eos
//!   [`<|im_end|>`, `<|endoftext|>`] mapped to this tokenizer's ids (r1lab's samplers take their settings from
//!   the manifest, not from this file);
//! - `README.md`: a model card with the [`TinySpec`] and the parameter count.
//!
//! **Tokenizer corpus** ([`corpus`]): for every family and level 1..=3, the first
//! [`TinySpec::problems_per_family`] train-split problems of the synthetic stream (`TinySpec::data` with that
//! level): question with choices, text twin and reference response; plus the chat template's own text
//! ([`CHAT_TEMPLATE_TEXT`]). Held-out problems never enter the tokenizer.
//!
//! **Hub cache** ([`install`]): `<cache>/models--r1lab--tiny-qwen2.5-vl/...` at a content revision, placed by
//! [`crate::hub::install::install_dir`] (idempotent, atomic, every blob named by its sha256 so every file is verified
//! on fetch), so the same spec gives the same revision on every machine; [`TinyRepo::hub_repo`] pins the hashes too.
pub mod cli;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, ensure};
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};
use tch::{Device, Tensor, nn};

use super::qwen2_5_vl::save::{SaveOptions, replace_dir, write_checkpoint_files};
use super::qwen2_5_vl::{Config, Qwen2_5_VL};
use crate::data::synthetic::{self, Family, Split};
use crate::hub::{Hub, HubRepo};
use crate::io::write_atomic;
use crate::processor::chat::{CHAT_TEMPLATE_JSON_FILE, PREPROCESSOR_CONFIG_FILE};
use crate::processor::image::ImageProcessorConfig;
use crate::processor::tokenizer::QwenTokenizer;
use crate::processor::train_bpe::{BpeSpec, CHAT_TEMPLATE_TEXT, QWEN2_5_VL_CHAT_TEMPLATE, TrainedTokenizer, train_bpe};
use crate::repro::seed::{self, SeedDomain};

/// The repository id of the tiny model.
pub const TINY_REPO_ID: &str = "r1lab/tiny-qwen2.5-vl";
/// `vocab_size` is the tokenizer's size rounded up to a multiple of this.
pub const VOCAB_MULTIPLE: usize = 64;
/// Pixel bounds of the image processor: 16 to 64 merged image tokens per image.
pub const MIN_PIXELS: u64 = 112 * 112;
pub const MAX_PIXELS: u64 = 224 * 224;
pub const GENERATION_CONFIG_FILE: &str = "generation_config.json";
/// `initializer_range` of both the text and the vision config. Qwen's 0.02 is 1.2/sqrt(hidden) at the 7B's text width
/// 3584 but only 0.23/sqrt(hidden) at the tiny width 128, and at 0.02 the tiny model never leaves the answer-prior
/// plateau of perception questions. Measured with `scripts/diagnostics/init_scale_hf.py` and its earlier version
/// (issue 6 note): one count question ("How many red shapes?") is learned in 300 steps once the text weights are
/// drawn at 0.08; the four colour-count questions together stay at the floor for 1,100 steps with the text at 0.08
/// and the vision tower at 0.02, and are learned with both at 0.08 (held-out 81 % at step 1,100, 90 % at 1,500, the
/// question prior 40 %).
pub const INITIALIZER_RANGE: f64 = 0.08;

/// Widths and depths of the tiny model (everything else is Qwen2.5-VL's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TinyArch {
    pub text_hidden: usize,
    pub text_intermediate: usize,
    pub text_layers: usize,
    pub text_heads: usize,
    pub text_kv_heads: usize,
    pub vision_hidden: usize,
    pub vision_intermediate: usize,
    /// Vision blocks; the last one uses full attention, the others window attention.
    pub vision_depth: usize,
    pub vision_heads: usize,
}

impl Default for TinyArch {
    fn default() -> Self {
        Self {
            text_hidden: 128,
            text_intermediate: 384,
            text_layers: 4,
            text_heads: 4,
            text_kv_heads: 2,
            vision_hidden: 64,
            vision_intermediate: 176,
            vision_depth: 4,
            vision_heads: 2,
        }
    }
}

/// Everything the tiny repository is built from; the same spec gives byte-identical files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TinySpec {
    /// Base seed of the weight initialisation (`SeedDomain::Init`).
    pub seed: u64,
    /// The synthetic stream of the tokenizer corpus (its `level` is ignored: all levels are used) and the
    /// image size the preprocessor is set for.
    pub data: synthetic::Config,
    /// Train problems per family and level in the tokenizer corpus.
    pub problems_per_family: usize,
    pub bpe: BpeSpec,
    pub arch: TinyArch,
}

impl TinySpec {
    /// The spec the integration tests build: a 5-problems-per-family tokenizer corpus (fast to train) and a
    /// preprocessor set for 112-px synthetic images.
    pub fn small() -> Self {
        Self {
            problems_per_family: 5,
            data: synthetic::Config { size: 112, ..synthetic::Config::default() },
            ..Self::default()
        }
    }
}

impl Default for TinySpec {
    fn default() -> Self {
        Self {
            seed: 0,
            data: synthetic::Config::default(),
            problems_per_family: 50,
            bpe: BpeSpec::default(),
            arch: TinyArch::default(),
        }
    }
}

/// The tokenizer corpus of `spec` (see the module docs).
pub fn corpus(spec: &TinySpec) -> Result<Vec<String>> {
    let mut docs: Vec<String> = CHAT_TEMPLATE_TEXT.iter().map(|s| s.to_string()).collect();
    for level in 1..=3 {
        let cfg = synthetic::Config { level, ..spec.data };
        for p in synthetic::generate_mix(&Family::ALL, &cfg, Split::Train, spec.problems_per_family)? {
            docs.extend([p.question_with_choices(), p.text_twin(), p.reference_response()]);
        }
    }
    Ok(docs)
}

/// The model config for `arch` and a trained tokenizer (see the module docs).
pub fn tiny_config(arch: &TinyArch, tok: &QwenTokenizer) -> Result<Config> {
    let s = tok.special();
    let vocab = tok.vocab_size().next_multiple_of(VOCAB_MULTIPLE);
    let head_dim = arch.text_hidden / arch.text_heads.max(1);
    ensure!(head_dim.is_multiple_of(16), "text head_dim {head_dim} must be a multiple of 16 to split M-RoPE 2:3:3");
    let q = head_dim / 16;
    let value = json!({
        "model_type": "qwen2_5_vl",
        "image_token_id": s.image_pad,
        "video_token_id": s.video_pad,
        "vision_start_token_id": s.vision_start,
        "vision_end_token_id": s.vision_end,
        "tie_word_embeddings": true,
        "text_config": {
            "model_type": "qwen2_5_vl_text",
            "vocab_size": vocab,
            "hidden_size": arch.text_hidden,
            "intermediate_size": arch.text_intermediate,
            "num_hidden_layers": arch.text_layers,
            "num_attention_heads": arch.text_heads,
            "num_key_value_heads": arch.text_kv_heads,
            "hidden_act": "silu",
            "max_position_embeddings": 32768,
            "rms_norm_eps": 1e-6,
            "rope_parameters": {
                "rope_type": "default",
                "rope_theta": 1_000_000.0,
                "mrope_section": [2 * q, 3 * q, 3 * q]
            },
            "attention_dropout": 0.0,
            "use_sliding_window": false,
            "sliding_window": null,
            "max_window_layers": 80,
            "layer_types": vec!["full_attention"; arch.text_layers],
            "bos_token_id": s.endoftext,
            "eos_token_id": s.im_end,
            "pad_token_id": null,
            "initializer_range": INITIALIZER_RANGE,
            "use_cache": true
        },
        "vision_config": {
            "model_type": "qwen2_5_vl_vision",
            "depth": arch.vision_depth,
            "hidden_size": arch.vision_hidden,
            "intermediate_size": arch.vision_intermediate,
            "num_heads": arch.vision_heads,
            "out_hidden_size": arch.text_hidden,
            "hidden_act": "silu",
            "in_channels": 3,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "tokens_per_second": 2,
            "window_size": 112,
            "fullatt_block_indexes": [arch.vision_depth.saturating_sub(1)],
            "initializer_range": INITIALIZER_RANGE,
            "rope_parameters": {"rope_type": "axial", "rope_theta": 10000.0}
        }
    });
    let cfg = Config::parse(&value.to_string(), "the tiny model config")?;
    cfg.validate().context("the tiny model config")?;
    Ok(cfg)
}

/// Initialises every variable of `vs` (a model built from `cfg`) as the module docs say.
pub fn init_weights(vs: &nn::VarStore, cfg: &Config, seed: u64) -> Result<()> {
    let _guard = tch::no_grad_guard();
    let mut vars: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (name, var)) in vars.iter().enumerate() {
        let mut var = var.shallow_clone();
        let value = if name.ends_with(".bias") {
            var.zeros_like()
        } else if var.dim() == 1 {
            var.ones_like()
        } else {
            let std = if name.starts_with("visual.") {
                cfg.vision_config.initializer_range
            } else {
                cfg.text_config.initializer_range
            };
            let n = var.numel();
            let values = normals(seed::rng(seed, SeedDomain::Init, 0, i as u64, 0), n, std);
            Tensor::from_slice(&values).view(var.size().as_slice())
        };
        var.f_copy_(&value).with_context(|| format!("initialising `{name}`"))?;
    }
    Ok(())
}

/// `n` draws of N(0, std²) by Box-Muller (see the module docs). The stream is read in one `fill_bytes` call as
/// little-endian 64-bit words (the words `next_u64` would return), which is much faster in unoptimised builds.
fn normals(mut rng: rand_chacha::ChaCha8Rng, n: usize, std: f64) -> Vec<f32> {
    const SCALE: f64 = 1.0 / (1u64 << 53) as f64;
    let pairs = n.div_ceil(2);
    let mut bytes = vec![0u8; pairs * 16];
    rng.fill_bytes(&mut bytes);
    let mut out = Vec::with_capacity(2 * pairs);
    for chunk in bytes.chunks_exact(16) {
        let k1 = u64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
        let k2 = u64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
        let u1 = 1.0 - (k1 >> 11) as f64 * SCALE;
        let u2 = (k2 >> 11) as f64 * SCALE;
        let r = (-2.0 * u1.ln()).sqrt();
        let (sin, cos) = (2.0 * std::f64::consts::PI * u2).sin_cos();
        out.push((std * r * cos) as f32);
        out.push((std * r * sin) as f32);
    }
    out.truncate(n);
    out
}

/// What [`build_dir`] made.
#[derive(Debug, Clone)]
pub struct TinyBuild {
    pub config: Config,
    /// Learned BPE vocabulary and the tokenizer's full size (with the 22 added tokens).
    pub learned_vocab: usize,
    pub tokenizer_vocab: usize,
    /// Total parameters (the tied head counted once) and those of the vision tower.
    pub parameters: u64,
    pub vision_parameters: u64,
    /// File names in the folder, sorted.
    pub files: Vec<String>,
}

/// Builds the tiny model folder `dir` (replacing it; staged beside it and renamed into place).
pub fn build_dir(spec: &TinySpec, dir: &Path) -> Result<TinyBuild> {
    spec.data.validate()?;
    let docs = corpus(spec)?;
    let trained = train_bpe(&docs, &spec.bpe)?;
    let tok = trained.tokenizer()?;
    let cfg = tiny_config(&spec.arch, &tok)?;
    let vs = nn::VarStore::new(Device::Cpu);
    let _model = Qwen2_5_VL::new(&vs.root(), &cfg)?;
    init_weights(&vs, &cfg, spec.seed)?;
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("tiny");
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let stage = tempfile::Builder::new()
        .prefix(&format!(".tmp-{name}-"))
        .tempdir_in(parent)
        .with_context(|| format!("creating a temporary folder in {}", parent.display()))?;
    let saved = write_checkpoint_files(&vs, &cfg, stage.path(), SaveOptions::default())?;
    let (parameters, vision_parameters) = cfg.num_parameters();
    write_side_files(stage.path(), spec, &trained, &tok, parameters)?;
    let mut files: Vec<String> = saved.files;
    files.extend(SIDE_FILES.iter().map(|s| s.to_string()));
    files.sort();
    replace_dir(stage, dir)?;
    Ok(TinyBuild {
        config: cfg,
        learned_vocab: trained.learned_vocab,
        tokenizer_vocab: trained.vocab_size,
        parameters,
        vision_parameters,
        files,
    })
}

/// The files [`write_side_files`] writes next to the checkpoint.
const SIDE_FILES: [&str; 6] = [
    "tokenizer.json",
    "tokenizer_config.json",
    CHAT_TEMPLATE_JSON_FILE,
    PREPROCESSOR_CONFIG_FILE,
    GENERATION_CONFIG_FILE,
    "README.md",
];

fn pretty(v: &Value) -> Result<String> {
    Ok(serde_json::to_string_pretty(v)? + "\n")
}

fn write_side_files(
    dir: &Path,
    spec: &TinySpec,
    trained: &TrainedTokenizer,
    tok: &QwenTokenizer,
    parameters: u64,
) -> Result<()> {
    trained.write(dir)?;
    write_atomic(
        &dir.join(CHAT_TEMPLATE_JSON_FILE),
        pretty(&json!({"chat_template": QWEN2_5_VL_CHAT_TEMPLATE}))?.as_bytes(),
    )?;
    let pre = ImageProcessorConfig {
        min_pixels: Some(MIN_PIXELS),
        max_pixels: Some(MAX_PIXELS),
        image_processor_type: Some("Qwen2VLImageProcessor".into()),
        processor_class: Some("Qwen2_5_VLProcessor".into()),
        ..ImageProcessorConfig::default()
    };
    pre.validate()?;
    // serde_json's map is ordered by key, so this is Python's sort_keys=True.
    write_atomic(&dir.join(PREPROCESSOR_CONFIG_FILE), pretty(&serde_json::to_value(&pre)?)?.as_bytes())?;
    let s = tok.special();
    let generation = json!({
        "bos_token_id": s.endoftext,
        "do_sample": true,
        "eos_token_id": [s.im_end, s.endoftext],
        "pad_token_id": s.endoftext,
        "repetition_penalty": 1.05,
        "temperature": 0.1,
        "top_k": 1,
        "top_p": 0.001
    });
    write_atomic(&dir.join(GENERATION_CONFIG_FILE), pretty(&generation)?.as_bytes())?;
    let card = format!(
        "# {TINY_REPO_ID}\n\nA tiny Qwen2.5-VL (`Qwen2_5_VLForConditionalGeneration`, {parameters} parameters) with a \
         byte-level BPE tokenizer trained on r1lab's synthetic visual reasoning tasks; freshly initialised weights. \
         Built by `r1lab tiny init` (lib/model/tiny.rs) from this spec:\n\n```json\n{}\n```\n",
        serde_json::to_string_pretty(spec)?
    );
    write_atomic(&dir.join("README.md"), card.as_bytes())
}

/// The tiny repository as installed in a Hub cache.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TinyRepo {
    pub repo_id: String,
    /// 40-hex content hash (see the module docs).
    pub revision: String,
    /// `(file, sha256, written)`: `written` is false when the cache already had the right blob and link.
    pub files: Vec<(String, String, bool)>,
    /// `<cache>/models--r1lab--tiny-qwen2.5-vl/snapshots/<revision>`.
    pub snapshot: PathBuf,
    pub parameters: u64,
    pub tokenizer_vocab: usize,
}

impl TinyRepo {
    /// The repository at its revision with every file's sha256 pinned, for [`Hub::fetch`].
    pub fn hub_repo(&self) -> HubRepo {
        self.files
            .iter()
            .fold(HubRepo::model(&self.repo_id, &self.revision), |r, (f, sha, _)| r.with_file(f, Some(sha)))
    }

    /// Resolves every file through `hub` (sha256-verified) and returns the snapshot folder holding them.
    pub fn fetch(&self, hub: &Hub) -> Result<PathBuf> {
        let repo = self.hub_repo();
        let paths = hub.fetch_all(&repo)?;
        let (_, first) = paths.first().context("the tiny repository has no files")?;
        Ok(first.parent().context("a snapshot file has a parent folder")?.to_path_buf())
    }
}

/// The tiny repository's content revision (see [`crate::hub::install`]).
pub fn content_revision(files: &[(String, String)]) -> String {
    crate::hub::install::content_revision(TINY_REPO_ID, files)
}

/// Builds the tiny repository and installs it into the Hub cache `cache_dir` (see the module docs).
pub fn install(spec: &TinySpec, cache_dir: &Path) -> Result<TinyRepo> {
    std::fs::create_dir_all(cache_dir).with_context(|| format!("creating the Hub cache {}", cache_dir.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".tmp-r1lab-tiny-")
        .tempdir_in(cache_dir)
        .with_context(|| format!("creating a temporary folder in {}", cache_dir.display()))?;
    let built_dir = work.path().join("model");
    let built = build_dir(spec, &built_dir)?;
    let done = crate::hub::install::install_dir(TINY_REPO_ID, &built_dir, &built.files, cache_dir)?;
    Ok(TinyRepo {
        repo_id: TINY_REPO_ID.to_string(),
        revision: done.revision,
        files: done.files,
        snapshot: done.snapshot,
        parameters: built.parameters,
        tokenizer_vocab: built.tokenizer_vocab,
    })
}

#[cfg(test)]
mod tests;
