//! What the text-only reasoner can read: the question's intent ([`Task`]) from its wording and the
//! facts ([`Facts`]) from a description's sentences. The parsers know the sentence formats the
//! synthetic families emit (`data::synthetic`: one sentence per visible fact) and the rewordings the
//! describer applies (`describer.rs`), nothing else; a fact the text does not state stays unknown.
//!
//! This stands in for DeepSeek-R1 understanding the prompt (papers_spec §1.2 step 3). Deviation: a
//! question outside the synthetic templates is an error, where R1 would still try.
use std::sync::LazyLock;

use anyhow::{Result, bail};
use regex::Regex;

/// The colours and kinds of the shapes family, as words.
pub const COLORS: [&str; 4] = ["red", "green", "blue", "yellow"];
pub const KINDS: [&str; 3] = ["circle", "square", "triangle"];

/// What a question asks, recognised from its wording.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// Shapes that have colour `color` or kind `kind` (or both).
    ShapesColorOrKind {
        color: String,
        kind: String,
    },
    /// 2X + Y, X = shapes of a size that are not `color`, Y = shapes of `kind`.
    ShapesTwiceXPlusY {
        large: bool,
        color: String,
        kind: String,
    },
    /// The most frequent colour (multiple choice).
    ShapesMostColor,
    /// Tallest minus shortest bar.
    BarsRange,
    /// Bar `a` plus bar `b` minus bar `c`.
    BarsPlusMinus {
        a: char,
        b: char,
        c: char,
    },
    /// Bars taller than `a`, times the value of `a`.
    BarsTallerTimes {
        a: char,
    },
    /// The second tallest bar (multiple choice).
    BarsSecondTallest,
    /// Sum of row `row` times the odd digits of column `col` (1-based).
    DigitsRowSumTimesOdd {
        row: usize,
        col: usize,
    },
    /// Largest digit of row `row` minus smallest digit of column `col`.
    DigitsRowMaxMinusColMin {
        row: usize,
        col: usize,
    },
    /// Occurrences of `digit` plus the sum of column `col`.
    DigitsCountPlusColSum {
        digit: i64,
        col: usize,
    },
    /// The row with the largest digit sum (multiple choice).
    DigitsBestRow,
    Hypotenuse,
    /// The area, as a number or (with choices) as multiple choice.
    Area,
    Perimeter,
    /// The square on the hypotenuse minus twice the area.
    SquareMinusTwiceArea,
    PerimeterPlusArea,
}

fn re(p: &str) -> Regex {
    Regex::new(p).expect("valid regex")
}

static Q_COLOR_OR_KIND: LazyLock<Regex> =
    LazyLock::new(|| re(r"^How many shapes are (\w+) or (circle|square|triangle)s \(or both\)\?$"));
static Q_TWICE_X: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^Let X be the number of (small|large) shapes that are not (\w+) and Y the number of (circle|square|triangle)s\. What is 2X \+ Y\?$",
    )
});
static Q_BARS_PM: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^What is the value of bar ([A-Z]) plus the value of bar ([A-Z]), minus the value of bar ([A-Z])\?$")
});
static Q_BARS_TALLER: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^How many bars are taller than bar ([A-Z])\? Multiply that count by the value of bar [A-Z]\.$")
});
static Q_ROW_ODD: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^What is the sum of the digits in row (\d+) multiplied by the number of odd digits in column (\d+)\?$")
});
static Q_MAX_MIN: LazyLock<Regex> =
    LazyLock::new(|| re(r"^What is the largest digit in row (\d+) minus the smallest digit in column (\d+)\?$"));
static Q_COUNT_SUM: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^How many times does the digit (\d) appear in the grid\? Add the sum of the digits in column (\d+)\.$")
});

