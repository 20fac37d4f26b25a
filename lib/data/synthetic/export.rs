//! Writes a synthetic split in every format the pipelines read, into one folder:
//!
//! | file | what |
//! |---|---|
//! | `{split}.parquet` | EasyR1 RL data, image inline (`images`/`problem`/`answer`/`id`) |
//! | `{split}_text.parquet` | the text-only twins in the same layout, no images |
//! | `{split}_sft.json`, `images/*.png` | LLaMA-Factory sharegpt SFT data with reference responses |
//! | `{split}_text_sft.json` | the text-only twins as sharegpt SFT data |
//! | `dataset_info.json` | LLaMA-Factory entries `{split}_sft` and `{split}_text_sft` |
//! | `{split}_problems.jsonl` | every problem with its trace (structured ground truth), one per line |
//!
//! Everything is a function of `(families, config, split, n)`: two exports are byte-identical.
use std::path::Path;

use anyhow::{Context, Result};

use super::{Config, Family, Problem, Split, generate_mix};
use crate::data::easyr1::{self, RlRecord};
use crate::data::sharegpt::{self, SftRecord};
use crate::io::write_atomic;

/// What [`export`] wrote.
#[derive(Debug, Clone)]
pub struct Exported {
    pub problems: Vec<Problem>,
    pub files: Vec<std::path::PathBuf>,
}

/// Generates `n` problems of `split` per family and writes them under `out` (see the module header).
pub fn export(out: &Path, families: &[Family], cfg: &Config, split: Split, n: usize) -> Result<Exported> {
    let problems = generate_mix(families, cfg, split, n)?;
    let mut files = Vec::new();
    let mm: Vec<RlRecord> = problems.iter().map(RlRecord::from_problem).collect();
    let text: Vec<RlRecord> = problems.iter().map(RlRecord::text_twin).collect();
    for (name, recs) in [(format!("{split}.parquet"), &mm), (format!("{split}_text.parquet"), &text)] {
        let path = out.join(name);
        easyr1::write_parquet(&path, recs)?;
        files.push(path);
    }
    let sft: Vec<SftRecord> = problems.iter().map(|p| SftRecord::from_problem(p, p.reference_response())).collect();
    files.push(sharegpt::write_dataset(out, &format!("{split}_sft"), &sft, &problems)?);
    let sft_text: Vec<SftRecord> = problems.iter().map(|p| SftRecord::text_twin(p, p.reference_response())).collect();
    files.push(sharegpt::write_dataset(out, &format!("{split}_text_sft"), &sft_text, &[])?);
    let mut lines = Vec::new();
    for p in &problems {
        serde_json::to_writer(&mut lines, p).with_context(|| format!("serialising problem {}", p.id))?;
        lines.push(b'\n');
    }
    let path = out.join(format!("{split}_problems.jsonl"));
    write_atomic(&path, &lines)?;
    files.push(path);
    files.push(out.join("dataset_info.json"));
    Ok(Exported { problems, files })
}
