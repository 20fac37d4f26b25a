//! Data sets in the papers' own formats, and the synthetic task family of the embedded default.
//!
//! - [`easyr1`]: RL data as EasyR1 reads it (parquet with `images`, `problem`, `answer`).
//! - [`format`]: the papers' answer formats (`<answer> Final Answer:X` vs `\boxed{}`) and ReVisual-R1's format prompt.
//! - [`perception`]: the base model's short perception Q&A about synthetic images (the Instruct analogue).
//! - [`sharegpt`]: SFT data as LLaMA-Factory reads it (sharegpt JSON with `messages` and `images`).
//! - [`synthetic`]: seeded visual reasoning problems (shapes, bar charts, digit grids, right
//!   triangles) with text-only twins, ground-truth traces and disjoint splits.
//!
//! The readers accept what the writers write and the shapes real releases use, so synthetic and
//! real data go through the same loaders.
pub mod bridging;
pub mod cli;
pub mod easyr1;
pub mod format;
pub mod perception;
pub mod sharegpt;
pub mod synthetic;
