//! Answer extraction by an LLM judge through any OpenAI-compatible chat endpoint: the step the
//! official MathVista pipeline (lupantech/MathVista `evaluation/extract_answer.py`) and VLMEvalKit
//! (papers_spec §1.7: `gpt-4o-mini` by default) give to GPT. `r1lab score mathvista --judge-url URL
//! --judge-model M` uses it in place of the outputs' own `extraction`.
//!
//! - The prompt is r1lab's own (`prompts/judge/v1/mathvista_extract.txt`: the task in words and
//!   five hand-written examples; not the official prompt text), filled with the problem, its options
//!   and the response. The judge replies with the answer alone, or `NONE` when the response commits to
//!   none (extraction `None`). A leading `Extracted answer:` and surrounding quotes or `$` are removed.
//! - Requests go through [`crate::endpoint`]: per-request timeout, retries with backoff on transport
//!   errors (timeouts included), 408, 429 and 5xx; `concurrency` worker threads; a resumable
//!   [`JobStore`] (`judge_store.jsonl`) keeps every judged item, so an interrupted run continues
//!   with the items it had not finished. Failed items are not stored: a rerun tries them again.
//! - A failure is per item, never fatal: timeouts (after the retries), HTTP errors, a body that is not
//!   a chat completion (non-JSON, no `choices`) and an empty reply each give a [`JudgeError`] of its
//!   [`ErrorKind`] in that item's [`JudgeResult`]. With `fallback_to_rules` such an item takes
//!   [`extract_by_rules`]'s answer instead (its `source` says so); without it, no extraction.
//! - Recorded beside the outputs: `judge.json` (base URL, model, the name of the API-key variable,
//!   never its value, prompt version, template path and SHA-256, the SHA-256 of every rendered prompt
//!   together, timeout, retries, concurrency, and the counts of each outcome), `judge_results.json`
//!   (one [`JudgeResult`] per item) and `prompts.json` (pinned template hash: a resumed run with a
//!   changed template, model or base URL is refused). `judge.json` is first written before any
//!   request (counts zero), so that even a killed run pins its model, and completed at the end.
//!
//! - The engine, [`ask`], serves any [`JudgeTask`] (a template of `prompts/judge/<version>/` and the
//!   form a usable reply must have, re-asked up to `tries` times at temperature 0, 0.5, 1, ... as
//!   VLMEvalKit does for MathVerse): the extraction above ([`EXTRACT`], one try) and MathVerse's
//!   stage-2 answer matching ([`crate::eval::bench::judged`]). A reply that never takes the form fails
//!   the item ([`ErrorKind::Unusable`]) and is not stored.
//!
//! Deviation: the official pipeline first tries quick rules and asks GPT only when they fail; here
//! every item goes to the judge (the rules are [`crate::eval::extract`], measured separately).
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::datagen::prompts::PromptSet;
use crate::endpoint::{Endpoint, EndpointConfig, JobStore, run_resumable};
use crate::eval::extract::extract_by_rules;
use crate::eval::mathvista::{Annotations, Evaluation, NormalizeOptions, Outputs, evaluate};
use crate::io::write_atomic;
use crate::serve::api::{ChatMessage, ChatRequest};

/// The template file stem under `prompts/judge/<version>/`.
pub const TEMPLATE: &str = "mathvista_extract";
/// The environment variable holding the judge's API key unless configured otherwise.
pub const DEFAULT_API_KEY_ENV: &str = "R1LAB_JUDGE_API_KEY";
/// What the judge replies when the response commits to no answer.
pub const NO_ANSWER: &str = "NONE";

