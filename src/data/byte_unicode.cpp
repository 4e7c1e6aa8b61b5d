// GPT-2's byte ↔ unicode map (see byte_unicode.h).
#include "data/byte_unicode.h"

#include "data/utf8.h"

namespace slope::data {
namespace {

constexpr bool is_printable_byte(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Tables {
  std::array<char32_t, 256> to_unicode{};
  std::array<uint8_t, 256> order{};
  std::array<uint8_t, 68> remapped{};  // the byte U+0100 + n stands for
  Tables() {
    int n = 0, k = 0;
    for (int b = 0; b < 256; ++b)
      if (is_printable_byte(b)) order[k++] = static_cast<uint8_t>(b);
    for (int b = 0; b < 256; ++b) {
      if (is_printable_byte(b)) {
        to_unicode[b] = static_cast<char32_t>(b);
      } else {
        remapped[n] = static_cast<uint8_t>(b);
        to_unicode[b] = static_cast<char32_t>(256 + n++);
        order[k++] = static_cast<uint8_t>(b);
      }
    }
  }
};

const Tables& tables() {
  static const Tables t;
  return t;
}

}  // namespace

const std::array<char32_t, 256>& byte_to_unicode() { return tables().to_unicode; }
const std::array<uint8_t, 256>& byte_order() { return tables().order; }

std::optional<uint8_t> unicode_to_byte(char32_t cp) {
  if (cp < 256) {
    if (is_printable_byte(static_cast<int>(cp))) return static_cast<uint8_t>(cp);
    return std::nullopt;
  }
  if (cp >= 256 + tables().remapped.size()) return std::nullopt;
  return tables().remapped[cp - 256];
}

void bytes_to_token_text(std::string_view bytes, std::string& out) {
  const auto& map = byte_to_unicode();
  for (char c : bytes) utf8_append(out, map[static_cast<uint8_t>(c)]);
}

std::optional<std::string> token_text_to_bytes(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  while (pos < text.size()) {
    char32_t cp;
    try {
      cp = utf8_next(text, pos);
    } catch (...) {
      return std::nullopt;
    }
    const std::optional<uint8_t> b = unicode_to_byte(cp);
    if (!b) return std::nullopt;
    out += static_cast<char>(*b);
  }
  return out;
}

}  // namespace slope::data
