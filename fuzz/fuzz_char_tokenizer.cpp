// A char tokenizer's tokenizer.json (data/tokenizer.h), read by load_tokenizer as `slope
// train`, `sample` and `eval` read the tokenizer a corpus or checkpoint carries.
//
// Input: the whole tokenizer.json. Invariants: an accepted tokenizer encodes the text made of
// its whole vocabulary to ids 1..V-1 in order and decodes them back to that text; every id it
// gives is below vocab_size(); ids at or above vocab_size() are refused by decode.
#include <vector>

#include "data/tokenizer.h"
#include "fuzz_common.h"
#include "slope/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path =
      slope::fuzz::write_scratch("tok/tokenizer.json", slope::fuzz::as_text(data, size));
  std::unique_ptr<slope::data::Tokenizer> tok;
  try {
    tok = slope::data::load_tokenizer(path.parent_path());
  } catch (const slope::Error&) {
    return 0;
  }
  const uint32_t V = tok->vocab_size();
  FUZZ_CHECK(V >= 1, "empty vocabulary");
  std::vector<uint32_t> all(V - 1);
  for (uint32_t i = 1; i < V; ++i) all[i - 1] = i;
  const std::string text = tok->decode(all);
  FUZZ_CHECK(tok->encode(text) == all, "the vocabulary's own text does not encode to its ids");
  FUZZ_CHECK(tok->decode(tok->encode(text)) == text, "decode(encode(text)) != text");
  bool refused = false;
  try {
    tok->decode({V});
  } catch (const slope::Error&) {
    refused = true;
  }
  FUZZ_CHECK(refused, "an id outside the vocabulary was decoded");
  return 0;
}
