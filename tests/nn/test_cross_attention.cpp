// Cross-attention (encoder–decoders): gradients for Tq < Tk and Tq > Tk with ragged sources and
// across kernel tiles; the layer against the definition; a padded batch against each pair run
// alone; and the argument checks.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "attention_testing.h"
#include "nn/self_attention.h"
#include "slope/attention.h"

namespace slope::nn::testing {
namespace {

// x = {q (B, Tq, C), kv (B, Tk, 2C)}.
struct CrossAttention {
  int64_t B, Tq, Tk, C, H;
  std::vector<int32_t> key_lengths = {};

  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x, std::vector<Real>* lse = nullptr) const {
    return forward_keeping_lse<Real>(B * Tq * C, B * H * Tq, lse, [&](Real* out, Real* l) {
      cross_attention_forward(out, l, x[0].data(), x[1].data(), lengths_or_null(key_lengths), B, Tq,
                              Tk, C, H);
    });
  }

  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>& x, const std::vector<Real>& dout) const {
    backward_after_forward(*this, x, B * Tq * C + B * Tk * 2 * C,
                           [&](const Real* out, const Real* lse, Real* scratch) {
                             cross_attention_backward(dx[0].data(), dx[1].data(), scratch,
                                                      dout.data(), x[0].data(), x[1].data(), out,
                                                      lse, lengths_or_null(key_lengths), B, Tq, Tk,
                                                      C, H);
                           });
  }
};

// Entries up to 2: scores of a few units, so softmax is neither flat nor one-hot.
Tensors<double> q_kv_input(const CrossAttention& a, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensors<double> x{random_vector(a.B * a.Tq * a.C, rng, -2.0, 2.0)};
  x.push_back(random_vector(a.B * a.Tk * 2 * a.C, rng, -2.0, 2.0));
  return x;
}

CheckOptions tolerances(const CrossAttention& a) { return attention_tolerances(a.Tk, a.C / a.H); }

TEST(CrossAttention, ShorterTarget) {  // Tq < Tk, ragged sources
  const CrossAttention a{.B = 3, .Tq = 5, .Tk = 7, .C = 12, .H = 3, .key_lengths = {7, 4, 1}};
  const Tensors<double> x = q_kv_input(a, 12);
  check_layer(a, x, {"q", "kv"}, {true, true}, tolerances(a));
}

TEST(CrossAttention, LongerTarget) {  // Tq > Tk
  const CrossAttention a{.B = 2, .Tq = 7, .Tk = 3, .C = 8, .H = 2, .key_lengths = {2, 3}};
  const Tensors<double> x = q_kv_input(a, 13);
  check_layer(a, x, {"q", "kv"}, {true, true}, tolerances(a));
}

TEST(CrossAttention, AcrossKernelTiles) {
  const CrossAttention a{.B = 2, .Tq = 65, .Tk = 67, .C = 16, .H = 2, .key_lengths = {67, 30}};
  const Tensors<double> x = q_kv_input(a, 14);
  CheckOptions tol = tolerances(a);
  tol.fd_every = 29;
  check_layer(a, x, {"q", "kv"}, {true, true}, tol);
}

// ---- The layer against the definition -----------------------------------------------------

TEST(CrossAttention, MatchesDefinition) {
  const CrossAttention a{.B = 2, .Tq = 4, .Tk = 6, .C = 12, .H = 3, .key_lengths = {6, 3}};
  const Tensors<double> x = q_kv_input(a, 18);
  const Definition def{
      .B = a.B, .Tq = a.Tq, .Tk = a.Tk, .C = a.C, .H = a.H, .lengths = a.key_lengths.data()};
  const std::vector<double> want = def(x[0].data(), a.C, x[1].data(), x[1].data() + a.C, 2 * a.C);
  EXPECT_LE(rel_error(a.forward(x), want), 1e-14);
  EXPECT_LE(rel_error(a.forward(cast_all<float>(x)), want), tolerances(a).fp32_out);
}

// ---- A padded batch against each pair alone ---------------------------------------------

