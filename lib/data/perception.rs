//! The base model's training set (issue 6, item 3): the analogue of the perception Qwen2.5-VL-7B-Instruct already has
//! when both papers start from it. Each sample is one image of the synthetic stream and a multi-turn chat of short
//! perception questions about it, each answered in one sentence and no reasoning ("How many red circles are there?"
//! → "The number of red circles is 2.", the sentence the bridged reasoning reads that fact in), in LLaMA-Factory's
//! sharegpt layout, so the base model is trained by the ordinary SFT stage from
//! its own manifest (`experiments/embedded/base.toml`).
//!
//! - Questions come from [`Problem::perception`] (every count of the scene, zeros included); each image gets
//!   `turns` of them, drawn without replacement from `seed::rng(seed, DataOrder, PERCEPTION_STEP, index, 0)`.
//! - Training images are train-split scenes of the stream `(families, cfg)`, the same stream as the RL and bridged
//!   sets; the held-out perception set (every question about test-split scenes) measures what the base model reads
//!   on scenes it never saw (splits are disjoint by key, see [`crate::data::synthetic`]).
//! - Only the first user turn holds the `<image>` placeholder, as in LLaMA-Factory's multi-turn image data.
//! - [`Medium::Text`] builds the same chats with the scene in words instead of the picture (the text twin's scene
//!   and facts, [`Problem::scene_in_words`]) and no image: the perception set of the text reader
//!   that the text-twin and image-removed controls start from (`experiments/embedded/controls/text_reader.toml`), so
//!   the controls measure what the text holds, not whether the base model ever learned to read sentences.
use std::path::{Path, PathBuf};

use anyhow::{Result, ensure};
use rand::seq::SliceRandom;

use super::sharegpt::{self, Message, SftRecord};
use super::synthetic::{Config, Family, Problem, SYNTH_STEP, Split, generate_mix};
use crate::repro::seed::{self, SeedDomain};

/// Step of the question draws inside `SeedDomain::DataOrder`, above the synthetic streams (`SYNTH_STEP` + tags).
pub const PERCEPTION_STEP: u64 = SYNTH_STEP + (1 << 20);

/// How the scene reaches the model: the picture, or the same facts in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Medium {
    Image,
    Text,
}

impl Medium {
    /// The first user turn: the scene (the `<image>` placeholder, or the scene in words on a line of its own), then
    /// the question.
    fn first_turn(self, p: &Problem, question: &str) -> String {
        match self {
            Medium::Image => format!("<image>{question}"),
            Medium::Text => format!("{}\n{question}", p.scene_in_words()),
        }
    }

    /// The images a record of `p` carries.
    fn images(self, p: &Problem) -> Vec<String> {
        match self {
            Medium::Image => vec![sharegpt::image_path(p)],
            Medium::Text => Vec::new(),
        }
    }
}

/// The multi-turn perception chat of one problem's scene: `turns` questions, or all of them if it has fewer. The
/// question draws do not depend on the medium, so the image and text chats of a scene ask the same questions.
pub fn record(p: &Problem, medium: Medium, turns: usize, seed: u64) -> SftRecord {
    let mut qa: Vec<_> = p.perception.iter().collect();
    qa.shuffle(&mut seed::rng(seed, SeedDomain::DataOrder, PERCEPTION_STEP, p.index, 0));
    let mut messages = Vec::new();
    for (i, s) in qa.into_iter().take(turns).enumerate() {
        let prompt = if i == 0 { medium.first_turn(p, &s.text) } else { s.text.clone() };
        messages.push(Message { role: "user".into(), content: prompt });
        messages.push(Message { role: "assistant".into(), content: s.value.clone() });
    }
    SftRecord { messages, images: medium.images(p) }
}

/// What [`export`] writes: `n` scenes of `split` per family, `turns` questions each, drawn with `seed`.
#[derive(Debug, Clone, Copy)]
pub struct SetSpec {
    pub split: Split,
    pub n: usize,
    pub turns: usize,
    pub seed: u64,
    pub medium: Medium,
}