/// How to reach and use the judge.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeConfig {
    /// The API base, e.g. `http://127.0.0.1:8000/v1` or `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the environment variable holding the API key (sent as a bearer token when set).
    pub api_key_env: String,
    pub model: String,
    /// Folder under `prompts/judge/`, e.g. `v1`.
    pub prompt_version: String,
    /// The repository's `prompts/` folder.
    pub prompts_root: PathBuf,
    /// Per request.
    pub timeout: Duration,
    /// Attempts after the first, on transport errors (timeouts), 408, 429 and 5xx.
    pub retries: u32,
    /// Wait before the first retry (doubled each time).
    pub backoff: Duration,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Reply length limit (tokens).
    pub max_tokens: usize,
    /// Use the rule-based extraction for items the judge failed on.
    pub fallback_to_rules: bool,
}

impl JudgeConfig {
    /// Prompt v1 from `prompts/` (of the working directory, else of the source tree), key in
    /// [`DEFAULT_API_KEY_ENV`], 120 s timeout, 3 retries from 1 s, 8 requests at once, 64 reply
    /// tokens, no fallback.
    pub fn new(base_url: &str, model: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_string(),
            api_key_env: DEFAULT_API_KEY_ENV.into(),
            model: model.into(),
            prompt_version: "v1".into(),
            prompts_root: prompts_root(),
            timeout: Duration::from_secs(120),
            retries: 3,
            backoff: Duration::from_secs(1),
            concurrency: 8,
            max_tokens: 64,
            fallback_to_rules: false,
        }
    }
}

/// `prompts/` of the working directory (the repository root), else of the source tree r1lab was
/// built from, so that `r1lab score mathvista --judge-url` works from any folder of a checkout.
fn prompts_root() -> PathBuf {
    let here = crate::datagen::prompts::default_root();
    if here.is_dir() { here } else { Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts") }
}

/// One response to extract from.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgeItem {
    pub id: String,
    pub question: String,
    /// Empty for a free-form problem.
    pub choices: Vec<String>,
    pub response: String,
}

/// Why the judge gave no answer for an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request timed out on every attempt.
    Timeout,
    /// An HTTP error status (after the retries for 408, 429, 5xx).
    Http,
    /// Another transport failure (refused connection, reset, bad URL).
    Transport,
    /// The body is not a chat completion (not JSON, no `choices`, ...).
    Malformed,
    /// A chat completion whose reply is empty.
    EmptyReply,
    /// Replies not of the task's form on every try (a MathVerse verdict other than 0 or 1).
    Unusable,
}

impl ErrorKind {
    /// Reads the kind from the endpoint client's error message (its wording: "HTTP <code>", "transport:",
    /// "not a chat completion").
    fn of(message: &str) -> Self {
        let m = message.to_ascii_lowercase();
        if m.contains("not a chat completion") {
            ErrorKind::Malformed
        } else if m.contains("timed out") || m.contains("timeout") {
            ErrorKind::Timeout
        } else if m.contains("http ") {
            ErrorKind::Http
        } else {
            ErrorKind::Transport
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeError {
    pub kind: ErrorKind,
    pub message: String,
}

/// Where an item's extraction came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The judge's reply (possibly "no answer").
    Judge,
    /// The rules, after the judge failed (`fallback_to_rules`).
    Rules,
    /// The judge failed and there is no fallback.
    Failed,
}

/// The outcome for one item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeResult {
    pub id: String,
    /// The answer to score; `None` when the judge replied [`NO_ANSWER`] or failed without fallback.
    pub extraction: Option<String>,
    pub source: Source,
    /// The judge's raw reply.
    pub reply: Option<String>,
    /// SHA-256 of the rendered prompt sent for this item.
    pub prompt_sha256: String,
    /// Judged by an earlier, interrupted run (read from the store).
    pub resumed: bool,
    pub error: Option<JudgeError>,
}

/// What the store keeps per judged item.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    reply: String,
    prompt_sha256: String,
}

