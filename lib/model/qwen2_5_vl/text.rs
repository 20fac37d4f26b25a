//! The Qwen2.5-VL text decoder and LM head, as transformers 5.17 implements them: `Qwen2_5_VLTextModel`
//! (`embed_tokens`, `Qwen2_5_VLDecoderLayer` = `Qwen2_5_VLRMSNorm` + `Qwen2_5_VLAttention` + `Qwen2MLP`, final
//! `norm`) and the `lm_head` of `Qwen2_5_VLForConditionalGeneration` (tied to `embed_tokens` when
//! `tie_word_embeddings`), with M-RoPE from [`super::rope`] and a KV cache ([`KvCache`], the role of
//! `DynamicCache`).
//!
//! Variables live at the published checkpoint keys: `model.embed_tokens.weight`,
//! `model.layers.{i}.self_attn.{q,k,v,o}_proj.*`, `model.layers.{i}.mlp.{gate,up,down}_proj.weight`,
//! `model.layers.{i}.{input,post_attention}_layernorm.weight`, `model.norm.weight`, `lm_head.weight` (absent when
//! tied); load them with [`super::weights::load_safetensors`].
//!
//! Numerics follow transformers: RMSNorm in f32 and cast back before the weight, cos/sin in f32 cast to the
//! activation dtype, attention through `scaled_dot_product_attention` (scale `head_dim^-0.5`) called the way
//! transformers' SDPA path calls it: without a mask (`is_causal` for a prefill, nothing for one new token) and GQA
//! via `enable_gqa` when nothing is padded, otherwise with a boolean causal + padding mask and, on CUDA, K/V
//! repeated to all heads (`repeat_kv`). The kernels are then the same as transformers' (on the CPU the fixtures'
//! f32 and bf16 logits are bit-identical); choosing costs one device-to-host read of the mask per forward. On the
//! CPU a masked call passes the grouped K/V with `enable_gqa` instead of repeating them: the same fused kernel
//! and the same values, without a copy of every layer's cache at every decode step (20× faster attention at
//! batch 64 × 2K positions, measured with torch 2.11).
//!
//! Deviations, all deliberate:
//! - a padded query position (left padding) may attend to itself, so that no attention row is fully masked and
//!   no NaN can reach the valid positions; outputs at padded positions are meaningless in both implementations;
//! - `embed_tokens` has no `padding_idx` (in transformers it only zeroes that row's gradient and init);
//! - no sliding-window attention, dropout or `logits_to_keep` (the config validation rejects sliding windows);
//!   [`TextModel::logits`] applies the head to whatever hidden states it is given.
use anyhow::{Result, ensure};
use tch::nn::{self, Module};
use tch::{Kind, Tensor};

use super::config::Config;
use super::rope::{MRope, apply_rotary};

/// `Qwen2_5_VLRMSNorm`: `weight * (x / sqrt(mean(x²) + eps))`, the normalisation in f32.
#[derive(Debug)]
pub struct RmsNorm {
    weight: Tensor,
    eps: f64,
}

impl RmsNorm {
    pub fn new(p: nn::Path, dim: i64, eps: f64) -> Self {
        Self { weight: p.ones("weight", &[dim]), eps }
    }
}

impl Module for RmsNorm {
    fn forward(&self, xs: &Tensor) -> Tensor {
        let kind = xs.kind();
        let h = xs.to_kind(Kind::Float);
        let var = h.square().mean_dim(-1, true, Kind::Float);
        &self.weight * (h * (var + self.eps).rsqrt()).to_kind(kind)
    }
}

/// `Qwen2MLP`: `down(silu(gate(x)) * up(x))`, no biases.
#[derive(Debug)]
struct Mlp {
    gate_proj: nn::Linear,
    up_proj: nn::Linear,
    down_proj: nn::Linear,
}

impl Mlp {
    fn new(p: nn::Path, hidden: i64, inter: i64) -> Self {
        let c = nn::LinearConfig { bias: false, ..Default::default() };
        Self {
            gate_proj: nn::linear(&p / "gate_proj", hidden, inter, c),
            up_proj: nn::linear(&p / "up_proj", hidden, inter, c),
            down_proj: nn::linear(&p / "down_proj", inter, hidden, c),
        }
    }
}

impl Module for Mlp {
    fn forward(&self, xs: &Tensor) -> Tensor {
        (xs.apply(&self.gate_proj).silu() * xs.apply(&self.up_proj)).apply(&self.down_proj)
    }
}

