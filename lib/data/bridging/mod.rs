//! Vision-R1's modality bridging (papers_spec §1.2; paper v4 §3.3.1, Fig.2, App.A/B), in miniature on
//! the synthetic task family (issue 6 item 2): a multimodal "describer" turns the image into text, a
//! text-only "R1" reasons on that text, a filter keeps the correct and coherent CoTs, rewrites their
//! wording and pairs them with the image as Vision-R1-cold style SFT data.
//!
//! - [`describer`]: Pseudo-CoT and the two description modes (conditioned description, plain caption).
//! - [`parse`]: what the reasoner can read from a question and a description.
//! - [`reasoner`]: the R1 stand-in with seeded slips, reflections and detours; `solve` holds its
//!   per-template solutions.
//! - [`filter`]: answer check, rule-based consistency removal, word replacement, target format.
//! - [`pipeline`]: the run over a list of problems → `SftRecord`s and [`stats::BridgeStats`];
//!   the text-twin variant for ReVisual-R1's text cold start.
//! - [`cli`]: `r1lab data bridge`.
pub mod cli;
pub mod describer;
pub mod filter;
pub mod parse;
pub mod pipeline;
pub mod reasoner;
mod solve;
pub mod stats;

#[cfg(test)]
mod tests;

pub use describer::DescribeMode;
pub use filter::{DropReason, Target};
pub use pipeline::{BridgeConfig, BridgeRun, bridge, bridge_text};
pub use reasoner::Knobs;
pub use stats::BridgeStats;
