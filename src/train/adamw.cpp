// AdamW and gradient clipping over arenas (see adamw.h).
#include "train/adamw.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

#include "nn/float_kernels.h"
#include "nn/rows_impl.h"
#include "slope/error.h"  // slope::Error

namespace slope::train {

namespace {

constexpr double kClipEps = 1e-6;  // clip_grad_norm_'s guard against a zero norm

// Entries per partial sum of the norm: the partials are added in order, so the norm (and the
// clipped gradient) is the same whatever the thread count.
constexpr int64_t kNormBlock = 1 << 14;

// Entries per task of the AdamW step.
constexpr int64_t kStepBlock = 1 << 14;

}  // namespace

template <class Real>
AdamW<Real>::AdamW(const model::ParamTable& table, const AdamWConfig& config)
    : table_(table), config_(config) {
  const AdamWConfig& c = config_;
  if (!(c.beta1 >= 0.0 && c.beta1 < 1.0) || !(c.beta2 >= 0.0 && c.beta2 < 1.0))
    throw Error("AdamW: betas must be in [0, 1), got (" + std::to_string(c.beta1) + ", " +
                std::to_string(c.beta2) + ")");
  if (!(c.eps > 0.0)) throw Error("AdamW: eps must be positive, got " + std::to_string(c.eps));
  if (!(c.weight_decay >= 0.0))
    throw Error("AdamW: weight_decay must be >= 0, got " + std::to_string(c.weight_decay));
  m_.assign(static_cast<size_t>(table_.size()), Real(0));
  v_.assign(m_.size(), Real(0));
}

template <class Real>
void AdamW<Real>::step(Real* params, const Real* grads, double lr) {
  if (!(lr >= 0.0) || !std::isfinite(lr))
    throw Error("AdamW: learning rate must be finite and >= 0, got " + std::to_string(lr));
  ++t_;
  const double b1 = config_.beta1, b2 = config_.beta2;
  const double step_size = lr / (1.0 - std::pow(b1, static_cast<double>(t_)));
  const Real rsqrt_bc2 =
      static_cast<Real>(1.0 / std::sqrt(1.0 - std::pow(b2, static_cast<double>(t_))));
  const Real rb1 = static_cast<Real>(b1), rb2 = static_cast<Real>(b2);
  const Real one_b1 = static_cast<Real>(1.0 - b1), one_b2 = static_cast<Real>(1.0 - b2);
  const Real eps = static_cast<Real>(config_.eps), rstep = static_cast<Real>(step_size);
  // One threaded pass over the arena, in blocks of kStepBlock entries, each block cut at the
  // tensors' edges (their weight decay and bounds differ): one fork and join per step instead of
  // one per tensor (a GPT has 12 per layer, most of them small). The update is
  // nn/rows_impl.h's, for float in this processor's vector width; each entry's arithmetic does
  // not depend on the blocking or the threads.
  const std::vector<model::ParamSpec>& specs = table_.specs();
  const int64_t end = specs.empty() ? 0 : specs.back().offset + specs.back().size;
  const int64_t nblocks = (end + kStepBlock - 1) / kStepBlock;
  Real* const m_all = m_.data();
  Real* const v_all = v_.data();
  const double decay_keep = 1.0 - lr * config_.weight_decay;
  const nn::impl::AdamWStep<Real> consts{rb1, rb2, one_b1, one_b2, rstep, rsqrt_bc2, eps};
  const nn::isa::Kernels kern = nn::isa::kernels();  // float: vectorised for this processor
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t lo = blk * kStepBlock, hi = std::min(end, lo + kStepBlock);
    // The first tensor ending after lo (offsets increase along the table).
    auto it = std::upper_bound(specs.begin(), specs.end(), lo,
                               [](int64_t x, const auto& sp) { return x < sp.offset + sp.size; });
    for (; it != specs.end() && it->offset < hi; ++it) {
      const model::ParamSpec& spec = *it;
      const int64_t i0 = std::max(lo, spec.offset), i1 = std::min(hi, spec.offset + spec.size);
      const Real keep = static_cast<Real>(spec.decay ? decay_keep : 1.0);
      if constexpr (std::is_same_v<Real, float>)
        kern.adamw_update(params + i0, grads + i0, m_all + i0, v_all + i0, i1 - i0, keep, consts);
      else
        nn::impl::adamw_update(params + i0, grads + i0, m_all + i0, v_all + i0, i1 - i0, keep,
                               consts);
      if (spec.lower_bound > -std::numeric_limits<double>::infinity()) {
        const Real lower = static_cast<Real>(spec.lower_bound);
        const int64_t c1 = std::min(i1, spec.offset + spec.numel());  // the real entries
        for (int64_t i = i0; i < c1; ++i) params[i] = std::max(params[i], lower);
      }
    }
  }
}

template <class Real>
double clip_grad_norm(Real* grads, int64_t n, double max_norm) {
  const int64_t nblocks = (n + kNormBlock - 1) / kNormBlock;
  std::vector<double> partial(static_cast<size_t>(nblocks), 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    double s = 0.0;
    for (int64_t i = blk * kNormBlock; i < std::min(n, (blk + 1) * kNormBlock); ++i)
      s += static_cast<double>(grads[i]) * static_cast<double>(grads[i]);
    partial[static_cast<size_t>(blk)] = s;
  }
  double sum = 0.0;
  for (double s : partial) sum += s;
  const double norm = std::sqrt(sum);
  if (!std::isfinite(norm))
    throw Error("clip_grad_norm: the gradient norm is " + std::to_string(norm) +
                ": the loss diverged; lower the learning rate or resume from an earlier "
                "checkpoint");
  // PyTorch scales by min(1, max_norm/(norm + 1e-6)), so also when the norm is just below.
  if (max_norm > 0.0 && max_norm / (norm + kClipEps) < 1.0) {
    const Real scale = static_cast<Real>(max_norm / (norm + kClipEps));
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) grads[i] *= scale;
  }
  return norm;
}

template class AdamW<float>;
template class AdamW<double>;
template double clip_grad_norm<float>(float*, int64_t, double);
template double clip_grad_norm<double>(double*, int64_t, double);

}  // namespace slope::train
