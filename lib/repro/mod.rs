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
//! - [`lock`]: `r1lab lock` pins every input by content hash; `r1lab run --require-locked` refuses the rest.
//! - [`replay`]: `r1lab replay RUN_DIR` climbs the replay ladder (L0 inputs and data order, L1 bitwise
//!   fingerprints, L2 numeric and L3 statistical within the manifest's `[replay]` tolerances).
//! - [`sweep`]: `r1lab sweep` runs a grid × paired seeds and writes the mean ± 95 % CI table.
pub mod checkpoint;
pub mod fingerprint;
pub mod grid;
pub mod lock;
pub mod manifest;
pub mod record;
pub mod replay;
pub mod seed;
pub mod sweep;
