// Loss per context length: window counts and scored tokens for non-overlapping and sliding
// windows, batching that does not change the result, learned positions skipped past
// block_size.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "../model/gpt_testing.h"
#include "data/token_shard.h"
#include "train/length_eval.h"
#include "train_testing.h"

namespace slope::train::testing {
namespace {

model::GptConfig tiny(model::Position pos) {
  model::GptConfig c;
  c.n_layer = 1, c.n_head = 2, c.n_embd = 16, c.vocab_size = 11, c.block_size = 16;
  c.pos = pos;
  return c;
}

data::TokenShard make_shard(const TempDir& dir, uint64_t n) {
  std::vector<uint32_t> tokens(n);
  for (uint64_t i = 0; i < n; ++i) tokens[i] = static_cast<uint32_t>((i * 7 + i / 5) % 11);
  data::write_token_shard(dir / "val.bin", tokens, 11);
  return data::TokenShard::open(dir / "val.bin");
}

TEST(LengthEval, WindowsTokensAndSkips) {
  TempDir dir;
  const data::TokenShard shard = make_shard(dir, 200);
  model::Gpt<float> gpt(tiny(model::Position::learned));
  model::testing::randomize_params(gpt, 2);
  LengthEvalOptions o;
  o.lengths = {8, 16, 32};
  const std::vector<LengthEvalRow> rows = evaluate_lengths(gpt, shard, o);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].windows, (200 - 9) / 8 + 1);  // 24 windows of 9 tokens fit in 200
  EXPECT_EQ(rows[0].tokens, rows[0].windows * 8);
  EXPECT_EQ(rows[1].windows, (200 - 17) / 16 + 1);
  EXPECT_TRUE(rows[2].skipped) << "learned positions end at block_size";
  EXPECT_NE(rows[2].note.find("block_size 16"), std::string::npos) << rows[2].note;
  EXPECT_NEAR(rows[0].perplexity, std::exp(rows[0].loss), 1e-9);

  // Batching does not change the numbers (one window per forward vs many).
  o.batch_tokens = 1;
  const std::vector<LengthEvalRow> one = evaluate_lengths(gpt, shard, o);
  EXPECT_NEAR(one[0].loss, rows[0].loss, 1e-6);
  EXPECT_NEAR(one[1].loss, rows[1].loss, 1e-6);

  // Sliding: the first window scores all 16, each later one its last 4.
  o.lengths = {16}, o.stride = 4, o.batch_tokens = 8192;
  const LengthEvalRow s = evaluate_lengths(gpt, shard, o)[0];
  EXPECT_EQ(s.windows, (200 - 17) / 4 + 1);
  EXPECT_EQ(s.tokens, 16 + (s.windows - 1) * 4);
  o.stride = 17;
  EXPECT_ERROR_CONTAINS(evaluate_lengths(gpt, shard, o), "--stride 17");
}

TEST(LengthEval, AlibiRunsPastBlockSizeAndShortSplitsAreSkipped) {
  TempDir dir;
  const data::TokenShard shard = make_shard(dir, 100);
  model::Gpt<float> gpt(tiny(model::Position::alibi));
  LengthEvalOptions o;
  o.lengths = {32, 64, 128};
  const std::vector<LengthEvalRow> rows = evaluate_lengths(gpt, shard, o);
  EXPECT_FALSE(rows[0].skipped);
  EXPECT_FALSE(rows[1].skipped);
  EXPECT_EQ(rows[1].windows, 1);
  EXPECT_TRUE(rows[2].skipped) << "100 tokens cannot fill a window of 129";
  model::Gpt<float> other([] {
    model::GptConfig c = tiny(model::Position::alibi);
    c.vocab_size = 12;
    return c;
  }());
  EXPECT_ERROR_CONTAINS(evaluate_lengths(other, shard, o), "vocabulary");
}

}  // namespace
}  // namespace slope::train::testing