/// Writes `{out}/{name}.json` (and, for [`Medium::Image`], the images); returns the file and the number of question
/// turns.
pub fn export(out: &Path, name: &str, families: &[Family], cfg: &Config, spec: SetSpec) -> Result<(PathBuf, usize)> {
    let SetSpec { split, n, turns, seed, medium } = spec;
    ensure!(turns > 0, "perception turns per image is 0: ask for at least one question per image");
    if let Some(f) = families.iter().find(|f| **f != Family::Shapes) {
        anyhow::bail!(
            "the synthetic family {f} has no perception questions yet (only shapes has): \
             drop it from the base model's families"
        );
    }
    let problems = generate_mix(families, cfg, split, n)?;
    let records: Vec<SftRecord> = problems.iter().map(|p| record(p, medium, turns, seed)).collect();
    let n_turns = records.iter().map(|r| r.messages.len() / 2).sum();
    let images: &[Problem] = if medium == Medium::Image { &problems } else { &[] };
    let file = sharegpt::write_dataset(out, name, &records, images)?;
    Ok((file, n_turns))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::synthetic::generate;

    #[test]
    fn shapes_questions_count_the_scene_and_draws_are_seeded() {
        let cfg = Config { seed: 3, level: 1, size: 112 };
        let p = generate(Family::Shapes, &cfg, 7).unwrap();
        assert_eq!(p.perception.len(), 28);
        // Every answer is the reasoning's own sentence; the colour counts add up to the number of shapes, as do the
        // kind counts, and the tally repeats the colour counts.
        let n: usize = p.scene.split_whitespace().nth(3).unwrap().parse().unwrap();
        let answer = |q: &str| p.perception.iter().find(|s| s.text == q).map(|s| s.value.clone()).unwrap();
        let number = |q: &str, what: &str| -> usize {
            let a = answer(q);
            let v = a.strip_prefix(&format!("The number of {what} is ")).and_then(|r| r.strip_suffix('.'));
            v.unwrap_or_else(|| panic!("{q:?} answered {a:?}")).parse().unwrap()
        };
        let colours = ["red", "green", "blue", "yellow"];
        let by_colour: Vec<usize> = colours
            .iter()
            .map(|c| number(&format!("How many {c} shapes are there?"), &format!("{c} shapes")))
            .collect();
        assert_eq!(by_colour.iter().sum::<usize>(), n);
        let kinds: usize = ["circle", "square", "triangle"]
            .iter()
            .map(|k| number(&format!("How many {k}s are there?"), &format!("{k}s")))
            .sum();
        assert_eq!(kinds, n);
        let pairs: usize = colours
            .iter()
            .flat_map(|c| ["circle", "square", "triangle"].map(|k| (c, k)))
            .map(|(c, k)| number(&format!("How many {c} {k}s are there?"), &format!("{c} {k}s")))
            .sum();
        assert_eq!(pairs, n);
        let small_not_red = number("How many small shapes are not red?", "small shapes that are not red");
        let large_not_red = number("How many large shapes are not red?", "large shapes that are not red");
        assert_eq!(small_not_red + large_not_red, n - by_colour[0]);
        let tally = format!(
            "Red: {}. Green: {}. Blue: {}. Yellow: {}.",
            by_colour[0], by_colour[1], by_colour[2], by_colour[3]
        );
        assert_eq!(answer("Count the shapes by colour."), tally);

        let a = record(&p, Medium::Image, 5, 1);
        assert_eq!(a.messages.len(), 10);
        assert!(a.messages[0].content.starts_with("<image>How many "));
        assert!(!a.messages[2].content.contains("<image>"));
        assert_eq!(a.images, vec![sharegpt::image_path(&p)]);
        assert_eq!(a, record(&p, Medium::Image, 5, 1));
        assert_ne!(a, record(&p, Medium::Image, 5, 2), "another seed draws other questions");
        assert_eq!(record(&p, Medium::Image, 100, 1).messages.len(), 56, "all 28 questions when more are asked for");
    }

    #[test]
    fn text_chats_state_the_scene_in_words_and_ask_the_same_questions() {
        let cfg = Config { seed: 3, level: 1, size: 112 };
        let p = generate(Family::Shapes, &cfg, 7).unwrap();
        let (image, text) = (record(&p, Medium::Image, 5, 1), record(&p, Medium::Text, 5, 1));
        assert!(text.images.is_empty());
        assert!(text.messages.iter().all(|m| !m.content.contains("<image>")));
        // The first turn is the text twin's scene and facts, then the image chat's question.
        let (scene, question) = text.messages[0].content.split_once('\n').unwrap();
        assert_eq!(format!("<image>{question}"), image.messages[0].content);
        assert_eq!(scene, p.scene_in_words());
        assert_eq!(p.text_twin(), format!("{scene}\n{}", p.question_with_choices()), "the twin states the same scene");
        assert_eq!(scene.matches(" there is ").count(), p.trace.facts.len());
        assert_eq!(&text.messages[1..], &image.messages[1..], "same questions and answers after the first turn");
    }

    #[test]
    fn families_without_questions_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config { seed: 0, level: 1, size: 112 };
        let spec = SetSpec { split: Split::Train, n: 2, turns: 4, seed: 0, medium: Medium::Image };
        let err = export(dir.path(), "x", &[Family::Bars], &cfg, spec).unwrap_err();
        assert!(err.to_string().contains("bars"), "{err}");
        let err = export(dir.path(), "x", &[Family::Shapes], &cfg, SetSpec { turns: 0, ..spec }).unwrap_err();
        assert!(err.to_string().contains("0"), "{err}");
    }

    #[test]
    fn text_sets_write_no_images() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config { seed: 0, level: 1, size: 112 };
        let spec = SetSpec { split: Split::Train, n: 3, turns: 4, seed: 0, medium: Medium::Text };
        let (file, turns) = export(dir.path(), "t", &[Family::Shapes], &cfg, spec).unwrap();
        assert_eq!(turns, 12);
        let records = sharegpt::read_json(&file).unwrap();
        assert!(records.iter().all(|r| r.images.is_empty()));
        assert_eq!(pngs(dir.path()), 0, "a text set writes no pictures");
        export(dir.path(), "i", &[Family::Shapes], &cfg, SetSpec { medium: Medium::Image, ..spec }).unwrap();
        assert_eq!(pngs(dir.path()), 3);
    }

    /// PNG files under `{dir}/images/` (none if the folder does not exist).
    fn pngs(dir: &Path) -> usize {
        let Ok(entries) = std::fs::read_dir(dir.join("images")) else { return 0 };
        entries.flatten().filter(|e| e.path().extension().is_some_and(|x| x == "png")).count()
    }
}
