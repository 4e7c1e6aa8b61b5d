// Bidirectional self-attention (encoders), and the causal case with key lengths (a decoder over
// a padded batch): gradients for every bias the layer takes (none, symmetric, nonsymmetric,
// learned left and right slopes), key lengths, T across a kernel tile; the layer against the
// definition; a padded batch against each sequence run alone; and the argument checks.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "attention_testing.h"
#include "nn/self_attention.h"
#include "slope/attention.h"

namespace slope::nn::testing {
namespace {

// x = {qkv (B, T, 3C)}, then optionally slopes_left (H), then optionally slopes_right (H).
struct SelfAttention {
  int64_t B, T, C, H;
  bool causal = false;
  std::vector<int32_t> key_lengths = {};  // (B), or empty: no padding

  template <class Real>
  AttentionBias<Real> bias(const Tensors<Real>& x) const {
    AttentionBias<Real> b;
    b.causal = causal;
    b.slopes_left = x.size() > 1 ? x[1].data() : nullptr;
    b.slopes_right = x.size() > 2 ? x[2].data() : nullptr;
    b.key_lengths = lengths_or_null(key_lengths);
    return b;
  }

  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x, std::vector<Real>* lse = nullptr) const {
    const AttentionBias<Real> b = bias(x);
    return forward_keeping_lse<Real>(B * T * C, B * H * T, lse, [&](Real* out, Real* l) {
      self_attention_forward(out, l, x[0].data(), b, B, T, C, H);
    });
  }

  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>& x, const std::vector<Real>& dout) const {
    const AttentionBias<Real> b = bias(x);
    backward_after_forward(
        *this, x, B * T * 3 * C, [&](const Real* out, const Real* lse, Real* scratch) {
          self_attention_backward(dx[0].data(), dx.size() > 1 ? or_null(dx[1]) : nullptr,
                                  dx.size() > 2 ? or_null(dx[2]) : nullptr, scratch, dout.data(),
                                  x[0].data(), out, lse, b, B, T, C, H);
        });
  }
};

// Entries up to 2: scores of a few units, so softmax is neither flat nor one-hot.
Tensors<double> qkv_input(const SelfAttention& a, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return {random_vector(a.B * a.T * 3 * a.C, rng, -2.0, 2.0)};
}

std::vector<double> learned_slopes(int64_t H, uint64_t seed) {
  std::mt19937_64 rng(seed);
  return random_vector(H, rng, 0.05, 1.0);
}

std::vector<double> to_double(const std::vector<float>& v) { return cast<double>(v); }

CheckOptions tolerances(const SelfAttention& a) { return attention_tolerances(a.T, a.C / a.H); }

TEST(BidirectionalAttention, NoBias) {
  const SelfAttention a{.B = 2, .T = 5, .C = 12, .H = 3};
  check_layer(a, qkv_input(a, 1), {"qkv"}, {true}, tolerances(a));
}

TEST(BidirectionalAttention, SymmetricAlibi) {  // one vector for both sides, three heads
  const SelfAttention a{.B = 2, .T = 6, .C = 12, .H = 3};
  Tensors<double> x = qkv_input(a, 2);
  x.push_back(to_double(alibi_slopes(a.H)));
  check_layer(a, x, {"qkv", "slopes"}, {true, false}, tolerances(a));
}

TEST(BidirectionalAttention, NonsymmetricAlibi) {  // half the heads look left, half right
  const SelfAttention a{.B = 2, .T = 7, .C = 24, .H = 6};
  const SlopePair m = alibi_slopes_nonsymmetric(a.H);
  Tensors<double> x = qkv_input(a, 3);
  x.push_back(to_double(m.left));
  x.push_back(to_double(m.right));
  ASSERT_TRUE(std::isinf(x[1][3]) && std::isinf(x[2][0]));  // the masked sides
  check_layer(a, x, {"qkv", "slopes_left", "slopes_right"}, {true, false, false}, tolerances(a));
}

