//! Scoring with an LLM judge (papers_spec §1.7: VLMEvalKit's GPT judge, `gpt-4o-mini` by default), with
//! MathVerse's official two-stage evaluation. `r1lab eval bench` and `r1lab eval run` use it when given
//! `--judge-url` and `--judge-model`; without them every response is scored by the rules
//! ([`super::score::score_response`]) and nothing here runs.
//!
//! - **Stage 1, every benchmark**: the judge extracts the answer ([`crate::eval::judge::judge_extract`],
//!   files in `<out>/judge/`); the extraction is scored as if it were the whole response, so the
//!   benchmark's own normalisation applies, and a response it finds no answer in (or fails on) is wrong.
//!   The benchmarks whose official rule reads the answer from a `\boxed{}` of the response get the
//!   extraction in that form ([`as_response`]): MM-Math (`AutoScoringJudge` scores a response without
//!   `\boxed{` as wrong) and MATH-Vision (`evaluate.py` reads the box when there is one, and otherwise
//!   applies phrase and letter rules written for whole responses); the others read a bare answer.
//! - **Stage 2, MathVerse (both splits)**, as ZrrSkywalker/MathVerse `evaluation/score_answer_s2.py` and
//!   VLMEvalKit `vlmeval/dataset/utils/mathverse.py` (`MathVerse_auxeval_score`) do it, read and
//!   re-derived: rules first, the judge for what they reject. An extraction equal to the answer (both
//!   trimmed; VLMEvalKit's `post_check_score`) or accepted by r1lab's stage-1 rules (option letters, the
//!   math grader) is right without a request. Otherwise the judge is shown `question_for_eval`
//!   ([`super::mathverse::eval_questions`]), the answer and the extraction (`prompts/judge/<version>/
//!   mathverse_score.txt`, r1lab's own paraphrase of the official task, see `prompts/judge/README.md`) and
//!   replies 1 (agree) or 0; [`parse_verdict`] reads it. A reply of any other form is asked again, up to 5
//!   requests at temperature 0, 0.5, 1, 1.5, 2 (VLMEvalKit's rule), and then the response counts as wrong
//!   with an [`ErrorKind::Unusable`](crate::eval::judge::ErrorKind::Unusable) error; a transport failure
//!   counts as wrong too (a rerun into the same folder asks again: the judge's store keeps what it
//!   answered). Files in `<out>/judge_score/`: the judge's `judge.json`, `prompts.json` and
//!   `judge_store.jsonl`, and `verdicts.json` (one [`Verdict`] per response).
//!
//! Deviations: stage 1 uses r1lab's extraction prompt for every benchmark (`mathvista_extract.txt`), not
//! MathVerse's own; an extraction-less response is wrong without a stage-2 request (the official scripts
//! ask with the empty answer, and their own in-context example judges `null` as 0); the official script
//! re-asks an unusable verdict forever, VLMEvalKit 5 times (followed here); the rules accept more than the
//! official exact string match (equal values written differently), which can only turn a judge request
//! into a "right" the judge would be expected to give.
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::generate::GenRecord;
use super::mathverse::eval_questions;
use super::score::{ItemScore, score_response};
use super::{BenchItem, Benchmark};
use crate::datagen::prompts::PromptSet;
use crate::eval::judge::{
    self, ErrorKind, JudgeConfig, JudgeError, JudgeItem, JudgeTask, ask, judge_extract, write_record,
};
use crate::io::write_atomic;

/// MathVerse's stage-2 template (file stem under `prompts/judge/<version>/`).
pub const SCORE_TEMPLATE: &str = "mathverse_score";

/// MathVerse's stage 2: a verdict of 0 or 1, up to 5 requests.
pub const SCORE: JudgeTask = JudgeTask { template: SCORE_TEMPLATE, check: |r| parse_verdict(r).map(|_| ()), tries: 5 };

/// Stage 1's files under the output folder.
pub const EXTRACT_DIR: &str = "judge";
/// Stage 2's files under the output folder.
pub const SCORE_DIR: &str = "judge_score";

