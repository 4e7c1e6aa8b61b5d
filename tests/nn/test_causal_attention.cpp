// Causal self-attention over packed qkv (a GPT block, attention_forward/backward): gradients (no
// bias, fixed and learned ALiBi slopes, T = 1, T across a kernel tile), and the layer against
// slope's reference run on the head-major (B, H, T, D) layout through the public API, which checks
// the strides themselves.
#include <cmath>
#include <limits>

#include "attention_testing.h"
#include "nn/self_attention.h"
#include "slope/attention.h"

namespace slope::nn::testing {
namespace {

// x = {qkv (B, T, 3C)} or {qkv, slopes (H)}.
struct CausalAttention {
  int64_t B, T, C, H;

  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x, std::vector<Real>* lse = nullptr) const {
    return forward_keeping_lse<Real>(B * T * C, B * H * T, lse, [&](Real* out, Real* l) {
      attention_forward(out, l, x[0].data(), x.size() > 1 ? x[1].data() : nullptr, B, T, C, H);
    });
  }
  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>& x, const std::vector<Real>& dout) const {
    backward_after_forward(
        *this, x, B * T * 3 * C, [&](const Real* out, const Real* lse, Real* scratch) {
          attention_backward(dx[0].data(), dx.size() > 1 ? or_null(dx[1]) : nullptr, scratch,
                             dout.data(), x[0].data(), out, lse,
                             x.size() > 1 ? x[1].data() : nullptr, B, T, C, H);
        });
  }
};

Tensors<double> attention_inputs(const CausalAttention& a, bool alibi, bool learned,
                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  // Entries up to 2: scores of a few units, so softmax is neither flat nor one-hot.
  Tensors<double> x{random_vector(a.B * a.T * 3 * a.C, rng, -2.0, 2.0)};
  if (alibi) {
    if (learned) {
      x.push_back(random_vector(a.H, rng, 0.05, 1.0));
    } else {
      const std::vector<float> m = alibi_slopes(a.H);
      x.push_back(std::vector<double>(m.begin(), m.end()));
    }
  }
  return x;
}

// T keys of D = C/H channels (attention_testing.h).
CheckOptions tolerances(const CausalAttention& a) { return attention_tolerances(a.T, a.C / a.H); }

TEST(SelfAttention, NoBias) {  // learned, sinusoidal and no positions
  const CausalAttention a{2, 5, 12, 3};
  check_layer(a, attention_inputs(a, false, false, 1), {"qkv"}, {true}, tolerances(a));
}

TEST(SelfAttention, FixedAlibiSlopes) {
  const CausalAttention a{2, 6, 12, 3};  // three heads: not a power of two
  check_layer(a, attention_inputs(a, true, false, 2), {"qkv", "slopes"}, {true, false},
              tolerances(a));
}

TEST(SelfAttention, LearnedAlibiSlopes) {
  const CausalAttention a{2, 7, 8, 2};
  check_layer(a, attention_inputs(a, true, true, 3), {"qkv", "slopes"}, {true, true},
              tolerances(a));
}

TEST(SelfAttention, SingleToken) {  // T = 1: out = v, every other gradient zero but dv
  const CausalAttention a{3, 1, 8, 4};
  Tensors<double> x = attention_inputs(a, false, false, 4);
  const std::vector<double> out = a.forward(x);
  for (int64_t b = 0; b < a.B; ++b)
    for (int64_t c = 0; c < a.C; ++c)
      EXPECT_EQ(out[static_cast<size_t>(b * a.C + c)],
                x[0][static_cast<size_t>(b * 3 * a.C + 2 * a.C + c)]);
  check_layer(a, x, {"qkv"}, {true}, tolerances(a));
}

TEST(SelfAttention, AcrossKernelTiles) {  // T past the 64-row tiles, learned slopes
  const CausalAttention a{1, 70, 16, 2};
  CheckOptions tol = tolerances(a);
  tol.fd_every = 31;
  check_layer(a, attention_inputs(a, true, true, 5), {"qkv", "slopes"}, {true, true}, tol);
}

