// Token shards (data/token_shard.h): train.bin and val.bin of a prepared corpus.
//
// Input: a whole file, read as it is and again with its checksum made valid (the fuzzer cannot
// keep an FNV-1a checksum right by mutation; without this it never gets past it). Invariants: an
// accepted shard's tokens are all below its vocab size; copy() refuses a range past the end;
// written again with write_token_shard and reopened, it holds the same tokens and vocab size.
#include <cstring>
#include <string>
#include <vector>

#include "data/token_shard.h"
#include "files/read_file.h"
#include "fuzz_common.h"
#include "slope/error.h"

namespace {

// The input with its header's checksum (bytes 32..39) recomputed, so that mutations of the
// header and tokens reach the checks behind the checksum; empty when too short to hold it.
std::string with_valid_checksum(std::string_view in) {
  if (in.size() < slope::data::kTokenShardHeaderBytes) return {};
  std::string s(in);
  uint64_t h = slope::files::fnv1a64(s.data(), 32);
  h = slope::files::fnv1a64(s.data() + slope::data::kTokenShardHeaderBytes,
                            s.size() - slope::data::kTokenShardHeaderBytes, h);
  std::memcpy(s.data() + 32, &h, sizeof h);
  return s;
}

void check(std::string_view bytes);

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes = slope::fuzz::as_text(data, size);
  check(bytes);
  if (const std::string fixed = with_valid_checksum(bytes); !fixed.empty()) check(fixed);
  return 0;
}

namespace {

void check(std::string_view bytes) {
  const auto in = slope::fuzz::write_scratch("in.bin", bytes);
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
    return;
  }
  for (const uint32_t t : tokens) FUZZ_CHECK(t < vocab, "token not below the vocab size");

  const auto out = slope::fuzz::scratch_dir() / "out.bin";
  slope::data::write_token_shard(out, tokens, vocab);
  const slope::data::TokenShard back = slope::data::TokenShard::open(out);
  FUZZ_CHECK(back.vocab_size() == vocab && back.size() == tokens.size(), "size or vocab");
  std::vector<uint32_t> again(back.size());
  back.copy(0, back.size(), again.data());
  FUZZ_CHECK(again == tokens, "tokens differ after a round trip");
}

}  // namespace
