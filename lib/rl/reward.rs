//! Rule rewards: each a pure function of (response text, ground truth, response length in
//! tokens), placed by the trainer at the last response token (papers_spec §0.2 step 4). Answers
//! are graded by [`grade_answer`] (mathruler's, what EasyR1 calls).
//!
//! - [`Reward::VisionR1Hard`]: Vision-R1's hard formatting result reward (HFRRF, paper v1 §3.4):
//!   1 iff the response fully matches `<think>.*?</think>\s*<answer>.*?</answer>` (DOTALL) and
//!   the first `<answer>` content, stripped and without a leading `Final Answer:`, grades correct
//!   against the stripped ground truth. The code was never released; this is papers_spec §1.5's
//!   reconstruction (the `Final Answer:` strip is pitfall 6 of §3).
//! - [`Reward::R1vFormatAccuracy`]: EasyR1 `examples/reward_function/r1v.py`: `(1−w)·acc + w·format`
//!   with w = 0.5, the same format regex, and accuracy on the first single-line `<answer>` (the
//!   search has no DOTALL) or else the whole stripped response.
//! - [`Reward::BoxedAccuracy`]: accuracy of the last balanced `\boxed{}` (EasyR1 `math.py`'s
//!   accuracy term). Deviation: no box scores 0, where mathruler's `"None"` sentinel would match a
//!   ground truth "None".
//! - [`Reward::EfficientLength`]: ReVisual-R1's efficient-length reward (paper v1 §2.1, §4.1.2)
//!   `R_len = clip(α(L_budget − L) + δ, 0, 1)`, α = 0.005, δ = 0.5; how the paper combines it with
//!   accuracy is not stated, so it stands alone here.
//! - [`Reward::RevisualCode`]: ReVisual-R1's released `examples/reward_function/math.py`
//!   (`compute_score` at e0b7db1, papers_spec §2.7): spaces around `<`, `>`, `/` removed, then
//!   `0.8·acc + 0.05·(self-critique + image-revisit + repetition)` [`+ 0.05·R_len` with the
//!   efficient reward on]; accuracy keeps mathruler's `"None"` sentinel, the format score is only
//!   reported. The three heuristics are ported regex for regex (Python `re`, IGNORECASE). The
//!   three patterns with a back-reference run on a small backtracking matcher that follows
//!   Python's search order under a step budget ([`HEURISTIC_STEPS`] per pattern); past it the
//!   matches found so far count (Python has no bound).
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use crate::eval::python;
use crate::rl::grader::{answer_tag, extract_boxed_content, grade_answer, last_boxed, strip_final_answer};

/// Steps one back-reference pattern of the released heuristics may take on one response.
pub const HEURISTIC_STEPS: u64 = 2_000_000;

/// ReVisual-R1's efficient-length reward `clip(α(L_budget − L) + δ, 0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EfficientLength {
    /// L_budget in tokens (the released config uses `target_max_length` = 8192).
    pub budget: usize,
    pub alpha: f64,
    pub delta: f64,
}

impl EfficientLength {
    /// Paper values with the released budget.
    pub const PAPER: EfficientLength = EfficientLength { budget: 8192, alpha: 0.005, delta: 0.5 };

    pub fn score(&self, len: usize) -> f64 {
        (self.alpha * (self.budget as f64 - len as f64) + self.delta).clamp(0.0, 1.0)
    }
}

/// One rule reward.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reward {
    VisionR1Hard,
    R1vFormatAccuracy { format_weight: f64 },
    BoxedAccuracy,
    EfficientLength(EfficientLength),
    RevisualCode { efficient_length: Option<EfficientLength> },
}

/// A reward with the parts the trainer logs (`None` where the reward has no such part).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct RewardScore {
    pub overall: f64,
    pub accuracy: Option<f64>,
    pub format: Option<f64>,
}

impl Reward {
    /// R1-V's equal weighting.
    pub const R1V: Reward = Reward::R1vFormatAccuracy { format_weight: 0.5 };

