// Attention dropout's keep mask: Philox against Random123's published known answers, the
// documented counter mapping, reproducibility from (seed, offset), and the kept fraction. The
// kernels with dropout against the float64 reference (same mask, error bounds) are cases of
// test_kernels.cpp; the reference's dropout gradients are checked in test_reference.cpp.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>

#include "attention/dropout.h"
#include "attention/harness.h"

namespace slope::testing {
namespace {

// Random123 1.14's tests/kat_vectors, the philox4x32 lines with 10 rounds: counter, key, result.
TEST(Philox, MatchesRandom123KnownAnswers) {
  struct Kat {
    std::array<uint32_t, 4> ctr;
    std::array<uint32_t, 2> key;
    std::array<uint32_t, 4> want;
  };
  const Kat kats[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff},
       {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344},  // the digits of pi
       {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Kat& k : kats) EXPECT_EQ(philox4x32_10(k.ctr, k.key), k.want);
}

AttentionProblem dropout_problem(float p, uint64_t seed, uint64_t offset) {
  AttentionProblem pr;
  pr.B = 2, pr.H = 3, pr.Hkv = 3, pr.Tq = 5, pr.Tk = 11;
  pr.dropout_p = p, pr.dropout_seed = seed, pr.dropout_offset = offset;
  return pr;
}

// The mapping documented in attention.h, written out from Philox alone: what a Python port does.
TEST(DropoutMask, FollowsTheDocumentedMapping) {
  for (const uint64_t offset : {uint64_t{3}, uint64_t{0x1234'5678'9abc'def0}}) {
    const uint64_t seed = 0xdead'beef'0bad'f00d;
    const AttentionProblem pr = dropout_problem(0.3f, seed, offset);
    const uint32_t threshold = static_cast<uint32_t>(0.3f * 0x1p32);
    std::vector<uint8_t> row(static_cast<size_t>(pr.Tk));
    int64_t kept = 0;
    for (int64_t b = 0; b < pr.B; ++b)
      for (int64_t h = 0; h < pr.H; ++h)
        for (int64_t i = 0; i < pr.Tq; ++i) {
          attention_dropout_mask_row(pr, b, h, i, row.data());
          for (int64_t j = 0; j < pr.Tk; ++j) {
            const std::array<uint32_t, 4> w = philox4x32_10(
                {static_cast<uint32_t>(j / 4), static_cast<uint32_t>(i),
                 static_cast<uint32_t>(b * pr.H + h), static_cast<uint32_t>(offset)},
                {static_cast<uint32_t>(seed),
                 static_cast<uint32_t>(seed >> 32) ^ static_cast<uint32_t>(offset >> 32)});
            const bool want = w[static_cast<size_t>(j % 4)] >= threshold;
            EXPECT_EQ(attention_dropout_mask(pr, b, h, i, j), want) << b << h << i << j;
            EXPECT_EQ(row[static_cast<size_t>(j)], want ? 1 : 0);
            kept += want;
          }
        }
    EXPECT_GT(kept, 0);
    EXPECT_LT(kept, pr.B * pr.H * pr.Tq * pr.Tk);
  }
}

// The kept fraction over n = 2²⁰ (query, key) pairs is within t of 1 − p, with t from
// Hoeffding's inequality for n independent Bernoulli draws: P(|k/n − (1 − p)| ≥ t) ≤
// 2·exp(−2·n·t²) = 1e-9 at t = √(ln(2e9)/(2n)) ≈ 0.0032. (The keep probability is exactly
// 1 − p for these p, attention.h.) Rows, heads and batch rows each get their own draws.
TEST(DropoutMask, KeptFractionIsWithinABinomialBound) {
  for (const float p : {0.1f, 0.5f, 0.9f}) {
    AttentionProblem pr = dropout_problem(p, 42, 0);
    pr.B = 2, pr.H = 2, pr.Tq = 256, pr.Tk = 1024;
    const double n = static_cast<double>(pr.B * pr.H * pr.Tq * pr.Tk);
    const double t = std::sqrt(std::log(2e9) / (2.0 * n));
    std::vector<uint8_t> row(static_cast<size_t>(pr.Tk));
    double kept = 0.0;
    for (int64_t b = 0; b < pr.B; ++b)
      for (int64_t h = 0; h < pr.H; ++h)
        for (int64_t i = 0; i < pr.Tq; ++i) {
          attention_dropout_mask_row(pr, b, h, i, row.data());
          for (uint8_t k : row) kept += k;
        }
    EXPECT_NEAR(kept / n, 1.0 - static_cast<double>(p), t) << "p = " << p;
  }
}

// The kernels' vector Philox (cpu_philox.h) against Random123's scalar one
// (detail::dropout_keep_tile), bitwise, on every instruction set, in both tile layouts: random
// seeds and offsets (high words too), counters near 2³² (i0 wraps), j0 not a multiple of 4, and
// tiles from 1 × 1 to 64 × 64. Elements outside the tile (columns ≥ ncols, and rows ≥ nrows of
// the row layout) must stay untouched.
TEST(DropoutMask, KernelTilesAreRandom123sBitwise) {
  constexpr int64_t kLd = 64;  // kTileQ and kTileK: whole vectors on every instruction set
  std::mt19937_64 rng(7);
  auto pick = [&](int64_t lo, int64_t hi) {
    return std::uniform_int_distribution<int64_t>(lo, hi)(rng);
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float ps[] = {0.1f, 0.5f, 0.9f, 1e-6f};
  for (const cpu::Isa isa : isas())
    for (int n = 0; n < 3000; ++n) {
      AttentionProblem pr = dropout_problem(ps[n % 4], rng(), n % 3 ? rng() : rng() >> 40);
      pr.H = pick(1, 40);
      const int64_t b = pick(0, 7), h = pick(0, pr.H - 1);
      const int64_t i0 = n % 5 ? pick(0, 5000) : pick(0xffffffff - 70, 0xffffffff);
      const int64_t j0 = n % 7 ? pick(0, 4000) : 4 * pick(0, 1000);
      const int64_t nrows = n % 11 ? pick(1, kLd) : kLd, ncols = n % 13 ? pick(1, kLd) : kLd;
      const float value = static_cast<float>(detail::dropout_scale(pr));
      for (const bool transposed : {false, true}) {
        const int64_t ld_row = transposed ? 1 : kLd, ld_col = transposed ? kLd : 1;
        std::vector<float> want(kLd * kLd, nan), got(kLd * kLd, nan);
        detail::dropout_keep_tile(pr, b, h, i0, nrows, j0, ncols, value, want.data(), ld_row,
                                  ld_col);
        cpu::dropout_keep_tile(isa, pr, b, h, i0, nrows, j0, ncols, value, got.data(), kLd,
                               transposed);
        for (int64_t r = 0; r < kLd; ++r)
          for (int64_t c = 0; c < kLd; ++c) {
            const size_t at = static_cast<size_t>(r * ld_row + c * ld_col);
            if (c >= ncols || (r >= nrows && !transposed)) {
              ASSERT_TRUE(std::isnan(got[at])) << "wrote outside the tile at " << r << ", " << c;
            } else if (r < nrows) {
              ASSERT_EQ(std::bit_cast<uint32_t>(got[at]), std::bit_cast<uint32_t>(want[at]))
                  << cpu::isa_name(isa) << (transposed ? " transposed" : " rows") << " i0 " << i0
                  << " j0 " << j0 << " r " << r << " c " << c << " tile " << nrows << "x" << ncols;
            }
          }
      }
    }
}

Case dropout_case(float p) {
  Case c;
  c.name = "repro";
  c.B = 2, c.H = 4, c.Hkv = 2, c.Tq = 70, c.Tk = 130, c.D = 32, c.Dv = 32;
  c.causal = true, c.bias = Bias::kAlibi, c.dropout_p = p;
  return c;
}

// Same seed and offset: bitwise the same outputs and gradients, on every call. Another offset or
// another seed: another mask, so other outputs. Each is a fresh instance of the same inputs.
TEST(DropoutMask, KernelsAreReproducibleFromSeedAndOffset) {
  const Instance x = make_instance(dropout_case(0.5f));
  const Golden a = run_kernel(x, cpu::best_isa());
  const Golden again = run_kernel(make_instance(dropout_case(0.5f)), cpu::best_isa());
  EXPECT_EQ(a.out, again.out);
  EXPECT_EQ(a.lse, again.lse);
  EXPECT_EQ(a.dq, again.dq);
  EXPECT_EQ(a.dk, again.dk);
  EXPECT_EQ(a.dv, again.dv);
  EXPECT_EQ(a.dsl, again.dsl);
  Case other_offset = dropout_case(0.5f), other_seed = other_offset;
  other_offset.dropout_offset += 1;
  other_seed.dropout_seed += 1;
  for (const Case& c : {other_offset, other_seed}) {
    const Golden b = run_kernel(make_instance(c), cpu::best_isa());
    EXPECT_EQ(a.lse, b.lse);  // lse is that of the undropped softmax
    EXPECT_NE(a.out, b.out);
    EXPECT_NE(a.dv, b.dv);
  }
}

}  // namespace
}  // namespace slope::testing