/// `judge.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeRecord {
    pub base_url: String,
    pub model: String,
    pub api_key_env: String,
    pub prompt_version: String,
    pub prompt_template: String,
    pub prompt_template_sha256: String,
    /// SHA-256 over the rendered prompts' SHA-256s (hex, one per line, in item order).
    pub rendered_prompts_sha256: String,
    pub timeout_s: f64,
    pub retries: u32,
    pub concurrency: usize,
    pub max_tokens: usize,
    pub fallback_to_rules: bool,
    pub items: usize,
    /// Judged by this run / taken from the store.
    pub judged_now: usize,
    pub resumed: usize,
    /// Items whose judge reply was [`NO_ANSWER`] (answer extraction only).
    pub no_answer: usize,
    /// Failed items by [`ErrorKind`].
    pub errors: BTreeMap<ErrorKind, usize>,
    pub fallback_used: usize,
}

static PREFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?i)^\s*(?:extracted answer|answer)\s*[:：]\s*").unwrap());

/// The extraction in a judge reply: its first non-empty line without an `Extracted answer:` prefix,
/// quotes or `$`; `None` for [`NO_ANSWER`]. Errors on an empty reply.
pub fn parse_reply(reply: &str) -> Result<Option<String>, JudgeError> {
    let line = reply.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    let line = PREFIX.replace(line, "");
    let a = line.trim().trim_matches(['"', '\'', '`', '$']).trim();
    if a.is_empty() {
        return Err(JudgeError { kind: ErrorKind::EmptyReply, message: "the judge's reply is empty".into() });
    }
    Ok((!a.eq_ignore_ascii_case(NO_ANSWER)).then(|| a.to_string()))
}

fn sha256_hex(s: &str) -> String {
    format!("{:x}", Sha256::digest(s.as_bytes()))
}

/// The `{choices}` block: `Options: (A) x (B) y` and a line break, or nothing.
fn choices_block(choices: &[String]) -> String {
    if choices.is_empty() {
        return String::new();
    }
    let listed: Vec<String> =
        choices.iter().enumerate().map(|(i, c)| format!("({}) {c}", char::from(b'A' + (i % 26) as u8))).collect();
    format!("Options: {}\n", listed.join(" "))
}

/// Refuses to resume into `out` with another endpoint or model than the `judge.json` there names.
fn check_resume(out: &Path, config: &JudgeConfig) -> Result<()> {
    let path = out.join("judge.json");
    let Ok(bytes) = std::fs::read(&path) else { return Ok(()) };
    let old: Value = serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))?;
    for (key, want) in [("model", &config.model), ("base_url", &config.base_url)] {
        if old.get(key).and_then(Value::as_str) != Some(want.as_str()) {
            bail!(
                "{} was made with {key} {}, not {want}: use a new output folder, or the same {key}",
                path.display(),
                old.get(key).unwrap_or(&Value::Null)
            );
        }
    }
    Ok(())
}

/// One kind of question put to the judge: its template under `prompts/judge/<version>/` and the form a
/// usable reply has.
#[derive(Debug, Clone, Copy)]
pub struct JudgeTask {
    /// The template file stem.
    pub template: &'static str,
    /// A reply that fails this is not stored: the item fails with this error and a rerun asks again.
    pub check: fn(&str) -> Result<(), JudgeError>,
    /// Requests per item while the reply fails `check`; request `i` (0-based) is sent at temperature
    /// `0.5 * i`, as VLMEvalKit's MathVerse judge does. 1: ask once, at temperature 0.
    pub tries: u32,
}

/// The answer extraction ([`judge_extract`]): a non-empty reply.
pub const EXTRACT: JudgeTask = JudgeTask { template: TEMPLATE, check: |r| parse_reply(r).map(|_| ()), tries: 1 };

/// The judge's reply to one rendered prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Asked {
    pub id: String,
    /// A reply that passed the task's check; `None` when the item failed.
    pub reply: Option<String>,
    /// SHA-256 of the rendered prompt.
    pub prompt_sha256: String,
    /// Taken from the store of an earlier, interrupted run.
    pub resumed: bool,
    pub error: Option<JudgeError>,
}

