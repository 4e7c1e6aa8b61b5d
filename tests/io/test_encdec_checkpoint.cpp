// Encoder and encoder–decoder checkpoints: a round trip for every arch and position scheme (into
// float and double models), every config mismatch a user can run into, each named, and truncated
// weights refused with the model left as it was.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "common/temp_files.h"
#include "io/encdec_checkpoint.h"
#include "model/encdec_testing.h"
#include "slope/attention.h"

namespace slope::model::testing {
namespace {

using slope::testing::read_bytes;
using slope::testing::TempDir;
using slope::testing::write_text;

TEST(EncDecCheckpoint, RoundTripEveryArchAndScheme) {
  for (Arch arch : {Arch::encoder, Arch::seq2seq})
    for (Position pos : kEncoderPositions) {
      TempDir dir;
      const EncDecConfig c = small_encdec(arch, pos);
      EncDec<float> saved(c, 1);
      randomize_params(saved, 2);
      io::save_encdec(dir / "ckpt", saved);
      EXPECT_TRUE(io::is_encdec_checkpoint(dir / "ckpt"));
      EXPECT_EQ(encdec_config_to_json(io::read_encdec_config(dir / "ckpt")),
                encdec_config_to_json(c));
      EncDec<float> loaded(c, 99);
      io::load_encdec(dir / "ckpt", loaded);
      ASSERT_EQ(params_of(loaded), params_of(saved))
          << arch_name(arch) << " " << position_name(pos);
      EncDec<double> wide(c, 99);  // the float checkpoint into a double model: the same numbers
      io::load_encdec(dir / "ckpt", wide);
      const std::vector<float> p = params_of(saved);
      const std::vector<double> w = params_of(wide);
      ASSERT_TRUE(std::equal(p.begin(), p.end(), w.begin()));
    }
}

TEST(EncDecCheckpoint, MismatchedConfigIsRefused) {
  TempDir dir;
  const EncDecConfig c = small_encdec(Arch::seq2seq, Position::alibi_symmetric);
  EncDec<float> saved(c, 1);
  io::save_encdec(dir / "ckpt", saved);
  {
    EncDecConfig other = c;
    other.pos = Position::alibi_learned;
    EncDec<float> m(other, 1);
    EXPECT_ERROR_CONTAINS(io::load_encdec(dir / "ckpt", m), "pos");
  }
  {
    EncDecConfig other = c;
    other.n_dec_layer = 1;
    EncDec<float> m(other, 1);
    EXPECT_ERROR_CONTAINS(io::load_encdec(dir / "ckpt", m), "n_dec_layer");
  }
  {
    EncDec<float> m(small_encdec(Arch::encoder, Position::alibi_symmetric), 1);
    EXPECT_ERROR_CONTAINS(io::load_encdec(dir / "ckpt", m), "arch");
  }
  {
    EncDecConfig other = c;
    other.dropout = 0.3;  // a training setting, not the architecture
    EncDec<float> m(other, 1);
    io::load_encdec(dir / "ckpt", m);
    EXPECT_EQ(params_of(m), params_of(saved));
  }
  // A GPT's config.json (no "arch") is not an encoder's.
  std::filesystem::create_directories(dir / "gpt");
  write_text(dir / "gpt" / "config.json",
             R"({"block_size": 16, "vocab_size": 11, "n_layer": 2, "n_head": 4, "n_embd": 32})");
  EXPECT_FALSE(io::is_encdec_checkpoint(dir / "gpt"));
  EXPECT_ERROR_CONTAINS(io::read_encdec_config(dir / "gpt"), "is a GPT's config");
}

TEST(EncDecCheckpoint, TruncatedWeightsAreRefusedAndTheModelIsUnchanged) {
  TempDir dir;
  const EncDecConfig c = small_encdec(Arch::seq2seq, Position::alibi_learned);
  EncDec<float> saved(c, 1);
  randomize_params(saved, 2);
  io::save_encdec(dir / "ckpt", saved);
  const std::filesystem::path weights = dir / "ckpt" / "model.safetensors";
  const std::string bytes = read_bytes(weights);
  EncDec<float> m(c, 7);
  const std::vector<float> before = params_of(m);
  for (size_t keep : {bytes.size() - 4, bytes.size() / 2, size_t{100}, size_t{4}}) {
    write_text(weights, bytes.substr(0, keep));
    try {
      io::load_encdec(dir / "ckpt", m);
      ADD_FAILURE() << "a file cut to " << keep << " of " << bytes.size() << " bytes loaded";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("model.safetensors"), std::string::npos) << e.what();
    }
    ASSERT_EQ(params_of(m), before) << "cut to " << keep << " bytes";
  }
  write_text(weights, bytes);
  io::load_encdec(dir / "ckpt", m);
  EXPECT_EQ(params_of(m), params_of(saved));
}

}  // namespace
}  // namespace slope::model::testing