/// Recognises the question (without choices).
pub fn parse_question(q: &str) -> Result<Task> {
    let num = |s: &str| s.parse::<usize>().expect("matched digits");
    let ch = |s: &str| s.chars().next().expect("matched a letter");
    if let Some(c) = Q_COLOR_OR_KIND.captures(q) {
        return Ok(Task::ShapesColorOrKind { color: c[1].to_string(), kind: c[2].to_string() });
    }
    if let Some(c) = Q_TWICE_X.captures(q) {
        return Ok(Task::ShapesTwiceXPlusY {
            large: &c[1] == "large",
            color: c[2].to_string(),
            kind: c[3].to_string(),
        });
    }
    if let Some(c) = Q_BARS_PM.captures(q) {
        return Ok(Task::BarsPlusMinus { a: ch(&c[1]), b: ch(&c[2]), c: ch(&c[3]) });
    }
    if let Some(c) = Q_BARS_TALLER.captures(q) {
        return Ok(Task::BarsTallerTimes { a: ch(&c[1]) });
    }
    if let Some(c) = Q_ROW_ODD.captures(q) {
        return Ok(Task::DigitsRowSumTimesOdd { row: num(&c[1]), col: num(&c[2]) });
    }
    if let Some(c) = Q_MAX_MIN.captures(q) {
        return Ok(Task::DigitsRowMaxMinusColMin { row: num(&c[1]), col: num(&c[2]) });
    }
    if let Some(c) = Q_COUNT_SUM.captures(q) {
        return Ok(Task::DigitsCountPlusColSum { digit: num(&c[1]) as i64, col: num(&c[2]) });
    }
    Ok(match q {
        "Which colour do the most shapes have?" => Task::ShapesMostColor,
        "What is the difference between the value of the tallest bar and the value of the shortest bar?" => {
            Task::BarsRange
        }
        "Which bar is the second tallest?" => Task::BarsSecondTallest,
        "Which row has the largest sum of digits?" => Task::DigitsBestRow,
        "How long is the hypotenuse of the right triangle?" => Task::Hypotenuse,
        "What is the area of the right triangle?" => Task::Area,
        "What is the perimeter of the right triangle?" => Task::Perimeter,
        "What is the perimeter of the right triangle plus its area?" => Task::PerimeterPlusArea,
        _ if q.starts_with("A square is drawn on the hypotenuse") && q.ends_with("twice the area of the triangle?") => {
            Task::SquareMinusTwiceArea
        }
        _ => bail!("the reasoner does not know the question {q:?}: it reads only the synthetic task templates"),
    })
}

/// One shape read from a description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    pub row: usize,
    pub col: usize,
    pub large: bool,
    pub color: String,
    pub kind: String,
}

/// Everything a description states, in the order stated; what it does not state stays empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub shapes: Vec<Shape>,
    /// "7 shapes": how many shapes the scene has.
    pub n_shapes: Option<usize>,
    /// Bar letter and value.
    pub bars: Vec<(char, i64)>,
    /// "5 bars labelled A to E".
    pub n_bars: Option<usize>,
    /// Row number (1-based) and its digits.
    pub rows: Vec<(usize, Vec<i64>)>,
    /// "3 rows and 4 columns".
    pub dims: Option<(usize, usize)>,
    pub horizontal_leg: Option<i64>,
    pub vertical_leg: Option<i64>,
}

static F_SHAPE: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"(?i)\b(?:in|at) row (\d+), column (\d+)(?: there is| sits| lies| we see)? an? (small|large) (red|green|blue|yellow) (circle|square|triangle)",
    )
});
static F_N_SHAPES: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d+) shapes\b"));
static F_BAR: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[Bb]ar ([A-Z]) (?:has value|reaches|is labelled|has the value) (-?\d+)"));
static F_N_BARS: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d+) bars labelled A to ([A-Z])\b"));
static F_ROW: LazyLock<Regex> =
    LazyLock::new(|| re(r"\b[Rr]ow (\d+) (?:reads|contains the digits|holds) ((?:\d )*\d)\b"));
static F_DIMS: LazyLock<Regex> = LazyLock::new(|| re(r"\b(\d+) rows and (\d+) columns\b"));
static F_LEG: LazyLock<Regex> =
    LazyLock::new(|| re(r"(?i)\b(horizontal|vertical) leg (?:is labelled|is marked|measures|has length) (\d+)"));

/// Reads every fact the text states (see the module header for the formats).
pub fn parse_facts(text: &str) -> Facts {
    let num = |s: &str| s.parse::<i64>().unwrap_or(0);
    let mut f = Facts::default();
    for c in F_SHAPE.captures_iter(text) {
        f.shapes.push(Shape {
            row: num(&c[1]) as usize,
            col: num(&c[2]) as usize,
            large: c[3].eq_ignore_ascii_case("large"),
            color: c[4].to_lowercase(),
            kind: c[5].to_lowercase(),
        });
    }
    f.n_shapes = F_N_SHAPES.captures(text).map(|c| num(&c[1]) as usize);
    for c in F_BAR.captures_iter(text) {
        let letter = c[1].chars().next().expect("one letter");
        if !f.bars.iter().any(|b| b.0 == letter) {
            f.bars.push((letter, num(&c[2])));
        }
    }
    f.bars.sort();
    f.n_bars = F_N_BARS.captures(text).map(|c| num(&c[1]) as usize);
    for c in F_ROW.captures_iter(text) {
        let r = num(&c[1]) as usize;
        if !f.rows.iter().any(|x| x.0 == r) {
            f.rows.push((r, c[2].split(' ').map(num).collect()));
        }
    }
    f.rows.sort();
    f.dims = F_DIMS.captures(text).map(|c| (num(&c[1]) as usize, num(&c[2]) as usize));
    for c in F_LEG.captures_iter(text) {
        let v = Some(num(&c[2]));
        if c[1].eq_ignore_ascii_case("horizontal") {
            f.horizontal_leg = v;
        } else {
            f.vertical_leg = v;
        }
    }
    f
}

