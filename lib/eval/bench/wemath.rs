//! We-Math testmini (We-Math/We-Math; ReVisual-R1 Tab.2 reports the strict score, papers_spec §2.10).
//!
//! Layout: `<root>/testmini.json`, a list of records with `ID` (the multi-step problem, e.g. `3steps_165`),
//! `split`, `knowledge concept`, `question`, `option` (`"A. 200.96;B. 3215.36;...;E. No correct answer"`),
//! `answer` (a letter), `image_path` (`3steps/image/165-3.png`, relative to `<root>`), `key` (which
//! question of the problem: `2steps_1`, `2steps_2`, `2steps_multi`, `3steps_1` ... `3steps_multi`),
//! `question number`, `knowledge concept description`. Field names and the image path form are
//! verified against the official README's record template (the GitHub repository keeps the images under
//! `data/<n>steps/image/`, so `<root>` = that `data` folder).
//!
//! Without `testmini.json`, the Hub form is read: the `testmini` split as parquet shards
//! `<root>/data/testmini*.parquet` with the same columns and `image_path` holding the embedded image
//! (public code loading `We-Math/We-Math` split `testmini` receives `image_path` as an image; the Hub
//! repository holds one shard, `data/testmini-00000-of-00001-adbfe22dcd3558e6.parquet`, verified against its
//! file listing). Each image is written once to `<root>/r1lab_images/testmini/<ID>_<key>.<ext>`.
//!
//! Item id: `<ID>/<key>`; group: `ID` (the four-dimensional metrics of [`super::score`] join a problem's
//! one-step questions with its multi-step question by it). Question: the `question`, then
//! `Options: <option>` as the file writes it. Categories: `key` kind (`steps` = 2steps/3steps, `step` =
//! 1/2/3/multi) and the knowledge concept.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};

use super::{
    AnswerType, BenchItem, Benchmark, embedded_images, image_path, json_records, materialize_image, parquet_shards,
    read_parquet, text_column, text_field,
};

/// The fields of one We-Math record that the item needs.
struct Row {
    problem: String,
    key: String,
    concept: String,
    question: String,
    option: String,
    answer: String,
    image: PathBuf,
}

/// Loads `<root>/testmini.json` when it exists, else the Hub's parquet shards (see the module header).
pub fn load(root: &Path) -> Result<Vec<BenchItem>> {
    let json = root.join("testmini.json");
    let rows =
        if json.is_file() || !root.join("data").is_dir() { json_rows(root, &json)? } else { parquet_rows(root)? };
    rows.into_iter().map(item).collect()
}

fn json_rows(root: &Path, path: &Path) -> Result<Vec<Row>> {
    let b = Benchmark::WeMath;
    let mut rows = vec![];
    for (i, rec) in json_records(b, path)?.iter().enumerate() {
        let at = format!("record {i}");
        let field = |k: &str| text_field(rec, k, path, &at);
        let (problem, key) = (field("ID")?, field("key")?);
        let image = image_path(b, root, &field("image_path")?, &format!("{problem}/{key}"))?;
        rows.push(Row {
            concept: field("knowledge concept")?,
            question: field("question")?,
            option: field("option")?,
            answer: field("answer")?,
            problem,
            key,
            image,
        });
    }
    Ok(rows)
}

fn parquet_rows(root: &Path) -> Result<Vec<Row>> {
    let b = Benchmark::WeMath;
    let mut rows = vec![];
    for shard in parquet_shards(b, &root.join("data"), "testmini")? {
        let df = read_parquet(b, &shard)?;
        let col = |k: &str| text_column(&df, k, &shard);
        let (ids, keys, concepts) = (col("ID")?, col("key")?, col("knowledge concept")?);
        let (questions, options, answers) = (col("question")?, col("option")?, col("answer")?);
        let images = embedded_images(&df, "image_path", &shard)?
            .ok_or_else(|| anyhow!("{}: missing column `image_path`", shard.display()))?;
        for r in 0..df.height() {
            let need = |c: &[Option<String>], n: &str| {
                c[r].clone().ok_or_else(|| anyhow!("{}: row {r}: `{n}` is null", shard.display()))
            };
            let (problem, key) = (need(&ids, "ID")?, need(&keys, "key")?);
            let Some(bytes) = images[r].as_ref() else {
                bail!("{b}: item {problem}/{key}: missing image (null `image_path` bytes in {})", shard.display())
            };
            rows.push(Row {
                image: materialize_image(b, root, "testmini", &format!("{problem}_{key}"), bytes)?,
                concept: need(&concepts, "knowledge concept")?,
                question: need(&questions, "question")?,
                option: need(&options, "option")?,
                answer: need(&answers, "answer")?,
                problem,
                key,
            });
        }
    }
    Ok(rows)
}

fn item(row: Row) -> Result<BenchItem> {
    let Some((steps, step)) = row.key.split_once('_') else {
        bail!("wemath: item {}: `key` {:?} is not <n>steps_<k> or <n>steps_multi", row.problem, row.key)
    };
    let mut categories = BTreeMap::new();
    categories.insert("steps".to_string(), steps.to_string());
    categories.insert("step".to_string(), step.to_string());
    categories.insert("knowledge_concept".to_string(), row.concept);
    Ok(BenchItem {
        benchmark: Benchmark::WeMath,
        id: format!("{}/{}", row.problem, row.key),
        question: format!("{}\nOptions: {}", row.question, row.option),
        images: vec![row.image],
        choices: parse_options(&row.option),
        answer: row.answer.trim().to_string(),
        answer_type: AnswerType::MultipleChoice,
        categories,
        group: Some(row.problem),
        precision: None,
    })
}

/// Splits We-Math's `option` string at `;` and drops each part's `X.` prefix.
pub fn parse_options(option: &str) -> Vec<String> {
    option
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| match s.split_once('.') {
            Some((l, rest)) if l.trim().len() == 1 && l.trim().chars().all(|c| c.is_ascii_uppercase()) => {
                rest.trim().to_string()
            }
            _ => s.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_as_published() {
        assert_eq!(
            parse_options("A. 200.96;B. 3215.36;C. 6280;D. 32; E. No correct answer"),
            vec!["200.96", "3215.36", "6280", "32", "No correct answer"]
        );
    }
}
