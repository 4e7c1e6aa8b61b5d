// The GPT's forward and backward passes over the parameter and activation arenas (see gpt.h).
//
// Memory (llm.c's layout): the forward keeps, per block, ln_1 (B,T,C) with its mean and rstd,
// qkv (B,T,3C), the attention output (B,T,C) and its logsumexp (B,H,T), the residual after
// attention (B,T,C), ln_2, c_fc's output and its GELU (B,T,4C each) and the block output (B,T,C):
// about 16·B·T·C values per block, plus (B,T,Vp) logits. The c_proj outputs are not kept (one
// shared (B,T,C) buffer): the backward of a residual add and of dropout needs neither.
// The backward's scratch is another (B,T,Vp) + 17·B·T·C, allocated on the first backward.
// The blocks are model/stack.h's, shared with the encoder and the seq2seq decoder.
#include "model/gpt.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <utility>

#include "model/stack.h"
#include "nn/layers.h"
#include "nn/profile.h"
#include "slope/error.h"

namespace slope::model {

namespace {

// Everything one forward keeps: the stack of blocks, then the head's logits and the losses.
template <class Real>
struct Acts {
  StackActs<Real> st;       // embedding, blocks, ln_f over (B, T)
  Real* branch;             // (B,T,C) a c_proj output on its way to the residual
  Real* logits;             // (B,T,Vp)
  Real *losses, *loss_lse;  // (B,T), (B,T)
};

template <class Real>
Acts<Real> carve_acts(Carver<Real>& a, const GptConfig& c, int64_t B, int64_t T) {
  const int64_t BT = B * T, C = c.n_embd;
  Acts<Real> acts;
  acts.st = carve_stack(a, c.n_layer, B, T, C, c.n_head, 0);
  acts.branch = a.take(BT * C);
  acts.logits = a.take(BT * c.padded_vocab_size());
  acts.losses = a.take(BT), acts.loss_lse = a.take(BT);
  return acts;
}

}  // namespace

template <class Real>
Gpt<Real>::Gpt(const GptConfig& config, uint64_t seed) : Gpt(config, gpt_layout(config), seed) {}

template <class Real>
Gpt<Real>::Gpt(const GptConfig& config, GptLayout layout, uint64_t seed)
    : ParamArena<Real>(std::move(layout.params.table)),
      config_(config),
      stack_(std::move(layout.stack)),
      slopes_(slope_scheme(StackRole::gpt, config.pos), stack_, config.n_head, config.max_bias) {
  init_params(this->params(), this->table(), layout.params.init, config_.n_layer, config_.n_head,
              config_.max_bias, seed);
  init_relative_bias(this->params(), stack_, relative_bias_of(config_.pos, false), config_.n_head,
                     static_cast<double>(config_.block_size), seed);
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

  const ForwardDropout<Real> drop = forward_dropout<Real>(c.dropout);
  const RelativeBias<float> rel = relative_bias_of(c.pos, false);
  // Learned relative biases stay in their family's domain: projected in place before each
  // forward (KERPLE's own rule), so the optimizer's step never hands the kernel r2 < 0.
  clamp_relative_bias(this->params(), stack_, rel, H);
  const Real* P = this->params();
  slopes_.refresh(P);

  const Real* pos = nullptr;  // learned positions: the stack reads wpe itself
  if (c.pos == Position::sinusoidal) {
    if (static_cast<int64_t>(pos_table_.size()) < T * C) {
      pos_table_.resize(static_cast<size_t>(T * C));
      nn::sinusoidal_positions(pos_table_.data(), T, C);
    }
    pos = pos_table_.data();
  }
  StackCall<Real> call{
      &stack_, false,   B, T, C, H, V, idx_.data(), pos, {true, nullptr, nullptr, nullptr},
      nullptr, nullptr, 0};
  call.bias.rel = relative_bias_of_real<Real>(rel);
  call.act = c.activation;
  stack_forward(a.st, a.branch, call, P, slopes_, drop);
  {
    const nn::ProfileScope prof("matmul lm_head");
    nn::matmul_forward(a.logits, a.st.ln_f, P + stack_.wte, nullptr, B, T, C, Vp);
  }

  forward_done(drop);
  B_ = B, T_ = T;
  if (!targets) return std::numeric_limits<Real>::quiet_NaN();
  Real loss;
  {
    const nn::ProfileScope prof("cross-entropy");
    loss = nn::crossentropy_forward(a.losses, a.loss_lse, a.logits, targets, B, T, V, Vp);
  }
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
  carve_grad_acts(counter, BT * Vp, BT, C, B, 0);
  if (static_cast<int64_t>(grad_acts_.size()) < counter.used)
    grad_acts_.assign(static_cast<size_t>(counter.used), Real(0));
  Carver<Real> gcarver{grad_acts_.data()};
  const GradActs<Real> g = carve_grad_acts(gcarver, BT * Vp, BT, C, B, 0);

  const Real* P = this->params();
  Real* G = this->grads();

  {
    const nn::ProfileScope prof("zero gradient buffers");
    zero(g.dlogits, BT * Vp);
  }
  {
    const nn::ProfileScope prof("cross-entropy backward");
    nn::crossentropy_backward(g.dlogits, a.logits, a.loss_lse, targets_.data(), Real(1), B, T, V,
                              Vp);
  }
  {
    const nn::ProfileScope prof("matmul lm_head backward");
    nn::matmul_backward(g.dsmall, G + stack_.wte, nullptr, g.dlogits, a.st.ln_f, P + stack_.wte, B,
                        T, C, Vp, nn::GradWrite::overwrite);
  }
  StackCall<Real> call{
      &stack_, false,   B, T, C, H, V, idx_.data(), nullptr, {true, nullptr, nullptr, nullptr},
      nullptr, nullptr, 0};
  call.bias.rel = relative_bias_of_real<Real>(relative_bias_of(c.pos, false));
  call.act = c.activation;
  stack_backward(g, a.st, g.dsmall, call, P, G, slopes_, backward_dropout(g.dbranch));
}

template class Gpt<float>;
template class Gpt<double>;

}  // namespace slope::model