    pub fn score(&self, response: &str, ground_truth: &str, response_len: usize) -> RewardScore {
        match *self {
            Reward::VisionR1Hard => vision_r1_hard(response, ground_truth),
            Reward::R1vFormatAccuracy { format_weight } => r1v(response, ground_truth, format_weight),
            Reward::BoxedAccuracy => boxed_accuracy(response, ground_truth),
            Reward::EfficientLength(e) => RewardScore { overall: e.score(response_len), ..Default::default() },
            Reward::RevisualCode { efficient_length } => {
                revisual_code(response, ground_truth, response_len, efficient_length)
            }
        }
    }
}

fn indicator(b: bool) -> f64 {
    if b { 1.0 } else { 0.0 }
}

static THINK_ANSWER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?s)\A<think>.*?</think>\s*<answer>.*?</answer>\z").expect("valid regex"));
static ANSWER_ONE_LINE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"<answer>(.*?)</answer>").expect("valid regex"));

/// Vision-R1 HFRRF: format and correctness, or nothing.
pub fn vision_r1_hard(response: &str, ground_truth: &str) -> RewardScore {
    let format = THINK_ANSWER.is_match(response);
    let correct =
        answer_tag(response).is_some_and(|a| grade_answer(strip_final_answer(a), python::strip(ground_truth)));
    RewardScore {
        overall: indicator(format && correct),
        accuracy: Some(indicator(correct)),
        format: Some(indicator(format)),
    }
}

/// EasyR1 `r1v.py` `compute_score`.
pub fn r1v(response: &str, ground_truth: &str, format_weight: f64) -> RewardScore {
    let format = indicator(THINK_ANSWER.is_match(response));
    let given = match ANSWER_ONE_LINE.captures(response).and_then(|c| c.get(1)) {
        Some(m) => python::strip(m.as_str()),
        None => python::strip(response),
    };
    let accuracy = indicator(grade_answer(given, python::strip(ground_truth)));
    RewardScore {
        overall: (1.0 - format_weight) * accuracy + format_weight * format,
        accuracy: Some(accuracy),
        format: Some(format),
    }
}

/// Accuracy of the last balanced `\boxed{}`.
pub fn boxed_accuracy(response: &str, ground_truth: &str) -> RewardScore {
    let accuracy = indicator(last_boxed(response).is_some_and(|a| grade_answer(a, ground_truth)));
    RewardScore { overall: accuracy, accuracy: Some(accuracy), format: None }
}

static TAG_SPACES: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s*(<|>|/)\s*").expect("valid regex"));
static REVISUAL_FORMATS: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    [
        r"<think>.*</think>.*\\boxed\{.*\}.*",
        r"<think>.*</think>\s*<answer>.*</answer>",
        r"<think>.*</think>\s*(?:answer|solution)\s*[:=]\s*.*",
        r"<think>.*</think>.*(?:Therefore|Thus|So|Hence),?\s+.*=.*",
    ]
    .iter()
    .map(|p| Regex::new(&format!(r"(?s)\A(?:{p})\z")).expect("valid regex"))
    .collect()
});

/// ReVisual-R1's released `compute_score` for one response.
pub fn revisual_code(
    response: &str,
    ground_truth: &str,
    response_len: usize,
    efficient_length: Option<EfficientLength>,
) -> RewardScore {
    const W: f64 = 0.05;
    let predict = TAG_SPACES.replace_all(response, "$1");
    let format = indicator(REVISUAL_FORMATS.iter().any(|re| re.is_match(&predict)));
    let accuracy = indicator(grade_answer(&extract_boxed_content(&predict), ground_truth));
    let heuristics = self_critic(&predict) + image_revisit(&predict) + repetition(&predict);
    let mut overall = (1.0 - 4.0 * W) * accuracy + W * heuristics;
    if let Some(e) = efficient_length {
        overall += W * e.score(response_len);
    }
    RewardScore { overall, accuracy: Some(accuracy), format: Some(format) }
}

