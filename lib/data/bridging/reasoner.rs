//! The text-only "R1" stage of Vision-R1's modality bridging (papers_spec §1.2 step 3): from the
//! question, the description and the choices only ([`ReasonerInput`]; it never sees the image, the
//! ground-truth trace or the answer), it reads the facts out of the description (`parse.rs`) and
//! reasons step by step in R1-style prose ("Okay, let's see. ..."), talking about "the description"
//! as R1 does (the filter's word replacement rewrites that).
//!
//! Realism knobs ([`Knobs`]), all drawn per problem from the seeded stream, in a fixed order:
//! - with probability `p_slip` one arithmetic or counting step is off by 1 or 2; with probability
//!   `p_catch` a reflection ("Wait, let me check that again. ...") fixes it at once, otherwise the
//!   wrong value propagates to the final answer;
//! - "Hmm" detours (`p_hmm`), an "Alternatively" cross-check of the last step (`p_alternatively`,
//!   only while no wrong value is live), a closing check against the description (`p_verify`);
//! - how it counts shapes (`p_positions`): listing where the counted shapes are ("The red shapes are at (1,2),
//!   (3,4): 2.") or giving the count alone ("There are 2 red shapes."). A tiny model can count image tokens
//!   by their content but cannot look up a cell by its (row, column) (issue 6 note), so the embedded chain
//!   sets 0;
//! - failure modes the filter exists for: a last sentence that states another answer than the final
//!   answer (`p_unfaithful`), an almost empty reasoning (`p_terse`);
//! - when the description lacks a needed value (Caption mode) the reasoner says it cannot confirm
//!   it and either gives up (`p_refuse`, empty final answer) or guesses plausible values from the
//!   stream and reasons on them (usually wrong). It never reads a value from anywhere else.
//!
//! Deviation: per the author (Osilly/Vision-R1#17) R1's prompt also held the answer; here it does
//! not, so the filter's "final answer matches GT" check is a real test of the reasoning.
use anyhow::Result;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::parse::{COLORS, Facts, KINDS, Shape, Task, parse_facts, parse_question};
use super::solve::solve;

/// Probabilities of the reasoner's behaviours (see the module header).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Knobs {
    pub p_slip: f64,
    pub p_catch: f64,
    pub p_hmm: f64,
    pub p_alternatively: f64,
    pub p_verify: f64,
    pub p_unfaithful: f64,
    pub p_terse: f64,
    pub p_refuse: f64,
    /// Probability of listing the positions of the shapes it counts (see the module header).
    #[serde(default = "default_p_positions")]
    pub p_positions: f64,
}

fn default_p_positions() -> f64 {
    1.0
}

impl Default for Knobs {
    fn default() -> Self {
        Knobs {
            p_slip: 0.3,
            p_catch: 0.6,
            p_hmm: 0.3,
            p_alternatively: 0.25,
            p_verify: 0.3,
            p_unfaithful: 0.03,
            p_terse: 0.02,
            p_refuse: 0.3,
            p_positions: 1.0,
        }
    }
}

impl Knobs {
    /// A reasoner that never slips, detours or fails (for tests of the parsers and solvers).
    pub const PERFECT: Knobs = Knobs {
        p_slip: 0.0,
        p_catch: 0.0,
        p_hmm: 0.0,
        p_alternatively: 0.0,
        p_verify: 0.0,
        p_unfaithful: 0.0,
        p_terse: 0.0,
        p_refuse: 0.0,
        p_positions: 1.0,
    };
}

/// Everything the reasoner is given.
#[derive(Debug, Clone, Copy)]
pub struct ReasonerInput<'a> {
    /// The question without choices.
    pub question: &'a str,
    /// The text standing in for the image (a description, a caption, or a text twin's facts).
    pub description: &'a str,
    pub choices: &'a [String],
}

