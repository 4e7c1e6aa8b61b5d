// The whole-model gradient check the GPT and the encoder–decoder share: every tensor of the
// parameter table (all entries of a small one such as the slopes, a sample of a larger one)
// against 4-point central differences (common/finite_difference.h) of the model's loss, in
// float64, on one thread.
#pragma once

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "common/finite_difference.h"
#include "model/param_table.h"

namespace slope::model::testing {

// Restores the OpenMP thread count on the way out.
class OneThread {
 public:
  OneThread() : saved_(omp_get_max_threads()) { omp_set_num_threads(1); }
  ~OneThread() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

constexpr int64_t kSamplesPerTensor = 12;  // entries per tensor checked by differences

// Entries of a tensor to difference: all of a small one (the slopes), a sample of a larger one.
inline std::vector<int64_t> sample(int64_t n, std::mt19937_64& rng) {
  std::vector<int64_t> all(static_cast<size_t>(n));
  std::iota(all.begin(), all.end(), 0);
  if (n <= kSamplesPerTensor) return all;
  std::shuffle(all.begin(), all.end(), rng);
  all.resize(kSamplesPerTensor);
  return all;
}

// m's gradients (already computed by a backward of `loss`) against differences of `loss` with
// relative step `step`. Each tensor's error is held to `tolerance` times its largest difference
// quotient; tensors whose sampled gradient is tiny (rows of tokens absent from the batch) are held
// to 1e-3 of the model's largest instead. `every_tensor_used`: a tensor whose sampled gradient is
// zero fails (a zero gradient would hide a dead path).
template <class Model, class Loss>
void check_against_differences(Model& m, Loss&& loss, double step, double tolerance,
                               bool every_tensor_used) {
  std::mt19937_64 rng(6);
  double largest = 0.0;  // the largest difference quotient of the model, for a floor
  struct Result {
    std::string name;
    double err = 0.0, scale = 0.0;
  };
  std::vector<Result> results;
  for (const ParamSpec& s : m.table().specs()) {
    Result r{s.name};
    for (int64_t j : sample(s.numel(), rng)) {
      const double fd = slope::testing::central_difference(m.params()[s.offset + j], loss, step);
      r.err = std::max(r.err, std::abs(m.grads()[s.offset + j] - fd));
      r.scale = std::max(r.scale, std::abs(fd));
    }
    largest = std::max(largest, r.scale);
    results.push_back(r);
  }
  for (const Result& r : results) {
    EXPECT_LE(r.err, tolerance * std::max(r.scale, 1e-3 * largest))
        << "d" << r.name << ": error " << r.err << ", largest entry " << r.scale;
    if (every_tensor_used) {
      EXPECT_GT(r.scale, 0.0) << "d" << r.name << " is zero";
    }
  }
  EXPECT_GT(largest, 1e-2);
}

// A float model against a double one run on the same (float-representable) parameters and
// batch: their n_logits logits relative to the largest, and every gradient tensor relative to
// its largest entry (at least 1e-6), each within `tolerance`.
template <class FloatModel, class DoubleModel>
void expect_float_agrees_with_double(const FloatModel& f, const DoubleModel& d, int64_t n_logits,
                                     double tolerance) {
  double err = 0.0, scale = 0.0;
  for (int64_t i = 0; i < n_logits; ++i) {
    ASSERT_TRUE(std::isfinite(f.logits()[i])) << i;
    err = std::max(err, std::abs(f.logits()[i] - d.logits()[i]));
    scale = std::max(scale, std::abs(d.logits()[i]));
  }
  EXPECT_LE(err, tolerance * scale) << "logits";
  for (const ParamSpec& s : d.table().specs()) {
    double e = 0.0, m = 0.0;
    for (int64_t i = s.offset; i < s.offset + s.size; ++i) {
      e = std::max(e, std::abs(f.grads()[i] - d.grads()[i]));
      m = std::max(m, std::abs(d.grads()[i]));
    }
    EXPECT_LE(e, tolerance * std::max(m, 1e-6)) << "d" << s.name;
  }
}

}  // namespace slope::model::testing
