//! Digits: a grid of digits 0–9 with grid lines. Level 1: 2×3, level 2: 3×3, level 3: 4×4.
//! Rows are numbered from the top and columns from the left, starting at 1. Questions: a row sum
//! times the odd digits of a column, a row maximum minus a column minimum, occurrences of a digit
//! plus a column sum, and multiple choice on the row with the largest sum.
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use super::raster;
use super::{Built, Step, Trace, join_plus, letter};

/// Rows and columns of a level.
pub(crate) fn dims(level: u8) -> (usize, usize) {
    match level {
        1 => (2, 3),
        2 => (3, 3),
        _ => (4, 4),
    }
}

pub(crate) fn build(rng: &mut ChaCha8Rng, level: u8, size: u32) -> Built {
    let (rows, cols) = dims(level);
    let g: Vec<Vec<i64>> = (0..rows).map(|_| (0..cols).map(|_| rng.random_range(0..10)).collect()).collect();
    let row = |r: usize| g[r].clone();
    let col = |c: usize| g.iter().map(|line| line[c]).collect::<Vec<i64>>();
    let sums: Vec<i64> = (0..rows).map(|r| row(r).iter().sum()).collect();
    let best = *sums.iter().max().unwrap();
    let unique_best = sums.iter().filter(|&&s| s == best).count() == 1;

    let mut template = rng.random_range(0..4);
    if template == 3 && !unique_best {
        template = 0;
    }
    let r = rng.random_range(0..rows);
    let c = rng.random_range(0..cols);
    let d = rng.random_range(0..10i64);
    let (question, choices, answer, steps) = match template {
        0 => {
            let s: i64 = row(r).iter().sum();
            let odd = col(c).iter().filter(|&&v| v % 2 == 1).count() as i64;
            let ans = s * odd;
            (
                format!(
                    "What is the sum of the digits in row {} multiplied by the number of odd digits in column {}?",
                    r + 1,
                    c + 1
                ),
                vec![],
                ans.to_string(),
                vec![
                    Step { text: format!("Sum row {}: {}", r + 1, join_plus(&row(r))), value: s.to_string() },
                    Step { text: format!("Count the odd digits of column {}", c + 1), value: odd.to_string() },
                    Step { text: format!("{s} × {odd}"), value: ans.to_string() },
                ],
            )
        }
        1 => {
            let mx = *row(r).iter().max().unwrap();
            let mn = *col(c).iter().min().unwrap();
            let ans = mx - mn;
            (
                format!("What is the largest digit in row {} minus the smallest digit in column {}?", r + 1, c + 1),
                vec![],
                ans.to_string(),
                vec![
                    Step { text: format!("Largest digit of row {}", r + 1), value: mx.to_string() },
                    Step { text: format!("Smallest digit of column {}", c + 1), value: mn.to_string() },
                    Step { text: format!("{mx} - {mn}"), value: ans.to_string() },
                ],
            )
        }
        2 => {
            let occ = g.iter().flatten().filter(|&&v| v == d).count() as i64;
            let cs: i64 = col(c).iter().sum();
            let ans = occ + cs;
            (
                format!(
                    "How many times does the digit {d} appear in the grid? Add the sum of the digits in column {}.",
                    c + 1
                ),
                vec![],
                ans.to_string(),
                vec![
                    Step { text: format!("Count the digit {d} in the grid"), value: occ.to_string() },
                    Step { text: format!("Sum column {}: {}", c + 1, join_plus(&col(c))), value: cs.to_string() },
                    Step { text: format!("{occ} + {cs}"), value: ans.to_string() },
                ],
            )
        }
        _ => {
            let pos = sums.iter().position(|&s| s == best).unwrap();
            let mut steps: Vec<Step> = (0..rows)
                .map(|i| Step {
                    text: format!("Sum row {}: {}", i + 1, join_plus(&row(i))),
                    value: sums[i].to_string(),
                })
                .collect();
            steps.push(Step { text: "Pick the row with the largest sum".into(), value: format!("row {}", pos + 1) });
            (
                "Which row has the largest sum of digits?".to_string(),
                (0..rows).map(|i| format!("row {}", i + 1)).collect(),
                letter(pos).to_string(),
                steps,
            )
        }
    };

    let mut img = raster::canvas(size, size);
    let s = size as i64;
    let margin = s / 14;
    let cell = ((s - 2 * margin) / cols.max(rows) as i64).min(s / 4);
    let (gw, gh) = (cell * cols as i64, cell * rows as i64);
    let (x0, y0) = ((s - gw) / 2, (s - gh) / 2);
    for i in 0..=rows as i64 {
        raster::line(&mut img, (x0, y0 + i * cell), (x0 + gw, y0 + i * cell), 2, raster::BLACK);
    }
    for j in 0..=cols as i64 {
        raster::line(&mut img, (x0 + j * cell, y0), (x0 + j * cell, y0 + gh), 2, raster::BLACK);
    }
    let scale = (cell / 12).max(1);
    for (i, line) in g.iter().enumerate() {
        for (j, v) in line.iter().enumerate() {
            let (cx, cy) = (x0 + j as i64 * cell + cell / 2, y0 + i as i64 * cell + cell / 2);
            raster::text_centered(&mut img, cx, cy, scale, &v.to_string(), raster::BLACK);
        }
    }

    let facts: Vec<String> = g
        .iter()
        .enumerate()
        .map(|(i, line)| {
            format!("Row {} reads {}.", i + 1, line.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(" "))
        })
        .collect();
    let scene = format!(
        "A grid of digits has {rows} rows and {cols} columns (rows numbered from the top, columns from the left)."
    );
    let key = format!(
        "{}|t{template}|r{r}|c{c}|d{d}",
        g.iter().map(|l| l.iter().map(|v| v.to_string()).collect::<String>()).collect::<Vec<_>>().join("/")
    );
    Built { key, scene, question, choices, answer, trace: Trace { facts, steps }, image: img, perception: Vec::new() }
}