/// What the reasoner wrote: the thinking and the answer it gives after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawOutput {
    pub reasoning: String,
    /// An integer or a choice letter; empty when it gave up.
    pub answer: String,
    /// A step was off.
    pub slipped: bool,
    /// ... and a reflection fixed it.
    pub caught: bool,
    /// A needed value was missing from the description.
    pub guessed: bool,
}

/// A slip drawn for this problem.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slip {
    /// Where, as a fraction of the problem's steps.
    pub at: f64,
    pub delta: i64,
    pub catch: bool,
    pub style: usize,
}

/// Every random decision of one reasoning, drawn before it starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub opener: usize,
    pub hmm: Option<usize>,
    pub slip: Option<Slip>,
    pub alternatively: bool,
    pub verify: Option<usize>,
    pub unfaithful: bool,
    pub terse: bool,
    pub refuse: bool,
    /// The choice picked when the computed one is not among the choices.
    pub fallback: usize,
    /// List the cells of counted shapes.
    pub positions: bool,
}

impl Plan {
    /// Draws every decision in a fixed order (all of them, whatever the outcome, so one knob never
    /// shifts the draws of another).
    pub(crate) fn draw(k: &Knobs, rng: &mut ChaCha8Rng) -> Plan {
        let opener = rng.random_range(0..3);
        let hmm = rng.random_bool(k.p_hmm);
        let hmm_style = rng.random_range(0..HMM.len());
        let slip = rng.random_bool(k.p_slip);
        let at = rng.random::<f64>();
        let delta = [-2, -1, 1, 2][rng.random_range(0..4usize)];
        let catch = rng.random_bool(k.p_catch);
        let style = rng.random_range(0..3);
        let alternatively = rng.random_bool(k.p_alternatively);
        let verify = rng.random_bool(k.p_verify);
        let verify_style = rng.random_range(0..2);
        Plan {
            opener,
            hmm: hmm.then_some(hmm_style),
            slip: slip.then_some(Slip { at, delta, catch, style }),
            alternatively,
            verify: verify.then_some(verify_style),
            unfaithful: rng.random_bool(k.p_unfaithful),
            terse: rng.random_bool(k.p_terse),
            refuse: rng.random_bool(k.p_refuse),
            fallback: rng.random_range(0..4),
            // Drawn last, so data built before this knob existed keeps its draws.
            positions: rng.random_bool(k.p_positions),
        }
    }
}

/// Reasons about `input` with the decisions drawn from `rng` (see the module header).
pub fn reason(input: &ReasonerInput, knobs: &Knobs, rng: &mut ChaCha8Rng) -> Result<RawOutput> {
    let task = parse_question(input.question)?;
    let plan = Plan::draw(knobs, rng);
    let mut facts = parse_facts(input.description);
    let mut pre = vec![opener(plan.opener, &task)];
    let guessed = !task.answerable(&facts);
    if let Some(h) = plan.hmm {
        // "everything I need should be in the description" only while it is.
        pre.push(HMM[if guessed && h == 2 { 0 } else { h }].to_string());
    }
    if guessed {
        pre.push(format!("Hmm, the description doesn't give {}, so I can't confirm them.", task.needs()));
        if plan.refuse {
            pre.push("Without those values I can't determine the answer from the description alone.".into());
            pre.push("So I cannot give a definite answer.".into());
            let reasoning = pre.join(" ");
            return Ok(RawOutput { reasoning, answer: String::new(), slipped: false, caught: false, guessed });
        }
        let (guess, said) = guess_facts(&task, &facts, rng);
        facts = guess;
        pre.push(format!("I'll have to assume plausible values: {said}."));
    }

    // A dry run counts the steps a slip can hit, then the real run places it.
    let mut dry = Writer::new(&plan, None, usize::MAX, guessed);
    solve(&task, &facts, input.choices, &mut dry);
    let n = dry.steps;
    let slip_at = plan.slip.filter(|_| n > 0).map(|s| ((s.at * n as f64) as usize).min(n - 1));
    let mut w = Writer::new(&plan, slip_at, n, guessed);
    let answer = solve(&task, &facts, input.choices, &mut w);

    let mut sentences = pre;
    sentences.append(&mut w.out);
    if let Some(v) = plan.verify.filter(|_| !guessed) {
        sentences.push(VERIFY[v].to_string());
    }
    let stated = if plan.unfaithful { other_answer(&answer, input.choices.len()) } else { answer.clone() };
    sentences.push(format!("So the final answer is {stated}."));
    let reasoning = if plan.terse { format!("The final answer is {answer}.") } else { sentences.join(" ") };
    Ok(RawOutput { reasoning, answer, slipped: w.slipped, caught: w.caught, guessed })
}

