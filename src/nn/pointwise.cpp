// GELU and the residual add (see pointwise.h). float runs the vectorised kernels of
// float_kernels.h (their error bounds are there); double runs libm, the reference they are
// tested against.
#include "nn/pointwise.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <type_traits>

#include "nn/float_kernels.h"

namespace slope::nn {

namespace {
constexpr double kInvSqrt2 = 1.0 / std::numbers::sqrt2;                         // 1/√2
constexpr double kInvSqrt2Pi = std::numbers::inv_sqrtpi / std::numbers::sqrt2;  // 1/√(2π)

// Elements per task of the vectorised float kernels (a multiple of every vector width, so
// only the last block has a tail).
constexpr int64_t kBlock = 1 << 12;

// f(i0, n) over [0, N) in blocks of kBlock, spread over the OpenMP threads.
template <class F>
void parallel_blocks(int64_t N, F&& f) {
  const int64_t nblocks = (N + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < nblocks; ++b) f(b * kBlock, std::min(kBlock, N - b * kBlock));
}
}  // namespace

template <class Real>
void gelu_forward(Real* out, const Real* inp, int64_t N) {
  check_sizes("gelu", {{"N", N}});
  check_given("gelu", {{"out", out}, {"inp", inp}});
  if constexpr (std::is_same_v<Real, float>) {
    const auto k = isa::kernels();
    return parallel_blocks(N, [&](int64_t i, int64_t n) { k.gelu_forward(out + i, inp + i, n); });
  }
  const Real r = static_cast<Real>(kInvSqrt2);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const Real x = inp[i];
    out[i] = Real(0.5) * x * (Real(1) + std::erf(x * r));
  }
}

template <class Real>
void gelu_backward(Real* dinp, const Real* dout, const Real* inp, int64_t N, GradWrite write) {
  check_sizes("gelu backward", {{"N", N}});
  check_given("gelu backward", {{"dinp", dinp}, {"dout", dout}, {"inp", inp}});
  const bool acc = write == GradWrite::accumulate;
  if constexpr (std::is_same_v<Real, float>) {
    const auto k = isa::kernels();
    return parallel_blocks(
        N, [&](int64_t i, int64_t n) { k.gelu_backward(dinp + i, dout + i, inp + i, n, acc); });
  }
  const Real r = static_cast<Real>(kInvSqrt2), pdf = static_cast<Real>(kInvSqrt2Pi);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const Real x = inp[i];
    const Real cdf = Real(0.5) * (Real(1) + std::erf(x * r));
    const Real d = dout[i] * (cdf + x * pdf * std::exp(Real(-0.5) * x * x));
    dinp[i] = acc ? dinp[i] + d : d;
  }
}

namespace {
constexpr double kSqrt2OverPi = std::numbers::sqrt2 * std::numbers::inv_sqrtpi;  // √(2/π)
constexpr double kGeluCubic = 0.044715;
}  // namespace

template <class Real>
void gelu_tanh_forward(Real* out, const Real* inp, int64_t N) {
  check_sizes("gelu_tanh", {{"N", N}});
  check_given("gelu_tanh", {{"out", out}, {"inp", inp}});
  if constexpr (std::is_same_v<Real, float>) {
    const auto k = isa::kernels();
    return parallel_blocks(N,
                           [&](int64_t i, int64_t n) { k.gelu_tanh_forward(out + i, inp + i, n); });
  }
  const Real s = static_cast<Real>(kSqrt2OverPi), c = static_cast<Real>(kGeluCubic);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const Real x = inp[i];
    out[i] = Real(0.5) * x * (Real(1) + std::tanh(s * (x + c * x * x * x)));
  }
}

template <class Real>
void gelu_tanh_backward(Real* dinp, const Real* dout, const Real* inp, int64_t N, GradWrite write) {
  check_sizes("gelu_tanh backward", {{"N", N}});
  check_given("gelu_tanh backward", {{"dinp", dinp}, {"dout", dout}, {"inp", inp}});
  const bool acc = write == GradWrite::accumulate;
  if constexpr (std::is_same_v<Real, float>) {
    const auto k = isa::kernels();
    return parallel_blocks(N, [&](int64_t i, int64_t n) {
      k.gelu_tanh_backward(dinp + i, dout + i, inp + i, n, acc);
    });
  }
  const Real s = static_cast<Real>(kSqrt2OverPi), c = static_cast<Real>(kGeluCubic);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    const Real x = inp[i];
    const Real t = std::tanh(s * (x + c * x * x * x));
    const Real dt = s * (Real(1) + Real(3) * c * x * x);
    const Real d = dout[i] * (Real(0.5) * (Real(1) + t) + Real(0.5) * x * (Real(1) - t * t) * dt);
    dinp[i] = acc ? dinp[i] + d : d;
  }
}

template <class Real>
void residual_forward(Real* out, const Real* inp1, const Real* inp2, int64_t N) {
  check_sizes("residual", {{"N", N}});
  check_given("residual", {{"out", out}, {"inp1", inp1}, {"inp2", inp2}});
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < N; ++i) out[i] = inp1[i] + inp2[i];
}

template <class Real>
void residual_backward(Real* dinp1, Real* dinp2, const Real* dout, int64_t N) {
  check_sizes("residual backward", {{"N", N}});
  check_given("residual backward", {{"dinp1", dinp1}, {"dinp2", dinp2}, {"dout", dout}});
  if (dinp1 == dout || dinp2 == dout)
    throw Error("residual backward: a gradient may not alias dout (it would be doubled)");
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < N; ++i) {
    dinp1[i] += dout[i];
    dinp2[i] += dout[i];
  }
}

#define SLOPE_NN_INSTANTIATE(Real)                                                             \
  template void gelu_forward<Real>(Real*, const Real*, int64_t);                               \
  template void gelu_backward<Real>(Real*, const Real*, const Real*, int64_t, GradWrite);      \
  template void gelu_tanh_forward<Real>(Real*, const Real*, int64_t);                          \
  template void gelu_tanh_backward<Real>(Real*, const Real*, const Real*, int64_t, GradWrite); \
  template void residual_forward<Real>(Real*, const Real*, const Real*, int64_t);              \
  template void residual_backward<Real>(Real*, Real*, const Real*, int64_t);
SLOPE_NN_INSTANTIATE(float)
SLOPE_NN_INSTANTIATE(double)
#undef SLOPE_NN_INSTANTIATE

}  // namespace slope::nn
