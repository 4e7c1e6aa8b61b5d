// KV-cache decoding against the full forward: the logits of every position, fed as a prompt
// chunk then one or a few tokens at a time, equal those of Gpt::forward over the whole
// sequence (float: within the kernels' rounding; double: the reference attention, to 1e-10).
// Sampling: greedy, top-k, determinism.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "gpt_testing.h"
#include "model/gpt.h"
#include "model/gpt_inference.h"
#include "model/sampling.h"
#include "slope/attention.h"

namespace slope::model::testing {
namespace {

GptConfig tiny(Position pos) {
  GptConfig c;
  c.n_layer = 2, c.n_head = 3, c.n_embd = 24, c.vocab_size = 37, c.block_size = 16;
  c.pos = pos;
  return c;
}

// Feeds idx (B, T) to a GptInference in chunks and checks each chunk's logits against the full
// forward's rows at the same positions.
template <class Real>
void expect_cached_equals_full(Position pos, int64_t B, int64_t T,
                               const std::vector<int64_t>& chunks, double tol) {
  Gpt<Real> gpt(tiny(pos));
  randomize_params(gpt, 11);
  const Batch batch = make_batch(B, T, gpt.config().vocab_size, 5);
  gpt.forward(batch.idx.data(), nullptr, B, T);
  const Real* full = gpt.logits();
  const int64_t Vp = gpt.config().padded_vocab_size(), V = gpt.config().vocab_size;

  GptInference<Real> inf(gpt, B);
  int64_t p = 0;
  for (int64_t Tn : chunks) {
    std::vector<int32_t> idx;
    for (int64_t b = 0; b < B; ++b)
      idx.insert(idx.end(), batch.idx.begin() + b * T + p, batch.idx.begin() + b * T + p + Tn);
    const Real* logits = inf.forward(idx.data(), Tn);
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < Tn; ++t)
        for (int64_t v = 0; v < V; ++v) {
          const double want = full[((b * T) + p + t) * Vp + v];
          const double got = logits[(b * Tn + t) * Vp + v];
          ASSERT_NEAR(got, want, tol * (1.0 + std::abs(want)))
              << position_name(pos) << " b " << b << " position " << p + t << " v " << v;
        }
    p += Tn;
    EXPECT_EQ(inf.length(), p);
  }
  ASSERT_EQ(p, T) << "the chunks must cover the sequence";
}

class GptInferenceTest : public ::testing::TestWithParam<Position> {};

TEST_P(GptInferenceTest, CachedLogitsEqualFullForwardFloat) {
  expect_cached_equals_full<float>(GetParam(), 2, 12, {5, 1, 1, 2, 3}, 2e-5);
}

TEST_P(GptInferenceTest, CachedLogitsEqualFullForwardDouble) {
  expect_cached_equals_full<double>(GetParam(), 2, 12, {1, 4, 1, 6}, 1e-10);
}

INSTANTIATE_TEST_SUITE_P(AllPositions, GptInferenceTest,
                         ::testing::Values(Position::learned, Position::sinusoidal, Position::none,
                                           Position::alibi, Position::alibi_learned,
                                           Position::kerple_log, Position::kerple_power,
                                           Position::t5, Position::fire),
                         [](const auto& p) {
                           std::string name = position_name(p.param);
                           for (char& ch : name)
                             if (ch == '-') ch = '_';
                           return name;
                         });

// Past block_size (ALiBi extrapolates) and past the cache's first capacity (it grows).
TEST(GptInference, AlibiBeyondBlockSizeAndCacheGrowth) {
  std::vector<int64_t> chunks = {3};
  for (int i = 0; i < 77; ++i) chunks.push_back(1);
  expect_cached_equals_full<float>(Position::alibi, 1, 80, chunks, 2e-5);
  expect_cached_equals_full<float>(Position::sinusoidal, 1, 80, {40, 30, 10}, 2e-5);
}

TEST(GptInference, LearnedPositionsStopAtBlockSize) {
  Gpt<float> gpt(tiny(Position::learned));
  GptInference<float> inf(gpt, 1);
  EXPECT_EQ(inf.max_length(), 16);
  std::vector<int32_t> idx(16, 1);
  inf.forward(idx.data(), 16);
  try {
    inf.forward(idx.data(), 1);
    ADD_FAILURE() << "expected an error past block_size";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block_size 16"), std::string::npos) << e.what();
  }
  EXPECT_EQ(inf.length(), 16) << "a failed forward leaves the cache as it was";
  inf.reset();
  EXPECT_EQ(inf.length(), 0);
  idx[0] = 37;  // outside the vocabulary
  EXPECT_THROW(inf.forward(idx.data(), 1), Error);
}

TEST(Sampling, GreedyTopKAndDeterminism) {
  const std::vector<float> logits = {0.0f, 3.0f, 1.0f, 2.9f, -1.0f};
  std::mt19937_64 rng(1);
  EXPECT_EQ(sample_token(logits.data(), 5, {0.0, 0}, rng), 1);  // temperature 0: argmax
  for (int i = 0; i < 200; ++i) {
    const int32_t t = sample_token(logits.data(), 5, {1.0, 2}, rng);
    EXPECT_TRUE(t == 1 || t == 3) << t;  // top-2
  }
  std::mt19937_64 a(7), b(7);
  for (int i = 0; i < 50; ++i)
    EXPECT_EQ(sample_token(logits.data(), 5, {1.3, 0}, a),
              sample_token(logits.data(), 5, {1.3, 0}, b));
  EXPECT_THROW(validate(SamplingConfig{-1.0, 0}), Error);
  EXPECT_THROW(validate(SamplingConfig{1.0, -2}), Error);
  const std::vector<float> bad = {0.0f, NAN};
  EXPECT_THROW(sample_token(bad.data(), 2, {1.0, 0}, rng), Error);
}

}  // namespace
}  // namespace slope::model::testing
