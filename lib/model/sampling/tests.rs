use super::*;
use tch::Device;

const NEG: f32 = f32::NEG_INFINITY;

fn row(t: &Tensor) -> Vec<f32> {
    Vec::<f32>::try_from(t.view(-1)).unwrap()
}

fn params(temperature: f64, top_k: i64, top_p: f64) -> SamplingParams {
    SamplingParams { temperature, top_k, top_p, ..Default::default() }
}

fn close(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((g.is_infinite() && g == w) || (g - w).abs() < 1e-6, "got {got:?}, want {want:?}");
    }
}

#[test]
fn top_k_keeps_the_k_largest_and_ties() {
    let s = Tensor::from_slice(&[1f32, 2.0, 3.0, 4.0, 5.0]).view([1, -1]);
    close(&row(&filter_logits(&s, &params(1.0, 2, 1.0))), &[NEG, NEG, NEG, 4.0, 5.0]);
    let s = Tensor::from_slice(&[1f32, 3.0, 3.0, 2.0]).view([1, -1]);
    close(&row(&filter_logits(&s, &params(1.0, 1, 1.0))), &[NEG, 3.0, 3.0, NEG]);
    // k ≥ vocab and k = 0 are no-ops.
    close(&row(&filter_logits(&s, &params(1.0, 9, 1.0))), &[1.0, 3.0, 3.0, 2.0]);
    close(&row(&filter_logits(&s, &params(1.0, 0, 1.0))), &[1.0, 3.0, 3.0, 2.0]);
}

#[test]
fn top_p_drops_the_tail_up_to_one_minus_p() {
    // probs 0.1, 0.2, 0.3, 0.4: ascending cumulative 0.1, 0.3, 0.6, 1.0.
    let lp: Vec<f32> = [0.1f32, 0.2, 0.3, 0.4].iter().map(|p| p.ln()).collect();
    let s = Tensor::from_slice(&lp).view([1, -1]);
    close(&row(&filter_logits(&s, &params(1.0, 0, 0.5))), &[NEG, NEG, lp[2], lp[3]]);
    close(&row(&filter_logits(&s, &params(1.0, 0, 0.75))), &[NEG, lp[1], lp[2], lp[3]]);
    // The most likely token is always kept.
    close(&row(&filter_logits(&s, &params(1.0, 0, 0.01))), &[NEG, NEG, NEG, lp[3]]);
    // Rows are filtered independently, whatever their order of tokens.
    let s2 = Tensor::stack(&[s.view(-1), s.view(-1).flip([0])], 0);
    let f = filter_logits(&s2, &params(1.0, 0, 0.5));
    close(&row(&f.get(1)), &[lp[3], lp[2], NEG, NEG]);
}

#[test]
fn temperature_comes_before_top_k_and_top_p() {
    // 2·ln p at temperature 2 is ln p again: top-p 0.5 keeps two tokens. Had top-p run on the unscaled scores
    // (probs ∝ p²: 0.033, 0.133, 0.3, 0.533) it would keep only the last.
    let lp: Vec<f32> = [0.1f32, 0.2, 0.3, 0.4].iter().map(|p| p.ln()).collect();
    let s = Tensor::from_slice(&lp).view([1, -1]) * 2.0;
    close(&row(&filter_logits(&s, &params(2.0, 0, 0.5))), &[NEG, NEG, lp[2], lp[3]]);
    // top-k 3 then top-p 0.7 on the renormalised 2/9, 3/9, 4/9 (cumulative 0.222, 0.556, 1): drops only the 2/9.
    close(&row(&filter_logits(&s, &params(2.0, 3, 0.7))), &[NEG, NEG, lp[2], lp[3]]);
    // top-k 3 then top-p 0.9 (threshold 0.1 < 0.222): keeps all three.
    close(&row(&filter_logits(&s, &params(2.0, 3, 0.9))), &[NEG, lp[1], lp[2], lp[3]]);
}

#[test]
fn inverse_cdf_never_picks_a_zero_probability_token() {
    let p = Tensor::from_slice(&[0f32, 0.5, 0.0, 0.5]).view([1, -1]);
    let pick = |u: f64| inverse_cdf(&p, &[u]).int64_value(&[0]);
    assert_eq!(pick(0.0), 1);
    assert_eq!(pick(0.49), 1);
    assert_eq!(pick(0.5), 3);
    assert_eq!(pick(0.999_999), 3);
}

/// A fake model whose next logits depend only on the previous token: row `t` of a fixed random table.
fn table(v: i64) -> Tensor {
    let mut rng = ChaCha8Rng::seed_from_u64(42);
    let vals: Vec<f32> = (0..v * v).map(|_| rng.random::<f32>() * 4.0).collect();
    Tensor::from_slice(&vals).view([v, v])
}

fn run(tokens: &[i64], params: &SamplingParams, seeds: &[u64]) -> Vec<Generation> {
    let t = table(16);
    let first = t.index_select(0, &Tensor::from_slice(tokens));
    decode_loop(first, params, seeds, |next, _| Ok(t.index_select(0, &next.view(-1)))).unwrap()
}

