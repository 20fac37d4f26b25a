//! Grader tests: verdicts mathruler 0.1.0 gives (checked against it by hand), the extraction
//! helpers, and a seeded fuzz test for panics and the step budget.
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::*;

#[test]
fn verdicts_match_mathruler() {
    let correct = [
        ("5", "5"),
        ("1,000", "1000"),
        ("\\frac{1}{2}", "0.5"),
        ("1/2", "\\dfrac{1}{2}"),
        ("0.5", "\\frac12"),
        ("50\\%", "50"),
        ("5 cm", "5"),
        ("45^\\circ", "45"),
        ("x = 3", "3"),
        ("\\text{(A)}", "(A)"),
        ("a", "A"),
        ("(1, 2)", "(1,2)"),
        ("\\left[1,2\\right)", "[1,2)"),
        ("2\\sqrt{2}", "\\sqrt{8}"),
        ("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}"),
        ("2\\pi", "\\pi*2"),
        ("1.5", "3/2"),
        ("7\\frac{1}{2}", "7.5"),
        ("\\$1,000", "1000"),
        ("1e3", "1000"),
        ("3.0", "3"),
        ("-\\frac{3}{4}", "\\frac{-3}{4}"),
        ("2x+1", "1+2x"),
    ];
    for (pred, gold) in correct {
        assert!(grade_answer(pred, gold), "{pred:?} should grade correct against {gold:?}");
    }
    let wrong = [
        ("6", "5"),
        ("2/4", "1/2"),     // unreduced fractions are compared as strings
        ("0.5", "50"),      // an integer needs an exact match
        ("(1,2]", "(1,2)"), // brackets must match
        ("(2,1)", "(1,2)"),
        ("1,2,3", "1,2"),
        ("", "5"),
        ("0.1+0.2", "0.3"), // sympy Float rounding
        ("B", "A"),
        ("2^3", "8"),
        ("\\frac{1", "1/2"),
    ];
    for (pred, gold) in wrong {
        assert!(!grade_answer(pred, gold), "{pred:?} should grade wrong against {gold:?}");
    }
}

#[test]
fn extraction_helpers() {
    assert_eq!(last_boxed("a \\boxed{1} b \\boxed{ \\frac{1}{2} } c"), Some("\\frac{1}{2}"));
    assert_eq!(last_boxed("\\boxed{1} \\boxed{2"), None); // the last one does not close
    assert_eq!(last_boxed("no box"), None);
    assert_eq!(extract_boxed_content("no box"), "None");
    assert_eq!(extract_boxed_content("\\boxed{{x}}"), "{x}");
    assert_eq!(answer_tag("<think>t</think><answer> 5 </answer><answer>6</answer>"), Some("5"));
    assert_eq!(answer_tag("<answer>5"), None);
    assert_eq!(strip_final_answer(" Final Answer: 5 "), "5");
    assert_eq!(strip_final_answer("final answer:\\frac{1}{2}"), "\\frac{1}{2}");
    assert_eq!(strip_final_answer("The Final Answer: 5"), "The Final Answer: 5");
    assert_eq!(strip_final_answer("Final"), "Final");
}

#[test]
fn over_long_answers_are_only_compared_as_strings() {
    let long = "1".repeat(MAX_ANSWER_CHARS + 1);
    assert!(grade_answer(&long, &format!(" {long}\n")));
    assert!(!grade_answer(&long, "1"));
}

#[test]
fn an_exhausted_budget_grades_wrong_and_never_overspends() {
    let mut b = Budget::new(10);
    let g = grade_answer_with("\\frac{1}{2}", "0.5", &mut b);
    assert!(g.exhausted && !g.correct && g.steps <= 10);
}

/// Random strings built from the pieces answers are made of, and mutations of real answers.
fn random_answer(rng: &mut ChaCha8Rng) -> String {
    const PIECES: [&str; 48] = [
        "0", "1", "2", "7", "12", "3.5", ".", ",", "-", "+", "*", "/", "^", "^{", "_", "(", ")", "[", "]", "{", "}",
        "\\{", "\\}", "\\frac", "\\dfrac", "\\sqrt", "\\pi", "\\text{", "\\left(", "\\right)", "\\circ", "\\%", "$",
        "%", " ", "\n", "x", "y", "e", "i", "sqrt", "pi", "=", "\\", "cm", "million", "√", "∞",
    ];
    const SEEDS: [&str; 8] = [
        "\\frac{\\sqrt{3}}{2}",
        "(-\\infty, 3]",
        "\\{1, 2, 3\\}",
        "7\\frac{1}{2}\\text{ cm}",
        "2x^2+3x-1",
        "\\boxed{A}",
        "1,000,000",
        "(x+1)(x-1)/(x^2-1)",
    ];
    if rng.random_bool(0.3) {
        let mut s: Vec<char> = SEEDS[rng.random_range(0..SEEDS.len())].chars().collect();
        for _ in 0..rng.random_range(1..6) {
            let i = rng.random_range(0..=s.len());
            match rng.random_range(0..3) {
                0 if i < s.len() => {
                    s.remove(i);
                }
                1 => s.insert(i, char::from_u32(rng.random_range(0..0x3000)).unwrap_or('?')),
                _ => s.insert(i, PIECES[rng.random_range(0..PIECES.len())].chars().next().unwrap_or('x')),
            }
        }
        return s.into_iter().collect();
    }
    let n = if rng.random_bool(0.02) { rng.random_range(200..3000) } else { rng.random_range(0..24) };
    (0..n).map(|_| PIECES[rng.random_range(0..PIECES.len())]).collect()
}

#[test]
fn fuzz_never_panics_and_stays_within_the_step_budget() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    let mut most = 0;
    for case in 0..6000 {
        let pred = random_answer(&mut rng);
        let gold = if rng.random_bool(0.2) { pred.clone() } else { random_answer(&mut rng) };
        let limit = if case % 10 == 0 { 2_000 } else { DEFAULT_STEP_BUDGET };
        let mut b = Budget::new(limit);
        let g = grade_answer_with(&pred, &gold, &mut b);
        assert!(g.steps <= limit, "{pred:?} vs {gold:?} spent {} of {limit}", g.steps);
        if pred == gold && !g.exhausted {
            assert!(g.correct, "{pred:?} is not equal to itself");
        }
        let again = grade_answer_with(&pred, &gold, &mut Budget::new(limit));
        assert_eq!(g, again, "{pred:?} vs {gold:?} is not deterministic");
        most = most.max(g.steps);
    }
    // Pathological shapes: deep nesting, long products, huge powers and numbers.
    let nested = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    let braces = format!("{}1{}", "\\frac{".repeat(300), "}".repeat(300));
    let product = "(x+1)".repeat(60);
    let power = "((x+y)^9)^9";
    let big = format!("{}/{}", "9".repeat(40), "7".repeat(40));
    for s in [nested.as_str(), braces.as_str(), product.as_str(), power, big.as_str()] {
        let g = grade_answer_with(s, "x+1", &mut Budget::new(DEFAULT_STEP_BUDGET));
        assert!(g.steps <= DEFAULT_STEP_BUDGET && !g.correct, "{s:?}");
    }
    assert!(most > 0);
}
