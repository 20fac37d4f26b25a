//! Per-item correctness and the aggregate metrics the papers report (papers_spec §1.7, §1.8, §2.10, §2.11).
//!
//! Per item, [`score_response`] dispatches by benchmark: MathVista, MATH-Vision, DynaMath, LogicVista,
//! MM-Math and We-Math follow their official rule-based scorers (below); every other benchmark uses r1lab's
//! rules. Those extract the answer with [`crate::eval::extract::extract_by_rules`] (Vision-R1's `<answer>
//! Final Answer: X </answer>`, `<answer>` tags, the last `\boxed{}`, "answer is" phrases, choice
//! letters/texts, bare numbers), then
//! - multiple choice: the prediction is the option letter(s) the extraction names (`B`, `(B)`, `B.`,
//!   `Option B`, `B: text`, a choice's text, every letter of `A, C`); correct when the set of letters
//!   equals the reference's;
//! - everything else: the extraction is the answer span as written ([`answer_span`]: Vision-R1's
//!   `Final Answer:` tag, an `<answer>` tag, the last `\boxed{}`), so that LaTeX such as `\frac{1}{2}`
//!   reaches the grader intact (the rule-based extractor resolves a free-form candidate to the one number
//!   it holds, which turns `\frac{1}{2}` into `1`), else the rule-based extraction; correct when MathRuler's
//!   grader ([`crate::rl::grader::grade_answer`]) accepts it for the reference.
//!
//! MathVista items follow the official scorer after extraction (`calculate_score.py` through
//! [`crate::eval::mathvista`]): the rule-based extraction (empty when none) is normalized to a choice (a
//! letter, `(x)`, else the nearest choice by edit distance) or to `int`/`round(float, precision)`, and
//! compared by string equality; the prediction recorded is that normalized value. Measured with
//! `r1lab eval bench` on the 24 published testmini output files of `shared/data/mathvista/results` (their
//! `response` fields, against their published `true_false`): on the 20 direct-answer files accuracy is
//! within 0.88 points of the published on average (largest gap 4.1, item agreement 94.4%); the 4
//! program-of-thought files (`*_2shot_code*`, whose code the official pipeline executes) score 5.5-9.3
//! points lower.
//!
//! Which official rule each benchmark follows ([`super::official`], each file names its script and
//! deviations):
//! - MATH-Vision: the whole official pipeline (mathllm/MATH-V `evaluate.py`/`utils.py`): its own
//!   extraction from the response, `find_math_answer` normalisation, `is_equal` against the answer and the
//!   option text (string, tuple, 2-decimal numeric equality). Vision-R1's `Final Answer:` tag is read as a
//!   `\boxed{}`.
//! - DynaMath: the official JSON `short answer` parse and per-type comparison (float within 0.001, option
//!   letter, substring); r1lab's extraction replaces the script's last-line fallback for responses without
//!   the JSON the official prompt asks for.
//! - LogicVista: the official comparison (sorted, lower-cased letter lists) and short cuts; the official
//!   extraction is GPT-4 only, so r1lab's rule extraction stands in (the judge with `--judge-url`).
//! - MM-Math: the official `AutoScoringJudge` (every `\boxed{}`, unit stripping, numeric within 0.0101 and
//!   percentages, intervals, sympy expression and equation equality, sympy replaced by
//!   [`crate::rl::grader::symbolic`] and [`super::official::arith`]); a response without `\boxed{}` is
//!   wrong, as officially (Vision-R1's tag counts as a box).
//! - We-Math: the official string rule (We-Math `evaluation/four_dimensional_metrics.py`,
//!   `load_and_process_data`): the text after the last `Answer` (the whole response without one), stripped
//!   of spaces and of every `>`, `<`, `:`, `.`, then its first character if it is one of A-H, equal to the
//!   answer letter. Lower case, `(B)`, `\boxed{B}` and a response opening with another character read
//!   nothing and are wrong, as officially; Vision-R1's `Final Answer: B` tag reads `B` under the rule itself.
//!
//! Deliberate deviations: the papers score MathVista/MathVerse with a GPT judge (gpt-4o-mini, §1.7,
//! pitfall 2); MathVista's official extraction is that judge too, so r1lab's extraction feeds its official
//! normalisation. MathVerse (both splits) stays on r1lab's rules and grader: its official extraction is a
//! GPT judge, and its match a judge after an exact-string check ([`super::judged`] follows both). We-Math's
//! published numbers come from VLMEvalKit, whose default is a gpt-4o-mini judge matching the response to an
//! option; the official string rule decides there only without a judge. AIME24/25, MATH500 and
//! GPQA-Diamond have no benchmark scorer ported; they use r1lab's grader (MathRuler's `grade_answer`, the
//! grader of the papers' RL rewards). So numbers on these are comparable across runs of r1lab but may sit a
//! few points from the published ones (with `--judge-url`, [`super::judged`] follows the papers instead: the
//! judge extracts, its extraction is scored by the rules above, and MathVerse is matched in its official
//! second stage).
//!
//! Aggregates (values in percent, as the papers print them):
//! - accuracy: the mean over items of the item's mean correctness over its samples; with one sample per
//!   item this is plain accuracy, with k it is average@k (ReVisual-R1's AIME, §2.10, pitfall 16);
//! - per category: the same mean over the items with that category value;
//! - We-Math four-dimensional metrics (We-Math `evaluation/four_dimensional_metrics.py`, read and
//!   re-derived): per multi-step problem, with S = its one-step sub-questions and M its multi-step question:
//!   IK = some S wrong and M wrong; IG = all S right and M wrong; CM strict = all S right and M right;
//!   RM strict = some S wrong and M right; CM loose = some S right and M right; RM loose = no S right and
//!   M right; score = (N − 0.5·IG − RM − IK) / N. Deviation: the official script hard-codes N = 525 (the
//!   testmini problem count); here N is the number of problems loaded, so subsets score on their own;
//! - DynaMath (Zou et al. 2024): average case = accuracy over all variants; worst case = the share of seed
//!   questions answered correctly in every variant.
//!
//! We-Math and DynaMath metrics need one verdict per item: with several samples the first (sample 0) is used.
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

