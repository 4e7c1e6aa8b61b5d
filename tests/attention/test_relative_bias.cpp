// The learned relative biases (issue 19): the per-score values of the kernels' tiles against the
// materialised definition, the float64 reference's parameter gradients against finite
// differences and the complex step, the kernels' parameter gradients against float64 (every
// instruction set), their determinism, and the validation of the parameters. The kernels'
// out/lse/dq/dk/dv on these biases are checked with every other case (test_kernels.cpp).
#include <gtest/gtest.h>
#include <omp.h>

#include <cfloat>
#include <cmath>
#include <complex>
#include <random>
#include <string>

#include "attention/harness.h"
#include "attention/kernel_cases.h"
#include "common/finite_difference.h"

#define SLOPE_ISA rel_test
#include "attention/cpu_rel_bias.h"
#undef SLOPE_ISA

namespace slope::testing {
namespace {

constexpr double kU = 0x1p-24;

// ---- The definition, written out here independently of relative_bias.h ---------------------

// Hugging Face's T5Attention._relative_position_bucket, transcribed (float64 log).
int64_t hf_bucket(int64_t rp, int64_t nb, int64_t max_distance, bool bidirectional) {
  int64_t ret = 0, n;
  if (bidirectional) {
    nb /= 2;
    ret += rp > 0 ? nb : 0;
    n = std::abs(rp);
  } else {
    n = -std::min<int64_t>(rp, 0);
  }
  const int64_t max_exact = nb / 2;
  if (n < max_exact) return ret + n;
  int64_t large = max_exact + static_cast<int64_t>(std::log(double(n) / max_exact) /
                                                   std::log(double(max_distance) / max_exact) *
                                                   double(nb - max_exact));
  return ret + std::min(large, nb - 1);
}

// FIRE's exact MLP (not interpolated), and the paper's u.
double fire_mlp(const std::vector<float>& w, int64_t H, int64_t K, int64_t h, double u) {
  double f = w[(2 + H) * K + h];
  for (int64_t k = 0; k < K; ++k) f += w[2 * K + h * K + k] * std::max(0.0, w[k] * u + w[K + k]);
  return f;
}

// FIRE's u = min(1, ψ(d)/ψ(max(L, pos))) in float64.
double fire_u(const Instance& x, int64_t H, int64_t pos, int64_t j) {
  const int64_t K = x.rel_shape.fire_hidden;
  const double c = x.rel[(2 + H) * K + H], L = x.rel[(2 + H) * K + H + 1];
  const double d = std::abs(static_cast<double>(pos - j));
  return std::min(1.0, std::log(c * d + 1) / std::log(c * std::max(L, double(pos)) + 1));
}

// bias_h(pos, j) from the formulas of the papers (FIRE: exact=true the MLP itself, else its
// interpolant on the grid).
double materialised(const Instance& x, int64_t H, int64_t h, int64_t pos, int64_t j,
                    bool exact = false) {
  const std::vector<float>& w = x.rel;
  const double d = std::abs(static_cast<double>(pos - j));
  switch (x.rel_shape.kind) {
    case RelativeBiasKind::kKerpleLog:
      return -double(w[h]) * std::log(1.0 + double(w[H + h]) * d);
    case RelativeBiasKind::kKerplePower:
      return d == 0 ? 0.0 : -double(w[h]) * std::pow(d, double(w[H + h]));
    case RelativeBiasKind::kT5:
      return w[hf_bucket(j - pos, x.rel_shape.num_buckets, x.rel_shape.max_distance,
                         x.rel_shape.bidirectional) *
                   H +
               h];
    case RelativeBiasKind::kFire: {
      const int64_t K = x.rel_shape.fire_hidden, N = x.rel_shape.fire_grid;
      const double u = fire_u(x, H, pos, j);
      if (exact) return fire_mlp(w, H, K, h, u);
      const int64_t n = std::min<int64_t>(static_cast<int64_t>(std::floor(u * N)), N - 1);
      const double t = u * N - n;
      const double f0 = fire_mlp(w, H, K, h, double(n) / N),
                   f1 = fire_mlp(w, H, K, h, double(n + 1) / N);
      return f0 + t * (f1 - f0);
    }
    default:
      return 0.0;
  }
}

// A problem of H heads, Tq = Tk = T (lower-right positions: pos = i) with the relative bias of c.
Instance rel_instance(RelativeBiasKind kind, int64_t H, int64_t T, void (*set)(Case&) = nullptr) {
  Case c = mk("tiles", 1, H, H, T, T, 8, 8, false, Bias::kNone);
  c.rel.kind = kind;
  if (set) set(c);
  return make_instance(c, 31);
}

// The tiles' additions (the test build's baseline instruction set; the AVX copies differ only by
// the gather instruction and contracted multiply-adds, and are checked through the kernels
// against the float64 reference in test_kernels.cpp) on zero scores, in both layouts, against
// the materialised definition: Kerple and T5 must be the float64 value rounded once (their
// tables hold exactly that); FIRE within its float evaluation's error (scorer.h, rel_abs:
// 2u·(|F_n| + |dF_n|·(1 + 3·u·N)) of the interpolant) and within Σ_k|w2_hk·w1_k|/(4N) more of
// the paper's exact MLP.
void check_tiles(const Instance& x, double* worst_exact) {
  using namespace slope::cpu::rel_test;
  const AttentionProblem& p = x.p;
  const AttentionInputs<float> in = x.inputs();
  const detail::RelTables t = detail::build_rel_tables(p, in.rel, kRelPad);
  const int64_t T = p.Tq, H = p.H;
  constexpr int64_t kTile = 64;
  std::vector<float> S(kTile * (kTile + kW));
  for (int64_t h = 0; h < H; ++h) {
    const RelHead rh = rel_head(&t, h);
    double interp_bound = 0.0;  // FIRE: Σ_k |w2_hk·w1_k| / (4N)
    if (x.rel_shape.kind == RelativeBiasKind::kFire) {
      const int64_t K = x.rel_shape.fire_hidden;
      for (int64_t k = 0; k < K; ++k)
        interp_bound += std::abs(double(x.rel[2 * K + h * K + k]) * x.rel[k]);
      interp_bound /= 4.0 * x.rel_shape.fire_grid;
    }
    for (int64_t pos0 = 0; pos0 < T; pos0 += kTile)
      for (int64_t j0 = 0; j0 < T; j0 += kTile)
        for (bool query_lanes : {false, true}) {
          std::fill(S.begin(), S.end(), 0.0f);
          const int64_t lanes = kTile;  // whole vectors: 64 is a multiple of every kW
          if (query_lanes)
            add_relative_bias<true>(S.data(), lanes, kTile, lanes, j0, pos0, rh);
          else
            add_relative_bias<false>(S.data(), lanes, kTile, lanes, j0, pos0, rh);
          for (int64_t o = 0; o < kTile; ++o)
            for (int64_t l = 0; l < lanes; ++l) {
              const int64_t pos = pos0 + (query_lanes ? l : o), j = j0 + (query_lanes ? o : l);
              if (pos >= T || j >= T) continue;
              const float got = S[static_cast<size_t>(o * lanes + l)];
              const double def = materialised(x, H, h, pos, j);
              const std::string where = std::string(relative_bias_name(x.rel_shape.kind)) +
                                        " h=" + std::to_string(h) + " pos=" + std::to_string(pos) +
                                        " j=" + std::to_string(j) +
                                        (query_lanes ? " (Sᵀ)" : " (S)");
              if (x.rel_shape.kind != RelativeBiasKind::kFire) {
                ASSERT_EQ(got, static_cast<float>(def)) << where;
                continue;
              }
              // The interpolant's cell at this score, from the float64 u.
              const double N = double(x.rel_shape.fire_grid);
              const double uc = fire_u(x, H, pos, j);
              const int64_t n = std::min<int64_t>(static_cast<int64_t>(uc * N), int64_t(N) - 1);
              const double f0 = fire_mlp(x.rel, H, x.rel_shape.fire_hidden, h, n / N);
              const double f1 = fire_mlp(x.rel, H, x.rel_shape.fire_hidden, h, (n + 1) / N);
              const double bound =
                  2.0 * kU * (std::abs(f0) + std::abs(f1 - f0) * (1.0 + 3.0 * uc * N));
              ASSERT_LE(std::abs(got - def), bound)
                  << where << ": got " << got << ", interpolant " << def;
              const double exact = materialised(x, H, h, pos, j, true);
              ASSERT_LE(std::abs(got - exact), bound + interp_bound * (1.0 + 1e-12))
                  << where << ": got " << got << ", MLP " << exact;
              *worst_exact = std::max(*worst_exact, std::abs(got - exact));
            }
        }
  }
}

TEST(RelativeBiasTiles, KerpleAndT5AreTheDefinitionRoundedOnce) {
  double unused = 0.0;
  check_tiles(rel_instance(RelativeBiasKind::kKerpleLog, 3, 200), &unused);
  check_tiles(rel_instance(RelativeBiasKind::kKerplePower, 3, 200), &unused);
  check_tiles(rel_instance(RelativeBiasKind::kT5, 3, 300), &unused);
  check_tiles(rel_instance(RelativeBiasKind::kT5, 3, 300,
                           [](Case& c) {
                             c.rel.bidirectional = false;
                             c.rel.num_buckets = 16, c.rel.max_distance = 100;
                           }),
              &unused);
}

TEST(RelativeBiasTiles, FireWithinItsInterpolationBound) {
  double worst = 0.0;
  // L = 40 (rows past it normalise by their own position), bidirectional (clamped keys), and the
  // default grid and width of the trainer (N = 1024, 32 hidden units).
  check_tiles(rel_instance(RelativeBiasKind::kFire, 3, 200), &worst);
  check_tiles(rel_instance(RelativeBiasKind::kFire, 2, 200,
                           [](Case& c) {
                             c.rel.fire_grid = 1024, c.rel.fire_hidden = 32, c.rel.fire_L = 128.0;
                           }),
              &worst);
  std::printf("[fire] worst |kernel tile − exact MLP| = %.3g\n", worst);
}

// ---- The reference's parameter gradients ---------------------------------------------------

Case small_rel(std::string name, RelativeBiasKind kind, bool causal) {
  Case c = mk(std::move(name), 2, 3, 3, 6, 9, 4, 3, causal, Bias::kNone);
  c.rel.kind = kind;
  c.rel.fire_L = 4.0;  // queries at positions 3..8: both sides of L
  c.rel.fire_grid = 16;
  c.rel.num_buckets = 8, c.rel.max_distance = 6;  // every bucket kind at these distances
  return c;
}

double loss(const AttentionProblem& p, const Typed<double>& t) {
  std::vector<double> out(t.dout.size()), lse(static_cast<size_t>(detail::lse_elements(p)));
  attention_forward_reference<double>(p, t.inputs(), out.data(), lse.data());
  double s = 0.0;
  for (size_t i = 0; i < out.size(); ++i) s += out[i] * t.dout[i];
  return s;
}

// Finite differences (Kerple, T5: smooth in their parameters) and the complex step (every
// family; FIRE's interpolant has kinks at the grid points, which the complex step does not see
// since it keeps the real part where it is).
void check_reference_gradients(const Case& c, bool finite_differences) {
  const Instance x = make_instance(c, 5);
  const AttentionProblem& p = x.p;
  const Golden g = run_reference<double>(x);
  ASSERT_EQ(g.drel.size(), x.rel.size());
  double gmax = 1e-12;
  for (double e : g.drel) gmax = std::max(gmax, std::abs(e));
  if (finite_differences) {
    Typed<double> t(x);
    for (size_t i = 0; i < t.rel.size(); ++i) {
      const double fd = central_difference(
          t.rel[i], [&] { return loss(p, t); }, 1e-4);
      // 1e-8·max|grad|: the truncation h⁴·|f⁽⁵⁾| at h = 1e-4 and the rounding eps·|L|/h.
      EXPECT_NEAR(g.drel[i], fd, 1e-8 * gmax + 1e-10) << c.name << " param " << i;
    }
  }
  using cd = std::complex<double>;
  Typed<cd> t(x);
  for (size_t n = 0; n < t.rel.size(); ++n) {
    const double step = 1e-20;
    t.rel[n] += cd(0.0, step);
    std::vector<cd> out(x.dout.size()), lse(static_cast<size_t>(detail::lse_elements(p)));
    attention_forward_reference<cd>(p, t.inputs(), out.data(), lse.data());
    t.rel[n] -= cd(0.0, step);
    double d = 0.0;
    for (size_t i = 0; i < out.size(); ++i) d += out[i].imag() / step * x.dout[i];
    EXPECT_NEAR(g.drel[n], d, 1e-10 * std::max(1.0, std::abs(d))) << c.name << " param " << n;
  }
}

TEST(RelativeBiasReference, KerpleLogGradients) {
  check_reference_gradients(small_rel("kerple_log", RelativeBiasKind::kKerpleLog, true), true);
  check_reference_gradients(small_rel("kerple_log_bidir", RelativeBiasKind::kKerpleLog, false),
                            true);
}
TEST(RelativeBiasReference, KerplePowerGradients) {
  check_reference_gradients(small_rel("kerple_power", RelativeBiasKind::kKerplePower, false), true);
}
TEST(RelativeBiasReference, T5Gradients) {
  check_reference_gradients(small_rel("t5_bidir", RelativeBiasKind::kT5, false), true);
  Case c = small_rel("t5_causal", RelativeBiasKind::kT5, true);
  c.rel.bidirectional = false;
  check_reference_gradients(c, true);
}
TEST(RelativeBiasReference, FireGradientsComplexStep) {
  check_reference_gradients(small_rel("fire_causal", RelativeBiasKind::kFire, true), false);
  check_reference_gradients(small_rel("fire_bidir", RelativeBiasKind::kFire, false), false);
}

// ---- The kernels' parameter gradients ------------------------------------------------------

// As for the slopes (test_kernels.cpp): the kernel's largest error over 4 input draws and every
// parameter at most 2× that of the naive fp32 reference (autograd's order of operations, terms
// summed in double), on every instruction set.
class RelativeBiasKernel : public ::testing::TestWithParam<Case> {};

TEST_P(RelativeBiasKernel, ParameterGradientsBeatNaiveFp32) {
  const Case& c = GetParam();
  for (cpu::Isa isa : isas()) {
    double err = 0.0, err32 = 0.0, gmax = 0.0;
    for (uint64_t seed : {1234u, 1u, 2u, 3u}) {
      const Instance x = make_instance(c, seed);
      const Golden gold = run_reference<double>(x), f32 = run_reference<float>(x);
      const Golden got = run_kernel(x, isa);
      ASSERT_EQ(got.drel.size(), gold.drel.size());
      for (size_t n = 0; n < gold.drel.size(); ++n) {
        err = std::max(err, std::abs(got.drel[n] - gold.drel[n]));
        err32 = std::max(err32, std::abs(f32.drel[n] - gold.drel[n]));
        gmax = std::max(gmax, std::abs(gold.drel[n]));
      }
    }
    EXPECT_GT(gmax, 0.0) << c.name;  // the gradients are not all 0 (the check would be empty)
    EXPECT_LE(err, 2.0 * err32) << c.name << " [" << cpu::isa_name(isa)
                                << "]: parameter-gradient error " << err << " vs naive fp32 "
                                << err32 << " (max |grad| " << gmax << ")";
  }
}

INSTANTIATE_TEST_SUITE_P(Families, RelativeBiasKernel, ::testing::ValuesIn(relative_bias_cases()),
                         [](const auto& param_info) { return param_info.param.name; });

// The same bits with 1 and 2 threads (fixed-order sums per item and over the batch).
TEST(RelativeBiasKernelDeterminism, GradientsIndependentOfThreadCount) {
  for (RelativeBiasKind kind :
       {RelativeBiasKind::kKerpleLog, RelativeBiasKind::kT5, RelativeBiasKind::kFire}) {
    Case c = mk("det", 3, 4, 2, 150, 150, 32, 32, true, Bias::kNone);
    c.rel.kind = kind;
    const Instance x = make_instance(c, 9);
    const int before = omp_get_max_threads();
    omp_set_num_threads(1);
    const Golden one = run_kernel(x, cpu::best_isa());
    omp_set_num_threads(2);
    const Golden two = run_kernel(x, cpu::best_isa());
    omp_set_num_threads(before);
    EXPECT_EQ(one.drel, two.drel) << relative_bias_name(kind);
  }
}

// ---- Validation ----------------------------------------------------------------------------

void expect_refused(const Instance& x, const std::string& needle) {
  try {
    validate(x.p, x.inputs());
    ADD_FAILURE() << "accepted; expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

TEST(RelativeBiasValidation, RefusesWhatMeansNothing) {
  Instance x = rel_instance(RelativeBiasKind::kKerplePower, 2, 10);
  x.rel[2] = 2.5f;  // r2 > 2
  expect_refused(x, "r2[0]");
  x = rel_instance(RelativeBiasKind::kKerpleLog, 2, 10);
  x.rel[3] = -0.1f;
  expect_refused(x, "must be >= 0");
  x.rel[3] = 0.1f;
  x.rel[0] = 3e38f;  // the bias overflows at distance 20
  expect_refused(x, "overflow");
  x = rel_instance(RelativeBiasKind::kKerpleLog, 2, 10);
  x.sl = alibi_slopes(2);
  expect_refused(x, "together with ALiBi");
  x = rel_instance(RelativeBiasKind::kFire, 2, 10);
  x.rel[x.rel.size() - 2] = 0.0f;  // c
  expect_refused(x, "must be > 0");
  x = rel_instance(RelativeBiasKind::kFire, 2, 10);
  x.rel[0] = NAN;
  expect_refused(x, "parameter 0 is not finite");
  x = rel_instance(RelativeBiasKind::kT5, 2, 10);
  x.rel_shape.max_distance = 4;  // not past the 8 exact buckets of 32 bidirectional ones
  expect_refused(x, "out of range");
  x = rel_instance(RelativeBiasKind::kT5, 2, 10);
  x.rel.clear();
  expect_refused(x, "parameters are null");
  x = rel_instance(RelativeBiasKind::kT5, 2, 10);
  x.rel_shape.kind = static_cast<RelativeBiasKind>(9);
  expect_refused(x, "not a RelativeBiasKind");
}

TEST(RelativeBiasParameters, NamesCountsInitAndClamp) {
  for (const char* n : {"kerple-log", "kerple-power", "t5", "fire", "none"})
    EXPECT_STREQ(relative_bias_name(relative_bias_kind(n)), n);
  EXPECT_THROW(relative_bias_kind("alibi2"), Error);
  EXPECT_EQ(relative_bias_param_count(RelativeBiasKind::kFire, 12, 32, 32), (2 + 12) * 32 + 12 + 2);
  RelativeBias<float> shape;
  shape.kind = RelativeBiasKind::kKerplePower;
  std::vector<float> w = relative_bias_init(shape, 4, 0.0, 1);
  const std::vector<float> m = alibi_slopes(4);
  for (int h = 0; h < 4; ++h) {  // ALiBi itself
    EXPECT_EQ(w[h], m[h]);
    EXPECT_EQ(w[4 + h], 1.0f);
  }
  w[4] = 3.0f, w[5] = -1.0f;
  EXPECT_EQ(relative_bias_clamp(shape, 4, w.data()), 2);
  EXPECT_EQ(w[4], 2.0f);
  EXPECT_EQ(w[5], 1e-2f);
  shape.kind = RelativeBiasKind::kFire;
  w = relative_bias_init(shape, 4, 256.0, 1);
  EXPECT_EQ(w.back(), 256.0f);
  EXPECT_EQ(w[w.size() - 2], 1.0f);
}

}  // namespace
}  // namespace slope::testing