TEST(BidirectionalAttention, LearnedLeftAndRightSlopes) {
  const SelfAttention a{.B = 2, .T = 7, .C = 12, .H = 3};
  Tensors<double> x = qkv_input(a, 4);
  x.push_back(learned_slopes(a.H, 40));
  x.push_back(learned_slopes(a.H, 41));
  check_layer(a, x, {"qkv", "slopes_left", "slopes_right"}, {true, true, true}, tolerances(a));
}

// Padded queries (t ≥ key_lengths[b]) still have outputs, which the probe loss includes: they
// are functions of the real keys, so differences must match them too.
TEST(BidirectionalAttention, KeyLengths) {
  const SelfAttention a{.B = 3, .T = 6, .C = 12, .H = 3, .key_lengths = {6, 3, 1}};
  Tensors<double> x = qkv_input(a, 5);
  x.push_back(learned_slopes(a.H, 50));
  x.push_back(learned_slopes(a.H, 51));
  check_layer(a, x, {"qkv", "slopes_left", "slopes_right"}, {true, true, true}, tolerances(a));
}

TEST(BidirectionalAttention, KeyLengthsNoBias) {
  const SelfAttention a{.B = 3, .T = 5, .C = 8, .H = 2, .key_lengths = {2, 5, 4}};
  check_layer(a, qkv_input(a, 6), {"qkv"}, {true}, tolerances(a));
}

TEST(BidirectionalAttention, CausalWithKeyLengths) {  // a decoder over a padded batch
  const SelfAttention a{.B = 3, .T = 6, .C = 12, .H = 3, .causal = true, .key_lengths = {6, 3, 1}};
  Tensors<double> x = qkv_input(a, 7);
  x.push_back(learned_slopes(a.H, 70));
  check_layer(a, x, {"qkv", "slopes"}, {true, true}, tolerances(a));
}

// T = 67 crosses the 64-key and 64-query tiles; key lengths end inside the second tile and
// exactly at the first's end.
TEST(BidirectionalAttention, AcrossKernelTiles) {
  const SelfAttention a{.B = 2, .T = 67, .C = 16, .H = 2, .key_lengths = {67, 64}};
  Tensors<double> x = qkv_input(a, 8);
  x.push_back(learned_slopes(a.H, 80));
  x.push_back(learned_slopes(a.H, 81));
  CheckOptions tol = tolerances(a);
  tol.fd_every = 31;
  check_layer(a, x, {"qkv", "slopes_left", "slopes_right"}, {true, true, true}, tol);
}

// bias.slopes_right null shares one vector between the sides, and dslopes_left gets its whole
// gradient: the sum of what the two sides get when the same values are passed as two vectors.
template <class Real>
void check_shared_slope_gradient(double tol) {
  const SelfAttention a{.B = 2, .T = 9, .C = 12, .H = 3, .key_lengths = {9, 6}};
  Tensors<double> x64 = qkv_input(a, 9);
  x64.push_back(learned_slopes(a.H, 90));
  std::mt19937_64 rng(91);
  const std::vector<Real> dout = cast<Real>(random_vector(a.B * a.T * a.C, rng));

  const Tensors<Real> shared = cast_all<Real>(x64);
  Tensors<Real> g_shared{std::vector<Real>(shared[0].size()), std::vector<Real>(a.H)};
  a.backward(g_shared, shared, dout);

  Tensors<Real> split = shared;
  split.push_back(shared[1]);
  Tensors<Real> g_split{std::vector<Real>(split[0].size()), std::vector<Real>(a.H),
                        std::vector<Real>(a.H)};
  a.backward(g_split, split, dout);

  std::vector<double> both(static_cast<size_t>(a.H));
  for (size_t h = 0; h < both.size(); ++h)
    both[h] = static_cast<double>(g_split[1][h]) + static_cast<double>(g_split[2][h]);
  EXPECT_LE(rel_error(g_shared[1], both), tol);
  EXPECT_LE(rel_error(g_shared[0], cast<double>(g_split[0])), tol);
}

