// The float kernels (nn/float_kernels.h) of every instruction set this processor
// runs, against float64 on dense grids, within the bounds the header derives; every length up
// to a few vectors, so the padded tails take the same arithmetic as the body.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "nn/bf16.h"
#include "nn/float_kernels.h"
#include "nn/rows_impl.h"

namespace slope::nn::testing {
namespace {

constexpr double kU = 0x1p-24;  // float32 unit roundoff
constexpr double kInf = std::numeric_limits<double>::infinity();

std::vector<cpu::Isa> supported_isas() {
  std::vector<cpu::Isa> out;
  for (cpu::Isa isa : {cpu::Isa::kGeneric, cpu::Isa::kAvx2, cpu::Isa::kAvx512})
    if (cpu::isa_supported(isa)) out.push_back(isa);
  return out;
}

double phi_cdf(double x) { return 0.5 * std::erfc(-x / std::numbers::sqrt2); }
double phi_pdf(double x) { return std::exp(-0.5 * x * x) / std::sqrt(2.0 * std::numbers::pi); }

// Dense in [−12, 12] (every 2⁻¹⁰), the far tails, tiny values and the special ones.
std::vector<float> gelu_arguments() {
  std::vector<float> x;
  for (int i = -12 * 1024; i <= 12 * 1024; ++i) x.push_back(static_cast<float>(i) / 1024.0f);
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<float> u(-8.0f, 8.0f);
  for (int i = 0; i < 100000; ++i) x.push_back(u(rng));
  for (float v :
       {1e-30f, -1e-30f, 1e-40f, 0.0f, -0.0f, 20.0f, -20.0f, 1e10f, -1e10f, 3e38f, -3e38f})
    x.push_back(v);
  return x;
}

TEST(FloatKernels, GeluWithinItsBound) {
  const std::vector<float> x = gelu_arguments();
  const int64_t n = static_cast<int64_t>(x.size());
  for (cpu::Isa which : supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(which));
    const isa::Kernels k = isa::kernels(which);
    std::vector<float> y(x.size()), g(x.size(), 0.0f), one(x.size(), 1.0f);
    k.gelu_forward(y.data(), x.data(), n);
    k.gelu_backward(g.data(), one.data(), x.data(), n, true);
    double worst_y = 0.0, worst_g = 0.0;  // in units of each bound
    for (size_t i = 0; i < x.size(); ++i) {
      const double xi = x[i], ref = xi * phi_cdf(xi), dref = phi_cdf(xi) + xi * phi_pdf(xi);
      // |Δgelu| ≤ |x|·kGeluPhiError + u·|gelu| (the last product's rounding).
      const double by = std::abs(xi) * isa::kGeluPhiError + kU * std::abs(ref);
      // |Δgelu'| ≤ kGeluPhiError + |x|·φ(x)·(8u + 3u·x²) + u·|gelu'|: Φ's error, then x·φ's:
      // vexp's 4u, the rounding of −x²/2 carried into exp (≤ 2.5u·x²/2... rounded up to 3u·x²),
      // the constant and two products; then the sum's rounding.
      const double bg = isa::kGeluPhiError +
                        std::abs(xi) * phi_pdf(xi) * (8.0 * kU + 3.0 * kU * xi * xi) +
                        kU * std::abs(dref);
      const double ey = std::abs(y[i] - ref), eg = std::abs(g[i] - dref);
      ASSERT_LE(ey, by) << "gelu(" << xi << ") = " << y[i] << ", float64 " << ref;
      ASSERT_LE(eg, bg) << "gelu'(" << xi << ") = " << g[i] << ", float64 " << dref;
      if (by > 0) worst_y = std::max(worst_y, ey / by);
      worst_g = std::max(worst_g, eg / bg);
    }
    std::printf("[%s] gelu: worst error %.3f of the bound, gradient %.3f\n", cpu::isa_name(which),
                worst_y, worst_g);
    // Special values: gelu(+∞) = +∞, gelu(−∞) is NaN as libm's ½·x·(1 + erf) (−∞·0), NaN stays.
    const float sv[3] = {std::numeric_limits<float>::infinity(),
                         -std::numeric_limits<float>::infinity(),
                         std::numeric_limits<float>::quiet_NaN()};
    float sy[3];
    k.gelu_forward(sy, sv, 3);
    EXPECT_EQ(sy[0], std::numeric_limits<float>::infinity());
    EXPECT_TRUE(std::isnan(sy[1]));
    EXPECT_TRUE(std::isnan(sy[2]));
  }
}

TEST(FloatKernels, GeluTanhWithinItsBound) {
  const std::vector<float> x = gelu_arguments();
  const int64_t n = static_cast<int64_t>(x.size());
  constexpr double s = std::numbers::sqrt2 * std::numbers::inv_sqrtpi, c = 0.044715;
  for (cpu::Isa which : supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(which));
    const isa::Kernels k = isa::kernels(which);
    std::vector<float> y(x.size()), g(x.size(), 0.0f), one(x.size(), 1.0f);
    k.gelu_tanh_forward(y.data(), x.data(), n);
    k.gelu_tanh_backward(g.data(), one.data(), x.data(), n, true);
    for (size_t i = 0; i < x.size(); ++i) {
      const double xi = x[i];
      if (std::abs(xi) > 1e12) continue;  // x³ overflows float: the float64 form does not
      const double yy = s * (xi + c * xi * xi * xi), t = std::tanh(yy);
      const double sech2 = 1.0 / (std::cosh(yy) * std::cosh(yy)), dy = s * (1 + 3 * c * xi * xi);
      const double ref = 0.5 * xi * (1 + t), dref = 0.5 * (1 + t) + 0.5 * xi * sech2 * dy;
      // y = s·(x + c·x³) carries ≤ 5u relative (4 roundings, no cancellation: x and c·x³ share
      // their sign); tanh moves by sech²(y)·|y|·5u ≤ 2.25u, and vtanh's own ≤ 6u·|t|: so
      // |Δ(1 + t)| ≤ 9u and |Δgelu| ≤ ½|x|·9u + 2u·|gelu| (the two products).
      const double by = 0.5 * std::abs(xi) * 9.0 * kU + 2.0 * kU * std::abs(ref);
      // Gradient: ½·Δ(1 + t) ≤ 4.5u; the second term ½·x·sech²·dy has sech²'s 8u, its
      // argument's error through d sech²/dy = −2·sech²·t (≤ 2·5u·|y| relative), dy's 4u and 3
      // products: ≤ (15 + 10·|y|)u relative; then the sum's u.
      const double bg = 4.5 * kU +
                        std::abs(0.5 * xi * sech2 * dy) * (15.0 + 10.0 * std::abs(yy)) * kU +
                        kU * std::abs(dref);
      ASSERT_LE(std::abs(y[i] - ref), by) << "gelu_tanh(" << xi << ")";
      ASSERT_LE(std::abs(g[i] - dref), bg) << "gelu_tanh'(" << xi << ")";
    }
  }
}