/// Per-layer keys and values of the tokens seen so far, after M-RoPE: preallocated buffers `(B, kv_heads, capacity,
/// head_dim)` filled up to the cached length, so a decode step writes one position in place instead of copying the
/// whole cache (`torch.cat`, as `DynamicCache` does). A buffer that is too small is regrown to twice its size
/// (amortised O(1) per token); [`KvCache::with_capacity`] sizes it once from the longest sequence expected.
/// Finished sequences leave the batch, and a prompt's cache is copied to its samples, through
/// [`KvCache::select_rows`].
///
/// The cache is for inference (`no_grad`): writes into a buffer are not differentiable.
#[derive(Debug, Default)]
pub struct KvCache {
    layers: Vec<Option<LayerKv>>,
    /// Positions to allocate on the first append (0: exactly what that append needs).
    reserve: i64,
    /// Whether the cached positions include padding, as the forward that filled them found. Once true, later
    /// forwards take the masked path without reading the mask back to the host (a device sync per decode step).
    padded: bool,
}

#[derive(Debug)]
struct LayerKv {
    k: Tensor,
    v: Tensor,
    len: i64,
}

impl LayerKv {
    fn capacity(&self) -> i64 {
        self.k.size()[2]
    }
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        Self::with_capacity(num_layers, 0)
    }

    /// A cache whose buffers hold `capacity` positions from the start (prompt + generated tokens).
    pub fn with_capacity(num_layers: usize, capacity: usize) -> Self {
        Self { layers: (0..num_layers).map(|_| None).collect(), reserve: capacity as i64, padded: false }
    }

    /// Number of cached positions (0 when empty).
    pub fn seq_len(&self) -> i64 {
        self.layers.first().and_then(|l| l.as_ref()).map_or(0, |l| l.len)
    }

    /// Positions the buffers hold before they must grow (0 when nothing is allocated yet).
    pub fn capacity(&self) -> i64 {
        self.layers.first().and_then(|l| l.as_ref()).map_or(0, LayerKv::capacity)
    }

    pub fn clear(&mut self) {
        self.padded = false;
        self.layers.iter_mut().for_each(|l| *l = None);
    }

    /// Makes row `i` of the batch the old row `rows[i]` in every layer (i64 indices): drops rows that are not
    /// listed, reorders, and repeats a row listed several times (one prompt's cache shared by its samples).
    pub fn select_rows(&mut self, rows: &Tensor) {
        for l in self.layers.iter_mut().flatten() {
            let rows = rows.to_device(l.k.device());
            l.k = l.k.index_select(0, &rows);
            l.v = l.v.index_select(0, &rows);
        }
    }

    /// Writes `k`, `v` `(B, kv_heads, L, head_dim)` after layer `i`'s cached positions and returns views of all
    /// its keys and values.
    fn append(&mut self, i: usize, k: Tensor, v: Tensor) -> (Tensor, Tensor) {
        let l = k.size()[2];
        let len = self.layers[i].as_ref().map_or(0, |e| e.len);
        let cap = self.layers[i].as_ref().map_or(0, LayerKv::capacity);
        if len + l > cap {
            let new_cap = if cap == 0 { (len + l).max(self.reserve) } else { (len + l).max(2 * cap) };
            let mut shape = k.size();
            shape[2] = new_cap;
            let (nk, nv) = (
                Tensor::empty(shape.as_slice(), (k.kind(), k.device())),
                Tensor::empty(shape.as_slice(), (v.kind(), v.device())),
            );
            if let Some(old) = &self.layers[i] {
                nk.narrow(2, 0, len).copy_(&old.k.narrow(2, 0, len));
                nv.narrow(2, 0, len).copy_(&old.v.narrow(2, 0, len));
            }
            self.layers[i] = Some(LayerKv { k: nk, v: nv, len });
        }
        let e = self.layers[i].as_mut().expect("allocated above");
        e.k.narrow(2, len, l).copy_(&k);
        e.v.narrow(2, len, l).copy_(&v);
        e.len = len + l;
        (e.k.narrow(2, 0, e.len), e.v.narrow(2, 0, e.len))
    }
}

/// `Qwen2_5_VLAttention`: q/k/v with bias, o without, M-RoPE on q and k, grouped-query attention.
#[derive(Debug)]
struct Attention {
    q_proj: nn::Linear,
    k_proj: nn::Linear,
    v_proj: nn::Linear,
    o_proj: nn::Linear,
    heads: i64,
    kv_heads: i64,
    head_dim: i64,
}

