// Softmax cross-entropy (see crossentropy.h). The forward keeps only the row logsumexp; the
// backward recomputes softmax = exp(logit − lse), which costs one exp per logit, as the
// forward's sum did, instead of a (B, T, Vp) probability buffer.
#include "nn/crossentropy.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "nn/float_kernels.h"

namespace slope::nn {

namespace {

// Checks the sizes and targets; returns how many targets count.
int64_t count_targets(const char* layer, const int32_t* targets, int64_t B, int64_t T, int64_t V,
                      int64_t Vp) {
  check_sizes(layer, {{"B", B}, {"T", T}, {"V", V}, {"Vp", Vp}});
  if (Vp < V)
    throw Error(std::string(layer) + ": the padded vocabulary Vp = " + std::to_string(Vp) +
                " is smaller than V = " + std::to_string(V));
  int64_t count = 0;
  for (int64_t i = 0; i < B * T; ++i) {
    if (targets[i] == kIgnoreIndex) continue;
    if (targets[i] < 0 || targets[i] >= V)
      throw Error(std::string(layer) + ": target " + std::to_string(targets[i]) + " at position " +
                  std::to_string(i) + " is outside [0, " + std::to_string(V) +
                  ") and is not the ignore index " + std::to_string(kIgnoreIndex));
    ++count;
  }
  return count;
}

}  // namespace

template <class Real>
Real crossentropy_forward(Real* losses, Real* lse, const Real* logits, const int32_t* targets,
                          int64_t B, int64_t T, int64_t V, int64_t Vp) {
  check_given("crossentropy",
              {{"losses", losses}, {"lse", lse}, {"logits", logits}, {"targets", targets}});
  const int64_t count = count_targets("crossentropy", targets, B, T, V, Vp);
  const isa::Kernels k = isa::kernels();
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const Real* z = logits + bt * Vp;
    if constexpr (std::is_same_v<Real, float>) {
      // Vectorised (float_kernels.h): vexp's 2 ulp per exp, lane sums in a fixed order.
      const float mx = k.max_of(z, V);
      lse[bt] = mx + std::log(k.exp_sum(z, V, mx));
    } else {
      Real mx = -INFINITY;
      for (int64_t v = 0; v < V; ++v) mx = std::max(mx, z[v]);
      Real sum = 0;
      for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - mx);
      lse[bt] = mx + std::log(sum);
    }
    const int32_t target = targets[bt];
    losses[bt] = target == kIgnoreIndex ? Real(0) : lse[bt] - z[target];
  }
  double total = 0.0;  // in order: the mean does not depend on the thread count
  for (int64_t bt = 0; bt < B * T; ++bt) total += static_cast<double>(losses[bt]);
  return count > 0 ? static_cast<Real>(total / static_cast<double>(count)) : Real(0);
}

template <class Real>
void crossentropy_backward(Real* dlogits, const Real* logits, const Real* lse,
                           const int32_t* targets, NoDeduce<Real> dloss, int64_t B, int64_t T,
                           int64_t V, int64_t Vp) {
  check_given("crossentropy backward",
              {{"dlogits", dlogits}, {"logits", logits}, {"lse", lse}, {"targets", targets}});
  const int64_t count = count_targets("crossentropy backward", targets, B, T, V, Vp);
  if (count == 0) return;
  const Real g = dloss / static_cast<Real>(count);
  const isa::Kernels k = isa::kernels();
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const int32_t target = targets[bt];
    if (target == kIgnoreIndex) continue;
    const Real* z = logits + bt * Vp;
    Real* dz = dlogits + bt * Vp;
    const Real l = lse[bt];
    if constexpr (std::is_same_v<Real, float>)
      k.add_scaled_exp(dz, z, V, l, g);
    else
      for (int64_t v = 0; v < V; ++v) dz[v] += g * std::exp(z[v] - l);
    dz[target] -= g;
  }
}

#define SLOPE_NN_INSTANTIATE(Real)                                                                 \
  template Real crossentropy_forward<Real>(Real*, Real*, const Real*, const int32_t*, int64_t,     \
                                           int64_t, int64_t, int64_t);                             \
  template void crossentropy_backward<Real>(Real*, const Real*, const Real*, const int32_t*, Real, \
                                            int64_t, int64_t, int64_t, int64_t);
SLOPE_NN_INSTANTIATE(float)
SLOPE_NN_INSTANTIATE(double)
#undef SLOPE_NN_INSTANTIATE

}  // namespace slope::nn