/// The verdict in a stage-2 reply: `1` (agree) or `0`, after an optional `Judgement:` / `Agreement:`
/// prefix (the official prompt's label, and this template's) and surrounding spaces or a final period.
pub fn parse_verdict(reply: &str) -> Result<bool, JudgeError> {
    let mut t = reply.trim();
    for label in ["judgement", "judgment", "agreement"] {
        if t.len() >= label.len() && t[..label.len()].eq_ignore_ascii_case(label) {
            t = t[label.len()..].trim_start().trim_start_matches([':', '：']).trim();
        }
    }
    match t.trim_end_matches('.').trim() {
        "1" => Ok(true),
        "0" => Ok(false),
        _ => Err(JudgeError {
            kind: ErrorKind::Unusable,
            message: format!(
                "the judge's verdict is neither 0 nor 1: {:?}",
                reply.chars().take(80).collect::<String>()
            ),
        }),
    }
}

/// What decided a MathVerse response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VerdictSource {
    /// The extraction equals the answer, or r1lab's rules accept it: right, no request.
    Rules,
    /// The judge's verdict.
    Judge,
    /// Stage 1 found no answer: wrong, no request.
    NoExtraction,
    /// The judge failed (transport, HTTP, unusable verdicts): wrong.
    JudgeFailed,
}

/// Stage 2 of one MathVerse response (`verdicts.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    pub id: String,
    pub sample: usize,
    pub answer: String,
    pub extraction: Option<String>,
    pub source: VerdictSource,
    pub correct: bool,
    /// The judge's reply (a verdict that passed [`parse_verdict`]).
    pub reply: Option<String>,
    pub error: Option<JudgeError>,
}

/// One response to score: its item, sample index and text.
pub type Response<'a> = (&'a BenchItem, usize, &'a str);

/// Scores every response with the judge (see the module header); `root` is the benchmark folder (MathVerse's
/// `question_for_eval` is read from it) and `out` the folder the judge's files go under.
pub fn score_all(responses: &[Response], config: &JudgeConfig, root: &Path, out: &Path) -> Result<Vec<ItemScore>> {
    let judge_items: Vec<JudgeItem> = responses
        .iter()
        .map(|(item, sample, response)| JudgeItem {
            id: GenRecord::key(&item.id, *sample),
            question: item.question.clone(),
            choices: item.choices.clone(),
            response: response.to_string(),
        })
        .collect();
    let extract_dir = out.join(EXTRACT_DIR);
    let results = judge_extract(&judge_items, config, &extract_dir)?;
    let failed = results.iter().filter(|r| r.error.is_some()).count();
    if failed > 0 {
        eprintln!(
            "judge: extraction failed on {failed} of {} response(s) (see {}); they score as wrong; rerun to retry",
            results.len(),
            extract_dir.join("judge_results.json").display()
        );
    }
    let scores: Vec<ItemScore> = responses
        .iter()
        .zip(results)
        .map(|((item, sample, response), r)| score_extraction(item, *sample, response, r.extraction))
        .collect();
    match responses.first().map(|r| r.0.benchmark) {
        Some(Benchmark::MathVerse | Benchmark::MathVerseVisionOnly) => {
            mathverse_stage2(responses, scores, &eval_questions(root)?, config, &out.join(SCORE_DIR))
        }
        _ => Ok(scores),
    }
}

/// Stage 1's score of one response from the judge's `extraction` (`None`: no answer, wrong): the
/// extraction, in the form [`as_response`] gives it, scored by [`score_response`]; the score keeps the
/// original `response` and the judge's bare extraction.
pub fn score_extraction(item: &BenchItem, sample: usize, response: &str, extraction: Option<String>) -> ItemScore {
    match extraction {
        Some(e) => {
            let scored = score_response(item, sample, &as_response(item.benchmark, &e));
            ItemScore { response: response.to_string(), extraction: Some(e), ..scored }
        }
        None => ItemScore::new(item, sample, response, None, None, false),
    }
}

/// The judge's `extraction` as the response `benchmark`'s official rule reads: `\boxed{extraction}` for
/// MM-Math and MATH-Vision (unless it already holds a box), the extraction itself otherwise.
pub fn as_response(benchmark: Benchmark, extraction: &str) -> Cow<'_, str> {
    match benchmark {
        Benchmark::MmMath | Benchmark::MathVision if !extraction.contains("\\boxed{") => {
            Cow::Owned(format!("\\boxed{{{}}}", extraction.trim()))
        }
        _ => Cow::Borrowed(extraction),
    }
}

