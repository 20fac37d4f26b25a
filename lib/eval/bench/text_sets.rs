//! ReVisual-R1's text benchmarks (Tab.2; papers_spec §2.10, §2.11): AIME24, AIME25, MATH500, GPQA-Diamond.
//!
//! Layouts (Hub dataset repositories):
//! - AIME24, HuggingFaceH4/aime_2024: `<root>/data/train-*.parquet`, columns `id`, `problem`, `solution`,
//!   `answer`, `url`, `year` (30 rows). Column names as published on the dataset card; the shard name
//!   follows the Hub's parquet convention (UNVERIFIED: the stored listings of HuggingFaceH4/aime_2024 show
//!   only its `refs/convert/parquet` branch; copies of it elsewhere hold `data/train-00000-of-00001.parquet`).
//! - AIME25, opencompass/AIME2025: `<root>/aime2025-I.jsonl` and `<root>/aime2025-II.jsonl`, records
//!   `question`, `answer` (15 each; file and field names verified against public code that reads the
//!   repository). Item id `I-<n>` / `II-<n>` (1-based line).
//! - MATH500, HuggingFaceH4/MATH-500: `<root>/test.jsonl`, records `problem`, `solution`, `answer`,
//!   `subject`, `level`, `unique_id` (the id).
//! - GPQA, Idavidrein/gpqa: `<root>/gpqa_diamond.csv` (RFC 4180 CSV, quoted fields may span lines), columns
//!   `Question`, `Correct Answer`, `Incorrect Answer 1..3`, `Record ID`, `High-level domain`, `Subdomain`.
//!
//! GPQA has no option order: the four answers are shuffled per item, deterministically. Row `r`'s order is
//! a Fisher–Yates shuffle (from the last position down, position `i` swapped with a uniform `j <= i`) of
//! [correct, incorrect 1, incorrect 2, incorrect 3], drawn from
//! `repro::seed::rng(GPQA_SHUFFLE_SEED, SeedDomain::Eval, 0, r, 0)` with each `j` taken from one
//! `next_u64` by rejection sampling (`x >= 2^64 mod (i+1)`, then `x mod (i+1)`), as
//! [`crate::repro::seed::epoch_order`] does. The question is followed by `(A) ...` to `(D) ...` lines; the
//! answer is the letter the correct answer landed on. The papers do not say how they ordered GPQA's
//! options; this is r1lab's choice.
//!
//! AIME and MATH500 answers are compared with the math grader; ReVisual-R1 reports AIME as average@k
//! ([`super::preset`], [`super::score`]).
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

use super::{
    AnswerType, BenchItem, Benchmark, letter, need_file, opt_text, parquet_shards, read_jsonl, read_parquet,
    text_column, text_field,
};
use crate::repro::seed::{self, SeedDomain};

/// The base seed of GPQA's option shuffle (see the module header).
pub const GPQA_SHUFFLE_SEED: u64 = 0;

fn text_item(b: Benchmark, id: String, question: String, answer: String, cats: BTreeMap<String, String>) -> BenchItem {
    let answer_type = if answer.parse::<i64>().is_ok() { AnswerType::Integer } else { AnswerType::FreeForm };
    BenchItem {
        benchmark: b,
        id,
        question,
        images: vec![],
        choices: vec![],
        answer,
        answer_type,
        categories: cats,
        group: None,
        precision: None,
    }
}

pub fn load_aime24(root: &Path) -> Result<Vec<BenchItem>> {
    let b = Benchmark::Aime24;
    let mut items = vec![];
    for shard in parquet_shards(b, &root.join("data"), "train-")? {
        let df = read_parquet(b, &shard)?;
        let ids = text_column(&df, "id", &shard)?;
        let problems = text_column(&df, "problem", &shard)?;
        let answers = text_column(&df, "answer", &shard)?;
        for r in 0..df.height() {
            let need = |c: &[Option<String>], n: &str| {
                c[r].clone().ok_or_else(|| anyhow!("{}: row {r}: `{n}` is null", shard.display()))
            };
            items.push(text_item(
                b,
                need(&ids, "id")?,
                need(&problems, "problem")?,
                need(&answers, "answer")?.trim().to_string(),
                BTreeMap::new(),
            ));
        }
    }
    Ok(items)
}

pub fn load_aime25(root: &Path) -> Result<Vec<BenchItem>> {
    let b = Benchmark::Aime25;
    let mut items = vec![];
    for part in ["I", "II"] {
        let path = root.join(format!("aime2025-{part}.jsonl"));
        for (i, rec) in read_jsonl(b, &path)?.iter().enumerate() {
            let at = format!("line {}", i + 1);
            let mut cats = BTreeMap::new();
            cats.insert("exam".to_string(), format!("AIME 2025 {part}"));
            items.push(text_item(
                b,
                format!("{part}-{}", i + 1),
                text_field(rec, "question", &path, &at)?,
                text_field(rec, "answer", &path, &at)?.trim().to_string(),
                cats,
            ));
        }
    }
    Ok(items)
}

