// PairBatcher and make_pair_batch: shapes, padding, <bos>/<eos>, every pronunciation its own
// example, the source length filter, determinism and exact resume.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "common/temp_files.h"
#include "data/pairs.h"
#include "slope/attention.h"

namespace slope::data {
namespace {

// Word w (1-based) has source ids (w, w, ..., w) of length len(w) and its pronunciations are
// made of phoneme ids 2 + w: every row of a batch tells which word and pronunciation it holds.
std::vector<PairExample> examples() {
  const std::vector<std::pair<int, std::vector<int>>> shape = {
      // (source length, pronunciation lengths)
      {1, {1}}, {3, {2, 4}}, {5, {5}}, {2, {3, 1, 2}}, {7, {6}}, {4, {4}},
  };
  std::vector<PairExample> out;
  for (size_t e = 0; e < shape.size(); ++e) {
    const int32_t w = static_cast<int32_t>(e) + 1;
    PairExample x;
    x.word = "word" + std::to_string(w);
    x.src.assign(static_cast<size_t>(shape[e].first), w);
    for (int len : shape[e].second) x.prons.emplace_back(static_cast<size_t>(len), 2 + w);
    out.push_back(std::move(x));
  }
  return out;
}

// Checks that row b of `batch` holds source `x.src` and pronunciation `pron`, padded right.
void expect_row(const PairBatch& batch, int64_t b, const PairExample& x,
                const std::vector<int32_t>& pron) {
  const auto S = batch.S, T = batch.T;
  EXPECT_EQ(batch.src_lengths[static_cast<size_t>(b)], static_cast<int32_t>(x.src.size()));
  for (int64_t s = 0; s < S; ++s) {
    const int32_t want = s < static_cast<int64_t>(x.src.size()) ? x.src[static_cast<size_t>(s)] : 0;
    EXPECT_EQ(batch.src[static_cast<size_t>(b * S + s)], want) << "s " << s;
  }
  const auto L = static_cast<int64_t>(pron.size());
  for (int64_t t = 0; t < T; ++t) {
    const int32_t in = batch.tgt_in[static_cast<size_t>(b * T + t)];
    const int32_t out = batch.tgt_out[static_cast<size_t>(b * T + t)];
    EXPECT_EQ(in, t == 0 ? kBos : t <= L ? pron[static_cast<size_t>(t - 1)] : kEos) << "t " << t;
    EXPECT_EQ(out, t < L ? pron[static_cast<size_t>(t)] : t == L ? kEos : kPairIgnore) << "t " << t;
  }
}

// Which (word, pronunciation) a row holds: word w from its first source id, pronunciation by
// its length (the lengths of a word's pronunciations differ in examples()).
std::pair<int, int> identify(const std::vector<PairExample>& ex, const PairBatch& batch,
                             int64_t b) {
  const int w = batch.src[static_cast<size_t>(b * batch.S)];
  const PairExample& x = ex[static_cast<size_t>(w - 1)];
  int64_t L = 0;
  while (L < batch.T && batch.tgt_out[static_cast<size_t>(b * batch.T + L)] != kEos) ++L;
  for (size_t p = 0; p < x.prons.size(); ++p) {
    if (static_cast<int64_t>(x.prons[p].size()) == L) return {w, static_cast<int>(p)};
  }
  ADD_FAILURE() << "row " << b << " matches no pronunciation of word " << w;
  return {w, -1};
}

TEST(PairBatcher, ShapesPaddingBosEos) {
  const std::vector<PairExample> ex = examples();
  PairBatcher batcher(ex, 5, 1);
  EXPECT_EQ(batcher.num_examples(), 9);  // every pronunciation counts
  PairBatch batch;
  for (int step = 0; step < 50; ++step) {
    batcher.next(batch);
    ASSERT_EQ(batch.B, 5);
    ASSERT_EQ(batch.src.size(), static_cast<size_t>(5 * batch.S));
    ASSERT_EQ(batch.tgt_in.size(), static_cast<size_t>(5 * batch.T));
    ASSERT_EQ(batch.tgt_out.size(), batch.tgt_in.size());
    int64_t S = 0, T = 0;
    for (int64_t b = 0; b < 5; ++b) {
      const auto [w, p] = identify(ex, batch, b);
      ASSERT_GE(p, 0);
      const PairExample& x = ex[static_cast<size_t>(w - 1)];
      expect_row(batch, b, x, x.prons[static_cast<size_t>(p)]);
      S = std::max<int64_t>(S, static_cast<int64_t>(x.src.size()));
      T = std::max<int64_t>(T, static_cast<int64_t>(x.prons[static_cast<size_t>(p)].size()) + 1);
    }
    EXPECT_EQ(batch.S, S);  // the longest source of the batch
    EXPECT_EQ(batch.T, T);  // the longest target + 1
  }
}

TEST(PairBatcher, EveryPronunciationIsDrawnAsOften) {
  const std::vector<PairExample> ex = examples();
  PairBatcher batcher(ex, 16, 3);
  std::map<std::pair<int, int>, int64_t> counts;
  constexpr int64_t kDraws = 16 * 900;
  PairBatch batch;
  for (int64_t step = 0; step < kDraws / 16; ++step) {
    batcher.next(batch);
    for (int64_t b = 0; b < batch.B; ++b) ++counts[identify(ex, batch, b)];
  }
  ASSERT_EQ(counts.size(), 9u);
  // Uniform over the 9 pairs: each count within 5 binomial standard deviations of n/9.
  const double p = 1.0 / 9, mean = kDraws * p, sd = std::sqrt(kDraws * p * (1 - p));
  for (const auto& [pair, n] : counts) {
    EXPECT_LE(std::abs(static_cast<double>(n) - mean), 5 * sd)
        << "word " << pair.first << " pronunciation " << pair.second << ": " << n;
  }
}

TEST(PairBatcher, MaxSourceLengthFilters) {
  const std::vector<PairExample> ex = examples();
  PairBatcher batcher(ex, 8, 1, /*max_src_len=*/3);
  EXPECT_EQ(batcher.num_examples(), 6);  // words 1, 2, 4: 1 + 2 + 3 pronunciations
  PairBatch batch;
  for (int step = 0; step < 30; ++step) {
    batcher.next(batch);
    EXPECT_LE(batch.S, 3);
    for (int64_t b = 0; b < batch.B; ++b) EXPECT_LE(batch.src_lengths[static_cast<size_t>(b)], 3);
  }
  EXPECT_EQ(PairBatcher(ex, 8, 1, 7).num_examples(), 9);
  EXPECT_ERROR_CONTAINS(PairBatcher(ex, 8, 1, -1), "≥ 0");
  std::vector<PairExample> long_words(ex.begin() + 2, ex.begin() + 3);  // 5 characters
  EXPECT_ERROR_CONTAINS(PairBatcher(long_words, 8, 1, 4), "no word has at most 4 characters");
  EXPECT_ERROR_CONTAINS(PairBatcher({}, 8, 1), "no examples");
  EXPECT_ERROR_CONTAINS(PairBatcher(ex, 0, 1), "--batch-size");
}

TEST(PairBatcher, DeterminismBatchAtAndResume) {
  const std::vector<PairExample> ex = examples();
  PairBatcher a(ex, 4, 42), b(ex, 4, 42), c(ex, 4, 43);
  PairBatch x, y, z;
  bool differs = false;
  for (int step = 0; step < 10; ++step) {
    a.next(x);
    b.next(y);
    c.next(z);
    EXPECT_EQ(x.src, y.src);
    EXPECT_EQ(x.tgt_in, y.tgt_in);
    EXPECT_EQ(x.tgt_out, y.tgt_out);
    differs |= x.tgt_out != z.tgt_out || x.src != z.src;
  }
  EXPECT_TRUE(differs);

  const BatcherState saved = a.state();
  EXPECT_EQ(saved.batches_drawn, 10u);
  std::vector<PairBatch> expected(3);
  for (PairBatch& e : expected) a.next(e);
  PairBatcher resumed(ex, 4, /*seed=*/7);
  resumed.restore(saved);
  for (int i = 0; i < 3; ++i) {
    resumed.next(x);
    EXPECT_EQ(x.src, expected[static_cast<size_t>(i)].src);
    EXPECT_EQ(x.tgt_out, expected[static_cast<size_t>(i)].tgt_out);
  }
  resumed.batch_at(11, x);
  EXPECT_EQ(x.tgt_in, expected[1].tgt_in);
  EXPECT_EQ(resumed.state().batches_drawn, 13u);

  PairBatcher filtered(ex, 4, 42, 3);
  EXPECT_ERROR_CONTAINS(filtered.restore(saved), "source length limit 0");
}

TEST(MakePairBatch, InOrderWithTheFirstPronunciation) {
  const std::vector<PairExample> ex = examples();
  PairBatch batch;
  make_pair_batch(ex, 1, 4, batch);
  EXPECT_EQ(batch.B, 4);
  EXPECT_EQ(batch.S, 7);  // words 2..5
  EXPECT_EQ(batch.T, 7);  // longest first pronunciation (6) + 1
  for (int64_t b = 0; b < 4; ++b) {
    const PairExample& x = ex[static_cast<size_t>(1 + b)];
    expect_row(batch, b, x, x.prons[0]);
  }
  make_pair_batch(ex, 5, 1, batch);
  EXPECT_EQ(batch.B, 1);
  EXPECT_ERROR_CONTAINS(make_pair_batch(ex, 4, 3, batch), "[4, 7)");
  EXPECT_ERROR_CONTAINS(make_pair_batch(ex, 0, 0, batch), "non-empty range");
  EXPECT_ERROR_CONTAINS(make_pair_batch(ex, -1, 2, batch), "non-empty range");
}

}  // namespace
}  // namespace slope::data
