// The kernels' vector math against double, on this processor's baseline instruction set (the
// kernels' copies for AVX2 and AVX-512 differ only by contracted multiply-adds, which the
// stated bounds leave room for): vtanh and its sech², whose errors the error model
// (error_bounds.cpp, kTanhUlps and kSech2Ulps) relies on.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#define SLOPE_ISA vec_test
#include "attention/cpu_vec.h"
#undef SLOPE_ISA

namespace slope::testing {
namespace {

using namespace slope::cpu::vec_test;
constexpr double kU = 0x1p-24;

TEST(VectorMath, TanhAndSech2WithinTheirStatedError) {
  std::vector<float> ys = {0.0f,   -0.0f,   0.625f,  -0.625f, std::nextafter(0.625f, 0.0f),
                           43.6f,  43.7f,   -60.0f,  1e30f,   -1e30f,
                           1e-40f, -1e-30f, 0x1p-20f};
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<float> wide(-50.0f, 50.0f), narrow(-1.0f, 1.0f);
  for (int n = 0; n < (1 << 21); ++n) ys.push_back(wide(rng));
  for (int n = 0; n < (1 << 21); ++n) ys.push_back(narrow(rng));
  for (float y = 1e-38f; y < 1.0f; y *= 1.001f) ys.push_back(y);
  while (ys.size() % kW) ys.push_back(1.0f);
  double worst_t = 0.0, worst_s = 0.0;
  for (size_t n = 0; n < ys.size(); n += kW) {
    vf s2;
    const vf t = vtanh(load(&ys[n]), &s2);
    for (int l = 0; l < kW; ++l) {
      const double y = ys[n + static_cast<size_t>(l)];
      const double tt = std::tanh(y), ch = std::cosh(y), ss = 1.0 / (ch * ch);
      ASSERT_LE(std::abs(t[l]), 1.0f) << y;
      ASSERT_EQ(std::signbit(t[l]), std::signbit(y)) << y;
      if (tt != 0.0) worst_t = std::max(worst_t, std::abs(t[l] - tt) / std::abs(tt) / kU);
      if (std::abs(y) <= 43.6) {
        worst_s = std::max(worst_s, std::abs(s2[l] - ss) / ss / kU);
      } else {  // near fp32's smallest normal, flushed to 0 from |y| > 43.65 on
        ASSERT_LE(std::abs(s2[l] - ss), 6e-38) << y;
      }
    }
  }
  std::printf("[vtanh] worst relative error: tanh %.2f u, sech² %.2f u\n", worst_t, worst_s);
  EXPECT_LE(worst_t, 6.0);
  EXPECT_LE(worst_s, 8.0);
}

}  // namespace
}  // namespace slope::testing