use serde_json::Value;

use super::{AnswerType, BenchItem, Benchmark, MULTI_SEP, official};
use crate::eval::extract::{extract_by_rules, vision_r1_final_answer};
use crate::eval::mathvista::{NormalizeOptions, Problem, normalize_extracted_answer, safe_equal};
use crate::rl::grader::{answer_tag, grade_answer, last_boxed, strip_final_answer};

/// One scored response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemScore {
    pub id: String,
    /// Index of the sample (0 for single-sample protocols).
    pub sample: usize,
    pub response: String,
    /// The answer span found in the response.
    pub extraction: Option<String>,
    /// The extraction as compared: option letters for multiple choice.
    pub prediction: Option<String>,
    pub correct: bool,
}

impl ItemScore {
    /// The score of one `response` (sample `sample`) to `item`.
    pub fn new(
        item: &BenchItem,
        sample: usize,
        response: &str,
        extraction: Option<String>,
        prediction: Option<String>,
        correct: bool,
    ) -> Self {
        ItemScore { id: item.id.clone(), sample, response: response.to_string(), extraction, prediction, correct }
    }
}

/// Scores one response to `item`.
pub fn score_response(item: &BenchItem, sample: usize, response: &str) -> ItemScore {
    let official = match item.benchmark {
        Benchmark::MathVista => score_mathvista(item, sample, response),
        Benchmark::MathVision => official::mathvision::score(item, sample, response),
        Benchmark::DynaMath => official::dynamath::score(item, sample, response),
        Benchmark::LogicVista => official::logicvista::score(item, sample, response),
        Benchmark::MmMath => official::mmmath::score(item, sample, response),
        Benchmark::WeMath => official::wemath::score(item, sample, response),
        _ => None,
    };
    if let Some(s) = official {
        return s;
    }
    let extraction = extract_by_rules(response, &item.choices);
    let (prediction, correct) = match item.answer_type {
        AnswerType::MultipleChoice => {
            let p = extraction.as_deref().and_then(|e| choice_prediction(e, &item.choices));
            let gold = letters_of(&item.answer);
            let ok = matches!((&p, &gold), (Some(p), Some(g)) if p == g);
            (p, ok)
        }
        _ => {
            let extraction = answer_span(response).or(extraction);
            let ok = extraction.as_deref().is_some_and(|e| grade_answer(e, &item.answer));
            return ItemScore::new(item, sample, response, extraction.clone(), extraction, ok);
        }
    };
    ItemScore::new(item, sample, response, extraction, prediction, correct)
}

