//! We-Math, following the official per-item answer rule (GitHub We-Math/We-Math, commit a57a0e83,
//! `evaluation/four_dimensional_metrics.py` and `evaluation/accuracy.py`, function `load_and_process_data`,
//! the same in both files since they were added, 94356cdb / d557c0b4, 2024-07-02; VLMEvalKit's
//! `vlmeval/dataset/utils/wemath.py` at 34aca824 holds the same rule on its `prediction` column), read and
//! re-derived.
//!
//! The official rule is string matching only (the README: the answer prompt fixes the format, so no model
//! extracts); per response:
//! 1. the text after the last `Answer` (case-sensitive, Python's `str.split('Answer')[-1]`: the whole
//!    response when it has none);
//! 2. stripped of whitespace (Python's `str.strip()`), every `>`, `<`, `:` and `.` removed wherever it
//!    stands (the character class `[>><<:.]`), stripped again;
//! 3. its first character when that is one of `ABCDEFGH` (upper case only), else nothing;
//! 4. correct when that letter equals the item's `answer` (string equality; nothing is never equal).
//!
//! Consequences the tests pin: `Answer: b` and `Answer: (B)` are wrong (a lower-case letter, a
//! parenthesis), `Answer: A, C` reads `A`, `**Answer:** B` is wrong (`*` first), a response without
//! `Answer` is read from its first character (`B. 32` reads `B`, `A triangle ...` reads `A`, `\boxed{B}`
//! nothing), and the last `Answer` wins. Vision-R1's `<answer> Final Answer: B </answer>` reads `B` under
//! the rule itself (`</answer>` is lower case and its `<`, `>` are removed), as does the bare `B` that
//! Vision-R1's own evaluation cuts out of that tag, so no adaptation is needed.
//!
//! Which numbers follow this rule: the papers' We-Math numbers (ReVisual-R1 Tab.2, strict score, papers_spec
//! §2.10; baselines run with VLMEvalKit) come from VLMEvalKit, whose `run.py` defaults We-Math to a
//! `gpt-4o-mini` judge: `mcq_vanilla_eval` (rule matching of option letters and texts, then the judge)
//! fills `hit`, and only without a judge does this string rule decide. With `--judge-url`,
//! [`crate::eval::bench::judged`] stands in for that path (its extraction is scored by this rule).
//!
//! Deviations: none in the rule. The script reads one JSON of all responses; here each response (each
//! sample) is scored alone, and the four-dimensional metrics of [`crate::eval::bench::score`] take
//! sample 0. The reference is the loader's trimmed `answer` (the official compares the raw field; every
//! testmini answer is one letter A-E, so the two agree).
use crate::eval::bench::BenchItem;
use crate::eval::bench::score::ItemScore;
use crate::eval::python;

/// The letters the official rule accepts as a response's first character.
const LETTERS: &str = "ABCDEFGH";

/// Scores `response` (every item has a rule).
pub fn score(item: &BenchItem, sample: usize, response: &str) -> Option<ItemScore> {
    let tail = processed(response);
    let letter = tail.chars().next().filter(|c| LETTERS.contains(*c)).map(String::from);
    let correct = letter.as_deref() == Some(item.answer.as_str());
    Some(ItemScore::new(item, sample, response, Some(tail), letter, correct))
}

/// Steps 1 and 2: the text after the last `Answer`, stripped, without `>`, `<`, `:` and `.`, stripped.
pub fn processed(response: &str) -> String {
    let after = response.rsplit("Answer").next().unwrap_or(response);
    let kept: String = python::strip(after).chars().filter(|c| !matches!(c, '>' | '<' | ':' | '.')).collect();
    python::strip(&kept).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::bench::Benchmark;

    fn item(answer: &str) -> BenchItem {
        let question = "Which?\nOptions: A. 1;B. 2;C. 3;D. 4; E. No correct answer";
        let choices = ["1", "2", "3", "4", "No correct answer"];
        BenchItem {
            id: "2steps_1/2steps_1".into(),
            ..BenchItem::fixture(Benchmark::WeMath, question, &choices, answer)
        }
    }

    /// The letter the rule reads from `response` (`None`: nothing).
    fn read(response: &str) -> Option<String> {
        score(&item("A"), 0, response).unwrap().prediction
    }

    fn ok(answer: &str, response: &str) -> bool {
        score(&item(answer), 0, response).unwrap().correct
    }

    #[test]
    fn answer_marker_and_format() {
        // The official prompt's template (`<Answer>: B`): its `>` and `:` are removed.
        assert!(ok("B", "<Thought process>: two steps ... <Answer>: B"));
        assert!(ok("C", "The perimeter is 12.\nAnswer: C. 3"));
        // Whitespace (newlines, Python's Unicode spaces such as U+3000) is stripped before and after.
        assert!(ok("C", "Answer:\n\n  C."));
        assert!(ok("D", "Answer:\u{3000}D"));
        // The last `Answer` wins: an earlier one in the reasoning does not count.
        assert!(ok("D", "Answer A looks tempting.\nFinal Answer: D"));
        assert!(!ok("A", "Answer A looks tempting.\nFinal Answer: D"));
        // The marker is case-sensitive: `answer: B` has none, so the first character `a` is read: nothing.
        assert_eq!(read("answer: B"), None);
        // Vision-R1's tag: the text after `Final Answer` is `: B </answer>`, read as `B`.
        assert!(ok("B", "<think>...</think>\n<answer> Final Answer: B </answer>"));
        // The bare letter Vision-R1's own evaluation cuts out of that tag reads the same.
        assert!(ok("B", " B"));
    }

    #[test]
    fn first_character_only_upper_a_to_h() {
        // Lower case is not a letter of the rule.
        assert_eq!(read("Answer: b"), None);
        // A parenthesis (or any other leading symbol, e.g. Markdown bold's `*`) hides the letter.
        assert_eq!(read("Answer: (B)"), None);
        assert_eq!(read("**Answer:** B"), None);
        // Several letters: only the first is read (`A, C` -> `A`; `BD` -> `B`).
        assert_eq!(read("Answer: A, C").as_deref(), Some("A"));
        assert_eq!(read("Answer: BD").as_deref(), Some("B"));
        // F-H are letters of the rule though We-Math options stop at E; I and beyond are not.
        assert_eq!(read("Answer: H").as_deref(), Some("H"));
        assert_eq!(read("Answer: I"), None);
        // A marker with nothing (or only removed punctuation) after it: nothing, wrong.
        assert_eq!(read("the Answer"), None);
        assert!(!ok("A", "Answer: ."));
        assert_eq!(read(""), None);
        // E (`No correct answer`) is scored like any letter.
        assert!(ok("E", "Answer: E"));
    }

    #[test]
    fn no_marker_reads_the_first_character() {
        // The whole response is the tail: a leading option letter counts.
        assert!(ok("B", "B. 32"));
        assert_eq!(score(&item("B"), 0, "B. 32").unwrap().extraction.as_deref(), Some("B 32"));
        // So does a capital that merely starts the reasoning (`A triangle ...` reads `A`).
        assert!(ok("A", "A triangle has three sides, so the answer is C."));
        // A phrase or a box without `Answer` reads nothing: `T`, `\`.
        assert!(!ok("C", "The answer is C."));
        assert_eq!(read("\\boxed{C}"), None);
        // Removed characters anywhere count before the first character: `.B` reads `B`.
        assert_eq!(read(".B").as_deref(), Some("B"));
    }
}
