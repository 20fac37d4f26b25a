//! Qwen2.5-VL (arXiv 2502.13923) as transformers 5.17 implements it (`Qwen2_5_VLForConditionalGeneration`):
//! a window-attention ViT with 2-D rotary embeddings and a 2x2 patch merger feeding a Qwen2.5 decoder with
//! M-RoPE.
//!
//! - [`config`]: `config.json` (nested and flat layouts), validation, parameter count.
//! - [`model`]: the whole `Qwen2_5_VLForConditionalGeneration` ([`Qwen2_5_VL`]: forward, prefill/decode, `from_dir`)
//!   and the one-prompt jobs behind `r1lab forward` / `r1lab generate` ([`model::run`]).
//! - [`rope`]: M-RoPE cos/sin and `get_rope_index` (3-D position ids, `rope_deltas`).
//! - [`text`]: the text decoder, LM head and KV cache.
//! - [`weights`]: safetensors checkpoints (single or sharded) into a `VarStore`.
pub mod config;
pub mod model;
pub mod rope;
pub mod save;
pub mod text;
pub mod vision;
pub mod weights;

pub use config::Config;
pub use model::{Images, Qwen2_5_VL};