// The layer (float, fused kernels) against slope's float64 reference given q, k, v permuted
// into contiguous (B, H, T, D): catches a layout error the double layer would share.
TEST(SelfAttention, MatchesReferenceInHeadMajorLayout) {
  const CausalAttention a{2, 9, 12, 3};
  const int64_t B = a.B, T = a.T, C = a.C, H = a.H, D = C / H;
  const Tensors<double> x = attention_inputs(a, true, false, 6);
  std::mt19937_64 rng(7);
  const std::vector<double> dout = random_vector(B * T * C, rng);

  // (B, T, 3C) → three (B, H, T, D); offsets of element (b, h, t, d) in both layouts.
  auto packed = [&](int64_t b, int64_t h, int64_t t, int64_t d) {
    return static_cast<size_t>(b * T * 3 * C + t * 3 * C + h * D + d);
  };
  auto head_major = [&](int64_t b, int64_t h, int64_t t, int64_t d) {
    return static_cast<size_t>(((b * H + h) * T + t) * D + d);
  };
  auto row_major = [&](int64_t b, int64_t h, int64_t t, int64_t d) {  // (B, T, C)
    return static_cast<size_t>(b * T * C + t * C + h * D + d);
  };
  const size_t n = static_cast<size_t>(B * H * T * D);
  std::vector<double> q(n), k(n), v(n), dO(n);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d) {
          q[head_major(b, h, t, d)] = x[0][packed(b, h, t, d)];
          k[head_major(b, h, t, d)] = x[0][packed(b, h, t, d) + C];
          v[head_major(b, h, t, d)] = x[0][packed(b, h, t, d) + 2 * C];
          dO[head_major(b, h, t, d)] = dout[row_major(b, h, t, d)];
        }
  AttentionProblem p;
  p.B = B, p.H = H, p.Hkv = H, p.Tq = T, p.Tk = T, p.D = D, p.Dv = D;
  p.q_strides = p.k_strides = p.v_strides = p.out_strides = contiguous_strides(H, T, D);
  p.causal = true;
  const AttentionInputs<double> in{q.data(), k.data(), v.data(), x[1].data(), nullptr};
  std::vector<double> out_ref(n), lse_ref(static_cast<size_t>(B * H * T)), dq(n), dk(n), dv(n),
      dm(static_cast<size_t>(H));
  attention_forward_reference<double>(p, in, out_ref.data(), lse_ref.data());
  attention_backward_reference<double>(p, in, dO.data(),
                                       {dq.data(), dk.data(), dv.data(), dm.data(), nullptr});

  // The layer in float, gradients from zero.
  const Tensors<float> x32 = cast_all<float>(x);
  std::vector<float> lse;
  const std::vector<float> out = a.forward(x32, &lse);
  Tensors<float> g{std::vector<float>(x32[0].size()), std::vector<float>(x32[1].size())};
  a.backward(g, x32, cast<float>(dout));

  // Back to the reference's layout, then compared as whole tensors.
  std::vector<double> out_l(n), dq_l(n), dk_l(n), dv_l(n);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t d = 0; d < D; ++d) {
          out_l[head_major(b, h, t, d)] = out[row_major(b, h, t, d)];
          dq_l[head_major(b, h, t, d)] = g[0][packed(b, h, t, d)];
          dk_l[head_major(b, h, t, d)] = g[0][packed(b, h, t, d) + C];
          dv_l[head_major(b, h, t, d)] = g[0][packed(b, h, t, d) + 2 * C];
        }
  const CheckOptions tol = tolerances(a);
  EXPECT_LE(rel_error(out_l, out_ref), tol.fp32_out);
  EXPECT_LE(rel_error(lse, lse_ref), tol.fp32_out);  // lse is (B, H, T) in both
  EXPECT_LE(rel_error(dq_l, dq), tol.fp32_grad);
  EXPECT_LE(rel_error(dk_l, dk), tol.fp32_grad);
  EXPECT_LE(rel_error(dv_l, dv), tol.fp32_grad);
  EXPECT_LE(rel_error(g[1], dm), tol.fp32_grad);
}

TEST(SelfAttention, RejectsBadArguments) {
  std::vector<float> qkv(4 * 36), out(4 * 12), lse(12), scratch(4 * 36), dm(3);
  EXPECT_THROW(attention_forward(out.data(), lse.data(), qkv.data(), nullptr, 1, 4, 12, 5), Error);
  // A slope of −inf means nothing (NaN too); a negative finite one is valid (far keys heavier).
  const std::vector<float> minus_inf{0.5f, -INFINITY, 0.25f}, negative{0.5f, -0.1f, 0.25f};
  EXPECT_THROW(attention_forward(out.data(), lse.data(), qkv.data(), minus_inf.data(), 1, 4, 12, 3),
               Error);
  EXPECT_NO_THROW(
      attention_forward(out.data(), lse.data(), qkv.data(), negative.data(), 1, 4, 12, 3));
  const std::vector<double> minus_inf64{0.5, -INFINITY, 0.25};
  std::vector<double> qkv64(4 * 36), out64(4 * 12), lse64(12);
  EXPECT_THROW(
      attention_forward(out64.data(), lse64.data(), qkv64.data(), minus_inf64.data(), 1, 4, 12, 3),
      Error);
  attention_forward(out.data(), lse.data(), qkv.data(), nullptr, 1, 4, 12, 3);
  EXPECT_THROW(attention_backward(qkv.data(), dm.data(), scratch.data(), out.data(), qkv.data(),
                                  out.data(), lse.data(), nullptr, 1, 4, 12, 3),
               Error);  // dslopes without slopes
  EXPECT_THROW(attention_backward(scratch.data(), nullptr, scratch.data(), out.data(), qkv.data(),
                                  out.data(), lse.data(), nullptr, 1, 4, 12, 3),
               Error);  // scratch is dqkv
}

}  // namespace
}  // namespace slope::nn::testing
