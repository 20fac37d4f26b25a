//! MathVerse testmini (AI4Math/MathVerse; papers_spec §1.7 and §2.10, pitfall 1): Vision-R1 reports the
//! all-versions set (VLMEvalKit's MathVerse_MINI), ReVisual-R1 the Vision-Only version.
//!
//! Layout: `<root>/testmini.json`, a list of records with `sample_index`, `problem_index`,
//! `problem_version` (Text Dominant, Text Lite, Vision Intensive, Vision Dominant, Vision Only), `question`,
//! `image`, `answer`, `question_type` (`multi-choice` / `free-form`), `metadata` {`split`, `source`,
//! `subject`, `subfield`}, `query_wo`, `query_cot`, `question_for_eval` (field names verified against
//! public code that reads AI4Math/MathVerse). Images: `<root>/images/<image>` (the Hub repository ships
//! them as `images.zip`; UNVERIFIED whether `image` already carries the `images/` prefix, so a name that
//! exists relative to `<root>` is taken as it is). The Text-Only version lives in a separate file
//! (`testmini_text_only.json`) and is not part of either split.
//!
//! Prompt: `query_cot` (the chain-of-thought prompt; ReVisual-R1's repo eval uses it, §2.10). Options
//! of multiple-choice items are inside the question text (`choices` stays empty); their answer is a letter.
//! Group: `problem_index` (the five versions of one problem).
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, bail};
use serde_json::Value;

use super::{AnswerType, BenchItem, Benchmark, image_path, json_records, opt_text, text_field};

/// Which MathVerse items to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    /// Every record of testmini.json (Vision-R1).
    AllVersions,
    /// `problem_version == "Vision Only"` (ReVisual-R1).
    VisionOnly,
}

/// The version name of the Vision-Only split.
pub const VISION_ONLY: &str = "Vision Only";

pub fn load(root: &Path, split: Split) -> Result<Vec<BenchItem>> {
    let b = match split {
        Split::AllVersions => Benchmark::MathVerse,
        Split::VisionOnly => Benchmark::MathVerseVisionOnly,
    };
    let path = root.join("testmini.json");
    let mut items = vec![];
    for (i, rec) in json_records(b, &path)?.iter().enumerate() {
        let at = format!("record {i}");
        let version = text_field(rec, "problem_version", &path, &at)?;
        if split == Split::VisionOnly && version != VISION_ONLY {
            continue;
        }
        let id = text_field(rec, "sample_index", &path, &at)?;
        let image = text_field(rec, "image", &path, &at)?;
        let image = if root.join(&image).is_file() {
            root.join(&image)
        } else {
            image_path(b, &root.join("images"), &image, &id)?
        };
        let qtype = text_field(rec, "question_type", &path, &at)?;
        let answer_type = match qtype.as_str() {
            "multi-choice" => AnswerType::MultipleChoice,
            "free-form" => AnswerType::FreeForm,
            other => bail!("{}: {at}: unknown question_type {other:?}", path.display()),
        };
        let mut categories = BTreeMap::new();
        categories.insert("problem_version".to_string(), version);
        categories.insert("question_type".to_string(), qtype);
        if let Some(Value::Object(meta)) = rec.get("metadata") {
            for key in ["subject", "subfield", "source"] {
                if let Some(v) = opt_text(meta, key) {
                    categories.insert(key.to_string(), v);
                }
            }
        }
        items.push(BenchItem {
            benchmark: b,
            id,
            question: text_field(rec, "query_cot", &path, &at)?,
            images: vec![image],
            choices: vec![],
            answer: text_field(rec, "answer", &path, &at)?.trim().to_string(),
            answer_type,
            categories,
            group: opt_text(rec, "problem_index"),
            precision: None,
        });
    }
    Ok(items)
}