const OPENERS: [&str; 3] = ["Okay, let's see.", "Okay, so", "Alright, let me work through this."];
const HMM: [&str; 3] = [
    "Hmm, there are a few steps here, so let me go carefully.",
    "Hmm, let me first make sure I read the question right.",
    "Hmm, everything I need should be in the description.",
];
const VERIFY: [&str; 2] = [
    "Let me check this against the description once more: the numbers I used are the ones described.",
    "Let me double-check by going back to the description: yes, those are the values it gives.",
];

fn opener(i: usize, task: &Task) -> String {
    let goal = match task {
        Task::ShapesColorOrKind { color, kind } => format!("I need to count the shapes that are {color} or {kind}s."),
        Task::ShapesTwiceXPlusY { .. } => "I need X and Y first, then 2X + Y.".to_string(),
        Task::ShapesMostColor => "I need the colour that most shapes have.".to_string(),
        Task::BarsRange => "I need the tallest bar's value minus the shortest bar's value.".to_string(),
        Task::BarsPlusMinus { a, b, c } => format!("I need bar {a} plus bar {b} minus bar {c}."),
        Task::BarsTallerTimes { a } => format!("I need to count the bars taller than bar {a}, then multiply."),
        Task::BarsSecondTallest => "I need the second tallest bar.".to_string(),
        Task::DigitsRowSumTimesOdd { row, col } => {
            format!("I need the sum of row {row} times the number of odd digits in column {col}.")
        }
        Task::DigitsRowMaxMinusColMin { row, col } => {
            format!("I need the largest digit of row {row} minus the smallest digit of column {col}.")
        }
        Task::DigitsCountPlusColSum { digit, col } => {
            format!("I need how often {digit} appears, plus the sum of column {col}.")
        }
        Task::DigitsBestRow => "I need the row with the largest digit sum.".to_string(),
        Task::Hypotenuse => "I need the hypotenuse of the right triangle.".to_string(),
        Task::Area => "I need the area of the right triangle.".to_string(),
        Task::Perimeter => "I need the perimeter of the right triangle.".to_string(),
        Task::SquareMinusTwiceArea => "I need the square on the hypotenuse minus twice the area.".to_string(),
        Task::PerimeterPlusArea => "I need the perimeter plus the area.".to_string(),
    };
    format!("{} {goal}", OPENERS[i % OPENERS.len()])
}

/// Another answer than `answer`, for an unfaithful last sentence.
fn other_answer(answer: &str, n_choices: usize) -> String {
    if let Ok(v) = answer.parse::<i64>() {
        return (v + 1).to_string();
    }
    match answer.bytes().next() {
        Some(b) if b.is_ascii_uppercase() && n_choices > 1 => (b'A' + ((b - b'A' + 1) % n_choices as u8)) as char,
        _ => 'A',
    }
    .to_string()
}

