//! How a manifest's `[data]` prompt settings change what the model sees (issue 5 item 7): the system prompt, the
//! format prompt and the SFT target transform, applied the same way on every path that builds prompts from a
//! manifest (SFT records in `pipeline::sft`, RL and evaluation prompts in `pipeline::grpo::load_prompts`).
//!
//! - `data.system_prompt` (papers_spec §1.6, Vision-R1-Zero's R1-V system prompt): a system message before the first
//!   user turn. Left out, no system message is sent, so Qwen2.5-VL's chat template inserts its default one
//!   (papers_spec §0.1). An SFT record that already has a system turn is refused rather than silently overridden.
//! - `data.format_prompt`: appended to every user question ([`crate::data::format::with_format_prompt`]).
//! - `data.transform = "strip_cot"` (Vision-R1 Tab.6 "Zero+SFT(no CoT)+PTST", papers_spec §1.8): every assistant
//!   target `<think> R </think>REST` becomes `REST` with its leading whitespace removed (e.g.
//!   `<answer> Final Answer:X </answer>`), so the SFT data teaches the answer without the reasoning. A target
//!   without a leading `<think>…</think>` block, or with nothing after it, is an error naming the record.
//!   Deliberate choice: the answer keeps its tags (`<answer>…</answer>` or `\boxed{}`), so the same answer
//!   extraction and rewards apply; the paper does not say how its no-CoT targets were written (UNVERIFIED).
use anyhow::{Result, ensure};
use serde::{Deserialize, Serialize};

use crate::data::format::with_format_prompt;
use crate::data::sharegpt::{Message, SftRecord};

/// `data.transform`: a rewrite of the SFT targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataTransform {
    /// Drop the `<think>…</think>` reasoning from every assistant target.
    StripCot,
}

/// `<think> R </think>REST` → `REST` (leading whitespace removed); None if `target` has no such shape.
pub fn strip_cot(target: &str) -> Option<String> {
    let rest = target.trim_start().strip_prefix("<think>")?;
    let (_, answer) = rest.split_once("</think>")?;
    let answer = answer.trim_start();
    (!answer.trim().is_empty()).then(|| answer.to_string())
}

/// Applies the system prompt, the format prompt and the transform to SFT records (in place).
pub fn apply_to_sft_records(
    records: &mut [SftRecord],
    system_prompt: Option<&str>,
    format_prompt: Option<&str>,
    transform: Option<DataTransform>,
) -> Result<()> {
    for (i, rec) in records.iter_mut().enumerate() {
        for msg in rec.messages.iter_mut() {
            match msg.role.as_str() {
                "user" => msg.content = with_format_prompt(&msg.content, format_prompt),
                "assistant" => {
                    if let Some(DataTransform::StripCot) = transform {
                        msg.content = strip_cot(&msg.content).ok_or_else(|| {
                            anyhow::anyhow!(
                                "SFT record {i}: data.transform = \"strip_cot\" needs every assistant target to be \
                                 `<think> ... </think>` followed by the answer, got {:?}; remove the transform or \
                                 fix the data",
                                truncate(&msg.content)
                            )
                        })?;
                    }
                }
                _ => {}
            }
        }
        if let Some(system) = system_prompt {
            ensure!(
                rec.messages.first().is_none_or(|m| m.role != "system"),
                "SFT record {i} has its own system turn and the manifest sets data.system_prompt; remove one of them"
            );
            rec.messages.insert(0, Message { role: "system".into(), content: system.to_string() });
        }
    }
    Ok(())
}

fn truncate(s: &str) -> String {
    let head: String = s.chars().take(80).collect();
    if head.len() < s.len() { format!("{head}...") } else { head }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strip_cot_keeps_the_answer_part() {
        assert_eq!(
            strip_cot("<think> 2 + 3 = 5. </think><answer> Final Answer:5 </answer>").as_deref(),
            Some("<answer> Final Answer:5 </answer>")
        );
        assert_eq!(
            strip_cot("<think> r </think> The final answer is \\boxed{5}.").as_deref(),
            Some("The final answer is \\boxed{5}.")
        );
        assert_eq!(strip_cot("no reasoning <answer>5</answer>"), None);
        assert_eq!(strip_cot("<think> unclosed <answer>5</answer>"), None);
        assert_eq!(strip_cot("<think> r </think>  "), None);
    }

    #[test]
    fn sft_records_get_the_system_prompt_format_prompt_and_transform() {
        let pair = || SftRecord::pair("<image>Q?".into(), "<think> r </think><answer> A </answer>".into(), vec![]);
        let mut recs = vec![pair(), pair()];
        apply_to_sft_records(&mut recs, Some("Be brief."), Some("Box it."), Some(DataTransform::StripCot)).unwrap();
        for r in &recs {
            let roles: Vec<&str> = r.messages.iter().map(|m| m.role.as_str()).collect();
            assert_eq!(roles, ["system", "user", "assistant"]);
            assert_eq!(r.messages[0].content, "Be brief.");
            assert_eq!(r.messages[1].content, "<image>Q? Box it.");
            assert_eq!(r.messages[2].content, "<answer> A </answer>");
        }
        // Nothing set: the records are unchanged.
        let mut same = vec![pair()];
        apply_to_sft_records(&mut same, None, None, None).unwrap();
        assert_eq!(same, vec![pair()]);
        // A record with its own system turn conflicts with the manifest's.
        let err = apply_to_sft_records(&mut recs, Some("x"), None, None).unwrap_err().to_string();
        assert!(err.contains("record 0") && err.contains("data.system_prompt"), "{err}");
        let mut plain = vec![SftRecord::pair("Q".into(), "just 5".into(), vec![])];
        let err = apply_to_sft_records(&mut plain, None, None, Some(DataTransform::StripCot)).unwrap_err().to_string();
        assert!(err.contains("strip_cot") && err.contains("just 5"), "{err}");
    }
}