/// Case-insensitive regexes, as Python's `re.IGNORECASE`.
fn compile_ci(patterns: &[&str]) -> Vec<Regex> {
    patterns.iter().map(|p| Regex::new(&format!("(?i){p}")).expect("valid regex")).collect()
}

#[rustfmt::skip]
const CRITIC_KEYWORDS: [(&str, f64); 42] = [
    (r"\bmistake\b", 0.12), (r"\berror\b", 0.12), (r"\bincorrect\b", 0.12), (r"\bwrong\b", 0.10),
    (r"\bI was mistaken\b", 0.15), (r"\bThat's not right\b", 0.15), (r"\bThis contradicts\b", 0.15),
    (r"\bI need to reconsider\b", 0.15), (r"\bthis doesn't make sense\b", 0.14), (r"\bI made an error\b", 0.15),
    (r"\bcontradiction\b", 0.13), (r"\bflaw\b", 0.12), (r"\binvalid\b", 0.12), (r"\blet me recalculate\b", 0.10),
    (r"\blet's revise\b", 0.10), (r"\blet me reconsider\b", 0.10), (r"\blet's rethink\b", 0.10),
    (r"\blet me check again\b", 0.09), (r"\bdouble-check\b", 0.09), (r"\bverify\b", 0.08),
    (r"\bre-evaluate\b", 0.10), (r"\breassess\b", 0.10), (r"\brevisit\b", 0.08), (r"\blet's try again\b", 0.09),
    (r"\bwait\b", 0.06), (r"\bhold on\b", 0.06), (r"\bI doubt\b", 0.07), (r"\bI question\b", 0.07),
    (r"\bhowever\b", 0.05), (r"\bbut\b", 0.04), (r"\balthough\b", 0.04), (r"\bon second thought\b", 0.08),
    (r"\bwait a second\b", 0.07), (r"\bis that right\b", 0.08), (r"\bdid I miss something\b", 0.08),
    (r"\bperhaps\b", 0.03), (r"\bmaybe\b", 0.03), (r"\bI think\b", 0.02), (r"\bI wonder\b", 0.04),
    (r"\balternatively\b", 0.05), (r"\bon the other hand\b", 0.05), (r"\bI'm not sure\b", 0.05),
];
const CRITIC_STARTERS: [&str; 8] = [
    r"(?:That|This|It|The result) (?:is|seems|appears to be) (?:incorrect|wrong|mistaken|an error|a mistake|flawed)",
    r"(?:I|We) (?:made|committed) (?:an error|a mistake|a miscalculation)",
    r"(?:I|We) (?:was|were) (?:wrong|mistaken|incorrect|in error)",
    r"(?:Wait|Hold on|Actually|However|But|Oh)(?:,)? (?:that|this|it) (?:doesn't|does not) (?:seem|look|appear) (?:right|correct|accurate)",
    r"(?:Let|I should|I need to) (?:me|) (?:reconsider|recalculate|rethink|revise|check|verify|double-check)",
    r"(?:Let's|Let us) (?:try again|recalculate|rethink|revise|check|verify|double-check)",
    r"(?:Wait|Hold on|Hmm|Actually|But|However)(?:,)? (?:I'm|I am|I) (?:not sure|uncertain|confused|doubtful|unsure)",
    r"(?:Wait|Hold on|Hmm|Actually|But|However)(?:,)? (?:this|that|it) (?:might|may|could) (?:be|not be) (?:right|correct|accurate)",
];
const CRITIC_FOLLOWUPS: [&str; 8] = [
    r"(?:The|A) correct (?:answer|solution|approach|calculation|value|result) (?:is|should be)",
    r"(?:I|We) should (?:have|instead) (?:calculated|computed|determined|found|used)",
    r"(?:Actually|In fact|Instead|Rather|Correctly)(?:,)? (?:the|we|I) (?:should|need to|must|have to)",
    r"(?:After|Upon) (?:reconsideration|recalculation|checking|verifying)(?:,)? (?:I|we) (?:see|realize|find|determine)",
    r"(?:Now|So|Therefore|Thus)(?:,)? (?:the|a) (?:correct|accurate|proper|right) (?:approach|calculation|solution|answer)",
    r"(?:The|A) (?:error|mistake|issue|problem|flaw) (?:was|is) (?:that|because|due to)",
    r"(?:I|We) (?:missed|overlooked|forgot|didn't consider|failed to account for)",
    r"(?:This|That) (?:leads to|gives|results in|produces) (?:a|the) (?:correct|accurate|better|improved|proper)",
];

