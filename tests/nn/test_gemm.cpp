// nn::gemm on every backend this build has, against a float64 reference: each of m, n, k in
// {1, 7, 33, 129} (a single row or column, odd sizes, one past a power of two), all four
// transposes, β = 0 and 1, α = 1 and −0.5, and row strides wider than the rows.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "nn/gemm.h"
#include "slope/error.h"

namespace slope::nn::testing {
namespace {

// Every backend this process can run (MKL where its library loads: scripts/setup.sh provides it;
// SLOPE_TEST_REQUIRE_MKL=1 makes its absence a failure rather than a smaller list).
std::vector<GemmBackend> built_backends() {
  std::vector<GemmBackend> out;
  for (GemmBackend b : {GemmBackend::openblas, GemmBackend::onednn, GemmBackend::mkl})
    if (gemm_backend_available(b)) out.push_back(b);
  return out;
}

TEST(Gemm, MklLoadsWhereRequired) {
  const char* require = std::getenv("SLOPE_TEST_REQUIRE_MKL");
  if (!require || std::string(require) != "1") GTEST_SKIP() << "SLOPE_TEST_REQUIRE_MKL is not 1";
  EXPECT_TRUE(gemm_backend_available(GemmBackend::mkl))
      << gemm_backend_unavailable_reason(GemmBackend::mkl);
}

// γ_n = n·u / (1 − n·u): the relative bound of a sum of n rounded terms (Higham, Lemma 3.1).
double gamma(int64_t n, double u) { return n * u / (1 - n * u); }

struct Case {
  bool ta, tb;
  int64_t m, n, k;
  float alpha, beta;
};

// Runs `c` on `backend` with random operands stored with padded row strides, and checks every
// element against the float64 product of the same (float) inputs. The float result's error is
// within γ_{k+1}·S, S = |α|·|op(A)|·|op(B)| + |β|·|C0|: k products summed in any order (FMA or
// not) and β·C0 added, α and β powers of two (exact scalings); the reference's own error is
// within the same in double. Elements where β = 0 start as NaN: they must not be read.
void check_case(GemmBackend backend, const Case& c, std::mt19937_64& rng) {
  constexpr int64_t kPad = 3;
  const int64_t a_rows = c.ta ? c.k : c.m, a_cols = c.ta ? c.m : c.k;
  const int64_t b_rows = c.tb ? c.n : c.k, b_cols = c.tb ? c.k : c.n;
  const int64_t lda = a_cols + kPad, ldb = b_cols + kPad, ldc = c.n + kPad;
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(a_rows * lda)), b(static_cast<size_t>(b_rows * ldb)),
      c0(static_cast<size_t>(c.m * ldc));
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  for (float& x : c0) x = c.beta == 0 ? std::numeric_limits<float>::quiet_NaN() : u(rng);
  auto A = [&](int64_t i, int64_t p) { return double(c.ta ? a[p * lda + i] : a[i * lda + p]); };
  auto B = [&](int64_t p, int64_t j) { return double(c.tb ? b[j * ldb + p] : b[p * ldb + j]); };

  std::vector<float> out = c0;
  gemm(backend, c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(), ldb, c.beta,
       out.data(), ldc);

  const double bound = gamma(c.k + 1, std::ldexp(1.0, -24)) + gamma(c.k + 1, std::ldexp(1.0, -53));
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = 0; j < c.n; ++j) {
      double dot = 0, mag = 0;
      for (int64_t p = 0; p < c.k; ++p) {
        dot += A(i, p) * B(p, j);
        mag += std::fabs(A(i, p) * B(p, j));
      }
      const double old = c.beta == 0 ? 0.0 : c0[i * ldc + j];
      const double want = c.alpha * dot + c.beta * old;
      const double scale = std::fabs(c.alpha) * mag + std::fabs(c.beta * old);
      const float got = out[i * ldc + j];
      ASSERT_LE(std::fabs(got - want), bound * scale)  // NaN fails too
          << gemm_backend_name(backend) << " ta " << c.ta << " tb " << c.tb << " m n k " << c.m
          << " " << c.n << " " << c.k << " alpha " << c.alpha << " beta " << c.beta << " at (" << i
          << ", " << j << ")";
    }
  // The padding between rows is not C's: it keeps its old contents.
  for (int64_t i = 0; i < c.m; ++i)
    for (int64_t j = c.n; j < ldc; ++j) {
      const float before = c0[i * ldc + j], after = out[i * ldc + j];
      ASSERT_TRUE(before == after || (std::isnan(before) && std::isnan(after)))
          << gemm_backend_name(backend) << " wrote past n at (" << i << ", " << j << ")";
    }
}

TEST(Gemm, EveryBackendMatchesFloat64OnAwkwardShapes) {
  const int64_t sizes[] = {1, 7, 33, 129};
  for (GemmBackend backend : built_backends()) {
    std::mt19937_64 rng(7);
    int index = 0;
    for (bool ta : {false, true})
      for (bool tb : {false, true})
        for (float beta : {0.0f, 1.0f})
          for (int64_t m : sizes)
            for (int64_t n : sizes)
              for (int64_t k : sizes) {
                const float alpha = index++ % 3 == 2 ? -0.5f : 1.0f;
                check_case(backend, {ta, tb, m, n, k, alpha, beta}, rng);
                if (HasFatalFailure()) return;
              }
  }
}

