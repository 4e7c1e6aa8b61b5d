// The check every layer goes through. A layer is written once as a template on its scalar, so
// the same code runs in float64 and in float32:
//   1. float64 analytic gradients against 4-point central differences (common/finite_difference.h)
//      of the float64 forward,
//      for the probe loss L = Σ out ∘ G with a random G. Truncation O(h⁴) ≈ 1e-13 and rounding
//      ≈ 1e-16·|L|/h ≈ 1e-13·|L| at h = 1e-3; measured ≤ 3e-11 of the gradient's largest entry.
//      The bound, 1e-9, also catches forward and backward disagreeing at the 1e-8 level (say, a
//      constant rounded to float in one of them), which 1e-7 would let through.
//   2. float32 forward and gradients against float64 ones on the same (float-representable)
//      inputs, relative to each tensor's largest entry. The bound is what a float32 evaluation
//      of the formula costs: an n-term sum carries ~eps32·√n (eps32 = 2^-24) relative error for
//      random signs, times a small constant for the few roundings per term (fp32_tolerance).
//   3. Accumulation: gradients start from random values, and what the backward adds must equal
//      the gradient from zero (an overwrite would be off by the start value, i.e. by O(1)).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/finite_difference.h"

namespace slope::nn::testing {

template <class Real>
using Tensors = std::vector<std::vector<Real>>;

inline std::vector<double> random_vector(int64_t n, std::mt19937_64& rng, double lo = -1.0,
                                         double hi = 1.0) {
  std::uniform_real_distribution<double> u(lo, hi);
  std::vector<double> x(static_cast<size_t>(n));
  // Rounded to float, so the float and double runs read the same numbers.
  for (double& e : x) e = static_cast<float>(u(rng));
  return x;
}

template <class To, class From>
std::vector<To> cast(const std::vector<From>& x) {
  return std::vector<To>(x.begin(), x.end());
}

template <class To, class From>
Tensors<To> cast_all(const Tensors<From>& x) {
  Tensors<To> y;
  for (const auto& t : x) y.push_back(cast<To>(t));
  return y;
}

inline double max_abs(const std::vector<double>& x) {
  double m = 0.0;
  for (double e : x) m = std::max(m, std::abs(e));
  return m;
}

// max |a − b| / max |b|; absolute when b is all zero.
template <class A>
double rel_error(const std::vector<A>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double err = 0.0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    const double d = std::abs(static_cast<double>(a[i]) - b[i]);
    // std::max would drop a NaN; a NaN anywhere is an infinite error.
    if (!(d <= std::numeric_limits<double>::max())) return std::numeric_limits<double>::infinity();
    err = std::max(err, d);
  }
  const double scale = max_abs(b);
  return scale > 0.0 ? err / scale : err;
}

constexpr double kEps32 = 0x1p-24;  // float32 unit roundoff
constexpr double kFdTolerance = 1e-9;
constexpr double kFdStep = 1e-3;

// float32 against float64 for results built from sums of n terms (see the header comment);
// `rounds` covers the roundings per term and cancellation in the formula.
inline double fp32_tolerance(int64_t n, double rounds = 16.0) {
  return rounds * kEps32 * std::sqrt(static_cast<double>(std::max<int64_t>(n, 1)));
}

struct CheckOptions {
  double fp32_out = 0.0;   // float32 forward vs float64
  double fp32_grad = 0.0;  // float32 gradients vs float64
  double fd = kFdTolerance;
  size_t fd_every = 1;  // differences at every n-th entry only (large cases)
};

template <class Real>
double probe(const std::vector<Real>& out, const std::vector<double>& G) {
  double s = 0.0;
  for (size_t i = 0; i < out.size(); ++i) s += static_cast<double>(out[i]) * G[i];
  return s;
}

template <class Real>
Tensors<Real> zero_grads(const Tensors<Real>& x, const std::vector<bool>& wanted) {
  Tensors<Real> dx(x.size());
  for (size_t i = 0; i < x.size(); ++i)
    if (wanted[i]) dx[i].assign(x[i].size(), Real(0));
  return dx;
}