/// MathVista with the official normalization ([`crate::eval::mathvista::normalize_extracted_answer`],
/// [`crate::eval::mathvista::safe_equal`]); `None` for an item it has no rule for.
fn score_mathvista(item: &BenchItem, sample: usize, response: &str) -> Option<ItemScore> {
    let multi = item.answer_type == AnswerType::MultipleChoice;
    let answer = if multi {
        let i = item.answer.bytes().next().map(|c| c.wrapping_sub(b'A') as usize)?;
        item.choices.get(i)?.clone()
    } else {
        item.answer.clone()
    };
    let problem = Problem {
        question_type: if multi { "multi_choice" } else { "free_form" }.to_string(),
        answer_type: match item.answer_type {
            AnswerType::Integer => "integer",
            AnswerType::Float => "float",
            AnswerType::List => "list",
            _ => "text",
        }
        .to_string(),
        choices: multi.then(|| item.choices.clone()),
        precision: item.precision.map_or(Value::Null, Value::from),
        answer: Value::String(answer),
        metadata: Default::default(),
    };
    let extraction = extract_by_rules(response, &item.choices);
    let value = Value::String(extraction.clone().unwrap_or_default());
    let prediction = normalize_extracted_answer(&value, &problem, NormalizeOptions::default()).ok()?;
    let correct = safe_equal(prediction.as_deref(), &problem.answer);
    Some(ItemScore::new(item, sample, response, extraction, prediction, correct))
}

/// The answer span as the response writes it, for free-form items: Vision-R1's `<answer> Final Answer: X
/// </answer>`, else the first `<answer>` tag (a leading `Final Answer:` dropped, a `\boxed{}` inside reduced
/// to its content), else the last `\boxed{}`. Unlike the rule-based extractor's resolution step, LaTeX such
/// as `\frac{1}{2}` reaches the grader intact.
pub fn answer_span(response: &str) -> Option<String> {
    if let Some(a) = vision_r1_final_answer(response) {
        return Some(a.to_string());
    }
    if let Some(tag) = answer_tag(response) {
        let a = strip_final_answer(tag);
        return Some(last_boxed(a).unwrap_or(a).to_string());
    }
    last_boxed(response).map(str::to_string)
}

/// The option letters an extraction names, sorted, as one string (`"B"`, `"AC"`); `None` when it names none.
pub fn choice_prediction(extraction: &str, choices: &[String]) -> Option<String> {
    let t = extraction.trim();
    if let Some(l) = letters_of(t)
        && (choices.is_empty() || l.chars().all(|c| ((c as u8 - b'A') as usize) < choices.len()))
    {
        return Some(l);
    }
    let lower = t.trim_end_matches('.').to_lowercase();
    for (i, c) in choices.iter().enumerate() {
        if c.trim().to_lowercase() == lower {
            return super::letter(i).ok().map(String::from);
        }
    }
    // `B: text`, `B. text`, `(B) text`, `Option B`.
    let rest = t.strip_prefix("Option ").or_else(|| t.strip_prefix("option ")).unwrap_or(t);
    let rest = rest.trim_start_matches('(');
    let mut chars = rest.chars();
    match (chars.next(), chars.next()) {
        (Some(c), Some(sep)) if c.is_ascii_uppercase() && matches!(sep, ')' | '.' | ':' | ' ') => Some(c.to_string()),
        (Some(c), None) if c.is_ascii_uppercase() => Some(c.to_string()),
        _ => None,
    }
}

/// `"A"`, `"(B)"`, `"A, C"`, `"B."` -> sorted letters; `None` when the text is anything else.
fn letters_of(s: &str) -> Option<String> {
    super::logicvista::letter_set(s.trim())
}

/// A count of correct items (a fractional count when items carry several samples).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Tally {
    pub correct: f64,
    pub total: usize,
}

impl Tally {
    /// Percent (0 when empty).
    pub fn percent(&self) -> f64 {
        if self.total == 0 { 0.0 } else { 100.0 * self.correct / self.total as f64 }
    }
}

/// Which number a metric row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Mean correctness (average@k when `samples` > 1).
    Accuracy,
    WeMathStrict,
    WeMathLoose,
    DynaMathAverage,
    DynaMathWorst,
}

impl MetricKind {
    pub const fn name(self) -> &'static str {
        match self {
            MetricKind::Accuracy => "accuracy",
            MetricKind::WeMathStrict => "wemath_strict",
            MetricKind::WeMathLoose => "wemath_loose",
            MetricKind::DynaMathAverage => "dynamath_average",
            MetricKind::DynaMathWorst => "dynamath_worst",
        }
    }
}

