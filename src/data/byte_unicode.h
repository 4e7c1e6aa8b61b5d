// GPT-2's byte ↔ unicode map (bytes_to_unicode() of openai/gpt-2's encoder.py): byte-level BPE
// works on bytes but writes its vocabulary as text, so every byte stands for a printable code
// point. The 188 printable bytes ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves; the other
// 68 (controls, space, DEL, the C1 range, NBSP and soft hyphen) become U+0100, U+0101, ... in
// byte order: space is 'Ġ' (U+0120), '\n' is 'Ċ' (U+010A). vocab.json, merges.txt and Hugging
// Face's tokenizer.json all spell tokens in these code points.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace slope::data {

// The code point that stands for each byte (256,), all distinct.
const std::array<char32_t, 256>& byte_to_unicode();

// The byte a code point stands for, or nullopt when it stands for none.
std::optional<uint8_t> unicode_to_byte(char32_t cp);

// The bytes of the table's order: GPT-2's first 256 vocabulary ids are the byte tokens in this
// order ('!' is id 0, the printable bytes first, then the 68 remapped ones).
const std::array<uint8_t, 256>& byte_order();

// Raw bytes → their stand-in text (UTF-8 of the mapped code points), appended to `out`.
void bytes_to_token_text(std::string_view bytes, std::string& out);

// Stand-in text → raw bytes; nullopt when the text is not UTF-8 or holds a code point that
// stands for no byte (a special token's text such as "<|endoftext|>" is plain ASCII and maps).
std::optional<std::string> token_text_to_bytes(std::string_view text);

}  // namespace slope::data
