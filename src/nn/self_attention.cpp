// Self- and cross-attention layers over packed projections (see self_attention.h). Every call
// becomes one AttentionProblem of strided views into the caller's buffers, run by the fused
// kernels in float and by slope's float64 reference in double.
#include "nn/self_attention.h"

#include <algorithm>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "slope/attention.h"

namespace slope::nn {

namespace {

// The attention problem of one layer call, every tensor read in place (nanoGPT's head layout):
//   q[b, h, i, d] = q_base[b·Tq·q_row + i·q_row + h·D + d]  →  strides {Tq·q_row, D, q_row}
//   k, v: strides {kv_rows·kv_row, D, kv_row} from their own bases, kv_rows >= Tk rows per batch
//   row;  out (B, Tq, C): {Tq·C, D, C}.
// Self-attention reads qkv with q_row = kv_row = 3C (k and v at offsets C and 2C), kv_rows = T;
// cross-attention reads q with q_row = C and kv with kv_row = 2C (v at offset C), kv_rows = Tk;
// a KV cache reads its own k and v buffers with kv_row = C, kv_rows = its capacity. No bias, not
// causal: the caller sets those.
AttentionProblem make_problem(const char* layer, int64_t B, int64_t Tq, int64_t Tk, int64_t C,
                              int64_t H, int64_t q_row, int64_t kv_row, int64_t kv_rows) {
  if (C % H != 0)
    throw Error(std::string(layer) + ": C = " + std::to_string(C) +
                " is not a multiple of the head count H = " + std::to_string(H));
  const int64_t D = C / H;
  AttentionProblem p;
  p.B = B, p.H = H, p.Hkv = H, p.Tq = Tq, p.Tk = Tk, p.D = D, p.Dv = D;
  p.q_strides = {Tq * q_row, D, q_row};
  p.k_strides = p.v_strides = {kv_rows * kv_row, D, kv_row};
  p.out_strides = {Tq * C, D, C};
  return p;
}

// Both precisions validate the problem with slope::validate (the one validation), naming the
// layer in the message; the float path then runs the kernels, the double path the reference.
template <class Real>
void run_forward(const char* layer, const AttentionProblem& p, const AttentionInputs<Real>& in,
                 Real* out, Real* lse) {
  validate(p, in, layer);  // the attention problem's one validation, named after the layer
  if constexpr (std::is_same_v<Real, float>) {
    slope::attention_forward(p, in, out, lse);
  } else {
    attention_forward_reference<Real>(p, in, out, lse);
  }
}

// Overwrites the gradients in `g`.
template <class Real>
void run_backward(const char* layer, const AttentionProblem& p, const AttentionInputs<Real>& in,
                  const Real* out, const Real* dout, const Real* lse,
                  const AttentionGrads<Real>& g) {
  validate(p, in, layer);
  if constexpr (std::is_same_v<Real, float>) {
    slope::attention_backward(p, in, out, dout, lse, g);
  } else {
    attention_backward_reference<Real>(p, in, dout, g);  // from the definition
  }
}

template <class Real>
void add_into(Real* dst, const Real* src, int64_t n) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) dst[i] += src[i];
}

// The workspace is overwritten before the gradients are read back from it, so it must not share
// memory with them.
template <class Real>
void check_scratch(const char* layer, const Real* scratch, int64_t n_scratch, const char* name,
                   const Real* grad, int64_t n_grad) {
  const std::less<const Real*> before;
  if (before(scratch, grad + n_grad) && before(grad, scratch + n_scratch))
    throw Error(std::string(layer) + ": scratch overlaps " + name +
                "; it is overwritten: pass a buffer of its own");
}

template <class Real>
AttentionProblem self_problem(const char* layer, const AttentionBias<Real>& bias, int64_t B,
                              int64_t T, int64_t C, int64_t H) {
  check_sizes(layer, {{"B", B}, {"T", T}, {"C", C}, {"H", H}});
  AttentionProblem p = make_problem(layer, B, T, T, C, H, 3 * C, 3 * C, T);
  p.causal = bias.causal;
  p.key_lengths = bias.key_lengths;
  return p;
}

template <class Real>
AttentionInputs<Real> self_inputs(const Real* qkv, const AttentionBias<Real>& bias, int64_t C) {
  // Without slopes_left there is no bias, and slopes_right is not read.
  const Real* right = bias.slopes_left ? bias.slopes_right : nullptr;
  return {qkv, qkv + C, qkv + 2 * C, bias.slopes_left, right, bias.rel};
}

}  // namespace

