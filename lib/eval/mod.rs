//! Benchmark scoring that reproduces the official evaluation scripts item for item, so that
//! r1lab's numbers are comparable with published ones.
//!
//! - [`agreement`]: the rule-based extraction's agreement with MathVista's published GPT extractions;
//!   `r1lab score agreement`.
//! - [`extract`]: rule-based answer extraction from free-text responses (tags, `\boxed{}`, phrases,
//!   choice letters, numbers).
//! - [`heldout`]: a policy's accuracy, format rate and response length on held-out RL-format prompts (one sample
//!   per prompt, seeded), as the stage runner evaluates checkpoints.
//! - [`judge`]: answer extraction by an LLM judge through an OpenAI-compatible endpoint (resumable,
//!   recorded in `judge.json`).
//! - [`mathvista`]: MathVista testmini (`calculate_score.py`): normalization, correctness and the
//!   accuracy breakdown; `r1lab score mathvista`.
//! - [`python`]: the Python value semantics those scripts depend on (`float()`, `int()`,
//!   `round()`, `str()`/`repr()`, `format(x, ".2f")`).
pub mod agreement;
pub mod bench;
pub mod extract;
pub mod heldout;
pub mod judge;
pub mod mathvista;
pub mod python;
