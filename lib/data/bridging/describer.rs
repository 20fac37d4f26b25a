//! The "MLLM" stages of Vision-R1's modality bridging (papers_spec §1.2 steps 1–2; paper v4 §3.3.1,
//! Fig.2, App.B): the multimodal model that sees the image turns it into text for a text-only
//! reasoner. Here the image's content is the problem's ground truth (`scene` and `trace.facts`).
//!
//! - [`pseudo_cot`]: step 1, a Pseudo-CoT as Qwen2.5-VL writes it from image, question and answer
//!   (a caption, the steps, the answer; LLaVA-CoT / Mulberry style).
//! - [`describe`] with [`DescribeMode::PseudoCotConditioned`]: step 2, the paper's method: a detailed
//!   description conditioned on the question and the Pseudo-CoT, worded as a description of an image
//!   ("The image shows ..."), stating every visible fact. The conditioning decides the order: facts
//!   whose subject ("bar C", "row 2") the Pseudo-CoT mentions come first. The description never
//!   carries the answer or an intermediate result, only what is visible.
//! - [`DescribeMode::Caption`]: the App.B ablation, a plain caption: the scene sentence and the kinds
//!   of objects, but none of the values (bar heights, digits, leg lengths, which shape is which), so
//!   the reasoner has to guess or give up.
//!
//! Wording variety is seeded per problem (`pipeline.rs` documents the stream): each fact sentence
//! takes one of a few phrasings, all of which `parse.rs` reads.
use std::sync::LazyLock;

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::data::synthetic::{Family, Problem};

/// How the image is put into words.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DescribeMode {
    /// App.B's failure mode: a plain caption without values.
    Caption,
    /// The paper's method: a description conditioned on the question and a Pseudo-CoT.
    PseudoCotConditioned,
}

impl DescribeMode {
    pub const fn name(self) -> &'static str {
        match self {
            DescribeMode::Caption => "caption",
            DescribeMode::PseudoCotConditioned => "pseudo_cot_conditioned",
        }
    }
}

/// Step 1: caption, steps and answer, as the MLLM writes them with the answer in view.
pub fn pseudo_cot(p: &Problem) -> String {
    let steps: Vec<String> = p.trace.steps.iter().map(|s| format!("{}: {}.", s.text, s.value)).collect();
    format!("{} {} The answer is {}.", p.scene, steps.join(" "), p.answer)
}

/// Step 2 (or the plain caption): the text the reasoner gets instead of the image.
pub fn describe(p: &Problem, mode: DescribeMode, rng: &mut ChaCha8Rng) -> String {
    let scene = scene_clause(&p.scene);
    match mode {
        DescribeMode::Caption => format!("The image shows {scene}. {}", kinds_sentence(p)),
        DescribeMode::PseudoCotConditioned => {
            let cot = pseudo_cot(p).to_lowercase();
            let (mut first, mut rest) = (Vec::new(), Vec::new());
            for fact in &p.trace.facts {
                let worded = reword(fact, rng.random_range(0..3));
                if subject(fact).is_some_and(|s| cot.contains(&s)) { first.push(worded) } else { rest.push(worded) }
            }
            let mut out = format!("The image shows {scene}.");
            for s in first.iter().chain(&rest) {
                out.push(' ');
                out.push_str(s);
            }
            out
        }
    }
}

/// The scene sentence as a clause after "The image shows": "A bar chart shows 5 bars" → "a bar chart
/// with 5 bars"; "The picture shows 7 shapes" → "7 shapes".
fn scene_clause(scene: &str) -> String {
    let s = scene.trim().trim_end_matches('.');
    if let Some(rest) = s.strip_prefix("The picture shows ") {
        return rest.to_string();
    }
    let s = s.replacen(" shows ", " with ", 1).replacen(" has ", " with ", 1);
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => s,
    }
}