TEST(FloatKernels, TailsTakeTheBodysArithmetic) {
  // Every length 1..67 from every offset: element i's result may not depend on where it sits.
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<float> u(-6.0f, 6.0f);
  std::vector<float> x(200);
  for (float& v : x) v = u(rng);
  for (cpu::Isa which : supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(which));
    const isa::Kernels k = isa::kernels(which);
    std::vector<float> whole(x.size()), gwhole(x.size(), 0.5f), dout(x.size(), 1.5f);
    k.gelu_forward(whole.data(), x.data(), 200);
    k.gelu_backward(gwhole.data(), dout.data(), x.data(), 200, true);
    for (int64_t off = 0; off < 17; ++off)
      for (int64_t len = 1; len <= 67; ++len) {
        std::vector<float> part(static_cast<size_t>(len) + 2, -7.0f), gpart(part.size(), 0.5f);
        k.gelu_forward(part.data() + 1, x.data() + off, len);
        k.gelu_backward(gpart.data() + 1, dout.data(), x.data() + off, len, true);
        ASSERT_EQ(part.front(), -7.0f);  // nothing written outside the range
        ASSERT_EQ(part.back(), -7.0f);
        ASSERT_EQ(gpart.back(), 0.5f);
        for (int64_t i = 0; i < len; ++i) {
          ASSERT_EQ(part[static_cast<size_t>(i + 1)], whole[static_cast<size_t>(off + i)]);
          ASSERT_EQ(gpart[static_cast<size_t>(i + 1)], gwhole[static_cast<size_t>(off + i)]);
        }
      }
  }
}

