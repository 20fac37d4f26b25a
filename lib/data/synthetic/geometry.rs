//! Geometry: a right triangle whose two legs carry their lengths (multiples of Pythagorean triples,
//! so every answer is an integer), drawn in one of four orientations with a right-angle mark.
//! 60 scaled triples × 2 leg orders × 4 orientations × the question: 960 level-1 problems in all.
//! Level 1: hypotenuse or area (1–2 steps); level 2: perimeter, or the area as multiple choice;
//! level 3: the square on the hypotenuse minus twice the area, or perimeter plus area.
use rand::Rng;
use rand::seq::IndexedRandom;
use rand_chacha::ChaCha8Rng;

use super::raster;
use super::{Built, Step, Trace, numeric_choices};

/// Primitive Pythagorean triples with legs below 100 (one leg even, so the area is an integer).
const TRIPLES: [(i64, i64, i64); 16] = [
    (3, 4, 5),
    (5, 12, 13),
    (8, 15, 17),
    (7, 24, 25),
    (20, 21, 29),
    (12, 35, 37),
    (9, 40, 41),
    (28, 45, 53),
    (11, 60, 61),
    (33, 56, 65),
    (16, 63, 65),
    (48, 55, 73),
    (13, 84, 85),
    (36, 77, 85),
    (39, 80, 89),
    (65, 72, 97),
];
/// Longest leg drawn.
const MAX_LEG: i64 = 99;

pub(crate) fn build(rng: &mut ChaCha8Rng, level: u8, size: u32) -> Built {
    // Uniform over the 60 scaled triples (p·k, q·k) with q·k ≤ MAX_LEG.
    let scaled: Vec<(i64, i64, i64, i64)> =
        TRIPLES.iter().flat_map(|&(p, q, h)| (1..=MAX_LEG / q).map(move |k| (p, q, h, k))).collect();
    let &(p, q, h, k) = scaled.choose(rng).expect("non-empty");
    let swap = rng.random_bool(0.5);
    let (a, b, c) = if swap { (q * k, p * k, h * k) } else { (p * k, q * k, h * k) };
    let orient = rng.random_range(0..4u8);
    let template = rng.random_range(0..2u8);
    let area2 = a * b;
    let area = area2 / 2; // a·b is even for every triple above
    let hyp_step =
        Step { text: format!("Hypotenuse = sqrt({a}² + {b}²) = sqrt({})", a * a + b * b), value: c.to_string() };
    let area_step = Step { text: format!("Area = {a} × {b} / 2"), value: area.to_string() };
    let mut choices = vec![];
    let (question, answer, steps) = match (level, template) {
        (1, 0) => ("How long is the hypotenuse of the right triangle?".to_string(), c, vec![hyp_step]),
        (1, _) => ("What is the area of the right triangle?".to_string(), area, vec![area_step]),
        (2, 0) => {
            let per = a + b + c;
            let sum = Step { text: format!("Perimeter = {a} + {b} + {c}"), value: per.to_string() };
            ("What is the perimeter of the right triangle?".to_string(), per, vec![hyp_step, sum])
        }
        (2, _) => {
            let (ch, letter) = numeric_choices(rng, area);
            choices = ch;
            let pick = Step { text: "Find the area among the choices".into(), value: letter.clone() };
            let q = "What is the area of the right triangle?".to_string();
            return finish(a, b, c, orient, size, q, choices, letter, vec![area_step, pick], template, k);
        }
        (_, 0) => {
            let ans = c * c - area2;
            let sq = Step { text: format!("Square on the hypotenuse = {c}²"), value: (c * c).to_string() };
            let tw = Step { text: format!("Twice the area = {a} × {b}"), value: area2.to_string() };
            let d = Step { text: format!("{} - {area2}", c * c), value: ans.to_string() };
            (
                "A square is drawn on the hypotenuse of the right triangle. What is the area of that square minus \
                 twice the area of the triangle?"
                    .to_string(),
                ans,
                vec![hyp_step, sq, tw, d],
            )
        }
        (_, _) => {
            let per = a + b + c;
            let ans = per + area;
            let ps = Step { text: format!("Perimeter = {a} + {b} + {c}"), value: per.to_string() };
            let s = Step { text: format!("{per} + {area}"), value: ans.to_string() };
            (
                "What is the perimeter of the right triangle plus its area?".to_string(),
                ans,
                vec![hyp_step, ps, area_step, s],
            )
        }
    };
    finish(a, b, c, orient, size, question, choices, answer.to_string(), steps, template, k)
}

#[allow(clippy::too_many_arguments)]
fn finish(
    a: i64,
    b: i64,
    c: i64,
    orient: u8,
    size: u32,
    question: String,
    choices: Vec<String>,
    answer: String,
    steps: Vec<Step>,
    template: u8,
    k: i64,
) -> Built {
    let mut img = raster::canvas(size, size);
    let s = size as i64;
    let scale = if size >= 196 { 2 } else { 1 };
    let span = s - s * 2 / 5; // room for the labels
    let unit = span * 1000 / a.max(b);
    let (w, h) = (a * unit / 1000, b * unit / 1000); // leg a horizontal, leg b vertical
    let (ox, oy) = ((s - w) / 2, (s - h) / 2);
    // Corner of the right angle, then the ends of the horizontal and vertical legs.
    let (rx, ry, hx, vy, sx, sy) = match orient {
        0 => (ox, oy + h, ox + w, oy, 1, -1),
        1 => (ox + w, oy + h, ox, oy, -1, -1),
        2 => (ox, oy, ox + w, oy + h, 1, 1),
        _ => (ox + w, oy, ox, oy + h, -1, 1),
    };
    let t = 2;
    raster::line(&mut img, (rx, ry), (hx, ry), t, raster::BLACK);
    raster::line(&mut img, (rx, ry), (rx, vy), t, raster::BLACK);
    raster::line(&mut img, (hx, ry), (rx, vy), t, raster::BLACK);
    let m = (s / 20).max(4);
    raster::line(&mut img, (rx + sx * m, ry), (rx + sx * m, ry + sy * m), 1, raster::BLACK);
    raster::line(&mut img, (rx, ry + sy * m), (rx + sx * m, ry + sy * m), 1, raster::BLACK);
    let off = 8 * scale;
    raster::text_centered(&mut img, (rx + hx) / 2, ry - sy * off, scale, &a.to_string(), raster::BLACK);
    let lw = raster::text_width(&b.to_string(), scale);
    raster::text_centered(
        &mut img,
        rx - sx * (lw / 2 + 4 * scale),
        (ry + vy) / 2,
        scale,
        &b.to_string(),
        raster::BLACK,
    );

    let facts = vec![
        format!("The horizontal leg is labelled {a}."),
        format!("The vertical leg is labelled {b}."),
        "The angle between the two legs is a right angle.".to_string(),
    ];
    let scene = "The picture shows a right triangle with its two legs labelled.".to_string();
    let key = format!("{a},{b},{c}|o{orient}|t{template}|k{k}");
    Built { key, scene, question, choices, answer, trace: Trace { facts, steps }, image: img, perception: Vec::new() }
}
