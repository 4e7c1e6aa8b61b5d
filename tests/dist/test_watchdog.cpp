// The collective watchdog: a wait past the timeout ends the process with one line and exit
// status 1 (a death test); waits within it, and no timeout, do nothing.
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "dist/watchdog.h"

namespace slope::dist {
namespace {

using namespace std::chrono_literals;

TEST(WatchdogDeathTest, AWaitPastTheTimeoutExitsWithOneLine) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Watchdog dog(0.2, 3);
        const Watchdog::Wait wait(dog, "allreduce");
        std::this_thread::sleep_for(5s);  // a rank that never answers
      },
      ::testing::ExitedWithCode(1),
      "slope: rank 3: no answer from the other ranks for [0-9.]+ s \\(in "
      "allreduce\\).*--dist-timeout "
      "0.2.*--resume");
}

TEST(Watchdog, WaitsWithinTheTimeoutAndNoTimeoutDoNothing) {
  {
    Watchdog dog(0.3, 0);
    for (int i = 0; i < 5; ++i) {  // 5 × 0.1 s in all, each wait below 0.3 s
      const Watchdog::Wait wait(dog, "allreduce");
      std::this_thread::sleep_for(100ms);
    }
    std::this_thread::sleep_for(500ms);  // not waiting: no clock runs
  }
  Watchdog off(0.0, 0);
  const Watchdog::Wait wait(off, "barrier");
  std::this_thread::sleep_for(100ms);
}

}  // namespace
}  // namespace slope::dist
