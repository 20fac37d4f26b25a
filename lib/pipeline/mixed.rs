//! A stage's training data as files, for a single `data.source` or a mixed one
//! ([`crate::repro::manifest::mix`], ReVisual-R1 Tab.3 "CS+Mixed-RL"), and the mixed set as RL prompts.
//!
//! - [`data_files`]: a single source resolves as [`resolve::data_file`] does (input key `data/<file>`); a mixed
//!   source resolves every member with its own split, each member's files recorded under `data/<i>/<file>` so two
//!   members with the same file name (`train.parquet`) stay two inputs of the run record.
//! - [`load_mixed_prompts`]: every member's EasyR1 records become prompts, which are put in the mixed order of
//!   [`mix_order`] (seeded by `seeds.base`); a prompt's uid is its position in that order (so rollout seeds differ
//!   across members). Then `data.filters.max_examples` keeps the first N and prompts over the token limit are
//!   dropped and counted, as for a single file (`pipeline::grpo`).
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};

use super::grpo::PromptOptions;
use super::resolve::{self, Roots};
use crate::hub::Hub;
use crate::repro::manifest::mix::{MixRule, mix_order};
use crate::repro::manifest::{DataSpec, Source};
use crate::rl::rollout::RlPrompt;

/// The data files of `data` (one per member of a mixed source) with extension `ext`, and their input hashes.
pub fn data_files(
    data: &DataSpec,
    ext: &str,
    roots: &Roots,
    hub: &Hub,
) -> Result<(Vec<PathBuf>, BTreeMap<String, String>)> {
    match &data.source {
        Source::Mixed { members, .. } => {
            let (mut files, mut inputs) = (Vec::new(), BTreeMap::new());
            for (i, m) in members.iter().enumerate() {
                let r = resolve::data_file(&m.source, &m.split, ext, roots, hub, &format!("data/{i}"))
                    .with_context(|| format!("resolving data.source.members[{i}]"))?;
                files.push(r.path);
                inputs.extend(r.inputs);
            }
            Ok((files, inputs))
        }
        single => {
            let r = resolve::data_file(single, &data.split, ext, roots, hub, "data")?;
            Ok((vec![r.path], r.inputs))
        }
    }
}

/// The prompts of the member files `files` mixed by `rule` (see the module doc), with the number dropped for
/// length.
pub fn load_mixed_prompts(
    files: &[PathBuf],
    rule: MixRule,
    base_seed: u64,
    opts: &PromptOptions,
    max_prompt_tokens: usize,
    max_examples: Option<u64>,
) -> Result<(Vec<RlPrompt>, usize)> {
    let mut members: Vec<Vec<Option<RlPrompt>>> = Vec::with_capacity(files.len());
    for f in files {
        let (p, _) = super::grpo::load_prompts(f, opts, usize::MAX, None)
            .with_context(|| format!("reading mix member {}", f.display()))?;
        members.push(p.into_iter().map(Some).collect());
    }
    let lens: Vec<usize> = members.iter().map(Vec::len).collect();
    let order = mix_order(rule, base_seed, &lens);
    let limit = max_examples.map_or(order.len(), |m| (m as usize).min(order.len()));
    let mut out = Vec::with_capacity(limit);
    let mut dropped = 0;
    for (uid, &(m, row)) in order.iter().take(limit).enumerate() {
        let mut p = members[m][row].take().context("a mix row was used twice")?;
        p.uid = uid as u64;
        if p.input_ids.len() > max_prompt_tokens {
            dropped += 1;
        } else {
            out.push(p);
        }
    }
    ensure!(!out.is_empty(), "the mixed data has no prompt within {max_prompt_tokens} tokens");
    Ok((out, dropped))
}