/// MathVerse's stage 2 on stage-1 `scores` (one per response, same order): the rules, then the judge with
/// `questions` (`sample_index -> question_for_eval`); writes the judge's files and `verdicts.json` into `out`.
pub fn mathverse_stage2(
    responses: &[Response],
    mut scores: Vec<ItemScore>,
    questions: &BTreeMap<String, String>,
    config: &JudgeConfig,
    out: &Path,
) -> Result<Vec<ItemScore>> {
    let mut verdicts: Vec<Verdict> = responses
        .iter()
        .zip(&scores)
        .map(|((item, sample, _), s)| {
            let rules = s.correct || s.extraction.as_deref().is_some_and(|e| e.trim() == item.answer.trim());
            let source = match (&s.extraction, rules) {
                (None, _) => VerdictSource::NoExtraction,
                (Some(_), true) => VerdictSource::Rules,
                (Some(_), false) => VerdictSource::Judge,
            };
            Verdict {
                id: item.id.clone(),
                sample: *sample,
                answer: item.answer.clone(),
                extraction: s.extraction.clone(),
                source,
                correct: rules,
                reply: None,
                error: None,
            }
        })
        .collect();
    let mut prompts = vec![];
    let mut asked_for = vec![];
    for (k, v) in verdicts.iter().enumerate() {
        if v.source != VerdictSource::Judge {
            continue;
        }
        let question = questions.get(&v.id).with_context(|| {
            format!("mathverse: item {} is not in the benchmark's testmini.json (its question_for_eval)", v.id)
        })?;
        let vars = vec![
            ("question", question.trim().to_string()),
            ("answer", v.answer.trim().to_string()),
            ("extraction", v.extraction.clone().unwrap_or_default().trim().to_string()),
        ];
        prompts.push((GenRecord::key(&v.id, v.sample), vars));
        asked_for.push(k);
    }
    let (asked, mut record) = ask(&SCORE, &prompts, config, out)?;
    for (k, a) in asked_for.into_iter().zip(asked) {
        let v = &mut verdicts[k];
        match (a.reply, a.error) {
            (Some(reply), _) => match parse_verdict(&reply) {
                Ok(c) => (v.correct, v.reply) = (c, Some(reply)),
                Err(e) => (v.source, v.error, v.reply) = (VerdictSource::JudgeFailed, Some(e), Some(reply)),
            },
            (None, e) => {
                v.source = VerdictSource::JudgeFailed;
                v.error = Some(e.unwrap_or(JudgeError { kind: ErrorKind::Transport, message: "no reply".into() }));
            }
        }
        if let Some(e) = &v.error {
            *record.errors.entry(e.kind).or_default() += 1;
        }
    }
    write_atomic(&out.join("verdicts.json"), &serde_json::to_vec_pretty(&verdicts)?)?;
    write_record(out, &record)?;
    let failed = verdicts.iter().filter(|v| v.source == VerdictSource::JudgeFailed).count();
    if failed > 0 {
        eprintln!(
            "judge: stage 2 failed on {failed} response(s) (see {}); they score as wrong; rerun to retry",
            out.join("verdicts.json").display()
        );
    }
    for (s, v) in scores.iter_mut().zip(&verdicts) {
        s.correct = v.correct;
    }
    Ok(scores)
}