/// Renders `task`'s template for every `(id, placeholder values)` and asks the judge each prompt the
/// store in `out` lacks (see the module header: timeouts, retries, concurrency, resume). Writes
/// `prompts.json` and `judge.json` (counts zero) into `out` before any request; the caller fills the
/// counts of the returned record and writes it again with [`write_record`]. One [`Asked`] per prompt, in order.
pub fn ask(
    task: &JudgeTask,
    prompts: &[(String, Vec<(&str, String)>)],
    config: &JudgeConfig,
    out: &Path,
) -> Result<(Vec<Asked>, JudgeRecord)> {
    ensure!(config.concurrency > 0, "the judge's concurrency must be at least 1");
    ensure!(task.tries > 0, "judge task {}: at least one try per item", task.template);
    let set = PromptSet::load(&config.prompts_root, "judge", &config.prompt_version, &[task.template])?;
    let template = set.get(task.template)?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    check_resume(out, config)?;
    set.pin(out)?;

    let rendered: Vec<String> = prompts
        .iter()
        .map(|(id, vars)| {
            let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
            template.render(&vars).with_context(|| format!("rendering the judge prompt for item {id}"))
        })
        .collect::<Result<_>>()?;
    let hashes: Vec<String> = rendered.iter().map(|p| sha256_hex(p)).collect();
    let jobs: Vec<usize> = (0..prompts.len()).collect();

    let mut record = JudgeRecord {
        base_url: config.base_url.clone(),
        model: config.model.clone(),
        api_key_env: config.api_key_env.clone(),
        prompt_version: config.prompt_version.clone(),
        prompt_template: set.dir.join(format!("{}.txt", task.template)).display().to_string(),
        prompt_template_sha256: template.sha256.clone(),
        rendered_prompts_sha256: sha256_hex(&hashes.iter().map(|h| format!("{h}\n")).collect::<String>()),
        timeout_s: config.timeout.as_secs_f64(),
        retries: config.retries,
        concurrency: config.concurrency,
        max_tokens: config.max_tokens,
        fallback_to_rules: config.fallback_to_rules,
        items: prompts.len(),
        judged_now: 0,
        resumed: 0,
        no_answer: 0,
        errors: BTreeMap::new(),
        fallback_used: 0,
    };
    // Written before any request, so that a run killed mid-way still pins its model and base URL.
    write_record(out, &record)?;

    let endpoint = Endpoint::new(EndpointConfig {
        api_key: std::env::var(&config.api_key_env).ok().filter(|k| !k.is_empty()),
        timeout: config.timeout,
        retries: config.retries,
        backoff: config.backoff,
        ..EndpointConfig::new(&config.base_url, &config.model)
    });
    let store = JobStore::open(&out.join("judge_store.jsonl"))?;
    let resumed: BTreeSet<&str> =
        prompts.iter().filter(|(id, _)| store.contains(id)).map(|(id, _)| id.as_str()).collect();
    // Items whose every reply failed the task's check, with the last check error.
    let unusable: Mutex<BTreeMap<String, JudgeError>> = Mutex::new(BTreeMap::new());
    let progress = run_resumable(
        &jobs,
        |&k| prompts[k].0.clone(),
        &store,
        config.concurrency,
        |&k| {
            let mut last = None;
            for attempt in 0..task.tries {
                let request = ChatRequest {
                    messages: vec![ChatMessage::text("user", &rendered[k])],
                    temperature: Some(0.5 * f64::from(attempt)),
                    max_tokens: Some(config.max_tokens),
                    ..Default::default()
                };
                let reply = endpoint.chat(&request)?.texts().into_iter().next().unwrap_or_default();
                match (task.check)(&reply) {
                    Ok(()) => return Ok(Stored { reply, prompt_sha256: hashes[k].clone() }),
                    Err(e) => last = Some(e),
                }
            }
            let e = last.expect("at least one try");
            let message = e.message.clone();
            unusable.lock().expect("lock").insert(prompts[k].0.clone(), e);
            bail!("{message}")
        },
    )?;
    drop(store);

    let stored: BTreeMap<String, Stored> =
        JobStore::read::<Stored>(&out.join("judge_store.jsonl"))?.into_iter().collect();
    let failed: BTreeMap<&str, &str> = progress.failed.iter().map(|(id, e)| (id.as_str(), e.as_str())).collect();
    let unusable = unusable.into_inner().expect("lock");
    record.judged_now = progress.done;
    record.resumed = progress.skipped;
    let mut asked = Vec::with_capacity(prompts.len());
    for (k, (id, _)) in prompts.iter().enumerate() {
        let mut a = Asked {
            id: id.clone(),
            reply: None,
            prompt_sha256: hashes[k].clone(),
            resumed: resumed.contains(id.as_str()),
            error: None,
        };
        if let Some(s) = stored.get(id) {
            ensure!(
                s.prompt_sha256 == hashes[k],
                "{}: item {id} was judged with another prompt (the response or question changed): use a new \
                 output folder",
                out.display(),
            );
            a.reply = Some(s.reply.clone());
        } else if let Some(e) = unusable.get(id) {
            a.error = Some(e.clone());
        } else {
            let message = failed.get(id.as_str()).copied().unwrap_or("no result was stored");
            a.error = Some(JudgeError { kind: ErrorKind::of(message), message: message.to_string() });
        }
        asked.push(a);
    }
    Ok((asked, record))
}

