// MlmBatcher: masked-language-model batches (BERT) of variable-length windows of a token shard.
//
// Row b of batch k is the shard's tokens [s_b, s_b + n_b) with n_b uniform in [min_len, max_len]
// and s_b uniform over the windows that fit. Of its n_b real tokens exactly
// max(1, round(mask_prob · n_b)) are selected (as the original BERT's create_pretraining_data
// does: a fixed count per row, not a coin per token); a selected token becomes mask_id with
// probability 0.8, a uniformly random id in [0, vocab_size) with 0.1 (which may be the original
// id), and stays with 0.1. targets hold the original id at the selected positions only.
//
// Batch k is a pure function of (seed, k, B, min_len, max_len, mask_id, vocab_size, mask_prob,
// the shard), drawn as TokenBatcher draws (token_batcher.h): std::mt19937_64 seeded from
// splitmix64, bounded draws by rejection on the raw outputs. So (seed, batches drawn) is the
// whole state to resume exactly.
#pragma once

#include <cstdint>
#include <vector>

#include "data/token_batcher.h"
#include "data/token_shard.h"

namespace slope::data {

struct MlmBatch {
  int64_t B = 0, T = 0;          // T = the longest row of the batch (≤ max_len)
  std::vector<int32_t> idx;      // (B, T) inputs, masked; positions ≥ lengths[b] are padding (0)
  std::vector<int32_t> targets;  // (B, T) original id at the selected positions, -1 elsewhere
  std::vector<int32_t> lengths;  // (B) real tokens per row, in [min_len, max_len]
};

constexpr double kDefaultMaskProb = 0.15;
constexpr int32_t kMlmIgnore = -1;  // targets at positions that are not predicted

class MlmBatcher {
 public:
  // `shard` must outlive the batcher. Throws slope::Error when B ≤ 0, min_len < 1,
  // min_len > max_len, the shard holds fewer than max_len tokens, mask_id < 0, vocab_size ≤ 0,
  // or mask_prob is outside (0, 1].
  MlmBatcher(const TokenShard& shard, int64_t batch_size, int64_t min_len, int64_t max_len,
             int32_t mask_id, int32_t vocab_size, uint64_t seed,
             double mask_prob = kDefaultMaskProb);

  int64_t batch_size() const { return B_; }
  int64_t min_len() const { return min_len_; }
  int64_t max_len() const { return max_len_; }

  // Makes next() return only these rows of each batch (token_batcher.h's RowSlice), padded
  // to the longest of them.
  void set_rows(const RowSlice& rows);

  // The next batch; advances the state by one.
  void next(MlmBatch& batch);
  // Batch k without touching the state (k may be any index, drawn or not).
  void batch_at(uint64_t k, MlmBatch& batch) const;

  // block_size holds max_len. restore() throws slope::Error when B or max_len differ.
  BatcherState state() const { return {seed_, drawn_, B_, max_len_}; }
  void restore(const BatcherState& state);

 private:
  const TokenShard* shard_;
  int64_t B_, min_len_, max_len_;
  int32_t mask_id_, vocab_size_;
  double mask_prob_;
  uint64_t seed_;
  uint64_t drawn_ = 0;
  RowSlice rows_;
  MlmBatch whole_;  // the whole batch, when next() returns a slice
};

}  // namespace slope::data
