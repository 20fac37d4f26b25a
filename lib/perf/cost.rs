//! What a workload must compute and read, from the config alone: the model FLOPs and bytes that MFU and the
//! roofline fraction divide by. Text decoder only (the benchmarks are text-only; the vision tower does no work).
//!
//! Per layer the matmul weights are `q, o: h×h`, `k, v: h×kv`, `gate, up, down: h×I` (`kv = kv_heads·head_dim`),
//! plus the LM head `V×h` (tied or not, it is one matmul). A token then costs `2·W` FLOPs in the linear layers
//! (`W` = those weights), and attention `4·h` FLOPs per layer per key it sees (`QKᵀ` and `AV`). Causal
//! attention over `n` tokens sees `n(n+1)/2` keys in all: the *useful* FLOPs, whatever a kernel computes.
//! Training costs 3× the forward (backward = 2× forward), the usual model-FLOPs convention (PaLM, App. B):
//! recomputed activations do not count.
//!
//! A decode step must read every weight once (`W` plus norms and biases) and the whole KV cache of the batch
//! (`2·L·kv` values per cached position per sequence); embedding rows and the new K/V writes are negligible.
use crate::model::qwen2_5_vl::config::Config;

/// The shape numbers of the text decoder that the cost model needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TextShape {
    pub layers: f64,
    pub hidden: f64,
    /// `kv_heads · head_dim`.
    pub kv: f64,
    pub intermediate: f64,
    pub vocab: f64,
}

impl TextShape {
    pub fn of(cfg: &Config) -> Self {
        let t = &cfg.text_config;
        Self {
            layers: t.num_hidden_layers as f64,
            hidden: t.hidden_size as f64,
            kv: (t.num_key_value_heads() * t.head_dim()) as f64,
            intermediate: t.intermediate_size as f64,
            vocab: t.vocab_size as f64,
        }
    }

    /// Matmul weights of one layer.
    fn layer_matmul_weights(&self) -> f64 {
        let (h, kv, i) = (self.hidden, self.kv, self.intermediate);
        2.0 * h * h + 2.0 * h * kv + 3.0 * h * i
    }

    /// Every matmul weight a token goes through: the layers and the LM head.
    pub fn matmul_weights(&self) -> f64 {
        self.layers * self.layer_matmul_weights() + self.vocab * self.hidden
    }

    /// Parameters a decode step reads: matmul weights, q/k/v biases, the norms.
    pub fn weights_read(&self) -> f64 {
        let per_layer = self.layer_matmul_weights() + self.hidden + 2.0 * self.kv + 2.0 * self.hidden;
        self.layers * per_layer + self.vocab * self.hidden + self.hidden
    }

    /// Forward FLOPs of `rows` sequences of `n` new tokens each, after `past` cached tokens, with causal attention.
    pub fn forward_flops(&self, rows: f64, past: f64, n: f64) -> f64 {
        // Keys seen by the n new tokens: Σ_{i=1..n} (past + i).
        let keys = n * past + n * (n + 1.0) / 2.0;
        rows * (2.0 * n * self.matmul_weights() + 4.0 * self.hidden * self.layers * keys)
    }

    /// FLOPs of one optimizer step's forward and backward over `rows` sequences of `len` tokens.
    pub fn train_flops(&self, rows: f64, len: f64) -> f64 {
        3.0 * self.forward_flops(rows, 0.0, len)
    }

    /// Bytes one decode step reads at `context` cached positions (after appending the new one), for `rows`
    /// sequences, with `elem` bytes per value.
    pub fn decode_step_bytes(&self, rows: f64, context: f64, elem: f64) -> f64 {
        elem * (self.weights_read() + rows * 2.0 * self.layers * self.kv * context)
    }
}

/// Totals of a generation of `new` tokens for `rows` prompts of `prompt` tokens: the prefill (which also yields
/// the first token), then `new - 1` decode steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationCost {
    pub prefill_flops: f64,
    pub decode_flops: f64,
    pub decode_bytes: f64,
    pub decode_steps: f64,
}

impl GenerationCost {
    pub fn of(shape: &TextShape, rows: f64, prompt: f64, new: f64, elem: f64) -> Self {
        let steps = (new - 1.0).max(0.0);
        // Step s (1-based) feeds token s and attends over prompt + s positions.
        let contexts = steps * prompt + steps * (steps + 1.0) / 2.0;
        Self {
            prefill_flops: shape.forward_flops(rows, 0.0, prompt),
            decode_flops: shape.forward_flops(rows, prompt, steps),
            decode_bytes: steps * elem * shape.weights_read() + elem * rows * 2.0 * shape.layers * shape.kv * contexts,
            decode_steps: steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen7b() -> Config {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/qwen2_5_vl_config/qwen2_5_vl_7b_instruct.resaved.config.json"
        );
        Config::from_file(std::path::Path::new(path)).unwrap()
    }

    #[test]
    fn the_7b_weights_match_the_parameter_count() {
        let cfg = qwen7b();
        let s = TextShape::of(&cfg);
        let (total, visual) = cfg.num_parameters();
        // Text parameters = weights read + the embedding table (untied in the 7B model: lm_head is separate).
        let text = total - visual;
        assert_eq!(s.weights_read() + s.vocab * s.hidden, text as f64);
        // About 7.07e9 FLOP-relevant weights (6.5e9 in the layers, 0.54e9 in the head).
        assert!((s.matmul_weights() / 1e9 - 7.07).abs() < 0.01, "{}", s.matmul_weights());
    }

    #[test]
    fn decode_flops_and_bytes_add_up_step_by_step() {
        let s = TextShape { layers: 2.0, hidden: 8.0, kv: 4.0, intermediate: 16.0, vocab: 32.0 };
        let g = GenerationCost::of(&s, 3.0, 5.0, 4.0, 2.0);
        let (mut flops, mut bytes) = (0.0, 0.0);
        for step in 1..4 {
            let past = 5.0 + step as f64 - 1.0;
            flops += s.forward_flops(3.0, past, 1.0);
            bytes += s.decode_step_bytes(3.0, past + 1.0, 2.0);
        }
        assert_eq!(g.decode_steps, 3.0);
        assert!((g.decode_flops - flops).abs() < 1e-6 && (g.decode_bytes - bytes).abs() < 1e-6);
        // A prefill of n tokens sees n(n+1)/2 keys: 15 for 5.
        let attn = s.forward_flops(1.0, 0.0, 5.0) - 2.0 * 5.0 * s.matmul_weights();
        assert_eq!(attn, 4.0 * 8.0 * 2.0 * 15.0);
        assert_eq!(s.train_flops(2.0, 5.0), 3.0 * s.forward_flops(2.0, 0.0, 5.0));
    }
}