TEST(BidirectionalAttention, SharedSlopesGradientIsBothSides) {
  check_shared_slope_gradient<double>(1e-12);
  const SelfAttention a{.B = 2, .T = 9, .C = 12, .H = 3};
  check_shared_slope_gradient<float>(tolerances(a).fp32_grad);
}

// A side whose slopes are +∞ is masked: its slope gradient is exactly zero (not NaN), in both
// precisions; the finite side's gradient agrees between them.
TEST(BidirectionalAttention, MaskedSideHasZeroSlopeGradient) {
  const SelfAttention a{.B = 2, .T = 7, .C = 16, .H = 4, .key_lengths = {7, 5}};
  const SlopePair m = alibi_slopes_nonsymmetric(a.H);
  Tensors<double> x = qkv_input(a, 10);
  x.push_back(to_double(m.left));
  x.push_back(to_double(m.right));
  std::mt19937_64 rng(11);
  const std::vector<double> dout = random_vector(a.B * a.T * a.C, rng);

  Tensors<double> g64{std::vector<double>(x[0].size()), std::vector<double>(a.H),
                      std::vector<double>(a.H)};
  a.backward(g64, x, dout);
  const Tensors<float> x32 = cast_all<float>(x);
  Tensors<float> g32{std::vector<float>(x32[0].size()), std::vector<float>(a.H),
                     std::vector<float>(a.H)};
  a.backward(g32, x32, cast<float>(dout));
  for (size_t side = 1; side <= 2; ++side)
    for (size_t h = 0; h < static_cast<size_t>(a.H); ++h) {
      if (std::isinf(x[side][h])) {
        EXPECT_EQ(g64[side][h], 0.0) << "side " << side << " head " << h;
        EXPECT_EQ(g32[side][h], 0.0f) << "side " << side << " head " << h;
      } else {
        EXPECT_NE(g64[side][h], 0.0) << "side " << side << " head " << h;
        EXPECT_LE(std::abs(g32[side][h] - g64[side][h]),
                  tolerances(a).fp32_grad * max_abs(g64[side]))
            << "side " << side << " head " << h;
      }
    }
}

// ---- The layer against the definition -----------------------------------------------------

// Sequence 2 (length 2) has fully masked rows: queries past its keys in head 2, whose left side
// is masked.
TEST(BidirectionalAttention, MatchesDefinition) {
  const SelfAttention a{.B = 3, .T = 7, .C = 12, .H = 3, .key_lengths = {7, 4, 2}};
  Tensors<double> x = qkv_input(a, 17);
  x.push_back({0.3, 0.1, std::numeric_limits<double>::infinity()});   // left
  x.push_back({0.7, std::numeric_limits<double>::infinity(), 0.05});  // right
  const Definition def{.B = a.B,
                       .Tq = a.T,
                       .Tk = a.T,
                       .C = a.C,
                       .H = a.H,
                       .left = x[1].data(),
                       .right = x[2].data(),
                       .lengths = a.key_lengths.data()};
  const double* qkv = x[0].data();
  const std::vector<double> want = def(qkv, 3 * a.C, qkv + a.C, qkv + 2 * a.C, 3 * a.C);
  std::vector<double> lse;
  const std::vector<double> out = a.forward(x, &lse);
  const std::vector<float> out32 = a.forward(cast_all<float>(x));
  ASSERT_TRUE(all_finite(want) && all_finite(out) && all_finite(out32));
  EXPECT_LE(rel_error(out, want), 1e-14);
  EXPECT_LE(rel_error(out32, want), tolerances(a).fp32_out);
  EXPECT_EQ(lse[static_cast<size_t>((2 * a.H + 2) * a.T + 5)], -INFINITY);  // masked row

  // One shared vector, causal.
  SelfAttention causal = a;
  causal.causal = true;
  x.pop_back();
  Definition shared = def;
  shared.causal = true;
  shared.right = nullptr;
  const std::vector<double> want_causal = shared(qkv, 3 * a.C, qkv + a.C, qkv + 2 * a.C, 3 * a.C);
  EXPECT_LE(rel_error(causal.forward(x), want_causal), 1e-14);
  EXPECT_LE(rel_error(causal.forward(cast_all<float>(x)), want_causal), tolerances(a).fp32_out);
}

