// The GPT's forward and backward passes over the parameter and activation arenas (see gpt.h).
//
// Memory (llm.c's layout): the forward keeps, per block, ln_1 (B,T,C) with its mean and rstd,
// qkv (B,T,3C), the attention output (B,T,C) and its logsumexp (B,H,T), the residual after
// attention (B,T,C), ln_2, c_fc's output and its GELU (B,T,4C each) and the block output (B,T,C):
// about 16·B·T·C values per block, plus (B,T,Vp) logits. The c_proj outputs are not kept (one
// shared (B,T,C) buffer): the backward of a residual add and of dropout needs neither.
// The backward's scratch is another (B,T,Vp) + 17·B·T·C, allocated on the first backward.
#include "model/gpt.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "model/arena.h"
#include "nn/layers.h"
#include "slope/attention.h"

namespace slope::model {

namespace {

template <class Real>
struct BlockActs {
  Real *ln_1, *ln_1_mean, *ln_1_rstd;  // (B,T,C), (B,T), (B,T)
  Real* qkv;                           // (B,T,3C)
  Real* atty;                          // (B,T,C) attention output, heads side by side
  Real* att_lse;                       // (B,H,T)
  Real* res_2;                         // (B,T,C) residual stream after attention
  Real *ln_2, *ln_2_mean, *ln_2_rstd;  // (B,T,C), (B,T), (B,T)
  Real* fch;                           // (B,T,4C) c_fc output
  Real* fch_gelu;                      // (B,T,4C)
  Real* res_3;                         // (B,T,C) the block's output
};

template <class Real>
struct Acts {
  Real* encoded;  // (B,T,C) embeddings (+ positions), after dropout
  std::vector<BlockActs<Real>> blocks;
  Real* branch;                        // (B,T,C) a c_proj output on its way to the residual
  Real *ln_f, *ln_f_mean, *ln_f_rstd;  // (B,T,C), (B,T), (B,T)
  Real* logits;                        // (B,T,Vp)
  Real *losses, *loss_lse;             // (B,T), (B,T)
};

template <class Real>
Acts<Real> carve_acts(Carver<Real>& a, const GptConfig& c, int64_t B, int64_t T) {
  const int64_t BT = B * T, C = c.n_embd;
  Acts<Real> acts;
  acts.encoded = a.take(BT * C);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    BlockActs<Real> k;
    k.ln_1 = a.take(BT * C), k.ln_1_mean = a.take(BT), k.ln_1_rstd = a.take(BT);
    k.qkv = a.take(BT * 3 * C), k.atty = a.take(BT * C), k.att_lse = a.take(B * c.n_head * T);
    k.res_2 = a.take(BT * C);
    k.ln_2 = a.take(BT * C), k.ln_2_mean = a.take(BT), k.ln_2_rstd = a.take(BT);
    k.fch = a.take(BT * 4 * C), k.fch_gelu = a.take(BT * 4 * C), k.res_3 = a.take(BT * C);
    acts.blocks.push_back(k);
  }
  acts.branch = a.take(BT * C);
  acts.ln_f = a.take(BT * C), acts.ln_f_mean = a.take(BT), acts.ln_f_rstd = a.take(BT);
  acts.logits = a.take(BT * c.padded_vocab_size());
  acts.losses = a.take(BT), acts.loss_lse = a.take(BT);
  return acts;
}

// The backward's scratch; every buffer is zeroed right before a layer accumulates into it.
template <class Real>
struct GradActs {
  Real* dlogits;    // (B,T,Vp)
  Real* dresidual;  // (B,T,C) d(loss)/d(residual stream), carried down through the blocks
  Real* dbranch;    // (B,T,C) a branch's gradient before its dropout
  Real* dsmall;     // (B,T,C) d(ln_f), d(ln_2), d(atty), d(ln_1) in turn
  Real* dfch_gelu;  // (B,T,4C)
  Real* dfch;       // (B,T,4C)
  Real* dqkv;       // (B,T,3C)
  Real* scratch;    // (B,T,3C) attention backward's workspace
};

template <class Real>
GradActs<Real> carve_grad_acts(Carver<Real>& a, const GptConfig& c, int64_t B, int64_t T) {
  const int64_t BT = B * T, C = c.n_embd;
  GradActs<Real> g;
  g.dlogits = a.take(BT * c.padded_vocab_size());
  g.dresidual = a.take(BT * C), g.dbranch = a.take(BT * C), g.dsmall = a.take(BT * C);
  g.dfch_gelu = a.take(BT * 4 * C), g.dfch = a.take(BT * 4 * C);
  g.dqkv = a.take(BT * 3 * C), g.scratch = a.take(BT * 3 * C);
  return g;
}

// Dropout call sites of one forward: the embeddings, then two per block.
constexpr uint64_t kSiteEmbedding = 0;
uint64_t site_attention(int64_t block) { return 1 + 2 * static_cast<uint64_t>(block); }
uint64_t site_mlp(int64_t block) { return 2 + 2 * static_cast<uint64_t>(block); }

}  // namespace

