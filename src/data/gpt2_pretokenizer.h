// GPT-2's pre-tokenizer: the regular expression that cuts text into the pieces byte-level BPE
// merges within (openai/gpt-2's encoder.py; Hugging Face's ByteLevel pre-tokenizer):
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// Contractions, letters, digits and other symbols each with at most one leading space, and
// whitespace runs that leave their last space to the word after them. \p{L} and \p{N} are
// Unicode's general categories (PCRE2 with UTF and UCP). \s is spelled out as Unicode's
// White_Space code points, which is what Oniguruma's \s (Hugging Face `tokenizers`) matches;
// PCRE2's own \s adds U+180E (MONGOLIAN VOWEL SEPARATOR, White_Space before Unicode 6.3).
#pragma once

#include <memory>
#include <string_view>
#include <vector>

namespace slope::data {

class Gpt2PreTokenizer {
 public:
  // Compiles the pattern (JIT when PCRE2 has it). Throws slope::Error if PCRE2 refuses it.
  Gpt2PreTokenizer();
  ~Gpt2PreTokenizer();
  Gpt2PreTokenizer(const Gpt2PreTokenizer&) = delete;
  Gpt2PreTokenizer& operator=(const Gpt2PreTokenizer&) = delete;

  // Appends the pieces of `text` (valid UTF-8: callers validate) to `pieces`, in order; their
  // concatenation is `text`. Thread-safe (each call has its own match buffer).
  void split(std::string_view text, std::vector<std::string_view>& pieces) const;

  // The pattern as compiled (PCRE2 syntax).
  static const char* pattern();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slope::data