// ---- A padded batch against each sequence alone ------------------------------------------

// A batch of sequences padded to the longest with garbage (finite: a NaN query row would give
// NaN outputs that dout = 0 does not cancel), through the bidirectional, symmetric-ALiBi layer.
template <class Real>
void check_padded_self_attention() {
  const std::vector<int32_t> lengths{70, 5, 64, 1};
  const int64_t B = 4, T = 70, C = 24, H = 3;
  const std::vector<double> slopes = to_double(alibi_slopes(H));
  std::mt19937_64 rng(15);
  const std::vector<double> garbage = random_vector(B * T * 3 * C, rng, -50.0, 50.0);
  const std::vector<double> real = random_vector(B * T * 3 * C, rng, -2.0, 2.0);
  const std::vector<double> g = random_vector(B * T * C, rng);
  std::vector<double> qkv = garbage, dout(static_cast<size_t>(B * T * C), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = lengths[static_cast<size_t>(b)];
    std::copy_n(real.begin() + b * T * 3 * C, n * 3 * C, qkv.begin() + b * T * 3 * C);
    std::copy_n(g.begin() + b * T * C, n * C, dout.begin() + b * T * C);  // 0 at padded queries
  }
  const SelfAttention batch{.B = B, .T = T, .C = C, .H = H, .key_lengths = lengths};
  const Tensors<Real> x{cast<Real>(qkv), cast<Real>(slopes)};
  std::vector<Real> lse;
  const std::vector<Real> out = batch.forward(x, &lse);
  Tensors<Real> dx{std::vector<Real>(x[0].size()), std::vector<Real>(H)};
  batch.backward(dx, x, cast<Real>(dout));
  ASSERT_TRUE(all_finite(out) && all_finite(lse) && all_finite(dx[0]) && all_finite(dx[1]));

  std::vector<double> dslopes_alone(static_cast<size_t>(H), 0.0);
  for (int64_t b = 0; b < B; ++b) {
    const int64_t n = lengths[static_cast<size_t>(b)];
    const SelfAttention alone{.B = 1, .T = n, .C = C, .H = H};
    const Tensors<Real> xb{cast<Real>(rows(x[0], b, T, 3 * C, n)), x[1]};
    std::vector<Real> lse_b;
    const std::vector<Real> out_b = alone.forward(xb, &lse_b);
    Tensors<Real> dxb{std::vector<Real>(xb[0].size()), std::vector<Real>(H)};
    alone.backward(dxb, xb, cast<Real>(rows(dout, b, T, C, n)));
    for (int64_t h = 0; h < H; ++h) dslopes_alone[static_cast<size_t>(h)] += dxb[1][h];

    EXPECT_LE(rel_error(rows(out, b, T, C, n), cast<double>(out_b)), kPaddingTolerance) << b;
    EXPECT_LE(rel_error(per_head(lse, b, H, T, n), cast<double>(lse_b)), kPaddingTolerance) << b;
    EXPECT_LE(rel_error(rows(dx[0], b, T, 3 * C, n), cast<double>(dxb[0])), kPaddingTolerance) << b;
    EXPECT_TRUE(padding_is_zero(dx[0], b, T, 3 * C, n)) << "dqkv at the padding of " << b;
  }
  EXPECT_LE(rel_error(dx[1], dslopes_alone), kPaddingTolerance);
}