TEST(FloatKernels, SoftmaxExpsWithinTheirBound) {
  std::mt19937_64 rng(7);
  std::normal_distribution<float> z(0.0f, 4.0f);
  for (cpu::Isa which : supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(which));
    const isa::Kernels k = isa::kernels(which);
    for (int64_t n : {1, 2, 3, 7, 15, 16, 17, 31, 33, 65, 100, 257, 1000}) {
      std::vector<float> row(static_cast<size_t>(n));
      for (float& v : row) v = z(rng);
      if (n > 3) row[2] = -std::numeric_limits<float>::infinity();  // a masked logit: exp = 0
      double mx = -kInf;
      for (float v : row) mx = std::max(mx, static_cast<double>(v));
      ASSERT_EQ(k.max_of(row.data(), n), static_cast<float>(mx)) << n;
      double sum = 0.0;
      for (float v : row) sum += std::exp(static_cast<double>(v) - mx);
      // Each exp ≤ 4u relative (vexp's 2 ulp; z − shift is exact here, Sterbenz, or carries
      // u·|z − shift| ≤ u·30 into exp's argument for the entries far below the max, whose
      // exps are < e⁻²⁰: negligible against the max's term 1), the sum ≤ n·u of the total.
      const double s = k.exp_sum(row.data(), n, static_cast<float>(mx));
      EXPECT_LE(std::abs(s - sum), (4.0 + static_cast<double>(n) + 1.0) * kU * sum) << n;
      std::vector<float> dz(row.size(), 0.25f);
      const float lse = static_cast<float>(mx + std::log(sum)), g = 0.5f;
      k.add_scaled_exp(dz.data(), row.data(), n, lse, g);
      for (size_t i = 0; i < row.size(); ++i) {
        const double ref = 0.25 + g * std::exp(static_cast<double>(row[i]) - lse);
        // exp's 4u plus the rounding of z − lse (≤ u·|z − lse|, carried by exp), then 2 roundings.
        const double arg = std::abs(static_cast<double>(row[i]) - lse);
        const double bound = (ref - 0.25) * (4.0 + arg + 2.0) * kU + kU * ref;
        ASSERT_LE(std::abs(dz[i] - ref), std::isfinite(arg) ? bound : 0.0) << n << " " << i;
      }
    }
    // A NaN anywhere in the row makes the max NaN (vexp would turn it into a tiny value).
    for (int64_t n : {1, 5, 16, 40}) {
      for (int64_t at = 0; at < n; ++at) {
        std::vector<float> row(static_cast<size_t>(n), 1.0f);
        row[static_cast<size_t>(at)] = std::numeric_limits<float>::quiet_NaN();
        ASSERT_TRUE(std::isnan(k.max_of(row.data(), n))) << n << " " << at;
      }
    }
  }
}