// The three GEMMs of a linear layer at a size where the libraries block and thread (B·T = 300,
// C = 96, OC = 257): forward NT with β = 1 over the bias, dinp NN and dweight TN accumulating.
TEST(Gemm, EveryBackendMatchesFloat64OnTheLinearLayersGemms) {
  const int64_t BT = 300, C = 96, OC = 257;
  for (GemmBackend backend : built_backends()) {
    std::mt19937_64 rng(11);
    check_case(backend, {false, true, BT, OC, C, 1.0f, 1.0f}, rng);
    check_case(backend, {false, false, BT, C, OC, 1.0f, 1.0f}, rng);
    check_case(backend, {true, false, OC, C, BT, 1.0f, 1.0f}, rng);
  }
}

// Deep NT products (k ≥ 2n) that oneDNN's path splits by rows over the threads (nn/gemm.cpp),
// on 2 and 3 threads: row counts that do not divide evenly, a last part shorter than the others,
// β = 0 (C unread) and 1, α = −0.5; and on 1 thread, where nothing is split, the same bound.
TEST(Gemm, DeepNtProductsSplitByRowsMatchFloat64) {
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3}) {
    omp_set_num_threads(threads);
    for (GemmBackend backend : built_backends()) {
      std::mt19937_64 rng(13);
      for (int64_t m : {256, 300, 401, 1000})
        for (float beta : {0.0f, 1.0f}) {
          check_case(backend, {false, true, m, 24, 97, -0.5f, beta}, rng);
          if (HasFatalFailure()) {
            omp_set_num_threads(saved);
            return;
          }
        }
    }
  }
  omp_set_num_threads(saved);
}

TEST(Gemm, RepeatsBitForBit) {  // matmul.h promises determinism for a backend and thread count
  const int64_t m = 300, n = 257, k = 500;
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(k * n));
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  for (GemmBackend backend : built_backends()) {
    std::vector<float> c1(static_cast<size_t>(m * n)), c2(c1.size());
    gemm(backend, false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c1.data(), n);
    gemm(backend, false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, c2.data(), n);
    EXPECT_EQ(c1, c2) << gemm_backend_name(backend);
  }
}

TEST(Gemm, Float64IsOpenBlasDgemm) {  // the reference path, whatever the float backend
  const double a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 0, -1, 2, 0.5, 3};  // A (2, 3), B (3, 2)
  double c[4] = {1, 1, 1, 1};
  gemm(false, false, 2, 2, 3, 1.0, a, 3, b, 2, 1.0, c, 2);
  EXPECT_EQ(c[0], 1 + (1 * 1 + 2 * -1 + 3 * 0.5));
  EXPECT_EQ(c[1], 1 + (1 * 0 + 2 * 2 + 3 * 3));
  EXPECT_EQ(c[2], 1 + (4 * 1 + 5 * -1 + 6 * 0.5));
  EXPECT_EQ(c[3], 1 + (4 * 0 + 5 * 2 + 6 * 3));
}

TEST(Gemm, BackendNames) {
  EXPECT_EQ(parse_gemm_backend("openblas"), GemmBackend::openblas);
  EXPECT_THROW(parse_gemm_backend("blis"), Error);
  EXPECT_THROW(parse_gemm_backend(""), Error);
  for (GemmBackend b : {GemmBackend::onednn, GemmBackend::mkl}) {
    if (gemm_backend_available(b)) {
      EXPECT_EQ(parse_gemm_backend(gemm_backend_name(b)), b);
      EXPECT_EQ(gemm_backend_unavailable_reason(b), "");
    } else {
      EXPECT_THROW(parse_gemm_backend(gemm_backend_name(b)), Error);
      EXPECT_NE(gemm_backend_unavailable_reason(b), "");
    }
  }
  // SLOPE_GEMM, where set (ctest runs this suite once with SLOPE_GEMM=openblas), is obeyed.
  if (const char* env = std::getenv("SLOPE_GEMM")) {
    EXPECT_EQ(std::string(gemm_backend_name(gemm_backend())), env);
  }
  EXPECT_TRUE(gemm_backend_available(gemm_backend()));
}

TEST(Gemm, SetBackendOverridesTheDefault) {
  const GemmBackend before = gemm_backend();
  for (GemmBackend b : built_backends()) {
    set_gemm_backend(b);
    EXPECT_EQ(gemm_backend(), b);
  }
  for (GemmBackend b : {GemmBackend::onednn, GemmBackend::mkl}) {
    if (!gemm_backend_available(b)) {
      EXPECT_THROW(set_gemm_backend(b), Error);
    }
  }
  set_gemm_backend(before);  // the suite's later tests run on the process's choice
  EXPECT_EQ(gemm_backend(), before);
}

TEST(Gemm, RejectsSizesPastTheBlasIntRange) {
  float x = 0;
  const int64_t big = int64_t(1) << 31;
  for (GemmBackend backend : built_backends())
    EXPECT_THROW(gemm(backend, false, false, big, 1, 1, 1.0f, &x, 1, &x, 1, 0.0f, &x, 1), Error);
}

}  // namespace
}  // namespace slope::nn::testing
