// A timer around blocking collectives. MPI has no timeout of its own: a rank that is stopped
// (SIGSTOP, a hung disk, a deadlock) leaves the others waiting inside MPI_Allreduce forever.
// Open MPI does end the job when a rank *dies* (mpirun sees the exit and kills the rest, measured
// in docs/distributed.md); this catches the ranks that are alive but silent.
//
//   Watchdog dog(600.0, rank);
//   { Watchdog::Wait w(dog, "allreduce"); MPI_Allreduce(...); }   // > 600 s: one line, exit 1
//
// On expiry the watchdog's own thread prints "slope: rank R: ..." and calls std::_Exit(1): it
// cannot unwind the main thread out of MPI, and mpirun then stops the other ranks. Files are
// never left half-written by this: checkpoints are staged and committed atomically
// (train/train_state.h), and the next run's recover_interrupted_save() tidies what a kill left.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace slope::dist {

class Watchdog {
 public:
  // timeout_s ≤ 0: no thread, waits are not timed.
  Watchdog(double timeout_s, int rank);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  class Wait {
   public:
    Wait(Watchdog& dog, const char* what);  // what: a string literal ("allreduce")
    ~Wait();

   private:
    Watchdog& dog_;
  };

 private:
  void watch();

  const double timeout_s_;
  const int rank_;
  std::atomic<int64_t> since_ns_{0};  // when the current wait began; 0: not waiting
  std::atomic<const char*> what_{""};
  std::mutex mutex_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace slope::dist
