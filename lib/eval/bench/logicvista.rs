//! LogicVista (Hub lscpku/LogicVista, split `test`; GitHub Yijia-Xiao/LogicVista; ReVisual-R1 Tab.2).
//!
//! Layout: `<root>/data/test-*.parquet` with columns `id`, `question` (the options are written inside the
//! text), `answer` (one or more option letters: `C`, `A, C`), `reasoning`, `image` (an image struct
//! {bytes, path}), `skill`, `broad_capability`, `specific_capability`, `imagesource`, `sourcelink`,
//! `liscenced` (column names verified against public code that documents the Hub schema; the shard name
//! follows the Hub's parquet convention, UNVERIFIED: the stored Hub listings and public code searched (docs
//! and code corpora, "lscpku/LogicVista" file names) name the dataset but not its files). The embedded image
//! of each row is written once to `<root>/r1lab_images/test/<id>.<png|jpg>` (crash-safe) and that file is
//! the item's image.
//!
//! Answers with several letters are multiple choice over a set: the reference becomes the sorted letters
//! without separators (`AC`), and [`super::score`] compares the set of letters a response names.
//! Categories: skill (multi-valued when a list), broad_capability, specific_capability.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Result, anyhow, bail};

use super::{
    AnswerType, BenchItem, Benchmark, MULTI_SEP, embedded_images, list_column, materialize_image, parquet_shards,
    read_parquet, text_column,
};

pub fn load(root: &Path) -> Result<Vec<BenchItem>> {
    let b = Benchmark::LogicVista;
    let mut items = vec![];
    for shard in parquet_shards(b, &root.join("data"), "test-")? {
        let df = read_parquet(b, &shard)?;
        let ids = text_column(&df, "id", &shard)?;
        let questions = text_column(&df, "question", &shard)?;
        let answers = text_column(&df, "answer", &shard)?;
        let images = embedded_images(&df, "image", &shard)?
            .ok_or_else(|| anyhow!("{}: missing column `image`", shard.display()))?;
        let mut cats: Vec<(&str, Vec<Vec<String>>)> = vec![];
        for key in ["skill", "broad_capability", "specific_capability"] {
            if df.column(key).is_ok() {
                cats.push((key, list_column(&df, key, &shard)?));
            }
        }
        for r in 0..df.height() {
            let need = |c: &[Option<String>], n: &str| {
                c[r].clone().ok_or_else(|| anyhow!("{}: row {r}: `{n}` is null", shard.display()))
            };
            let id = need(&ids, "id")?;
            let raw = need(&answers, "answer")?;
            let Some(answer) = letter_set(&raw) else {
                bail!("{}: item {id}: answer {raw:?} is not option letters", shard.display())
            };
            let Some(bytes) = images[r].as_ref() else {
                bail!("{b}: item {id}: missing image (the `image` bytes are null in {})", shard.display())
            };
            let mut categories = BTreeMap::new();
            for (key, col) in &cats {
                if !col[r].is_empty() {
                    categories.insert(key.to_string(), col[r].join(&MULTI_SEP.to_string()));
                }
            }
            items.push(BenchItem {
                benchmark: b,
                images: vec![materialize_image(b, root, "test", &id, bytes)?],
                id,
                question: need(&questions, "question")?,
                choices: vec![],
                answer,
                answer_type: AnswerType::MultipleChoice,
                categories,
                group: None,
                precision: None,
            });
        }
    }
    Ok(items)
}

/// `"A, C"` / `"CA"` / `"(A)"` -> `"AC"`; `None` when there is anything but option letters and separators.
pub fn letter_set(answer: &str) -> Option<String> {
    let mut letters: Vec<char> = vec![];
    for c in answer.chars() {
        if c.is_ascii_uppercase() {
            letters.push(c);
        } else if !(c.is_whitespace() || matches!(c, ',' | '(' | ')' | '.' | ';' | '&')) {
            return None;
        }
    }
    letters.sort_unstable();
    letters.dedup();
    (!letters.is_empty()).then(|| letters.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn letter_sets() {
        assert_eq!(letter_set("A, C").as_deref(), Some("AC"));
        assert_eq!(letter_set("CA").as_deref(), Some("AC"));
        assert_eq!(letter_set("(B)").as_deref(), Some("B"));
        assert_eq!(letter_set("12"), None);
        assert_eq!(letter_set(""), None);
    }
}
