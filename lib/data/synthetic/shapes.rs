//! Shapes: coloured circles, squares and triangles, small or large, one per cell of a 4×4 grid.
//! Level 1: 3–5 shapes, level 2: 6–9, level 3: 10–14. Questions: inclusion–exclusion counts
//! ("shapes that are red or circles"), filtered counts with a size, and multiple choice on the most
//! frequent colour. Perception questions ([`perception`]): every colour, kind, colour-kind and size-not-colour count
//! of the scene and the per-colour tally, answered in the reasoning's own sentences (the base model's training set,
//! issue 6 item 3).
use image::Rgb;
use rand::Rng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::raster;
use super::{Built, Step, Trace, letter};
use crate::data::bridging::reasoner::capitalize;

const COLORS: [(&str, Rgb<u8>); 4] = [
    ("red", Rgb([220, 40, 40])),
    ("green", Rgb([40, 170, 60])),
    ("blue", Rgb([40, 80, 220])),
    ("yellow", Rgb([230, 190, 20])),
];
const KINDS: [&str; 3] = ["circle", "square", "triangle"];
const GRID: u32 = 4;

/// The object-count range of a level.
pub(crate) fn count_range(level: u8) -> (usize, usize) {
    match level {
        1 => (3, 5),
        2 => (6, 9),
        _ => (10, 14),
    }
}

#[derive(Clone, Copy)]
struct Obj {
    cell: u32,
    color: usize,
    kind: usize,
    large: bool,
}

impl Obj {
    fn describe(&self) -> String {
        let size = if self.large { "large" } else { "small" };
        format!("a {size} {} {}", COLORS[self.color].0, KINDS[self.kind])
    }
}

