// Token shards (data/token_shard.h): train.bin and val.bin of a prepared corpus.
//
// Input: a whole file. Invariants: an accepted shard's tokens are all below its vocab size;
// copy() refuses a range past the end; written again with write_token_shard and reopened, it
// holds the same tokens and vocab size.
#include <vector>

#include "data/token_shard.h"
#include "fuzz_common.h"
#include "slope/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = slope::fuzz::write_scratch("in.bin", slope::fuzz::as_text(data, size));
  std::vector<uint32_t> tokens;
  uint32_t vocab = 0;
  try {
    const slope::data::TokenShard shard = slope::data::TokenShard::open(in);
    vocab = shard.vocab_size();
    tokens.resize(shard.size());
    shard.copy(0, shard.size(), tokens.data());
    bool refused = false;
    try {
      uint32_t one = 0;
      shard.copy(shard.size(), 1, &one);
    } catch (const slope::Error&) {
      refused = true;
    }
    FUZZ_CHECK(refused, "copy past the end was not refused");
  } catch (const slope::Error&) {
    return 0;
  }
  for (const uint32_t t : tokens) FUZZ_CHECK(t < vocab, "token not below the vocab size");

  const auto out = slope::fuzz::scratch_dir() / "out.bin";
  slope::data::write_token_shard(out, tokens, vocab);
  const slope::data::TokenShard back = slope::data::TokenShard::open(out);
  FUZZ_CHECK(back.vocab_size() == vocab && back.size() == tokens.size(), "size or vocab");
  std::vector<uint32_t> again(back.size());
  back.copy(0, back.size(), again.data());
  FUZZ_CHECK(again == tokens, "tokens differ after a round trip");
  return 0;
}
