//! The three heuristics of ReVisual-R1's released reward (`examples/reward_function/math.py` at
//! e0b7db1, papers_spec §2.7), ported regex for regex from Python's `re` with IGNORECASE:
//! `self_critic_reward`, `image_revisit_reward` and `repetition_penalty_reward`. The three
//! patterns with a back-reference run on a small backtracking matcher ([`backref`]) that follows
//! Python's search order under a step budget ([`super::HEURISTIC_STEPS`] per pattern).
use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::HEURISTIC_STEPS;
use crate::eval::python;

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
