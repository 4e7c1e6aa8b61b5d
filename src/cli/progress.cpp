#include "cli/progress.h"

#include <unistd.h>

#include <cmath>

namespace slope::cli {

namespace {

constexpr int kBarWidth = 20;
constexpr double kRedrawSeconds = 0.1;

}  // namespace

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const long s = std::lround(seconds);
  char buf[32];
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
  return buf;
}

std::string format_rate(double v) {
  char buf[32];
  if (v >= 1e6)
    std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (v >= 1e3)
    std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%.0f", v);
  return buf;
}

ProgressPrinter::ProgressPrinter(std::FILE* out) : out_(out), tty_(isatty(fileno(out)) != 0) {}

void ProgressPrinter::on_start(const train::TrainStart& s) {
  if (s.ranks > 1 || s.saved_ranks != s.ranks) {  // data-parallel: the shape of a step
    std::fprintf(out_,
                 "data-parallel: %lld rank(s) (%s), each %lld of the %lld sequences of a step "
                 "(global batch = ranks x batch x grad-accum)\n",
                 static_cast<long long>(s.ranks), s.communicator.c_str(),
                 static_cast<long long>(s.global_batch / s.ranks),
                 static_cast<long long>(s.global_batch));
    if (s.saved_ranks != s.ranks)
      std::fprintf(out_,
                   "resuming a run of %lld rank(s) on %lld: the global batch (%lld sequences) "
                   "is the same, so the data continues at the checkpoint's batch; dropout "
                   "masks are drawn afresh per rank\n",
                   static_cast<long long>(s.saved_ranks), static_cast<long long>(s.ranks),
                   static_cast<long long>(s.global_batch));
  }
  if (s.tokens_per_step == 0) {  // variable-length batches (encoders, seq2seq)
    std::fprintf(out_,
                 "%s: %.2fM parameters, vocab %lld, batches of %lld sequences of up to %lld "
                 "tokens, steps %lld..%lld\n",
                 s.start_step > 0 ? "resuming" : "training", s.num_params / 1e6,
                 static_cast<long long>(s.vocab_size), static_cast<long long>(s.micro_batch),
                 static_cast<long long>(s.train_len), static_cast<long long>(s.start_step),
                 static_cast<long long>(s.max_iters));
    std::fflush(out_);
    return;
  }
  std::fprintf(out_,
               "%s: %.2fM parameters, vocab %lld, batches of %lld x %lld tokens, %lld tokens "
               "per step, steps %lld..%lld\n",
               s.start_step > 0 ? "resuming" : "training", s.num_params / 1e6,
               static_cast<long long>(s.vocab_size), static_cast<long long>(s.micro_batch),
               static_cast<long long>(s.train_len), static_cast<long long>(s.tokens_per_step),
               static_cast<long long>(s.start_step), static_cast<long long>(s.max_iters));
  std::fflush(out_);
}

void ProgressPrinter::on_step(const train::StepReport& s) {
  if (!tty_) return;
  const auto now = std::chrono::steady_clock::now();
  if (s.step != s.max_iters &&
      std::chrono::duration<double>(now - last_draw_).count() < kRedrawSeconds)
    return;
  last_draw_ = now;
  const int filled =
      s.max_iters > 0 ? static_cast<int>(kBarWidth * s.step / s.max_iters) : kBarWidth;
  std::string bar(static_cast<size_t>(kBarWidth), ' ');
  for (int i = 0; i < filled; ++i) bar[static_cast<size_t>(i)] = '=';
  if (filled < kBarWidth) bar[static_cast<size_t>(filled)] = '>';
  std::fprintf(out_, "\rstep %6lld/%lld [%s] loss %.4f | %s tok/s | ETA %s\033[K",
               static_cast<long long>(s.step), static_cast<long long>(s.max_iters), bar.c_str(),
               s.loss, format_rate(s.tokens_per_s).c_str(), format_duration(s.eta_s).c_str());
  std::fflush(out_);
  line_open_ = true;
}

void ProgressPrinter::on_eval(const train::EvalReport& e) {
  finish();
  std::fprintf(out_,
               "step %lld: train loss %.4f, val loss %.4f, lr %.2e, %s tok/s, %.1f s elapsed%s\n",
               static_cast<long long>(e.step), e.train_loss, e.val_loss, e.lr,
               format_rate(e.tokens_per_s).c_str(), e.elapsed_s, e.best ? " (best)" : "");
  std::fflush(out_);
}

void ProgressPrinter::finish() {
  if (!line_open_) return;
  std::fprintf(out_, "\r\033[K");
  line_open_ = false;
}

}  // namespace slope::cli