// The row loops of rows_impl.h in every instruction set's float copy against the same loops in
// float64, relative to each output's largest entry: a sum of n float terms carries at most
// ~n·u relative error in the worst case and ~√n·u for random signs; the bound is 16·√n·u (the
// gradcheck's fp32_tolerance) with n the longest sum, C or the rows.
TEST(FloatKernels, RowLoopsMatchFloat64) {
  constexpr int64_t rows = 37, C = 83;  // not multiples of any vector width
  std::mt19937_64 rng(13);
  std::uniform_real_distribution<double> u(-2.0, 2.0);
  auto draw = [&](int64_t n) {
    std::vector<double> v(static_cast<size_t>(n));
    for (double& e : v) e = static_cast<float>(u(rng));
    return v;
  };
  const std::vector<double> x = draw(rows * C), w = draw(C), b = draw(C), dout = draw(rows * C);
  auto f32 = [](const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); };
  auto max_err = [](const std::vector<float>& got, const std::vector<double>& ref) {
    double m = 0.0, e = 0.0;
    for (size_t i = 0; i < ref.size(); ++i) {
      m = std::max(m, std::abs(ref[i]));
      e = std::max(e, std::abs(static_cast<double>(got[i]) - ref[i]));
    }
    return e / std::max(m, 1e-300);
  };
  const double bound_c = 16.0 * kU * std::sqrt(static_cast<double>(C));
  const double bound_r = 16.0 * kU * std::sqrt(static_cast<double>(rows));
  // float64 reference.
  std::vector<double> y(x.size()), mean(rows), rstd(rows), dx(x.size(), 0.5), dw(C, 0.25),
      db(C, -0.25), cs(C, 1.0);
  for (int64_t r = 0; r < rows; ++r)
    impl::layernorm_forward_row(&y[r * C], &mean[r], &rstd[r], &x[r * C], w.data(), b.data(), C,
                                1e-5);
  for (int64_t r = 0; r < rows; ++r)
    impl::layernorm_backward_row(&dx[r * C], &dout[r * C], &x[r * C], mean[r], rstd[r], w.data(),
                                 C);
  impl::layernorm_param_grads(dw.data(), db.data(), dout.data(), x.data(), mean.data(), rstd.data(),
                              rows, C, 0, std::min<int64_t>(C, impl::kMaxChannels));
  impl::column_sums(cs.data(), dout.data(), rows, C, std::min<int64_t>(C, impl::kMaxChannels));
  for (cpu::Isa which : supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(which));
    const isa::Kernels k = isa::kernels(which);
    const std::vector<float> xf = f32(x), wf = f32(w), bf = f32(b), df = f32(dout);
    std::vector<float> yf(x.size()), mf(rows), sf(rows), dxf(x.size(), 0.5f), dwf(C, 0.25f),
        dbf(C, -0.25f), csf(C, 1.0f);
    k.layernorm_forward_rows(yf.data(), mf.data(), sf.data(), xf.data(), wf.data(), bf.data(), rows,
                             C, 1e-5f);
    // The backward from the float64 statistics, so only its own rounding is measured.
    const std::vector<float> m64 = f32(mean), s64 = f32(rstd);
    k.layernorm_backward_rows(dxf.data(), df.data(), xf.data(), m64.data(), s64.data(), wf.data(),
                              rows, C);
    k.layernorm_param_grads(dwf.data(), dbf.data(), df.data(), xf.data(), m64.data(), s64.data(),
                            rows, C, 0, std::min<int64_t>(C, impl::kMaxChannels));
    k.column_sums(csf.data(), df.data(), rows, C, std::min<int64_t>(C, impl::kMaxChannels));
    EXPECT_LE(max_err(yf, y), bound_c);
    EXPECT_LE(max_err(mf, mean), bound_c);
    EXPECT_LE(max_err(sf, rstd), bound_c);
    EXPECT_LE(max_err(dxf, dx), bound_c);
    EXPECT_LE(max_err(dwf, dw), bound_r);
    EXPECT_LE(max_err(dbf, db), bound_r);
    EXPECT_LE(max_err(csf, cs), bound_r);
    EXPECT_EQ(dwf[static_cast<size_t>(impl::kMaxChannels)], 0.25f);  // outside [c0, c0 + w)
  }
}

