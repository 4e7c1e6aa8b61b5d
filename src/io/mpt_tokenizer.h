// slope's tokenizers in the forms the MPT clients read (io/mpt.h), and back.
//
// A char tokenizer (data/tokenizer.h: id 0 <unk>, then one id per code point) becomes
//   - for Hugging Face: a tokenizer.json of the `tokenizers` library — WordLevel model over the
//     characters, unk_token "<unk>", a Split pre-tokenizer on the regex [\s\S] (every code
//     point its own piece; Oniguruma's "." would skip newlines) and the Fuse decoder (pieces
//     joined without spaces) — plus tokenizer_config.json naming PreTrainedTokenizerFast.
//     AutoTokenizer gives slope's ids for every text; only <unk> decodes differently (HF:
//     "<unk>", slope: U+FFFD).
//   - for llama.cpp: tokenizer.ggml.model "llama" (its SentencePiece-style tokenizer) with one
//     token per character, ' ' written as U+2581 '▁' (llama.cpp escapes spaces so before
//     lookup), no merges to make (two characters never form a token), no space prefix, no BOS.
//     <unk> is id 0 and also the BOS/EOS id, so that generation stops only on <unk>.
// Other tokenizer kinds are refused with one line saying which kinds export.
#pragma once

#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/tokenizer.h"
#include "io/gguf.h"

namespace slope::io {

// tokenizer.json and tokenizer_config.json of `tokenizer` (throws slope::Error for a kind that
// does not export).
nlohmann::ordered_json hf_tokenizer_json(const data::Tokenizer& tokenizer);
nlohmann::ordered_json hf_tokenizer_config_json(const data::Tokenizer& tokenizer);

// The tokenizer.ggml.* keys of `tokenizer` (throws slope::Error for a kind that does not
// export, or for a char vocabulary that llama.cpp cannot hold: one containing '▁').
std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(
    const data::Tokenizer& tokenizer);

// The tokenizer that a tokenizer.json / GGUF file written above describes; null when the file
// holds another kind of tokenizer (slope cannot rebuild it: the caller says so).
std::unique_ptr<data::Tokenizer> tokenizer_from_hf_json(const nlohmann::json& j,
                                                        const std::string& where);
std::unique_ptr<data::Tokenizer> tokenizer_from_gguf(const GgufReader& gguf);

}  // namespace slope::io