/// One aggregate number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub benchmark: Benchmark,
    pub kind: MetricKind,
    /// Percent.
    pub value: f64,
    /// Units counted (items, problems or seeds).
    pub n: usize,
    /// Samples per item (k of average@k).
    pub samples: usize,
}

/// Accuracy over one category value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryRow {
    pub benchmark: Benchmark,
    pub key: String,
    pub value: String,
    pub tally: Tally,
}

/// Everything [`super::report`] writes for one benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub benchmark: Benchmark,
    pub metrics: Vec<Metric>,
    pub categories: Vec<CategoryRow>,
}

impl Summary {
    pub fn get(&self, kind: MetricKind) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.kind == kind)
    }
}

/// Mean correctness of each item over its samples; an error when an item has no score, or a score names
/// no item.
pub fn item_means(items: &[BenchItem], scores: &[ItemScore]) -> Result<BTreeMap<String, f64>> {
    let mut per: BTreeMap<&str, (usize, usize)> = items.iter().map(|i| (i.id.as_str(), (0, 0))).collect();
    for s in scores {
        match per.get_mut(s.id.as_str()) {
            Some(e) => {
                e.0 += usize::from(s.correct);
                e.1 += 1;
            }
            None => bail!("a response names item `{}`, which the benchmark does not have", s.id),
        }
    }
    let missing: Vec<&str> = per.iter().filter(|(_, (_, n))| *n == 0).map(|(id, _)| *id).collect();
    if let Some(first) = missing.first() {
        bail!(
            "{} of {} items have no response (first: `{first}`): generate them or score a complete file",
            missing.len(),
            items.len()
        );
    }
    Ok(per.into_iter().map(|(id, (c, n))| (id.to_string(), c as f64 / n as f64)).collect())
}

/// The verdict of each item's first sample.
fn first_verdicts(scores: &[ItemScore]) -> BTreeMap<String, bool> {
    let mut out = BTreeMap::new();
    for s in scores {
        let e = out.entry(s.id.clone()).or_insert((usize::MAX, false));
        if s.sample < e.0 {
            *e = (s.sample, s.correct);
        }
    }
    out.into_iter().map(|(k, (_, c))| (k, c)).collect()
}

/// Accuracy per category value (multi-valued values split at [`MULTI_SEP`]), sorted by key and value.
pub fn per_category(items: &[BenchItem], means: &BTreeMap<String, f64>) -> Vec<CategoryRow> {
    let mut acc: BTreeMap<(String, String), Tally> = BTreeMap::new();
    let mut benchmark = None;
    for item in items {
        benchmark = Some(item.benchmark);
        let m = means.get(&item.id).copied().unwrap_or(0.0);
        for (k, v) in &item.categories {
            let parts: BTreeSet<&str> = v.split(MULTI_SEP).map(str::trim).filter(|p| !p.is_empty()).collect();
            for p in parts {
                let t = acc.entry((k.clone(), p.to_string())).or_default();
                t.correct += m;
                t.total += 1;
            }
        }
    }
    let Some(benchmark) = benchmark else { return vec![] };
    acc.into_iter().map(|((key, value), tally)| CategoryRow { benchmark, key, value, tally }).collect()
}

/// We-Math's four-dimensional counts (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WeMathCounts {
    pub problems: usize,
    pub ik: usize,
    pub ig: usize,
    pub cm_strict: usize,
    pub rm_strict: usize,
    pub cm_loose: usize,
    pub rm_loose: usize,
}

impl WeMathCounts {
    /// Strict score in percent.
    pub fn strict(&self) -> f64 {
        self.score(self.rm_strict)
    }
    /// Loose score in percent.
    pub fn loose(&self) -> f64 {
        self.score(self.rm_loose)
    }
    fn score(&self, rm: usize) -> f64 {
        let n = self.problems as f64;
        if n == 0.0 { 0.0 } else { 100.0 * (n - 0.5 * self.ig as f64 - rm as f64 - self.ik as f64) / n }
    }
}