/// Plausible values for what the description left out, and how the reasoner says it.
fn guess_facts(task: &Task, known: &Facts, rng: &mut ChaCha8Rng) -> (Facts, String) {
    let mut f = known.clone();
    match task {
        Task::ShapesColorOrKind { .. } | Task::ShapesTwiceXPlusY { .. } | Task::ShapesMostColor => {
            let n = known.n_shapes.unwrap_or(6).clamp(1, 16);
            let mut cells: Vec<usize> = (0..16).collect();
            cells.shuffle(rng);
            let mut cells = cells[..n].to_vec();
            cells.sort();
            f.shapes = cells
                .iter()
                .map(|&c| Shape {
                    row: c / 4 + 1,
                    col: c % 4 + 1,
                    large: rng.random_bool(0.5),
                    color: COLORS[rng.random_range(0..4)].to_string(),
                    kind: KINDS[rng.random_range(0..3)].to_string(),
                })
                .collect();
            (f, format!("say the {n} shapes are spread over the colours and kinds"))
        }
        Task::BarsRange | Task::BarsPlusMinus { .. } | Task::BarsTallerTimes { .. } | Task::BarsSecondTallest => {
            let mut n = known.n_bars.unwrap_or(4);
            if let Task::BarsPlusMinus { a, b, c } = task {
                n = n.max([a, b, c].iter().map(|l| (**l as u8 - b'A') as usize + 1).max().unwrap_or(1));
            }
            let mut pool: Vec<i64> = (1..=20).collect();
            pool.shuffle(rng);
            f.bars = (0..n.min(20)).map(|i| ((b'A' + i as u8) as char, pool[i])).collect();
            let said: Vec<String> = f.bars.iter().map(|(l, v)| format!("{l} = {v}")).collect();
            (f, format!("say {}", said.join(", ")))
        }
        Task::DigitsRowSumTimesOdd { .. }
        | Task::DigitsRowMaxMinusColMin { .. }
        | Task::DigitsCountPlusColSum { .. }
        | Task::DigitsBestRow => {
            let (rows, cols) = known.dims.unwrap_or((3, 3));
            f.rows = (1..=rows).map(|r| (r, (0..cols).map(|_| rng.random_range(0..10)).collect())).collect();
            let said: Vec<String> = f.rows.iter().map(|(_, d)| join(d, " ")).collect();
            (f, format!("say the rows read {}", said.join(", ")))
        }
        _ => {
            let (a, b) = [(3, 4), (6, 8), (5, 12), (8, 15), (9, 12)][rng.random_range(0..5usize)];
            f.horizontal_leg = Some(a);
            f.vertical_leg = Some(b);
            (f, format!("say the legs are {a} and {b}, a common right triangle"))
        }
    }
}

/// `v` joined by `sep`.
pub(crate) fn join(v: &[i64], sep: &str) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(sep)
}

/// Collects the sentences of the solution and applies the planned slip.
pub(crate) struct Writer<'p> {
    plan: &'p Plan,
    slip_at: Option<usize>,
    /// Steps in the whole solution (from the dry run).
    total: usize,
    /// Steps taken so far.
    pub steps: usize,
    pub out: Vec<String>,
    pub slipped: bool,
    pub caught: bool,
    /// A wrong value is being carried forward.
    wrong_live: bool,
    /// The facts are guesses, not read from the description.
    guessed: bool,
}

const FIXES: [&str; 3] = [
    "Wait, let me check that again: {what} is actually {truth}, not {wrong}.",
    "Wait, that's a mistake: {what} comes to {truth}, not {wrong}.",
    "Hmm, wait. Let me recheck {what}: it is {truth}, not {wrong}.",
];

impl<'p> Writer<'p> {
    pub(crate) fn new(plan: &'p Plan, slip_at: Option<usize>, total: usize, guessed: bool) -> Self {
        Writer {
            plan,
            slip_at,
            total,
            steps: 0,
            out: vec![],
            slipped: false,
            caught: false,
            wrong_live: false,
            guessed,
        }
    }

