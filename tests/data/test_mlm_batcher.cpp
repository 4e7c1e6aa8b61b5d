// MlmBatcher: windows, padding, BERT's masking statistics, determinism and exact resume.
#include <gtest/gtest.h>

#include <cmath>
#include <numeric>
#include <optional>
#include <set>

#include "common/temp_files.h"
#include "data/mlm_batcher.h"
#include "slope/attention.h"

namespace slope::data {
namespace {

using testing::TempDir;

constexpr int32_t kV = 1000;     // the shard's token i is i, so every id is < kV
constexpr int32_t kMask = kV;    // [MASK] outside the shard's ids: a random id is never it
constexpr double kSigmas = 5.0;  // binomial bounds: a false failure once in ~2 million runs

// |observed - n·p| within kSigmas binomial standard deviations.
void expect_binomial(int64_t observed, int64_t n, double p, const char* what) {
  const double mean = static_cast<double>(n) * p;
  const double sd = std::sqrt(static_cast<double>(n) * p * (1 - p));
  EXPECT_LE(std::abs(static_cast<double>(observed) - mean), kSigmas * sd)
      << what << ": " << observed << " of " << n << ", expected " << mean << " ± " << sd;
}

// A batch row's window: where it starts in the shard, and its real tokens.
struct Row {
  int64_t start = -1;  // recovered from an unselected position (token i is i)
  int32_t length = 0;
};

class Mlm : public ::testing::Test {
 protected:
  void SetUp() override { shard_ = make(kV); }
  TokenShard make(uint32_t n) {
    std::vector<uint32_t> t(n);
    std::iota(t.begin(), t.end(), 0u);
    write_token_shard(dir_ / "s.bin", t, n);
    return TokenShard::open(dir_ / "s.bin");
  }
  // The row's window start: any unselected position t holds the original token start + t.
  static Row row(const MlmBatch& m, int64_t b) {
    Row r;
    r.length = m.lengths[static_cast<size_t>(b)];
    for (int64_t t = 0; t < r.length; ++t) {
      if (m.targets[static_cast<size_t>(b * m.T + t)] == kMlmIgnore) {
        r.start = m.idx[static_cast<size_t>(b * m.T + t)] - t;
        break;
      }
    }
    return r;
  }
  static int64_t selected_for(int64_t n, double p = kDefaultMaskProb) {
    return std::max<int64_t>(1, std::llround(p * static_cast<double>(n)));
  }
  TempDir dir_;
  std::optional<TokenShard> shard_;
};

TEST_F(Mlm, ShapesLengthsAndPadding) {
  MlmBatcher m(*shard_, 8, 5, 40, kMask, kV, 7);
  std::set<int32_t> lengths;
  MlmBatch batch;
  for (int step = 0; step < 200; ++step) {
    m.next(batch);
    ASSERT_EQ(batch.B, 8);
    ASSERT_EQ(batch.idx.size(), static_cast<size_t>(8 * batch.T));
    ASSERT_EQ(batch.targets.size(), batch.idx.size());
    ASSERT_EQ(batch.lengths.size(), 8u);
    EXPECT_EQ(batch.T, *std::max_element(batch.lengths.begin(), batch.lengths.end()));
    for (int64_t b = 0; b < 8; ++b) {
      const int32_t n = batch.lengths[static_cast<size_t>(b)];
      ASSERT_GE(n, 5);
      ASSERT_LE(n, 40);
      lengths.insert(n);
      for (int64_t t = n; t < batch.T; ++t) {
        EXPECT_EQ(batch.idx[static_cast<size_t>(b * batch.T + t)], 0);
        EXPECT_EQ(batch.targets[static_cast<size_t>(b * batch.T + t)], kMlmIgnore);
      }
    }
  }
  EXPECT_EQ(lengths.size(), 36u);  // every length in [5, 40] came up
}

TEST_F(Mlm, TargetsAreTheOriginalsAtTheSelectedPositionsOnly) {
  MlmBatcher m(*shard_, 16, 2, 64, kMask, kV, 11);
  MlmBatch batch;
  for (int step = 0; step < 100; ++step) {
    m.next(batch);
    for (int64_t b = 0; b < batch.B; ++b) {
      const Row r = row(batch, b);
      ASSERT_GE(r.start, 0) << "no unselected position in a row of " << r.length;
      ASSERT_LE(r.start + r.length, kV);  // the window lies inside the shard
      int64_t selected = 0;
      for (int64_t t = 0; t < r.length; ++t) {
        const auto i = static_cast<size_t>(b * batch.T + t);
        const int32_t original = static_cast<int32_t>(r.start + t);
        if (batch.targets[i] == kMlmIgnore) {
          EXPECT_EQ(batch.idx[i], original);  // unselected tokens are never touched
        } else {
          EXPECT_EQ(batch.targets[i], original);
          ++selected;
        }
      }
      EXPECT_EQ(selected, selected_for(r.length)) << "row of " << r.length;
    }
  }
}

// 15% selected, then 80% [MASK] / 10% random / 10% unchanged, within binomial bounds.
TEST_F(Mlm, MaskingStatistics) {
  MlmBatcher m(*shard_, 16, 16, 128, kMask, kV, 2024);
  int64_t real = 0, expected_selected = 0, selected = 0, masked = 0, replaced = 0, kept = 0;
  double random_sum = 0;
  MlmBatch batch;
  for (int step = 0; step < 400; ++step) {
    m.next(batch);
    for (int64_t b = 0; b < batch.B; ++b) {
      real += batch.lengths[static_cast<size_t>(b)];
      expected_selected += selected_for(batch.lengths[static_cast<size_t>(b)]);
      for (int64_t t = 0; t < batch.lengths[static_cast<size_t>(b)]; ++t) {
        const auto i = static_cast<size_t>(b * batch.T + t);
        if (batch.targets[i] == kMlmIgnore) continue;
        ++selected;
        if (batch.idx[i] == kMask) {
          ++masked;
        } else if (batch.idx[i] == batch.targets[i]) {
          ++kept;
        } else {
          ++replaced;
          ASSERT_GE(batch.idx[i], 0);
          ASSERT_LT(batch.idx[i], kV);
          random_sum += batch.idx[i];
        }
      }
    }
  }
  // The count per row is round(0.15·n) exactly. Over lengths uniform in 16..128 that selects
  // 0.15032 of the tokens on average (rounding), and 6400 rows vary it by about 5e-5: 0.001 is
  // far outside both.
  EXPECT_EQ(selected, expected_selected);
  EXPECT_NEAR(static_cast<double>(selected) / static_cast<double>(real), 0.15, 0.001);
  expect_binomial(masked, selected, 0.8, "[MASK]");
  // A random id equal to the original reads as unchanged: P = 0.1·(V-1)/V and 0.1 + 0.1/V.
  expect_binomial(replaced, selected, 0.1 * (kV - 1) / kV, "random id");
  expect_binomial(kept, selected, 0.1 + 0.1 / kV, "unchanged");
  // Random ids are uniform over [0, V): their mean is (V-1)/2 within the standard error.
  const double sd_mean = kV / std::sqrt(12.0) / std::sqrt(static_cast<double>(replaced));
  EXPECT_NEAR(random_sum / static_cast<double>(replaced), (kV - 1) / 2.0, kSigmas * sd_mean);
}

// Every position of a row is equally likely to be selected (the partial shuffle is unbiased).
TEST_F(Mlm, SelectionIsUniformOverPositions) {
  constexpr int64_t kLen = 20, kRows = 16 * 500;
  MlmBatcher m(*shard_, 16, kLen, kLen, kMask, kV, 5);
  std::vector<int64_t> hits(kLen, 0);
  MlmBatch batch;
  for (int step = 0; step < kRows / 16; ++step) {
    m.next(batch);
    ASSERT_EQ(batch.T, kLen);
    for (size_t i = 0; i < batch.targets.size(); ++i) hits[i % kLen] += batch.targets[i] >= 0;
  }
  const double p = static_cast<double>(selected_for(kLen)) / kLen;  // 3 of 20
  for (int64_t t = 0; t < kLen; ++t) expect_binomial(hits[t], kRows, p, "position");
}

TEST_F(Mlm, EveryTokenSelectedWithMaskProbOne) {
  MlmBatcher m(*shard_, 4, 1, 9, kMask, kV, 3, /*mask_prob=*/1.0);
  MlmBatch batch;
  m.next(batch);
  for (int64_t b = 0; b < 4; ++b) {
    for (int64_t t = 0; t < batch.lengths[static_cast<size_t>(b)]; ++t) {
      EXPECT_GE(batch.targets[static_cast<size_t>(b * batch.T + t)], 0);
    }
  }
}

TEST_F(Mlm, WholeShardWindows) {
  shard_ = make(12);
  MlmBatcher m(*shard_, 3, 12, 12, 12, 12, 1);
  MlmBatch batch;
  m.next(batch);
  EXPECT_EQ(batch.T, 12);
  for (int64_t b = 0; b < 3; ++b) {
    for (int64_t t = 0; t < 12; ++t) {
      const auto i = static_cast<size_t>(b * 12 + t);
      const int32_t original = batch.targets[i] >= 0 ? batch.targets[i] : batch.idx[i];
      EXPECT_EQ(original, t);
    }
  }
}

TEST_F(Mlm, DeterministicGivenSeed) {
  MlmBatcher a(*shard_, 4, 3, 30, kMask, kV, 42), b(*shard_, 4, 3, 30, kMask, kV, 42),
      c(*shard_, 4, 3, 30, kMask, kV, 43);
  bool differs = false;
  MlmBatch x, y, z;
  for (int step = 0; step < 10; ++step) {
    a.next(x);
    b.next(y);
    c.next(z);
    EXPECT_EQ(x.idx, y.idx);
    EXPECT_EQ(x.targets, y.targets);
    EXPECT_EQ(x.lengths, y.lengths);
    differs |= x.idx != z.idx;
  }
  EXPECT_TRUE(differs);
}

TEST_F(Mlm, BatchAtAndResumeDrawTheSameBatches) {
  MlmBatcher run(*shard_, 3, 4, 24, kMask, kV, 2024);
  MlmBatch batch;
  for (int i = 0; i < 5; ++i) run.next(batch);
  const BatcherState saved = run.state();
  EXPECT_EQ(saved.batches_drawn, 5u);
  EXPECT_EQ(saved.block_size, 24);
  std::vector<MlmBatch> expected(3);
  for (MlmBatch& e : expected) run.next(e);

  MlmBatcher resumed(*shard_, 3, 4, 24, kMask, kV, /*seed=*/999);  // the state carries the seed
  resumed.restore(saved);
  for (int i = 0; i < 3; ++i) {
    resumed.next(batch);
    EXPECT_EQ(batch.idx, expected[static_cast<size_t>(i)].idx) << "batch " << 5 + i;
    EXPECT_EQ(batch.targets, expected[static_cast<size_t>(i)].targets);
    EXPECT_EQ(batch.lengths, expected[static_cast<size_t>(i)].lengths);
  }
  MlmBatch at;
  resumed.batch_at(6, at);  // the k-th batch, state untouched
  EXPECT_EQ(at.idx, expected[1].idx);
  EXPECT_EQ(at.T, expected[1].T);
  EXPECT_EQ(resumed.state().batches_drawn, 8u);

  MlmBatcher other(*shard_, 3, 4, 32, kMask, kV, 1);
  EXPECT_ERROR_CONTAINS(other.restore(saved), "--block-size 24");
}

TEST_F(Mlm, BadArgumentsAreRefused) {
  EXPECT_ERROR_CONTAINS(MlmBatcher(*shard_, 0, 1, 8, kMask, kV, 1), "--batch-size");
  EXPECT_ERROR_CONTAINS(MlmBatcher(*shard_, 1, 0, 8, kMask, kV, 1), "at least 1 token");
  EXPECT_ERROR_CONTAINS(MlmBatcher(*shard_, 1, 9, 8, kMask, kV, 1), "above the maximum");
  EXPECT_ERROR_CONTAINS(MlmBatcher(*shard_, 1, 1, kV + 1, kMask, kV, 1), "at most 1000");
  EXPECT_NO_THROW(MlmBatcher(*shard_, 1, 1, kV, kMask, kV, 1));
  EXPECT_ERROR_CONTAINS(MlmBatcher(*shard_, 1, 1, 8, -1, kV, 1), "[MASK] id");
  EXPECT_ERROR_CONTAINS(MlmBatcher(*shard_, 1, 1, 8, kMask, 0, 1), "vocab size");
  EXPECT_ERROR_CONTAINS(MlmBatcher(*shard_, 1, 1, 8, kMask, kV, 1, 0.0), "mask probability");
  EXPECT_ERROR_CONTAINS(MlmBatcher(*shard_, 1, 1, 8, kMask, kV, 1, 1.5), "mask probability");
}

}  // namespace
}  // namespace slope::data
