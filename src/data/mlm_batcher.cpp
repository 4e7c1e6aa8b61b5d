#include "data/mlm_batcher.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <utility>

#include "data/random.h"
#include "slope/error.h"

namespace slope::data {
namespace {

// Of the selected tokens, kMaskTenths / 10 become [MASK], kRandomTenths / 10 a random id, the
// rest stay (BERT's 80/10/10).
constexpr uint64_t kMaskTenths = 8;
constexpr uint64_t kRandomTenths = 1;

}  // namespace

MlmBatcher::MlmBatcher(const TokenShard& shard, int64_t batch_size, int64_t min_len,
                       int64_t max_len, int32_t mask_id, int32_t vocab_size, uint64_t seed,
                       double mask_prob)
    : shard_(&shard),
      B_(batch_size),
      min_len_(min_len),
      max_len_(max_len),
      mask_id_(mask_id),
      vocab_size_(vocab_size),
      mask_prob_(mask_prob),
      seed_(seed) {
  if (B_ <= 0) throw Error("--batch-size must be positive, got " + std::to_string(B_));
  if (min_len_ < 1)
    throw Error("the shortest MLM row must hold at least 1 token, got " + std::to_string(min_len_));
  if (min_len_ > max_len_) {
    throw Error("MLM row lengths [" + std::to_string(min_len_) + ", " + std::to_string(max_len_) +
                "] are empty: the minimum length is above the maximum");
  }
  if (shard.size() < static_cast<uint64_t>(max_len_)) {
    throw Error(shard.path().string() + " holds " + std::to_string(shard.size()) +
                " tokens, fewer than the longest MLM row (" + std::to_string(max_len_) +
                "): lower the maximum length (at most " + std::to_string(shard.size()) +
                ") or prepare more text");
  }
  if (mask_id_ < 0) throw Error("the [MASK] id must be ≥ 0, got " + std::to_string(mask_id_));
  if (vocab_size_ <= 0) {
    throw Error("the MLM vocab size must be positive, got " + std::to_string(vocab_size_));
  }
  if (!(mask_prob_ > 0.0 && mask_prob_ <= 1.0)) {
    throw Error("the MLM mask probability must be in (0, 1], got " + std::to_string(mask_prob_));
  }
}

void MlmBatcher::batch_at(uint64_t k, MlmBatch& batch) const {
  std::mt19937_64 rng = batch_rng(seed_, k);
  // First every row's window (so T is known), then every row's masking, all from one stream.
  std::vector<std::pair<uint64_t, int64_t>> windows(static_cast<size_t>(B_));  // (start, length)
  const auto lengths = static_cast<uint64_t>(max_len_ - min_len_ + 1);
  for (auto& [start, n] : windows) {
    n = min_len_ + static_cast<int64_t>(uniform_below(rng, lengths));
    start = uniform_below(rng, shard_->size() - static_cast<uint64_t>(n) + 1);
  }
  int64_t T = 0;
  for (const auto& w : windows) T = std::max(T, w.second);

  batch.B = B_;
  batch.T = T;
  batch.idx.assign(static_cast<size_t>(B_ * T), 0);
  batch.targets.assign(static_cast<size_t>(B_ * T), kMlmIgnore);
  batch.lengths.resize(static_cast<size_t>(B_));
  std::vector<uint32_t> tokens(static_cast<size_t>(T));
  std::vector<int64_t> positions(static_cast<size_t>(T));
  for (int64_t b = 0; b < B_; ++b) {
    const auto [start, n] = windows[static_cast<size_t>(b)];
    int32_t* idx = batch.idx.data() + b * T;
    int32_t* targets = batch.targets.data() + b * T;
    batch.lengths[static_cast<size_t>(b)] = static_cast<int32_t>(n);
    shard_->copy(start, static_cast<uint64_t>(n), tokens.data());
    for (int64_t t = 0; t < n; ++t) idx[t] = static_cast<int32_t>(tokens[static_cast<size_t>(t)]);

    // A partial Fisher–Yates shuffle picks the selected positions without repeats.
    const int64_t selected =
        std::clamp<int64_t>(std::llround(mask_prob_ * static_cast<double>(n)), 1, n);
    std::iota(positions.begin(), positions.begin() + n, int64_t{0});
    for (int64_t i = 0; i < selected; ++i) {
      const int64_t j = i + static_cast<int64_t>(uniform_below(rng, static_cast<uint64_t>(n - i)));
      std::swap(positions[static_cast<size_t>(i)], positions[static_cast<size_t>(j)]);
      const int64_t t = positions[static_cast<size_t>(i)];
      targets[t] = idx[t];
      const uint64_t r = uniform_below(rng, 10);
      if (r < kMaskTenths) {
        idx[t] = mask_id_;
      } else if (r < kMaskTenths + kRandomTenths) {
        idx[t] = static_cast<int32_t>(uniform_below(rng, static_cast<uint64_t>(vocab_size_)));
      }
    }
  }
}

void MlmBatcher::set_rows(const RowSlice& rows) {
  check_row_slice(rows, B_);
  rows_ = rows;
}

void MlmBatcher::next(MlmBatch& batch) {
  if (rows_.count == 0) {
    batch_at(drawn_, batch);
    ++drawn_;
    return;
  }
  batch_at(drawn_, whole_);
  ++drawn_;
  // Rows [first, first + count) of the whole batch, padded to the longest of them.
  const auto first = static_cast<size_t>(rows_.first), count = static_cast<size_t>(rows_.count);
  batch.B = rows_.count;
  batch.lengths.assign(whole_.lengths.begin() + static_cast<ptrdiff_t>(first),
                       whole_.lengths.begin() + static_cast<ptrdiff_t>(first + count));
  batch.T = *std::max_element(batch.lengths.begin(), batch.lengths.end());
  batch.idx.assign(count * static_cast<size_t>(batch.T), 0);
  batch.targets.assign(count * static_cast<size_t>(batch.T), kMlmIgnore);
  for (size_t b = 0; b < count; ++b) {
    const size_t from = (first + b) * static_cast<size_t>(whole_.T);
    const size_t to = b * static_cast<size_t>(batch.T);
    const auto n = static_cast<size_t>(batch.lengths[b]);
    std::copy_n(whole_.idx.begin() + static_cast<ptrdiff_t>(from), n,
                batch.idx.begin() + static_cast<ptrdiff_t>(to));
    std::copy_n(whole_.targets.begin() + static_cast<ptrdiff_t>(from), n,
                batch.targets.begin() + static_cast<ptrdiff_t>(to));
  }
}

void MlmBatcher::restore(const BatcherState& state) {
  check_restorable(state, B_, max_len_, "maximum length", "--block-size");
  seed_ = state.seed;
  drawn_ = state.batches_drawn;
}

}  // namespace slope::data
