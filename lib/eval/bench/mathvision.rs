//! MATH-Vision test, 3,040 items (MathLLMs/MathVision, GitHub mathllm/MATH-V; ReVisual-R1 Tab.2,
//! papers_spec §2.10).
//!
//! Layout (the GitHub repository mathllm/MATH-V; the path verified against public code that reads it):
//! `<root>/data/test.jsonl`, one record per line with `id`, `question`, `options` (a list, empty for
//! free-form items), `image` (`images/<id>.jpg`), `answer` (a letter for multiple choice), `solution`,
//! `level`, `subject`. Public scripts resolve `image` against `<root>/data` or against `<root>` (the
//! images archive unpacked either way): `<root>/data/<image>` is used when it exists, else `<root>/<image>`. The Hub repository
//! also publishes `data/test-*.parquet` with the images embedded (`decoded_image`); that form is not
//! read here (UNVERIFIED that both carry identical fields; convert with the Hub's `images/` folder).
//!
//! Question: the `question` text, then for multiple choice `Choices:` and `(A) ...` lines (presets may wrap
//! it, e.g. ReVisual-R1's repo prompt, [`super::preset`]). Categories: subject, level.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, anyhow};
use serde_json::Value;

use super::{AnswerType, BenchItem, Benchmark, image_path, letter, read_jsonl, text_field, value_text};

pub fn load(root: &Path) -> Result<Vec<BenchItem>> {
    let b = Benchmark::MathVision;
    let path = root.join("data/test.jsonl");
    let mut items = vec![];
    for (i, rec) in read_jsonl(b, &path)?.iter().enumerate() {
        let at = format!("line {}", i + 1);
        let id = text_field(rec, "id", &path, &at)?;
        let image = text_field(rec, "image", &path, &at)?;
        let options: Vec<String> = match rec.get("options") {
            Some(Value::Array(v)) => v
                .iter()
                .map(|o| value_text(o).ok_or_else(|| anyhow!("{}: {at}: an option is not text", path.display())))
                .collect::<Result<_>>()?,
            Some(Value::Null) | None => vec![],
            Some(other) => return Err(anyhow!("{}: {at}: `options` must be a list, found {other}", path.display())),
        };
        let mut question = text_field(rec, "question", &path, &at)?;
        question.push_str(&choices_block(&options)?);
        let mut categories = BTreeMap::new();
        for key in ["subject", "level"] {
            if let Some(v) = rec.get(key).and_then(value_text) {
                categories.insert(key.to_string(), v);
            }
        }
        items.push(BenchItem {
            benchmark: b,
            images: vec![match root.join("data").join(&image) {
                p if p.is_file() => p,
                _ => image_path(b, root, &image, &id)?,
            }],
            id,
            question,
            answer_type: if options.is_empty() { AnswerType::FreeForm } else { AnswerType::MultipleChoice },
            choices: options,
            answer: text_field(rec, "answer", &path, &at)?.trim().to_string(),
            categories,
            group: None,
            precision: None,
        });
    }
    Ok(items)
}

/// The `Choices:` block appended to a multiple-choice question (empty for free-form items).
fn choices_block(options: &[String]) -> Result<String> {
    let mut s = String::new();
    if !options.is_empty() {
        s.push_str("\nChoices:");
        for (k, o) in options.iter().enumerate() {
            s.push_str(&format!("\n({}) {o}", letter(k)?));
        }
    }
    Ok(s)
}

/// The published `question` of an item this adapter loaded (its question without the `Choices:` block).
pub fn raw_question(item: &BenchItem) -> &str {
    let block = choices_block(&item.choices).unwrap_or_default();
    item.question.strip_suffix(block.as_str()).unwrap_or(&item.question)
}
