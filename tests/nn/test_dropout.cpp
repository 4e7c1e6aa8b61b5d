// Counter-based dropout: gradient, determinism (seed, thread count, forward vs backward),
// keep rate and scale, p = 0 and p = 1, bad p.
#include <omp.h>

#include <cmath>

#include "gradcheck.h"
#include "nn/dropout.h"

namespace slope::nn::testing {
namespace {

constexpr uint64_t kSeed = 0x5eed;

struct Dropout {  // x = {inp (N)}
  double p;
  uint64_t seed;
  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x) const {
    std::vector<Real> out(x[0].size());
    dropout_forward(out.data(), x[0].data(), p, seed, static_cast<int64_t>(out.size()));
    return out;
  }
  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>&, const std::vector<Real>& dout) const {
    dropout_backward(dx[0].data(), dout.data(), p, seed, static_cast<int64_t>(dout.size()));
  }
};

std::vector<float> ones(size_t n) { return std::vector<float>(n, 1.0f); }

TEST(Dropout, Gradient) {
  std::mt19937_64 rng(1);
  // x·(1/(1 − p)): the scale is rounded, then the product.
  check_layer(Dropout{0.3, kSeed}, {random_vector(100, rng)}, {"inp"}, {true},
              {2 * kEps32, 2 * kEps32, kFdTolerance});
}

TEST(Dropout, KeepRateAndScale) {
  constexpr int64_t N = 100000;
  constexpr double p = 0.25;
  const std::vector<float> out = Dropout{p, kSeed}.forward<float>({ones(N)});
  int64_t kept = 0;
  for (float e : out) {
    if (e == 0.0f) continue;
    ++kept;
    EXPECT_EQ(e, static_cast<float>(1.0 / (1.0 - p)));
  }
  // Binomial(N, 1 − p): standard deviation √(N·p·(1−p)) ≈ 137; allow 5 of them.
  EXPECT_NEAR(static_cast<double>(kept), N * (1 - p), 5 * std::sqrt(N * p * (1 - p)));
}

TEST(Dropout, DeterministicAndThreadIndependent) {
  constexpr size_t N = 5000;
  const Dropout d{0.5, kSeed};
  const std::vector<float> a = d.forward<float>({ones(N)});
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const std::vector<float> b = d.forward<float>({ones(N)});
  omp_set_num_threads(threads);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, (Dropout{0.5, kSeed + 1}.forward<float>({ones(N)})));
  // The backward recomputes the forward's mask.
  Tensors<float> dx{std::vector<float>(N, 0.0f)};
  d.backward<float>(dx, {}, ones(N));
  EXPECT_EQ(dx[0], a);
}

TEST(Dropout, SeedsDifferPerStepAndSite) {
  const uint64_t s = dropout_seed(1, 10, 3);
  EXPECT_EQ(s, dropout_seed(1, 10, 3));
  EXPECT_NE(s, dropout_seed(1, 11, 3));
  EXPECT_NE(s, dropout_seed(1, 10, 4));
  EXPECT_NE(s, dropout_seed(2, 10, 3));
  EXPECT_NE(dropout_seed(0, 1, 0), dropout_seed(0, 0, 1));  // not a plain sum
}

TEST(Dropout, ZeroIsTheIdentity) {
  std::mt19937_64 rng(2);
  const std::vector<float> x = cast<float>(random_vector(64, rng));
  std::vector<float> y(64), z = x;
  dropout_forward(y.data(), x.data(), 0.0, kSeed, 64);
  EXPECT_EQ(y, x);
  dropout_forward(z.data(), z.data(), 0.0, kSeed, 64);  // in place: nothing to do
  EXPECT_EQ(z, x);
  std::vector<float> dx(64, 1.0f);
  dropout_backward(dx.data(), x.data(), 0.0, kSeed, 64);
  for (size_t i = 0; i < 64; ++i) EXPECT_EQ(dx[i], 1.0f + x[i]);
}

TEST(Dropout, OneDropsEverything) {
  const std::vector<float> out = Dropout{1.0, kSeed}.forward<float>({ones(256)});
  EXPECT_EQ(out, std::vector<float>(256, 0.0f));
}

TEST(Dropout, RejectsBadProbability) {
  std::vector<float> x(4);
  for (double p : {-0.1, 1.5, std::nan("")})
    EXPECT_THROW(dropout_forward(x.data(), x.data(), p, kSeed, 4), Error);
}

}  // namespace
}  // namespace slope::nn::testing