/// Writes `judge.json` into `out` (crash-safe).
pub fn write_record(out: &Path, record: &JudgeRecord) -> Result<()> {
    write_atomic(&out.join("judge.json"), &serde_json::to_vec_pretty(record)?)
}

/// Asks the judge for the answer in every item's response (see the module header); writes
/// `judge.json`, `judge_results.json`, `prompts.json` and the store `judge_store.jsonl` into `out`.
/// Returns one result per item, in item order.
pub fn judge_extract(items: &[JudgeItem], config: &JudgeConfig, out: &Path) -> Result<Vec<JudgeResult>> {
    let prompts: Vec<(String, Vec<(&str, String)>)> = items
        .iter()
        .map(|i| {
            let vars = vec![
                ("question", i.question.trim().to_string()),
                ("choices", choices_block(&i.choices)),
                ("response", i.response.trim().to_string()),
            ];
            (i.id.clone(), vars)
        })
        .collect();
    let (asked, mut record) = ask(&EXTRACT, &prompts, config, out)?;
    let mut results = Vec::with_capacity(items.len());
    for (item, a) in items.iter().zip(asked) {
        let mut result = JudgeResult {
            id: a.id,
            extraction: None,
            source: Source::Judge,
            reply: a.reply,
            prompt_sha256: a.prompt_sha256,
            resumed: a.resumed,
            error: a.error,
        };
        if let Some(reply) = &result.reply {
            match parse_reply(reply) {
                Ok(x) => result.extraction = x,
                Err(e) => result.error = Some(e),
            }
            record.no_answer += usize::from(result.extraction.is_none() && result.error.is_none());
        }
        if let Some(e) = &result.error {
            *record.errors.entry(e.kind).or_default() += 1;
            if config.fallback_to_rules {
                result.extraction = extract_by_rules(&item.response, &item.choices);
                result.source = Source::Rules;
                record.fallback_used += 1;
            } else {
                result.source = Source::Failed;
            }
        }
        results.push(result);
    }
    write_atomic(&out.join("judge_results.json"), &serde_json::to_vec_pretty(&results)?)?;
    write_record(out, &record)?;
    Ok(results)
}