// Targets and sources of different lengths, each padded to the longest.
template <class Real>
void check_padded_cross_attention() {
  const std::vector<int32_t> tq{5, 66, 1}, tk{70, 3, 1};
  const int64_t B = 3, Tq = 66, Tk = 70, C = 16, H = 2;
  std::mt19937_64 rng(16);
  const std::vector<double> q_garbage = random_vector(B * Tq * C, rng, -50.0, 50.0),
                            kv_garbage = random_vector(B * Tk * 2 * C, rng, -50.0, 50.0),
                            q_real = random_vector(B * Tq * C, rng, -2.0, 2.0),
                            kv_real = random_vector(B * Tk * 2 * C, rng, -2.0, 2.0),
                            g = random_vector(B * Tq * C, rng);
  std::vector<double> q = q_garbage, kv = kv_garbage, dout(static_cast<size_t>(B * Tq * C), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t nq = tq[static_cast<size_t>(b)], nk = tk[static_cast<size_t>(b)];
    std::copy_n(q_real.begin() + b * Tq * C, nq * C, q.begin() + b * Tq * C);
    std::copy_n(kv_real.begin() + b * Tk * 2 * C, nk * 2 * C, kv.begin() + b * Tk * 2 * C);
    std::copy_n(g.begin() + b * Tq * C, nq * C, dout.begin() + b * Tq * C);
  }
  const CrossAttention batch{.B = B, .Tq = Tq, .Tk = Tk, .C = C, .H = H, .key_lengths = tk};
  const Tensors<Real> x{cast<Real>(q), cast<Real>(kv)};
  std::vector<Real> lse;
  const std::vector<Real> out = batch.forward(x, &lse);
  Tensors<Real> dx{std::vector<Real>(x[0].size()), std::vector<Real>(x[1].size())};
  batch.backward(dx, x, cast<Real>(dout));
  ASSERT_TRUE(all_finite(out) && all_finite(lse) && all_finite(dx[0]) && all_finite(dx[1]));

  for (int64_t b = 0; b < B; ++b) {
    const int64_t nq = tq[static_cast<size_t>(b)], nk = tk[static_cast<size_t>(b)];
    const CrossAttention alone{.B = 1, .Tq = nq, .Tk = nk, .C = C, .H = H};
    const Tensors<Real> xb{cast<Real>(rows(x[0], b, Tq, C, nq)),
                           cast<Real>(rows(x[1], b, Tk, 2 * C, nk))};
    std::vector<Real> lse_b;
    const std::vector<Real> out_b = alone.forward(xb, &lse_b);
    Tensors<Real> dxb{std::vector<Real>(xb[0].size()), std::vector<Real>(xb[1].size())};
    alone.backward(dxb, xb, cast<Real>(rows(dout, b, Tq, C, nq)));

    EXPECT_LE(rel_error(rows(out, b, Tq, C, nq), cast<double>(out_b)), kPaddingTolerance) << b;
    EXPECT_LE(rel_error(per_head(lse, b, H, Tq, nq), cast<double>(lse_b)), kPaddingTolerance) << b;
    EXPECT_LE(rel_error(rows(dx[0], b, Tq, C, nq), cast<double>(dxb[0])), kPaddingTolerance) << b;
    EXPECT_LE(rel_error(rows(dx[1], b, Tk, 2 * C, nk), cast<double>(dxb[1])), kPaddingTolerance)
        << b;
    EXPECT_TRUE(padding_is_zero(dx[0], b, Tq, C, nq)) << "dq at the padding of " << b;
    EXPECT_TRUE(padding_is_zero(dx[1], b, Tk, 2 * C, nk)) << "dkv at the padding of " << b;
  }
}

TEST(PaddedBatch, CrossAttentionMatchesSequencesAlone) {
  check_padded_cross_attention<float>();
  check_padded_cross_attention<double>();
}

// ---- Argument checks -----------------------------------------------------------------------

template <class Real>
void check_rejects_bad_arguments() {
  // Key lengths against Tk, not Tq; heads must divide C.
  const int64_t B = 2, Tq = 3, Tk = 5, C = 12, H = 3;
  std::vector<Real> q(B * Tq * C), kv(B * Tk * 2 * C), cout(B * Tq * C), clse(B * H * Tq);
  const std::vector<int32_t> five{5, 5}, six{5, 6};
  auto cross = [&](const int32_t* key_lengths, int64_t heads) {
    return [&, key_lengths, heads] {
      cross_attention_forward(cout.data(), clse.data(), q.data(), kv.data(), key_lengths, B, Tq, Tk,
                              C, heads);
    };
  };
  EXPECT_NO_THROW(cross(five.data(), H)());
  EXPECT_TRUE(throws_naming(cross(six.data(), H), "cross attention: key_lengths[1] = 6"));
  EXPECT_TRUE(throws_naming(cross(nullptr, 5), "cross attention"));
  std::vector<Real> dq(q.size()), dkv(kv.size()), cscratch(q.size() + kv.size());
  EXPECT_TRUE(throws_naming(
      [&] {
        cross_attention_backward(dq.data(), cscratch.data() + 3, cscratch.data(), cout.data(),
                                 q.data(), kv.data(), cout.data(), clse.data(), five.data(), B, Tq,
                                 Tk, C, H);
      },
      "scratch overlaps dkv"));
}

TEST(CrossAttention, RejectsBadArguments) {
  check_rejects_bad_arguments<float>();
  check_rejects_bad_arguments<double>();
}

}  // namespace
}  // namespace slope::nn::testing
