// A BPE tokenizer's bpe.model (data/tokenizer.h: a serialized SentencePiece ModelProto), what
// BpeTokenizer::load hands SentencePiece once tokenizer.json's size and checksum match.
//
// Input: the model's bytes. Invariants: an accepted model encodes a fixed mix of texts (ASCII,
// accents, CJK, emoji, control characters, newlines and runs of spaces) to ids below
// vocab_size() and decodes them back exactly, as tokenizer.h promises for any UTF-8 text;
// ids outside the vocabulary are refused by decode.
#include <string>
#include <vector>

#include "data/tokenizer.h"
#include "fuzz_common.h"
#include "slope/error.h"

namespace {

const char* const kTexts[] = {
    "hello world",
    "  two  spaces\tand a tab\n\nthen lines\n",
    "Ångström, naïve café — 東京 🙂\x01\x7f",
    "",
    "\n",
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::optional<slope::data::BpeTokenizer> tok;
  try {
    tok.emplace(
        slope::data::BpeTokenizer::from_model_proto(std::string(slope::fuzz::as_text(data, size))));
  } catch (const slope::Error&) {
    return 0;
  }
  const uint32_t V = tok->vocab_size();
  for (const char* text : kTexts) {
    const std::vector<uint32_t> ids = tok->encode(text);
    for (const uint32_t id : ids) FUZZ_CHECK(id < V, "id outside the vocabulary");
    FUZZ_CHECK(tok->decode(ids) == text, std::string("round trip of \"") + text + "\"");
  }
  bool refused = false;
  try {
    tok->decode({V});
  } catch (const slope::Error&) {
    refused = true;
  }
  FUZZ_CHECK(refused, "an id outside the vocabulary was decoded");
  return 0;
}