    /// Where the values come from, as a sentence opener.
    pub(crate) fn source(&self) -> &'static str {
        if self.guessed { "Going with those assumed values" } else { "From the description" }
    }

    pub(crate) fn say(&mut self, s: impl Into<String>) {
        self.out.push(s.into());
    }

    /// Whether counts list the cells of what they count.
    pub(crate) fn lists_positions(&self) -> bool {
        self.plan.positions
    }

    /// Says how positions are written, when they will be.
    pub(crate) fn positions_note(&mut self) {
        if self.plan.positions {
            self.say("I'll write positions as (row, column).");
        }
    }

    /// The plan's fallback choice among `n`.
    pub(crate) fn fallback(&self, n: usize) -> usize {
        self.plan.fallback % n.max(1)
    }

    /// One step whose result may slip: writes `render(value)` and returns the value carried on.
    pub(crate) fn value(&mut self, truth: i64, what: &str, render: impl Fn(i64) -> String) -> i64 {
        let i = self.steps;
        self.steps += 1;
        match self.plan.slip.filter(|_| self.slip_at == Some(i)) {
            Some(slip) => {
                let mut wrong = truth + slip.delta;
                if wrong < 0 {
                    wrong = truth + slip.delta.abs();
                }
                self.slipped = true;
                self.say(render(wrong));
                if slip.catch {
                    self.caught = true;
                    let fix = FIXES[slip.style]
                        .replace("{what}", what)
                        .replace("{truth}", &truth.to_string())
                        .replace("{wrong}", &wrong.to_string());
                    self.say(capitalize(&fix));
                    truth
                } else {
                    self.wrong_live = true;
                    wrong
                }
            }
            None => {
                self.say(render(truth));
                truth
            }
        }
    }

    /// An arithmetic step: "`lead``expr` = v." and, as the last step, maybe a cross-check.
    pub(crate) fn calc(&mut self, lead: &str, e: Expr) -> i64 {
        let text = e.text();
        let v = self.value(e.value(), &text, |v| format!("{lead}{text} = {v}."));
        if self.steps == self.total && self.plan.alternatively && !self.wrong_live {
            self.say(e.alternatively(v));
        }
        v
    }
}

pub(crate) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// An arithmetic expression over values read or computed before.
#[derive(Debug, Clone)]
pub(crate) enum Expr {
    Sum(Vec<i64>),
    Diff(i64, i64),
    Prod(i64, i64),
    /// a + b − both.
    IncExc(i64, i64, i64),
    /// 2x + y.
    TwicePlus(i64, i64),
    /// a·b / 2.
    HalfProd(i64, i64),
    Square(i64),
    SumSquares(i64, i64),
}

impl Expr {
    pub(crate) fn value(&self) -> i64 {
        match *self {
            Expr::Sum(ref v) => v.iter().sum(),
            Expr::Diff(a, b) => a - b,
            Expr::Prod(a, b) => a * b,
            Expr::IncExc(a, b, c) => a + b - c,
            Expr::TwicePlus(x, y) => 2 * x + y,
            Expr::HalfProd(a, b) => a * b / 2,
            Expr::Square(a) => a * a,
            Expr::SumSquares(a, b) => a * a + b * b,
        }
    }

    pub(crate) fn text(&self) -> String {
        match *self {
            Expr::Sum(ref v) => join(v, " + "),
            Expr::Diff(a, b) => format!("{a} - {b}"),
            Expr::Prod(a, b) => format!("{a} × {b}"),
            Expr::IncExc(a, b, c) => format!("{a} + {b} - {c}"),
            Expr::TwicePlus(x, y) => format!("2 × {x} + {y}"),
            Expr::HalfProd(a, b) => format!("{a} × {b} / 2"),
            Expr::Square(a) => format!("{a}²"),
            Expr::SumSquares(a, b) => format!("{a}² + {b}²"),
        }
    }

