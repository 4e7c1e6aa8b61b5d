#include "data/token_batcher.h"

#include <algorithm>
#include <string>

#include "data/random.h"
#include "slope/error.h"

namespace slope::data {

TokenBatcher::TokenBatcher(const TokenShard& shard, int64_t batch_size, int64_t block_size,
                           uint64_t seed)
    : shard_(&shard), B_(batch_size), T_(block_size), seed_(seed) {
  if (B_ <= 0) throw Error("--batch-size must be positive, got " + std::to_string(B_));
  if (T_ <= 0) throw Error("--block-size must be positive, got " + std::to_string(T_));
  if (shard.size() < static_cast<uint64_t>(T_) + 1) {
    throw Error(shard.path().string() + " holds " + std::to_string(shard.size()) +
                " tokens, fewer than block size + 1 = " + std::to_string(T_ + 1) +
                ": lower --block-size (at most " +
                std::to_string(shard.size() > 0 ? shard.size() - 1 : 0) + ") or prepare more text");
  }
}

void TokenBatcher::batch_at(uint64_t k, std::span<uint32_t> tokens) const {
  const uint64_t W = static_cast<uint64_t>(T_) + 1;
  if (tokens.size() != static_cast<uint64_t>(B_) * W) {
    throw Error("batch buffer holds " + std::to_string(tokens.size()) +
                " tokens, expected B·(T+1) = " + std::to_string(static_cast<uint64_t>(B_) * W));
  }
  std::mt19937_64 rng = batch_rng(seed_, k);
  const uint64_t starts = shard_->size() - W + 1;  // windows [s, s + W) inside the shard
  for (int64_t b = 0; b < B_; ++b) {
    shard_->copy(uniform_below(rng, starts), W, tokens.data() + b * W);
  }
}

void TokenBatcher::set_rows(const RowSlice& rows) {
  check_row_slice(rows, B_);
  rows_ = rows;
}

void TokenBatcher::next(std::span<uint32_t> tokens) {
  if (rows_.count == 0) {
    batch_at(drawn_, tokens);
  } else {
    const int64_t W = T_ + 1;
    if (tokens.size() != static_cast<uint64_t>(rows_.count * W)) {
      throw Error("batch buffer holds " + std::to_string(tokens.size()) +
                  " tokens, expected rows·(T+1) = " + std::to_string(rows_.count * W));
    }
    whole_.resize(static_cast<size_t>(B_ * W));
    batch_at(drawn_, whole_);
    std::copy_n(whole_.begin() + rows_.first * W, rows_.count * W, tokens.begin());
  }
  ++drawn_;
}

int64_t check_row_slice(const RowSlice& rows, int64_t batch_size) {
  if (rows.count == 0 && rows.first == 0) return batch_size;
  if (rows.first < 0 || rows.count < 1 || rows.first + rows.count > batch_size) {
    throw Error("rows [" + std::to_string(rows.first) + ", " +
                std::to_string(rows.first + rows.count) + ") are not within a batch of " +
                std::to_string(batch_size));
  }
  return rows.count;
}

void TokenBatcher::restore(const BatcherState& state) {
  check_restorable(state, B_, T_, "block size", "--block-size");
  seed_ = state.seed;
  drawn_ = state.batches_drawn;
}

const BatcherState& check_restorable(const BatcherState& saved, int64_t batch_size, int64_t length,
                                     const char* length_name, const char* length_flag) {
  if (saved.batch_size != batch_size || saved.block_size != length) {
    throw Error("the saved data position was taken with batch size " +
                std::to_string(saved.batch_size) + " and " + length_name + " " +
                std::to_string(saved.block_size) + ", but this run has " +
                std::to_string(batch_size) + " and " + std::to_string(length) +
                ": pass --batch-size " + std::to_string(saved.batch_size) + " " + length_flag +
                " " + std::to_string(saved.block_size) + " to resume exactly");
  }
  return saved;
}

}  // namespace slope::data
