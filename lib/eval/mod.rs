//! Benchmark scoring that reproduces the official evaluation scripts item for item, so that
//! r1lab's numbers are comparable with published ones.
//!
//! - [`heldout`]: a policy's accuracy, format rate and response length on held-out RL-format prompts (one sample
//!   per prompt, seeded), as the stage runner evaluates checkpoints.
//! - [`mathvista`]: MathVista testmini (`calculate_score.py`): normalization, correctness and the
//!   accuracy breakdown; `r1lab score mathvista`.
//! - [`python`]: the Python value semantics those scripts depend on (`float()`, `int()`,
//!   `round()`, `str()`/`repr()`, `format(x, ".2f")`).
pub mod heldout;
pub mod mathvista;
pub mod python;
