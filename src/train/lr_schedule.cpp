// nanoGPT's get_lr (see lr_schedule.h).
#include "train/lr_schedule.h"

#include <cmath>
#include <numbers>
#include <string>

#include "slope/attention.h"  // slope::Error

namespace slope::train {

void validate(const LrSchedule& s) {
  if (!(s.learning_rate >= 0.0) || !std::isfinite(s.learning_rate))
    throw Error("learning_rate must be finite and >= 0, got " + std::to_string(s.learning_rate));
  if (!s.decay_lr) return;
  if (!(s.min_lr >= 0.0) || !std::isfinite(s.min_lr))
    throw Error("min_lr must be finite and >= 0, got " + std::to_string(s.min_lr));
  if (s.warmup_iters < 0)
    throw Error("warmup_iters must be >= 0, got " + std::to_string(s.warmup_iters));
  if (s.lr_decay_iters <= s.warmup_iters)
    throw Error("lr_decay_iters (" + std::to_string(s.lr_decay_iters) +
                ") must exceed warmup_iters (" + std::to_string(s.warmup_iters) +
                "): the cosine decay runs between them");
}

double lr_at(const LrSchedule& s, int64_t step) {
  validate(s);
  if (!s.decay_lr) return s.learning_rate;
  if (step < s.warmup_iters)
    return s.learning_rate * static_cast<double>(step + 1) /
           static_cast<double>(s.warmup_iters + 1);
  if (step > s.lr_decay_iters) return s.min_lr;
  const double ratio = static_cast<double>(step - s.warmup_iters) /
                       static_cast<double>(s.lr_decay_iters - s.warmup_iters);
  const double coeff = 0.5 * (1.0 + std::cos(std::numbers::pi * ratio));
  return s.min_lr + coeff * (s.learning_rate - s.min_lr);
}

}  // namespace slope::train
