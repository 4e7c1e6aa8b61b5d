// GELU (exact, erf), GPT-2's tanh GELU and the residual add.
#include "gradcheck.h"
#include "nn/pointwise.h"

namespace slope::nn::testing {
namespace {

struct Gelu {  // x = {inp (N)}
  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x) const {
    std::vector<Real> out(x[0].size());
    gelu_forward(out.data(), x[0].data(), static_cast<int64_t>(out.size()));
    return out;
  }
  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>& x, const std::vector<Real>& dout) const {
    gelu_backward(dx[0].data(), dout.data(), x[0].data(), static_cast<int64_t>(dout.size()));
  }
};

struct GeluTanh {  // x = {inp (N)}
  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x) const {
    std::vector<Real> out(x[0].size());
    gelu_tanh_forward(out.data(), x[0].data(), static_cast<int64_t>(out.size()));
    return out;
  }
  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>& x, const std::vector<Real>& dout) const {
    gelu_tanh_backward(dx[0].data(), dout.data(), x[0].data(), static_cast<int64_t>(dout.size()));
  }
};

struct Residual {  // x = {inp1 (N), inp2 (N)}
  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x) const {
    std::vector<Real> out(x[0].size());
    residual_forward(out.data(), x[0].data(), x[1].data(), static_cast<int64_t>(out.size()));
    return out;
  }
  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>&, const std::vector<Real>& dout) const {
    residual_backward(dx[0].data(), dx[1].data(), dout.data(), static_cast<int64_t>(dout.size()));
  }
};

TEST(Gelu, Gradient) {
  std::mt19937_64 rng(1);
  // Element-wise: a few roundings in erf, exp and the products, no sums.
  check_layer(Gelu{}, {random_vector(200, rng, -5.0, 5.0)}, {"inp"}, {true},
              {fp32_tolerance(1), fp32_tolerance(1), kFdTolerance});
}

TEST(Gelu, IsTheExactErfForm) {
  // x·Φ(x): Φ(1) = 0.8413447460685429 (the tanh approximation gives 0.8411919906082768).
  const std::vector<double> x{0.0, 1.0, -1.0, 3.0, -10.0};
  const std::vector<double> y = Gelu{}.forward<double>({x});
  EXPECT_EQ(y[0], 0.0);
  EXPECT_NEAR(y[1], 0.8413447460685429, 1e-15);
  EXPECT_NEAR(y[2], -0.15865525393145707, 1e-15);
  EXPECT_NEAR(y[3], 2.99595030590511, 1e-14);
  EXPECT_NEAR(y[4], 0.0, 1e-20);
}

TEST(GeluTanh, Gradient) {
  std::mt19937_64 rng(3);
  // Element-wise: a few roundings in the cubic, tanh and the products, no sums.
  check_layer(GeluTanh{}, {random_vector(200, rng, -5.0, 5.0)}, {"inp"}, {true},
              {fp32_tolerance(1), fp32_tolerance(1), kFdTolerance});
}

TEST(GeluTanh, IsGpt2sApproximation) {
  // ½·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) at 1 is 0.8411919906082768, not Φ(1)
  // 0.8413447460685429; odd part: f(x) − f(−x) = x.
  const std::vector<double> x{0.0, 1.0, -1.0, 3.0, -10.0};
  const std::vector<double> y = GeluTanh{}.forward<double>({x});
  EXPECT_EQ(y[0], 0.0);
  EXPECT_NEAR(y[1], 0.8411919906082768, 1e-15);
  EXPECT_NEAR(y[2], 0.8411919906082768 - 1.0, 1e-15);
  EXPECT_NEAR(y[3] - 3.0, -0.003637392081773161, 1e-14);
  EXPECT_NEAR(y[4], 0.0, 1e-20);
  std::vector<float> in{-2.0f, 0.5f, 4.0f}, out(3);
  gelu_tanh_forward(out.data(), in.data(), 3);
  gelu_tanh_forward(in.data(), in.data(), 3);
  EXPECT_EQ(in, out);
}

TEST(Gelu, InPlace) {
  std::vector<float> x{-2.0f, 0.5f, 4.0f}, y(3);
  gelu_forward(y.data(), x.data(), 3);
  gelu_forward(x.data(), x.data(), 3);
  EXPECT_EQ(x, y);
}

// GradWrite::overwrite assigns without reading the old gradient (stale NaN included), and gives
// exactly what accumulating into zeros gives: float (vectorised kernels, lengths with tails) and
// double (libm).
template <class Real>
void check_overwrite(Activation act) {
  for (int64_t n : {1, 15, 16, 17, 100}) {
    std::vector<Real> x(static_cast<size_t>(n)), dout(x.size());
    for (int64_t i = 0; i < n; ++i)
      x[i] = static_cast<Real>(0.37 * i - 3.0), dout[i] = static_cast<Real>(1.0 - 0.05 * i);
    std::vector<Real> acc(x.size(), Real(0)),
        over(x.size(), std::numeric_limits<Real>::quiet_NaN());
    activation_backward(act, acc.data(), dout.data(), x.data(), n);
    activation_backward(act, over.data(), dout.data(), x.data(), n, GradWrite::overwrite);
    EXPECT_EQ(acc, over) << n;
  }
}

TEST(Gelu, OverwriteNeverReadsTheOldGradient) {
  check_overwrite<float>(Activation::gelu);
  check_overwrite<double>(Activation::gelu);
  check_overwrite<float>(Activation::gelu_tanh);
  check_overwrite<double>(Activation::gelu_tanh);
}

TEST(Residual, Gradient) {
  std::mt19937_64 rng(2);
  check_layer(Residual{}, {random_vector(30, rng), random_vector(30, rng)}, {"inp1", "inp2"},
              {true, true}, {kEps32, kEps32, kFdTolerance});
}

TEST(Residual, RejectsAliasedGradient) {
  std::vector<float> a(4), b(4);
  EXPECT_THROW(residual_backward(a.data(), b.data(), a.data(), 4), Error);
}

}  // namespace
}  // namespace slope::nn::testing