impl Task {
    /// Whether `facts` hold every value this task needs.
    pub fn answerable(&self, facts: &Facts) -> bool {
        match self {
            Task::ShapesColorOrKind { .. } | Task::ShapesTwiceXPlusY { .. } | Task::ShapesMostColor => {
                !facts.shapes.is_empty() && facts.n_shapes.is_none_or(|n| n == facts.shapes.len())
            }
            Task::BarsRange | Task::BarsTallerTimes { .. } | Task::BarsSecondTallest => {
                facts.bars.len() >= 2 && facts.n_bars.is_none_or(|n| n == facts.bars.len())
            }
            Task::BarsPlusMinus { a, b, c } => [a, b, c].iter().all(|l| facts.bars.iter().any(|x| x.0 == **l)),
            Task::DigitsRowSumTimesOdd { .. }
            | Task::DigitsRowMaxMinusColMin { .. }
            | Task::DigitsCountPlusColSum { .. }
            | Task::DigitsBestRow => {
                let width = facts.rows.first().map_or(0, |r| r.1.len());
                !facts.rows.is_empty()
                    && facts.rows.iter().all(|r| r.1.len() == width)
                    && facts.dims.is_none_or(|(r, c)| r == facts.rows.len() && c == width)
            }
            _ => facts.horizontal_leg.is_some() && facts.vertical_leg.is_some(),
        }
    }

    /// What is missing when the task is not answerable, in words ("the value of each bar").
    pub fn needs(&self) -> &'static str {
        match self {
            Task::ShapesColorOrKind { .. } | Task::ShapesTwiceXPlusY { .. } | Task::ShapesMostColor => {
                "the colour, size and kind of each shape"
            }
            Task::BarsRange | Task::BarsPlusMinus { .. } | Task::BarsTallerTimes { .. } | Task::BarsSecondTallest => {
                "the value of each bar"
            }
            Task::DigitsRowSumTimesOdd { .. }
            | Task::DigitsRowMaxMinusColMin { .. }
            | Task::DigitsCountPlusColSum { .. }
            | Task::DigitsBestRow => "the digits in the grid",
            _ => "the lengths of the legs",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::{Config, Family, generate};

    #[test]
    fn every_template_parses_and_raw_facts_are_complete() {
        for f in Family::ALL {
            for level in 1..=3 {
                for i in 0..40 {
                    let p = generate(f, &Config { seed: 3, level, size: 112 }, i).unwrap();
                    let task = parse_question(&p.question).unwrap();
                    let facts = parse_facts(&format!("{} {}", p.scene, p.trace.facts.join(" ")));
                    assert!(task.answerable(&facts), "{}: {task:?} from {:?}", p.id, p.trace.facts);
                    assert!(!task.answerable(&parse_facts(&p.scene)), "{}: the scene alone has no values", p.id);
                }
            }
        }
    }

    #[test]
    fn reads_reworded_facts() {
        let f = parse_facts(
            "The image shows a bar chart with 2 bars labelled A to B. Bar A reaches 7. Bar B is labelled 12. \
             At row 2, column 3 sits a large blue square. Row 1 holds 3 0 9. The vertical leg measures 40.",
        );
        assert_eq!(f.bars, vec![('A', 7), ('B', 12)]);
        assert_eq!(f.n_bars, Some(2));
        assert_eq!(f.shapes, vec![Shape { row: 2, col: 3, large: true, color: "blue".into(), kind: "square".into() }]);
        assert_eq!(f.rows, vec![(1, vec![3, 0, 9])]);
        assert_eq!((f.horizontal_leg, f.vertical_leg), (None, Some(40)));
        assert!(parse_question("What is the colour of the sky?").is_err());
    }
}
