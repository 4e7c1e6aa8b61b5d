// A prepared directory's meta.json (data/prepare.h, data/pairs.h), as `slope train` opens
// --data: open_prepared_corpus for text, open_prepared_pairs for `--task g2p`.
//
// Before the first input, the real `slope prepare` (prepare_corpus, prepare_g2p) writes a small
// text corpus and a small dictionary into the scratch directory; each input then replaces both
// directories' meta.json. Invariants: an accepted text corpus has shards of its tokenizer's
// vocabulary, every token below it; an accepted pairs directory has a non-empty training split
// whose words encode to their source ids, with ids inside both vocabularies.
#include <string>

#include "data/pairs.h"
#include "data/prepare.h"
#include "fuzz_common.h"
#include "slope/error.h"

namespace {

namespace fs = std::filesystem;

fs::path corpus_dir() { return slope::fuzz::scratch_dir() / "corpus"; }
fs::path pairs_dir() { return slope::fuzz::scratch_dir() / "g2p"; }

void prepare_fixtures() {
  const fs::path text = slope::fuzz::write_scratch(
      "text.txt",
      "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\n"
      "Speak, speak.\nYou are all resolved rather to die than to famish?\n");
  slope::data::PrepareOptions lm;
  lm.inputs = {text};
  lm.out_dir = corpus_dir();
  lm.val_fraction = 0.2;
  slope::data::prepare_corpus(lm);
  const fs::path dict = slope::fuzz::write_scratch(
      "cmudict.txt",
      ";;; a few words\nA  AH0\nA(2)  EY1\nABLE  EY1 B AH0 L\nBAKE  B EY1 K\n"
      "CAT  K AE1 T\nDOG  D AO1 G\nEVE  IY1 V\nFISH  F IH1 SH\nGO  G OW1\n");
  slope::data::G2pPrepareOptions g2p;
  g2p.input = dict;
  g2p.out_dir = pairs_dir();
  g2p.val_fraction = 0.2;
  g2p.test_fraction = 0.2;
  slope::data::prepare_g2p(g2p);
}

void check_corpus(const slope::data::PreparedCorpus& c) {
  const uint32_t V = c.tokenizer->vocab_size();
  for (const slope::data::TokenShard* shard : {&c.train, &c.val}) {
    FUZZ_CHECK(shard->vocab_size() == V, shard->path().string());
    for (uint64_t i = 0; i < shard->size(); ++i) FUZZ_CHECK((*shard)[i] < V, "token >= V");
  }
}

void check_pairs(const slope::data::PreparedPairs& p) {
  FUZZ_CHECK(!p.train.empty(), "empty training split accepted");
  for (const auto* split : {&p.train, &p.val, &p.test}) {
    for (const slope::data::PairExample& x : *split) {
      FUZZ_CHECK(slope::data::encode_word(p.src_vocab, x.word) == x.src, x.word);
      for (const int32_t id : x.src) FUZZ_CHECK(id >= 0 && id < p.src_vocab.size(), x.word);
      for (const auto& pron : x.prons)
        for (const int32_t id : pron)
          FUZZ_CHECK(id > slope::data::kEos && id < p.tgt_vocab.size(), x.word);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  prepare_fixtures();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view meta = slope::fuzz::as_text(data, size);
  slope::fuzz::write_scratch("corpus/meta.json", meta);
  slope::fuzz::write_scratch("g2p/meta.json", meta);
  try {
    check_corpus(slope::data::open_prepared_corpus(corpus_dir()));
  } catch (const slope::Error&) {
  }
  try {
    check_pairs(slope::data::open_prepared_pairs(pairs_dir()));
  } catch (const slope::Error&) {
  }
  return 0;
}
