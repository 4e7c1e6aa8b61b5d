// What `slope train` shows on stderr while it runs.
//
// On a terminal: one line redrawn in place (at most ten times a second),
//   step  1200/3000 [=========>          ] loss 2.0412 | 41.3k tok/s | ETA 1:02
// and a line of its own for every eval. Not on a terminal (a log file, CI): the eval lines
// only, so a log stays readable.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

#include "train/trainer.h"

namespace slope::cli {

class ProgressPrinter final : public train::TrainObserver {
 public:
  explicit ProgressPrinter(std::FILE* out = stderr);

  void on_start(const train::TrainStart& s) override;
  void on_step(const train::StepReport& s) override;
  void on_eval(const train::EvalReport& e) override;
  // Ends a pending progress line (before an error message or the summary).
  void finish();

 private:
  std::FILE* out_;
  bool tty_;
  bool line_open_ = false;
  std::chrono::steady_clock::time_point last_draw_{};
};

// "1:02", "1:02:03": seconds as a clock.
std::string format_duration(double seconds);
// "41.3k", "1.20M": a rate with a unit prefix.
std::string format_rate(double per_second);

}  // namespace slope::cli
