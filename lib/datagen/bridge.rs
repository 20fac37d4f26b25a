//! Vision-R1's modality bridging with real models behind OpenAI-compatible endpoints (papers_spec §1.2; paper v4
//! §3.3.1, Fig. 2): per item (image, question, ground truth),
//! 1. the MLLM sees image + question + answer (`pseudo_cot.txt`) and writes a Pseudo-CoT (caption + reasoning);
//! 2. the MLLM sees image + question + Pseudo-CoT (`description.txt`, the paper's verbatim fragment) and writes a
//!    detailed description;
//! 3. the text-only reasoner sees description + question (`reasoning.txt`, Fig. 2's instruction) and reasons;
//! 4. the filter of the in-miniature pipeline (`data::bridging::filter`) keeps outputs whose final answer grades
//!    equal to the ground truth, whose reasoning is long enough and states that answer last (rule-based
//!    consistency), and rewrites "the description" wording to the image;
//! 5. kept samples are written as LLaMA-Factory sharegpt (`bridge.json` + `images/` + `dataset_info.json`, the
//!    user turn is the original problem with its `<image>` placeholders and no format instruction, issue #12)
//!    and as EasyR1 parquet (`bridge_easyr1.parquet`: the kept items' problem / answer / images, for RL on the
//!    same items).
//!
//! Steps 1–3 of an item run in sequence and its three responses are appended to `results.jsonl` together
//! (`endpoint::run_resumable`); steps 4–5 are recomputed from that file at the end of every run, so they reflect
//! every stored item. `bridge_stats.json` holds the filter counts (`data::bridging::stats::Counts`: kept, drops
//! by reason, reflection words, replacements, lengths), token usage, prompt hashes and the failed items;
//! `samples.jsonl` one verdict per item.
//!
//! Reading the reasoner's answer ([`parse_reasoning`]): the reasoning is the text inside `<think>...</think>`
//! when the output has one (DeepSeek-R1), else the whole output; the answer is the last `\boxed{}` after the
//! think block, else in the reasoning, else the "final answer is X" of the last sentence. `\boxed{X}` in the
//! reasoning is unwrapped to `X` before the consistency rule reads it. Exact rules of the paper: unreleased.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::prompts::PromptSet;
use super::{item_seed, question_and_images};
use crate::data::bridging::filter::{DropReason, Target, filter, stated_answer};
use crate::data::bridging::reasoner::RawOutput;
use crate::data::bridging::stats::Counts;
use crate::data::easyr1::{RlRecord, write_parquet};
use crate::data::sharegpt::{SftRecord, write_json};
use crate::endpoint::{Endpoint, JobStore, Progress, run_resumable};
use crate::io::write_atomic;
use crate::rl::grader::last_boxed;
use crate::serve::api::{ChatMessage, ChatRequest, Usage};

/// The templates of `prompts/bridging/{version}/`.
pub const TEMPLATES: [&str; 3] = ["pseudo_cot", "description", "reasoning"];

/// One bridging run.
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    /// EasyR1 parquet with `id`, `images`, `problem`, `answer`.
    pub input: PathBuf,
    pub out: PathBuf,
    /// The `prompts/` folder and the version to use.
    pub prompts: PathBuf,
    pub version: String,
    /// Steps 1–2 (sees images).
    pub mllm: crate::endpoint::EndpointConfig,
    /// Step 3 (text only).
    pub reasoner: crate::endpoint::EndpointConfig,
    pub concurrency: usize,
    /// Max tokens of steps 1, 2, 3.
    pub max_tokens: [usize; 3],
    pub temperature: f64,
    pub seed: u64,
    /// Only the first `limit` items.
    pub limit: Option<usize>,
}

/// The stored responses of one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeItem {
    pub pseudo_cot: String,
    pub description: String,
    pub reasoning_output: String,
    /// Usage of steps 1, 2, 3.
    pub usage: [Usage; 3],
}

/// What `bridge_stats.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeReport {
    pub items: usize,
    pub stored: usize,
    pub counts: Counts,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub prompts_sha256: BTreeMap<String, String>,
    /// `(id, error)` of items that failed in this run; a rerun retries them.
    pub failed: Vec<(String, String)>,
    pub skipped_on_resume: usize,
}

