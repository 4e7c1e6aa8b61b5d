// TokenBatcher: windows inside the shard, determinism, exact resume.
#include <gtest/gtest.h>

#include <numeric>
#include <optional>
#include <set>

#include "common/temp_files.h"
#include "data/token_batcher.h"
#include "slope/attention.h"

namespace slope::data {
namespace {

using testing::TempDir;

// A shard whose token i is i: a window's first token is its start.
class Batcher : public ::testing::Test {
 protected:
  void SetUp() override { shard_ = make(1000); }
  TokenShard make(uint32_t n) {
    std::vector<uint32_t> t(n);
    std::iota(t.begin(), t.end(), 0u);
    write_token_shard(dir_ / "s.bin", t, n);
    return TokenShard::open(dir_ / "s.bin");
  }
  static std::vector<uint32_t> draw(TokenBatcher& b) {
    std::vector<uint32_t> out(static_cast<size_t>(b.batch_size() * (b.block_size() + 1)));
    b.next(out);
    return out;
  }
  TempDir dir_;
  std::optional<TokenShard> shard_;
};

TEST_F(Batcher, RowsAreContiguousWindowsInsideTheShard) {
  TokenBatcher b(*shard_, 4, 16, 7);
  for (int step = 0; step < 50; ++step) {
    const std::vector<uint32_t> batch = draw(b);
    for (int r = 0; r < 4; ++r) {
      const uint32_t* row = batch.data() + r * 17;
      EXPECT_LE(row[0] + 17, 1000u);
      for (int t = 1; t < 17; ++t) EXPECT_EQ(row[t], row[0] + t);
    }
  }
}

TEST_F(Batcher, EveryStartIsReachable) {
  shard_ = make(10);
  TokenBatcher b(*shard_, 8, 3, 1);  // starts 0..6
  std::set<uint32_t> starts;
  for (int step = 0; step < 50; ++step) {
    const std::vector<uint32_t> batch = draw(b);
    for (int r = 0; r < 8; ++r) starts.insert(batch[r * 4]);
  }
  EXPECT_EQ(starts, (std::set<uint32_t>{0, 1, 2, 3, 4, 5, 6}));
}

TEST_F(Batcher, DeterministicGivenSeed) {
  TokenBatcher a(*shard_, 2, 8, 42), b(*shard_, 2, 8, 42), c(*shard_, 2, 8, 43);
  bool differs = false;
  for (int step = 0; step < 10; ++step) {
    const auto x = draw(a);
    EXPECT_EQ(x, draw(b));
    differs |= x != draw(c);
  }
  EXPECT_TRUE(differs);
}

TEST_F(Batcher, ResumeDrawsTheSameBatches) {
  TokenBatcher run(*shard_, 3, 12, 2024);
  for (int i = 0; i < 5; ++i) draw(run);
  const BatcherState saved = run.state();
  EXPECT_EQ(saved.batches_drawn, 5u);
  std::vector<std::vector<uint32_t>> expected;
  for (int i = 0; i < 3; ++i) expected.push_back(draw(run));

  TokenBatcher resumed(*shard_, 3, 12, /*seed=*/999);  // the saved state carries the seed
  resumed.restore(saved);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(draw(resumed), expected[i]) << "batch " << 5 + i;
  EXPECT_EQ(resumed.state().batches_drawn, 8u);

  // batch_at(k) is the k-th batch, without moving the state.
  std::vector<uint32_t> at(3 * 13);
  resumed.batch_at(6, at);
  EXPECT_EQ(at, expected[1]);
  EXPECT_EQ(resumed.state().batches_drawn, 8u);
}

TEST_F(Batcher, ResumeWithOtherShapesIsRefused) {
  TokenBatcher a(*shard_, 3, 12, 1);
  TokenBatcher b(*shard_, 3, 16, 1);
  EXPECT_ERROR_CONTAINS(b.restore(a.state()), "--block-size 12");
}

TEST_F(Batcher, ShardShorterThanABlock) {
  shard_ = make(10);
  EXPECT_ERROR_CONTAINS(TokenBatcher(*shard_, 1, 10, 1), "lower --block-size (at most 9)");
  EXPECT_NO_THROW(TokenBatcher(*shard_, 1, 9, 1));
  EXPECT_ERROR_CONTAINS(TokenBatcher(*shard_, 0, 4, 1), "--batch-size");
}

TEST_F(Batcher, WrongBufferSize) {
  TokenBatcher b(*shard_, 2, 4, 1);
  std::vector<uint32_t> out(9);
  EXPECT_ERROR_CONTAINS(b.next(out), "expected B·(T+1) = 10");
}

}  // namespace
}  // namespace slope::data
