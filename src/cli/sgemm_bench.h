// Timing helpers the `slope bench` subcommands share: a median of repeated calls, and OpenBLAS
// sgemm's GFLOP/s, the yardstick each benchmark measures in its own run.
#pragma once

#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "nn/gemm.h"

namespace slope::cli {

// Median wall time of f() in seconds, after one warm-up call: `reps` timed calls, or with reps
// 0, at least 3 calls and at least min_seconds in all.
template <class F>
double median_seconds(F&& f, int reps, double min_seconds = 0.5) {
  using Clock = std::chrono::steady_clock;
  f();  // warm up
  std::vector<double> ts;
  const auto start = Clock::now();
  while (true) {
    const auto t0 = Clock::now();
    f();
    ts.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    const double total = std::chrono::duration<double>(Clock::now() - start).count();
    if (reps ? static_cast<int>(ts.size()) >= reps : (ts.size() >= 3 && total >= min_seconds))
      break;
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

// OpenBLAS sgemm C = A·Bᵀ at n = 1024 (2n³ FLOPs), median_seconds(reps), in GFLOP/s.
inline double sgemm_gflops(int reps = 0) {
  const int n = 1024;
  std::vector<float> a(static_cast<size_t>(n) * n, 1.0f), b(a), c(a);
  const double t = median_seconds(
      [&] {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, n, n, 1.0f, a.data(), n, b.data(),
                    n, 0.0f, c.data(), n);
      },
      reps);
  return 2.0 * n * n * n / t * 1e-9;
}

// The median of xs (the mean of the middle two for an even count); xs not empty.
inline double median_of(std::vector<double> xs) {
  std::sort(xs.begin(), xs.end());
  const size_t n = xs.size();
  return n % 2 ? xs[n / 2] : 0.5 * (xs[n / 2 - 1] + xs[n / 2]);
}

// A 1024³ fp32 product C = A·Bᵀ on the linear layers' GEMM library (nn::gemm's backend, oneDNN,
// MKL or OpenBLAS: the library the training step runs on, whatever the GEMM dtype in force) on
// buffers kept between calls: `slope bench train`'s MFU yardstick, timed between its steps.
class SgemmYardstick {
 public:
  static constexpr double kFlops = 2.0 * 1024 * 1024 * 1024;
  void run() {
    nn::gemm(nn::gemm_backend(), false, true, kN, kN, kN, 1.0f, a_.data(), kN, b_.data(), kN, 0.0f,
             c_.data(), kN);
  }
  double gflops() {  // one timed run
    const auto t0 = std::chrono::steady_clock::now();
    run();
    return kFlops / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() *
           1e-9;
  }

 private:
  static constexpr int kN = 1024;
  std::vector<float> a_ = std::vector<float>(size_t{kN} * kN, 1.0f), b_ = a_, c_ = a_;
};

// SgemmYardstick's product, median_seconds(reps), in GFLOP/s.
inline double linear_gemm_gflops(int reps = 0) {
  SgemmYardstick y;
  return SgemmYardstick::kFlops / median_seconds([&] { y.run(); }, reps) * 1e-9;
}

}  // namespace slope::cli
