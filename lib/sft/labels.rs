//! Cold-start SFT labels: train on assistant tokens only, as LLaMA-Factory does for the `qwen2_vl` template
//! that both papers' SFT configs use (papers_spec §1.3, §2.3).
//!
//! LLaMA-Factory (`data/template.py`, `qwen2_vl`) renders a conversation as
//! ```text
//! format_system    <|im_start|>system\n{{content}}<|im_end|>\n
//! format_user      <|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n
//! format_assistant {{content}}<|im_end|>\n
//! ```
//! and its supervised processor labels every `format_assistant` piece (`train_on_prompt: false`,
//! `mask_history: false`, `efficient_eos: false`): the assistant content, its `<|im_end|>` **and the `\n`
//! after it** are targets; the system and user turns, image/video pads and the `<|im_start|>assistant\n`
//! header are `-100` ([`IGNORE_INDEX`]). Every assistant turn of a multi-turn conversation is trained. The
//! rendered text is the same as the checkpoint's chat template (Qwen2.5-VL's ChatML), so labels are built here
//! from the token ids of the rendered, tokenized conversation ([`crate::processor::chat::ChatProcessor`]):
//! a span starts after `<|im_start|>` + the tokens of `"assistant\n"` and runs through the next `<|im_end|>`
//! (+ the `\n` token after it under [`TrainedEnd::ImEndAndNewline`]). All ids come from the tokenizer
//! ([`ChatMarkers::from_tokenizer`]). An assistant turn with no `<|im_end|>` (cut by truncation) is trained
//! to the end of the sequence, as LLaMA-Factory trains a truncated target.
//!
//! Labels are aligned with `input_ids` (HF convention); the loss shifts them ([`super::loss`]). Padding
//! (attention mask 0) is always `-100`.
//!
//! Deviation: LLaMA-Factory tokenizes each message piece separately, this tokenizes the whole rendered
//! string. The ids are the same unless assistant content begins with whitespace that the tokenizer would
//! merge with the header's `\n`; [`assistant_labels`] detects that case and returns an error instead of
//! guessing the span.
use anyhow::{Context, Result, bail, ensure};

use crate::processor::chat::ChatBatch;
use crate::processor::tokenizer::QwenTokenizer;

/// The label of a position that is not trained (PyTorch `cross_entropy`'s default `ignore_index`).
pub const IGNORE_INDEX: i64 = -100;

/// Where a trained assistant span ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrainedEnd {
    /// Through `<|im_end|>` (what a rendered-template mask without the separator gives).
    ImEnd,
    /// Through `<|im_end|>` and the `\n` after it: LLaMA-Factory `qwen2_vl` (`{{content}}<|im_end|>\n`).
    ImEndAndNewline,
}

/// Token ids that delimit assistant turns, looked up from the tokenizer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMarkers {
    pub im_start: i64,
    pub im_end: i64,
    /// The ids of `"assistant\n"` (for Qwen2: `assistant`, `\n`).
    pub assistant_header: Vec<i64>,
    /// The id of `"\n"`.
    pub newline: i64,
}

impl ChatMarkers {
    pub fn from_tokenizer(tok: &QwenTokenizer) -> Result<Self> {
        let special = tok.special();
        let ids = |text: &str| -> Result<Vec<i64>> {
            Ok(tok
                .encode(text, false)
                .with_context(|| format!("tokenizing {text:?}"))?
                .into_iter()
                .map(i64::from)
                .collect())
        };
        let assistant_header = ids("assistant\n")?;
        let newline = ids("\n")?;
        ensure!(
            newline.len() == 1 && assistant_header.len() >= 2 && assistant_header.last() == newline.last(),
            "tokenizer {} splits \"assistant\\n\" as {assistant_header:?} and \"\\n\" as {newline:?}; expected the \
             role token(s) then the newline token (a Qwen2 tokenizer)",
            tok.origin()
        );
        Ok(Self {
            im_start: i64::from(special.im_start),
            im_end: i64::from(special.im_end),
            assistant_header,
            newline: newline[0],
        })
    }
}

/// Labels for one unpadded sequence: assistant spans keep their ids, everything else is [`IGNORE_INDEX`].
pub fn assistant_labels(ids: &[i64], markers: &ChatMarkers, end: TrainedEnd) -> Result<Vec<i64>> {
    let mut labels = vec![IGNORE_INDEX; ids.len()];
    let header = &markers.assistant_header;
    let role = &header[..header.len() - 1];
    let mut i = 0;
    while i < ids.len() {
        if ids[i] != markers.im_start {
            i += 1;
            continue;
        }
        let rest = &ids[i + 1..];
        if !rest.starts_with(header) {
            if rest.starts_with(role) && rest.len() > role.len() {
                bail!(
                    "assistant turn at token {i} is not followed by the header ids {header:?} (got {:?}): its \
                     content probably starts with whitespace merged into the header newline; strip leading \
                     whitespace from assistant messages (LLaMA-Factory tokenizes them separately)",
                    &rest[..header.len().min(rest.len())]
                );
            }
            i += 1;
            continue;
        }
        let start = i + 1 + header.len();
        let stop = match ids[start..].iter().position(|&t| t == markers.im_end) {
            Some(k) => {
                let im_end = start + k;
                let with_newline = end == TrainedEnd::ImEndAndNewline && ids.get(im_end + 1) == Some(&markers.newline);
                im_end + 1 + usize::from(with_newline)
            }
            None => ids.len(),
        };
        labels[start..stop].copy_from_slice(&ids[start..stop]);
        i = stop;
    }
    Ok(labels)
}