pub(crate) fn build(rng: &mut ChaCha8Rng, level: u8, size: u32) -> Built {
    let (lo, hi) = count_range(level);
    let n = rng.random_range(lo..=hi);
    let mut cells: Vec<u32> = (0..GRID * GRID).collect();
    cells.shuffle(rng);
    let mut objs: Vec<Obj> = cells[..n]
        .iter()
        .map(|&cell| Obj {
            cell,
            color: rng.random_range(0..4),
            kind: rng.random_range(0..3),
            large: rng.random_bool(0.5),
        })
        .collect();
    objs.sort_by_key(|o| o.cell);

    let count = |f: &dyn Fn(&Obj) -> bool| objs.iter().filter(|o| f(o)).count() as i64;
    let color_counts: Vec<i64> = (0..4).map(|c| count(&|o| o.color == c)).collect();
    let max = *color_counts.iter().max().unwrap();
    let unique_max = color_counts.iter().filter(|&&v| v == max).count() == 1;

    let mut template = rng.random_range(0..3);
    if template == 2 && !unique_max {
        template = 0;
    }
    let c = rng.random_range(0..4);
    let k = rng.random_range(0..3);
    let large = rng.random_bool(0.5);
    let (cname, kname, sname) = (COLORS[c].0, KINDS[k], if large { "large" } else { "small" });
    let (question, choices, answer, steps) = match template {
        0 => {
            let (a, b, both) =
                (count(&|o| o.color == c), count(&|o| o.kind == k), count(&|o| o.color == c && o.kind == k));
            let ans = a + b - both;
            (
                format!("How many shapes are {cname} or {kname}s (or both)?"),
                vec![],
                ans.to_string(),
                vec![
                    Step { text: format!("Count the {cname} shapes"), value: a.to_string() },
                    Step { text: format!("Count the {kname}s"), value: b.to_string() },
                    Step { text: format!("Count the {cname} {kname}s, counted twice"), value: both.to_string() },
                    Step { text: format!("{a} + {b} - {both}"), value: ans.to_string() },
                ],
            )
        }
        1 => {
            let a = count(&|o| o.large == large && o.color != c);
            let b = count(&|o| o.kind == k);
            let ans = a * 2 + b;
            (
                format!(
                    "Let X be the number of {sname} shapes that are not {cname} and Y the number of {kname}s. \
                     What is 2X + Y?"
                ),
                vec![],
                ans.to_string(),
                vec![
                    Step { text: format!("Count the {sname} shapes that are not {cname} (X)"), value: a.to_string() },
                    Step { text: format!("Count the {kname}s (Y)"), value: b.to_string() },
                    Step { text: format!("2 × {a} + {b}"), value: ans.to_string() },
                ],
            )
        }
        _ => {
            let best = color_counts.iter().position(|&v| v == max).unwrap();
            let choices: Vec<String> = COLORS.iter().map(|c| c.0.to_string()).collect();
            let mut steps: Vec<Step> = COLORS
                .iter()
                .zip(&color_counts)
                .map(|((name, _), v)| Step { text: format!("Count the {name} shapes"), value: v.to_string() })
                .collect();
            steps.push(Step { text: "Pick the colour with the largest count".into(), value: COLORS[best].0.into() });
            ("Which colour do the most shapes have?".to_string(), choices, letter(best).to_string(), steps)
        }
    };

    let mut img = raster::canvas(size, size);
    let cell = (size / GRID) as i64;
    for o in &objs {
        let (cx, cy) = (((o.cell % GRID) as i64) * cell + cell / 2, ((o.cell / GRID) as i64) * cell + cell / 2);
        let r = if o.large { cell * 42 / 100 } else { cell * 22 / 100 };
        let col = COLORS[o.color].1;
        match o.kind {
            0 => raster::fill_circle(&mut img, cx, cy, r, col),
            1 => raster::fill_rect(&mut img, cx - r, cy - r, cx + r, cy + r, col),
            _ => raster::fill_triangle(&mut img, [(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], col),
        }
    }

    let facts: Vec<String> = objs
        .iter()
        .map(|o| format!("In row {}, column {} there is {}.", o.cell / GRID + 1, o.cell % GRID + 1, o.describe()))
        .collect();
    let scene = format!("The picture shows {n} shapes placed on a 4 by 4 grid.");
    let key = format!(
        "{}|t{template}|c{c}|k{k}|l{}",
        objs.iter().map(|o| format!("{}:{}{}{}", o.cell, o.color, o.kind, o.large as u8)).collect::<Vec<_>>().join(","),
        large as u8
    );
    let perception = perception(&objs);
    Built { key, scene, question, choices, answer, trace: Trace { facts, steps }, image: img, perception }
}

/// The scene's perception questions, answered from the objects (no random draws: the problem stream is unchanged):
/// exactly the facts the bridged reasoning of [`build`]'s questions reads off the picture (the counts of a colour, a
/// kind, a colour-kind pair, a size without a colour, and the per-colour tally), each answered in the sentence the
/// reasoning writes it in (`lib/data/bridging/solve.rs`: "The number of red circles is 2."), so the base model's
/// reading carries over into the cold start's chains of thought unchanged.
fn perception(objs: &[Obj]) -> Vec<Step> {
    let count = |f: &dyn Fn(&Obj) -> bool| objs.iter().filter(|o| f(o)).count();
    let mut out = Vec::new();
    let mut ask = |question: String, what: String, n: usize| {
        out.push(Step { text: question, value: format!("The number of {what} is {n}.") })
    };
    for (c, (cname, _)) in COLORS.iter().enumerate() {
        ask(format!("How many {cname} shapes are there?"), format!("{cname} shapes"), count(&|o| o.color == c));
    }
    for (k, kname) in KINDS.iter().enumerate() {
        ask(format!("How many {kname}s are there?"), format!("{kname}s"), count(&|o| o.kind == k));
        for (c, (cname, _)) in COLORS.iter().enumerate() {
            let n = count(&|o| o.color == c && o.kind == k);
            ask(format!("How many {cname} {kname}s are there?"), format!("{cname} {kname}s"), n);
        }
    }
    for (large, sname) in [(false, "small"), (true, "large")] {
        for (c, (cname, _)) in COLORS.iter().enumerate() {
            let n = count(&|o| o.large == large && o.color != c);
            ask(format!("How many {sname} shapes are not {cname}?"), format!("{sname} shapes that are not {cname}"), n);
        }
    }
    let tally: Vec<String> = COLORS
        .iter()
        .enumerate()
        .map(|(c, (cname, _))| format!("{}: {}.", capitalize(cname), count(&|o| o.color == c)))
        .collect();
    out.push(Step { text: "Count the shapes by colour.".into(), value: tally.join(" ") });
    out
}
