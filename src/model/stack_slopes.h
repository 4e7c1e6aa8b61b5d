// The ALiBi slopes of a stack's self-attention layers, for every model and position scheme: the
// one place that says which slopes are fixed, which are trained as they are ("raw") and which
// are trained as sigmoid(θ), and that hands each layer its slopes and its slope gradients.
//
//   stack     position scheme       slopes                                       kind
//   GPT       alibi                 Press's, the same in every layer             fixed
//             alibi-learned         attn.alibi_slopes (H), started at Press's,   raw
//                                   kept >= 0 by the optimizer (lower bound 0)
//   encoder   alibi-symmetric       Press's, both sides                          fixed
//             alibi-nonsymmetric    half the heads left, half right              fixed, two-sided
//             alibi-learned         sigmoid(θ), attn.alibi_theta_left / _right,   sigmoid,
//             two-sided
//                                   θ ~ N(−2, 1) (the ALiBi authors' encoder)
//   decoder   alibi-learned         sigmoid(θ), attn.alibi_theta (causal)         sigmoid
//             any other             Press's, causal                              fixed
//   any       learned, sinusoidal, none                                          none
//
// A sigmoid slope lies in (0, 1) whatever θ is; a raw slope is a parameter like any other and the
// optimizer projects it back to >= 0.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "model/gpt_config.h"  // Position

namespace slope::model {

struct StackOffsets;  // model/stack_params.h

enum class SlopeKind { none, fixed, raw, sigmoid };

struct SlopeScheme {
  SlopeKind kind = SlopeKind::none;
  bool two_sided = false;  // a right-side vector of its own (else the left one serves both sides)
  bool learned() const { return kind == SlopeKind::raw || kind == SlopeKind::sigmoid; }
};

enum class StackRole { gpt, encoder, decoder };  // decoder: a seq2seq's

// The table above.
SlopeScheme slope_scheme(StackRole role, Position pos);

// One stack's slopes, layer by layer, as nn::AttentionBias takes them.
template <class Real>
class StackSlopes {
 public:
  StackSlopes() = default;  // no bias
  // Fixed schemes: Press's slopes alibi_slopes(H, max_bias), or alibi_slopes_nonsymmetric when
  // two-sided. Learned schemes read their parameters at so.blocks[l].slopes_left / _right.
  StackSlopes(SlopeScheme scheme, const StackOffsets& so, int64_t H, double max_bias);

  const SlopeScheme& scheme() const { return scheme_; }

  // sigmoid: computes every layer's m = sigmoid(θ) from the parameters P, which of() then hands
  // out; call it before a forward (the parameters change between steps). Others: nothing.
  void refresh(const Real* P);

  // Layer l's slopes: *left (H) null for no bias, *right (H) null when left serves both sides.
  // P: the parameters (raw slopes are read in place).
  void of(int64_t l, const Real* P, const Real** left, const Real** right) const;

  // A backward: begin_backward clears sigmoid's d(loss)/dm; grads_of(l) says where layer l's
  // slope gradients go (raw: G at the slopes; sigmoid: dm, kept here; fixed, none: nowhere,
  // nulls); end_backward adds dm·m·(1 − m) to θ's gradient in G (sigmoid only).
  void begin_backward();
  void grads_of(int64_t l, Real* G, Real** dleft, Real** dright);
  void end_backward(Real* G) const;

 private:
  int sides() const { return scheme_.two_sided ? 2 : 1; }

  SlopeScheme scheme_;
  int64_t H_ = 0;
  std::vector<std::array<int64_t, 2>> params_;  // (L) learned: offsets of the left, right vectors
  std::vector<Real> fixed_left_, fixed_right_;  // (H) fixed schemes; right empty: one-sided
  std::vector<Real> m_, dm_;                    // (L, sides, H) sigmoid: sigmoid(θ), d(loss)/dm
};

extern template class StackSlopes<float>;
extern template class StackSlopes<double>;

}  // namespace slope::model
