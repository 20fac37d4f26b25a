//! Qwen2.5-VL (arXiv 2502.13923) as transformers 5.17 implements it (`Qwen2_5_VLForConditionalGeneration`):
//! a window-attention ViT with 2-D rotary embeddings and a 2x2 patch merger feeding a Qwen2.5 decoder with
//! M-RoPE.
//!
//! - [`config`]: `config.json` (nested and flat layouts), validation, parameter count.
//! - [`rope`]: M-RoPE cos/sin and `get_rope_index` (3-D position ids, `rope_deltas`).
//! - [`text`]: the text decoder, LM head and KV cache.
//! - [`weights`]: safetensors checkpoints (single or sharded) into a `VarStore`.
pub mod config;
pub mod rope;
pub mod text;
pub mod vision;
pub mod weights;

pub use config::Config;
