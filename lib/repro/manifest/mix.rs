//! Mixed training data (`data.source = { kind = "mixed", ... }`): ReVisual-R1 Tab.3 "CS+Mixed-RL" (papers_spec
//! §2.9), one RL stage on the multimodal RL set and the text RL set together instead of MRL followed by TRL.
//!
//! ```toml
//! [data.source]
//! kind = "mixed"
//! mix = "concat_shuffle"
//! [[data.source.members]]
//! split = "train"
//! source = { kind = "hub", repo = "...", revision = "<40-hex>", files = { "train.parquet" = "<sha256>" } }
//! [[data.source.members]]
//! split = "train"
//! source = { kind = "local", path = "...", files = { ... } }
//! ```
//!
//! - Each member is an ordinary data source with its own split (hub / local, hashes as for `data.source`); the
//!   manifest hash, `r1lab lock` (every member pinned), `--require-locked` and the run record's inputs (one
//!   `data/<i>/<file>` entry per member) cover every member. `data.split` is not used to pick files of a mixed
//!   source (each member names its own) but must still be non-empty, like every `split`.
//! - [`MixRule::ConcatShuffle`] (the only rule): the members' rows are concatenated in member order and the
//!   result is permuted once by [`mix_order`], a Fisher–Yates over `seed::rng(seeds.base, DataOrder, 0, 0, 1)`:
//!   a tuple the epoch orders never draw from (theirs all have sample 0), so the mix is a pure function of the
//!   stage seed and the members' row counts and replays. A prompt's uid is its position in the mixed order;
//!   `data.filters.max_examples` keeps the first N of that order (so a cut set still holds every member in
//!   proportion to its size), and the RL epoch orders then shuffle the mixed set as they shuffle any data set.
//!   The proportion of each member is therefore its share of the rows (natural proportions).
//! - UNVERIFIED: the paper gives no mixing ratio or procedure for "Mixed-RL" (papers_spec §2.9); concatenation
//!   at natural proportions is the simplest reading and what verl/EasyR1 do when given several parquet files.
//!   Weighted sampling was considered and left out: it would need a ratio the paper does not state.
//!
//! Refused at load, naming the key: fewer than two members, a member that is itself mixed (list every leaf
//! source in one `members` list instead), a parent-run member, a member listed twice, an empty member split, a
//! mixed `model.source` or eval suite source, and a mixed source on an SFT stage (SFT reads one sharegpt JSON
//! file; this build does not merge those).
use anyhow::{Result, bail, ensure};
use serde::{Deserialize, Serialize};

use super::source::Source;
use crate::repro::seed::{self, SeedDomain};

/// How the members of a mixed source are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MixRule {
    /// All rows of every member, permuted once by the stage seed ([`mix_order`]).
    ConcatShuffle,
}

/// One member of a mixed data source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixMember {
    pub source: Source,
    /// The split (file stem) of this member's source.
    pub split: String,
}

/// Checks the members of the mixed source named `key` (see the module doc).
pub fn validate_members(key: &str, members: &[MixMember], locked: bool) -> Result<()> {
    ensure!(
        members.len() >= 2,
        "{key} mixes {} member(s); a mix needs at least two (for one data set, write it as {key} directly)",
        members.len()
    );
    for (i, m) in members.iter().enumerate() {
        let k = format!("{key}.members[{i}]");
        match &m.source {
            Source::Mixed { .. } => bail!(
                "{k}.source is itself mixed; nested mixes are not supported: list every data set in one \
                 {key}.members list"
            ),
            Source::ParentRun { .. } => {
                bail!("{k}.source is a parent run, which is a model; a mix member must be a hub or local data set")
            }
            Source::Hub { .. } | Source::Local { .. } => m.source.validate(&format!("{k}.source"), locked)?,
        }
        ensure!(!m.split.trim().is_empty(), "{k}.split is empty; name the member's split (e.g. \"train\")");
        if let Some(j) = members[..i].iter().position(|o| o == m) {
            bail!("{k} repeats {key}.members[{j}]; list each data set once");
        }
    }
    Ok(())
}

/// The mixed order of members with `lens` rows each under `rule`: `(member, row)` pairs, one per row of every
/// member (see the module doc for the seed).
pub fn mix_order(rule: MixRule, base_seed: u64, lens: &[usize]) -> Vec<(usize, usize)> {
    match rule {
        MixRule::ConcatShuffle => {
            let all: Vec<(usize, usize)> =
                lens.iter().enumerate().flat_map(|(m, &n)| (0..n).map(move |r| (m, r))).collect();
            let mut rng = seed::rng(base_seed, SeedDomain::DataOrder, 0, 0, 1);
            seed::shuffled(&mut rng, all.len()).into_iter().map(|i| all[i]).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_order_is_deterministic_complete_and_seed_dependent() {
        let lens = [5, 3, 4];
        let a = mix_order(MixRule::ConcatShuffle, 7, &lens);
        assert_eq!(a, mix_order(MixRule::ConcatShuffle, 7, &lens), "replays");
        let mut sorted = a.clone();
        sorted.sort();
        let every: Vec<(usize, usize)> =
            lens.iter().enumerate().flat_map(|(m, &n)| (0..n).map(move |r| (m, r))).collect();
        assert_eq!(sorted, every, "every row of every member exactly once");
        assert_ne!(a, every, "shuffled");
        assert_ne!(a, mix_order(MixRule::ConcatShuffle, 8, &lens), "another seed, another order");
        // Not the epoch order of the concatenation (a different seed tuple).
        let epoch0: Vec<(usize, usize)> = seed::epoch_order(7, 0, 12).into_iter().map(|i| every[i]).collect();
        assert_ne!(a, epoch0);
        // Both members reach the first positions: the first half holds rows of at least two members.
        let head: std::collections::BTreeSet<usize> = a[..6].iter().map(|&(m, _)| m).collect();
        assert!(head.len() >= 2, "{a:?}");
    }

    #[test]
    fn member_refusals_name_the_key() {
        let local =
            |p: &str| MixMember { source: Source::Local { path: p.into(), files: [].into() }, split: "train".into() };
        let e = validate_members("data.source", &[local("a")], false).unwrap_err().to_string();
        assert!(e.contains("at least two"), "{e}");
        let e = validate_members("data.source", &[], false).unwrap_err().to_string();
        assert!(e.contains("0 member"), "{e}");
        let nested = MixMember {
            source: Source::Mixed { mix: MixRule::ConcatShuffle, members: vec![local("a"), local("b")] },
            split: "train".into(),
        };
        let e = validate_members("data.source", &[local("c"), nested], false).unwrap_err().to_string();
        assert!(e.contains("data.source.members[1]") && e.contains("nested"), "{e}");
        let parent = MixMember {
            source: Source::ParentRun { stage: "a/b".into(), step: None, sha256: None },
            split: "train".into(),
        };
        let e = validate_members("data.source", &[local("c"), parent], false).unwrap_err().to_string();
        assert!(e.contains("parent run"), "{e}");
        let e = validate_members("data.source", &[local("a"), local("a")], false).unwrap_err().to_string();
        assert!(e.contains("repeats"), "{e}");
        let mut blank = local("b");
        blank.split = " ".into();
        let e = validate_members("data.source", &[local("a"), blank], false).unwrap_err().to_string();
        assert!(e.contains("members[1].split"), "{e}");
        let e = validate_members("data.source", &[local("a"), local("b")], true).unwrap_err().to_string();
        assert!(e.contains("data.source.members[0].source") && e.contains("without file hashes"), "{e}");
        validate_members("data.source", &[local("a"), local("b")], false).unwrap();
    }
}