// A gradient buffer for a layer call: null when the gradient is not wanted (empty).
template <class Real>
Real* or_null(std::vector<Real>& v) {
  return v.empty() ? nullptr : v.data();
}
template <class Real>
const Real* or_null(const std::vector<Real>& v) {
  return v.empty() ? nullptr : v.data();
}

// A Layer provides, for Real in {float, double}:
//   std::vector<Real> forward(const Tensors<Real>& x) const;
//   void backward(Tensors<Real>& dx, const Tensors<Real>& x, const std::vector<Real>& dout) const;
// where backward accumulates into dx[i] (sized like x[i]) and passes null for an empty dx[i].
// names[i] labels x[i] in failures; wanted[i] says whether its gradient is checked.
template <class Layer>
void check_layer(const Layer& layer, Tensors<double> x, const std::vector<std::string>& names,
                 const std::vector<bool>& wanted, const CheckOptions& tol, uint64_t seed = 7) {
  ASSERT_EQ(x.size(), names.size());
  ASSERT_EQ(x.size(), wanted.size());
  std::mt19937_64 rng(seed);
  const std::vector<double> out64 = layer.template forward<double>(x);
  const std::vector<double> G = random_vector(static_cast<int64_t>(out64.size()), rng);
  Tensors<double> g64 = zero_grads(x, wanted);
  layer.template backward<double>(g64, x, G);

  // 1. float64 analytic vs 4-point central differences.
  for (size_t i = 0; i < x.size(); ++i) {
    if (!wanted[i]) continue;
    std::vector<double> fd, analytic;
    for (size_t j = 0; j < x[i].size(); j += tol.fd_every) {
      const auto loss = [&] { return probe(layer.template forward<double>(x), G); };
      fd.push_back(slope::testing::central_difference(x[i][j], loss, kFdStep));
      analytic.push_back(g64[i][j]);
    }
    EXPECT_LE(rel_error(analytic, fd), tol.fd) << "float64 d" << names[i] << " vs differences";
    EXPECT_GT(max_abs(fd), 0.0) << "d" << names[i] << " is identically zero: a vacuous check";
  }

  // 2. float32 vs float64, same code.
  const Tensors<float> x32 = cast_all<float>(x);
  EXPECT_LE(rel_error(layer.template forward<float>(x32), out64), tol.fp32_out)
      << "float32 forward vs float64";
  Tensors<float> g32 = zero_grads(x32, wanted);
  layer.template backward<float>(g32, x32, cast<float>(G));
  for (size_t i = 0; i < x.size(); ++i) {
    if (wanted[i]) {
      EXPECT_LE(rel_error(g32[i], g64[i]), tol.fp32_grad) << "float32 d" << names[i];
    }
  }

  // 3. Accumulation, in both precisions: start from random values in [-2, 2], subtract them
  // afterwards. The add rounds by up to eps·(2 + |g|) per entry, which the bound allows for.
  auto check_accumulates = [&]<class Real>(const Tensors<Real>& xr, const Tensors<Real>& fresh,
                                           double bound, double eps) {
    Tensors<Real> start = zero_grads(xr, wanted);
    for (auto& t : start)
      for (Real& e : t) e = static_cast<Real>(random_vector(1, rng, -2.0, 2.0)[0]);
    Tensors<Real> dx = start;
    layer.template backward<Real>(dx, xr, cast<Real>(G));
    for (size_t i = 0; i < xr.size(); ++i) {
      if (!wanted[i]) continue;
      std::vector<double> added(dx[i].size());
      for (size_t j = 0; j < added.size(); ++j)
        added[j] = static_cast<double>(dx[i][j]) - static_cast<double>(start[i][j]);
      const std::vector<double> ref = cast<double>(fresh[i]);
      const double scale = max_abs(ref);
      EXPECT_LE(rel_error(added, ref), bound + eps * (2.0 + scale) / scale)
          << "d" << names[i] << " (" << (sizeof(Real) == 4 ? "float" : "double")
          << ") is not accumulated";
    }
  };
  check_accumulates(x, g64, 1e-12, 0x1p-53);
  check_accumulates(x32, g32, tol.fp32_grad, kEps32);
}

}  // namespace slope::nn::testing
