// Pair shards (data/pairs.h): train.bin, val.bin and test.bin of `slope prepare --task g2p`.
//
// Input: a whole file, read as it is and again with its payload size and checksum made valid
// (mutation alone cannot keep an FNV-1a checksum right). Invariant: an accepted shard, written
// again with write_pair_shard and read back, holds the same words, source ids and pronunciations.
#include <cstring>
#include <string>

#include "data/pairs.h"
#include "files/read_file.h"
#include "fuzz_common.h"
#include "slope/error.h"

namespace {

// The input with its header's payload size (bytes 32..39) and checksum (40..47) made to match
// what follows the header, so that mutations reach the record parser behind the checksum;
// empty when too short to hold a header.
std::string with_valid_checksum(std::string_view in) {
  if (in.size() < slope::data::kPairShardHeaderBytes) return {};
  std::string s(in);
  const uint64_t payload = s.size() - slope::data::kPairShardHeaderBytes;
  std::memcpy(s.data() + 32, &payload, sizeof payload);
  uint64_t h = slope::files::fnv1a64(s.data(), 40);
  h = slope::files::fnv1a64(s.data() + slope::data::kPairShardHeaderBytes, payload, h);
  std::memcpy(s.data() + 40, &h, sizeof h);
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
  slope::data::PairShard shard;
  try {
    shard = slope::data::read_pair_shard(in);
  } catch (const slope::Error&) {
    return;
  }
  const auto out = slope::fuzz::scratch_dir() / "out.bin";
  slope::data::write_pair_shard(out, shard.examples, shard.src_vocab_size, shard.tgt_vocab_size);
  const slope::data::PairShard back = slope::data::read_pair_shard(out);
  FUZZ_CHECK(back.src_vocab_size == shard.src_vocab_size, "source vocab size");
  FUZZ_CHECK(back.tgt_vocab_size == shard.tgt_vocab_size, "target vocab size");
  FUZZ_CHECK(back.examples.size() == shard.examples.size(), "word count");
  for (size_t i = 0; i < shard.examples.size(); ++i) {
    const auto &a = shard.examples[i], &b = back.examples[i];
    FUZZ_CHECK(a.word == b.word && a.src == b.src && a.prons == b.prons,
               "record " + std::to_string(i) + " differs after a round trip");
  }
}

}  // namespace
