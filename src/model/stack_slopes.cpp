// The slopes of a stack's layers (see stack_slopes.h).
#include "model/stack_slopes.h"

#include <algorithm>
#include <cmath>

#include "model/stack_params.h"  // StackOffsets
#include "slope/attention.h"     // alibi_slopes

namespace slope::model {

SlopeScheme slope_scheme(StackRole role, Position pos) {
  switch (role) {
    case StackRole::gpt:
      if (pos == Position::alibi) return {SlopeKind::fixed, false};
      if (pos == Position::alibi_learned) return {SlopeKind::raw, false};
      return {};
    case StackRole::encoder:
      if (pos == Position::alibi_symmetric) return {SlopeKind::fixed, false};
      if (pos == Position::alibi_nonsymmetric) return {SlopeKind::fixed, true};
      if (pos == Position::alibi_learned) return {SlopeKind::sigmoid, true};
      return {};
    case StackRole::decoder:  // causal ALiBi whatever the encoder's scheme
      if (pos == Position::alibi_learned) return {SlopeKind::sigmoid, false};
      return {SlopeKind::fixed, false};
  }
  return {};
}

template <class Real>
StackSlopes<Real>::StackSlopes(SlopeScheme scheme, const StackOffsets& so, int64_t H,
                               double max_bias)
    : scheme_(scheme), H_(H) {
  if (scheme.kind == SlopeKind::fixed) {
    if (scheme.two_sided) {
      const SlopePair m = alibi_slopes_nonsymmetric(H, max_bias);
      fixed_left_.assign(m.left.begin(), m.left.end());
      fixed_right_.assign(m.right.begin(), m.right.end());
    } else {
      const std::vector<float> m = alibi_slopes(H, max_bias);
      fixed_left_.assign(m.begin(), m.end());
    }
  }
  if (!scheme.learned()) return;
  for (const BlockOffsets& o : so.blocks) params_.push_back({o.slopes_left, o.slopes_right});
  if (scheme.kind == SlopeKind::sigmoid) {
    const size_t n = params_.size() * static_cast<size_t>(sides() * H);
    m_.assign(n, Real(0));
    dm_.assign(n, Real(0));
  }
}

template <class Real>
void StackSlopes<Real>::refresh(const Real* P) {
  if (scheme_.kind != SlopeKind::sigmoid) return;
  Real* m = m_.data();
  for (const std::array<int64_t, 2>& offsets : params_)
    for (int s = 0; s < sides(); ++s)
      for (int64_t h = 0; h < H_; ++h)
        *m++ = Real(1) / (Real(1) + std::exp(-P[offsets[static_cast<size_t>(s)] + h]));
}

template <class Real>
void StackSlopes<Real>::of(int64_t l, const Real* P, const Real** left, const Real** right) const {
  *left = *right = nullptr;
  const size_t layer = static_cast<size_t>(l);
  switch (scheme_.kind) {
    case SlopeKind::none:
      break;
    case SlopeKind::fixed:
      *left = fixed_left_.data();
      if (scheme_.two_sided) *right = fixed_right_.data();
      break;
    case SlopeKind::raw:
      *left = P + params_[layer][0];
      if (scheme_.two_sided) *right = P + params_[layer][1];
      break;
    case SlopeKind::sigmoid:
      *left = m_.data() + l * sides() * H_;
      if (scheme_.two_sided) *right = *left + H_;
      break;
  }
}

template <class Real>
void StackSlopes<Real>::begin_backward() {
  std::fill(dm_.begin(), dm_.end(), Real(0));
}

template <class Real>
void StackSlopes<Real>::grads_of(int64_t l, Real* G, Real** dleft, Real** dright) {
  *dleft = *dright = nullptr;
  const size_t layer = static_cast<size_t>(l);
  if (scheme_.kind == SlopeKind::raw) {
    *dleft = G + params_[layer][0];
    if (scheme_.two_sided) *dright = G + params_[layer][1];
  } else if (scheme_.kind == SlopeKind::sigmoid) {
    *dleft = dm_.data() + l * sides() * H_;
    if (scheme_.two_sided) *dright = *dleft + H_;
  }
}

template <class Real>
void StackSlopes<Real>::end_backward(Real* G) const {
  if (scheme_.kind != SlopeKind::sigmoid) return;
  const Real* m = m_.data();
  const Real* d = dm_.data();
  // dθ = dm · dm/dθ = dm · m · (1 − m)
  for (const std::array<int64_t, 2>& offsets : params_)
    for (int s = 0; s < sides(); ++s)
      for (int64_t h = 0; h < H_; ++h, ++m, ++d)
        G[offsets[static_cast<size_t>(s)] + h] += *d * *m * (Real(1) - *m);
}

template class StackSlopes<float>;
template class StackSlopes<double>;

}  // namespace slope::model