/// Classifies each We-Math problem from its items' verdicts; an error names a problem whose one-step or
/// multi-step question is missing.
pub fn wemath(items: &[BenchItem], verdicts: &BTreeMap<String, bool>) -> Result<WeMathCounts> {
    // problem -> (steps, step index or "multi" -> verdict)
    let mut problems: BTreeMap<&str, (usize, BTreeMap<&str, bool>)> = BTreeMap::new();
    for item in items {
        let (Some(group), Some(steps), Some(step)) =
            (item.group.as_deref(), item.categories.get("steps"), item.categories.get("step"))
        else {
            bail!("wemath: item {} lacks its problem id or step (load it with bench::wemath)", item.id);
        };
        let n: usize = steps
            .trim_end_matches("steps")
            .parse()
            .map_err(|_| anyhow::anyhow!("wemath: item {}: bad steps {steps:?}", item.id))?;
        let v = verdicts.get(&item.id).copied().unwrap_or(false);
        let e = problems.entry(group).or_insert((n, BTreeMap::new()));
        e.1.insert(step.as_str(), v);
    }
    let mut c = WeMathCounts::default();
    for (problem, (n, steps)) in &problems {
        let Some(&multi) = steps.get("multi") else { bail!("wemath: problem {problem} has no multi-step question") };
        let mut subs = vec![];
        for k in 1..=*n {
            match steps.get(k.to_string().as_str()) {
                Some(&v) => subs.push(v),
                None => bail!("wemath: problem {problem} lacks its one-step question {k}"),
            }
        }
        let all = subs.iter().all(|&v| v);
        let any = subs.iter().any(|&v| v);
        c.problems += 1;
        match (all, multi) {
            (true, true) => c.cm_strict += 1,
            (true, false) => c.ig += 1,
            (false, true) => c.rm_strict += 1,
            (false, false) => c.ik += 1,
        }
        if multi {
            if any { c.cm_loose += 1 } else { c.rm_loose += 1 }
        }
    }
    Ok(c)
}

/// DynaMath's two numbers.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DynaMathScores {
    pub seeds: usize,
    pub variants: usize,
    /// Percent of variants answered correctly.
    pub average: f64,
    /// Percent of seeds answered correctly in every variant.
    pub worst: f64,
}

/// Average- and worst-case accuracy, grouping items by [`BenchItem::group`] (the seed id).
pub fn dynamath(items: &[BenchItem], verdicts: &BTreeMap<String, bool>) -> Result<DynaMathScores> {
    let mut seeds: BTreeMap<&str, bool> = BTreeMap::new();
    let mut right = 0usize;
    for item in items {
        let Some(seed) = item.group.as_deref() else { bail!("dynamath: item {} has no seed id", item.id) };
        let v = verdicts.get(&item.id).copied().unwrap_or(false);
        right += usize::from(v);
        let e = seeds.entry(seed).or_insert(true);
        *e &= v;
    }
    let pct = |a: usize, b: usize| if b == 0 { 0.0 } else { 100.0 * a as f64 / b as f64 };
    Ok(DynaMathScores {
        seeds: seeds.len(),
        variants: items.len(),
        average: pct(right, items.len()),
        worst: pct(seeds.values().filter(|&&v| v).count(), seeds.len()),
    })
}