/// How attention is masked, chosen as transformers chooses for SDPA (`_ignore_causal_mask_sdpa`,
/// `sdpa_attention_forward`), so that the same kernels run.
enum AttnMask {
    /// One query and no padding: no mask.
    None,
    /// No cache and no padding: SDPA's `is_causal`.
    Causal,
    /// Boolean `(B, 1, L, T)`, true = attend; K/V are then repeated to all heads (`repeat_kv`).
    Bool(Tensor),
}

/// What every layer of one forward pass shares.
struct Step<'a> {
    cos: &'a Tensor,
    sin: &'a Tensor,
    mask: &'a AttnMask,
}

impl Attention {
    fn new(p: nn::Path, hidden: i64, heads: i64, kv_heads: i64) -> Self {
        let head_dim = hidden / heads;
        let with_bias = nn::LinearConfig::default();
        let no_bias = nn::LinearConfig { bias: false, ..Default::default() };
        Self {
            q_proj: nn::linear(&p / "q_proj", hidden, heads * head_dim, with_bias),
            k_proj: nn::linear(&p / "k_proj", hidden, kv_heads * head_dim, with_bias),
            v_proj: nn::linear(&p / "v_proj", hidden, kv_heads * head_dim, with_bias),
            o_proj: nn::linear(&p / "o_proj", heads * head_dim, hidden, no_bias),
            heads,
            kv_heads,
            head_dim,
        }
    }

    /// `(B, kv_heads, T, D)` -> `(B, heads, T, D)`, each kv head repeated for its group of query heads.
    fn repeat_kv(&self, x: &Tensor) -> Tensor {
        let (b, _, t, d) = x.size4().expect("keys are (batch, kv_heads, seq, head_dim)");
        let rep = self.heads / self.kv_heads;
        x.unsqueeze(2).expand([b, self.kv_heads, rep, t, d], false).reshape([b, self.heads, t, d])
    }

    fn forward(&self, xs: &Tensor, step: &Step, cache: Option<(&mut KvCache, usize)>) -> Tensor {
        let (b, l, _) = xs.size3().expect("hidden states are (batch, seq, hidden)");
        let split = |t: Tensor, n: i64| t.view([b, l, n, self.head_dim]).transpose(1, 2);
        let q = apply_rotary(&split(xs.apply(&self.q_proj), self.heads), step.cos, step.sin);
        let k = apply_rotary(&split(xs.apply(&self.k_proj), self.kv_heads), step.cos, step.sin);
        let v = split(xs.apply(&self.v_proj), self.kv_heads);
        let (k, v) = match cache {
            Some((cache, i)) => cache.append(i, k, v),
            None => (k, v),
        };
        let sdpa = Tensor::scaled_dot_product_attention::<&Tensor>;
        let out = match step.mask {
            AttnMask::None => sdpa(&q, &k, &v, None, 0.0, false, None, true),
            AttnMask::Causal => sdpa(&q, &k, &v, None, 0.0, true, None, true),
            // The fused CPU kernel takes grouped K/V with a mask as they are (bit-identical to repeating them,
            // without copying the cache per layer per step); CUDA's masked kernels need every head (`repeat_kv`).
            AttnMask::Bool(m) if q.device().is_cuda() => {
                sdpa(&q, &self.repeat_kv(&k), &self.repeat_kv(&v), Some(m), 0.0, false, None, false)
            }
            AttnMask::Bool(m) => sdpa(&q, &k, &v, Some(m), 0.0, false, None, true),
        };
        out.transpose(1, 2).reshape([b, l, self.heads * self.head_dim]).apply(&self.o_proj)
    }
}

/// `Qwen2_5_VLDecoderLayer`: pre-norm attention and MLP, each with a residual.
#[derive(Debug)]
struct DecoderLayer {
    self_attn: Attention,
    mlp: Mlp,
    input_layernorm: RmsNorm,
    post_attention_layernorm: RmsNorm,
}

impl DecoderLayer {
    fn forward(&self, xs: &Tensor, step: &Step, cache: Option<(&mut KvCache, usize)>) -> Tensor {
        let h = xs + self.self_attn.forward(&xs.apply(&self.input_layernorm), step, cache);
        let out = h.apply(&self.post_attention_layernorm).apply(&self.mlp);
        h + out
    }
}