static KEYWORD_RES: LazyLock<Vec<(Regex, f64)>> = LazyLock::new(|| {
    CRITIC_KEYWORDS.iter().map(|(p, w)| (Regex::new(&format!("(?i){p}")).expect("valid regex"), *w)).collect()
});
static STARTER_RES: LazyLock<Vec<Regex>> = LazyLock::new(|| compile_ci(&CRITIC_STARTERS));
static FOLLOWUP_RES: LazyLock<Vec<Regex>> = LazyLock::new(|| compile_ci(&CRITIC_FOLLOWUPS));
static WHITESPACE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\s+").expect("valid regex"));
static ELLIPSIS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\.{2,}").expect("valid regex"));

/// `self_critic_reward`: weighted reflection keywords (repeats at half weight), +0.25 per
/// reflection starter followed within 3 sentences by a correction (at most 3), +0.1 when the
/// second half of the sentences holds more keywords; clipped to [0, 1].
pub fn self_critic(text: &str) -> f64 {
    if python::strip(text).chars().count() < 10 {
        return 0.0;
    }
    let cleaned = WHITESPACE.replace_all(text, " ");
    let cleaned = ELLIPSIS.replace_all(&cleaned, ".").into_owned();
    // re.split(r'(?<=[.!?])\s+(?=[A-Z0-9])'): whitespace is single spaces now.
    let sentences = split_after_punctuation(&cleaned, |next| next.is_ascii_uppercase() || next.is_ascii_digit());
    let lower = cleaned.to_lowercase();
    let mut score = 0.0;
    for (re, w) in KEYWORD_RES.iter() {
        let count = re.find_iter(&lower).count();
        if count > 0 {
            score += w * (1.0 + 0.5 * (count as f64 - 1.0));
        }
    }
    let mut sequences = 0;
    'starters: for (i, s) in sentences.iter().enumerate() {
        if s.chars().count() < 5 || !STARTER_RES.iter().any(|re| re.is_match(s)) {
            continue;
        }
        for next in sentences.iter().skip(i + 1).take(3) {
            if FOLLOWUP_RES.iter().any(|re| re.is_match(next)) {
                score += 0.25;
                sequences += 1;
                if sequences >= 3 {
                    break 'starters;
                }
                break;
            }
        }
    }
    if sentences.len() >= 4 {
        let half = sentences.len() / 2;
        let (mut first, mut second) = (0, 0);
        for (i, s) in sentences.iter().enumerate() {
            let l = s.to_lowercase();
            let n = KEYWORD_RES.iter().filter(|(re, _)| re.is_match(&l)).count();
            if i < half { first += n } else { second += n }
        }
        if second > first {
            score += 0.1;
        }
    }
    score.clamp(0.0, 1.0)
}

/// Python `re.split(r'(?<=[.!?])\s+' + lookahead, text)`: splits at each whitespace run that
/// follows `.`, `!` or `?` (and, with a lookahead, precedes a character it accepts).
fn split_after_punctuation(text: &str, accept_next: impl Fn(char) -> bool) -> Vec<&str> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut out = Vec::new();
    let (mut start, mut i) = (0, 0);
    while i < chars.len() {
        let after_punct = i > 0 && matches!(chars[i - 1].1, '.' | '!' | '?');
        if after_punct && python::is_space(chars[i].1) {
            let mut j = i;
            while j < chars.len() && python::is_space(chars[j].1) {
                j += 1;
            }
            // Greedy \s+ gives back characters until the lookahead holds.
            let end = (i + 1..=j).rev().find(|&e| {
                chars.get(e).is_some_and(|&(_, c)| accept_next(c)) || (e == chars.len() && accept_next('\0'))
            });
            if let Some(e) = end {
                out.push(&text[start..chars[i].0]);
                start = chars.get(e).map_or(text.len(), |&(b, _)| b);
                i = e;
                continue;
            }
        }
        i += 1;
    }
    out.push(&text[start..]);
    out
}

