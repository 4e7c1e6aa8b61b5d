// GPT checkpoints: config.json, a round trip through model.safetensors, and every mismatch a
// user can run into, each named.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "common/temp_files.h"
#include "io/gpt_checkpoint.h"
#include "io/safetensors.h"
#include "model/gpt_params.h"
#include "model/gpt_testing.h"
#include "slope/attention.h"

namespace slope::io {
namespace {

namespace fs = std::filesystem;
using model::GptConfig;
using model::Position;
using testing::TempDir;
using testing::write_text;

GptConfig tiny(Position pos) {
  GptConfig c;
  c.n_layer = 2, c.n_head = 2, c.n_embd = 16, c.vocab_size = 50, c.block_size = 8;
  c.pos = pos;
  return c;
}

TEST(GptConfigJson, RoundTripAndDefaults) {
  TempDir dir;
  GptConfig c = tiny(Position::alibi_learned);
  c.dropout = 0.1, c.bias = false, c.max_bias = 4.0;
  write_gpt_config(dir / "config.json", c);
  const GptConfig back = read_gpt_config(dir / "config.json");
  EXPECT_EQ(gpt_config_to_json(back), gpt_config_to_json(c));
  EXPECT_EQ(gpt_config_to_json(c)["pos"], "alibi-learned");
  // A plain nanoGPT GPTConfig: learned positions, bias, no dropout.
  write_text(dir / "nano.json",
             R"({"block_size": 64, "vocab_size": 65, "n_layer": 2, "n_head": 2, "n_embd": 32,
                 "something_else": [1]})");
  const GptConfig nano = read_gpt_config(dir / "nano.json");
  EXPECT_EQ(nano.pos, Position::learned);
  EXPECT_TRUE(nano.bias);
  EXPECT_EQ(nano.dropout, 0.0);
  EXPECT_EQ(nano.vocab_size, 65);
}

TEST(GptConfigJson, BadFieldsAreNamed) {
  TempDir dir;
  const fs::path p = dir / "config.json";
  write_text(p, R"({"block_size": 64, "vocab_size": 65, "n_layer": 2, "n_head": 2})");
  EXPECT_ERROR_CONTAINS(read_gpt_config(p), "field \"n_embd\" is missing");
  write_text(p,
             R"({"block_size": 64, "vocab_size": "65", "n_layer": 2, "n_head": 2, "n_embd": 32})");
  EXPECT_ERROR_CONTAINS(read_gpt_config(p), "field \"vocab_size\" has the wrong type");
  write_text(p, R"({"block_size": 64, "vocab_size": 65, "n_layer": 2, "n_head": 3, "n_embd": 32})");
  EXPECT_ERROR_CONTAINS(read_gpt_config(p), "n_embd 32 is not a multiple of n_head 3");
  write_text(p, R"({"block_size": 64, "vocab_size": 65, "n_layer": 2, "n_head": 2, "n_embd": 32,
                    "pos": "rope"})");
  EXPECT_ERROR_CONTAINS(read_gpt_config(p), "unknown position scheme \"rope\"");
  write_text(p, "{not json");
  EXPECT_ERROR_CONTAINS(read_gpt_config(p), "is not valid JSON");
}

// Issue 17: config.json is read by `slope sample`, `slope eval` and `--resume`, which then lay
// out the parameter table. A huge n_embd overflowed the (4C, C) shape product (UB; UBSan
// aborted). Every size field is bounded, the table checks its sums, and numbers that are not
// integers of the field's range (1e300, 2.5, 2^64 - 1) are type errors, not undefined casts.
TEST(GptConfigJson, HugeOrNonIntegerSizesAreErrors) {
  TempDir dir;
  const fs::path p = dir / "config.json";
  write_text(p, R"({"block_size": 8, "vocab_size": 16, "n_layer": 1, "n_head": 1,
                    "n_embd": 1099511627776, "pos": "alibi"})");
  EXPECT_ERROR_CONTAINS(read_gpt_config(p), "n_embd 1099511627776 is larger than any model");
  // Each size within the bound, their products beyond 64 bits: the table says so.
  write_text(p, R"({"block_size": 1073741824, "vocab_size": 65, "n_layer": 1024,
                    "n_head": 1, "n_embd": 1073741824})");
  const GptConfig big = read_gpt_config(p);
  EXPECT_ERROR_CONTAINS(model::gpt_layout(big), "makes the arena larger than");
  write_text(p, R"({"block_size": 8, "vocab_size": 16, "n_layer": 1, "n_head": 1,
                    "n_embd": 1e400})");
  EXPECT_ERROR_CONTAINS(read_gpt_config(p), "is not valid JSON");
  // Found by fuzz_model_config (a hang: 2^30 blocks laid out one by one).
  write_text(p, R"({"block_size": 8, "vocab_size": 47, "n_layer": 1, "n_head": 2, "n_embd": 8,
                    "dropout": 0.0, "bias": true, "n_layer": 1073741824, "n_head": 1})");
  EXPECT_ERROR_CONTAINS(read_gpt_config(p), "n_layer 1073741824 is more than the 1024 blocks");
  for (const char* n_embd : {"1e300", "2.5", "18446744073709551615", "-9223372036854775808"}) {
    write_text(p, std::string(R"({"block_size": 8, "vocab_size": 16, "n_layer": 1,
                                  "n_head": 1, "n_embd": )") +
                      n_embd + "}");
    EXPECT_ERROR_CONTAINS(read_gpt_config(p), "n_embd");
  }
}