/// The text decoder (`model.*`) and the LM head (`lm_head`, or `embed_tokens` when tied).
#[derive(Debug)]
pub struct TextModel {
    embed_tokens: nn::Embedding,
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    /// `None` when tied to `embed_tokens`.
    lm_head: Option<nn::Linear>,
    rope: MRope,
}

impl TextModel {
    /// Builds the variables under `root` (`root / "model" / ...`, `root / "lm_head"`): pass the VarStore root.
    pub fn new(root: &nn::Path, cfg: &Config) -> Result<Self> {
        cfg.validate()?;
        let t = &cfg.text_config;
        let (hidden, heads, kv_heads) =
            (t.hidden_size as i64, t.num_attention_heads as i64, t.num_key_value_heads() as i64);
        let m = root / "model";
        let layers = (0..t.num_hidden_layers)
            .map(|i| {
                let p = &m / "layers" / i;
                DecoderLayer {
                    self_attn: Attention::new(&p / "self_attn", hidden, heads, kv_heads),
                    mlp: Mlp::new(&p / "mlp", hidden, t.intermediate_size as i64),
                    input_layernorm: RmsNorm::new(&p / "input_layernorm", hidden, t.rms_norm_eps),
                    post_attention_layernorm: RmsNorm::new(&p / "post_attention_layernorm", hidden, t.rms_norm_eps),
                }
            })
            .collect();
        let lm_head = (!cfg.tie_word_embeddings).then(|| {
            let c = nn::LinearConfig { bias: false, ..Default::default() };
            nn::linear(root / "lm_head", hidden, t.vocab_size as i64, c)
        });
        Ok(Self {
            embed_tokens: nn::embedding(&m / "embed_tokens", t.vocab_size as i64, hidden, Default::default()),
            layers,
            norm: RmsNorm::new(&m / "norm", hidden, t.rms_norm_eps),
            lm_head,
            rope: MRope::new(t, root.device()),
        })
    }

    pub fn num_layers(&self) -> usize {
        self.layers.len()
    }

    /// The parameter dtype (that of `embed_tokens`).
    pub fn dtype(&self) -> Kind {
        self.embed_tokens.ws.kind()
    }

    /// An empty cache sized for this model.
    pub fn new_cache(&self) -> KvCache {
        KvCache::new(self.layers.len())
    }

    /// An empty cache whose buffers hold `positions` tokens from the start (prompt + new tokens).
    pub fn new_cache_for(&self, positions: usize) -> KvCache {
        KvCache::with_capacity(self.layers.len(), positions)
    }

    /// Token embeddings `(B, L, hidden)` of `input_ids` `(B, L)`.
    pub fn embed(&self, input_ids: &Tensor) -> Tensor {
        input_ids.apply(&self.embed_tokens)
    }

    /// Final-normed hidden states `(B, L, hidden)`.
    ///
    /// - `inputs_embeds` `(B, L, hidden)`: the new tokens' embeddings (with image features already scattered in,
    ///   see [`scatter_image_embeds`]);
    /// - `position_ids` `(3, B, L)` integer (from `get_rope_index` / `continuation_position_ids`);
    /// - `attention_mask` `(B, past + L)`, 1 = token, 0 = padding, over the cached *and* new positions; `None`
    ///   means no padding;
    /// - `cache`: appended to; its current length is the past length.
    pub fn hidden_states(
        &self,
        inputs_embeds: &Tensor,
        position_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        mut cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        let (mask, cos, sin, padded) =
            self.step_inputs(inputs_embeds, position_ids, attention_mask, cache.as_deref())?;
        if let Some(c) = cache.as_deref_mut() {
            c.padded |= padded;
        }
        let step = Step { cos: &cos, sin: &sin, mask: &mask };
        let mut xs = inputs_embeds.shallow_clone();
        for (i, layer) in self.layers.iter().enumerate() {
            xs = layer.forward(&xs, &step, cache.as_deref_mut().map(|c| (c, i)));
        }
        Ok(xs.apply(&self.norm))
    }

