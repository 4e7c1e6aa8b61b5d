// TokenBatcher: random (B, T+1) windows of a token shard for language-model training.
//
// Batch k is a pure function of (seed, k, B, T, the shard): its RNG is std::mt19937_64 seeded
// from splitmix64(seed, k), and the window starts are drawn by rejection sampling on the raw
// 64-bit outputs (never std::uniform_int_distribution, whose algorithm differs between standard
// libraries). So the state to save for an exact resume is (seed, batches drawn), and a resumed
// run draws the very batches the uninterrupted run would have.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "data/token_shard.h"

namespace slope::data {

// What a checkpoint stores to resume sampling; B and T are kept to refuse a mismatched resume.
struct BatcherState {
  uint64_t seed = 0;
  uint64_t batches_drawn = 0;
  int64_t batch_size = 0;  // B
  int64_t block_size = 0;  // T
};

// A batcher's restore(): throws slope::Error unless `saved` was taken with this batch size and
// length (`length_name` says which: "block size", "maximum length", ...; `length_flag` is the
// flag that sets it), and returns it.
const BatcherState& check_restorable(const BatcherState& saved, int64_t batch_size, int64_t length,
                                     const char* length_name, const char* length_flag);

// The rows of every batch that one rank of a data-parallel run trains on: rows
// [first, first + count) of the batch of B. Rank r of N with B/N rows each takes
// {r·B/N, B/N}, so the N ranks together train on exactly the batch one process would draw with
// batch size B: the same data whatever N (the seed and batch index fix it), and a checkpoint's
// (seed, batches drawn, B) means the same position for any N.
struct RowSlice {
  int64_t first = 0;
  int64_t count = 0;  // 0: every row
};

// Throws slope::Error unless `rows` lies within a batch of B rows; returns its row count.
int64_t check_row_slice(const RowSlice& rows, int64_t batch_size);

class TokenBatcher {
 public:
  // Reads windows of T+1 tokens from `shard`, which must outlive the batcher. Throws
  // slope::Error when B or T is not positive, or the shard holds fewer than T+1 tokens
  // ("... lower --block-size").
  TokenBatcher(const TokenShard& shard, int64_t batch_size, int64_t block_size, uint64_t seed);

  int64_t batch_size() const { return B_; }
  int64_t block_size() const { return T_; }

  // Makes next() return only these rows of each batch (see RowSlice).
  void set_rows(const RowSlice& rows);
  int64_t rows() const { return rows_.count > 0 ? rows_.count : B_; }  // next()'s rows

  // tokens (rows(), T+1), row-major: row b is the shard's tokens [s_b, s_b + T], so inputs are
  // row[0..T) and targets row[1..T]. Advances the state by one batch.
  void next(std::span<uint32_t> tokens);

  // Batch k without touching the state (k may be any index, drawn or not).
  void batch_at(uint64_t k, std::span<uint32_t> tokens) const;

  BatcherState state() const { return {seed_, drawn_, B_, T_}; }
  // Continues from a saved state. Throws slope::Error when it was saved with another B or T.
  void restore(const BatcherState& state);

 private:
  const TokenShard* shard_;
  int64_t B_, T_;
  uint64_t seed_;
  uint64_t drawn_ = 0;
  RowSlice rows_;
  std::vector<uint32_t> whole_;  // (B, T+1): the whole batch, when next() returns a slice
};

}  // namespace slope::data