    /// A second way to the same value `v`.
    fn alternatively(&self, v: i64) -> String {
        match *self {
            Expr::Sum(ref x) => {
                let rev: Vec<i64> = x.iter().rev().copied().collect();
                format!("Alternatively, adding in the other order, {} = {v}, the same.", join(&rev, " + "))
            }
            Expr::Diff(a, b) => format!("Alternatively, {b} + {v} = {a}, which checks out."),
            Expr::Prod(a, b) => format!("Alternatively, {b} × {a} = {v} as well."),
            Expr::IncExc(a, b, c) => format!("Alternatively, {a} + ({b} - {c}) = {v}, the same."),
            Expr::TwicePlus(x, y) => format!("Alternatively, {x} + {x} + {y} = {v}, the same."),
            Expr::HalfProd(a, b) => format!("Alternatively, {a} × {b} = {}, and half of that is {v}.", a * b),
            Expr::Square(a) => format!("Alternatively, {a} × {a} = {v}."),
            Expr::SumSquares(a, b) => format!("Alternatively, {} + {} = {v}.", a * a, b * b),
        }
    }
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;

    use super::*;
    use crate::data::synthetic::{Config, Family, generate};
    use crate::rl::grader::grade_answer;

    #[test]
    fn a_perfect_reasoner_on_full_facts_is_always_right() {
        for f in Family::ALL {
            for level in 1..=3 {
                for i in 0..30 {
                    let p = generate(f, &Config { seed: 4, level, size: 112 }, i).unwrap();
                    let d = format!("{} {}", p.scene, p.trace.facts.join(" "));
                    let input = ReasonerInput { question: &p.question, description: &d, choices: &p.choices };
                    let out = reason(&input, &Knobs::PERFECT, &mut ChaCha8Rng::seed_from_u64(i)).unwrap();
                    assert!(
                        grade_answer(&out.answer, &p.answer),
                        "{}: {} vs {}\n{}",
                        p.id,
                        out.answer,
                        p.answer,
                        out.reasoning
                    );
                    assert!(
                        !out.slipped && !out.guessed && OPENERS.iter().any(|o| out.reasoning.starts_with(o)),
                        "{}",
                        out.reasoning
                    );
                }
            }
        }
    }

    #[test]
    fn slips_are_caught_or_propagate() {
        let p = (0..)
            .map(|i| generate(Family::Bars, &Config { seed: 2, level: 2, size: 112 }, i).unwrap())
            .find(|p| p.choices.is_empty())
            .unwrap();
        let d = format!("{} {}", p.scene, p.trace.facts.join(" "));
        let input = ReasonerInput { question: &p.question, description: &d, choices: &p.choices };
        let always = Knobs { p_slip: 1.0, p_catch: 1.0, ..Knobs::PERFECT };
        let caught = reason(&input, &always, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert!(caught.slipped && caught.caught && grade_answer(&caught.answer, &p.answer), "{}", caught.reasoning);
        assert!(caught.reasoning.contains("Wait") || caught.reasoning.contains("recheck"), "{}", caught.reasoning);
        let missed = reason(&input, &Knobs { p_catch: 0.0, ..always }, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert!(missed.slipped && !missed.caught && !grade_answer(&missed.answer, &p.answer), "{}", missed.reasoning);
    }

    #[test]
    fn missing_values_make_it_guess_or_give_up() {
        let p = generate(Family::Geometry, &Config { seed: 2, level: 1, size: 112 }, 0).unwrap();
        let input = ReasonerInput { question: &p.question, description: &p.scene, choices: &p.choices };
        let gave_up =
            reason(&input, &Knobs { p_refuse: 1.0, ..Knobs::PERFECT }, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert!(gave_up.guessed && gave_up.answer.is_empty() && gave_up.reasoning.contains("can't confirm"));
        let guess = reason(&input, &Knobs::PERFECT, &mut ChaCha8Rng::seed_from_u64(0)).unwrap();
        assert!(guess.guessed && guess.reasoning.contains("assume") && !guess.answer.is_empty(), "{}", guess.reasoning);
        assert_eq!(other_answer("12", 0), "13");
        assert_eq!(other_answer("D", 4), "A");
    }
}