template <class Real>
void self_attention_forward(Real* out, Real* lse, const Real* qkv,
                            const AttentionBias<NoDeduce<Real>>& bias, int64_t B, int64_t T,
                            int64_t C, int64_t H) {
  const char* layer = "self attention";
  const AttentionProblem p = self_problem(layer, bias, B, T, C, H);
  check_given(layer, {{"out", out}, {"lse", lse}, {"qkv", qkv}});
  run_forward(layer, p, self_inputs(qkv, bias, C), out, lse);
}

template <class Real>
void self_attention_backward(Real* dqkv, NoDeduce<Real>* dslopes_left,
                             NoDeduce<Real>* dslopes_right, Real* scratch, const Real* dout,
                             const Real* qkv, const Real* out, const Real* lse,
                             const AttentionBias<NoDeduce<Real>>& bias, int64_t B, int64_t T,
                             int64_t C, int64_t H) {
  const char* layer = "self attention backward";
  const AttentionProblem p = self_problem(layer, bias, B, T, C, H);
  check_given(layer, {{"dqkv", dqkv},
                      {"scratch", scratch},
                      {"dout", dout},
                      {"qkv", qkv},
                      {"out", out},
                      {"lse", lse}});
  const int64_t n = B * T * 3 * C;
  check_scratch(layer, scratch, n, "dqkv", dqkv, n);
  if ((dslopes_left || dslopes_right) && !bias.slopes_left)
    throw Error(std::string(layer) +
                ": a slope gradient is asked for but bias.slopes_left is null (no ALiBi): pass "
                "the forward's bias");
  if (dslopes_right && !bias.slopes_right)
    throw Error(std::string(layer) +
                ": dslopes_right given but bias.slopes_right is null: the one shared slope "
                "vector's whole gradient goes to dslopes_left");
  std::vector<Real> dm_left(dslopes_left ? static_cast<size_t>(H) : 0),
      dm_right(dslopes_right ? static_cast<size_t>(H) : 0);
  const int64_t n_rel =
      bias.drel
          ? relative_bias_param_count(bias.rel.kind, H, bias.rel.num_buckets, bias.rel.fire_hidden)
          : 0;
  std::vector<Real> drel(static_cast<size_t>(n_rel));
  const AttentionGrads<Real> grads{scratch,
                                   scratch + C,
                                   scratch + 2 * C,
                                   dslopes_left ? dm_left.data() : nullptr,
                                   dslopes_right ? dm_right.data() : nullptr,
                                   n_rel > 0 ? drel.data() : nullptr};
  run_backward(layer, p, self_inputs(qkv, bias, C), out, dout, lse, grads);
  add_into(dqkv, scratch, n);
  if (n_rel > 0) add_into(bias.drel, drel.data(), n_rel);
  if (dslopes_left) add_into(dslopes_left, dm_left.data(), H);
  if (dslopes_right) add_into(dslopes_right, dm_right.data(), H);
}

template <class Real>
void kv_cache_attention_forward(Real* out, Real* lse, Real* k_cache, Real* v_cache, const Real* qkv,
                                const NoDeduce<Real>* slopes, int64_t B, int64_t Tn, int64_t P,
                                int64_t capacity, int64_t C, int64_t H,
                                const RelativeBias<NoDeduce<Real>>& rel) {
  const char* layer = "kv cache attention";
  check_sizes(layer, {{"B", B}, {"Tn", Tn}, {"capacity", capacity}, {"C", C}, {"H", H}});
  check_given(
      layer,
      {{"out", out}, {"lse", lse}, {"k_cache", k_cache}, {"v_cache", v_cache}, {"qkv", qkv}});
  const int64_t Tk = P + Tn;
  if (P < 0 || Tk > capacity)
    throw Error(std::string(layer) + ": " + std::to_string(Tn) + " new positions after " +
                std::to_string(P) + " cached ones exceed the capacity " + std::to_string(capacity) +
                ": grow the cache first");
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < Tn; ++t) {
      const Real* row = qkv + (b * Tn + t) * 3 * C;
      std::copy_n(row + C, C, k_cache + (b * capacity + P + t) * C);
      std::copy_n(row + 2 * C, C, v_cache + (b * capacity + P + t) * C);
    }
  // Tn queries from qkv over Tk cached keys; causal with Tq < Tk is bottom-right aligned.
  AttentionProblem p = make_problem(layer, B, Tn, Tk, C, H, 3 * C, C, capacity);
  p.causal = true;
  run_forward(layer, p, AttentionInputs<Real>{qkv, k_cache, v_cache, slopes, nullptr, rel}, out,
              lse);
}