/// The caption's second sentence: what kinds of things are there, never a value.
fn kinds_sentence(p: &Problem) -> String {
    match p.family {
        Family::Shapes => {
            let facts = p.trace.facts.join(" ");
            let present = |words: &[&str]| -> Vec<String> {
                words.iter().filter(|w| facts.contains(&format!(" {w}"))).map(|w| w.to_string()).collect()
            };
            let kinds: Vec<String> =
                present(&["circle", "square", "triangle"]).into_iter().map(|k| format!("{k}s")).collect();
            let colors = present(&["red", "green", "blue", "yellow"]);
            format!("The shapes include {} in {}, some small and some large.", list(&kinds), list(&colors))
        }
        Family::Bars => "Each bar has a letter below it and a number printed on top.".to_string(),
        Family::Digits => "Each cell of the grid holds a single digit, with black grid lines.".to_string(),
        Family::Geometry => "A small square marks the right angle, and each leg has a number next to it.".to_string(),
    }
}

/// "a", "a and b", "a, b and c".
fn list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

static SUBJECT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(?:The )?(\w+) (\w+)").expect("valid regex"));

/// The first two words of a fact, lowercased ("bar c", "row 2", "horizontal leg").
fn subject(fact: &str) -> Option<String> {
    SUBJECT.captures(fact).map(|c| format!("{} {}", &c[1], &c[2]).to_lowercase())
}

static REWORDINGS: LazyLock<Vec<(Regex, [&'static str; 3])>> = LazyLock::new(|| {
    [
        (
            r"^Bar ([A-Z]) has value (-?\d+)\.$",
            ["Bar $1 has value $2.", "Bar $1 reaches $2.", "Bar $1 is labelled $2."],
        ),
        (r"^Row (\d+) reads ([\d ]+)\.$", ["Row $1 reads $2.", "Row $1 contains the digits $2.", "Row $1 holds $2."]),
        (
            r"^In row (\d+), column (\d+) there is (.+)\.$",
            ["In row $1, column $2 there is $3.", "At row $1, column $2 sits $3.", "In row $1, column $2 lies $3."],
        ),
        (
            r"^The (horizontal|vertical) leg is labelled (\d+)\.$",
            ["The $1 leg is labelled $2.", "The $1 leg is marked $2.", "The $1 leg measures $2."],
        ),
    ]
    .into_iter()
    .map(|(p, w)| (Regex::new(p).expect("valid regex"), w))
    .collect()
});

/// Phrasing `variant` (0..3) of a fact sentence; a sentence of unknown form stays as it is.
fn reword(fact: &str, variant: usize) -> String {
    for (re, words) in REWORDINGS.iter() {
        if re.is_match(fact) {
            return re.replace(fact, words[variant % 3]).into_owned();
        }
    }
    fact.to_string()
}

#[cfg(test)]
mod tests {
    use rand_chacha::rand_core::SeedableRng;

    use super::*;
    use crate::data::bridging::parse::{parse_facts, parse_question};
    use crate::data::synthetic::{Config, generate};

    #[test]
    fn conditioned_descriptions_expose_every_fact_and_captions_none() {
        for f in Family::ALL {
            for i in 0..25 {
                let p = generate(f, &Config { seed: 9, level: 2, size: 112 }, i).unwrap();
                let mut rng = ChaCha8Rng::seed_from_u64(i);
                let d = describe(&p, DescribeMode::PseudoCotConditioned, &mut rng);
                assert!(d.starts_with("The image shows "), "{d}");
                assert!(!d.contains("answer") && !d.contains("picture shows"), "{d}");
                let task = parse_question(&p.question).unwrap();
                let twin = parse_facts(&format!("{} {}", p.scene, p.trace.facts.join(" ")));
                assert_eq!(parse_facts(&d), twin, "{}: {d}", p.id);
                let c = describe(&p, DescribeMode::Caption, &mut rng);
                assert!(c.starts_with("The image shows ") && !task.answerable(&parse_facts(&c)), "{c}");
            }
        }
    }

    #[test]
    fn wording_varies_with_the_stream() {
        let p = generate(Family::Bars, &Config { seed: 1, level: 3, size: 112 }, 0).unwrap();
        let texts: std::collections::HashSet<String> = (0..8)
            .map(|s| describe(&p, DescribeMode::PseudoCotConditioned, &mut ChaCha8Rng::seed_from_u64(s)))
            .collect();
        assert!(texts.len() > 1);
        assert_eq!(
            scene_clause("A bar chart shows 5 bars labelled A to E."),
            "a bar chart with 5 bars labelled A to E"
        );
        assert_eq!(list(&["x".into(), "y".into(), "z".into()]), "x, y and z");
    }
}
