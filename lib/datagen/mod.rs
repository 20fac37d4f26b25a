//! The data pipelines that call a model endpoint (issue 9 items 3–4), over EasyR1 parquet inputs
//! (`data::easyr1`: `id`, `images`, `problem` with `<image>` placeholders, `answer`):
//!
//! - [`bridge`]: Vision-R1's modality bridging with real models (papers_spec §1.2): Pseudo-CoT, description,
//!   text-only reasoning, filtering, LLaMA-Factory sharegpt + EasyR1 outputs.
//! - [`curate`]: ReVisual-R1's curation (papers_spec §2.2): pass-rate difficulty from k samples, a pass-rate
//!   band, balanced sampling by topic / difficulty.
//! - [`prompts`]: the versioned template files under `prompts/`.
//! - [`cli`]: `r1lab data bridge-endpoint` and `r1lab data curate`.
//!
//! Both pipelines store one record per finished item in `{out}/results.jsonl` (`endpoint::JobStore`) and
//! derive every output from that file, so a killed run resumes where it stopped and the outputs are the same
//! as an uninterrupted run's (given a deterministic endpoint: requests carry per-item seeds).
pub mod bridge;
pub mod cli;
pub mod curate;
pub mod prompts;

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::data::easyr1::{RlRecord, read_parquet};
use crate::endpoint::JobStore;
use prompts::PromptSet;

/// The question of a record without its `<image>` placeholders, and its images as `data:` URIs (PNG/JPEG bytes
/// inline) or paths.
pub fn question_and_images(r: &RlRecord) -> Result<(String, Vec<String>)> {
    let question = r.problem.replace("<image>", "").trim().to_string();
    let images = r
        .images
        .iter()
        .enumerate()
        .map(|(i, img)| match (&img.bytes, &img.path) {
            (Some(b), _) => {
                let mime = if b.starts_with(&[0xff, 0xd8]) { "jpeg" } else { "png" };
                Ok(format!("data:image/{mime};base64,{}", base64::engine::general_purpose::STANDARD.encode(b)))
            }
            (None, Some(p)) => Ok(p.clone()),
            (None, None) => anyhow::bail!("image {i} of item `{}` has neither bytes nor a path", r.id),
        })
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("reading the images of item `{}`", r.id))?;
    Ok((question, images))
}

/// The request seed of an item: independent of the order items are processed in.
pub fn item_seed(seed: u64, id: &str) -> u64 {
    let h = Sha256::digest(format!("{seed}\t{id}").as_bytes());
    // Below 2^53 so that JSON clients that parse numbers as doubles keep it exact.
    u64::from_le_bytes(h[..8].try_into().expect("8 bytes")) >> 11
}

/// The start every endpoint pipeline shares: the first `limit` records of `input`, the output folder with the prompt
/// hashes pinned (a resumed run with changed templates is refused), and the per-item store `results.jsonl`.
pub fn open_job(
    input: &Path,
    limit: Option<usize>,
    out: &Path,
    prompts: &PromptSet,
) -> Result<(Vec<RlRecord>, JobStore)> {
    let mut items = read_parquet(input)?;
    if let Some(n) = limit {
        items.truncate(n);
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    prompts.pin(out)?;
    let store = JobStore::open(&out.join("results.jsonl"))?;
    Ok((items, store))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::easyr1::ImageRef;

    #[test]
    fn questions_lose_placeholders_and_images_become_uris() {
        let r = RlRecord {
            id: "a".into(),
            images: vec![
                ImageRef { bytes: Some(vec![0x89, b'P']), path: None },
                ImageRef { bytes: None, path: Some("/x.png".into()) },
            ],
            problem: "<image><image>How many?".into(),
            answer: "3".into(),
        };
        let (q, imgs) = question_and_images(&r).unwrap();
        assert_eq!(q, "How many?");
        assert!(imgs[0].starts_with("data:image/png;base64,"));
        assert_eq!(imgs[1], "/x.png");
        assert_ne!(item_seed(0, "a"), item_seed(0, "b"));
        assert_eq!(item_seed(1, "a"), item_seed(1, "a"));
        assert!(item_seed(7, "zz") < 1 << 53);
    }
}