namespace {

AttentionProblem cross_problem(const char* layer, const int32_t* key_lengths, int64_t B, int64_t Tq,
                               int64_t Tk, int64_t C, int64_t H) {
  check_sizes(layer, {{"B", B}, {"Tq", Tq}, {"Tk", Tk}, {"C", C}, {"H", H}});
  AttentionProblem p = make_problem(layer, B, Tq, Tk, C, H, C, 2 * C, Tk);
  p.key_lengths = key_lengths;
  return p;
}

}  // namespace

template <class Real>
void cross_attention_forward(Real* out, Real* lse, const Real* q, const Real* kv,
                             const int32_t* key_lengths, int64_t B, int64_t Tq, int64_t Tk,
                             int64_t C, int64_t H) {
  const char* layer = "cross attention";
  const AttentionProblem p = cross_problem(layer, key_lengths, B, Tq, Tk, C, H);
  check_given(layer, {{"out", out}, {"lse", lse}, {"q", q}, {"kv", kv}});
  run_forward(layer, p, AttentionInputs<Real>{q, kv, kv + C}, out, lse);
}

template <class Real>
void cross_attention_backward(Real* dq, Real* dkv, Real* scratch, const Real* dout, const Real* q,
                              const Real* kv, const Real* out, const Real* lse,
                              const int32_t* key_lengths, int64_t B, int64_t Tq, int64_t Tk,
                              int64_t C, int64_t H) {
  const char* layer = "cross attention backward";
  const AttentionProblem p = cross_problem(layer, key_lengths, B, Tq, Tk, C, H);
  check_given(layer, {{"dq", dq},
                      {"dkv", dkv},
                      {"scratch", scratch},
                      {"dout", dout},
                      {"q", q},
                      {"kv", kv},
                      {"out", out},
                      {"lse", lse}});
  const int64_t nq = B * Tq * C, nkv = B * Tk * 2 * C;
  check_scratch(layer, scratch, nq + nkv, "dq", dq, nq);
  check_scratch(layer, scratch, nq + nkv, "dkv", dkv, nkv);
  // scratch = [dq (B, Tq, C) | dkv (B, Tk, 2C)], laid out like q and kv.
  Real* sq = scratch;
  Real* skv = scratch + nq;
  run_backward(layer, p, AttentionInputs<Real>{q, kv, kv + C}, out, dout, lse,
               AttentionGrads<Real>{sq, skv, skv + C});
  add_into(dq, sq, nq);
  add_into(dkv, skv, nkv);
}

#define SLOPE_NN_INSTANTIATE(Real)                                                                \
  template void kv_cache_attention_forward<Real>(Real*, Real*, Real*, Real*, const Real*,         \
                                                 const Real*, int64_t, int64_t, int64_t, int64_t, \
                                                 int64_t, int64_t, const RelativeBias<Real>&);    \
  template void self_attention_forward<Real>(                                                     \
      Real*, Real*, const Real*, const AttentionBias<Real>&, int64_t, int64_t, int64_t, int64_t); \
  template void self_attention_backward<Real>(                                                    \
      Real*, Real*, Real*, Real*, const Real*, const Real*, const Real*, const Real*,             \
      const AttentionBias<Real>&, int64_t, int64_t, int64_t, int64_t);                            \
  template void cross_attention_forward<Real>(Real*, Real*, const Real*, const Real*,             \
                                              const int32_t*, int64_t, int64_t, int64_t, int64_t, \
                                              int64_t);                                           \
  template void cross_attention_backward<Real>(                                                   \
      Real*, Real*, Real*, const Real*, const Real*, const Real*, const Real*, const Real*,       \
      const int32_t*, int64_t, int64_t, int64_t, int64_t, int64_t);
SLOPE_NN_INSTANTIATE(float)
SLOPE_NN_INSTANTIATE(double)
#undef SLOPE_NN_INSTANTIATE

}  // namespace slope::nn
