//! Bars: a bar chart with bars lettered `A`.. and their values printed on top.
//! Level 1: 3 bars with values 1–9, level 2: 4–5 bars with values 1–20, level 3: 6–8 bars with
//! values 1–40 (all distinct). Questions: tallest minus shortest, a sum and difference of named
//! bars, how many bars exceed a named bar, and multiple choice on the second tallest bar.
use image::Rgb;
use rand::Rng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand_chacha::ChaCha8Rng;

use super::raster;
use super::{Built, Step, Trace, letter};

const PALETTE: [Rgb<u8>; 4] = [Rgb([70, 110, 200]), Rgb([220, 120, 50]), Rgb([80, 160, 90]), Rgb([160, 80, 170])];

/// The bar-count range and the largest value of a level.
pub(crate) fn params(level: u8) -> (usize, usize, i64) {
    match level {
        1 => (3, 3, 9),
        2 => (4, 5, 20),
        _ => (6, 8, 40),
    }
}

pub(crate) fn build(rng: &mut ChaCha8Rng, level: u8, size: u32) -> Built {
    let (lo, hi, vmax) = params(level);
    let n = rng.random_range(lo..=hi);
    let mut pool: Vec<i64> = (1..=vmax).collect();
    pool.shuffle(rng);
    let vals: Vec<i64> = pool[..n].to_vec();
    let name = |i: usize| letter(i).to_string();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(vals[i]));

    let template = rng.random_range(0..4);
    let picks: Vec<usize> = (0..n).collect::<Vec<_>>().choose_multiple(rng, 3.min(n)).copied().collect();
    let (question, choices, answer, steps) = match template {
        0 => {
            let (t, s) = (order[0], order[n - 1]);
            let d = vals[t] - vals[s];
            (
                "What is the difference between the value of the tallest bar and the value of the shortest bar?"
                    .to_string(),
                vec![],
                d.to_string(),
                vec![
                    Step { text: "Find the tallest bar".into(), value: format!("{} ({})", name(t), vals[t]) },
                    Step { text: "Find the shortest bar".into(), value: format!("{} ({})", name(s), vals[s]) },
                    Step { text: format!("{} - {}", vals[t], vals[s]), value: d.to_string() },
                ],
            )
        }
        1 => {
            let (a, b, c) = (picks[0], picks[1], picks[2]);
            let sum = vals[a] + vals[b];
            let ans = sum - vals[c];
            (
                format!(
                    "What is the value of bar {} plus the value of bar {}, minus the value of bar {}?",
                    name(a),
                    name(b),
                    name(c)
                ),
                vec![],
                ans.to_string(),
                vec![
                    Step { text: format!("Read bar {}", name(a)), value: vals[a].to_string() },
                    Step { text: format!("Read bar {}", name(b)), value: vals[b].to_string() },
                    Step { text: format!("Read bar {}", name(c)), value: vals[c].to_string() },
                    Step { text: format!("{} + {} - {}", vals[a], vals[b], vals[c]), value: ans.to_string() },
                ],
            )
        }
        2 => {
            let a = picks[0];
            let above = vals.iter().filter(|&&v| v > vals[a]).count() as i64;
            let ans = above * vals[a];
            (
                format!(
                    "How many bars are taller than bar {}? Multiply that count by the value of bar {}.",
                    name(a),
                    name(a)
                ),
                vec![],
                ans.to_string(),
                vec![
                    Step { text: format!("Read bar {}", name(a)), value: vals[a].to_string() },
                    Step { text: format!("Count the bars with a value above {}", vals[a]), value: above.to_string() },
                    Step { text: format!("{above} × {}", vals[a]), value: ans.to_string() },
                ],
            )
        }
        _ => {
            let second = order[1];
            let mut opts: Vec<usize> = (0..n)
                .filter(|&i| i != second)
                .collect::<Vec<_>>()
                .choose_multiple(rng, 3.min(n - 1))
                .copied()
                .collect();
            opts.push(second);
            opts.shuffle(rng);
            let pos = opts.iter().position(|&i| i == second).unwrap();
            (
                "Which bar is the second tallest?".to_string(),
                opts.iter().map(|&i| format!("bar {}", name(i))).collect(),
                letter(pos).to_string(),
                vec![
                    Step {
                        text: "Order the bars from tallest".into(),
                        value: order.iter().map(|&i| name(i)).collect::<Vec<_>>().join(", "),
                    },
                    Step { text: "Take the second one".into(), value: format!("bar {}", name(second)) },
                    Step { text: "Find it among the choices".into(), value: letter(pos).to_string() },
                ],
            )
        }
    };

    let mut img = raster::canvas(size, size);
    let s = size as i64;
    let scale = if size >= 196 { 2 } else { 1 };
    let (left, right, top, base) = (s / 14, s - s / 14, s / 8, s - s * 3 / 20);
    raster::line(&mut img, (left, base), (right, base), 2, raster::BLACK);
    let slot = (right - left) / n as i64;
    for (i, &v) in vals.iter().enumerate() {
        let h = (base - top) * v / vmax;
        let x0 = left + i as i64 * slot + slot / 6;
        let x1 = left + (i as i64 + 1) * slot - slot / 6;
        raster::fill_rect(&mut img, x0, base - h, x1, base, PALETTE[i % PALETTE.len()]);
        let cx = (x0 + x1) / 2;
        raster::text_centered(&mut img, cx, base - h - 5 * scale, scale, &v.to_string(), raster::BLACK);
        raster::text_centered(&mut img, cx, base + 7 * scale, scale, &name(i), raster::BLACK);
    }

    let facts: Vec<String> = vals.iter().enumerate().map(|(i, v)| format!("Bar {} has value {v}.", name(i))).collect();
    let scene = format!("A bar chart shows {n} bars labelled A to {}.", name(n - 1));
    let key = format!(
        "{}|t{template}|p{}",
        vals.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(","),
        picks.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(",")
    );
    Built { key, scene, question, choices, answer, trace: Trace { facts, steps }, image: img, perception: Vec::new() }
}
