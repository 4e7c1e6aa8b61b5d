// UTF-8 code points: decoding with validation, encoding, and a readable name for a character.
// The char tokenizer's vocabulary is the set of code points of the training text, and every
// input file is checked to be UTF-8 before it is split or tokenized.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace slope::data {

// Decodes the code point starting at text[pos] and advances pos past it. Throws slope::Error
// naming the byte offset when the bytes there are not well-formed UTF-8 (overlong forms,
// surrogates and values above U+10FFFF included).
char32_t utf8_next(std::string_view text, size_t& pos);

// Appends the UTF-8 bytes of `cp` (a Unicode scalar value) to `out`.
void utf8_append(std::string& out, char32_t cp);

// Throws slope::Error unless `text` is well-formed UTF-8; `what` names it in the message
// ("data/raw/names.txt: not UTF-8 text: bad byte 0xff at offset 17").
void utf8_validate(std::string_view text, const std::string& what);

// True when text[pos] starts a code point (is not a continuation byte).
inline bool utf8_is_boundary(std::string_view text, size_t pos) {
  return pos >= text.size() || (static_cast<unsigned char>(text[pos]) & 0xC0) != 0x80;
}

// "'é' (U+00E9)", or "U+000A (newline)" for control characters: for error messages.
std::string describe_code_point(char32_t cp);

}  // namespace slope::data
