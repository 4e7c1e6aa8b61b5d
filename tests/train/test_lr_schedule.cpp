// nanoGPT's get_lr, value by value.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "slope/attention.h"
#include "train/lr_schedule.h"

namespace slope::train {
namespace {

TEST(LrSchedule, WarmupCosineFloor) {
  const LrSchedule s{1e-3, 10, 110, 1e-4, true};
  EXPECT_DOUBLE_EQ(lr_at(s, 0), 1e-3 * 1 / 11);  // (it + 1)/(warmup + 1): never 0
  EXPECT_DOUBLE_EQ(lr_at(s, 4), 1e-3 * 5 / 11);
  EXPECT_DOUBLE_EQ(lr_at(s, 9), 1e-3 * 10 / 11);
  EXPECT_DOUBLE_EQ(lr_at(s, 10), 1e-3);               // the peak: cos(0)
  EXPECT_DOUBLE_EQ(lr_at(s, 60), (1e-3 + 1e-4) / 2);  // half way: cos(π/2)
  EXPECT_DOUBLE_EQ(lr_at(s, 35),
                   1e-4 + 0.5 * (1 + std::cos(std::numbers::pi * 0.25)) * (1e-3 - 1e-4));
  EXPECT_NEAR(lr_at(s, 110), 1e-4, 1e-18);  // cos(π)
  EXPECT_DOUBLE_EQ(lr_at(s, 111), 1e-4);
  EXPECT_DOUBLE_EQ(lr_at(s, 1000000), 1e-4);
  for (int64_t t = 11; t <= 110; ++t) EXPECT_LE(lr_at(s, t), lr_at(s, t - 1)) << t;
}

TEST(LrSchedule, ConstantAndNoWarmup) {
  EXPECT_DOUBLE_EQ(lr_at({3e-4, 10, 100, 1e-5, false}, 5), 3e-4);
  EXPECT_DOUBLE_EQ(lr_at({3e-4, 10, 100, 1e-5, false}, 5000), 3e-4);
  EXPECT_DOUBLE_EQ(lr_at({3e-4, 0, 100, 3e-5, true}, 0), 3e-4);
}

TEST(LrSchedule, BadSchedules) {
  EXPECT_THROW(lr_at({1e-3, 100, 100, 1e-4, true}, 0), Error);  // decay ends at the warmup
  EXPECT_THROW(lr_at({-1e-3, 10, 100, 1e-4, true}, 0), Error);
  EXPECT_THROW(lr_at({1e-3, -1, 100, 1e-4, true}, 0), Error);
  try {
    lr_at({1e-3, 100, 50, 1e-4, true}, 0);
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("lr_decay_iters"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace slope::train
