// The float64 reference checked on its own: gradients by 4-point central finite differences and by
// complex step, softmax identities, and the default slopes against Press et al.'s formula.
#include <gtest/gtest.h>

#include <cmath>
#include <complex>

#include "attention/harness.h"
#include "common/finite_difference.h"

namespace slope::testing {
namespace {

// L(x) = Σ out ∘ G for a fixed random G (G = the instance's dout).
double loss(const AttentionProblem& p, const Typed<double>& t) {
  std::vector<double> out(t.dout.size()), lse(static_cast<size_t>(detail::lse_elements(p)));
  attention_forward_reference<double>(p, t.inputs(), out.data(), lse.data());
  double s = 0.0;
  for (size_t i = 0; i < out.size(); ++i) s += out[i] * t.dout[i];
  return s;
}

void check_fd(const Case& c) {
  const Instance x = make_instance(c, 99);
  const AttentionProblem& p = x.p;
  Typed<double> t(x);
  const Golden g = run_reference<double>(x);
  // Perturb a spread of entries of each tensor (every entry of the slopes).
  auto check = [&](const char* name, std::vector<double>& tensor, const std::vector<double>& grad,
                   int64_t stride) {
    double gmax = 1e-12;
    for (double e : grad) gmax = std::max(gmax, std::abs(e));
    for (size_t i = 0; i < tensor.size(); i += static_cast<size_t>(stride)) {
      if (!std::isfinite(tensor[i])) continue;  // +inf masks a side; NaN: a (B, H) gap
      const auto l = [&] { return loss(p, t); };
      const double fd = central_difference(tensor[i], l, 1e-3);
      // 1e-11: the rounding floor of the difference quotient, eps·|L|/h with |L| ~ 10.
      EXPECT_NEAR(grad[i], fd, 1e-7 * gmax + 1e-11) << c.name << " " << name << "[" << i << "]";
    }
  };
  check("q", t.q, g.dq, 7);
  check("k", t.k, g.dk, 5);
  check("v", t.v, g.dv, 3);
  if (!t.sl.empty()) {
    check("slopes_left", t.sl, g.dsl, 1);
    if (!t.sr.empty()) check("slopes_right", t.sr, g.dsr, 1);
  }
}

Case small(std::string name, bool causal, Bias bias) {
  Case c;
  c.name = std::move(name);
  c.B = 2, c.H = 3, c.Hkv = 3, c.Tq = 5, c.Tk = 7, c.D = 4, c.Dv = 3;
  c.causal = causal;
  c.bias = bias;
  return c;
}

TEST(ReferenceGradients, FiniteDifferencesCausalAlibi) {
  check_fd(small("causal_alibi", true, Bias::kAlibi));
}
TEST(ReferenceGradients, FiniteDifferencesLearnedLeftRight) {
  check_fd(small("learned", false, Bias::kLearned));
}
TEST(ReferenceGradients, FiniteDifferencesSharedSlopes) {
  Case c = small("shared", false, Bias::kLearned);
  c.shared_slopes = true;
  check_fd(c);
}
TEST(ReferenceGradients, FiniteDifferencesNonsymmetricRaggedGqaMask) {
  Case c = small("nonsym", false, Bias::kNonsymmetric);
  c.H = 4, c.Hkv = 2, c.ragged = true, c.mask = MaskKind::kAdditive;
  check_fd(c);
}

TEST(ReferenceGradients, FiniteDifferencesPackedGqaCausalAlibi) {
  Case c = small("packed", true, Bias::kAlibi);
  c.H = 4, c.Hkv = 2;
  c.docs_q = {3, 0, 5, 2};  // a document without queries, one without keys
  c.docs_k = {6, 2, 4, 0};
  check_fd(c);
}
TEST(ReferenceGradients, FiniteDifferencesPackedUpperLeftLearned) {
  Case c = small("packed_upper_left", false, Bias::kLearned);
  c.docs_q = {4, 6};
  c.docs_k = {7, 3};
  c.positions = QueryPositions::kUpperLeft;
  c.strided = true;
  check_fd(c);
}
TEST(ReferenceGradients, FiniteDifferencesKeyLengthPositions) {
  Case c = small("key_length_positions", true, Bias::kLearned);
  c.key_lengths = {3, 7};  // row 0: its first queries sit before every key
  c.positions = QueryPositions::kKeyLengths;
  check_fd(c);
}

// Dropout: for a fixed (seed, offset) the mask is fixed and L is smooth, so finite differences
// check the reference's dropout backward (dP and dv scaled by Z/(1 − p), D_i unchanged).
TEST(ReferenceGradients, FiniteDifferencesDropout) {
  for (const float p : {0.1f, 0.5f, 0.9f}) {
    Case c = small("dropout", true, Bias::kLearned);
    c.H = 4, c.Hkv = 2, c.dropout_p = p;
    check_fd(c);
  }
  Case c = small("dropout_symmetric_ragged", false, Bias::kSymmetric);
  c.ragged = true, c.dropout_p = 0.5f;
  check_fd(c);
}

// With dropout the reference drops exactly the keys of attention_dropout_mask and scales the
// rest by 1/(1 − p): with v = 1, out_i = Σ_{j kept} P_ij/(1 − p), P the undropped softmax (whose
// lse is the one without dropout).
TEST(Reference, DropoutKeepsTheMaskedKeysScaled) {
  Case c = small("dropout_ones", false, Bias::kAlibi);
  c.Tq = 9, c.Tk = 13, c.dropout_p = 0.5f;
  Instance x = make_instance(c);
  std::fill(x.v.begin(), x.v.end(), 1.0f);
  Instance plain = x;
  plain.p.dropout_p = 0.0f;
  const Golden g = run_reference<double>(x), g0 = run_reference<double>(plain);
  EXPECT_EQ(g.lse, g0.lse);
  const AttentionProblem& p = x.p;
  Typed<double> t(x);
  std::vector<double> s(static_cast<size_t>(p.Tk)), P(s);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t i = 0; i < p.Tq; ++i) {
        const double lse = g.lse[static_cast<size_t>((b * p.H + h) * p.Tq + i)];
        const int64_t pos = i + p.Tk - p.Tq;  // kLowerRight
        const double m = x.sl[static_cast<size_t>(h)];
        double want = 0.0;
        for (int64_t j = 0; j < p.Tk; ++j) {
          const double* q = t.q.data() + b * p.q_strides.b + h * p.q_strides.h + i * p.q_strides.t;
          const double* k = t.k.data() + b * p.k_strides.b + h * p.k_strides.h + j * p.k_strides.t;
          double dot = 0.0;
          for (int64_t d = 0; d < p.D; ++d) dot += q[d] * k[d];
          const double sc = dot * p.effective_scale() - m * std::abs(static_cast<double>(pos - j));
          if (attention_dropout_mask(p, b, h, i, j)) want += std::exp(sc - lse) / 0.5;
        }
        const size_t o =
            static_cast<size_t>(b * p.out_strides.b + h * p.out_strides.h + i * p.out_strides.t);
        EXPECT_NEAR(g.out[o], want, 1e-12) << b << " " << h << " " << i;
      }
}

// Issue 12's features by finite differences: softcap (dx = dS·(1 − tanh²)) with a window that
// cuts rows, per-batch (B, H) slopes with negative ones on ragged rows.
TEST(ReferenceGradients, FiniteDifferencesSoftcapWindow) {
  Case c = small("softcap_window", false, Bias::kLearned);
  c.softcap = 1.5f, c.window_left = 1, c.window_right = 2, c.input_scale = 1.5f;
  check_fd(c);
}
TEST(ReferenceGradients, FiniteDifferencesPerBatchNegativeSlopes) {
  Case c = small("per_batch_negative", true, Bias::kLearned);
  c.per_batch_slopes = c.negative_slopes = c.ragged = true;
  c.H = 4, c.Hkv = 2;
  check_fd(c);
}

// Complex step: Im L(x + ih)/h has no cancellation error, so it pins the gradients to ~1e-12:
// every slope, and a spread of q and k entries (through the softcap, when there is one).
void check_complex_step(const Case& c) {
  const Instance x = make_instance(c, 7);
  const AttentionProblem& p = x.p;
  const Golden g = run_reference<double>(x);
  using cd = std::complex<double>;
  Typed<cd> t(x);
  auto check = [&](const char* name, std::vector<cd>& s, const std::vector<double>& grad,
                   size_t stride) {
    for (size_t n = 0; n < s.size(); n += stride) {
      if (!std::isfinite(s[n].real())) continue;  // +inf masks a side; NaN: a (B, H) gap
      const double step = 1e-20;
      s[n] += cd(0.0, step);
      std::vector<cd> out(x.dout.size()), lse(static_cast<size_t>(detail::lse_elements(p)));
      attention_forward_reference<cd>(p, t.inputs(), out.data(), lse.data());
      s[n] -= cd(0.0, step);
      double d = 0.0;
      for (size_t i = 0; i < out.size(); ++i) d += out[i].imag() / step * x.dout[i];
      EXPECT_NEAR(grad[n], d, 1e-10 * std::max(1.0, std::abs(d)))
          << c.name << " " << name << "[" << n << "]";
    }
  };
  check("slopes_left", t.sl, g.dsl, 1);
  check("slopes_right", t.sr, g.dsr, 1);
  check("q", t.q, g.dq, 5);
  check("k", t.k, g.dk, 3);
}

TEST(ReferenceGradients, ComplexStepSlopes) {
  check_complex_step(small("cs", false, Bias::kLearned));
}
TEST(ReferenceGradients, ComplexStepSoftcapPerBatchNegativeSlopes) {
  Case c = small("cs_softcap_per_batch_negative", false, Bias::kLearned);
  c.softcap = 0.8f, c.input_scale = 2.0f, c.window_left = 3;
  c.per_batch_slopes = c.negative_slopes = true;
  check_complex_step(c);
  c.shared_slopes = true;  // one vector: its gradient sums both sides, per batch row
  c.name += "_shared";
  check_complex_step(c);
}

// Softmax rows sum to one: with v = 1 every visible row outputs exactly 1, masked rows 0.
TEST(Reference, RowsSumToOneAndMaskedRowsAreZero) {
  Case c = small("ones", true, Bias::kAlibi);
  c.ragged = true;
  Instance x = make_instance(c);
  std::fill(x.v.begin(), x.v.end(), 1.0f);
  const Golden g = run_reference<double>(x);
  const AttentionProblem& p = x.p;
  for (int64_t b = 0; b < p.B; ++b) {
    const detail::RowGeometry rg = detail::row_geometry(p, b);
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t i = 0; i < rg.Tq; ++i) {
        const int64_t pos = i + rg.offset;
        const bool any = std::min<int64_t>(pos + 1, x.key_lengths[static_cast<size_t>(b)]) > 0;
        const double o =
            g.out[static_cast<size_t>(rg.out + h * p.out_strides.h + i * p.out_strides.t)];
        EXPECT_NEAR(o, any ? 1.0 : 0.0, 1e-12);
        if (!any) {
          EXPECT_EQ(g.lse[static_cast<size_t>(rg.lse + h * rg.lse_h + i)], -INFINITY);
        }
      }
  }
}

