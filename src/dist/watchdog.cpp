// The collective timer (see watchdog.h).
#include "dist/watchdog.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace slope::dist {

namespace {

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// How often the thread looks: a tenth of the timeout, at most a second.
std::chrono::milliseconds poll_interval(double timeout_s) {
  const double ms = timeout_s * 100.0;
  return std::chrono::milliseconds(ms < 1000.0 ? static_cast<int64_t>(ms) + 1 : 1000);
}

}  // namespace

Watchdog::Watchdog(double timeout_s, int rank) : timeout_s_(timeout_s), rank_(rank) {
  if (timeout_s_ > 0.0) thread_ = std::thread([this] { watch(); });
}

Watchdog::~Watchdog() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Watchdog::Wait::Wait(Watchdog& dog, const char* what) : dog_(dog) {
  dog_.what_.store(what);
  dog_.since_ns_.store(now_ns());
}

Watchdog::Wait::~Wait() { dog_.since_ns_.store(0); }

void Watchdog::watch() {
  std::unique_lock<std::mutex> lock(mutex_);
  const auto interval = poll_interval(timeout_s_);
  while (!stop_cv_.wait_for(lock, interval, [this] { return stop_; })) {
    const int64_t since = since_ns_.load();
    if (since == 0) continue;
    const double waited = static_cast<double>(now_ns() - since) * 1e-9;
    if (waited < timeout_s_) continue;
    std::fprintf(stderr,
                 "slope: rank %d: no answer from the other ranks for %.3g s (in %s): one of them "
                 "died or hangs; stopping this rank (--dist-timeout %g). The last checkpoint in "
                 "--out is whole: resume it with --resume\n",
                 rank_, waited, what_.load(), timeout_s_);
    std::fflush(stderr);
    std::_Exit(1);
  }
}

}  // namespace slope::dist
