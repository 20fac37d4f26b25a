//! What a bridging run produced ([`BridgeStats`], written as `bridge_stats.json`): totals, kept,
//! drops by reason (`filter.rs`), slips made and caught, guesses, reflection words over the kept
//! set, word replacements and CoT lengths, per family and overall.
//!
//! Reflection words are counted as the paper's Table 4 (v4) lists them: "Wait", "Hmm",
//! "Alternatively", "Check", "Mistake", here case-insensitively at the start of a word ("double-check"
//! and "checks" count for "Check", "recheck" does not), over the kept reasoning after word
//! replacement. Lengths are whitespace-separated words and characters of the kept reasoning (the
//! text between the think tags).
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::filter::{DropReason, Kept, Target};
use super::reasoner::RawOutput;
use crate::data::synthetic::Family;

/// The reflection words of Table 4.
pub const REFLECTION_WORDS: [&str; 5] = ["wait", "hmm", "alternatively", "check", "mistake"];

/// Occurrences of each reflection word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReflectionCounts {
    pub wait: usize,
    pub hmm: usize,
    pub alternatively: usize,
    pub check: usize,
    pub mistake: usize,
}

impl ReflectionCounts {
    /// Counts the words in `text` (see the module header).
    pub fn of(text: &str) -> Self {
        let lower = text.to_lowercase();
        let n = |w: &str| {
            lower
                .match_indices(w)
                .filter(|(i, _)| lower[..*i].chars().next_back().is_none_or(|c| !c.is_alphabetic()))
                .count()
        };
        ReflectionCounts {
            wait: n(REFLECTION_WORDS[0]),
            hmm: n(REFLECTION_WORDS[1]),
            alternatively: n(REFLECTION_WORDS[2]),
            check: n(REFLECTION_WORDS[3]),
            mistake: n(REFLECTION_WORDS[4]),
        }
    }

    pub fn total(&self) -> usize {
        self.wait + self.hmm + self.alternatively + self.check + self.mistake
    }

    fn add(&mut self, o: &ReflectionCounts) {
        self.wait += o.wait;
        self.hmm += o.hmm;
        self.alternatively += o.alternatively;
        self.check += o.check;
        self.mistake += o.mistake;
    }
}

/// The counts of one group of samples.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub total: usize,
    pub kept: usize,
    pub wrong_answer: usize,
    pub empty: usize,
    pub inconsistent: usize,
    pub reward_check: usize,
    /// Reasonings with a slip, and those where a reflection fixed it.
    pub slips_made: usize,
    pub slips_caught: usize,
    /// Reasonings that lacked a needed value in their description.
    pub guessed: usize,
    /// Reflection words over the kept set.
    pub reflection: ReflectionCounts,
    /// Kept samples with at least one reflection word.
    pub kept_with_reflection: usize,
    pub replacements: usize,
    pub kept_words: usize,
    pub kept_chars: usize,
    pub mean_words: f64,
    pub mean_chars: f64,
}

impl Counts {
    /// Adds one sample.
    pub fn add(&mut self, raw: &RawOutput, outcome: &Result<Kept, DropReason>) {
        self.total += 1;
        self.slips_made += raw.slipped as usize;
        self.slips_caught += raw.caught as usize;
        self.guessed += raw.guessed as usize;
        match outcome {
            Ok(k) => {
                self.kept += 1;
                let r = ReflectionCounts::of(&k.reasoning);
                self.kept_with_reflection += (r.total() > 0) as usize;
                self.reflection.add(&r);
                self.replacements += k.replacements;
                self.kept_words += k.reasoning.split_whitespace().count();
                self.kept_chars += k.reasoning.chars().count();
                self.mean_words = self.kept_words as f64 / self.kept as f64;
                self.mean_chars = self.kept_chars as f64 / self.kept as f64;
            }
            Err(DropReason::WrongAnswer) => self.wrong_answer += 1,
            Err(DropReason::Empty) => self.empty += 1,
            Err(DropReason::Inconsistent) => self.inconsistent += 1,
            Err(DropReason::RewardCheck) => self.reward_check += 1,
        }
    }

    pub fn dropped(&self) -> usize {
        self.wrong_answer + self.empty + self.inconsistent + self.reward_check
    }

    /// Kept / total (0 for an empty group).
    pub fn keep_rate(&self) -> f64 {
        if self.total == 0 { 0.0 } else { self.kept as f64 / self.total as f64 }
    }
}

/// One run of the pipeline: how it described, what it paired with, and its counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BridgeStats {
    /// `pseudo_cot_conditioned`, `caption` or `text_twin`.
    pub run: String,
    pub target: Target,
    pub overall: Counts,
    pub per_family: BTreeMap<Family, Counts>,
}

impl BridgeStats {
    pub fn new(run: &str, target: Target) -> Self {
        BridgeStats { run: run.to_string(), target, overall: Counts::default(), per_family: BTreeMap::new() }
    }

    pub fn add(&mut self, family: Family, raw: &RawOutput, outcome: &Result<Kept, DropReason>) {
        self.overall.add(raw, outcome);
        self.per_family.entry(family).or_default().add(raw, outcome);
    }

    /// One table line per family and one for the whole run.
    pub fn table(&self) -> Vec<String> {
        let row = |name: &str, c: &Counts| {
            format!(
                "{:<24}{:<10}{:>6}{:>6}{:>7.1}%{:>7}{:>7}{:>7}{:>7}{:>7}{:>8.1}{:>8.1}",
                self.run,
                name,
                c.total,
                c.kept,
                100.0 * c.keep_rate(),
                c.wrong_answer,
                c.empty,
                c.inconsistent,
                c.slips_made,
                c.slips_caught,
                c.mean_words,
                c.mean_chars
            )
        };
        let mut out: Vec<String> = self.per_family.iter().map(|(f, c)| row(f.name(), c)).collect();
        out.push(row("all", &self.overall));
        out
    }

    /// The header of [`BridgeStats::table`].
    pub fn header() -> String {
        format!(
            "{:<24}{:<10}{:>6}{:>6}{:>8}{:>7}{:>7}{:>7}{:>7}{:>7}{:>8}{:>8}",
            "run", "family", "total", "kept", "keep", "wrong", "empty", "incons", "slips", "caught", "words", "chars"
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflection_words_count_at_word_starts() {
        let r = ReflectionCounts::of(
            "Wait, hmm. Let me double-check; it checks out. Recheck? No mistake. Alternatively, wait.",
        );
        assert_eq!(r, ReflectionCounts { wait: 2, hmm: 1, alternatively: 1, check: 2, mistake: 1 });
        assert_eq!(r.total(), 7);
    }
}
