// What the attention layers' tests share (causal self-attention: test_causal_attention.cpp;
// bidirectional self-attention: test_bidirectional_attention.cpp; cross-attention:
// test_cross_attention.cpp): their float32 tolerances, the definition written out on the packed
// layouts, the slicing of padded batches into their sequences, and the argument-check helper.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "gradcheck.h"
#include "slope/attention.h"

namespace slope::nn::testing {

// A softmax over Tk keys of D-term scores, then Tk-term sums: float32 error ~eps·√(Tk·D) per
// step.
inline CheckOptions attention_tolerances(int64_t Tk, int64_t D) {
  const double tol = fp32_tolerance(Tk * D, 32.0);
  return {tol, tol, kFdTolerance};
}

inline const int32_t* lengths_or_null(const std::vector<int32_t>& v) {
  return v.empty() ? nullptr : v.data();
}

// ---- The layers as check_layer sees them (gradcheck.h) -----------------------------------
// Each test file wraps its layer in a struct whose forward and backward run these two.

// out (out_size) from `forward(out, lse)`; lse (lse_size) goes to *lse when asked for.
template <class Real, class Forward>
std::vector<Real> forward_keeping_lse(int64_t out_size, int64_t lse_size, std::vector<Real>* lse,
                                      Forward&& forward) {
  std::vector<Real> out(static_cast<size_t>(out_size)), l(static_cast<size_t>(lse_size));
  forward(out.data(), l.data());
  if (lse) *lse = l;
  return out;
}

// `backward(out, lse, scratch)` with out and lse from the layer's forward on x, and scratch_size
// entries of garbage (NaN) in the workspace: the layer must not read it.
template <class Real, class Layer, class Backward>
void backward_after_forward(const Layer& layer, const Tensors<Real>& x, int64_t scratch_size,
                            Backward&& backward) {
  std::vector<Real> lse;
  const std::vector<Real> out = layer.forward(x, &lse);
  std::vector<Real> scratch(static_cast<size_t>(scratch_size),
                            std::numeric_limits<Real>::quiet_NaN());
  backward(out.data(), lse.data(), scratch.data());
}

// The definition, for the layers that take a bias or key lengths. The gradient checks run the
// layer's own problem in both precisions, so a wrong side, stride or mask would pass them. This is
// the definition written out on the packed layouts instead: query row i of sequence b at q + (b·Tq
// + i)·q_row, key row j at k + (b·Tk + j)·kv_row, value row at v + (b·Tk + j)·kv_row; score =
// q·k/√D − left[h]·(i − j) (j < i) or − right[h]·(j − i) (j > i), a slope of +∞ masking its side;
// keys j ≥ lengths[b] masked; a row with every key masked gives 0. Returns out (B, Tq, C).
struct Definition {
  int64_t B, Tq, Tk, C, H;
  bool causal = false;
  const double* left = nullptr;   // (H) or null: no bias
  const double* right = nullptr;  // (H) or null: left
  const int32_t* lengths = nullptr;

  std::vector<double> operator()(const double* q, int64_t q_row, const double* k, const double* v,
                                 int64_t kv_row) const {
    const int64_t D = C / H;
    std::vector<double> out(static_cast<size_t>(B * Tq * C), 0.0);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < Tq; ++i) {
          std::vector<double> p(static_cast<size_t>(Tk), 0.0);
          double total = 0.0;
          for (int64_t j = 0; j < Tk; ++j) {
            if (lengths && j >= lengths[b]) continue;
            if (causal && j > i) continue;
            double s = 0.0;
            for (int64_t d = 0; d < D; ++d)
              s += q[(b * Tq + i) * q_row + h * D + d] * k[(b * Tk + j) * kv_row + h * D + d];
            s /= std::sqrt(static_cast<double>(D));
            if (left && j != i) {
              const double m = j < i ? left[h] : (right ? right : left)[h];
              if (std::isinf(m)) continue;
              s -= m * static_cast<double>(std::abs(i - j));
            }
            p[static_cast<size_t>(j)] = std::exp(s);  // scores of a few units: no overflow
            total += p[static_cast<size_t>(j)];
          }
          if (total == 0.0) continue;  // every key masked: output 0
          for (int64_t j = 0; j < Tk; ++j)
            for (int64_t d = 0; d < D; ++d)
              out[static_cast<size_t>((b * Tq + i) * C + h * D + d)] +=
                  p[static_cast<size_t>(j)] / total * v[(b * Tk + j) * kv_row + h * D + d];
        }
    return out;
  }
};

// rel_error passes NaN silently (std::max drops it), so the comparisons below check for it.
template <class Real>
bool all_finite(const std::vector<Real>& x) {
  return std::all_of(x.begin(), x.end(), [](Real e) { return std::isfinite(e); });
}

// ---- A padded batch against each sequence alone ------------------------------------------

// Rows [0, n) of sequence b in a (B, T, width) tensor.
template <class Real>
std::vector<double> rows(const std::vector<Real>& x, int64_t b, int64_t T, int64_t width,
                         int64_t n) {
  const auto first = x.begin() + b * T * width;
  return std::vector<double>(first, first + n * width);
}

// Entries [0, n) of every head of sequence b in a (B, H, T) tensor.
template <class Real>
std::vector<double> per_head(const std::vector<Real>& x, int64_t b, int64_t H, int64_t T,
                             int64_t n) {
  std::vector<double> y;
  for (int64_t h = 0; h < H; ++h)
    for (int64_t t = 0; t < n; ++t) y.push_back(x[static_cast<size_t>((b * H + h) * T + t)]);
  return y;
}

// Whether rows [n, T) of sequence b in a (B, T, width) tensor are exactly zero.
template <class Real>
bool padding_is_zero(const std::vector<Real>& x, int64_t b, int64_t T, int64_t width, int64_t n) {
  for (int64_t i = (b * T + n) * width; i < (b + 1) * T * width; ++i)
    if (x[static_cast<size_t>(i)] != Real(0)) return false;
  return true;
}

// Bound for the same arithmetic in a different batch layout: the kernels tile keys and queries
// from position 0 in both runs, so what may differ is the reduction order of the slope gradient
// over the batch (measured: 2e-8 in float) and far-tile skipping decisions (≤ 2⁻²⁴ of a row's
// mass). Outputs, lse and dqkv came out bit-identical in both precisions.
constexpr double kPaddingTolerance = 1e-5;

// Whether f throws Error with `what` in its message.
template <class F>
bool throws_naming(F&& f, const std::string& what) {
  try {
    f();
  } catch (const Error& e) {
    return std::string(e.what()).find(what) != std::string::npos;
  }
  return false;
}

}  // namespace slope::nn::testing
