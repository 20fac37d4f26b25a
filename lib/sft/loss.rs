//! The SFT objective: next-token cross-entropy on labelled tokens (papers_spec §1.3, §2.3: "standard
//! LLaMA-Factory SFT: CE on assistant tokens only").
//!
//! transformers 5.17 `ForCausalLMLoss`: logits upcast to f32; targets are the labels shifted left by one
//! (position `t` predicts `labels[t+1]`, the last position predicts nothing); `cross_entropy(ignore_index=-100)`
//! with `reduction="sum"` divided by `num_items_in_batch`, or `reduction="mean"` when that is absent.
//!
//! Gradient accumulation ([`Normalization`]): HF Trainer (≥ 4.46, the transformers in use now) counts the
//! targets of *all* micro-batches of one optimizer step, `num_items_in_batch = Σ (labels[..., 1:] != -100)`,
//! and every micro-batch's loss is its token-sum divided by that count, with no further division by the
//! accumulation steps. Summed over the micro-batches this is exactly the token-mean of one big batch
//! ([`Normalization::GlobalTokenMean`], the default here). Older HF (< 4.46) and models that do not accept
//! loss kwargs take a token-mean per micro-batch and divide by the accumulation steps
//! ([`Normalization::MicroBatchTokenMean`]), which weights micro-batches equally whatever their token counts.
//! Across data-parallel ranks HF also sums the counts (`average_tokens_across_devices`, default true); with a
//! single process there is nothing to gather. Vision-R1's 1×1×32-GPU setup under old HF would be a mean of
//! per-sample token-means; which HF its LLaMA-Factory ran is not recorded (UNVERIFIED), so both are offered.
//!
//! No deviation in the arithmetic: `cross_entropy_loss` is the same ATen op (log-softmax + NLL in f32).
use anyhow::{Result, ensure};
use tch::{Kind, Reduction, Tensor};

use super::labels::IGNORE_INDEX;

/// How a micro-batch's summed token loss is scaled to its share of the optimizer-step loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Normalization {
    /// HF Trainer ≥ 4.46: divide by the target count of the whole accumulation step ([`count_targets`] summed
    /// over its micro-batches).
    GlobalTokenMean { step_targets: i64 },
    /// HF < 4.46: token-mean of this micro-batch divided by the number of micro-batches.
    MicroBatchTokenMean { micro_batches: usize },
}

/// Trained next-token targets of a `[B, T]` label tensor: `(labels[:, 1:] != -100).sum()`.
pub fn count_targets(labels: &Tensor) -> i64 {
    let t = labels.size().last().copied().unwrap_or(0);
    if t < 2 {
        return 0;
    }
    labels.narrow(-1, 1, t - 1).ne(IGNORE_INDEX).sum(Kind::Int64).int64_value(&[])
}

/// Summed next-token cross-entropy (f32 scalar, differentiable) and the number of targets, from logits
/// `[B, T, V]` and labels `[B, T]` aligned with the inputs.
pub fn token_ce_sum(logits: &Tensor, labels: &Tensor) -> Result<(Tensor, i64)> {
    let (ls, ys) = (logits.size(), labels.size());
    ensure!(
        ls.len() == 3 && ys.len() == 2 && ls[..2] == ys[..],
        "logits must be [batch, seq, vocab] and labels [batch, seq] with the same batch and seq, got {ls:?} and {ys:?}"
    );
    ensure!(
        labels.kind() == Kind::Int64,
        "labels must be int64 token ids with -100 for ignored, got {:?}",
        labels.kind()
    );
    let (b, t, v) = (ls[0], ls[1], ls[2]);
    if t < 2 {
        return Ok((logits.sum(Kind::Float) * 0.0, 0));
    }
    let pred = logits.narrow(1, 0, t - 1).to_kind(Kind::Float).reshape([b * (t - 1), v]);
    let target = labels.narrow(1, 1, t - 1).reshape([b * (t - 1)]).to_device(logits.device());
    let sum = pred.cross_entropy_loss::<Tensor>(&target, None, Reduction::Sum, IGNORE_INDEX, 0.0);
    Ok((sum, count_targets(labels)))
}

