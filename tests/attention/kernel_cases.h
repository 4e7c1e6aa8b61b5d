// The kernel-vs-reference cases of test_kernels.cpp (kernel_cases.cpp).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "attention/harness.h"

namespace slope::testing {

// A case of these sizes, causality and bias; the other fields at their defaults.
inline Case mk(std::string name, int64_t B, int64_t H, int64_t Hkv, int64_t Tq, int64_t Tk,
               int64_t D, int64_t Dv, bool causal, Bias bias) {
  Case c;
  c.name = std::move(name);
  c.B = B, c.H = H, c.Hkv = Hkv, c.Tq = Tq, c.Tk = Tk, c.D = D, c.Dv = Dv, c.causal = causal;
  c.bias = bias;
  return c;
}

std::vector<Case> kernel_cases();

// The learned relative bias cases among them (issue 19).
std::vector<Case> relative_bias_cases();

}  // namespace slope::testing
