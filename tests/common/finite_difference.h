// The derivative every gradient check in tests/ compares against: 4-point central differences,
//   f'(x) ≈ (f(x − 2h) − 8·f(x − h) + 8·f(x + h) − f(x + 2h)) / 12h,
// truncation ~h⁴·|f⁽⁵⁾|/30, rounding ~eps·|f|/h. The step is relative, h = step·max(1, |x|), so a
// large entry moves by the same fraction as a small one. Each caller picks its step and its
// tolerance and says why beside them.
#pragma once

#include <algorithm>
#include <cmath>

namespace slope::testing {

// d loss() / d x, for a `loss` that reads x: x is perturbed in place and restored afterwards.
template <class Loss>
double central_difference(double& x, Loss&& loss, double step) {
  const double x0 = x, h = step * std::max(1.0, std::abs(x0));
  auto f = [&](double delta) {
    x = x0 + delta;
    const double r = loss();
    x = x0;
    return r;
  };
  return (f(-2 * h) - 8 * f(-h) + 8 * f(h) - f(2 * h)) / (12 * h);
}

}  // namespace slope::testing
