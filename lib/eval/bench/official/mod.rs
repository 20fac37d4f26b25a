//! Each benchmark's official rule-based scorer, ported from its published evaluation code (read, then
//! re-derived in Rust; every file's header names the script, functions and commit it follows and each
//! deliberate deviation). [`super::score::score_response`] dispatches here by benchmark; MathVista's
//! official normalisation lives in [`crate::eval::mathvista`] and is called from [`super::score`].
//!
//! - [`mathvision`]: MATH-Vision (mathllm/MATH-V `evaluation/evaluate.py`, `utils.py`): rule extraction
//!   from the response, `find_math_answer` / `_strip_string` normalisation, `is_equal` (string, tuple and
//!   2-decimal numeric equality, against the answer and the answer's option text).
//! - [`dynamath`]: DynaMath (DynaMath/DynaMath `evaluation/opensource_json_eval.py`): the JSON `short answer`,
//!   then per answer type: float within 0.001, option letter, substring for free form.
//! - [`logicvista`]: LogicVista (Yijia-Xiao/LogicVista `eval/extract_accuracy_new.py`): its extraction is
//!   GPT-4 only (r1lab's rule extraction stands in); the comparison (sorted, lower-cased letter lists) and
//!   the script's short cuts are ported.
//! - [`mmmath`]: MM-Math (kge-sun/MM-Math `eval.py`, `AutoScoringJudge`): every `\boxed{}`, unit and
//!   symbol clean-up, then numeric (0.0101, percentages), interval, expression (sympy, here
//!   [`crate::rl::grader::symbolic`]) and equation equality.
//! - [`wemath`]: We-Math (We-Math/We-Math `evaluation/four_dimensional_metrics.py`, `load_and_process_data`):
//!   the text after the last `Answer`, stripped of `>`, `<`, `:`, `.` and spaces, read as its first
//!   character when that is A-H, compared with the answer letter; nothing adapted (Vision-R1's tag reads
//!   under the rule itself).
//! - [`parse`], [`arith`]: the LaTeX the MATH-Vision and MM-Math ports parse and evaluate (latex2sympy's and
//!   sympy's reading of a common fragment).
//!
//! Each `score` function has the shape of MathVista's: `(item, sample, response) -> Option<ItemScore>`,
//! `None` when it has no rule for the item (the caller then uses r1lab's rules), with `extraction` what the
//! official extraction found and `prediction` the normalised value it compares.
use std::borrow::Cow;

use crate::eval::extract::vision_r1_final_answer;

pub mod arith;
pub mod dynamath;
pub mod logicvista;
pub mod mathvision;
pub mod mmmath;
pub mod parse;
pub mod wemath;

/// `response`, or `\boxed{X}` when it does not contain `marker` (the script's box test) but carries
/// Vision-R1's `<answer> Final Answer: X </answer>`: the official extractions look for a box (or phrases a
/// Vision-R1 response does not use), so Vision-R1's trained answer format is read as the box it stands for.
pub(crate) fn as_boxed<'a>(response: &'a str, marker: &str) -> Cow<'a, str> {
    match vision_r1_final_answer(response) {
        Some(a) if !response.contains(marker) => Cow::Owned(format!("\\boxed{{{a}}}")),
        _ => Cow::Borrowed(response),
    }
}