// Press et al.'s get_slopes, written out as in the paper's code.
std::vector<double> press_get_slopes(int n) {
  auto pow2 = [](int m) {
    const double start = std::pow(2.0, -std::pow(2.0, -(std::log2(m) - 3)));
    std::vector<double> r;
    for (int i = 0; i < m; ++i) r.push_back(start * std::pow(start, i));
    return r;
  };
  if (std::floor(std::log2(n)) == std::log2(n)) return pow2(n);
  const int closest = 1 << static_cast<int>(std::floor(std::log2(n)));
  std::vector<double> r = pow2(closest);
  const std::vector<double> extra = press_get_slopes(2 * closest);
  for (int i = 0; static_cast<int>(r.size()) < n; i += 2)
    r.push_back(extra[static_cast<size_t>(i)]);
  return r;
}

TEST(Slopes, MatchPressForEveryHeadCount) {
  for (int n : {1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 20, 24, 40, 64, 96}) {
    const std::vector<float> got = alibi_slopes(n);
    const std::vector<double> want = press_get_slopes(n);
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i)
      EXPECT_FLOAT_EQ(got[i], static_cast<float>(want[i])) << n << " " << i;
  }
}

TEST(Slopes, GeometricPresetDiffersOnlyForNonPowersOfTwo) {
  EXPECT_EQ(alibi_slopes_geometric(8), alibi_slopes(8));
  const std::vector<float> g12 = alibi_slopes_geometric(12);
  EXPECT_FLOAT_EQ(g12[0], std::exp2(-8.0f / 12.0f));
  EXPECT_FLOAT_EQ(g12[11], std::exp2(-8.0f));
  EXPECT_NE(g12, alibi_slopes(12));
  EXPECT_FLOAT_EQ(alibi_slopes(4, 16.0)[0], 0.0625f);  // max_bias scales the exponent
}

TEST(Slopes, NonsymmetricHalvesLookOppositeWays) {
  const SlopePair s = alibi_slopes_nonsymmetric(8);
  const std::vector<float> half = alibi_slopes(4);
  for (size_t h = 0; h < 4; ++h) {
    EXPECT_EQ(s.left[h], half[h]);
    EXPECT_TRUE(std::isinf(s.right[h]));
    EXPECT_TRUE(std::isinf(s.left[h + 4]));
    EXPECT_EQ(s.right[h + 4], half[h]);
  }
  EXPECT_THROW(alibi_slopes_nonsymmetric(5), Error);
  EXPECT_THROW(alibi_slopes(0), Error);
}

}  // namespace
}  // namespace slope::testing
