//! MathVerse testmini (AI4Math/MathVerse; papers_spec §1.7 and §2.10, pitfall 1): Vision-R1 reports the
//! all-versions set (VLMEvalKit's MathVerse_MINI), ReVisual-R1 the Vision-Only version.
//!
//! Layout (the Hub repository AI4Math/MathVerse): `<root>/testmini.json`, a list of records with
//! `sample_index`, `problem_index`, `problem_version` (Text Dominant, Text Lite, Vision Intensive, Vision
//! Dominant, Vision Only), `question`, `image`, `answer`, `question_type` (`multi-choice` / `free-form`),
//! `metadata` {`split`, `source`, `subject`, `subfield`}, `query_wo`, `query_cot`, `question_for_eval`
//! (field names verified against public code that reads AI4Math/MathVerse and the official record template
//! ZrrSkywalker/MathVerse `output_templates/output_testmini.json`; `question_for_eval` was added to the Hub
//! files in April 2024, commit "Add question_for_eval"). `image` is relative to the images folder with no
//! `images/` prefix, e.g. `images_version_1-4/image_685.png` (verified against that template). The Hub
//! ships the images as `images.zip`; the official README unzips it inside the data folder, and whether the
//! archive's entries carry a top-level `images/` folder is UNVERIFIED, so `<root>/<image>` is used when it
//! exists, else `<root>/images/<image>`. The Text-Only version lives in a separate file
//! (`testmini_text_only.json`) and is not part of either split. The Hub's `testmini.parquet` (images
//! embedded) is not read.
//!
//! Prompt: `query_cot` (the chain-of-thought prompt; ReVisual-R1's repo eval uses it, §2.10). Options
//! of multiple-choice items are inside the question text (`choices` stays empty); their answer is a letter.
//! Group: `problem_index` (the five versions of one problem). Scoring: [`super::judged`] (the official
//! two-stage evaluation: extract, then match against the answer with `question_for_eval` as context).
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

/// `sample_index -> question_for_eval` of every record of `<root>/testmini.json` (the question text the
/// official stage-2 judge sees; a record without it gives its `question`, as the official
/// `score_answer_s2.py` uses).
pub fn eval_questions(root: &Path) -> Result<BTreeMap<String, String>> {
    let path = root.join("testmini.json");
    let mut out = BTreeMap::new();
    for (i, rec) in json_records(Benchmark::MathVerse, &path)?.iter().enumerate() {
        let at = format!("record {i}");
        let id = text_field(rec, "sample_index", &path, &at)?;
        let q = match opt_text(rec, "question_for_eval") {
            Some(q) => q,
            None => text_field(rec, "question", &path, &at)?,
        };
        out.insert(id, q);
    }
    Ok(out)
}