/// One item's verdict in `samples.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub id: String,
    pub answer: String,
    pub ground_truth: String,
    pub kept: bool,
    pub drop_reason: Option<DropReason>,
    pub replacements: usize,
}

/// The reasoning and final answer of a reasoner output (see the module header).
pub fn parse_reasoning(text: &str) -> RawOutput {
    let (reasoning, tail) = match text.find("</think>") {
        Some(end) => {
            let head = &text[..end];
            let start = head.find("<think>").map_or(0, |s| s + "<think>".len());
            (&head[start..], &text[end + "</think>".len()..])
        }
        None => (text, text),
    };
    let reasoning = unbox(reasoning.trim());
    let answer = last_boxed(tail)
        .map(str::to_string)
        .or_else(|| stated_answer(&reasoning).map(str::to_string))
        .unwrap_or_default();
    RawOutput { reasoning, answer, slipped: false, caught: false, guessed: false }
}

/// `\boxed{X}` → `X` for every box with balanced braces.
fn unbox(text: &str) -> String {
    const OPEN: &str = "\\boxed{";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(OPEN) {
        out.push_str(&rest[..i]);
        let body = &rest[i + OPEN.len()..];
        let mut depth = 0i64;
        let close = body.char_indices().find(|&(_, c)| {
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            depth == -1
        });
        match close {
            Some((j, _)) => {
                out.push_str(&body[..j]);
                rest = &body[j + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn ask(ep: &Endpoint, msg: ChatMessage, max_tokens: usize, temperature: f64, seed: u64) -> Result<(String, Usage)> {
    let req = ChatRequest {
        messages: vec![msg],
        max_tokens: Some(max_tokens),
        temperature: Some(temperature),
        seed: Some(seed),
        ..Default::default()
    };
    let r = ep.chat(&req)?;
    let text = r.texts().into_iter().next().context("the endpoint returned no choice")?;
    Ok((text, r.usage))
}

/// Steps 1–3 for one item.
fn run_item(
    cfg: &BridgeConfig,
    p: &PromptSet,
    mllm: &Endpoint,
    reasoner: &Endpoint,
    r: &RlRecord,
) -> Result<BridgeItem> {
    let (question, images) = question_and_images(r)?;
    let seed = item_seed(cfg.seed, &r.id);
    let t = cfg.temperature;
    let prompt = p.get("pseudo_cot")?.render(&[("question", &question), ("answer", &r.answer)])?;
    let (pseudo_cot, u1) = ask(mllm, ChatMessage::user_with_images(&prompt, &images), cfg.max_tokens[0], t, seed)
        .context("step 1 (Pseudo-CoT)")?;
    let prompt = p.get("description")?.render(&[("question", &question), ("thinking_process", &pseudo_cot)])?;
    let (description, u2) = ask(mllm, ChatMessage::user_with_images(&prompt, &images), cfg.max_tokens[1], t, seed)
        .context("step 2 (description)")?;
    let prompt = p.get("reasoning")?.render(&[("description", &description), ("question", &question)])?;
    let (reasoning_output, u3) = ask(reasoner, ChatMessage::text("user", &prompt), cfg.max_tokens[2], t, seed)
        .context("step 3 (text-only reasoning)")?;
    Ok(BridgeItem { pseudo_cot, description, reasoning_output, usage: [u1, u2, u3] })
}

fn file_safe(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '_' }).collect()
}

/// Runs (or resumes) the pipeline and writes every output (see the module header).
pub fn run(cfg: &BridgeConfig) -> Result<BridgeReport> {
    let prompts = PromptSet::load(&cfg.prompts, "bridging", &cfg.version, &TEMPLATES)?;
    let (items, store) = super::open_job(&cfg.input, cfg.limit, &cfg.out, &prompts)?;
    let (mllm, reasoner) = (Endpoint::new(cfg.mllm.clone()), Endpoint::new(cfg.reasoner.clone()));
    let progress = run_resumable(
        &items,
        |r| r.id.clone(),
        &store,
        cfg.concurrency,
        |r| run_item(cfg, &prompts, &mllm, &reasoner, r),
    )?;
    finish(cfg, &items, &prompts, progress, store.path())
}

/// Steps 4–5 over every stored item.
fn finish(
    cfg: &BridgeConfig,
    items: &[RlRecord],
    prompts: &PromptSet,
    progress: Progress,
    store: &Path,
) -> Result<BridgeReport> {
    let stored: BTreeMap<String, BridgeItem> = JobStore::read(store)?.into_iter().collect();
    let mut counts = Counts::default();
    let (mut sft, mut rl, mut verdicts) = (vec![], vec![], vec![]);
    let (mut prompt_tokens, mut completion_tokens) = (0, 0);
    for r in items {
        let Some(b) = stored.get(&r.id) else { continue };
        prompt_tokens += b.usage.iter().map(|u| u.prompt_tokens).sum::<usize>();
        completion_tokens += b.usage.iter().map(|u| u.completion_tokens).sum::<usize>();
        let raw = parse_reasoning(&b.reasoning_output);
        let outcome = filter(&raw, &r.answer, Target::Image);
        counts.add(&raw, &outcome);
        verdicts.push(Verdict {
            id: r.id.clone(),
            answer: raw.answer.clone(),
            ground_truth: r.answer.clone(),
            kept: outcome.is_ok(),
            drop_reason: outcome.as_ref().err().copied(),
            replacements: outcome.as_ref().map_or(0, |k| k.replacements),
        });
        let Ok(kept) = outcome else { continue };
        let mut paths = Vec::with_capacity(r.images.len());
        for (k, img) in r.images.iter().enumerate() {
            match (&img.bytes, &img.path) {
                (Some(bytes), _) => {
                    let ext = if bytes.starts_with(&[0xff, 0xd8]) { "jpg" } else { "png" };
                    let rel = format!("images/{}_{k}.{ext}", file_safe(&r.id));
                    write_atomic(&cfg.out.join(&rel), bytes)?;
                    paths.push(rel);
                }
                (None, Some(p)) => paths.push(p.clone()),
                (None, None) => {}
            }
        }
        let mut problem = r.problem.clone();
        let placeholders = problem.matches("<image>").count();
        if placeholders < paths.len() {
            problem = "<image>".repeat(paths.len() - placeholders) + &problem;
        }
        sft.push(SftRecord::pair(problem, kept.response, paths));
        rl.push(r.clone());
    }
    write_json(&cfg.out.join("bridge.json"), &sft)?;
    let info = serde_json::json!({"vision_r1_bridge": {
        "file_name": "bridge.json", "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                 "system_tag": "system"}}});
    write_atomic(&cfg.out.join("dataset_info.json"), &serde_json::to_vec_pretty(&info)?)?;
    write_parquet(&cfg.out.join("bridge_easyr1.parquet"), &rl)?;
    let mut lines = Vec::new();
    for v in &verdicts {
        lines.extend(serde_json::to_vec(v)?);
        lines.push(b'\n');
    }
    write_atomic(&cfg.out.join("samples.jsonl"), &lines)?;
    let report = BridgeReport {
        items: items.len(),
        stored: verdicts.len(),
        counts,
        prompt_tokens,
        completion_tokens,
        prompts_sha256: prompts.hashes(),
        failed: progress.failed,
        skipped_on_resume: progress.skipped,
    };
    write_atomic(&cfg.out.join("bridge_stats.json"), &serde_json::to_vec_pretty(&report)?)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_r1_style_and_plain_outputs() {
        let r1 = "<think>\nOkay, let's see. The description says bar A is 7 and bar B is 5. Adding them, 7 + 5 = 12. \
                  So the final answer is \\boxed{12}.\n</think>\n\nThe sum is \\boxed{12}.";
        let raw = parse_reasoning(r1);
        assert_eq!(raw.answer, "12");
        assert!(raw.reasoning.starts_with("Okay") && raw.reasoning.ends_with("So the final answer is 12."));
        let kept = filter(&raw, "12", Target::Image).unwrap();
        assert!(kept.reasoning.contains("The image shows bar A"), "{}", kept.reasoning);
        assert!(kept.response.ends_with("<answer> Final Answer:12 </answer>"));
        assert_eq!(filter(&raw, "13", Target::Image), Err(DropReason::WrongAnswer));

        let plain = "From the description there are 3 red circles and 2 blue squares, so 3 + 2 = 5 shapes in all. \
                     So the final answer is 5.";
        let raw = parse_reasoning(plain);
        assert_eq!(raw.answer, "5");
        assert!(filter(&raw, "5", Target::Image).unwrap().reasoning.starts_with("From the image"));
        // Boxed answer that the reasoning contradicts: inconsistent.
        let bad = "<think>The description shows 3 red circles and 2 squares, that makes 5 in total, counting \
                   again. So the final answer is 6.</think> \\boxed{5}";
        assert_eq!(filter(&parse_reasoning(bad), "5", Target::Image), Err(DropReason::Inconsistent));
        assert_eq!(parse_reasoning("gibberish tokens").answer, "");
        assert_eq!(unbox("a \\boxed{\\frac{1}{2}} b \\boxed{x"), "a \\frac{1}{2} b \\boxed{x");
    }

    #[test]
    fn finishing_from_stored_results_writes_kept_samples_in_both_formats() {
        use crate::data::synthetic::{Config, Family, Split, export::export};
        use crate::endpoint::EndpointConfig;
        let dir = tempfile::tempdir().unwrap();
        export(&dir.path().join("data"), &[Family::Bars], &Config { size: 112, ..Config::default() }, Split::Train, 3)
            .unwrap();
        let input = dir.path().join("data/train.parquet");
        let items = crate::data::easyr1::read_parquet(&input).unwrap();
        let out = dir.path().join("out");
        // Every item already stored (so no request is sent): the first correct, the second wrong, the third short.
        let store = JobStore::open(&out.join("results.jsonl")).unwrap();
        let reply = |r: &str| BridgeItem {
            pseudo_cot: "c".into(),
            description: "d".into(),
            reasoning_output: r.into(),
            usage: [Usage { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 }; 3],
        };
        let good = format!(
            "<think>Okay. The description gives the bar values, and reading them carefully as described gives the \
             result. So the final answer is {}.</think> \\boxed{{{}}}",
            items[0].answer, items[0].answer
        );
        store.append(&items[0].id, &reply(&good)).unwrap();
        store.append(&items[1].id, &reply("<think>No idea. So the final answer is 123456.</think>")).unwrap();
        store.append(&items[2].id, &reply(&format!("\\boxed{{{}}}", items[2].answer))).unwrap();
        drop(store);
        let unused = EndpointConfig::new("http://127.0.0.1:9/v1", "none");
        let cfg = BridgeConfig {
            input,
            out: out.clone(),
            prompts: Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts"),
            version: "v1".into(),
            mllm: unused.clone(),
            reasoner: unused,
            concurrency: 2,
            max_tokens: [8, 8, 8],
            temperature: 0.0,
            seed: 0,
            limit: None,
        };
        let r = run(&cfg).unwrap();
        assert_eq!(
            (r.stored, r.skipped_on_resume, r.counts.kept, r.counts.wrong_answer, r.counts.empty),
            (3, 3, 1, 1, 1)
        );
        assert_eq!((r.prompt_tokens, r.completion_tokens), (45, 18));
        let sft = crate::data::sharegpt::read_json(&out.join("bridge.json")).unwrap();
        assert_eq!(sft.len(), 1);
        assert!(sft[0].messages[0].content.starts_with("<image>"));
        let response = &sft[0].messages[1].content;
        assert!(response.contains("The image shows the bar values") && response.contains("as shown"), "{response}");
        assert!(response.ends_with(&format!("<answer> Final Answer:{} </answer>", items[0].answer)));
        let img = out.join(&sft[0].images[0]);
        assert_eq!(std::fs::read(img).unwrap(), items[0].images[0].bytes.clone().unwrap());
        let rl = crate::data::easyr1::read_parquet(&out.join("bridge_easyr1.parquet")).unwrap();
        assert_eq!(rl, vec![items[0].clone()]);
        assert_eq!(std::fs::read_to_string(out.join("samples.jsonl")).unwrap().lines().count(), 3);
    }
}
