//! Pipeline tests: determinism per seed, a reasoner blind to the answer and the trace, stats that
//! add up, and records in the Vision-R1-cold layout.
use super::describer::{DescribeMode, describe};
use super::pipeline::{BridgeConfig, Stage, bridge, bridge_text, reasoner_input, stream};
use super::reasoner::reason;
use crate::data::synthetic::{Config, Family, Problem, Split, Step, generate_mix};

fn problems(n: usize) -> Vec<Problem> {
    generate_mix(&Family::ALL, &Config { seed: 21, level: 2, size: 112 }, Split::Train, n).unwrap()
}

#[test]
fn same_seed_same_output_other_seed_other_output() {
    let ps = problems(6);
    let cfg = BridgeConfig::default();
    let a = bridge(&ps, DescribeMode::PseudoCotConditioned, &cfg).unwrap();
    let b = bridge(&ps, DescribeMode::PseudoCotConditioned, &cfg).unwrap();
    assert_eq!(a.samples, b.samples);
    assert_eq!(a.records, b.records);
    assert_eq!(a.stats, b.stats);
    let c = bridge(&ps, DescribeMode::PseudoCotConditioned, &BridgeConfig { seed: 1, ..cfg }).unwrap();
    assert_ne!(a.samples, c.samples, "another bridge seed should change wording or reasoning");
}

#[test]
fn the_reasoner_never_sees_the_answer_or_the_trace() {
    let cfg = BridgeConfig::default();
    for p in problems(5) {
        let d = describe(&p, DescribeMode::PseudoCotConditioned, &mut stream(cfg.seed, Stage::Describe, &p));
        let out = reason(&reasoner_input(&p, &d), &cfg.knobs, &mut stream(cfg.seed, Stage::Reason, &p)).unwrap();
        let mut q = p.clone();
        q.answer = if p.choices.is_empty() { "-999".into() } else { "Z".into() };
        q.trace.steps = vec![Step { text: "Something else entirely".into(), value: "-999".into() }];
        q.png.clear();
        let out2 = reason(&reasoner_input(&q, &d), &cfg.knobs, &mut stream(cfg.seed, Stage::Reason, &q)).unwrap();
        assert_eq!(out, out2, "{}: the reasoner's output moved with the answer", p.id);
        assert!(!out.reasoning.contains("-999"));
    }
}

#[test]
fn stats_add_up_and_records_have_the_cold_start_layout() {
    let ps = problems(10);
    let run = bridge(&ps, DescribeMode::PseudoCotConditioned, &BridgeConfig::default()).unwrap();
    let s = &run.stats;
    assert_eq!(s.overall.total, ps.len());
    assert_eq!(s.overall.kept + s.overall.dropped(), s.overall.total);
    assert_eq!(s.per_family.values().map(|c| c.total).sum::<usize>(), ps.len());
    assert_eq!(s.per_family.values().map(|c| c.kept).sum::<usize>(), s.overall.kept);
    assert_eq!(s.overall.kept, run.records.len());
    assert!(s.overall.slips_caught <= s.overall.slips_made);
    for (r, &i) in run.records.iter().zip(&run.kept) {
        let p = &ps[i];
        assert_eq!(r.messages[0].content, p.problem());
        assert!(!r.messages[0].content.contains("think"), "no format instruction in the user turn");
        assert_eq!(r.images, vec![format!("images/{}.png", p.id)]);
        assert!(r.messages[1].content.starts_with("<think> "));
    }
    let text = bridge_text(&ps, &BridgeConfig::default()).unwrap();
    assert!(text.stats.overall.keep_rate() > 0.6, "{:?}", text.stats.overall);
    for r in &text.records {
        assert!(r.images.is_empty() && !r.messages[0].content.contains("<image>"));
        assert!(!r.messages[1].content.contains("description") && !r.messages[1].content.contains("image"));
    }
    let json = serde_json::to_string(s).unwrap();
    assert_eq!(serde_json::from_str::<super::BridgeStats>(&json).unwrap(), *s);
}
