// The fused CPU kernels against the float64 reference, on every instruction set this processor
// has, on awkward shapes and every bias variant. Tolerance: every element of every result within
// its rounding-error bound of attention_error_bounds() (the model is stated in attention.h),
// computed in float64 from the input itself, so it holds on every machine and for every
// instruction set. SLOPE_ERROR_SEEDS=N (default 1) repeats each case over N input draws and
// prints the worst ratio of error to bound per quantity (the one-off accuracy survey).
#include <gtest/gtest.h>
#include <omp.h>

#include <cfloat>
#include <cstdlib>
#include <map>

#include "attention/harness.h"
#include "attention/kernel_cases.h"
#include "attention/tile_counts.h"

namespace slope::testing {
namespace {

int error_seeds() {
  const char* s = std::getenv("SLOPE_ERROR_SEEDS");
  return s ? std::max(1, std::atoi(s)) : 1;
}

// Worst |got − gold| / bound over the elements; non-finite values must agree exactly, and an
// element with bound 0 (a fully masked row) must be exact.
void expect_within_bound(const char* what, const std::vector<double>& got,
                         const std::vector<double>& gold, const std::vector<double>& bound,
                         const std::string& where, double* worst) {
  ASSERT_EQ(got.size(), gold.size()) << where << " " << what;
  int64_t mism = 0;
  size_t at = 0;
  double ratio = 0.0;
  for (size_t i = 0; i < got.size(); ++i) {
    if (!std::isfinite(got[i]) || !std::isfinite(gold[i])) {
      if (got[i] != gold[i]) ++mism;
      continue;
    }
    const double err = std::abs(got[i] - gold[i]);
    const double b = i < bound.size() ? bound[i] : 0.0;  // past the bound's extent: padding
    const double r = err == 0.0 ? 0.0 : b > 0.0 ? err / b : INFINITY;
    if (r > ratio) ratio = r, at = i;
  }
  EXPECT_EQ(mism, 0) << where << " " << what << ": non-finite values differ from float64";
  EXPECT_LE(ratio, 1.0) << where << " " << what << "[" << at << "]: kernel " << got[at]
                        << ", float64 " << gold[at] << ", error " << std::abs(got[at] - gold[at])
                        << " > bound " << (at < bound.size() ? bound[at] : 0.0);
  *worst = std::max(*worst, ratio);
}

// The error model bounds any fp32 evaluation; slope's slope gradients are held to more: their
// largest error over 4 input draws and every head may be at most 2× that of the naive fp32
// reference (ours: a fixed order, the same on every machine; its slope-gradient terms summed in
// double, as the kernel sums them). Measured (2026-11-30, Xeon AVX-512, all three ISAs): the
// kernel's ratio is at most 1.11 on these cases; a flash backward that forms D_i = rowsum(dO∘O)
// without SlopeRowSums' correction reaches 2.2–2.4 on nonsymmetric_ragged_D80_Dv48 and ~1e74 on
// the one-hot cases, and fails here.
void expect_slope_gradients_beat_naive_fp32(const Case& c) {
  for (cpu::Isa isa : isas()) {
    double err = 0.0, err32 = 0.0;
    for (uint64_t seed : {1234u, 1u, 2u, 3u}) {
      const Instance x = make_instance(c, seed);
      const Golden gold = run_reference<double>(x), f32 = run_reference<float>(x);
      const Golden got = run_kernel(x, isa);
      for (size_t h = 0; h < gold.dsl.size(); ++h) {
        for (auto [a, b, g] : {std::tuple{&got.dsl, &f32.dsl, &gold.dsl},
                               std::tuple{&got.dsr, &f32.dsr, &gold.dsr}}) {
          if (!std::isfinite((*g)[h])) continue;
          err = std::max(err, std::abs((*a)[h] - (*g)[h]));
          err32 = std::max(err32, std::abs((*b)[h] - (*g)[h]));
        }
      }
    }
    EXPECT_LE(err, 2.0 * err32) << c.name << " [" << cpu::isa_name(isa)
                                << "]: slope-gradient error " << err << " vs naive fp32 " << err32;
  }
}

class KernelVsReference : public ::testing::TestWithParam<Case> {};

TEST_P(KernelVsReference, ForwardAndBackward) {
  const Case& c = GetParam();
  std::map<std::string, double> worst;  // quantity [isa] → worst error / bound over the draws
  const int n_seeds = error_seeds();
  for (int draw = 0; draw < n_seeds; ++draw) {
    const Instance x = make_instance(c, 1234u + static_cast<uint64_t>(draw));
    const Golden gold = run_reference<double>(x);
    const AttentionErrorBounds bound = attention_error_bounds(x.p, x.inputs(), x.dout.data());
    const bool shared = x.sr.empty();
    for (cpu::Isa isa : isas()) {
      const Golden got = run_kernel(x, isa);
      const std::string tag = std::string(" [") + cpu::isa_name(isa) + "]";
      const std::string where = c.name + tag + " draw " + std::to_string(draw);
      expect_within_bound("out", got.out, gold.out, bound.out, where, &worst["out" + tag]);
      expect_within_bound("lse", got.lse, gold.lse, bound.lse, where, &worst["lse" + tag]);
      expect_within_bound("dq", got.dq, gold.dq, bound.dq, where, &worst["dq" + tag]);
      expect_within_bound("dk", got.dk, gold.dk, bound.dk, where, &worst["dk" + tag]);
      expect_within_bound("dv", got.dv, gold.dv, bound.dv, where, &worst["dv" + tag]);
      if (c.bias == Bias::kNone) continue;
      expect_within_bound("dslopes_left", got.dsl, gold.dsl, bound.dslopes_left, where,
                          &worst["dslopes_left" + tag]);
      if (!shared)
        expect_within_bound("dslopes_right", got.dsr, gold.dsr, bound.dslopes_right, where,
                            &worst["dslopes_right" + tag]);
    }
  }
  if (c.bias != Bias::kNone) expect_slope_gradients_beat_naive_fp32(c);
  if (n_seeds > 1)
    for (const auto& [what, r] : worst)
      std::printf("[error survey] %s %s: worst error/bound %.3g over %d draws\n", c.name.c_str(),
                  what.c_str(), r, n_seeds);
}

INSTANTIATE_TEST_SUITE_P(AllVariants, KernelVsReference, ::testing::ValuesIn(kernel_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// A row with no visible key: output 0, lse −inf, zero gradients, no NaN anywhere.
TEST(Kernel, FullyMaskedRowsGiveZeroNotNaN) {
  Case c = mk("masked", 2, 4, 4, 70, 70, 32, 32, true, Bias::kAlibi);
  c.ragged = true;  // batch row 0 has key length 0
  const Instance x = make_instance(c);
  for (cpu::Isa isa : isas()) {
    const Golden got = run_kernel(x, isa);
    for (int64_t h = 0; h < c.H; ++h)
      for (int64_t i = 0; i < c.Tq; ++i) {
        EXPECT_EQ(got.lse[static_cast<size_t>(h * c.Tq + i)], -INFINITY);
        for (int64_t d = 0; d < c.Dv; ++d)
          EXPECT_EQ(got.out[static_cast<size_t>((h * c.Tq + i) * c.Dv + d)], 0.0);
      }
    for (const auto* t : {&got.out, &got.dq, &got.dk, &got.dv, &got.dsl, &got.dsr})
      for (double e : *t) ASSERT_FALSE(std::isnan(e)) << cpu::isa_name(isa);
    for (int64_t i = 0; i < c.Tk * c.D; ++i) EXPECT_EQ(got.dk[static_cast<size_t>(i)], 0.0);
  }
}

// Same input, 1 thread and 2 threads: every gradient bitwise identical, for slopes (H) and
// per-batch slopes (B, H).
class Determinism : public ::testing::TestWithParam<bool> {};
TEST_P(Determinism, BackwardIsDeterministicAcrossThreadCounts) {
  Case c = mk("det", 3, 6, 3, 150, 150, 32, 32, false, Bias::kLearned);
  c.per_batch_slopes = GetParam();
  const Instance x = make_instance(c);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  const Golden one = run_kernel(x, cpu::best_isa());
  omp_set_num_threads(2);
  const Golden two = run_kernel(x, cpu::best_isa());
  const Golden again = run_kernel(x, cpu::best_isa());
  omp_set_num_threads(saved);
  EXPECT_EQ(one.dsl, two.dsl);
  EXPECT_EQ(one.dsr, two.dsr);
  EXPECT_EQ(one.dq, two.dq);
  EXPECT_EQ(one.dk, two.dk);
  EXPECT_EQ(two.dsl, again.dsl);
  EXPECT_EQ(two.dsr, again.dsr);
}
INSTANTIATE_TEST_SUITE_P(Kernel, Determinism, ::testing::Bool());

// Far-tile skipping at the default tolerance, long causal ALiBi: with skipping on and off, every
// result within its error bound (the model counts each droppable key as lost whole).
TEST(Kernel, FarTileSkippingKeepsFloat64Error) {
  Case c = mk("skip", 1, 12, 12, 1024, 1024, 64, 64, true, Bias::kAlibi);
  Instance on = make_instance(c);
  Instance off = make_instance(c);
  off.p.skip_tolerance = 0.0f;
  const Golden gold = run_reference<double>(on);
  // The bound with skipping on also bounds skipping off (it only adds the droppable keys).
  const AttentionErrorBounds bound = attention_error_bounds(on.p, on.inputs(), on.dout.data());
  for (const Instance* x : {&on, &off}) {
    const Golden got = run_kernel(*x, cpu::best_isa());
    const std::string where = x == &on ? "skip on" : "skip off";
    double worst = 0.0;
    expect_within_bound("out", got.out, gold.out, bound.out, where, &worst);
    expect_within_bound("lse", got.lse, gold.lse, bound.lse, where, &worst);
    expect_within_bound("dq", got.dq, gold.dq, bound.dq, where, &worst);
    expect_within_bound("dk", got.dk, gold.dk, bound.dk, where, &worst);
    expect_within_bound("dv", got.dv, gold.dv, bound.dv, where, &worst);
    expect_within_bound("dslopes", got.dsl, gold.dsl, bound.dslopes_left, where, &worst);
  }
}

// A loose tolerance makes skipping visible, and the change it makes stays inside its bound:
// each row loses at most skip_tolerance of its mass, so |Δout| ≤ 2·tol/(1 − tol)·max|v|.
TEST(Kernel, FarTileSkippingHonoursItsBound) {
  Case c = mk("skip_loose", 1, 4, 4, 512, 512, 32, 32, false, Bias::kSymmetric);
  Instance on = make_instance(c);
  Instance off = make_instance(c);
  const float tol = 1e-3f;
  on.p.skip_tolerance = tol;
  off.p.skip_tolerance = 0.0f;
  const Golden a = run_kernel(on, cpu::best_isa());
  const Golden b = run_kernel(off, cpu::best_isa());
  int64_t mism = 0;
  const double diff = max_abs_diff(a.out, b.out, &mism);
  const double vmax = max_abs(std::vector<double>(on.v.begin(), on.v.end()));
  EXPECT_EQ(mism, 0);
  EXPECT_GT(diff, 0.0) << "no tile was skipped: the skip path is not exercised";
  EXPECT_LE(diff, 2.0 * tol / (1.0 - tol) * vmax);
}

// The forward's tile counts (tile_counts.h, `slope bench train --profile`) add up to the causal
// range's (query tile, key tile) pairs, H·(1 + 2 + … + 16) at T = 1024, and say which were
// skipped: some with ALiBi's steepest heads, none with skipping off.
TEST(Kernel, ForwardTileCountsSayWhatSkippingLeftOut) {
  Case c = mk("tile_counts", 1, 12, 12, 1024, 1024, 64, 64, true, Bias::kAlibi);
  Instance on = make_instance(c);
  Instance off = make_instance(c);
  off.p.skip_tolerance = 0.0f;
  const int64_t pairs = 12 * (16 * 17 / 2);
  for (cpu::Isa isa : isas()) {
    detail::reset_forward_tile_counts();
    run_kernel(on, isa);
    const detail::ForwardTileCounts a = detail::forward_tile_counts();
    EXPECT_EQ(a.computed + a.skipped, pairs) << cpu::isa_name(isa);
    EXPECT_GT(a.skipped, 0) << cpu::isa_name(isa);
    // Head 0's slope is 1/2 (Press's slopes of 8 heads first, alibi_slopes): a key 3 tiles back
    // (≥ 129 keys) gets a bias ≤ −64.5, far under ln(2⁻²⁴/1024) ≈ −23.6 even with this draw's
    // scores; so at least the pairs 3 or more tiles apart in head 0 are skipped, 13·14/2.
    EXPECT_GE(a.skipped, 13 * 14 / 2) << cpu::isa_name(isa);
    detail::reset_forward_tile_counts();
    run_kernel(off, isa);
    const detail::ForwardTileCounts b = detail::forward_tile_counts();
    EXPECT_EQ(b.computed, pairs) << cpu::isa_name(isa);
    EXPECT_EQ(b.skipped, 0) << cpu::isa_name(isa);
  }
}

// A window skips the key tiles outside it in both passes, observed without timing: a NaN planted
// in key tile 3 (keys 192..255) cannot reach query tiles 0 and 1 (positions < 128 see keys
// < 133), nor dk and dv of key tile 0 (seen by positions < 84 only). A tile that was computed
// and masked would leak it: P = 0 times a NaN value is NaN.
TEST(Kernel, WindowSkipsTilesOutsideIt) {
  Case c = mk("window_nan", 1, 2, 2, 256, 256, 16, 16, false, Bias::kSymmetric);
  c.window_left = 20, c.window_right = 5;
  Instance x = make_instance(c);
  const int64_t jnan = 200;
  for (int64_t h = 0; h < c.Hkv; ++h)
    for (int64_t d = 0; d < c.D; ++d) {
      x.k[static_cast<size_t>((h * c.Tk + jnan) * c.D + d)] = NAN;
      x.v[static_cast<size_t>((h * c.Tk + jnan) * c.Dv + d)] = NAN;
    }
  for (cpu::Isa isa : isas()) {
    const Golden got = run_kernel(x, isa);
    for (int64_t h = 0; h < c.H; ++h) {
      for (int64_t i = 0; i < c.Tq; ++i)
        for (int64_t d = 0; d < c.D; ++d) {
          const size_t at = static_cast<size_t>((h * c.Tq + i) * c.D + d);
          if (i < 128) {
            ASSERT_TRUE(std::isfinite(got.out[at])) << cpu::isa_name(isa) << " row " << i;
            ASSERT_TRUE(std::isfinite(got.dq[at])) << cpu::isa_name(isa) << " row " << i;
          }
          if (i < 64) {  // key i of tile 0
            ASSERT_TRUE(std::isfinite(got.dk[at])) << cpu::isa_name(isa) << " key " << i;
            ASSERT_TRUE(std::isfinite(got.dv[at])) << cpu::isa_name(isa) << " key " << i;
          }
        }
      // The NaN is there: the row at its own position sees it.
      EXPECT_TRUE(std::isnan(got.out[static_cast<size_t>((h * c.Tq + jnan) * c.D)]));
    }
  }
}

}  // namespace
}  // namespace slope::testing