#[test]
fn same_seed_same_output_whatever_the_batch() {
    let p = SamplingParams { temperature: 0.9, top_p: 0.95, top_k: 8, max_new_tokens: 20, ..Default::default() };
    let alone = run(&[5], &p, &[7]);
    let batch = run(&[3, 5, 9, 5], &p, &[1, 7, 2, 8]);
    assert_eq!(batch[1], alone[0]);
    assert_ne!(batch[1].tokens, batch[3].tokens, "different seeds should differ");
    assert_eq!(alone[0].tokens.len(), 20);
    assert!(alone[0].truncated);
    // With an EOS that stops some rows early, the others are unaffected.
    let eos = SamplingParams { eos_token_ids: vec![4, 11], ..p.clone() };
    let alone = run(&[5], &eos, &[7]);
    let batch = run(&[3, 5, 9], &eos, &[1, 7, 2]);
    assert_eq!(batch[1], alone[0]);
    for g in &batch {
        let stopped = g.tokens.iter().position(|t| eos.eos_token_ids.contains(t));
        match stopped {
            Some(i) => assert!(i + 1 == g.tokens.len() && !g.truncated, "{g:?}"),
            None => assert!(g.tokens.len() == 20 && g.truncated, "{g:?}"),
        }
    }
}

#[test]
fn greedy_follows_argmax_and_reports_raw_logprobs() {
    let t = table(16);
    let g = run(&[0, 6], &SamplingParams::greedy(5, vec![]), &[0, 0]);
    for (start, out) in [0i64, 6].iter().zip(&g) {
        let mut prev = *start;
        for (tok, lp) in out.tokens.iter().zip(&out.logprobs) {
            let logits = t.get(prev);
            assert_eq!(*tok, logits.argmax(-1, false).int64_value(&[]));
            let want = logits.log_softmax(-1, Kind::Float).double_value(&[*tok]) as f32;
            assert!((lp - want).abs() < 1e-6);
            prev = *tok;
        }
    }
}

#[test]
fn sampled_logprobs_are_after_temperature_before_filtering() {
    let t = table(16);
    let p = SamplingParams { temperature: 0.5, top_k: 3, max_new_tokens: 6, ..Default::default() };
    let g = &run(&[2], &p, &[5])[0];
    let mut prev = 2;
    for (tok, lp) in g.tokens.iter().zip(&g.logprobs) {
        let logits = t.get(prev) / 0.5;
        let want = logits.log_softmax(-1, Kind::Float).double_value(&[*tok]) as f32;
        assert!((lp - want).abs() < 1e-6);
        // Only top-3 tokens can be drawn.
        let kth = logits.topk(3, -1, true, true).0.double_value(&[2]);
        assert!(logits.double_value(&[*tok]) >= kth);
        prev = *tok;
    }
}

#[test]
fn rejects_bad_params() {
    let t = Tensor::zeros([1, 4], (Kind::Float, Device::Cpu));
    let bad = SamplingParams { top_p: 0.0, ..Default::default() };
    assert!(decode_loop(t.shallow_clone(), &bad, &[0], |_, _| unreachable!()).is_err());
    let e = decode_loop(t, &SamplingParams::default(), &[0, 1], |_, _| unreachable!()).unwrap_err();
    assert!(e.to_string().contains("seeds"), "{e}");
}

#[test]
fn suppressed_tokens_are_never_chosen() {
    let greedy = run(&[0, 6], &SamplingParams::greedy(6, vec![]), &[0, 0]);
    let banned: Vec<i64> = greedy.iter().flat_map(|g| g.tokens.clone()).collect();
    let p = SamplingParams { suppress_tokens: banned.clone(), ..SamplingParams::greedy(6, vec![]) };
    for g in run(&[0, 6], &p, &[0, 0]) {
        assert!(g.tokens.iter().all(|x| !banned.contains(x)), "{g:?} uses one of {banned:?}");
    }
    let p = SamplingParams { suppress_tokens: (0..8).chain([99]).collect(), max_new_tokens: 30, ..Default::default() };
    for g in run(&[1, 2, 3], &p, &[4, 5, 6]) {
        assert!(g.tokens.iter().all(|&x| x >= 8), "{g:?}");
        // Log-probs stay those of the unsuppressed distribution (what the trainer recomputes).
        assert!(g.logprobs.iter().all(|&l| l < 0.0 && l.is_finite()));
    }
}

/// Finished rows leave the batch once they are a quarter of it; the others are unaffected.
#[test]
fn finished_rows_are_retired_from_the_batch() {
    let t = table(16);
    let p = SamplingParams { temperature: 1.0, max_new_tokens: 30, eos_token_ids: vec![4, 11], ..Default::default() };
    let starts = [3i64, 5, 9, 1, 2, 7, 8, 0];
    let seeds: Vec<u64> = (0..8).collect();
    let (mut rows, mut sizes) = (8i64, vec![]);
    let first = t.index_select(0, &Tensor::from_slice(&starts));
    let got = decode_loop(first, &p, &seeds, |next, keep| {
        if let Some(k) = keep {
            assert!(k.size()[0] < rows, "keep must drop rows");
            rows = k.size()[0];
            sizes.push(rows);
        }
        assert_eq!(next.size(), vec![rows, 1], "next has one id per live row");
        Ok(t.index_select(0, &next.view(-1)))
    })
    .unwrap();
    assert!(!sizes.is_empty(), "some rows should have been retired: {got:?}");
    for (i, g) in got.iter().enumerate() {
        assert_eq!(g, &run(&[starts[i]], &p, &[seeds[i]])[0], "row {i} differs from its run alone");
    }
}