pub fn load_math500(root: &Path) -> Result<Vec<BenchItem>> {
    let b = Benchmark::Math500;
    let path = root.join("test.jsonl");
    let mut items = vec![];
    for (i, rec) in read_jsonl(b, &path)?.iter().enumerate() {
        let at = format!("line {}", i + 1);
        let mut cats = BTreeMap::new();
        for key in ["subject", "level"] {
            if let Some(v) = opt_text(rec, key) {
                cats.insert(key.to_string(), v);
            }
        }
        items.push(text_item(
            b,
            text_field(rec, "unique_id", &path, &at)?,
            text_field(rec, "problem", &path, &at)?,
            text_field(rec, "answer", &path, &at)?.trim().to_string(),
            cats,
        ));
    }
    Ok(items)
}

pub fn load_gpqa(root: &Path) -> Result<Vec<BenchItem>> {
    let b = Benchmark::GpqaDiamond;
    let path = root.join("gpqa_diamond.csv");
    need_file(b, &path)?;
    let text = std::fs::read_to_string(&path).with_context(|| format!("{b}: reading {}", path.display()))?;
    let rows = parse_csv(&text).with_context(|| format!("{b}: {} is not valid CSV", path.display()))?;
    let Some((header, rows)) = rows.split_first() else { bail!("{b}: {} is empty", path.display()) };
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| anyhow!("{}: missing column `{name}`", path.display()))
    };
    let q = col("Question")?;
    let answers =
        [col("Correct Answer")?, col("Incorrect Answer 1")?, col("Incorrect Answer 2")?, col("Incorrect Answer 3")?];
    let id_col = col("Record ID")?;
    let domain = col("High-level domain").ok();
    let sub = col("Subdomain").ok();
    let mut items = vec![];
    for (r, row) in rows.iter().enumerate() {
        if row.len() == 1 && row[0].trim().is_empty() {
            continue;
        }
        let cell = |c: usize| {
            row.get(c)
                .map(|s| s.trim().to_string())
                .ok_or_else(|| anyhow!("{}: row {}: too few fields", path.display(), r + 2))
        };
        let order = gpqa_order(r as u64);
        let mut question = cell(q)?;
        let mut choices = vec![];
        let mut answer = String::new();
        for (pos, &src) in order.iter().enumerate() {
            let l = letter(pos)?;
            let text = cell(answers[src])?;
            question.push_str(&format!("\n({l}) {text}"));
            choices.push(text);
            if src == 0 {
                answer = l.to_string();
            }
        }
        let mut cats = BTreeMap::new();
        if let Some(c) = domain {
            cats.insert("domain".to_string(), cell(c)?);
        }
        if let Some(c) = sub {
            cats.insert("subdomain".to_string(), cell(c)?);
        }
        items.push(BenchItem {
            benchmark: b,
            id: cell(id_col)?,
            question,
            images: vec![],
            choices,
            answer,
            answer_type: AnswerType::MultipleChoice,
            categories: cats,
            group: None,
            precision: None,
        });
    }
    Ok(items)
}

/// Row `row`'s option order: position -> source answer (0 = the correct one); see the module header.
pub fn gpqa_order(row: u64) -> [usize; 4] {
    let order = seed::shuffled(&mut seed::rng(GPQA_SHUFFLE_SEED, SeedDomain::Eval, 0, row, 0), 4);
    [order[0], order[1], order[2], order[3]]
}

/// RFC 4180 CSV: `,` separates fields, `"` quotes a field (`""` inside is one quote), quoted fields may
/// hold commas and line breaks; CRLF or LF ends a record.
pub fn parse_csv(text: &str) -> Result<Vec<Vec<String>>> {
    let mut rows = vec![];
    let mut row = vec![];
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut any = false;
    while let Some(c) = chars.next() {
        any = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                any = false;
            }
            _ => field.push(c),
        }
    }
    if quoted {
        bail!("a quoted field is not closed");
    }
    if any {
        row.push(field);
        rows.push(row);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_commas_and_newlines() {
        let rows = parse_csv("a,b,c\r\n\"x, y\",\"he said \"\"hi\"\"\",\"two\nlines\"\n1,,3").unwrap();
        assert_eq!(rows, vec![vec!["a", "b", "c"], vec!["x, y", "he said \"hi\"", "two\nlines"], vec!["1", "", "3"]]);
        assert!(parse_csv("\"open").is_err());
    }

    #[test]
    fn gpqa_order_is_a_fixed_permutation() {
        for r in 0..50 {
            let o = gpqa_order(r);
            let mut s = o;
            s.sort_unstable();
            assert_eq!(s, [0, 1, 2, 3]);
            assert_eq!(o, gpqa_order(r));
        }
        // The correct answer lands on every letter across rows (not always A).
        let positions: std::collections::HashSet<usize> =
            (0..50).map(|r| gpqa_order(r).iter().position(|&s| s == 0).unwrap()).collect();
        assert_eq!(positions.len(), 4);
    }
}
