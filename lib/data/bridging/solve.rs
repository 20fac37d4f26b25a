//! The reasoner's step-by-step solutions, one per question template ([`Task`]), written from the
//! facts it read (or guessed) and nothing else. Every counting and arithmetic step goes through
//! [`Writer::value`] / [`Writer::calc`], where a planned slip may hit it and where its (possibly
//! wrong) value is carried on to the later steps. Returns the final answer: an integer, or the
//! letter of a choice for multiple choice.
use super::parse::{COLORS, Facts, Shape, Task};
use super::reasoner::{Expr, Writer, capitalize, join};
use crate::data::synthetic::letter;

/// Writes the solution of `task` into `w` and returns the answer.
pub(crate) fn solve(task: &Task, f: &Facts, choices: &[String], w: &mut Writer) -> String {
    match task {
        Task::ShapesColorOrKind { color, kind } => {
            w.positions_note();
            let a = count(w, f, &format!("{color} shapes"), |s| &s.color == color);
            let b = count(w, f, &format!("{kind}s"), |s| &s.kind == kind);
            let both =
                count(w, f, &format!("{color} {kind}s (counted twice)"), |s| &s.color == color && &s.kind == kind);
            w.calc("By inclusion-exclusion, ", Expr::IncExc(a, b, both)).to_string()
        }
        Task::ShapesTwiceXPlusY { large, color, kind } => {
            w.positions_note();
            let size = if *large { "large" } else { "small" };
            let x = count(w, f, &format!("{size} shapes that are not {color} (X)"), |s| {
                s.large == *large && &s.color != color
            });
            let y = count(w, f, &format!("{kind}s (Y)"), |s| &s.kind == kind);
            w.calc("Then 2X + Y = ", Expr::TwicePlus(x, y)).to_string()
        }
        Task::ShapesMostColor => {
            w.say(format!("{}, counting the shapes by colour:", w.source()));
            let counts: Vec<i64> = COLORS
                .iter()
                .map(|c| {
                    let truth = f.shapes.iter().filter(|s| s.color == *c).count() as i64;
                    w.value(truth, &format!("the number of {c} shapes"), |v| format!("{}: {v}.", capitalize(c)))
                })
                .collect();
            let best = argmax(&counts);
            w.say(format!("The most common colour is {}.", COLORS[best]));
            pick(w, choices, COLORS[best])
        }
        Task::BarsRange => {
            read_bars(w, f);
            let (t, s) = (extreme(f, true), extreme(f, false));
            w.say(format!("The tallest is bar {} at {} and the shortest is bar {} at {}.", t.0, t.1, s.0, s.1));
            w.calc("The difference is ", Expr::Diff(t.1, s.1)).to_string()
        }
        Task::BarsPlusMinus { a, b, c } => {
            let (va, vb, vc) = (bar(f, *a), bar(f, *b), bar(f, *c));
            w.say(format!("{}, bar {a} is {va}, bar {b} is {vb} and bar {c} is {vc}.", w.source()));
            let sum = w.calc("First, ", Expr::Sum(vec![va, vb]));
            w.calc("Then ", Expr::Diff(sum, vc)).to_string()
        }
        Task::BarsTallerTimes { a } => {
            read_bars(w, f);
            let va = bar(f, *a);
            let taller: Vec<String> = f.bars.iter().filter(|b| b.1 > va).map(|b| b.0.to_string()).collect();
            let shown = if taller.is_empty() { "none".to_string() } else { taller.join(", ") };
            let n = w.value(taller.len() as i64, &format!("the number of bars above {va}"), |v| {
                format!("Bar {a} is {va}; the bars taller than it are {shown}, so the count is {v}.")
            });
            w.calc("Multiplying, ", Expr::Prod(n, va)).to_string()
        }
        Task::BarsSecondTallest => {
            let mut order = f.bars.clone();
            order.sort_by_key(|b| std::cmp::Reverse(b.1));
            let listed: Vec<String> = order.iter().map(|(l, v)| format!("{l} ({v})")).collect();
            w.say(format!("{}, the bars sorted tallest first are {}.", w.source(), listed.join(", ")));
            let second = order.get(1).or(order.first()).map_or('A', |b| b.0);
            w.say(format!("The second tallest is bar {second}."));
            pick(w, choices, &format!("bar {second}"))
        }
        Task::DigitsRowSumTimesOdd { row, col } => {
            let r = row_of(f, *row);
            let s = w.calc(&format!("Row {row} reads {}, so its sum is ", join(&r, " ")), Expr::Sum(r.clone()));
            let c = col_of(f, *col);
            let odd: Vec<i64> = c.iter().copied().filter(|d| d % 2 == 1).collect();
            let shown = if odd.is_empty() { "none".to_string() } else { join(&odd, ", ") };
            let n = w.value(odd.len() as i64, &format!("the odd digits of column {col}"), |v| {
                format!("Column {col} reads {}; its odd digits are {shown}, so the count is {v}.", join(&c, " "))
            });
            w.calc("Multiplying, ", Expr::Prod(s, n)).to_string()
        }
        Task::DigitsRowMaxMinusColMin { row, col } => {
            let (r, c) = (row_of(f, *row), col_of(f, *col));
            let mx = r.iter().copied().max().unwrap_or(0);
            let mn = c.iter().copied().min().unwrap_or(0);
            w.say(format!("Row {row} reads {}, so its largest digit is {mx}.", join(&r, " ")));
            w.say(format!("Column {col} reads {}, so its smallest digit is {mn}.", join(&c, " ")));
            w.calc("The difference is ", Expr::Diff(mx, mn)).to_string()
        }
        Task::DigitsCountPlusColSum { digit, col } => {
            let truth = f.rows.iter().flat_map(|r| &r.1).filter(|d| **d == *digit).count() as i64;
            let n = w.value(truth, &format!("the count of {digit}s"), |v| {
                format!("Going row by row, the count of the digit {digit} is {v}.")
            });
            let c = col_of(f, *col);
            let s = w.calc(&format!("Column {col} sums to "), Expr::Sum(c));
            w.calc("Adding, ", Expr::Sum(vec![n, s])).to_string()
        }
        Task::DigitsBestRow => {
            let sums: Vec<i64> =
                f.rows.iter().map(|(i, r)| w.calc(&format!("Row {i}: "), Expr::Sum(r.clone()))).collect();
            let best = f.rows.get(argmax(&sums)).map_or(1, |r| r.0);
            w.say(format!("Row {best} has the largest sum."));
            pick(w, choices, &format!("row {best}"))
        }
        Task::Hypotenuse => {
            let (a, b) = legs(w, f);
            hypotenuse(w, a, b).to_string()
        }
        Task::Area => {
            let (a, b) = legs(w, f);
            let area = w.calc("The area is ", Expr::HalfProd(a, b));
            if choices.is_empty() { area.to_string() } else { pick_number(w, choices, area) }
        }
        Task::Perimeter => {
            let (a, b) = legs(w, f);
            let c = hypotenuse(w, a, b);
            w.calc("The perimeter is ", Expr::Sum(vec![a, b, c])).to_string()
        }
        Task::SquareMinusTwiceArea => {
            let (a, b) = legs(w, f);
            let c = hypotenuse(w, a, b);
            let sq = w.calc("The square on the hypotenuse has area ", Expr::Square(c));
            let twice = w.calc("Twice the triangle's area is ", Expr::Prod(a, b));
            w.calc("The difference is ", Expr::Diff(sq, twice)).to_string()
        }
        Task::PerimeterPlusArea => {
            let (a, b) = legs(w, f);
            let c = hypotenuse(w, a, b);
            let per = w.calc("The perimeter is ", Expr::Sum(vec![a, b, c]));
            let area = w.calc("The area is ", Expr::HalfProd(a, b));
            w.calc("Together, ", Expr::Sum(vec![per, area])).to_string()
        }
    }
}