template <class Real>
Gpt<Real>::Gpt(const GptConfig& config, uint64_t seed)
    : config_(config), layout_(gpt_layout(config)) {
  params_.assign(static_cast<size_t>(layout_.table.size()), Real(0));
  grads_.assign(params_.size(), Real(0));
  gpt_init(params_.data(), layout_, config_, seed);
  if (config_.pos == Position::alibi) {
    const std::vector<float> m = alibi_slopes(config_.n_head, config_.max_bias);
    alibi_slopes_.assign(m.begin(), m.end());
  }
}

template <class Real>
void Gpt<Real>::zero_grad() {
  std::fill(grads_.begin(), grads_.end(), Real(0));
}

template <class Real>
const Real* Gpt<Real>::fixed_or_learned_slopes(const Real* base, int64_t block) const {
  if (config_.pos == Position::alibi) return alibi_slopes_.data();
  if (config_.pos == Position::alibi_learned)
    return base + layout_.blocks[static_cast<size_t>(block)].alibi_slopes;
  return nullptr;
}

template <class Real>
const Real* Gpt<Real>::logits() const {
  if (B_ == 0) throw Error("Gpt::logits: no forward has run yet");
  Carver<Real> a{const_cast<Real*>(acts_.data())};
  return carve_acts(a, config_, B_, T_).logits;
}