#[rustfmt::skip]
const INITIAL_REFS: [&str; 10] = [
    r"the image shows", r"according to the image", r"the image illustrates", r"the image depicts", r"in the image",
    r"from the image", r"the diagram", r"the figure", r"as shown", r"is displayed",
];
const REVISITS: [&str; 12] = [
    r"looking (at|back at) the image again",
    r"upon (further|closer) inspection",
    r"revisiting the (image|figure|diagram)",
    r"taking another look",
    r"on second thought.{1,30}(image|figure|diagram)",
    r"wait.{1,30}(image|figure|diagram)",
    r"but.{1,30}(image|figure|diagram)",
    r"checking the (image|figure|diagram) again",
    r"let me look at the (image|figure|diagram) again",
    r"the (image|figure|diagram).{1,30}shows",
    r"no, the (image|figure|diagram)",
    r"if I look at the (image|figure|diagram) more carefully",
];
#[rustfmt::skip]
const CORRECTIONS: [&str; 12] = [
    r"I (see|notice|realize|observe) that", r"actually", r"in fact", r"I was (wrong|mistaken|incorrect)",
    r"contrary to", r"unlike what I thought", r"(now|then) I (can|see|understand)", r"this (contradicts|confirms)",
    r"(now|then) it (is clear|becomes clear)", r"I missed that", r"I didn't notice", r"I overlooked",
];
static INITIAL_RES: LazyLock<Vec<Regex>> = LazyLock::new(|| compile_ci(&INITIAL_REFS));
static REVISIT_RES: LazyLock<Vec<Regex>> = LazyLock::new(|| compile_ci(&REVISITS));
static CORRECTION_RES: LazyLock<Vec<Regex>> = LazyLock::new(|| compile_ci(&CORRECTIONS));

fn count_all(res: &[Regex], text: &str) -> usize {
    res.iter().map(|re| re.find_iter(text).count()).sum()
}

/// `image_revisit_reward`: `min(0.2·refs, 0.4) + min(0.3·revisits, 0.3) + min(0.3·pairs, 0.3)`,
/// capped at 1, where a pair is a revisit sentence followed by a correction sentence.
pub fn image_revisit(text: &str) -> f64 {
    let refs = count_all(&INITIAL_RES, text) as f64;
    let revisits = count_all(&REVISIT_RES, text) as f64;
    let sentences = split_after_punctuation(text, |_| true);
    let pairs = sentences
        .windows(2)
        .filter(|w| REVISIT_RES.iter().any(|re| re.is_match(w[0])) && CORRECTION_RES.iter().any(|re| re.is_match(w[1])))
        .count() as f64;
    ((0.2 * refs).min(0.4) + (0.3 * revisits).min(0.3) + (0.3 * pairs).min(0.3)).min(1.0)
}

static CIRCULAR_PLAIN: LazyLock<Vec<Regex>> = LazyLock::new(|| {
    compile_ci(&[
        r"But the image (?:displays|illustrates|shows|depicts).*?But the image (?:displays|illustrates|shows|depicts)",
        r"So maybe.*?So maybe",
        r"Wait, but.*?Wait, but",
        r"Wait, maybe.*?Wait, maybe",
    ])
});

