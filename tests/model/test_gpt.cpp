// The GPT's structure and behaviour: nanoGPT's state-dict names and shapes, the decay flags,
// nanoGPT's init, lengths beyond block_size, dropout modes, accumulation and bad input.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/temp_files.h"
#include "gpt_testing.h"
#include "model/gpt.h"
#include "slope/attention.h"

namespace slope::model::testing {
namespace {

GptConfig small(Position pos) {
  GptConfig c;
  c.n_layer = 2, c.n_head = 4, c.n_embd = 64, c.vocab_size = 100, c.block_size = 16;
  c.pos = pos;
  return c;
}

using Shape = std::vector<int64_t>;

// Issue 17: shapes come from configs read from files; a product or an offset that does not fit
// int64_t is an error naming the tensor, never a wrapped size (UBSan aborted on n_embd 2^40).
TEST(ParamTable, SizesBeyond64BitsAreErrors) {
  ParamTable t;
  t.add("a", {4, 4});
  EXPECT_ERROR_CONTAINS(t.add("huge", {int64_t{1} << 40, int64_t{1} << 40}),
                        "tensor huge (1099511627776, 1099511627776) after 16 elements makes the "
                        "arena larger than 68719476736 elements");
  t.add("big", {int64_t{1} << 20, (int64_t{1} << 16) - 1});  // fits, 2^16 below the limit
  EXPECT_ERROR_CONTAINS(t.add("more", {int64_t{1} << 20}), "makes the arena larger than");
  EXPECT_ERROR_CONTAINS(t.add("reserved", {1}, std::numeric_limits<int64_t>::max()),
                        "makes the arena larger than");
  EXPECT_EQ(t.specs().size(), 2u);  // a refused tensor leaves the table as it was
  EXPECT_EQ(t.size(), 16 + (int64_t{1} << 36) - (int64_t{1} << 20));
  GptConfig c;
  c.n_embd = int64_t{1} << 40, c.n_head = 1;
  EXPECT_ERROR_CONTAINS(gpt_layout(c), "n_embd 1099511627776 is larger than any model");
  c.n_embd = 8, c.n_layer = int64_t{1} << 30;  // found by fuzz_model_config: minutes of layout
  EXPECT_ERROR_CONTAINS(gpt_layout(c), "n_layer 1073741824 is more than the 1024 blocks");
}

TEST(GptParams, NanoGptNamesShapesAndDecay) {
  const GptConfig c = small(Position::learned);
  const Gpt<float> gpt(c);
  const int64_t C = 64;
  std::vector<std::pair<std::string, Shape>> expected = {{"transformer.wte.weight", {100, C}},
                                                         {"transformer.wpe.weight", {16, C}}};
  for (int l = 0; l < 2; ++l) {
    const std::string h = "transformer.h." + std::to_string(l) + ".";
    for (auto [name, shape] :
         std::vector<std::pair<std::string, Shape>>{{"ln_1.weight", {C}},
                                                    {"ln_1.bias", {C}},
                                                    {"attn.c_attn.weight", {3 * C, C}},
                                                    {"attn.c_attn.bias", {3 * C}},
                                                    {"attn.c_proj.weight", {C, C}},
                                                    {"attn.c_proj.bias", {C}},
                                                    {"ln_2.weight", {C}},
                                                    {"ln_2.bias", {C}},
                                                    {"mlp.c_fc.weight", {4 * C, C}},
                                                    {"mlp.c_fc.bias", {4 * C}},
                                                    {"mlp.c_proj.weight", {C, 4 * C}},
                                                    {"mlp.c_proj.bias", {C}}})
      expected.push_back({h + name, shape});
  }
  expected.push_back({"transformer.ln_f.weight", {C}});
  expected.push_back({"transformer.ln_f.bias", {C}});
  ASSERT_EQ(gpt.table().specs().size(), expected.size());
  int64_t end = 0;
  for (size_t i = 0; i < expected.size(); ++i) {
    const ParamSpec& s = gpt.table().specs()[i];
    EXPECT_EQ(s.name, expected[i].first);
    EXPECT_EQ(s.shape, expected[i].second) << s.name;
    EXPECT_EQ(s.decay, s.shape.size() >= 2) << s.name;  // nanoGPT: every tensor of dim >= 2
    EXPECT_EQ(s.offset % kArenaAlign, 0) << s.name;
    EXPECT_GE(s.offset, end) << s.name << " overlaps the tensor before it";
    end = s.offset + s.size;
  }
  EXPECT_EQ(gpt.table().size(), end);
  // wte keeps Vp = 128 rows in the arena, the state dict's 100 first.
  EXPECT_EQ(c.padded_vocab_size(), 128);
  EXPECT_EQ(gpt.table().at("transformer.wte.weight").size, 128 * C);
  EXPECT_EQ(gpt.num_params(), 100 * C + 16 * C + 2 * (12 * C * C + 13 * C) + 2 * C);
}

TEST(GptParams, PositionSchemesAndBias) {
  for (Position pos : {Position::sinusoidal, Position::none, Position::alibi}) {
    const Gpt<float> gpt(small(pos));
    EXPECT_EQ(gpt.table().find("transformer.wpe.weight"), nullptr) << position_name(pos);
    for (const ParamSpec& s : gpt.table().specs())
      EXPECT_EQ(s.name.find("alibi_slopes"), std::string::npos) << s.name;
  }
  Gpt<float> learned(small(Position::alibi_learned));
  const std::vector<float> press = alibi_slopes(4);
  for (int l = 0; l < 2; ++l) {
    const std::string name = "transformer.h." + std::to_string(l) + ".attn.alibi_slopes";
    const ParamSpec& s = learned.table().at(name);
    EXPECT_EQ(s.shape, Shape{4});
    EXPECT_FALSE(s.decay) << "slopes are not weight-decayed";
    EXPECT_EQ(std::vector<float>(learned.param(name), learned.param(name) + 4), press);
  }
  GptConfig nobias = small(Position::learned);
  nobias.bias = false;
  const Gpt<float> gpt(nobias);
  for (const ParamSpec& s : gpt.table().specs()) EXPECT_FALSE(s.name.ends_with(".bias")) << s.name;
  EXPECT_EQ(gpt.table().specs().size(), 2u + 2 * 6 + 1);
}

double stddev(const float* p, int64_t n) {
  double s = 0.0, s2 = 0.0;
  for (int64_t i = 0; i < n; ++i) s += p[i], s2 += static_cast<double>(p[i]) * p[i];
  return std::sqrt(s2 / n - (s / n) * (s / n));
}

TEST(GptParams, NanoGptInit) {
  GptConfig c = small(Position::learned);
  c.n_embd = 128, c.vocab_size = 1000;
  Gpt<float> gpt(c, 7);
  auto spec = [&](const std::string& n) { return gpt.table().at(n); };
  auto sd = [&](const std::string& n) { return stddev(gpt.param(n), spec(n).numel()); };
  // 0.02 within the sampling error of >= 16k draws (< 1%, 3 sigma ~ 2%).
  EXPECT_NEAR(sd("transformer.wte.weight"), 0.02, 0.0005);
  EXPECT_NEAR(sd("transformer.wpe.weight"), 0.02, 0.0005);
  EXPECT_NEAR(sd("transformer.h.1.attn.c_attn.weight"), 0.02, 0.0005);
  EXPECT_NEAR(sd("transformer.h.1.mlp.c_fc.weight"), 0.02, 0.0005);
  EXPECT_NEAR(sd("transformer.h.0.attn.c_proj.weight"), 0.01, 0.0004);  // 0.02/√(2·2)
  EXPECT_NEAR(sd("transformer.h.0.mlp.c_proj.weight"), 0.01, 0.0002);
  for (const ParamSpec& s : gpt.table().specs()) {
    const float* p = gpt.params() + s.offset;
    if (s.name.ends_with(".bias")) {
      for (int64_t i = 0; i < s.numel(); ++i) ASSERT_EQ(p[i], 0.0f) << s.name;
    } else if (s.name.find("ln_") != std::string::npos) {
      for (int64_t i = 0; i < s.numel(); ++i) ASSERT_EQ(p[i], 1.0f) << s.name;
    }
  }
  const ParamSpec& wte = spec("transformer.wte.weight");
  for (int64_t i = wte.numel(); i < wte.size; ++i) ASSERT_EQ(gpt.params()[wte.offset + i], 0.0f);

  // One seed: the same numbers in float and double, and again; another seed: others.
  const Gpt<double> d(c, 7);
  const Gpt<float> again(c, 7), other(c, 8);
  for (int64_t i = 0; i < gpt.table().size(); ++i) {
    ASSERT_EQ(static_cast<double>(gpt.params()[i]), d.params()[i]);
    ASSERT_EQ(gpt.params()[i], again.params()[i]);
  }
  EXPECT_NE(gpt.params()[0], other.params()[0]);
}

TEST(Gpt, BadConfigNamesTheField) {
  GptConfig c = small(Position::alibi);
  c.n_embd = 66;
  EXPECT_ERROR_CONTAINS(Gpt<float>{c}, "n_embd 66 is not a multiple of n_head 4");
  c = small(Position::alibi);
  c.dropout = 1.0;
  EXPECT_ERROR_CONTAINS(Gpt<float>{c}, "dropout");
  c = small(Position::alibi);
  c.n_layer = 0;
  EXPECT_ERROR_CONTAINS(Gpt<float>{c}, "n_layer");
  EXPECT_ERROR_CONTAINS(parse_position("rope"), "alibi-learned");
  EXPECT_EQ(parse_position("alibi-learned"), Position::alibi_learned);
  EXPECT_EQ(parse_position("alibi_learned"), Position::alibi_learned);
}

TEST(Gpt, LengthBeyondBlockSize) {
  const int64_t T = 40;  // block_size 16
  const Batch batch = make_batch(1, T, 100, 1);
  Gpt<float> learned(small(Position::learned));
  EXPECT_ERROR_CONTAINS(learned.forward(batch.idx.data(), batch.targets.data(), 1, T),
                        "crop the input");
  for (Position pos :
       {Position::sinusoidal, Position::none, Position::alibi, Position::alibi_learned}) {
    Gpt<float> gpt(small(pos));
    const float loss = gpt.forward(batch.idx.data(), batch.targets.data(), 1, T);
    EXPECT_TRUE(std::isfinite(loss)) << position_name(pos);
    // Causal: the first 16 positions do not see the rest, so a 16-token run gives the same
    // logits there (sinusoidal: the table's rows do not depend on T).
    const std::vector<float> first(gpt.logits(), gpt.logits() + 16 * 128);
    gpt.forward(batch.idx.data(), nullptr, 1, 16);
    for (int64_t i = 0; i < 16 * 128; ++i)
      ASSERT_NEAR(gpt.logits()[i], first[static_cast<size_t>(i)], 1e-5) << position_name(pos);
  }
}

TEST(Gpt, ForwardWithoutTargetsAndLogitPadding) {
  Gpt<float> gpt(small(Position::alibi));
  const Batch batch = make_batch(2, 7, 100, 2);
  EXPECT_ERROR_CONTAINS(gpt.logits(), "no forward");
  EXPECT_TRUE(std::isnan(gpt.forward(batch.idx.data(), nullptr, 2, 7)));
  EXPECT_ERROR_CONTAINS(gpt.backward(), "targets");
  EXPECT_EQ(gpt.batch_size(), 2);
  EXPECT_EQ(gpt.seq_len(), 7);
  for (int64_t bt = 0; bt < 14; ++bt)
    for (int64_t v = 100; v < 128; ++v) ASSERT_EQ(gpt.logits()[bt * 128 + v], 0.0f);
}

TEST(Gpt, BadTokensAndTargets) {
  Gpt<float> gpt(small(Position::alibi));
  Batch batch = make_batch(1, 4, 100, 3);
  batch.idx[2] = 100;
  EXPECT_ERROR_CONTAINS(gpt.forward(batch.idx.data(), batch.targets.data(), 1, 4),
                        "outside the vocabulary");
  batch = make_batch(1, 4, 100, 3);
  batch.targets[1] = 120;  // a padding column is not a class
  EXPECT_ERROR_CONTAINS(gpt.forward(batch.idx.data(), batch.targets.data(), 1, 4), "target 120");
  EXPECT_ERROR_CONTAINS(gpt.backward(), "targets");
}

TEST(Gpt, BackwardAccumulates) {
  Gpt<double> gpt(small(Position::alibi_learned));
  randomize_params(gpt, 1);
  const Batch batch = make_batch(2, 6, 100, 4);
  gpt.forward(batch.idx.data(), batch.targets.data(), 2, 6);
  gpt.zero_grad();
  gpt.backward();
  const std::vector<double> once(gpt.grads(), gpt.grads() + gpt.table().size());
  gpt.backward();
  for (size_t i = 0; i < once.size(); ++i)
    ASSERT_NEAR(gpt.grads()[i], 2 * once[i], 1e-12 * (1 + std::abs(once[i]))) << i;
  gpt.zero_grad();
  for (int64_t i = 0; i < gpt.table().size(); ++i) ASSERT_EQ(gpt.grads()[i], 0.0);
}

TEST(Gpt, ActivationArenaFollowsTheBatch) {
  Gpt<float> gpt(small(Position::alibi));
  const Batch big = make_batch(3, 9, 100, 5), smaller = make_batch(1, 4, 100, 6);
  const float a = gpt.forward(smaller.idx.data(), smaller.targets.data(), 1, 4);
  gpt.forward(big.idx.data(), big.targets.data(), 3, 9);
  gpt.backward();
  EXPECT_EQ(gpt.forward(smaller.idx.data(), smaller.targets.data(), 1, 4), a);
}

TEST(Gpt, DropoutOnlyWhenTraining) {
  GptConfig c = small(Position::alibi);
  c.dropout = 0.3;
  Gpt<float> gpt(c, 1);
  GptConfig c0 = c;
  c0.dropout = 0.0;
  Gpt<float> plain(c0, 1);
  const Batch batch = make_batch(2, 8, 100, 7);
  const float eval = gpt.forward(batch.idx.data(), batch.targets.data(), 2, 8);
  EXPECT_EQ(eval, plain.forward(batch.idx.data(), batch.targets.data(), 2, 8));
  gpt.set_training(true);
  gpt.set_dropout_seed(5);
  const float t0 = gpt.forward(batch.idx.data(), batch.targets.data(), 2, 8);
  const float t1 = gpt.forward(batch.idx.data(), batch.targets.data(), 2, 8);
  EXPECT_NE(t0, eval);
  EXPECT_NE(t0, t1) << "every training forward draws new masks";
  gpt.set_dropout_seed(5);  // replay
  EXPECT_EQ(gpt.forward(batch.idx.data(), batch.targets.data(), 2, 8), t0);
  gpt.set_training(false);
  EXPECT_EQ(gpt.forward(batch.idx.data(), batch.targets.data(), 2, 8), eval);
}

}  // namespace
}  // namespace slope::model::testing