template <class Real>
Real Gpt<Real>::forward(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T) {
  nn::check_sizes("Gpt::forward", {{"B", B}, {"T", T}});
  nn::check_given("Gpt::forward", {{"idx", idx}});
  const GptConfig& c = config_;
  if (c.pos == Position::learned && T > c.block_size)
    throw Error("Gpt::forward: sequence length " + std::to_string(T) + " exceeds block_size " +
                std::to_string(c.block_size) +
                " of a model with learned positions (wpe has no rows beyond it): crop the input "
                "to the last block_size tokens");
  const int64_t C = c.n_embd, H = c.n_head, V = c.vocab_size, Vp = c.padded_vocab_size();
  const int64_t BT = B * T;

  Carver<Real> counter;
  carve_acts(counter, c, B, T);
  if (static_cast<int64_t>(acts_.size()) < counter.used)
    acts_.assign(static_cast<size_t>(counter.used), Real(0));
  Carver<Real> carver{acts_.data()};
  const Acts<Real> a = carve_acts(carver, c, B, T);
  B_ = T_ = 0, has_targets_ = false;  // until this forward has succeeded
  idx_.assign(idx, idx + BT);

  const double p = dropout_p();
  const uint64_t step = dropout_forward_count_;
  auto drop = [&](Real* x, uint64_t site) {
    if (p > 0.0)
      nn::dropout_forward(x, x, p, nn::dropout_seed(dropout_run_seed_, step, site), BT * C);
  };
  const Real* P = params_.data();

  const Real* pos = nullptr;
  if (c.pos == Position::learned) {
    pos = P + layout_.wpe;
  } else if (c.pos == Position::sinusoidal) {
    if (static_cast<int64_t>(pos_table_.size()) < T * C) {
      pos_table_.resize(static_cast<size_t>(T * C));
      nn::sinusoidal_positions(pos_table_.data(), T, C);
    }
    pos = pos_table_.data();
  }
  nn::encoder_forward(a.encoded, idx, P + layout_.wte, pos, B, T, C, V);
  drop(a.encoded, kSiteEmbedding);

  const Real* residual = a.encoded;
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const GptBlockOffsets& o = layout_.blocks[static_cast<size_t>(l)];
    const BlockActs<Real>& k = a.blocks[static_cast<size_t>(l)];
    nn::layernorm_forward(k.ln_1, k.ln_1_mean, k.ln_1_rstd, residual, P + o.ln_1_w, at(P, o.ln_1_b),
                          B, T, C);
    nn::matmul_forward(k.qkv, k.ln_1, P + o.c_attn_w, at(P, o.c_attn_b), B, T, C, 3 * C);
    nn::attention_forward(k.atty, k.att_lse, k.qkv, fixed_or_learned_slopes(P, l), B, T, C, H);
    nn::matmul_forward(a.branch, k.atty, P + o.attn_proj_w, at(P, o.attn_proj_b), B, T, C, C);
    drop(a.branch, site_attention(l));
    nn::residual_forward(k.res_2, residual, a.branch, BT * C);

    nn::layernorm_forward(k.ln_2, k.ln_2_mean, k.ln_2_rstd, k.res_2, P + o.ln_2_w, at(P, o.ln_2_b),
                          B, T, C);
    nn::matmul_forward(k.fch, k.ln_2, P + o.c_fc_w, at(P, o.c_fc_b), B, T, C, 4 * C);
    nn::gelu_forward(k.fch_gelu, k.fch, BT * 4 * C);
    nn::matmul_forward(a.branch, k.fch_gelu, P + o.mlp_proj_w, at(P, o.mlp_proj_b), B, T, 4 * C, C);
    drop(a.branch, site_mlp(l));
    nn::residual_forward(k.res_3, k.res_2, a.branch, BT * C);
    residual = k.res_3;
  }
  nn::layernorm_forward(a.ln_f, a.ln_f_mean, a.ln_f_rstd, residual, P + layout_.ln_f_w,
                        at(P, layout_.ln_f_b), B, T, C);
  nn::matmul_forward(a.logits, a.ln_f, P + layout_.wte, nullptr, B, T, C, Vp);

  if (p > 0.0) ++dropout_forward_count_;
  dropout_step_ = step, last_p_ = p;
  B_ = B, T_ = T;
  if (!targets) return std::numeric_limits<Real>::quiet_NaN();
  const Real loss = nn::crossentropy_forward(a.losses, a.loss_lse, a.logits, targets, B, T, V, Vp);
  targets_.assign(targets, targets + BT);
  has_targets_ = true;
  return loss;
}

