//! DynaMath (DynaMath/DynaMath_Sample): 501 seed questions, each rendered as 10 concrete variants.
//! Vision-R1 v4 reports the average case, ReVisual-R1 the worst case (a seed counts only when every one
//! of its variants is right; papers_spec §1.8, §2.10, pitfall 1; scoring in [`super::score`]).
//!
//! Layout: one split per variant, `sample_variant1` ... `sample_variant10`. The Hub repository stores split
//! k as `<root>/data/sample<k>-*.parquet` (its main branch holds `data/sample1-00000-of-00001.parquet` ...
//! `data/sample10-00000-of-00010.parquet`, one file per variant; verified against the Hub file listing);
//! also read, in this order, when that is absent: `data/sample_variant<k>-*.parquet` (the names
//! `datasets`' `push_to_hub` gives the splits in a copy) and the Hub's parquet-converter form
//! `<root>/default/sample_variant<k>/*.parquet` (verified against the listing of its `refs/convert/parquet`
//! branch). Columns `id` (the seed id, the same in every variant), `question`, `image`, `decoded_image` (an
//! image struct {bytes, path}), `ground_truth`, `answer_type`, `subject`, `knowledge_level` (column and split
//! names verified against public code that loads the Hub dataset).
//!
//! Images: when the `image` column names a file that exists under `<root>` it is used; otherwise the
//! embedded `decoded_image` bytes are written once (crash-safe) to
//! `<root>/r1lab_images/sample_variant<k>/<id>.<png|jpg>` and that file is used. A row with neither is an
//! error naming it.
//!
//! Item id: `<id>/v<k>`; group: the seed id. Options of multiple-choice items are inside the question
//! text; `answer_type` `multiple choice` -> [`AnswerType::MultipleChoice`] (ground truth = a letter),
//! `float` -> Float, anything else -> free form. Categories: subject, knowledge_level, variant.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Result, anyhow, bail};
use polars::prelude::DataFrame;

use super::{
    AnswerType, BenchItem, Benchmark, embedded_images, materialize_image, parquet_shards, read_parquet, text_column,
};

/// Number of variant splits.
pub const VARIANTS: usize = 10;

pub fn load(root: &Path) -> Result<Vec<BenchItem>> {
    let b = Benchmark::DynaMath;
    let mut items = vec![];
    for k in 1..=VARIANTS {
        for shard in variant_shards(root, k)? {
            let df = read_parquet(b, &shard)?;
            items.extend(rows(root, k, &shard, &df)?);
        }
    }
    Ok(items)
}

/// The parquet files of variant `k` (see the module header); the error names the Hub's form.
fn variant_shards(root: &Path, k: usize) -> Result<Vec<PathBuf>> {
    let b = Benchmark::DynaMath;
    let data = root.join("data");
    parquet_shards(b, &data, &format!("sample{k}-")).or_else(|hub| {
        parquet_shards(b, &data, &format!("sample_variant{k}-"))
            .or_else(|_| parquet_shards(b, &root.join("default").join(format!("sample_variant{k}")), ""))
            .map_err(|_| hub)
    })
}

fn rows(root: &Path, k: usize, path: &Path, df: &DataFrame) -> Result<Vec<BenchItem>> {
    let b = Benchmark::DynaMath;
    let ids = text_column(df, "id", path)?;
    let questions = text_column(df, "question", path)?;
    let truths = text_column(df, "ground_truth", path)?;
    let types = text_column(df, "answer_type", path)?;
    let subjects = text_column(df, "subject", path)?;
    let levels = text_column(df, "knowledge_level", path)?;
    let image_names = text_column(df, "image", path).ok();
    let embedded = embedded_images(df, "decoded_image", path)?;
    let mut out = Vec::with_capacity(df.height());
    for r in 0..df.height() {
        let need = |col: &[Option<String>], name: &str| {
            col[r].clone().ok_or_else(|| anyhow!("{}: row {r}: `{name}` is null", path.display()))
        };
        let seed = need(&ids, "id")?;
        let id = format!("{seed}/v{k}");
        let named = image_names.as_ref().and_then(|c| c[r].as_ref()).map(|n| root.join(n)).filter(|p| p.is_file());
        let image = match named {
            Some(p) => p,
            None => match embedded.as_ref().and_then(|e| e[r].as_ref()) {
                Some(bytes) => materialize_image(b, root, &format!("sample_variant{k}"), &seed, bytes)?,
                None => bail!(
                    "{b}: item {id}: missing image: neither the `image` file under {} nor `decoded_image` bytes in {}",
                    root.display(),
                    path.display()
                ),
            },
        };
        let atype = need(&types, "answer_type")?;
        let answer_type = match atype.as_str() {
            "multiple choice" => AnswerType::MultipleChoice,
            "float" => AnswerType::Float,
            _ => AnswerType::FreeForm,
        };
        let mut categories = BTreeMap::new();
        categories.insert("variant".to_string(), k.to_string());
        if let Some(s) = &subjects[r] {
            categories.insert("subject".to_string(), s.clone());
        }
        if let Some(s) = &levels[r] {
            categories.insert("knowledge_level".to_string(), s.clone());
        }
        out.push(BenchItem {
            benchmark: b,
            id,
            question: need(&questions, "question")?,
            images: vec![image],
            choices: vec![],
            answer: need(&truths, "ground_truth")?.trim().to_string(),
            answer_type,
            categories,
            group: Some(seed),
            precision: None,
        });
    }
    Ok(out)
}
