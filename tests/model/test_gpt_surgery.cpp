// Position surgery (model/gpt_surgery.h): wpe dropped, every other tensor bit for bit, Press's
// slopes for alibi-learned, any length afterwards, and the refusals.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "model/gpt_surgery.h"
#include "slope/attention.h"

namespace slope::model {
namespace {

GptConfig learned_config() {
  GptConfig c;
  c.block_size = 16, c.vocab_size = 37, c.n_layer = 2, c.n_head = 3, c.n_embd = 48;
  c.pos = Position::learned;
  c.activation = nn::Activation::gelu_tanh;  // kept as it is
  return c;
}

// A trained-looking model: every parameter random, so a copy that rounds or shifts shows.
Gpt<float> spread(const GptConfig& c) {
  Gpt<float> gpt(c, 7);
  std::mt19937_64 rng(11);
  std::normal_distribution<float> n(0.0f, 0.3f);
  for (const ParamSpec& s : gpt.table().specs())
    for (int64_t i = 0; i < (s.name == "transformer.wte.weight" ? 37 * 48 : s.size); ++i)
      gpt.params()[s.offset + i] = n(rng);
  return gpt;
}

TEST(GptSurgery, DropsWpeAndKeepsEveryOtherWeightBitForBit) {
  const Gpt<float> base = spread(learned_config());
  for (Position to : {Position::alibi, Position::alibi_learned}) {
    const Gpt<float> out = position_surgery(base, to, 8.0);
    EXPECT_EQ(out.config().pos, to);
    EXPECT_EQ(out.config().block_size, 16);
    EXPECT_EQ(out.config().activation, nn::Activation::gelu_tanh);
    EXPECT_EQ(out.table().find("transformer.wpe.weight"), nullptr);
    int64_t kept = 0;
    for (const ParamSpec& s : base.table().specs()) {
      if (s.name == "transformer.wpe.weight") continue;
      const ParamSpec* o = out.table().find(s.name);
      ASSERT_NE(o, nullptr) << s.name;
      EXPECT_EQ(std::memcmp(out.params() + o->offset, base.params() + s.offset,
                            sizeof(float) * static_cast<size_t>(s.size)),
                0)
          << s.name;
      kept += s.size;
    }
    EXPECT_EQ(kept, base.table().size() - 16 * 48);
  }
}

TEST(GptSurgery, AlibiLearnedStartsAtPresssSlopes) {
  const Gpt<float> out = position_surgery(spread(learned_config()), Position::alibi_learned, 8.0);
  const std::vector<float> press = alibi_slopes(3, 8.0f);
  for (int l = 0; l < 2; ++l) {
    const ParamSpec& s = out.table().at("transformer.h." + std::to_string(l) + ".attn.alibi_slopes");
    ASSERT_EQ(s.size, 3);
    for (int h = 0; h < 3; ++h) EXPECT_EQ(out.params()[s.offset + h], press[h]) << l << " " << h;
  }
}

TEST(GptSurgery, RunsPastBlockSizeAfterwards) {
  Gpt<float> base = spread(learned_config());
  std::vector<int32_t> idx(64);
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int32_t>(i * 7 % 37);
  EXPECT_THROW(base.forward(idx.data(), nullptr, 1, 64), Error);  // wpe has 16 rows
  Gpt<float> out = position_surgery(base, Position::alibi, 8.0);
  out.forward(idx.data(), nullptr, 1, 64);  // 4x block_size
  const float* logits = out.logits();
  for (int64_t i = 0; i < 64 * out.config().padded_vocab_size(); ++i)
    ASSERT_TRUE(std::isfinite(logits[i]));
}

TEST(GptSurgery, Refusals) {
  const Gpt<float> base = spread(learned_config());
  EXPECT_THROW(position_surgery(base, Position::learned, 8.0), Error);
  EXPECT_THROW(position_surgery(base, Position::sinusoidal, 8.0), Error);
  const Gpt<float> alibi = position_surgery(base, Position::alibi, 8.0);
  EXPECT_THROW(position_surgery(alibi, Position::alibi, 8.0), Error);
  EXPECT_NO_THROW(position_surgery(alibi, Position::alibi_learned, 8.0));
  GptConfig sin = learned_config();
  sin.pos = Position::sinusoidal;
  EXPECT_THROW(position_surgery(Gpt<float>(sin), Position::alibi, 8.0), Error);
}

}  // namespace
}  // namespace slope::model