/// Labels for a left-padded [`ChatBatch`]: [`assistant_labels`] on the tokens, [`IGNORE_INDEX`] on padding.
/// Errors when a row has no trained token (a conversation without an assistant turn).
pub fn batch_labels(batch: &ChatBatch, markers: &ChatMarkers, end: TrainedEnd) -> Result<Vec<Vec<i64>>> {
    batch
        .input_ids
        .iter()
        .zip(&batch.attention_mask)
        .enumerate()
        .map(|(row, (ids, mask))| {
            ensure!(ids.len() == mask.len(), "row {row}: input_ids and attention_mask lengths differ");
            let first = mask.iter().position(|&m| m != 0).unwrap_or(ids.len());
            ensure!(mask[first..].iter().all(|&m| m != 0), "row {row}: padding must be on the left only");
            let mut labels = vec![IGNORE_INDEX; first];
            labels.extend(assistant_labels(&ids[first..], markers, end)?);
            ensure!(
                labels.iter().any(|&l| l != IGNORE_INDEX),
                "row {row} has no assistant tokens to train on; SFT samples need an assistant message"
            );
            Ok(labels)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::chat::{ChatProcessor, ContentPart, Message, RenderOptions};
    use std::path::Path;

    // Hand-built ids: 1 = <|im_start|>, 2 = <|im_end|>, 9 = "\n", 7 = "assistant", 5 = "user", 6 = "system".
    fn markers() -> ChatMarkers {
        ChatMarkers { im_start: 1, im_end: 2, assistant_header: vec![7, 9], newline: 9 }
    }
    const I: i64 = IGNORE_INDEX;

    #[test]
    fn hand_built_multi_turn() {
        let ids = [1, 6, 9, 40, 2, 9, 1, 5, 9, 41, 2, 9, 1, 7, 9, 50, 51, 2, 9, 1, 5, 9, 42, 2, 9, 1, 7, 9, 52, 2, 9];
        let got = assistant_labels(&ids, &markers(), TrainedEnd::ImEndAndNewline).unwrap();
        let want = [I, I, I, I, I, I, I, I, I, I, I, I, I, I, I, 50, 51, 2, 9, I, I, I, I, I, I, I, I, I, 52, 2, 9];
        assert_eq!(got, want);
        let got = assistant_labels(&ids, &markers(), TrainedEnd::ImEnd).unwrap();
        assert_eq!(got[18], I);
        assert_eq!(got[17], 2);
        assert_eq!(got[30], I);
    }

    #[test]
    fn truncated_turn_runs_to_the_end_and_merged_header_is_an_error() {
        let ids = [1, 5, 9, 41, 2, 9, 1, 7, 9, 50, 51];
        let got = assistant_labels(&ids, &markers(), TrainedEnd::ImEndAndNewline).unwrap();
        assert_eq!(got, [I, I, I, I, I, I, I, I, I, 50, 51]);
        // "assistant" followed by a merged "\n\n" token (99) instead of "\n".
        let err = assistant_labels(&[1, 7, 99, 50, 2], &markers(), TrainedEnd::ImEnd).unwrap_err();
        assert!(err.to_string().contains("leading"), "{err}");
        // im_end as the last token: no newline to train.
        assert_eq!(
            assistant_labels(&[1, 7, 9, 50, 2], &markers(), TrainedEnd::ImEndAndNewline).unwrap(),
            [I, I, I, 50, 2]
        );
    }

    #[test]
    fn rendered_conversations_with_the_fixture_tokenizer() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_chat");
        let p = ChatProcessor::from_dir(&dir).unwrap();
        let m = ChatMarkers::from_tokenizer(&p.tokenizer).unwrap();
        let convs = vec![
            vec![
                Message::with_parts("user", vec![ContentPart::image(None), ContentPart::text("What is 2+2?")]),
                Message::assistant("<think>2+2=4</think><answer>4</answer>"),
            ],
            vec![Message::user("Hi"), Message::assistant("Hello.")],
        ];
        let batch = p.encode(&convs, &[[1, 4, 4]], RenderOptions::default()).unwrap();
        let labels = batch_labels(&batch, &m, TrainedEnd::ImEndAndNewline).unwrap();
        for (row, (ids, lab)) in batch.input_ids.iter().zip(&labels).enumerate() {
            let trained: Vec<u32> =
                ids.iter().zip(lab).filter(|(_, l)| **l != I).map(|(&t, _)| u32::try_from(t).unwrap()).collect();
            let text = p.tokenizer.decode(&trained, false).unwrap();
            let want = ["<think>2+2=4</think><answer>4</answer><|im_end|>\n", "Hello.<|im_end|>\n"][row];
            assert_eq!(text, want, "row {row}");
            let pad = i64::from(p.tokenizer.special().image_pad);
            assert!(ids.iter().zip(lab).all(|(&t, &l)| t != pad || l == I));
            let n_pad = batch.attention_mask[row].iter().take_while(|&&x| x == 0).count();
            assert!(lab[..n_pad].iter().all(|&l| l == I));
        }
        let no_answer = p.encode(&[vec![Message::user("Hi")]], &[], RenderOptions::default()).unwrap();
        assert!(batch_labels(&no_answer, &m, TrainedEnd::ImEnd).is_err());
    }
}
