// PairBatcher and make_pair_batch (pairs.h): (word, pronunciation) pairs → padded batches.
#include <algorithm>
#include <string>

#include "data/pairs.h"
#include "data/random.h"
#include "slope/error.h"

namespace slope::data {
namespace {

// Row b of `batch` ← source ids `src` and phonemes `pron` (without <bos>/<eos>).
void fill_row(PairBatch& batch, int64_t b, const std::vector<int32_t>& src,
              const std::vector<int32_t>& pron) {
  std::copy(src.begin(), src.end(), batch.src.begin() + b * batch.S);
  batch.src_lengths[static_cast<size_t>(b)] = static_cast<int32_t>(src.size());
  int32_t* in = batch.tgt_in.data() + b * batch.T;
  int32_t* out = batch.tgt_out.data() + b * batch.T;
  in[0] = kBos;
  std::copy(pron.begin(), pron.end(), in + 1);
  std::copy(pron.begin(), pron.end(), out);
  out[pron.size()] = kEos;
}

// Sizes `batch` for B rows of sources and pronunciations; fills the padding.
void shape_batch(PairBatch& batch, int64_t B, int64_t S, int64_t longest_pron) {
  batch.B = B;
  batch.S = S;
  batch.T = longest_pron + 1;
  batch.src.assign(static_cast<size_t>(B * S), 0);
  batch.src_lengths.assign(static_cast<size_t>(B), 0);
  batch.tgt_in.assign(static_cast<size_t>(B * batch.T), kEos);
  batch.tgt_out.assign(static_cast<size_t>(B * batch.T), kPairIgnore);
}

}  // namespace

PairBatcher::PairBatcher(const std::vector<PairExample>& examples, int64_t batch_size,
                         uint64_t seed, int64_t max_src_len)
    : examples_(&examples), B_(batch_size), max_src_len_(max_src_len), seed_(seed) {
  if (B_ <= 0) throw Error("--batch-size must be positive, got " + std::to_string(B_));
  if (max_src_len_ < 0) {
    throw Error("the longest training word must be ≥ 0 characters (0: no limit), got " +
                std::to_string(max_src_len_));
  }
  for (size_t e = 0; e < examples.size(); ++e) {
    const PairExample& x = examples[e];
    if (max_src_len_ > 0 && static_cast<int64_t>(x.src.size()) > max_src_len_) continue;
    for (size_t p = 0; p < x.prons.size(); ++p) {
      pairs_.push_back({static_cast<uint32_t>(e), static_cast<uint32_t>(p)});
    }
  }
  if (pairs_.empty()) {
    throw Error(examples.empty() ? std::string("no examples to draw batches from")
                                 : "no word has at most " + std::to_string(max_src_len_) +
                                       " characters: raise the source length limit");
  }
}

void PairBatcher::batch_at(uint64_t k, PairBatch& batch) const { rows_at(k, {0, B_}, batch); }

// Rows [first, first + count) of batch k, padded to the longest of them: the draws of every row
// are made (they come from one stream), the rows outside the slice are left out.
void PairBatcher::rows_at(uint64_t k, const RowSlice& slice, PairBatch& batch) const {
  std::mt19937_64 rng = batch_rng(seed_, k);
  std::vector<Pair> rows(static_cast<size_t>(B_));
  for (Pair& row : rows) row = pairs_[uniform_below(rng, pairs_.size())];
  int64_t S = 0, L = 0;
  for (int64_t b = slice.first; b < slice.first + slice.count; ++b) {
    const Pair row = rows[static_cast<size_t>(b)];
    const PairExample& x = (*examples_)[row.example];
    S = std::max(S, static_cast<int64_t>(x.src.size()));
    L = std::max(L, static_cast<int64_t>(x.prons[row.pron].size()));
  }
  shape_batch(batch, slice.count, S, L);
  for (int64_t b = 0; b < slice.count; ++b) {
    const Pair row = rows[static_cast<size_t>(slice.first + b)];
    const PairExample& x = (*examples_)[row.example];
    fill_row(batch, b, x.src, x.prons[row.pron]);
  }
}

void PairBatcher::set_rows(const RowSlice& rows) {
  check_row_slice(rows, B_);
  rows_ = rows;
}

void PairBatcher::next(PairBatch& batch) {
  rows_at(drawn_, rows_.count == 0 ? RowSlice{0, B_} : rows_, batch);
  ++drawn_;
}

void PairBatcher::restore(const BatcherState& state) {
  check_restorable(state, B_, max_src_len_, "source length limit", "--max-src-len");
  seed_ = state.seed;
  drawn_ = state.batches_drawn;
}

void make_pair_batch(const std::vector<PairExample>& examples, int64_t first, int64_t count,
                     PairBatch& batch) {
  const auto n = static_cast<int64_t>(examples.size());
  if (count <= 0 || first < 0 || first > n || count > n - first) {
    throw Error("examples [" + std::to_string(first) + ", " + std::to_string(first + count) +
                ") are not a non-empty range of the split's " + std::to_string(n));
  }
  int64_t S = 0, L = 0;
  for (int64_t e = first; e < first + count; ++e) {
    const PairExample& x = examples[static_cast<size_t>(e)];
    if (x.src.empty() || x.prons.empty()) {
      throw Error("example " + std::to_string(e) + " (\"" + x.word +
                  "\") has no source or no pronunciation");
    }
    S = std::max(S, static_cast<int64_t>(x.src.size()));
    L = std::max(L, static_cast<int64_t>(x.prons[0].size()));
  }
  shape_batch(batch, count, S, L);
  for (int64_t b = 0; b < count; ++b) {
    const PairExample& x = examples[static_cast<size_t>(first + b)];
    fill_row(batch, b, x.src, x.prons[0]);
  }
}

}  // namespace slope::data