/// This micro-batch's share of the optimizer-step SFT loss (backpropagate it directly, no extra scaling).
pub fn sft_loss(logits: &Tensor, labels: &Tensor, norm: Normalization) -> Result<Tensor> {
    let (sum, n) = token_ce_sum(logits, labels)?;
    match norm {
        Normalization::GlobalTokenMean { step_targets } => {
            ensure!(
                step_targets > 0 && step_targets >= n,
                "step_targets ({step_targets}) must be > 0 and count every micro-batch's targets (this one has {n}); \
                 sum count_targets over the micro-batches of the optimizer step"
            );
            Ok(sum / step_targets as f64)
        }
        Normalization::MicroBatchTokenMean { micro_batches } => {
            ensure!(micro_batches > 0, "micro_batches must be > 0");
            ensure!(n > 0, "micro-batch has no trained tokens; its token-mean is undefined (NaN in PyTorch)");
            Ok(sum / (n as f64 * micro_batches as f64))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::{Device, nn};

    const I: i64 = IGNORE_INDEX;

    #[test]
    fn hand_built_cross_entropy() {
        // vocab 3, uniform logits except one confident prediction: CE = ln 3 for uniform targets.
        let logits = Tensor::zeros([1, 4, 3], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[5i64, I, 2, 1]).view([1, 4]);
        let (sum, n) = token_ce_sum(&logits, &labels).unwrap();
        assert_eq!(n, 2);
        assert!((sum.double_value(&[]) - 2.0 * 3f64.ln()).abs() < 1e-6);
        // the first label never counts (nothing predicts it).
        assert_eq!(count_targets(&Tensor::from_slice(&[7i64, I]).view([1, 2])), 0);
        let bad = Tensor::from_slice(&[1i64, 2]).view([2, 1]);
        assert!(token_ce_sum(&logits, &bad).is_err());
    }

    /// Gradient of a tiny linear "LM" under k accumulated micro-batches vs one big batch.
    fn grads(batches: &[(Tensor, Tensor)], norm: impl Fn(&Tensor) -> Normalization) -> Tensor {
        // Deterministic weights: the global RNG is shared with tests running concurrently.
        let vs = nn::VarStore::new(Device::Cpu);
        let init = Tensor::arange(20, (Kind::Float, Device::Cpu)).sin().view([4, 5]);
        let w = vs.root().var_copy("w", &init);
        for (x, y) in batches {
            let logits = x.matmul(&w);
            sft_loss(&logits, y, norm(y)).unwrap().backward();
        }
        w.grad().copy()
    }

    #[test]
    fn accumulation_equals_one_big_batch_under_global_token_mean() {
        let x = (Tensor::arange(96, (Kind::Float, Device::Cpu)) * 0.7).cos().view([4, 6, 4]) * 2.0;
        let y = Tensor::from_slice(&[
            0i64, 1, 2, 3, 4, 0, /**/ I, I, 1, 1, I, I, /**/ I, 3, 3, 3, 3, 3, /**/ I, I, I, I, 4, 2,
        ])
        .view([4, 6]);
        let big = grads(&[(x.shallow_clone(), y.shallow_clone())], |y| Normalization::GlobalTokenMean {
            step_targets: count_targets(y),
        });
        let parts: Vec<(Tensor, Tensor)> = (0..4).map(|i| (x.narrow(0, i, 1), y.narrow(0, i, 1))).collect();
        let total: i64 = parts.iter().map(|(_, y)| count_targets(y)).sum();
        assert_eq!(total, 5 + 2 + 5 + 2);
        let acc = grads(&parts, |_| Normalization::GlobalTokenMean { step_targets: total });
        let diff = (&big - &acc).abs().max().double_value(&[]);
        assert!(diff < 1e-6, "accumulated vs big batch: {diff:e}");
        // Micro-batch token-mean / k weights micro-batches equally: different here (ragged counts) ...
        let mb = grads(&parts, |_| Normalization::MicroBatchTokenMean { micro_batches: 4 });
        assert!((&big - &mb).abs().max().double_value(&[]) > 1e-3);
        // ... and equal to the big batch when every micro-batch has the same number of targets.
        let even = Tensor::from_slice(&[0i64, 1, 2, I, I, I, /**/ I, 3, 3, I, I, I]).view([2, 6]);
        let xe = x.narrow(0, 0, 2);
        let big = grads(&[(xe.shallow_clone(), even.shallow_clone())], |_| Normalization::MicroBatchTokenMean {
            micro_batches: 1,
        });
        let parts: Vec<(Tensor, Tensor)> = (0..2).map(|i| (xe.narrow(0, i, 1), even.narrow(0, i, 1))).collect();
        let mb = grads(&parts, |_| Normalization::MicroBatchTokenMean { micro_batches: 2 });
        assert!((&big - &mb).abs().max().double_value(&[]) < 1e-6);
    }

    #[test]
    fn normalization_errors_name_the_fix() {
        let logits = Tensor::zeros([1, 3, 2], (Kind::Float, Device::Cpu));
        let labels = Tensor::from_slice(&[0i64, 1, 1]).view([1, 3]);
        let err = sft_loss(&logits, &labels, Normalization::GlobalTokenMean { step_targets: 1 }).unwrap_err();
        assert!(err.to_string().contains("count_targets"), "{err}");
        let none = Tensor::from_slice(&[0i64, I, I]).view([1, 3]);
        assert!(sft_loss(&logits, &none, Normalization::MicroBatchTokenMean { micro_batches: 1 }).is_err());
        let zero = sft_loss(&logits, &none, Normalization::GlobalTokenMean { step_targets: 3 }).unwrap();
        assert_eq!(zero.double_value(&[]), 0.0);
    }
}
