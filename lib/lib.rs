//! r1lab: a reproducible Rust workspace for R1-style multimodal reasoning research
//! (Vision-R1, arXiv 2503.06749; ReVisual-R1, arXiv 2506.04207) on libtorch through `tch`.
//!
//! Map of the library (one concept per module):
//! - [`backend`]: which libtorch is loaded, CUDA loading, `--device auto|cpu|cuda[:N]`, `r1lab info`.
//! - [`io`]: crash-safe file writes (temp file + rename) used by every artefact writer.
//! - [`plot`]: plotters line charts rendered to PNG/SVG (run records, notebooks).
//! - [`notebook`]: inline display of charts, images and tables in evcxr notebooks.
//! - [`data`]: data sets in the papers' formats (EasyR1 parquet, LLaMA-Factory sharegpt) and the synthetic task family.
//! - [`demo`]: the embedded default's chain (`make demo`): prepare the tiny model and synthetic data, run the stage
//!   manifests, summarize.
//! - [`smoke`]: `r1lab smoke`, a seconds-long device check (an MLP trained through libtorch, parquet, a plot).
//! - [`model`]: Qwen2.5-VL in tch (config, vision tower, text decoder, M-RoPE).
//! - [`processor`]: image preprocessing, tokenizer and chat template as HF's processor does them.
//! - [`rl`]: rewards, answer grader, GRPO advantages and losses, PAD.
//! - [`sft`]: cold-start SFT labels (assistant tokens only) and the cross-entropy with its accumulation rule.
//! - [`train`]: AdamW with frozen parameters and grad-norm clipping that skips non-finite steps; LR schedules.
//! - [`eval`]: benchmark scoring faithful to the official scripts (MathVista: `r1lab score mathvista`).
//! - [`hub`]: Hugging Face Hub files pinned by commit and sha256, fetched with hf-hub into the Python-compatible cache.
//! - [`pipeline`]: `r1lab run MANIFEST`: one stage from its manifest to a complete run record (SFT or GRPO/PTST,
//!   evaluation, checkpoints, resume).
//! - [`repro`]: experiment manifests (TOML, validated, hashed), stateless seeds, run records.
//! - [`serve`]: `r1lab serve`, an OpenAI-compatible HTTP server over the tch Qwen2.5-VL with request batching.
//! - [`endpoint`]: a client for OpenAI-compatible endpoints (retries, timeouts) and a resumable per-item job store.
//! - [`datagen`]: modality bridging and ReVisual-R1 curation against an endpoint (`r1lab data bridge-endpoint|curate`).
//!
//! Notebooks depend only on this crate (`:dep r1lab = { path = ".." }`), so the heavy crates are
//! re-exported here and compiled once per build directory.
pub mod backend;
pub mod data;
pub mod datagen;
pub mod demo;
pub mod endpoint;
pub mod eval;
pub mod hub;
pub mod io;
pub mod model;
pub mod notebook;
pub mod perf;
pub mod pipeline;
pub mod plot;
pub mod processor;
pub mod repro;
pub mod rl;
pub mod serve;
pub mod sft;
pub mod smoke;
pub mod train;

pub use {anyhow, image, plotters, polars, tch};
