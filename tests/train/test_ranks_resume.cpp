// The flags of a data-parallel run (TrainOptions::ranks): "ranks" in train_state.json only when
// it is not 1 (a single process's checkpoint is as before), and check_resumable's rule for
// another number of ranks: the global batch ranks × --batch-size must stay.
#include <gtest/gtest.h>

#include "slope/attention.h"  // EXPECT_ERROR_CONTAINS's slope::Error
#include "train/train_options.h"
#include "train_testing.h"

namespace slope::train::testing {
namespace {

TrainOptions with(int64_t ranks, int64_t batch) {
  TrainOptions o;
  o.model.vocab_size = 30;
  o.ranks = ranks, o.batch_size = batch;
  return o;
}

TEST(RanksResume, RanksAreSavedOnlyForSeveral) {
  EXPECT_FALSE(options_to_json(with(1, 8)).contains("ranks"));
  const nlohmann::ordered_json j = options_to_json(with(4, 2));
  EXPECT_EQ(j["ranks"], 4);
  EXPECT_EQ(options_from_json(j, "x").ranks, 4);
  EXPECT_EQ(options_from_json(options_to_json(with(1, 8)), "x").ranks, 1);  // absent: 1
  nlohmann::json bad = options_to_json(with(2, 2));
  bad["ranks"] = 0;
  EXPECT_ERROR_CONTAINS(options_from_json(bad, "state.json"), "\"ranks\" must be at least 1");
}

TEST(RanksResume, AnotherNumberOfRanksKeepsTheGlobalBatch) {
  check_resumable(with(2, 4), with(2, 4), "ckpt");  // same N
  check_resumable(with(2, 4), with(1, 8), "ckpt");  // 8 sequences either way
  check_resumable(with(2, 4), with(4, 2), "ckpt");
  EXPECT_ERROR_CONTAINS(check_resumable(with(2, 4), with(1, 4), "ckpt"),
                        "ckpt was trained on 2 rank(s) x --batch-size 4 = a global batch of 8 "
                        "sequences, but this run has 1 x 4 = 4: resume with mpirun -np 2 and "
                        "--batch-size 4, or keep 1 rank(s) with --batch-size 8");
  // 8 sequences do not split over 3 ranks: no second suggestion.
  try {
    check_resumable(with(2, 4), with(3, 4), "ckpt");
    FAIL() << "a global batch of 12 for one of 8 was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find("or keep"), std::string::npos) << e.what();
  }
  // The same N with another --batch-size: the single-process message.
  EXPECT_ERROR_CONTAINS(check_resumable(with(2, 4), with(2, 8), "ckpt"),
                        "pass --batch-size 4 (or leave it out");
}

}  // namespace
}  // namespace slope::train::testing
