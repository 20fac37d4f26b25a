//! ReVisual-R1's data curation (papers_spec §2.2; paper §3.2) against an OpenAI-compatible endpoint:
//! 1. **Pass-rate difficulty**: each item is asked `k` times in one request (`n = k`, `solve.txt`, temperature
//!    `temperature`, a per-item seed); an answer is the last `\boxed{}` of a response, else the "final answer is
//!    X" of its last sentence, graded against the ground truth with `rl::grader::grade_answer`; the pass rate is
//!    correct / k. Stored per item in `results.jsonl` (resumable).
//! 2. **Band**: items with `min_pass ≤ pass rate ≤ max_pass` are kept (the paper prunes too-easy and too-hard items
//!    with Qwen2.5-VL-7B; its criterion is unreleased, a pass-rate band is the usual reading).
//! 3. **Balanced sampling** by a key ([`BalanceKey`]): the topic (the first match of a regex on the item id, the
//!    synthetic ids' family by default), the difficulty bin (`floor((1 - pass) · bins)`, capped at `bins - 1`), or
//!    both. Each key's items are shuffled with a seeded ChaCha8 stream and taken round-robin over the keys in sorted
//!    order until `total` items are selected (or all are), so every key contributes equally until it runs out.
//!
//! Deviations: the paper's 10-level difficulty rating by Qwen2.5-VL-32B and its NV-Embed-v2 + HDBSCAN topic
//! clusters are replaced by the pass-rate bin and an id regex (neither model nor thresholds were released).
//! Outputs: `curated.parquet` (EasyR1, the selected items in selection order), `curation_stats.json`.
use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use regex::Regex;
use serde::{Deserialize, Serialize};

use super::prompts::PromptSet;
use super::{item_seed, question_and_images};
use crate::data::bridging::filter::stated_answer;
use crate::data::easyr1::{RlRecord, write_parquet};
use crate::endpoint::{Endpoint, JobStore, run_resumable};
use crate::io::write_atomic;
use crate::rl::grader::{grade_answer, last_boxed};
use crate::serve::api::{ChatMessage, ChatRequest};

/// What items are balanced over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum BalanceKey {
    Topic,
    Difficulty,
    TopicDifficulty,
}

/// One curation run.
#[derive(Debug, Clone)]
pub struct CurateConfig {
    pub input: PathBuf,
    pub out: PathBuf,
    pub prompts: PathBuf,
    pub version: String,
    pub endpoint: crate::endpoint::EndpointConfig,
    pub concurrency: usize,
    /// Samples per item.
    pub k: usize,
    pub temperature: f64,
    pub max_tokens: usize,
    pub seed: u64,
    pub min_pass: f64,
    pub max_pass: f64,
    pub key: BalanceKey,
    /// Topic = capture group 1 (else the whole match) of this regex on the id; no match: `other`.
    pub topic_regex: String,
    pub bins: usize,
    /// Items to select; `None`: every item in the band, interleaved by key.
    pub total: Option<usize>,
    pub limit: Option<usize>,
}

/// The stored result of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRecord {
    pub k: usize,
    pub correct: usize,
    pub pass_rate: f64,
    pub answers: Vec<String>,
}

/// Counts of one key.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KeyCounts {
    pub in_band: usize,
    pub selected: usize,
}

/// What `curation_stats.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CurateReport {
    pub items: usize,
    pub scored: usize,
    pub too_easy: usize,
    pub too_hard: usize,
    pub in_band: usize,
    pub selected: usize,
    /// Items per pass-rate value `correct/k`, as `"c/k"`.
    pub pass_rate_histogram: BTreeMap<String, usize>,
    pub per_key: BTreeMap<String, KeyCounts>,
    pub prompts_sha256: BTreeMap<String, String>,
    pub failed: Vec<(String, String)>,
    pub skipped_on_resume: usize,
}

/// The answer a response gives (see the module header); empty when none.
pub fn response_answer(text: &str) -> String {
    last_boxed(text).or_else(|| stated_answer(text)).unwrap_or_default().to_string()
}

/// The difficulty bin of a pass rate: 0 = easiest.
pub fn difficulty_bin(pass_rate: f64, bins: usize) -> usize {
    (((1.0 - pass_rate) * bins as f64).floor() as usize).min(bins.saturating_sub(1))
}

/// The topic of an id under `re`.
pub fn topic(re: &Regex, id: &str) -> String {
    re.captures(id)
        .map(|c| c.get(1).or_else(|| c.get(0)).map_or("", |m| m.as_str()).to_string())
        .unwrap_or_else(|| "other".into())
}

/// Round-robin over `groups` (sorted by key), each already shuffled, until `total` are taken.
pub fn balanced<T: Clone>(groups: &BTreeMap<String, Vec<T>>, total: Option<usize>) -> Vec<(String, T)> {
    let want = total.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    let mut round = 0;
    while out.len() < want {
        let mut any = false;
        for (k, items) in groups {
            if let Some(t) = items.get(round) {
                any = true;
                if out.len() < want {
                    out.push((k.clone(), t.clone()));
                }
            }
        }
        if !any {
            break;
        }
        round += 1;
    }
    out
}

