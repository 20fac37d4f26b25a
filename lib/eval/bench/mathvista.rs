//! MathVista testmini as benchmark items (papers_spec §1.7: both papers report it; 1,000 items).
//!
//! Layout (verified against lupantech/MathVista `data/testmini.json`, the copy in `shared/data/mathvista`):
//! `<root>/testmini.json`, an object pid -> problem with `question`, `image` (`images/<pid>.jpg`, relative
//! to `<root>`), `choices`, `unit`, `precision`, `answer`, `question_type`, `answer_type`, `metadata`. The
//! scoring fields are read by [`crate::eval::mathvista::Annotations`] (the same parser as
//! `r1lab score mathvista`); this adapter adds the prompt text and the image.
//!
//! Prompt: a record's `query` field when the file has one (the Hub's parquet export carries it). The
//! GitHub `testmini.json` has none; then the prompt is built the way MathVista's zero-shot query builder
//! does it: a hint that depends on the answer type, `Question: ...` (with `(Unit: ...)`), and for
//! multiple choice `Choices:` with `(A) ...` lines. The hint wording here is r1lab's own rendering of
//! that rule (UNVERIFIED against `build_query.py` character for character).
//!
//! Categories: question_type, answer_type and the metadata fields (language, source, category, task,
//! context, grade, skills); Vision-R1 Tab.1's GEO / ARI/ALG / GPS / MWP columns are read from `skills` and
//! `task` ([`super::report`]). The multiple-choice answer becomes the letter of the matching choice.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;

use super::{AnswerType, BenchItem, Benchmark, MULTI_SEP, image_path, letter, natural_key, read_json, value_text};
use crate::eval::mathvista::Annotations;

/// Loads `<root>/testmini.json`.
pub fn load(root: &Path) -> Result<Vec<BenchItem>> {
    let b = Benchmark::MathVista;
    let path = root.join("testmini.json");
    let raw = read_json(b, &path)?;
    let annotations = Annotations::load(&path).with_context(|| format!("{b}: reading the problems"))?;
    let Value::Object(records) = raw else { bail!("{b}: {} must be an object pid -> problem", path.display()) };
    let mut pids: Vec<&String> = records.keys().collect();
    pids.sort_by_key(|p| natural_key(p));
    let mut items = Vec::with_capacity(pids.len());
    for pid in pids {
        let rec = records[pid].as_object().ok_or_else(|| anyhow!("{}: pid {pid}: not an object", path.display()))?;
        let problem = &annotations.problems[pid];
        let image = rec
            .get("image")
            .and_then(Value::as_str)
            .ok_or_else(|| anyhow!("{}: pid {pid}: missing field `image`", path.display()))?;
        let choices = problem.choices.clone().unwrap_or_default();
        let answer_text = value_text(&problem.answer)
            .ok_or_else(|| anyhow!("{}: pid {pid}: field `answer` is not text", path.display()))?;
        let multi = problem.question_type == "multi_choice";
        let (answer, answer_type) = if multi {
            let i = choices.iter().position(|c| *c == answer_text).ok_or_else(|| {
                anyhow!("{}: pid {pid}: the answer {answer_text:?} is none of the choices", path.display())
            })?;
            (letter(i)?.to_string(), AnswerType::MultipleChoice)
        } else {
            let t = match problem.answer_type.as_str() {
                "integer" => AnswerType::Integer,
                "float" => AnswerType::Float,
                "list" => AnswerType::List,
                _ => AnswerType::FreeForm,
            };
            (answer_text, t)
        };
        let question = match rec.get("query").and_then(Value::as_str) {
            Some(q) => q.to_string(),
            None => build_query(rec.get("question").and_then(Value::as_str).unwrap_or_default(), rec, &choices)?,
        };
        let m = &problem.metadata;
        let mut categories = BTreeMap::new();
        categories.insert("question_type".into(), problem.question_type.clone());
        categories.insert("answer_type".into(), problem.answer_type.clone());
        for (k, v) in [
            ("language", &m.language),
            ("source", &m.source),
            ("category", &m.category),
            ("task", &m.task),
            ("context", &m.context),
            ("grade", &m.grade),
        ] {
            if let Some(v) = v {
                categories.insert(k.to_string(), v.clone());
            }
        }
        if !m.skills.is_empty() {
            categories.insert("skills".into(), m.skills.join(&MULTI_SEP.to_string()));
        }
        items.push(BenchItem {
            benchmark: b,
            id: pid.clone(),
            question,
            images: vec![image_path(b, root, image, pid)?],
            choices,
            answer,
            answer_type,
            categories,
            group: None,
            precision: problem.precision.as_f64().filter(|p| *p >= 0.0 && *p < 64.0).map(|p| p as u32),
        });
    }
    Ok(items)
}

/// The zero-shot prompt for a record without `query` (see the module header).
fn build_query(question: &str, rec: &serde_json::Map<String, Value>, choices: &[String]) -> Result<String> {
    let qtype = rec.get("question_type").and_then(Value::as_str).unwrap_or_default();
    let atype = rec.get("answer_type").and_then(Value::as_str).unwrap_or_default();
    let precision = rec.get("precision").and_then(Value::as_u64);
    let hint = match (qtype, atype, precision) {
        ("multi_choice", _, _) => {
            "Please answer the question and provide the correct option letter, e.g., A, B, C, D, at the end."
                .to_string()
        }
        (_, "integer", _) => {
            "Please answer the question requiring an integer answer and provide the final value, e.g., 1, 2, 3, at the end."
                .to_string()
        }
        (_, "float", Some(1)) => "Please answer the question requiring a floating-point number with one decimal place \
             and provide the final value, e.g., 1.2, 1.3, 1.4, at the end."
            .to_string(),
        (_, "float", Some(p)) => format!(
            "Please answer the question requiring a floating-point number with {p} decimal places and provide the \
             final value at the end."
        ),
        (_, "list", _) => "Please answer the question requiring a Python list as an answer and provide the final \
             list, e.g., [1, 2, 3], [1.2, 1.3, 1.4], at the end."
            .to_string(),
        _ => "Please answer the question and provide the final answer at the end.".to_string(),
    };
    let mut q = format!("Hint: {hint}\nQuestion: {question}");
    if let Some(unit) = rec.get("unit").and_then(Value::as_str).filter(|u| !u.is_empty()) {
        q.push_str(&format!(" (Unit: {unit})"));
    }
    if !choices.is_empty() {
        q.push_str("\nChoices:");
        for (i, c) in choices.iter().enumerate() {
            q.push_str(&format!("\n({}) {c}", letter(i)?));
        }
    }
    Ok(q)
}