template <class Real>
void Gpt<Real>::backward() {
  if (B_ == 0 || !has_targets_)
    throw Error(
        "Gpt::backward: the last forward had no targets (or failed): call forward with "
        "targets first");
  const GptConfig& c = config_;
  const int64_t B = B_, T = T_, C = c.n_embd, H = c.n_head, V = c.vocab_size;
  const int64_t Vp = c.padded_vocab_size(), BT = B * T;

  Carver<Real> carver{acts_.data()};
  const Acts<Real> a = carve_acts(carver, c, B, T);
  Carver<Real> counter;
  carve_grad_acts(counter, c, B, T);
  if (static_cast<int64_t>(grad_acts_.size()) < counter.used)
    grad_acts_.assign(static_cast<size_t>(counter.used), Real(0));
  Carver<Real> gcarver{grad_acts_.data()};
  const GradActs<Real> g = carve_grad_acts(gcarver, c, B, T);

  const Real* P = params_.data();
  Real* G = grads_.data();
  // d(branch before dropout) from d(branch after): dout itself when nothing was dropped.
  auto undrop = [&](const Real* dout, uint64_t site) -> const Real* {
    if (last_p_ == 0.0) return dout;
    zero(g.dbranch, BT * C);
    nn::dropout_backward(g.dbranch, dout, last_p_,
                         nn::dropout_seed(dropout_run_seed_, dropout_step_, site), BT * C);
    return g.dbranch;
  };

  zero(g.dlogits, BT * Vp);
  nn::crossentropy_backward(g.dlogits, a.logits, a.loss_lse, targets_.data(), Real(1), B, T, V, Vp);
  zero(g.dsmall, BT * C);
  nn::matmul_backward(g.dsmall, G + layout_.wte, nullptr, g.dlogits, a.ln_f, P + layout_.wte, B, T,
                      C, Vp);
  const Real* last = c.n_layer > 0 ? a.blocks.back().res_3 : a.encoded;
  zero(g.dresidual, BT * C);
  nn::layernorm_backward(g.dresidual, G + layout_.ln_f_w, at(G, layout_.ln_f_b), g.dsmall, last,
                         a.ln_f_mean, a.ln_f_rstd, P + layout_.ln_f_w, B, T, C);

  // g.dresidual holds d(loss)/d(block output); a residual add passes it through unchanged, so
  // each branch adds its input gradient to it in place.
  for (int64_t l = c.n_layer - 1; l >= 0; --l) {
    const GptBlockOffsets& o = layout_.blocks[static_cast<size_t>(l)];
    const BlockActs<Real>& k = a.blocks[static_cast<size_t>(l)];
    const Real* residual = l > 0 ? a.blocks[static_cast<size_t>(l - 1)].res_3 : a.encoded;

    const Real* dmlp = undrop(g.dresidual, site_mlp(l));
    zero(g.dfch_gelu, BT * 4 * C);
    nn::matmul_backward(g.dfch_gelu, G + o.mlp_proj_w, at(G, o.mlp_proj_b), dmlp, k.fch_gelu,
                        P + o.mlp_proj_w, B, T, 4 * C, C);
    zero(g.dfch, BT * 4 * C);
    nn::gelu_backward(g.dfch, g.dfch_gelu, k.fch, BT * 4 * C);
    zero(g.dsmall, BT * C);
    nn::matmul_backward(g.dsmall, G + o.c_fc_w, at(G, o.c_fc_b), g.dfch, k.ln_2, P + o.c_fc_w, B, T,
                        C, 4 * C);
    nn::layernorm_backward(g.dresidual, G + o.ln_2_w, at(G, o.ln_2_b), g.dsmall, k.res_2,
                           k.ln_2_mean, k.ln_2_rstd, P + o.ln_2_w, B, T, C);

    const Real* dattn = undrop(g.dresidual, site_attention(l));
    zero(g.dsmall, BT * C);
    nn::matmul_backward(g.dsmall, G + o.attn_proj_w, at(G, o.attn_proj_b), dattn, k.atty,
                        P + o.attn_proj_w, B, T, C, C);
    zero(g.dqkv, BT * 3 * C);
    Real* dslopes = c.pos == Position::alibi_learned ? G + o.alibi_slopes : nullptr;
    nn::attention_backward(g.dqkv, dslopes, g.scratch, g.dsmall, k.qkv, k.atty, k.att_lse,
                           fixed_or_learned_slopes(P, l), B, T, C, H);
    zero(g.dsmall, BT * C);
    nn::matmul_backward(g.dsmall, G + o.c_attn_w, at(G, o.c_attn_b), g.dqkv, k.ln_1, P + o.c_attn_w,
                        B, T, C, 3 * C);
    nn::layernorm_backward(g.dresidual, G + o.ln_1_w, at(G, o.ln_1_b), g.dsmall, residual,
                           k.ln_1_mean, k.ln_1_rstd, P + o.ln_1_w, B, T, C);
  }

  const Real* demb = undrop(g.dresidual, kSiteEmbedding);
  nn::encoder_backward(G + layout_.wte, at(G, layout_.wpe), demb, idx_.data(), B, T, C, V);
}

template class Gpt<float>;
template class Gpt<double>;

}  // namespace slope::model