/// The `extraction` entry of a run record: `{"kind": "rules"}`, or the judge's URL, model, prompt version
/// and the SHA-256 of each template the benchmark's scoring uses.
pub fn record(benchmark: Benchmark, config: Option<&JudgeConfig>) -> Result<Value> {
    let Some(c) = config else { return Ok(json!({"kind": "rules"})) };
    let mut names = vec![judge::TEMPLATE];
    if matches!(benchmark, Benchmark::MathVerse | Benchmark::MathVerseVisionOnly) {
        names.push(SCORE_TEMPLATE);
    }
    let set = PromptSet::load(&c.prompts_root, "judge", &c.prompt_version, &names)?;
    Ok(json!({
        "kind": "judge",
        "url": c.base_url,
        "model": c.model,
        "prompt_version": c.prompt_version,
        "templates": set.hashes(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(benchmark: Benchmark, answer: &str, choices: &[&str]) -> BenchItem {
        BenchItem { id: "7".into(), ..BenchItem::fixture(benchmark, "Find it.", choices, answer) }
    }

    #[test]
    fn mm_math_scores_the_judges_extraction_as_a_box() {
        let mm = item(Benchmark::MmMath, "\\frac{1}{2}", &[]);
        let response = "Dividing both sides by two gives one half.";
        // The official rule needs a box: the bare extraction as a response is wrong, the judged path right.
        assert!(!score_response(&mm, 0, "\\frac{1}{2}").correct);
        let s = score_extraction(&mm, 0, response, Some("\\frac{1}{2}".into()));
        assert!(s.correct, "{s:?}");
        assert_eq!((s.response.as_str(), s.extraction.as_deref()), (response, Some("\\frac{1}{2}")));
        assert_eq!(s.prediction.as_deref(), Some("\\frac{1}{2}"));
        assert!(score_extraction(&mm, 0, response, Some("0.5".into())).correct);
        assert!(!score_extraction(&mm, 0, response, Some("2".into())).correct);
        // Already boxed: read as is; several answers pair off in any order (a two-box reference).
        assert!(score_extraction(&mm, 0, response, Some("\\boxed{0.5}".into())).correct);
        let two = item(Benchmark::MmMath, "3,4", &[]);
        assert!(score_extraction(&two, 0, response, Some("4, 3".into())).correct);
        assert!(!score_extraction(&two, 0, response, Some("3".into())).correct);
        // No extraction: wrong.
        let s = score_extraction(&mm, 0, response, None);
        assert_eq!((s.correct, s.extraction, s.prediction), (false, None, None));
    }

    #[test]
    fn the_other_benchmarks_read_the_extraction_as_it_is() {
        assert_eq!(as_response(Benchmark::MmMath, " 5 "), "\\boxed{5}");
        assert_eq!(as_response(Benchmark::MathVision, "B"), "\\boxed{B}");
        assert_eq!(as_response(Benchmark::MathVision, "\\boxed{B}"), "\\boxed{B}");
        for b in [Benchmark::MathVista, Benchmark::DynaMath, Benchmark::LogicVista, Benchmark::MathVerse] {
            assert_eq!(as_response(b, "B"), "B");
        }
        // MATH-Vision: the letter, the option text, a value.
        let mc = item(Benchmark::MathVision, "B", &["3", "7", "9"]);
        assert!(score_extraction(&mc, 0, "...", Some("B".into())).correct);
        assert!(score_extraction(&mc, 0, "...", Some("7".into())).correct);
        assert!(!score_extraction(&mc, 0, "...", Some("C".into())).correct);
        let free = item(Benchmark::MathVision, "\\frac{3}{4}", &[]);
        assert!(score_extraction(&free, 0, "...", Some("0.75".into())).correct);
        assert!(!score_extraction(&free, 0, "...", Some("0.7".into())).correct);
        // LogicVista: bare letters.
        let lv = item(Benchmark::LogicVista, "AC", &[]);
        assert!(score_extraction(&lv, 0, "...", Some("C, A".into())).correct);
    }

    #[test]
    fn verdicts_parse() {
        assert_eq!(parse_verdict("1"), Ok(true));
        assert_eq!(parse_verdict(" Judgement: 0\n"), Ok(false));
        assert_eq!(parse_verdict("agreement:1."), Ok(true));
        for bad in ["", "yes", "10", "1 because they match", "Judgement:"] {
            assert_eq!(parse_verdict(bad).unwrap_err().kind, ErrorKind::Unusable, "{bad:?}");
        }
    }

    #[test]
    fn the_template_renders_the_three_fields() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("prompts");
        let set = PromptSet::load(&root, "judge", "v1", &[SCORE_TEMPLATE]).unwrap();
        let t = set.get(SCORE_TEMPLATE).unwrap();
        assert_eq!(t.placeholders(), ["question", "answer", "extraction"]);
        let p = t.render(&[("question", "Find x."), ("answer", "3"), ("extraction", "x = 3")]).unwrap();
        assert!(p.ends_with("Problem: Find x.\nReference answer: 3\nModel answer: x = 3\nAgreement:\n"), "{p}");
    }
}
