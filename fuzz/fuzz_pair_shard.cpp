// Pair shards (data/pairs.h): train.bin, val.bin and test.bin of `slope prepare --task g2p`.
//
// Input: a whole file. Invariant: an accepted shard, written again with write_pair_shard and
// read back, holds the same words, source ids and pronunciations.
#include "data/pairs.h"
#include "fuzz_common.h"
#include "slope/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto in = slope::fuzz::write_scratch("in.bin", slope::fuzz::as_text(data, size));
  slope::data::PairShard shard;
  try {
    shard = slope::data::read_pair_shard(in);
  } catch (const slope::Error&) {
    return 0;
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
  return 0;
}