/// The metrics and per-category accuracies of one benchmark's scored responses.
pub fn summarize(items: &[BenchItem], scores: &[ItemScore]) -> Result<Summary> {
    let Some(benchmark) = items.first().map(|i| i.benchmark) else { bail!("no items to summarize") };
    let means = item_means(items, scores)?;
    let samples = scores.iter().map(|s| s.sample + 1).max().unwrap_or(1);
    let total: f64 = means.values().sum();
    let mut metrics = vec![Metric {
        benchmark,
        kind: MetricKind::Accuracy,
        value: Tally { correct: total, total: items.len() }.percent(),
        n: items.len(),
        samples,
    }];
    let verdicts = first_verdicts(scores);
    match benchmark {
        Benchmark::WeMath => {
            let c = wemath(items, &verdicts)?;
            for (kind, value) in [(MetricKind::WeMathStrict, c.strict()), (MetricKind::WeMathLoose, c.loose())] {
                metrics.push(Metric { benchmark, kind, value, n: c.problems, samples: 1 });
            }
        }
        Benchmark::DynaMath => {
            let d = dynamath(items, &verdicts)?;
            metrics.push(Metric {
                benchmark,
                kind: MetricKind::DynaMathAverage,
                value: d.average,
                n: d.variants,
                samples: 1,
            });
            metrics.push(Metric { benchmark, kind: MetricKind::DynaMathWorst, value: d.worst, n: d.seeds, samples: 1 });
        }
        _ => {}
    }
    Ok(Summary { benchmark, metrics, categories: per_category(items, &means) })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An item of a benchmark that stays on r1lab's rules (MathVerse: its official scorer is a GPT judge).
    fn item(id: &str, answer: &str, t: AnswerType, choices: &[&str]) -> BenchItem {
        BenchItem {
            benchmark: Benchmark::MathVerse,
            id: id.into(),
            question: String::new(),
            images: vec![],
            choices: choices.iter().map(|s| s.to_string()).collect(),
            answer: answer.into(),
            answer_type: t,
            categories: BTreeMap::new(),
            group: None,
            precision: None,
        }
    }

    #[test]
    fn multiple_choice_by_letter_or_text() {
        let it = item("1", "B", AnswerType::MultipleChoice, &["3 cm", "5 cm"]);
        assert!(score_response(&it, 0, "<answer> Final Answer: B </answer>").correct);
        assert!(score_response(&it, 0, "so \\boxed{(B)}").correct);
        assert!(score_response(&it, 0, "\\boxed{5 cm}").correct);
        let s = score_response(&it, 0, "\\boxed{A}");
        assert_eq!((s.prediction.as_deref(), s.correct), (Some("A"), false));
        // Options only inside the question text: letters still count.
        let embedded = item("2", "C", AnswerType::MultipleChoice, &[]);
        assert!(score_response(&embedded, 0, "The answer is \\boxed{C}").correct);
        // LogicVista-style letter sets.
        let set = item("3", "AC", AnswerType::MultipleChoice, &[]);
        assert!(score_response(&set, 0, "\\boxed{C, A}").correct);
        assert!(!score_response(&set, 0, "\\boxed{A}").correct);
    }

    #[test]
    fn mathvista_uses_the_official_normalization() {
        let mc = BenchItem {
            benchmark: Benchmark::MathVista,
            ..item("1", "B", AnswerType::MultipleChoice, &["3 cm", "5 cm"])
        };
        let s = score_response(&mc, 0, "\\boxed{B}");
        assert_eq!((s.prediction.as_deref(), s.correct), (Some("5 cm"), true));
        // No answer at all: the nearest choice to "" (the first of equal distance), as calculate_score.py does.
        let s = score_response(&mc, 0, "I cannot see the image.");
        assert_eq!(s.extraction, None);
        assert_eq!(s.prediction.as_deref(), Some("3 cm"));
        // Floats are rounded to the item's precision before the string comparison.
        let f = BenchItem {
            benchmark: Benchmark::MathVista,
            precision: Some(1),
            ..item("2", "1.2", AnswerType::Float, &[])
        };
        let s = score_response(&f, 0, "<answer> Final Answer: 1.23 </answer>");
        assert_eq!((s.prediction.as_deref(), s.correct), (Some("1.2"), true));
        let i = BenchItem { benchmark: Benchmark::MathVista, ..item("3", "4", AnswerType::Integer, &[]) };
        assert!(score_response(&i, 0, "There are 4.0 bars, so \\boxed{4}").correct);
    }

    #[test]
    fn free_form_uses_the_grader() {
        let it = item("1", "\\frac{1}{2}", AnswerType::FreeForm, &[]);
        assert!(score_response(&it, 0, "<think>..</think> \\boxed{0.5}").correct);
        let s = score_response(&it, 0, "so \\boxed{\\frac{1}{2}}");
        assert_eq!((s.extraction.as_deref(), s.correct), (Some("\\frac{1}{2}"), true));
        // No tag and no box: the rule-based extraction (the last number).
        assert!(score_response(&item("3", "12", AnswerType::Integer, &[]), 0, "There are 12 dots.").correct);
        let s = score_response(&it, 0, "I do not know");
        assert!(!s.correct);
        let int = item("2", "204", AnswerType::Integer, &[]);
        assert!(score_response(&int, 0, "<answer> Final Answer: 204 </answer>").correct);
    }

    #[test]
    fn missing_responses_are_an_error() {
        let items = vec![item("1", "1", AnswerType::Integer, &[]), item("2", "2", AnswerType::Integer, &[])];
        let scores = vec![score_response(&items[0], 0, "\\boxed{1}")];
        let err = item_means(&items, &scores).unwrap_err().to_string();
        assert!(err.contains("1 of 2") && err.contains("`2`"), "{err}");
        let stray = vec![ItemScore { id: "9".into(), ..scores[0].clone() }];
        assert!(item_means(&items, &stray).unwrap_err().to_string().contains("`9`"));
    }
}