fn score(cfg: &CurateConfig, p: &PromptSet, ep: &Endpoint, r: &RlRecord) -> Result<PassRecord> {
    let (question, images) = question_and_images(r)?;
    let prompt = p.get("solve")?.render(&[("question", &question)])?;
    let req = ChatRequest {
        messages: vec![ChatMessage::user_with_images(&prompt, &images)],
        n: Some(cfg.k),
        max_tokens: Some(cfg.max_tokens),
        temperature: Some(cfg.temperature),
        seed: Some(item_seed(cfg.seed, &r.id)),
        ..Default::default()
    };
    let texts = ep.chat(&req)?.texts();
    ensure!(texts.len() == cfg.k, "asked for {} samples, the endpoint returned {}", cfg.k, texts.len());
    let answers: Vec<String> = texts.iter().map(|t| response_answer(t)).collect();
    let correct = answers.iter().filter(|a| !a.is_empty() && grade_answer(a, &r.answer)).count();
    Ok(PassRecord { k: cfg.k, correct, pass_rate: correct as f64 / cfg.k as f64, answers })
}

/// Runs (or resumes) the curation and writes its outputs (see the module header).
pub fn run(cfg: &CurateConfig) -> Result<CurateReport> {
    ensure!(cfg.k > 0 && cfg.bins > 0, "--k and --bins must be at least 1");
    ensure!(
        (0.0..=1.0).contains(&cfg.min_pass) && cfg.min_pass <= cfg.max_pass && cfg.max_pass <= 1.0,
        "the pass-rate band must satisfy 0 ≤ --min-pass ≤ --max-pass ≤ 1"
    );
    let re = Regex::new(&cfg.topic_regex).with_context(|| format!("--topic-regex `{}`", cfg.topic_regex))?;
    let prompts = PromptSet::load(&cfg.prompts, "curation", &cfg.version, &["solve"])?;
    let (items, store) = super::open_job(&cfg.input, cfg.limit, &cfg.out, &prompts)?;
    let ep = Endpoint::new(cfg.endpoint.clone());
    let progress = run_resumable(&items, |r| r.id.clone(), &store, cfg.concurrency, |r| score(cfg, &prompts, &ep, r))?;
    let stored: BTreeMap<String, PassRecord> = JobStore::read(store.path())?.into_iter().collect();
    let (mut too_easy, mut too_hard, mut scored) = (0, 0, 0);
    let mut hist = BTreeMap::new();
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, r) in items.iter().enumerate() {
        let Some(p) = stored.get(&r.id) else { continue };
        scored += 1;
        *hist.entry(format!("{}/{}", p.correct, p.k)).or_insert(0) += 1;
        if p.pass_rate > cfg.max_pass {
            too_easy += 1;
            continue;
        }
        if p.pass_rate < cfg.min_pass {
            too_hard += 1;
            continue;
        }
        let d = format!("d{}", difficulty_bin(p.pass_rate, cfg.bins));
        let key = match cfg.key {
            BalanceKey::Topic => topic(&re, &r.id),
            BalanceKey::Difficulty => d,
            BalanceKey::TopicDifficulty => format!("{}/{d}", topic(&re, &r.id)),
        };
        groups.entry(key).or_default().push(i);
    }
    let mut per_key: BTreeMap<String, KeyCounts> = BTreeMap::new();
    for (k, v) in groups.iter_mut() {
        let mut rng = ChaCha8Rng::seed_from_u64(item_seed(cfg.seed, k));
        v.shuffle(&mut rng);
        per_key.entry(k.clone()).or_default().in_band = v.len();
    }
    let chosen = balanced(&groups, cfg.total);
    for (k, _) in &chosen {
        per_key.get_mut(k).expect("key of a group").selected += 1;
    }
    let selected: Vec<RlRecord> = chosen.iter().map(|(_, i)| items[*i].clone()).collect();
    write_parquet(&cfg.out.join("curated.parquet"), &selected)?;
    let report = CurateReport {
        items: items.len(),
        scored,
        too_easy,
        too_hard,
        in_band: groups.values().map(Vec::len).sum(),
        selected: selected.len(),
        pass_rate_histogram: hist,
        per_key,
        prompts_sha256: prompts.hashes(),
        failed: progress.failed,
        skipped_on_resume: progress.skipped,
    };
    write_atomic(&cfg.out.join("curation_stats.json"), &serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_bins_topics_and_balance() {
        assert_eq!(response_answer("so \\boxed{12} and then \\boxed{13}"), "13");
        assert_eq!(response_answer("Thus the final answer is B."), "B");
        assert_eq!(response_answer("no idea"), "");
        assert_eq!((difficulty_bin(1.0, 4), difficulty_bin(0.0, 4), difficulty_bin(0.5, 4)), (0, 3, 2));
        let re = Regex::new("^([a-z]+)-").unwrap();
        assert_eq!(topic(&re, "bars-l1-s0-3"), "bars");
        assert_eq!(topic(&re, "X1"), "other");
        let mut g = BTreeMap::new();
        g.insert("a".to_string(), vec![1, 2, 3, 4]);
        g.insert("b".to_string(), vec![10]);
        g.insert("c".to_string(), vec![20, 21]);
        let keys = |v: Vec<(String, i32)>| v.into_iter().map(|(_, x)| x).collect::<Vec<_>>();
        assert_eq!(keys(balanced(&g, Some(5))), vec![1, 10, 20, 2, 21]);
        assert_eq!(keys(balanced(&g, None)), vec![1, 10, 20, 2, 21, 3, 4]);
        assert_eq!(keys(balanced(&g, Some(2))), vec![1, 10]);
    }
}
