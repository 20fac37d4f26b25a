//! The reproducibility layer (issue 5; style_anchors Part B): experiment manifests that pin everything a run
//! depends on, stateless seed derivation, and the run record every job writes under `artifacts/runs/<run_id>/`.
//!
//! - [`seed`]: `(base, domain, step, prompt, sample) → seed`, SHA-256 over a fixed layout (A6 item 7).
//! - [`manifest`]: the TOML schema of `experiments/<paper>/<stage>.toml`, validated at load, with a canonical
//!   hash (B9).
//! - [`record`]: `run.json` written at start and finalised atomically, `metrics.parquet`, `plots/*.png` (B10).
//! - [`checkpoint`]: `checkpoints/step-N/` (HF-layout model, AdamW state, reference policy, trainer counters) with a
//!   canonical parameter hash; exact resume (`r1lab run --resume`, in [`crate::pipeline`]).
//! - [`fingerprint`]: per-step digests (`fingerprints.jsonl`) that locate the first divergence of a replay.
//!
//! Not here yet: `r1lab lock`, replay, sweeps (issue 5 items 2, 5, 6).
pub mod checkpoint;
pub mod fingerprint;
pub mod manifest;
pub mod record;
pub mod seed;
