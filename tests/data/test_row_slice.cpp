// RowSlice: the rows of each batch one rank of a data-parallel run trains on. For every batcher,
// the N ranks' slices of batch k, put one after the other, are batch k of the whole batch (the
// variable-length ones re-padded to each slice's longest row), so N ranks × B/N train on the
// very data of one process × B; the saved state is the whole batch's, whatever the slice.
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "common/temp_files.h"
#include "data/mlm_batcher.h"
#include "data/pairs.h"
#include "data/token_batcher.h"
#include "slope/attention.h"

namespace slope::data {
namespace {

using testing::TempDir;

constexpr int64_t kB = 6;  // the whole batch; 3 ranks of 2 rows, 2 of 3

TokenShard iota_shard(const TempDir& dir, uint32_t n) {
  std::vector<uint32_t> t(n);
  std::iota(t.begin(), t.end(), 0u);
  write_token_shard(dir / "s.bin", t, n);
  return TokenShard::open(dir / "s.bin");
}

TEST(RowSlice, TokenBatcherSlicesMakeTheWholeBatch) {
  const TempDir dir;
  const TokenShard shard = iota_shard(dir, 500);
  const int64_t T = 8, W = T + 1;
  for (int64_t ranks : {2, 3}) {
    const int64_t rows = kB / ranks;
    TokenBatcher whole(shard, kB, T, 42);
    std::vector<TokenBatcher> parts;
    for (int64_t r = 0; r < ranks; ++r) {
      parts.emplace_back(shard, kB, T, 42);
      parts.back().set_rows({r * rows, rows});
      EXPECT_EQ(parts.back().rows(), rows);
    }
    for (int k = 0; k < 4; ++k) {
      std::vector<uint32_t> want(static_cast<size_t>(kB * W)), got;
      whole.next(want);
      for (TokenBatcher& p : parts) {
        std::vector<uint32_t> slice(static_cast<size_t>(rows * W));
        p.next(slice);
        got.insert(got.end(), slice.begin(), slice.end());
      }
      EXPECT_EQ(got, want) << ranks << " ranks, batch " << k;
    }
    EXPECT_EQ(parts[1].state().batch_size, kB);  // a checkpoint holds the whole batch's state
    EXPECT_EQ(parts[1].state().batches_drawn, 4u);
  }
}

TEST(RowSlice, MlmBatcherSlicesAreTheWholeBatchsRowsRepadded) {
  const TempDir dir;
  const TokenShard shard = iota_shard(dir, 500);
  MlmBatcher whole(shard, kB, 3, 12, /*mask_id=*/1000, /*vocab=*/1000, 7);
  const int64_t rows = 3;
  for (int k = 0; k < 5; ++k) {
    MlmBatch want;
    whole.next(want);
    for (int64_t r = 0; r < 2; ++r) {
      MlmBatcher part(shard, kB, 3, 12, 1000, 1000, 7);
      part.restore({7, static_cast<uint64_t>(k), kB, 12});  // batch k
      part.set_rows({r * rows, rows});
      MlmBatch got;
      part.next(got);
      ASSERT_EQ(got.B, rows);
      int32_t longest = 0;
      for (int64_t b = 0; b < rows; ++b) {
        const int64_t wb = r * rows + b;
        const int32_t n = want.lengths[static_cast<size_t>(wb)];
        ASSERT_EQ(got.lengths[static_cast<size_t>(b)], n);
        longest = std::max(longest, n);
        for (int64_t t = 0; t < got.T; ++t) {
          const bool real = t < n;
          EXPECT_EQ(got.idx[static_cast<size_t>(b * got.T + t)],
                    real ? want.idx[static_cast<size_t>(wb * want.T + t)] : 0);
          EXPECT_EQ(got.targets[static_cast<size_t>(b * got.T + t)],
                    real ? want.targets[static_cast<size_t>(wb * want.T + t)] : kMlmIgnore);
        }
      }
      EXPECT_EQ(got.T, longest);  // padded to the slice's longest row, not the batch's
    }
  }
}

TEST(RowSlice, PairBatcherSlicesAreTheWholeBatchsRows) {
  std::vector<PairExample> ex;
  for (int32_t w = 1; w <= 9; ++w) {
    PairExample x;
    x.word = std::to_string(w);
    x.src.assign(static_cast<size_t>(1 + w % 5), w);
    x.prons.emplace_back(static_cast<size_t>(1 + (w * 3) % 4), 2 + w);
    ex.push_back(std::move(x));
  }
  PairBatcher whole(ex, kB, 5);
  for (int k = 0; k < 5; ++k) {
    PairBatch want;
    whole.next(want);
    for (int64_t r = 0; r < 3; ++r) {
      PairBatcher part(ex, kB, 5);
      part.restore({5, static_cast<uint64_t>(k), kB, 0});
      part.set_rows({r * 2, 2});
      PairBatch got;
      part.next(got);
      ASSERT_EQ(got.B, 2);
      for (int64_t b = 0; b < 2; ++b) {
        const int64_t wb = r * 2 + b;
        const int32_t n = want.src_lengths[static_cast<size_t>(wb)];
        ASSERT_EQ(got.src_lengths[static_cast<size_t>(b)], n);
        for (int64_t s = 0; s < n; ++s)
          EXPECT_EQ(got.src[static_cast<size_t>(b * got.S + s)],
                    want.src[static_cast<size_t>(wb * want.S + s)]);
        for (int64_t t = 0; t < got.T; ++t) {
          EXPECT_EQ(got.tgt_out[static_cast<size_t>(b * got.T + t)],
                    want.tgt_out[static_cast<size_t>(wb * want.T + t)]);
          EXPECT_EQ(got.tgt_in[static_cast<size_t>(b * got.T + t)],
                    want.tgt_in[static_cast<size_t>(wb * want.T + t)]);
        }
      }
    }
  }
}

TEST(RowSlice, OutsideTheBatchIsRefused) {
  const TempDir dir;
  const TokenShard shard = iota_shard(dir, 100);
  TokenBatcher b(shard, 4, 8, 1);
  EXPECT_ERROR_CONTAINS(b.set_rows({3, 2}), "not within a batch of 4");
  EXPECT_ERROR_CONTAINS(b.set_rows({-1, 2}), "not within a batch of 4");
  EXPECT_ERROR_CONTAINS(b.set_rows({0, -1}), "not within a batch of 4");
  b.set_rows({2, 2});
  std::vector<uint32_t> wrong(4 * 9);
  EXPECT_ERROR_CONTAINS(b.next(wrong), "expected rows·(T+1) = 18");
}

}  // namespace
}  // namespace slope::data
