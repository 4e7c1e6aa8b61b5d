// Causal self-attention over packed qkv (see self_attention.h).
#include "nn/self_attention.h"

#include <string>
#include <type_traits>
#include <vector>

namespace slope::nn {

namespace {

// The attention problem of one layer call: views into qkv (B, T, 3C) and out (B, T, C).
//   q[b, h, t, d] = qkv[b·T·3C + t·3C + h·D + d]  →  strides {T·3C, D, 3C}, offset 0
//   k, v: the same strides, offsets C and 2C;  out: strides {T·C, D, C}.
AttentionProblem make_problem(const char* layer, int64_t B, int64_t T, int64_t C, int64_t H,
                              bool alibi) {
  check_sizes(layer, {{"B", B}, {"T", T}, {"C", C}, {"H", H}});
  if (C % H != 0)
    throw Error(std::string(layer) + ": C = " + std::to_string(C) +
                " is not a multiple of the head count H = " + std::to_string(H));
  AttentionProblem p;
  p.B = B, p.H = H, p.Hkv = H, p.Tq = T, p.Tk = T, p.D = C / H, p.Dv = C / H;
  p.q_strides = p.k_strides = p.v_strides = {T * 3 * C, C / H, 3 * C};
  p.out_strides = {T * C, C / H, C};
  p.causal = true;
  p.alibi = alibi;
  return p;
}

template <class Real>
AttentionInputs<Real> views(const Real* qkv, const Real* slopes, int64_t C) {
  // slopes_right null: one vector for both sides (the right side is causally masked anyway),
  // so the whole slope gradient lands in dslopes_left.
  return {qkv, qkv + C, qkv + 2 * C, slopes, nullptr};
}

}  // namespace

template <class Real>
void attention_forward(Real* out, Real* lse, const Real* qkv, const NoDeduce<Real>* slopes,
                       int64_t B, int64_t T, int64_t C, int64_t H) {
  const AttentionProblem p = make_problem("attention", B, T, C, H, slopes != nullptr);
  check_given("attention", {{"out", out}, {"lse", lse}, {"qkv", qkv}});
  const AttentionInputs<Real> in = views(qkv, slopes, C);
  if constexpr (std::is_same_v<Real, float>) {
    slope::attention_forward(p, in, out, lse);  // validates the problem and the slopes
  } else {
    if (slopes)
      for (int64_t h = 0; h < H; ++h)
        if (!(slopes[h] >= 0))
          throw Error("attention: ALiBi slope " + std::to_string(h) + " is negative or NaN");
    attention_forward_reference<Real>(p, in, out, lse);
  }
}

template <class Real>
void attention_backward(Real* dqkv, NoDeduce<Real>* dslopes, Real* scratch, const Real* dout,
                        const Real* qkv, const Real* out, const Real* lse,
                        const NoDeduce<Real>* slopes, int64_t B, int64_t T, int64_t C, int64_t H) {
  const AttentionProblem p = make_problem("attention backward", B, T, C, H, slopes != nullptr);
  check_given("attention backward", {{"dqkv", dqkv},
                                     {"scratch", scratch},
                                     {"dout", dout},
                                     {"qkv", qkv},
                                     {"out", out},
                                     {"lse", lse}});
  if (scratch == dqkv)
    throw Error("attention backward: scratch must be its own buffer, not dqkv (it is overwritten)");
  if (dslopes && !slopes)
    throw Error("attention backward: dslopes given but no slopes: pass the forward's slopes");
  const AttentionInputs<Real> in = views(qkv, slopes, C);
  std::vector<Real> dm(dslopes ? static_cast<size_t>(H) : 0);
  const AttentionGrads<Real> grads{scratch, scratch + C, scratch + 2 * C,
                                   dslopes ? dm.data() : nullptr, nullptr};
  if constexpr (std::is_same_v<Real, float>) {
    slope::attention_backward(p, in, out, dout, lse, grads);
  } else {
    attention_backward_reference<Real>(p, in, dout, grads);  // from the definition
  }
  const int64_t n = B * T * 3 * C;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) dqkv[i] += scratch[i];
  for (int64_t h = 0; h < static_cast<int64_t>(dm.size()); ++h) dslopes[h] += dm[h];
}

#define SLOPE_NN_INSTANTIATE(Real)                                                                \
  template void attention_forward<Real>(Real*, Real*, const Real*, const Real*, int64_t, int64_t, \
                                        int64_t, int64_t);                                        \
  template void attention_backward<Real>(Real*, Real*, Real*, const Real*, const Real*,           \
                                         const Real*, const Real*, const Real*, int64_t, int64_t, \
                                         int64_t, int64_t);
SLOPE_NN_INSTANTIATE(float)
SLOPE_NN_INSTANTIATE(double)
#undef SLOPE_NN_INSTANTIATE

}  // namespace slope::nn