TEST(GptCheckpoint, RoundTripEverySchemeAndPrecision) {
  for (Position pos : {Position::learned, Position::sinusoidal, Position::none, Position::alibi,
                       Position::alibi_learned}) {
    TempDir dir;
    model::Gpt<float> saved(tiny(pos), 1);
    model::testing::randomize_params(saved, 2);
    save_gpt(dir / "ckpt", saved);
    model::Gpt<float> loaded(tiny(pos), 99);
    load_gpt(dir / "ckpt", loaded);
    for (int64_t i = 0; i < saved.table().size(); ++i)
      ASSERT_EQ(saved.params()[i], loaded.params()[i]) << model::position_name(pos) << " " << i;
    // The float checkpoint into a double model: the same numbers.
    model::Gpt<double> wide(tiny(pos), 99);
    load_gpt(dir / "ckpt", wide);
    for (int64_t i = 0; i < saved.table().size(); ++i)
      ASSERT_EQ(static_cast<double>(saved.params()[i]), wide.params()[i]);
    // nanoGPT's state dict: both tied keys, (V, C), no padding.
    const SafetensorsReader file(dir / "ckpt" / kModelFile);
    EXPECT_EQ(file.at("lm_head.weight").shape, (std::vector<int64_t>{50, 16}));
    EXPECT_EQ(file.read<float>("lm_head.weight"), file.read<float>("transformer.wte.weight"));
    EXPECT_EQ(file.metadata().at("format"), "pt");
    EXPECT_EQ(file.tensors().size(), saved.table().specs().size() + 1);
  }
}

TEST(GptCheckpoint, ConfigMismatchNamesTheField) {
  TempDir dir;
  const model::Gpt<float> saved(tiny(Position::alibi), 1);
  save_gpt(dir.path(), saved);
  GptConfig other = tiny(Position::alibi);
  other.n_layer = 3;
  model::Gpt<float> deeper(other);
  EXPECT_ERROR_CONTAINS(load_gpt(dir.path(), deeper), "has n_layer 2 but the model has 3");
  model::Gpt<float> learned(tiny(Position::learned));
  EXPECT_ERROR_CONTAINS(load_gpt(dir.path(), learned), "has pos alibi but the model has learned");
  other = tiny(Position::alibi);
  other.bias = false;
  model::Gpt<float> nobias(other);
  EXPECT_ERROR_CONTAINS(load_gpt(dir.path(), nobias), "has bias true but the model has false");
  // Only learned positions tie the checkpoint to its block_size; dropout never matters.
  other = tiny(Position::alibi);
  other.block_size = 1024, other.dropout = 0.2;
  model::Gpt<float> longer(other);
  load_gpt(dir.path(), longer);
  EXPECT_EQ(longer.params()[5], saved.params()[5]);
}

TEST(GptCheckpoint, WeightMismatchesAreNamedAndLeaveTheModel) {
  TempDir dir;
  const fs::path file = dir / "model.safetensors";
  const model::Gpt<float> saved(tiny(Position::learned), 1);
  model::Gpt<float> target(tiny(Position::learned), 2);
  const std::vector<float> before(target.params(), target.params() + target.table().size());
  auto unchanged = [&] {
    for (size_t i = 0; i < before.size(); ++i) ASSERT_EQ(target.params()[i], before[i]);
  };
  auto write_without = [&](const std::string& skip, const std::string& extra,
                           const std::vector<int64_t>& bad_shape = {}) {
    std::vector<TensorView> views;
    for (const model::ParamSpec& s : saved.table().specs()) {
      if (s.name == skip) continue;
      views.push_back({s.name, Dtype::F32,
                       s.name == extra && !bad_shape.empty() ? bad_shape : s.shape,
                       saved.params() + s.offset});
    }
    if (!extra.empty() && bad_shape.empty())
      views.push_back({extra, Dtype::F32, {16}, saved.params()});
    write_safetensors(file, views);
  };
  write_without("transformer.h.1.mlp.c_fc.bias", "");
  EXPECT_ERROR_CONTAINS(read_gpt_weights(file, target),
                        "has no tensor transformer.h.1.mlp.c_fc.bias (64,)");
  unchanged();
  write_without("", "transformer.h.0.attn.alibi_slopes");
  EXPECT_ERROR_CONTAINS(
      read_gpt_weights(file, target),
      "has a tensor transformer.h.0.attn.alibi_slopes that this GPT does not have");
  write_without("", "transformer.wpe.weight", {4, 16});
  EXPECT_ERROR_CONTAINS(read_gpt_weights(file, target),
                        "transformer.wpe.weight has shape (4, 16), the model expects (8, 16)");
  unchanged();
  // An untied head.
  std::vector<TensorView> views;
  for (const model::ParamSpec& s : saved.table().specs())
    views.push_back({s.name, Dtype::F32, s.shape, saved.params() + s.offset});
  std::vector<float> head(saved.params(), saved.params() + 50 * 16);
  head[7] += 1.0f;
  views.push_back({"lm_head.weight", Dtype::F32, {50, 16}, head.data()});
  write_safetensors(file, views);
  EXPECT_ERROR_CONTAINS(read_gpt_weights(file, target), "untied head");
  unchanged();
  // nanoGPT's causal-mask buffers are skipped; no lm_head is fine too.
  views.pop_back();
  const std::vector<float> mask(64, 1.0f);
  views.push_back({"transformer.h.0.attn.bias", Dtype::F32, {1, 1, 8, 8}, mask.data()});
  write_safetensors(file, views);
  read_gpt_weights(file, target);
  EXPECT_EQ(target.params()[3], saved.params()[3]);
}

}  // namespace
}  // namespace slope::io