/// Counts the shapes matching `keep`, listing where they are when the plan says so.
fn count(w: &mut Writer, f: &Facts, what: &str, keep: impl Fn(&Shape) -> bool) -> i64 {
    let at: Vec<String> = f.shapes.iter().filter(|s| keep(s)).map(|s| format!("({},{})", s.row, s.col)).collect();
    let shown = at.join(", ");
    let listed = w.lists_positions();
    w.value(at.len() as i64, &format!("the number of {what}"), |v| match (listed, at.is_empty()) {
        (true, true) => format!("There are no {what}: {v}."),
        (true, false) => format!("The {what} are at {shown}: {v}."),
        (false, _) => format!("The number of {what} is {v}."),
    })
}

/// Index of the first largest value.
fn argmax(v: &[i64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

fn read_bars(w: &mut Writer, f: &Facts) {
    let listed: Vec<String> = f.bars.iter().map(|(l, v)| format!("{l} = {v}")).collect();
    w.say(format!("{}, the bars are {}.", w.source(), listed.join(", ")));
}

fn bar(f: &Facts, l: char) -> i64 {
    f.bars.iter().find(|b| b.0 == l).map_or(0, |b| b.1)
}

fn extreme(f: &Facts, tallest: bool) -> (char, i64) {
    let it = f.bars.iter().copied();
    let e = if tallest { it.max_by_key(|b| b.1) } else { it.min_by_key(|b| b.1) };
    e.unwrap_or(('A', 0))
}

fn row_of(f: &Facts, r: usize) -> Vec<i64> {
    f.rows.iter().find(|x| x.0 == r).map(|x| x.1.clone()).unwrap_or_default()
}

fn col_of(f: &Facts, c: usize) -> Vec<i64> {
    f.rows.iter().filter_map(|x| x.1.get(c.wrapping_sub(1)).copied()).collect()
}

fn legs(w: &mut Writer, f: &Facts) -> (i64, i64) {
    let (a, b) = (f.horizontal_leg.unwrap_or(0), f.vertical_leg.unwrap_or(0));
    w.say(format!("{}, the legs are {a} and {b}, with a right angle between them.", w.source()));
    (a, b)
}

/// √(a² + b²), rounded when a slip made it irrational.
fn hypotenuse(w: &mut Writer, a: i64, b: i64) -> i64 {
    let s = w.calc("By Pythagoras, the hypotenuse squared is ", Expr::SumSquares(a, b));
    let c = (s.max(0) as f64).sqrt().round() as i64;
    if c * c == s {
        w.say(format!("So the hypotenuse is sqrt({s}) = {c}."));
    } else {
        w.say(format!("sqrt({s}) is not a whole number; it is about {c}."));
    }
    c
}

/// The letter of the choice that reads `target`, or the plan's fallback.
fn pick(w: &mut Writer, choices: &[String], target: &str) -> String {
    match choices.iter().position(|c| c.eq_ignore_ascii_case(target)) {
        Some(i) => {
            w.say(format!("That is option ({}).", letter(i)));
            letter(i).to_string()
        }
        None => {
            let i = w.fallback(choices.len());
            w.say(format!("That is not among the options, so I'll go with ({}).", letter(i)));
            letter(i).to_string()
        }
    }
}

/// The letter of the numeric choice equal (else closest) to `v`.
fn pick_number(w: &mut Writer, choices: &[String], v: i64) -> String {
    let dist = |c: &String| c.trim().parse::<i64>().map_or(i64::MAX, |x| (x - v).abs());
    let i = (0..choices.len()).min_by_key(|&i| dist(&choices[i])).unwrap_or(0);
    if dist(&choices[i]) == 0 {
        w.say(format!("{v} is option ({}).", letter(i)));
    } else {
        w.say(format!("None of the options is exactly {v}; the closest is {}, option ({}).", choices[i], letter(i)));
    }
    letter(i).to_string()
}
