//! Activation recomputation for training, per decoder layer (what `torch.utils.checkpoint` around each
//! `Qwen2_5_VLDecoderLayer` does when transformers' `gradient_checkpointing_enable()` is on), written with plain
//! autograd calls because tch has no custom autograd functions:
//!
//! ```text
//! forward  (no graph):  x₀ = embeds;  xᵢ₊₁ = layerᵢ(xᵢ), keeping only every xᵢ      (L activations of (B, S, h))
//!          (graph):     h = norm(x_L') with x_L' a leaf copy of x_L  ->  logits -> loss    (the caller's part)
//! backward:             loss.backward() gives g = ∂loss/∂x_L';
//!                       for i = L-1 .. 0:  xᵢ' = leaf(xᵢ);  (layerᵢ(xᵢ') · g).sum().backward();  g = xᵢ'.grad
//!                       (embeds · g).sum().backward()         (into embed_tokens and the vision tower)
//! ```
//!
//! `(y · g).sum()` has gradient `g` with respect to `y`, so each step is the vector-Jacobian product the full
//! backward computes, and the parameter gradients accumulate as they would. Memory: the layer inputs plus one
//! layer's activations, instead of every layer's; compute: one more forward of the layers (model FLOPs do not
//! count it). The recomputed forward repeats the first bit for bit (same kernels, same inputs), so the gradients
//! equal the full backward's up to the summation order of accumulation.
use anyhow::{Result, ensure};
use tch::{Kind, Tensor};

use super::{AttnMask, Step, TextModel};

/// What the backward pass of a recomputed forward needs. Created by [`TextModel::hidden_states_recomputed`];
/// finish it with [`Recompute::backward`] after `loss.backward()`.
#[must_use = "call backward() after loss.backward(), or no gradient reaches the decoder layers"]
pub struct Recompute {
    /// The input of each layer, without a graph.
    inputs: Vec<Tensor>,
    /// The embeddings, with their graph (to the embedding table and the vision tower).
    embeds: Tensor,
    /// The leaf the caller's graph starts from: the last layer's output.
    last: Tensor,
    mask: AttnMask,
    cos: Tensor,
    sin: Tensor,
}

impl TextModel {
    /// Final-normed hidden states `(B, L, hidden)` of a training forward (no cache) that keeps only the layer inputs;
    /// arguments as [`TextModel::hidden_states`]. Build the loss from the returned states, call `loss.backward()`,
    /// then [`Recompute::backward`].
    pub fn hidden_states_recomputed(
        &self,
        inputs_embeds: &Tensor,
        position_ids: &Tensor,
        attention_mask: Option<&Tensor>,
    ) -> Result<(Tensor, Recompute)> {
        let (mask, cos, sin, _) = self.step_inputs(inputs_embeds, position_ids, attention_mask, None)?;
        let mut inputs = Vec::with_capacity(self.layers.len());
        let last = {
            let _g = tch::no_grad_guard();
            let step = Step { cos: &cos, sin: &sin, mask: &mask };
            let mut xs = inputs_embeds.detach();
            for layer in &self.layers {
                let next = layer.forward(&xs, &step, None);
                inputs.push(xs);
                xs = next;
            }
            xs
        };
        let last = last.detach().set_requires_grad(true);
        let hidden = last.apply(&self.norm);
        Ok((hidden, Recompute { inputs, embeds: inputs_embeds.shallow_clone(), last, mask, cos, sin }))
    }
}

impl Recompute {
    /// Back-propagates the gradient `loss.backward()` left on the last layer's output through every layer
    /// (recomputing it) and into the embeddings. Parameter gradients accumulate into `.grad` as usual.
    pub fn backward(self, model: &TextModel) -> Result<()> {
        let mut g = self.last.grad();
        ensure!(
            g.defined(),
            "no gradient reached the decoder output: call loss.backward() on a loss built from the returned hidden \
             states before Recompute::backward"
        );
        let step = Step { cos: &self.cos, sin: &self.sin, mask: &self.mask };
        for (layer, x) in model.layers.iter().zip(self.inputs).rev() {
            let x = x.set_requires_grad(true);
            let y = layer.forward(&x, &step, None);
            (y * &g).sum(Kind::Float).backward();
            g = x.grad();
        }
        if self.embeds.requires_grad() {
            (&self.embeds * &g).sum(Kind::Float).backward();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use tch::{Device, nn};

    use super::*;

    #[test]
    fn recomputed_gradients_equal_the_full_backward() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/qwen2_5_vl_config/tiny.config.json");
        let cfg = crate::model::qwen2_5_vl::Config::from_file(&path).unwrap();
        tch::manual_seed(3);
        let vs = nn::VarStore::new(Device::Cpu);
        let model = TextModel::new(&vs.root(), &cfg).unwrap();
        let ids = Tensor::from_slice(&[0i64, 0, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]).view([2, 6]);
        let mask = ids.ne(0).to_kind(Kind::Int64);
        let pos = Tensor::arange(6, (Kind::Int64, Device::Cpu)).view([1, 1, 6]).repeat([3, 2, 1]);
        let target = Tensor::randn([2, 6, cfg.text_config.vocab_size as i64], (Kind::Float, Device::Cpu));
        let loss_of = |hidden: &Tensor| (model.logits(hidden) * &target * mask.unsqueeze(-1)).sum(Kind::Float);
        let grads = || -> Vec<(String, Tensor)> {
            let mut v: Vec<_> = vs.variables().into_iter().map(|(k, t)| (k, t.grad().copy())).collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            for (_, t) in vs.variables() {
                let _ = t.grad().zero_();
            }
            v
        };
        let full = loss_of(&model.hidden_states(&model.embed(&ids), &pos, Some(&mask), None).unwrap());
        full.backward();
        let want = grads();
        let (hidden, rc) = model.hidden_states_recomputed(&model.embed(&ids), &pos, Some(&mask)).unwrap();
        let loss = loss_of(&hidden);
        assert_eq!(loss.double_value(&[]), full.double_value(&[]), "the forward is the same computation");
        loss.backward();
        rc.backward(&model).unwrap();
        let got = grads();
        assert_eq!(got.len(), want.len());
        for ((name, a), (_, b)) in got.iter().zip(&want) {
            let d = (a - b).abs().max().double_value(&[]);
            let scale = b.abs().max().double_value(&[]).max(1e-6);
            assert!(d <= 1e-5 * scale, "{name}: recomputed gradient differs by {d} (scale {scale})");
        }
        assert!(want.iter().any(|(n, g)| n.contains("layers.0.") && g.abs().sum(Kind::Float).double_value(&[]) > 0.0));
    }
}
