// bf16 GEMM inputs (nn/bf16.h, `slope train --dtype bf16`): the rounding against a reference
// written another way (the nearer of the two bf16 neighbours, in double), and gemm_bf16 against
// the float64 product of operands rounded by that reference, on awkward shapes, every transpose,
// β = 0 and 1, strided rows, NaN. The GEMM tests need a bf16 matmul from oneDNN (native on
// AVX512_BF16 / AMX, emulated on other AVX-512 CPUs); they skip on AVX2-only machines.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "nn/bf16.h"
#include "nn/gemm.h"
#include "slope/error.h"

namespace slope::nn::testing {
namespace {

// The reference rounding: of the two bf16 values around x (x's bits with the low 16 cleared, and
// the next bf16 away from zero), the nearer in double; on a tie the one whose last kept bit is 0.
// Past the largest bf16 the next one is inf, which IEEE rounding treats as ±2^128 (the value the
// exponent would have): x rounds to inf from halfway to 2^128 on. NaN is checked separately.
uint16_t bf16_reference(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  const uint32_t lo = u & 0xffff0000u, hi = lo + 0x10000u;  // hi may be inf: exponent carries
  const auto value = [](uint32_t bits) {
    const float f = std::bit_cast<float>(bits);
    return std::isinf(f) ? std::copysign(std::ldexp(1.0, 128), double(f)) : double(f);
  };
  const double dlo = std::fabs(value(lo) - double(x)), dhi = std::fabs(value(hi) - double(x));
  if (dlo < dhi) return static_cast<uint16_t>(lo >> 16);
  if (dhi < dlo) return static_cast<uint16_t>(hi >> 16);
  return static_cast<uint16_t>(((lo >> 16) & 1u) ? hi >> 16 : lo >> 16);
}

// Whether gemm_bf16 can run here; sets SLOPE_BF16_EMULATE=1 where only the emulation exists.
bool bf16_gemm_runs() {
  if (!bf16_matmul_available()) return false;
  if (!bf16_native()) setenv("SLOPE_BF16_EMULATE", "1", 1);
  return true;
}

constexpr const char* kSkip =
    "oneDNN cannot make a bf16 matmul on this CPU (it needs AVX512_CORE at least)";

TEST(Bf16, RoundsToNearestEvenOnSpecialValues) {
  const float max = std::numeric_limits<float>::max(),
              denorm = std::numeric_limits<float>::denorm_min();
  const float inf = std::numeric_limits<float>::infinity();
  // Ties: 1 + 2^-8 lies halfway between 1 (0x3F80, even) and 1 + 2^-7 (0x3F81): down; 1 + 3·2^-8
  // halfway between 0x3F81 (odd) and 0x3F82: up. Just past a tie rounds up.
  EXPECT_EQ(bf16_round(1.0f + std::ldexp(1.0f, -8)), 0x3F80);
  EXPECT_EQ(bf16_round(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3F82);
  EXPECT_EQ(bf16_round(std::bit_cast<float>(0x3F808001u)), 0x3F81);
  EXPECT_EQ(bf16_round(-(1.0f + std::ldexp(1.0f, -8))), 0xBF80);
  EXPECT_EQ(bf16_round(0.0f), 0x0000);
  EXPECT_EQ(bf16_round(-0.0f), 0x8000);
  EXPECT_EQ(bf16_round(inf), 0x7F80);
  EXPECT_EQ(bf16_round(-inf), 0xFF80);
  EXPECT_EQ(bf16_round(max), 0x7F80);  // past the largest bf16 (0x7F7F) by more than half: inf
  EXPECT_EQ(bf16_round(std::bit_cast<float>(0x7F7F7FFFu)), 0x7F7F);  // just under the tie
  // Subnormals round too (no flush): the smallest rounds to 0, 0x00008000 is a tie to 0 (even),
  // 0x00018000 a tie up to 0x0002.
  EXPECT_EQ(bf16_round(denorm), 0x0000);
  EXPECT_EQ(bf16_round(std::bit_cast<float>(0x00008000u)), 0x0000);
  EXPECT_EQ(bf16_round(std::bit_cast<float>(0x00018000u)), 0x0002);
  EXPECT_EQ(bf16_round(std::bit_cast<float>(0x00010000u)), 0x0001);  // a bf16 subnormal, exact
  // NaN stays NaN, whatever its payload (one only in the low 16 bits, which truncation loses),
  // and keeps its sign.
  for (uint32_t bits : {0x7FC00000u, 0x7F800001u, 0xFF800001u, 0x7FFFFFFFu}) {
    const uint16_t h = bf16_round(std::bit_cast<float>(bits));
    EXPECT_TRUE(std::isnan(bf16_to_float(h))) << std::hex << bits;
    EXPECT_EQ(h >> 15, bits >> 31) << std::hex << bits;
  }
}

TEST(Bf16, RoundingMatchesTheReferenceOnRandomBits) {
  std::mt19937 rng(5);
  for (int i = 0; i < 1000000; ++i) {
    const float x = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    if (std::isnan(x)) continue;
    ASSERT_EQ(bf16_round(x), bf16_reference(x)) << std::hex << std::bit_cast<uint32_t>(x);
  }
  // Every tie and its neighbours, in a band of exponents (ties are 1 in 2^16 of random bits).
  for (uint32_t hi = 0x3F00; hi < 0x3F10; ++hi)
    for (uint32_t low : {0x7FFFu, 0x8000u, 0x8001u}) {
      const float x = std::bit_cast<float>(hi << 16 | low);
      ASSERT_EQ(bf16_round(x), bf16_reference(x)) << std::hex << (hi << 16 | low);
    }
  std::vector<float> row = {1.0f + std::ldexp(1.0f, -8), -3.0f, 0.1f};
  std::vector<uint16_t> out(3);
  bf16_round_rows(out.data(), row.data(), 1, 3, 3);
  EXPECT_EQ(out, (std::vector<uint16_t>{0x3F80, 0xC040, bf16_reference(0.1f)}));
}

// γ_n = n·u / (1 − n·u): the relative bound of a sum of n rounded terms (Higham, Lemma 3.1).
double gamma(int64_t n, double u) { return n * u / (1 - n * u); }

struct Case {
  bool ta, tb;
  int64_t m, n, k;
  float alpha, beta;
};

// Runs `c` through gemm_bf16 on random operands stored with padded row strides and checks every
// element against the float64 product of the operands rounded by bf16_reference. A bf16 has an
// 8-bit significand, so each product of two is exact in float32 (16 bits ≤ 24); what is left is
// float32 accumulation: k products summed in any order, α a power of two (exact), β·C0 added,
// within γ_{k+1}(2^-24)·S, S = |α|·Σ|a·b| + |β·C0| (Higham's bound for any summation order, FMA
// or not; the float64 reference's own error is the γ(2^-53) term). No input here is subnormal,
// so native instructions' subnormal flushing does not enter. Elements where β = 0 start as NaN:
// they must not be read. Rounding by truncation, a transposed operand read the wrong way or a
// lost β fails by far more (a truncated input moves by up to 2^-8 relative, 2^16 times u).
void check_case(const Case& c, std::mt19937_64& rng) {
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
  const auto r = [](float x) { return double(bf16_to_float(bf16_reference(x))); };
  auto A = [&](int64_t i, int64_t p) { return r(c.ta ? a[p * lda + i] : a[i * lda + p]); };
  auto B = [&](int64_t p, int64_t j) { return r(c.tb ? b[j * ldb + p] : b[p * ldb + j]); };

  std::vector<float> out = c0;
  gemm_bf16(c.ta, c.tb, c.m, c.n, c.k, c.alpha, a.data(), lda, b.data(), ldb, c.beta, out.data(),
            ldc);

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
      ASSERT_LE(std::fabs(out[i * ldc + j] - want), bound * scale)  // NaN fails too
          << "ta " << c.ta << " tb " << c.tb << " m n k " << c.m << " " << c.n << " " << c.k
          << " alpha " << c.alpha << " beta " << c.beta << " at (" << i << ", " << j << ")";
    }
  for (int64_t i = 0; i < c.m; ++i)  // the padding between C's rows keeps its old contents
    for (int64_t j = c.n; j < ldc; ++j) {
      const float before = c0[i * ldc + j], after = out[i * ldc + j];
      ASSERT_TRUE(before == after || (std::isnan(before) && std::isnan(after)))
          << "wrote past n at (" << i << ", " << j << ")";
    }
}

TEST(Bf16Gemm, MatchesFloat64OfRoundedInputsOnAwkwardShapes) {
  if (!bf16_gemm_runs()) GTEST_SKIP() << kSkip;
  // (m, n, k): a single row, column or term, odd sizes, one past powers of two; 257 in one
  // dimension at a time keeps the float64 reference fast.
  const int64_t shapes[][3] = {{1, 1, 1},    {7, 33, 1},   {33, 7, 257}, {257, 1, 7},
                               {1, 257, 33}, {33, 33, 33}, {7, 257, 7},  {257, 7, 33}};
  std::mt19937_64 rng(7);
  int index = 0;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (float beta : {0.0f, 1.0f})
        for (const auto& s : shapes) {
          const float alpha = index++ % 3 == 2 ? -0.5f : 1.0f;
          check_case({ta, tb, s[0], s[1], s[2], alpha, beta}, rng);
          if (HasFatalFailure()) return;
        }
}

// The three GEMMs of a linear layer (matmul.cpp) at a size where oneDNN blocks and threads:
// forward NT with β = 1 over the bias, dinp NN with β = 0 and 1, dweight TN accumulating.
TEST(Bf16Gemm, MatchesFloat64OnTheLinearLayersGemms) {
  if (!bf16_gemm_runs()) GTEST_SKIP() << kSkip;
  const int64_t BT = 130, C = 96, OC = 257;
  std::mt19937_64 rng(11);
  check_case({false, true, BT, OC, C, 1.0f, 1.0f}, rng);
  check_case({false, false, BT, C, OC, 1.0f, 0.0f}, rng);
  check_case({false, false, BT, C, OC, 1.0f, 1.0f}, rng);
  check_case({true, false, OC, C, BT, 1.0f, 1.0f}, rng);
}

TEST(Bf16Gemm, NanInAnOperandReachesItsRowAndColumnOnly) {
  if (!bf16_gemm_runs()) GTEST_SKIP() << kSkip;
  const int64_t m = 5, n = 6, k = 7;
  std::vector<float> a(m * k, 0.5f), b(k * n, 0.25f), c(m * n, 0.0f);
  a[2 * k + 3] = std::numeric_limits<float>::quiet_NaN();  // A (m, k): row 2
  b[4 * n + 1] = std::numeric_limits<float>::quiet_NaN();  // B (k, n): column 1
  gemm_bf16(false, false, m, n, k, 1.0f, a.data(), k, b.data(), n, 0.0f, c.data(), n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      if (i == 2 || j == 1)
        EXPECT_TRUE(std::isnan(c[i * n + j])) << i << ", " << j;
      else
        EXPECT_EQ(c[i * n + j], float(k) * 0.125f) << i << ", " << j;  // exact: small sums
    }
}

TEST(Bf16Gemm, NnGemmRoutesThroughItWhileTheDtypeIsBf16) {
  if (!bf16_gemm_runs()) GTEST_SKIP() << kSkip;
  const int64_t m = 9, n = 11, k = 13;
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> a(m * k), b(n * k);
  for (float& x : a) x = u(rng);
  for (float& x : b) x = u(rng);
  std::vector<float> direct(m * n), routed(m * n), fp32(m * n);
  gemm_bf16(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, direct.data(), n);
  {
    const GemmDtypeScope scope(GemmDtype::bf16);
    EXPECT_EQ(gemm_dtype(), GemmDtype::bf16);
    gemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, routed.data(), n);
  }
  EXPECT_EQ(gemm_dtype(), GemmDtype::fp32);  // the scope put it back
  gemm(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, fp32.data(), n);
  EXPECT_EQ(routed, direct);
  EXPECT_NE(routed, fp32);  // random floats are not bf16 values: the rounding shows
}

TEST(Bf16, RequireBf16RefusesWithoutNativeBf16UnlessEmulationIsAsked) {
  const char* saved = std::getenv("SLOPE_BF16_EMULATE");
  const std::string saved_value = saved ? saved : "";
  unsetenv("SLOPE_BF16_EMULATE");
  if (bf16_native()) {
    EXPECT_NO_THROW(require_bf16());
  } else {
    try {
      require_bf16();
      ADD_FAILURE() << "require_bf16 accepted a CPU without AVX512_BF16 or AMX";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("needs AVX512_BF16 or AMX"), std::string::npos)
          << e.what();
    }
    EXPECT_THROW(set_gemm_dtype(GemmDtype::bf16), Error);
    EXPECT_EQ(gemm_dtype(), GemmDtype::fp32);
    setenv("SLOPE_BF16_EMULATE", "1", 1);
    if (bf16_matmul_available())
      EXPECT_NO_THROW(require_bf16());
    else
      EXPECT_THROW(require_bf16(), Error);
  }
  if (saved)
    setenv("SLOPE_BF16_EMULATE", saved_value.c_str(), 1);
  else
    unsetenv("SLOPE_BF16_EMULATE");
}

TEST(Bf16, DtypeNames) {
  EXPECT_EQ(parse_gemm_dtype("fp32"), GemmDtype::fp32);
  EXPECT_EQ(parse_gemm_dtype("bf16"), GemmDtype::bf16);
  EXPECT_THROW(parse_gemm_dtype("fp16"), Error);
  EXPECT_STREQ(gemm_dtype_name(GemmDtype::bf16), "bf16");
}

}  // namespace
}  // namespace slope::nn::testing
