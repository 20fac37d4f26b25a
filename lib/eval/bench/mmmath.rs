//! MM-Math (GitHub kge-sun/MM-Math, Hub THU-KEG/MM_Math; Vision-R1 Tab.1, papers_spec §1.7).
//!
//! Record fields (verified against the official README's data format): `question`, `file_name` (the image
//! in the image folder), `solution` (LaTeX; the final answer is in `\boxed{}`), `year` (grade level),
//! `difficult`, `knowledge` (text, or an object of levels such as `level_1`, `level_2`). Layout of the Hub
//! repository (verified against public code that downloads it): `<root>/MM_Math/MM_Math.jsonl` and the
//! images in `MM_Math/MM_Math.zip`, whose entries sit under `MM_Math/`; unzipped into `<root>`
//! (`unzip MM_Math/MM_Math.zip -d <root>`) they land at `<root>/MM_Math/<file_name>`.
//!
//! The published records have no answer field: the reference answer is the content of the last balanced
//! `\boxed{}` of `solution` (the outcome evaluation compares `\boxed{}` answers); a solution without one
//! is an error naming the item. Item id: the line number (1-based) unless a record has `id`.
//! Categories: year, difficult, knowledge (an object gives `knowledge.<level>` keys).
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, anyhow};

use serde_json::Value;

use super::{AnswerType, BenchItem, Benchmark, image_path, opt_text, read_jsonl, text_field, value_text};
use crate::rl::grader::last_boxed;

pub fn load(root: &Path) -> Result<Vec<BenchItem>> {
    let b = Benchmark::MmMath;
    let dir = root.join("MM_Math");
    let path = dir.join("MM_Math.jsonl");
    let mut items = vec![];
    for (i, rec) in read_jsonl(b, &path)?.iter().enumerate() {
        let at = format!("line {}", i + 1);
        let id = opt_text(rec, "id").unwrap_or_else(|| (i + 1).to_string());
        let solution = text_field(rec, "solution", &path, &at)?;
        let answer = last_boxed(&solution)
            .ok_or_else(|| anyhow!("{}: {at}: the solution has no \\boxed{{}} answer", path.display()))?
            .to_string();
        let image = text_field(rec, "file_name", &path, &at)?;
        let mut categories = BTreeMap::new();
        for key in ["year", "difficult", "knowledge"] {
            match rec.get(key) {
                Some(Value::Object(levels)) => {
                    for (level, v) in levels {
                        if let Some(v) = value_text(v) {
                            categories.insert(format!("{key}.{level}"), v);
                        }
                    }
                }
                Some(v) => {
                    if let Some(v) = value_text(v) {
                        categories.insert(key.to_string(), v);
                    }
                }
                None => {}
            }
        }
        items.push(BenchItem {
            benchmark: b,
            images: vec![image_path(b, &dir, &image, &id)?],
            id,
            question: text_field(rec, "question", &path, &at)?,
            choices: vec![],
            answer,
            answer_type: AnswerType::FreeForm,
            categories,
            group: None,
            precision: None,
        });
    }
    Ok(items)
}
