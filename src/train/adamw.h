// AdamW over a parameter arena (torch.optim.AdamW as nanoGPT configures it), and gradient
// clipping by global norm (torch.nn.utils.clip_grad_norm_).
#pragma once

#include <cstdint>
#include <vector>

#include "model/param_table.h"

namespace slope::train {

struct AdamWConfig {
  double beta1 = 0.9;  // nanoGPT's betas (0.9, 0.95)
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;  // applied to the tensors the table flags `decay` (dim >= 2)
};

// The moments m and v live in two arenas laid out like the parameters (zero at the start).
// One step t (counted from 1) on every tensor of the table, with the learning rate lr of the
// schedule:
//   p ← p·(1 − lr·wd)            decay tensors only (decoupled, Loshchilov & Hutter)
//   m ← β1·m + (1 − β1)·g,  v ← β2·v + (1 − β2)·g²
//   p ← p − lr/(1 − β1^t) · m / (√v/√(1 − β2^t) + eps)
// exactly PyTorch's formula (its rounding may differ in the last bit), then
//   p ← max(p, lower_bound)      tensors with a lower bound only (learned ALiBi slopes, >= 0)
// a projection torch.optim.AdamW does not have.
// The gaps between tensors are not touched.
template <class Real>
class AdamW {
 public:
  AdamW(const model::ParamTable& table, const AdamWConfig& config);

  void step(Real* params, const Real* grads, double lr);

  const AdamWConfig& config() const { return config_; }
  int64_t steps() const { return t_; }  // steps taken; a resumed run sets it with the moments
  void set_steps(int64_t t) { t_ = t; }
  Real* m() { return m_.data(); }  // (table.size()) first moments
  Real* v() { return v_.data(); }  // (table.size()) second moments
  const Real* m() const { return m_.data(); }
  const Real* v() const { return v_.data(); }

 private:
  model::ParamTable table_;
  AdamWConfig config_;
  std::vector<Real> m_, v_;
  int64_t t_ = 0;
};

extern template class AdamW<float>;
extern template class AdamW<double>;

// The L2 norm of all n gradient entries (summed in double, in a fixed order). Scales every
// entry by min(1, max_norm/(norm + 1e-6)), as clip_grad_norm_ does; max_norm <= 0 only
// measures.
// Returns the norm before clipping; throws slope::Error when it is not finite (a NaN or inf
// gradient: lower the learning rate, or look for the step where the loss blew up).
template <class Real>
double clip_grad_norm(Real* grads, int64_t n, double max_norm);

}  // namespace slope::train
