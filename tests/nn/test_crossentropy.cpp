// Softmax cross-entropy: gradient of the mean (ignored targets, padded vocabulary), the losses
// against the formula, large logits, all targets ignored, bad targets.
#include <cmath>

#include "gradcheck.h"
#include "nn/crossentropy.h"

namespace slope::nn::testing {
namespace {

// x = {logits (B, T, Vp)}; the output is the mean loss (one entry), so G is dloss.
struct CrossEntropy {
  int64_t B, T, V, Vp;
  std::vector<int32_t> targets;  // (B, T)

  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x, std::vector<Real>* losses = nullptr,
                            std::vector<Real>* lse = nullptr) const {
    std::vector<Real> l(static_cast<size_t>(B * T)), s(static_cast<size_t>(B * T));
    const Real mean =
        crossentropy_forward(l.data(), s.data(), x[0].data(), targets.data(), B, T, V, Vp);
    if (losses) *losses = l;
    if (lse) *lse = s;
    return {mean};
  }
  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>& x, const std::vector<Real>& dout) const {
    std::vector<Real> losses, lse;
    forward(x, &losses, &lse);
    crossentropy_backward(dx[0].data(), x[0].data(), lse.data(), targets.data(), dout[0], B, T, V,
                          Vp);
  }
};

// V = 7 padded to 9; two of the six targets ignored.
CrossEntropy small_case() { return {2, 3, 7, 9, {3, kIgnoreIndex, 0, 6, 6, kIgnoreIndex}}; }

// Logits in [-3, 3], and the padding columns at 30: if they leaked into the softmax they would
// dominate it.
Tensors<double> logits_for(const CrossEntropy& ce, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<double> z = random_vector(ce.B * ce.T * ce.Vp, rng, -3.0, 3.0);
  for (int64_t bt = 0; bt < ce.B * ce.T; ++bt)
    for (int64_t v = ce.V; v < ce.Vp; ++v) z[static_cast<size_t>(bt * ce.Vp + v)] = 30.0;
  return {z};
}

TEST(CrossEntropy, GradientWithIgnoredTargetsAndPadding) {
  const CrossEntropy ce = small_case();
  // The checks include: padding columns and ignored rows get exactly zero added gradient.
  check_layer(ce, logits_for(ce, 1), {"logits"}, {true},
              {fp32_tolerance(ce.V * ce.B * ce.T), fp32_tolerance(ce.V), kFdTolerance});
}

TEST(CrossEntropy, LossesMatchTheFormula) {
  const CrossEntropy ce = small_case();
  const Tensors<double> x = logits_for(ce, 2);
  std::vector<double> losses, lse;
  const double mean = ce.forward(x, &losses, &lse)[0];
  double total = 0.0;
  int count = 0;
  for (int64_t bt = 0; bt < ce.B * ce.T; ++bt) {
    const double* z = x[0].data() + bt * ce.Vp;
    double sum = 0.0;
    for (int64_t v = 0; v < ce.V; ++v) sum += std::exp(z[v]);
    EXPECT_NEAR(lse[static_cast<size_t>(bt)], std::log(sum), 1e-14);
    const int32_t target = ce.targets[static_cast<size_t>(bt)];
    if (target == kIgnoreIndex) {
      EXPECT_EQ(losses[static_cast<size_t>(bt)], 0.0);
      continue;
    }
    const double expected = std::log(sum) - z[target];
    EXPECT_NEAR(losses[static_cast<size_t>(bt)], expected, 1e-14);
    total += expected;
    ++count;
  }
  EXPECT_NEAR(mean, total / count, 1e-14);  // the mean over counted targets only
}

TEST(CrossEntropy, LargeLogitsStayFinite) {
  // exp(1000) overflows even double: only the max subtraction keeps this finite.
  CrossEntropy ce{1, 2, 4, 4, {1, 2}};
  const std::vector<float> z{1000.0f, 999.0f, 998.0f, -1000.0f, 0.0f, 0.0f, 1e30f, 0.0f};
  std::vector<float> losses, lse;
  const float mean = ce.forward<float>({z}, &losses, &lse)[0];
  const double expected0 = std::log(1.0 + std::exp(1.0) + std::exp(-1.0));  // lse − 999
  EXPECT_NEAR(losses[0], expected0, 1e-4);
  EXPECT_NEAR(losses[1], 0.0, 1e-6);
  EXPECT_TRUE(std::isfinite(mean));
  Tensors<float> dz{std::vector<float>(z.size(), 0.0f)};
  ce.backward<float>(dz, {z}, {1.0f});
  for (float g : dz[0]) EXPECT_TRUE(std::isfinite(g));
}

TEST(CrossEntropy, NothingCounted) {
  const CrossEntropy ce{1, 2, 3, 3, {kIgnoreIndex, kIgnoreIndex}};
  const std::vector<float> z(6, 0.5f);
  EXPECT_EQ(ce.forward<float>({z})[0], 0.0f);
  Tensors<float> dz{std::vector<float>(6, 2.0f)};
  ce.backward<float>(dz, {z}, {1.0f});
  EXPECT_EQ(dz[0], std::vector<float>(6, 2.0f));
}

TEST(CrossEntropy, RejectsBadTargetsAndSizes) {
  const std::vector<float> z(6, 0.0f);
  for (int32_t bad : {3, -2}) {
    const CrossEntropy ce{1, 2, 3, 3, {0, bad}};
    EXPECT_THROW(ce.forward<float>({z}), Error);
  }
  const CrossEntropy padded_smaller{1, 2, 4, 3, {0, 1}};
  EXPECT_THROW(padded_smaller.forward<float>({z}), Error);
}

}  // namespace
}  // namespace slope::nn::testing