/// `repetition_penalty_reward`: `1 − (min(0.5, 0.1·duplicate sentences) + min(0.3, 0.05·repeated
/// 5-grams) + min(0.2, 0.1·circular + 0.2·maybe-but-wait))`, floored at 0.
pub fn repetition(text: &str) -> f64 {
    fn duplicates(items: impl Iterator<Item = String>) -> usize {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for item in items {
            *counts.entry(item).or_insert(0) += 1;
        }
        counts.values().map(|c| c - 1).sum()
    }
    let sentences = duplicates(split_after_punctuation(text, |_| true).into_iter().map(str::to_string));
    let words: Vec<&str> = text.split(python::is_space).filter(|w| !w.is_empty()).collect();
    let phrases = if words.len() >= 5 { duplicates(words.windows(5).map(|w| w.join(" "))) } else { 0 };
    let lower: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
    let circular = count_all(&CIRCULAR_PLAIN, text)
        + backref::count(&lower, &backref::CIRCULAR_BUT)
        + backref::count(&lower, &backref::CIRCULAR_SO_MAYBE);
    let maybe_but_wait = backref::count(&lower, &backref::MAYBE_BUT_WAIT);
    let penalty = (0.1 * sentences as f64).min(0.5)
        + (0.05 * phrases as f64).min(0.3)
        + (0.1 * circular as f64 + 0.2 * maybe_but_wait as f64).min(0.2);
    (1.0 - penalty).max(0.0)
}

/// A backtracking matcher for the three back-reference patterns of `repetition_penalty_reward`,
/// run on lower-cased text (IGNORECASE) in Python's order: leftmost start, lazy `.*?` shortest
/// first, greedy `\s+` longest first; `re.findall` counts non-overlapping matches.
mod backref {
    use super::HEURISTIC_STEPS;
    use crate::eval::python::is_space;

    #[derive(Clone, Copy)]
    pub enum E {
        /// `(.*?)`, the capture group 1.
        Capture,
        /// `.*?`
        Lazy,
        /// `\s+`
        Ws,
        Lit(&'static str),
        Alt(&'static [&'static str]),
        /// `\1`
        Backref,
    }
    use E::*;

    /// `(.*?)\s+But\s+(?:wait|actually|maybe|perhaps).*?\1`
    pub const CIRCULAR_BUT: [E; 7] =
        [Capture, Ws, Lit("but"), Ws, Alt(&["wait", "actually", "maybe", "perhaps"]), Lazy, Backref];
    /// `(.*?)\s+So\s+maybe\s+(?:.*?)\s+But\s+(?:wait|actually).*?\1`
    pub const CIRCULAR_SO_MAYBE: [E; 13] = [
        Capture,
        Ws,
        Lit("so"),
        Ws,
        Lit("maybe"),
        Ws,
        Lazy,
        Ws,
        Lit("but"),
        Ws,
        Alt(&["wait", "actually"]),
        Lazy,
        Backref,
    ];
    /// `maybe\s+(.*?)\.\s+But\s+(?:wait|actually).*?maybe\s+\1`
    pub const MAYBE_BUT_WAIT: [E; 12] = [
        Lit("maybe"),
        Ws,
        Capture,
        Lit("."),
        Ws,
        Lit("but"),
        Ws,
        Alt(&["wait", "actually"]),
        Lazy,
        Lit("maybe"),
        Ws,
        Backref,
    ];