/// The judge items of a MathVista outputs file: each record's `response`, the question from the
/// record (`question`) or the annotations file, and the choices of multi-choice problems.
pub fn mathvista_items(outputs: &Outputs, annotations: &Annotations) -> Result<Vec<JudgeItem>> {
    let raw: Value = serde_json::from_slice(
        &std::fs::read(&annotations.path).with_context(|| format!("reading {}", annotations.path.display()))?,
    )
    .with_context(|| format!("{} is not JSON", annotations.path.display()))?;
    outputs
        .records
        .iter()
        .map(|(pid, record)| {
            let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
            let response = text(record.get("response")).with_context(|| {
                format!("{}: pid {pid} has no string `response` for the judge to read", outputs.path.display())
            })?;
            let question = text(record.get("question"))
                .or_else(|| text(raw.get(pid).and_then(|p| p.get("question"))))
                .with_context(|| {
                    format!(
                        "pid {pid}: no `question` in {} nor in {}",
                        outputs.path.display(),
                        annotations.path.display()
                    )
                })?;
            let problem = annotations.problems.get(pid);
            let record_choices: Option<Vec<String>> =
                record.get("choices").and_then(|c| serde_json::from_value(c.clone()).ok());
            let question_type = text(record.get("question_type"))
                .or_else(|| problem.map(|p| p.question_type.clone()))
                .unwrap_or_default();
            let choices = match question_type.as_str() {
                "multi_choice" => {
                    record_choices.or_else(|| problem.and_then(|p| p.choices.clone())).unwrap_or_default()
                }
                _ => vec![],
            };
            Ok(JudgeItem { id: pid.clone(), question, choices, response })
        })
        .collect()
}

/// `r1lab score mathvista --judge-url --judge-model`: judges every record's response (files into
/// `out`), puts the judge's extraction into the record's `extraction` ("" where there is none, as
/// the official pipeline stores a failed extraction) and scores as the official scorer does.
pub fn score_mathvista_with_judge(
    outputs: &Path,
    annotations: &Path,
    opts: NormalizeOptions,
    config: &JudgeConfig,
    out: &Path,
) -> Result<Evaluation> {
    let annotations = Annotations::load(annotations)?;
    let mut outputs = Outputs::load(outputs)?;
    let items = mathvista_items(&outputs, &annotations)?;
    let results = judge_extract(&items, config, out)?;
    let failed = results.iter().filter(|r| r.source == Source::Failed).count();
    for ((_, record), r) in outputs.records.iter_mut().zip(&results) {
        record.insert("extraction".into(), Value::String(r.extraction.clone().unwrap_or_default()));
    }
    if failed > 0 {
        eprintln!(
            "judge: {failed} of {} item(s) failed (see {}); they score with an empty extraction; rerun to retry them",
            results.len(),
            out.join("judge_results.json").display()
        );
    }
    evaluate(&outputs, &annotations, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_parse_to_answers() {
        assert_eq!(parse_reply("B"), Ok(Some("B".into())));
        assert_eq!(parse_reply("\n  Extracted answer: $12.5$ \nbecause"), Ok(Some("12.5".into())));
        assert_eq!(parse_reply("none"), Ok(None));
        assert_eq!(parse_reply("  \n ").unwrap_err().kind, ErrorKind::EmptyReply);
    }

    #[test]
    fn error_kinds_from_client_messages() {
        assert_eq!(
            ErrorKind::of("x: gave up after 2 attempts; last error: transport: timed out reading"),
            ErrorKind::Timeout
        );
        assert_eq!(ErrorKind::of("x: HTTP 404: no such model (not retried: fix the request)"), ErrorKind::Http);
        assert_eq!(ErrorKind::of("x: the response is not a chat completion (expected value)"), ErrorKind::Malformed);
        assert_eq!(ErrorKind::of("x: gave up; last error: transport: connection refused"), ErrorKind::Transport);
    }

    #[test]
    fn the_template_renders_with_and_without_options() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let set = PromptSet::load(&root, "judge", "v1", &[TEMPLATE]).unwrap();
        let t = set.get(TEMPLATE).unwrap();
        let mc = t
            .render(&[("question", "Q?"), ("choices", &choices_block(&["1".into(), "2".into()])), ("response", "R")])
            .unwrap();
        assert!(mc.ends_with("Problem: Q?\nOptions: (A) 1 (B) 2\nModel answer: R\nExtracted answer:\n"), "{mc}");
        let ff = t.render(&[("question", "Q?"), ("choices", ""), ("response", "R")]).unwrap();
        assert!(ff.ends_with("Problem: Q?\nModel answer: R\nExtracted answer:\n"), "{ff}");
    }
}
