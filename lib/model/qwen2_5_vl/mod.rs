//! Qwen2.5-VL (arXiv 2502.13923) as transformers 5.17 implements it (`Qwen2_5_VLForConditionalGeneration`):
//! a window-attention ViT with 2-D rotary embeddings and a 2x2 patch merger feeding a Qwen2.5 decoder with
//! M-RoPE.
//!
//! - [`config`]: `config.json` (nested and flat layouts), validation, parameter count.
pub mod config;

pub use config::Config;
