// A checkpoint's config.json (io/gpt_checkpoint.h, io/encdec_checkpoint.h), as `slope sample`,
// `slope eval` and `--resume` read it, then the model's parameter table built from it.
//
// Input: the whole config.json, read by read_gpt_config and read_encdec_config. Invariants: an
// accepted config survives to_json → from_json unchanged, and its parameter table is laid out
// inside a 64-bit arena (every tensor's elements within it, in order, none overlapping).
#include "fuzz_common.h"
#include "io/encdec_checkpoint.h"
#include "io/gpt_checkpoint.h"
#include "model/encdec_params.h"
#include "model/gpt_params.h"
#include "slope/error.h"

namespace {

void check_table(const slope::model::ParamTable& table) {
  int64_t end = 0;
  for (const slope::model::ParamSpec& s : table.specs()) {
    FUZZ_CHECK(s.offset >= end && s.size >= s.numel() && s.offset <= table.size() - s.size, s.name);
    end = s.offset + s.size;
  }
  FUZZ_CHECK(table.num_params() <= table.size(), "num_params");
}

bool same(const slope::model::GptConfig& a, const slope::model::GptConfig& b) {
  return a.block_size == b.block_size && a.vocab_size == b.vocab_size && a.n_layer == b.n_layer &&
         a.n_head == b.n_head && a.n_embd == b.n_embd && a.dropout == b.dropout &&
         a.bias == b.bias && a.pos == b.pos && a.max_bias == b.max_bias;
}

bool same(const slope::model::EncDecConfig& a, const slope::model::EncDecConfig& b) {
  return a.arch == b.arch && a.block_size == b.block_size && a.vocab_size == b.vocab_size &&
         a.tgt_vocab_size == b.tgt_vocab_size && a.n_layer == b.n_layer &&
         a.n_dec_layer == b.n_dec_layer && a.n_head == b.n_head && a.n_embd == b.n_embd &&
         a.dropout == b.dropout && a.bias == b.bias && a.pos == b.pos && a.max_bias == b.max_bias;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path =
      slope::fuzz::write_scratch("ckpt/config.json", slope::fuzz::as_text(data, size));
  try {
    const slope::model::GptConfig c = slope::io::read_gpt_config(path);
    const slope::model::GptConfig again = slope::io::gpt_config_from_json(
        nlohmann::json::parse(slope::io::gpt_config_to_json(c).dump()), "again");
    FUZZ_CHECK(same(c, again), "GPT config changed in a JSON round trip");
    check_table(slope::model::gpt_layout(c).params.table);
  } catch (const slope::Error&) {
  }
  try {
    const slope::model::EncDecConfig c = slope::io::read_encdec_config(path.parent_path());
    const slope::model::EncDecConfig again = slope::model::encdec_config_from_json(
        nlohmann::json::parse(slope::model::encdec_config_to_json(c).dump()), "again");
    FUZZ_CHECK(same(c, again), "encoder config changed in a JSON round trip");
    check_table(slope::model::encdec_layout(c).params.table);
  } catch (const slope::Error&) {
  }
  return 0;
}