    /// Checks the shapes of one forward pass and builds what every layer shares: the attention mask and M-RoPE's
    /// cos/sin; also says whether any position is padding.
    fn step_inputs(
        &self,
        inputs_embeds: &Tensor,
        position_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        cache: Option<&KvCache>,
    ) -> Result<(AttnMask, Tensor, Tensor, bool)> {
        let size = inputs_embeds.size();
        ensure!(size.len() == 3, "inputs_embeds must be (batch, seq_len, hidden), got {size:?}");
        let (b, l) = (size[0], size[1]);
        ensure!(
            position_ids.size() == [3, b, l],
            "position_ids must be (3, batch, seq_len) = (3, {b}, {l}), got {:?} (use get_rope_index)",
            position_ids.size()
        );
        let past = cache.map_or(0, |c| c.seq_len());
        if let Some(c) = cache {
            ensure!(
                c.layers.len() == self.layers.len(),
                "KV cache has {} layers, model {}",
                c.layers.len(),
                self.layers.len()
            );
        }
        let device = inputs_embeds.device();
        if let Some(m) = attention_mask {
            ensure!(
                m.size() == [b, past + l],
                "attention_mask must be (batch, past + seq_len) = ({b}, {}), got {:?}",
                past + l,
                m.size()
            );
        }
        // The masked path is right whenever a position is padding; a cache that holds padding says so without a sync.
        let padded = cache.is_some_and(|c| c.padded && past > 0)
            || attention_mask.is_some_and(|m| m.eq(0).any().int64_value(&[]) != 0);
        let mask = match (padded, l, past) {
            (false, 1, _) => AttnMask::None,
            (false, _, 0) => AttnMask::Causal,
            _ => {
                let m = attention_mask
                    .map_or_else(|| Tensor::ones([b, past + l], (Kind::Int64, device)), |m| m.to_device(device));
                AttnMask::Bool(attention_bool_mask(&m, past, l))
            }
        };
        let (cos, sin) = self.rope.cos_sin(&position_ids.to_device(device), inputs_embeds.kind());
        Ok((mask, cos, sin, padded))
    }

    /// `lm_head(hidden)`: logits `(..., vocab)` in the model dtype.
    pub fn logits(&self, hidden: &Tensor) -> Tensor {
        match &self.lm_head {
            Some(head) => hidden.apply(head),
            None => hidden.linear::<Tensor>(&self.embed_tokens.ws, None),
        }
    }

    /// Logits `(B, L, vocab)`: [`Self::hidden_states`] then [`Self::logits`].
    pub fn forward(
        &self,
        inputs_embeds: &Tensor,
        position_ids: &Tensor,
        attention_mask: Option<&Tensor>,
        cache: Option<&mut KvCache>,
    ) -> Result<Tensor> {
        Ok(self.logits(&self.hidden_states(inputs_embeds, position_ids, attention_mask, cache)?))
    }
}

/// Boolean `(B, 1, L, past + L)`: query `i` (absolute position `past + i`) sees key `j` when `j <= past + i` and
/// key `j` is not padding, and always sees itself (see the module doc).
fn attention_bool_mask(attention_mask: &Tensor, past: i64, l: i64) -> Tensor {
    let device = attention_mask.device();
    let total = past + l;
    let q = Tensor::arange_start(past, total, (Kind::Int64, device)).view([l, 1]);
    let k = Tensor::arange(total, (Kind::Int64, device)).view([1, total]);
    let causal = k.le_tensor(&q).view([1, 1, l, total]);
    let diag = k.eq_tensor(&q).view([1, 1, l, total]);
    let keep = attention_mask.ne(0).view([-1, 1, 1, total]);
    causal.logical_and(&keep).logical_or(&diag)
}

/// `inputs_embeds.masked_scatter(input_ids == image_token_id, image_embeds)`: puts the vision tower's features
/// `(N, hidden)` into the `<|image_pad|>` positions, in row-major order, as `Qwen2_5_VLModel.forward` does.
pub fn scatter_image_embeds(
    inputs_embeds: &Tensor,
    input_ids: &Tensor,
    image_token_id: i64,
    image_embeds: &Tensor,
) -> Result<Tensor> {
    let mask = input_ids.eq(image_token_id).to_device(inputs_embeds.device());
    let n = mask.sum(Kind::Int64).int64_value(&[]);
    let feats = image_embeds.size();
    ensure!(
        feats.len() == 2 && feats[0] == n && feats[1] == *inputs_embeds.size().last().unwrap_or(&0),
        "image features and image tokens do not match: {n} <|image_pad|> tokens (id {image_token_id}) of width {:?}, \
         features of shape {feats:?}",
        inputs_embeds.size().last()
    );
    let src = image_embeds.to_device(inputs_embeds.device()).to_kind(inputs_embeds.kind());
    Ok(inputs_embeds.masked_scatter(&mask.unsqueeze(-1), &src))
}

mod recompute;
pub use recompute::Recompute;

#[cfg(test)]
mod tests;
