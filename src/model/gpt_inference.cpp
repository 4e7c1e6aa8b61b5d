// KV-cache decoding (see gpt_inference.h).
//
// Memory: the cache holds 2·L·B·capacity·C values; one forward of Tn tokens needs about
// 13·B·Tn·C + B·Tn·Vp more (its activations, reused between calls). The cache's capacity
// doubles when it fills, so decoding N tokens one at a time copies O(N) rows in all.
#include "model/gpt_inference.h"

#include <algorithm>
#include <string>

#include "model/arena.h"  // at
#include "nn/layers.h"

namespace slope::model {

namespace {

constexpr int64_t kInitialCapacity = 64;  // cache rows per sequence before the first growth

}  // namespace

template <class Real>
GptInference<Real>::GptInference(const Gpt<Real>& gpt, int64_t batch_size)
    : gpt_(&gpt), B_(batch_size) {
  nn::check_sizes("GptInference", {{"batch_size", batch_size}});
  const GptConfig& c = gpt.config();
  k_cache_.resize(static_cast<size_t>(c.n_layer));
  v_cache_.resize(static_cast<size_t>(c.n_layer));
}

template <class Real>
int64_t GptInference<Real>::max_length() const {
  return gpt_->config().pos == Position::learned ? gpt_->config().block_size : -1;
}

template <class Real>
void GptInference<Real>::reserve(int64_t capacity) {
  if (capacity <= capacity_) return;
  const int64_t C = gpt_->config().n_embd;
  for (auto* cache : {&k_cache_, &v_cache_})
    for (std::vector<Real>& layer : *cache) {
      std::vector<Real> grown(static_cast<size_t>(B_ * capacity * C), Real(0));
      for (int64_t b = 0; b < B_; ++b)  // (B, capacity_, C) → (B, capacity, C)
        std::copy_n(layer.data() + b * capacity_ * C, len_ * C, grown.data() + b * capacity * C);
      layer = std::move(grown);
    }
  capacity_ = capacity;
}

template <class Real>
const Real* GptInference<Real>::forward(const int32_t* idx, int64_t Tn) {
  nn::check_sizes("GptInference::forward", {{"Tn", Tn}});
  nn::check_given("GptInference::forward", {{"idx", idx}});
  const GptConfig& c = gpt_->config();
  const StackOffsets& so = gpt_->stack();
  const int64_t B = B_, C = c.n_embd, H = c.n_head, V = c.vocab_size, Vp = c.padded_vocab_size();
  const int64_t P = len_, Tk = len_ + Tn, BT = B * Tn;
  if (max_length() > 0 && Tk > max_length())
    throw Error("GptInference: " + std::to_string(Tk) + " positions exceed block_size " +
                std::to_string(c.block_size) +
                " of a model with learned positions: reset() and run the last block_size "
                "tokens again");
  for (int64_t i = 0; i < BT; ++i)
    if (idx[i] < 0 || idx[i] >= V)
      throw Error("GptInference: token id " + std::to_string(idx[i]) +
                  " is outside the vocabulary [0, " + std::to_string(V) + ")");
  if (Tk > capacity_) reserve(std::max({Tk, 2 * capacity_, kInitialCapacity}));

  // One forward's activations: x, ln, branch, atty (B,Tn,C); mean, rstd (B,Tn); lse (B,H,Tn);
  // qkv (B,Tn,3C); fch, fch_gelu (B,Tn,4C); logits (B,Tn,Vp).
  acts_.resize(static_cast<size_t>(BT * (4 * C + 2 + H + 3 * C + 8 * C + Vp)));
  Real* x = acts_.data();
  Real* ln = x + BT * C;
  Real* branch = ln + BT * C;
  Real* atty = branch + BT * C;
  Real* mean = atty + BT * C;
  Real* rstd = mean + BT;
  Real* lse = rstd + BT;
  Real* qkv = lse + B * H * Tn;
  Real* fch = qkv + BT * 3 * C;
  Real* fch_gelu = fch + BT * 4 * C;
  Real* logits = fch_gelu + BT * 4 * C;

  const Real* W = gpt_->params();
  const Real* pos = nullptr;
  if (c.pos == Position::learned) {
    pos = W + so.wpe + P * C;
  } else if (c.pos == Position::sinusoidal) {
    if (static_cast<int64_t>(pos_table_.size()) < Tk * C) {
      pos_table_.resize(static_cast<size_t>(std::max(Tk, 2 * P) * C));
      nn::sinusoidal_positions(pos_table_.data(), std::max(Tk, 2 * P), C);
    }
    pos = pos_table_.data() + P * C;
  }
  nn::encoder_forward(x, idx, W + so.wte, pos, B, Tn, C, V);

  for (int64_t l = 0; l < c.n_layer; ++l) {
    const BlockOffsets& o = so.blocks[static_cast<size_t>(l)];
    nn::layernorm_forward(ln, mean, rstd, x, W + o.ln_1_w, at(W, o.ln_1_b), B, Tn, C);
    nn::matmul_forward(qkv, ln, W + o.c_attn_w, at(W, o.c_attn_b), B, Tn, C, 3 * C);
    const Real *left = nullptr, *right = nullptr;  // a GPT's slopes are one-sided: right null
    gpt_->slopes().of(l, W, &left, &right);
    // A learned relative bias: this layer's parameters, projected into their domain (as
    // Gpt::forward does in place; a checkpoint is written after an optimizer step).
    RelativeBias<Real> rel = relative_bias_of_real<Real>(relative_bias_of(c.pos, false));
    std::vector<Real> rel_params;
    if (o.rel != kAbsent) {
      const int64_t n = relative_bias_param_count(rel.kind, H, rel.num_buckets, rel.fire_hidden);
      rel_params.assign(W + o.rel, W + o.rel + n);
      relative_bias_clamp(relative_bias_of(c.pos, false), H, rel_params.data());
      rel.params = rel_params.data();
    }
    nn::kv_cache_attention_forward(atty, lse, k_cache_[static_cast<size_t>(l)].data(),
                                   v_cache_[static_cast<size_t>(l)].data(), qkv, left, B, Tn, P,
                                   capacity_, C, H, rel);
    nn::matmul_forward(branch, atty, W + o.attn_proj_w, at(W, o.attn_proj_b), B, Tn, C, C);
    nn::residual_forward(x, x, branch, BT * C);
    nn::layernorm_forward(ln, mean, rstd, x, W + o.ln_2_w, at(W, o.ln_2_b), B, Tn, C);
    nn::matmul_forward(fch, ln, W + o.c_fc_w, at(W, o.c_fc_b), B, Tn, C, 4 * C);
    nn::activation_forward(c.activation, fch_gelu, fch, BT * 4 * C);
    nn::matmul_forward(branch, fch_gelu, W + o.mlp_proj_w, at(W, o.mlp_proj_b), B, Tn, 4 * C, C);
    nn::residual_forward(x, x, branch, BT * C);
  }
  nn::layernorm_forward(ln, mean, rstd, x, W + so.ln_f_w, at(W, so.ln_f_b), B, Tn, C);
  nn::matmul_forward(logits, ln, W + so.wte, nullptr, B, Tn, C, Vp);
  len_ = Tk;
  return logits;
}

template class GptInference<float>;
template class GptInference<double>;

}  // namespace slope::model