TEST(PaddedBatch, SelfAttentionMatchesSequencesAlone) {
  check_padded_self_attention<float>();
  check_padded_self_attention<double>();
}

// ---- Argument checks -----------------------------------------------------------------------

template <class Real>
void check_rejects_bad_arguments() {
  const int64_t B = 2, T = 4, C = 12, H = 3;
  std::vector<Real> qkv(B * T * 3 * C, Real(0.5)), out(B * T * C), lse(B * H * T),
      scratch(B * T * 3 * C), dqkv(B * T * 3 * C), dm_left(H), dm_right(H);
  const std::vector<Real> slopes{0.5, 0.25, 0.125}, negative{0.5, -0.1, 0.25},
      minus_inf{0.5, -std::numeric_limits<Real>::infinity(), 0.25},
      nan{0.5, std::numeric_limits<Real>::quiet_NaN(), 0.25},
      inf{0.5, std::numeric_limits<Real>::infinity(), 0.25};
  const std::vector<int32_t> too_long{4, 5}, negative_length{-1, 4}, lengths{4, 2};
  auto forward = [&](AttentionBias<Real> bias) {
    return
        [&, bias] { self_attention_forward(out.data(), lse.data(), qkv.data(), bias, B, T, C, H); };
  };
  EXPECT_TRUE(throws_naming(forward({.key_lengths = too_long.data()}), "self attention"));
  EXPECT_TRUE(throws_naming(forward({.key_lengths = negative_length.data()}), "key_lengths[0]"));
  EXPECT_TRUE(throws_naming(forward({.slopes_left = minus_inf.data()}), "slopes_left[1]"));
  EXPECT_TRUE(throws_naming(forward({.slopes_left = slopes.data(), .slopes_right = nan.data()}),
                            "slopes_right[1]"));
  EXPECT_TRUE(throws_naming(forward({.slopes_left = nan.data()}), "self attention"));
  // A negative slope (far keys heavier) is valid, as in flash-attn; +∞ masks a side: valid, on
  // either side.
  EXPECT_NO_THROW(forward({.slopes_left = negative.data()})());
  EXPECT_NO_THROW(forward({.slopes_left = inf.data(), .slopes_right = slopes.data()})());
  EXPECT_NO_THROW(forward({.slopes_left = slopes.data(), .slopes_right = inf.data()})());

  // The backward, with a valid forward's results.
  const AttentionBias<Real> shared{.slopes_left = slopes.data(), .key_lengths = lengths.data()};
  forward(shared)();
  auto backward = [&](Real* dleft, Real* dright, const AttentionBias<Real>& bias) {
    self_attention_backward(dqkv.data(), dleft, dright, scratch.data(), out.data(), qkv.data(),
                            out.data(), lse.data(), bias, B, T, C, H);
  };
  EXPECT_TRUE(throws_naming([&] { backward(dm_left.data(), dm_right.data(), shared); },
                            "dslopes_right given but bias.slopes_right is null"));
  EXPECT_TRUE(throws_naming([&] { backward(nullptr, dm_right.data(), shared); },
                            "dslopes_right given but bias.slopes_right is null"));
  EXPECT_TRUE(throws_naming([&] { backward(dm_left.data(), nullptr, {}); }, "slopes_left is null"));
  EXPECT_TRUE(throws_naming(
      [&] {
        self_attention_backward(scratch.data() + 1, nullptr, nullptr, scratch.data(), out.data(),
                                qkv.data(), out.data(), lse.data(), shared, B, T, C, H);
      },
      "scratch overlaps dqkv"));
  EXPECT_NO_THROW(backward(dm_left.data(), nullptr, shared));
}

TEST(BidirectionalAttention, RejectsBadArguments) {
  check_rejects_bad_arguments<float>();
  check_rejects_bad_arguments<double>();
}

}  // namespace
}  // namespace slope::nn::testing