// AdamW's update per instruction set against float64: element-wise, a few roundings each
// (moments 2–3, the step ~6 including sqrt and the division): 8u of the largest entry.
TEST(FloatKernels, AdamWUpdateMatchesFloat64) {
  constexpr int64_t n = 77;
  std::mt19937_64 rng(17);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<double> p(n), g(n), m(n), v(n);
  for (int64_t i = 0; i < n; ++i)
    p[i] = static_cast<float>(u(rng)), g[i] = static_cast<float>(u(rng)),
    m[i] = static_cast<float>(0.1 * u(rng)), v[i] = static_cast<float>(0.01 * std::abs(u(rng)));
  const impl::AdamWStep<double> k64{0.9, 0.95, 0.1, 0.05, 6e-4 / 0.1, 1.0 / std::sqrt(0.05), 1e-8};
  const impl::AdamWStep<float> k32{
      0.9f, 0.95f, 0.1f, 0.05f, 6e-3f, static_cast<float>(1.0 / std::sqrt(0.05)), 1e-8f};
  std::vector<double> p64 = p, m64 = m, v64 = v;
  impl::adamw_update(p64.data(), g.data(), m64.data(), v64.data(), n, 1.0 - 6e-5, k64);
  for (cpu::Isa which : supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(which));
    std::vector<float> pf(p.begin(), p.end()), gf(g.begin(), g.end()), mf(m.begin(), m.end()),
        vf(v.begin(), v.end());
    isa::kernels(which).adamw_update(pf.data(), gf.data(), mf.data(), vf.data(), n,
                                     static_cast<float>(1.0 - 6e-5), k32);
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_NEAR(pf[i], p64[i], 8 * kU * 1.0 + 6e-3 * 8 * kU) << i;
      EXPECT_NEAR(mf[i], m64[i], 4 * kU) << i;
      EXPECT_NEAR(vf[i], v64[i], 4 * kU) << i;
    }
  }
}

// The vectorised bf16 rounding is the scalar bf16_round (tested against a reference in
// test_bf16.cpp) bit for bit, on every instruction set: random bit patterns (NaNs, infinities
// and subnormals among them), every tie and its neighbours across all exponents, and a length
// that leaves a tail shorter than any vector.
TEST(FloatKernels, Bf16RoundingIsTheScalarOnesBitForBit) {
  std::vector<float> x;
  std::mt19937 rng(17);
  for (int i = 0; i < 200000; ++i) x.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  for (uint32_t sign : {0u, 0x8000u})
    for (uint32_t hi = 0; hi < 0x8000u;
         hi += 0x0081u)  // every exponent, each with another significand
      for (uint32_t low : {0x0000u, 0x7FFFu, 0x8000u, 0x8001u, 0xFFFFu})
        x.push_back(std::bit_cast<float>((sign | hi) << 16 | low));
  for (uint32_t bits : {0x7F800000u, 0xFF800000u, 0x7F800001u, 0xFFC00000u, 0x7F7FFFFFu,
                        0x00000001u, 0x80008000u, 0x00018000u})
    x.push_back(std::bit_cast<float>(bits));
  x.push_back(1.0f);  // odd length
  ASSERT_NE(x.size() % 16, 0u);
  std::vector<uint16_t> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) want[i] = bf16_round(x[i]);
  for (cpu::Isa which : supported_isas()) {
    SCOPED_TRACE(cpu::isa_name(which));
    std::vector<uint16_t> got(x.size(), 0xDEAD);
    isa::kernels(which).bf16_round_range(got.data(), x.data(), static_cast<int64_t>(x.size()));
    for (size_t i = 0; i < x.size(); ++i)
      ASSERT_EQ(got[i], want[i]) << std::hex << std::bit_cast<uint32_t>(x[i]);
  }
}

}  // namespace
}  // namespace slope::nn::testing
