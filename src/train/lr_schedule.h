// The learning-rate schedule of nanoGPT's train.py (get_lr): linear warmup, then cosine decay
// to min_lr, then min_lr.
#pragma once

#include <cstdint>

namespace slope::train {

struct LrSchedule {
  double learning_rate = 6e-4;  // the peak, reached at the end of the warmup
  int64_t warmup_iters = 2000;
  int64_t lr_decay_iters = 600000;  // the step at which min_lr is reached (~ max_iters)
  double min_lr = 6e-5;             // ~ learning_rate / 10 (Chinchilla)
  bool decay_lr = true;             // false: learning_rate at every step
};

// The learning rate of optimizer step `step` (0-based):
//   step < warmup_iters:        learning_rate · (step + 1) / (warmup_iters + 1)
//   step > lr_decay_iters:      min_lr
//   otherwise: min_lr + ½(1 + cos(π·r))·(learning_rate − min_lr),
//              r = (step − warmup_iters) / (lr_decay_iters − warmup_iters)
// Throws slope::Error for a schedule that makes no sense (negative rates, decay ending before
// the warmup does), naming the field.
double lr_at(const LrSchedule& schedule, int64_t step);

void validate(const LrSchedule& schedule);

}  // namespace slope::train