    struct M<'a> {
        s: &'a [char],
        pat: &'a [E],
        cap: (usize, usize),
        steps: u64,
    }

    impl M<'_> {
        fn lit(&self, at: usize, lit: &str) -> Option<usize> {
            let mut i = at;
            for c in lit.chars() {
                if self.s.get(i) != Some(&c) {
                    return None;
                }
                i += 1;
            }
            Some(i)
        }

        /// The end of a match of `pat[k..]` at `at`, or `None` (also once the steps run out).
        fn run(&mut self, k: usize, at: usize) -> Option<usize> {
            self.steps += 1;
            if self.steps > HEURISTIC_STEPS {
                return None;
            }
            let Some(&e) = self.pat.get(k) else {
                return Some(at);
            };
            match e {
                Lit(l) => self.lit(at, l).and_then(|i| self.run(k + 1, i)),
                Alt(options) => options.iter().find_map(|l| self.lit(at, l).and_then(|i| self.run(k + 1, i))),
                Ws => {
                    let mut end = at;
                    while self.s.get(end).is_some_and(|&c| is_space(c)) {
                        end += 1;
                    }
                    (at + 1..=end).rev().find_map(|i| self.run(k + 1, i))
                }
                Lazy | Capture => {
                    let mut i = at;
                    loop {
                        if let Capture = e {
                            self.cap = (at, i);
                        }
                        if let Some(end) = self.run(k + 1, i) {
                            return Some(end);
                        }
                        if self.steps > HEURISTIC_STEPS || i >= self.s.len() || self.s[i] == '\n' {
                            return None;
                        }
                        i += 1;
                    }
                }
                Backref => {
                    let (a, b) = self.cap;
                    let n = b - a;
                    (self.s.get(at..at + n) == self.s.get(a..b)).then_some(at + n).and_then(|i| self.run(k + 1, i))
                }
            }
        }
    }

    /// `len(re.findall(pattern, text, re.IGNORECASE))` for lower-cased `text`.
    pub fn count(s: &[char], pat: &[E]) -> usize {
        let mut m = M { s, pat, cap: (0, 0), steps: 0 };
        let (mut n, mut pos) = (0, 0);
        while pos <= s.len() && m.steps <= HEURISTIC_STEPS {
            match (pos..=s.len()).find_map(|p| m.run(0, p).map(|end| (p, end))) {
                Some((p, end)) => {
                    n += 1;
                    pos = if end > p { end } else { end + 1 };
                }
                None => break,
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFLECTIVE: &str = "<think>The image shows a triangle. Wait, the figure is a square. Actually, I see that it \
        has four sides. Let me check the diagram again. That is wrong. The correct answer is 4. But the image shows \
        more. But the image shows a square.</think> The answer is \\boxed{4}";
    const CIRCULAR: &str = "<think>I think x = 2. But wait, maybe x = 3. So maybe x = 2. But wait, x = 2. Hmm, I'm \
        not sure. Wait, but it is. Wait, but why.</think>\\boxed{2}";

    #[test]
    fn vision_r1_hard_needs_format_and_answer() {
        let ok = "<think>2+3</think>\n<answer> Final Answer: 5 </answer>";
        assert_eq!(Reward::VisionR1Hard.score(ok, " 5 ", 10).overall, 1.0);
        let wrong = "<think>2+3</think><answer>6</answer>";
        assert_eq!(Reward::VisionR1Hard.score(wrong, "5", 10).overall, 0.0);
        let unformatted = "<answer>5</answer>";
        let s = Reward::VisionR1Hard.score(unformatted, "5", 10);
        assert_eq!((s.overall, s.accuracy, s.format), (0.0, Some(1.0), Some(0.0)));
        let truncated = "<think>2+3</think><answer>5";
        assert_eq!(Reward::VisionR1Hard.score(truncated, "5", 10).overall, 0.0);
        let trailing = "<think>a</think><answer>5</answer> extra";
        assert_eq!(Reward::VisionR1Hard.score(trailing, "5", 10).overall, 0.0);
    }

    #[test]
    fn r1v_weights_format_and_accuracy_equally() {
        assert_eq!(Reward::R1V.score("<think>a</think> <answer>1/2</answer>", "0.5", 1).overall, 1.0);
        assert_eq!(Reward::R1V.score("<think>a</think><answer>3</answer>", "0.5", 1).overall, 0.5);
        // No <answer>: the whole response is graded.
        assert_eq!(Reward::R1V.score(" 0.5 ", "0.5", 1).overall, 0.5);
        // A multi-line answer is not found by the search (no DOTALL): the whole response is graded.
        assert_eq!(Reward::R1V.score("<think>a</think><answer>\n5</answer>", "5", 1).overall, 0.5);
    }

    #[test]
    fn boxed_accuracy_uses_the_last_balanced_box() {
        assert_eq!(Reward::BoxedAccuracy.score("\\boxed{1} so \\boxed{\\frac{1}{2}}", "0.5", 1).overall, 1.0);
        assert_eq!(Reward::BoxedAccuracy.score("no box", "None", 1).overall, 0.0);
    }

    #[test]
    fn efficient_length_matches_the_spec_vectors() {
        let r = Reward::EfficientLength(EfficientLength::PAPER);
        for (len, want) in [(8092, 1.0), (8192, 0.5), (8292, 0.0), (0, 1.0), (100_000, 0.0), (8142, 0.75)] {
            assert!((r.score("", "", len).overall - want).abs() < 1e-12, "{len}");
        }
    }

    /// Expected values from the released `examples/reward_function/math.py` (Revisual-R1 802f5c2).
    #[test]
    fn revisual_heuristics_match_the_released_code() {
        let cases: [(&str, [f64; 3]); 7] = [
            (REFLECTIVE, [0.82, 1.0, 0.9]),
            (CIRCULAR, [0.465, 0.0, 0.75]),
            ("short", [0.0, 0.0, 1.0]),
            (
                "maybe it is five. But wait, the value is large so maybe it is five. The same sentence. The same \
                 sentence. The same sentence.",
                [0.145, 0.0, 0.5],
            ),
            ("x is one But wait it is x is one. a b c d e a b c d e a b c d e", [0.1, 0.0, 0.6]),
            (
                "I made an error in step 2. Upon checking, I see the result. The error was that I forgot the sign. \
                 This contradicts the claim. Let me reconsider. The correct value is 7. Hold on, is that right? \
                 Maybe. Perhaps. However, the answer is 7. Double-check: verify 7. Alternatively 7.",
                [1.0, 0.0, 1.0],
            ),
            (
                "Looking at the image again. Now I can see that the angle is 30. In the image there are two lines. \
                 From the image it is clear.\n\nThe diagram! No, the figure shows 3? It is displayed.",
                [0.0, 1.0, 1.0],
            ),
        ];
        for (text, [sc, iv, rep]) in cases {
            let got = [self_critic(text), image_revisit(text), repetition(text)];
            for (g, w) in got.iter().zip([sc, iv, rep]) {
                assert!((g - w).abs() < 1e-9, "{text:?}: got {got:?}, want {:?}", [sc, iv, rep]);
            }
        }
    }

    #[test]
    fn revisual_code_reward_combines_as_released() {
        let on = Reward::RevisualCode { efficient_length: Some(EfficientLength::PAPER) };
        let off = Reward::RevisualCode { efficient_length: None };
        assert!((on.score(REFLECTIVE, "4", 100).overall - 0.986).abs() < 1e-9);
        assert!((on.score(CIRCULAR, "3", 8250).overall - 0.07125).abs() < 1e-9);
        let s = off.score(REFLECTIVE, "4", 100);
        assert!((s.overall - 0.936).abs() < 1e-9);
        assert_eq!((s.accuracy, s.format), (Some(1.0), Some(1.0)));
    }

    #[test]
    fn rewards_are_bounded_on_random_text() {
        use rand::{Rng, SeedableRng};
        const PIECES: [&str; 16] = [
            "<think>",
            "</think>",
            "<answer>",
            "</answer>",
            "\\boxed{",
            "}",
            "Final Answer:",
            " But wait, ",
            "maybe ",
            "the image shows ",
            ". ",
            "\n",
            "5",
            "1/2",
            "So maybe ",
            "x",
        ];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let rewards = [
            Reward::VisionR1Hard,
            Reward::R1V,
            Reward::BoxedAccuracy,
            Reward::EfficientLength(EfficientLength::PAPER),
            Reward::RevisualCode { efficient_length: Some(EfficientLength::PAPER) },
        ];
        for _ in 0..300 {
            let n = rng.random_range(0..40);
            let text: String = (0..n).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect();
            let len = rng.random_range(0..10_000);
            for r in rewards {
                let s = r.score(&text, "5", len);
                assert!((0.0..=1.0).contains(&s.overall), "{r:?} on {text:?}: {s:?}");
            }
        }
    }
}
