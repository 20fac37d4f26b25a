//! MATH-Vision test, 3,040 items (MathLLMs/MathVision, GitHub mathllm/MATH-V; ReVisual-R1 Tab.2,
//! papers_spec §2.10). Two published forms, read as they are:
//!
//! - JSON lines (the GitHub repository mathllm/MATH-V; the path verified against public code that reads
//!   it): `<root>/data/test.jsonl`, one record per line with `id`, `question`, `options` (a list, empty for
//!   free-form items), `image` (`images/<id>.jpg`), `answer` (a letter for multiple choice), `solution`,
//!   `level`, `subject`. Public scripts resolve `image` against `<root>/data` or against `<root>` (the images
//!   archive unpacked either way): `<root>/data/<image>` is used when it exists, else `<root>/<image>`.
//! - Hub parquet, read when `data/test.jsonl` is absent: `<root>/data/test-*.parquet` (the Hub repository
//!   holds `data/test-00000-of-00001-3532b8d3f1b4047a.parquet` and `data/testmini-...`, verified against the
//!   Hub file listing) with the same fields as columns (`options` a list of strings, `level` an integer)
//!   plus `decoded_image`, an image struct {bytes, path} (the feature list verified against the card of a
//!   dataset derived from it that keeps the schema: `id`, `question`, `options`, `image`, `decoded_image`,
//!   `answer`, `solution`, `level`, `subject`). The image is `<root>/<image>` or `<root>/data/<image>` when
//!   the Hub's `images.zip` was unpacked there, else the embedded bytes written once to
//!   `<root>/r1lab_images/test/<id>.<png|jpg>`.
//!
//! Question: the `question` text, then for multiple choice `Choices:` and `(A) ...` lines (presets may wrap
//! it, e.g. ReVisual-R1's repo prompt, [`super::preset`]). Categories: subject, level.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use serde_json::Value;

use super::{
    AnswerType, BenchItem, Benchmark, embedded_images, image_path, letter, list_column, materialize_image,
    parquet_shards, read_jsonl, read_parquet, text_column, text_field, value_text,
};

/// The fields of one MATH-Vision record that the item needs.
struct Row {
    id: String,
    question: String,
    options: Vec<String>,
    image: PathBuf,
    answer: String,
    categories: BTreeMap<String, String>,
}

/// Loads `<root>/data/test.jsonl` when it exists, else the Hub's parquet shards (see the module header).
pub fn load(root: &Path) -> Result<Vec<BenchItem>> {
    let jsonl = root.join("data/test.jsonl");
    let rows =
        if jsonl.is_file() || !root.join("data").is_dir() { jsonl_rows(root, &jsonl)? } else { parquet_rows(root)? };
    rows.into_iter().map(item).collect()
}

/// `<root>/data/<image>` when it exists, else `<root>/<image>` (an error names it when neither does).
fn named_image(root: &Path, image: &str, id: &str) -> Result<PathBuf> {
    match root.join("data").join(image) {
        p if p.is_file() => Ok(p),
        _ => image_path(Benchmark::MathVision, root, image, id),
    }
}

fn jsonl_rows(root: &Path, path: &Path) -> Result<Vec<Row>> {
    let mut rows = vec![];
    for (i, rec) in read_jsonl(Benchmark::MathVision, path)?.iter().enumerate() {
        let at = format!("line {}", i + 1);
        let id = text_field(rec, "id", path, &at)?;
        let image = text_field(rec, "image", path, &at)?;
        let options: Vec<String> = match rec.get("options") {
            Some(Value::Array(v)) => v
                .iter()
                .map(|o| value_text(o).ok_or_else(|| anyhow!("{}: {at}: an option is not text", path.display())))
                .collect::<Result<_>>()?,
            Some(Value::Null) | None => vec![],
            Some(other) => return Err(anyhow!("{}: {at}: `options` must be a list, found {other}", path.display())),
        };
        let mut categories = BTreeMap::new();
        for key in ["subject", "level"] {
            if let Some(v) = rec.get(key).and_then(value_text) {
                categories.insert(key.to_string(), v);
            }
        }
        rows.push(Row {
            image: named_image(root, &image, &id)?,
            question: text_field(rec, "question", path, &at)?,
            answer: text_field(rec, "answer", path, &at)?,
            id,
            options,
            categories,
        });
    }
    Ok(rows)
}

fn parquet_rows(root: &Path) -> Result<Vec<Row>> {
    let b = Benchmark::MathVision;
    let mut rows = vec![];
    for shard in parquet_shards(b, &root.join("data"), "test-")? {
        let df = read_parquet(b, &shard)?;
        let col = |k: &str| text_column(&df, k, &shard);
        let (ids, questions, answers) = (col("id")?, col("question")?, col("answer")?);
        let names = text_column(&df, "image", &shard).ok();
        let options = list_column(&df, "options", &shard)?;
        let embedded = embedded_images(&df, "decoded_image", &shard)?;
        let mut cats = vec![];
        for key in ["subject", "level"] {
            if df.column(key).is_ok() {
                cats.push((key, col(key)?));
            }
        }
        for r in 0..df.height() {
            let need = |c: &[Option<String>], n: &str| {
                c[r].clone().ok_or_else(|| anyhow!("{}: row {r}: `{n}` is null", shard.display()))
            };
            let id = need(&ids, "id")?;
            let name = names.as_ref().and_then(|c| c[r].clone());
            let on_disk = name.as_deref().and_then(|n| named_image(root, n, &id).ok());
            let image = match (on_disk, embedded.as_ref().and_then(|e| e[r].as_ref())) {
                (Some(p), _) => p,
                (None, Some(bytes)) => materialize_image(b, root, "test", &id, bytes)?,
                (None, None) => bail!(
                    "{b}: item {id}: missing image: neither the `image` file {} under {} nor `decoded_image` in {}",
                    name.unwrap_or_default(),
                    root.display(),
                    shard.display()
                ),
            };
            let mut categories = BTreeMap::new();
            for (key, c) in &cats {
                if let Some(v) = &c[r] {
                    categories.insert(key.to_string(), v.clone());
                }
            }
            rows.push(Row {
                question: need(&questions, "question")?,
                answer: need(&answers, "answer")?,
                options: options[r].clone(),
                image,
                id,
                categories,
            });
        }
    }
    Ok(rows)
}

fn item(row: Row) -> Result<BenchItem> {
    let question = format!("{}{}", row.question, choices_block(&row.options)?);
    Ok(BenchItem {
        benchmark: Benchmark::MathVision,
        id: row.id,
        question,
        images: vec![row.image],
        answer_type: if row.options.is_empty() { AnswerType::FreeForm } else { AnswerType::MultipleChoice },
        choices: row.options,
        answer: row.answer.trim().to_string(),
        categories: row.categories,
        group: None,
        precision: None,
    })
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
