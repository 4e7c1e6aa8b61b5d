#include "data/utf8.h"

#include <cstdio>

#include "slope/attention.h"

namespace slope::data {
namespace {

std::string hex_byte(unsigned char b) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", b);
  return buf;
}

[[noreturn]] void bad_utf8(std::string_view text, size_t pos) {
  throw Error("not UTF-8 text: bad byte " + hex_byte(static_cast<unsigned char>(text[pos])) +
              " at offset " + std::to_string(pos));
}

}  // namespace

char32_t utf8_next(std::string_view text, size_t& pos) {
  const size_t start = pos;
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  // Lead byte: how many continuation bytes follow, its payload bits, the smallest code point
  // that needs this many bytes (smaller ones are overlong forms).
  int extra = 0;
  char32_t cp = 0;
  char32_t min = 0;
  if ((b0 & 0xE0) == 0xC0) {
    extra = 1;
    cp = b0 & 0x1F;
    min = 0x80;
  } else if ((b0 & 0xF0) == 0xE0) {
    extra = 2;
    cp = b0 & 0x0F;
    min = 0x800;
  } else if ((b0 & 0xF8) == 0xF0) {
    extra = 3;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    bad_utf8(text, start);
  }
  for (int k = 1; k <= extra; ++k) {
    if (start + k >= text.size()) bad_utf8(text, start);
    const unsigned char b = byte(start + k);
    if ((b & 0xC0) != 0x80) bad_utf8(text, start + k);
    cp = (cp << 6) | (b & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) bad_utf8(text, start);
  pos = start + extra + 1;
  return cp;
}

void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

void utf8_validate(std::string_view text, const std::string& what) {
  try {
    for (size_t pos = 0; pos < text.size();) utf8_next(text, pos);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
}

std::string describe_code_point(char32_t cp) {
  char code[16];
  std::snprintf(code, sizeof code, "U+%04X", static_cast<unsigned>(cp));
  switch (cp) {
    case '\n':
      return std::string(code) + " (newline)";
    case '\t':
      return std::string(code) + " (tab)";
    case '\r':
      return std::string(code) + " (carriage return)";
    default:
      break;
  }
  if (cp < 0x20 || cp == 0x7F) return std::string(code) + " (control character)";
  std::string glyph = "'";
  utf8_append(glyph, cp);
  return glyph + "' (" + code + ")";
}

}  // namespace slope::data
