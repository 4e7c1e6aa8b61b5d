// Splitting one text into a training part and a validation part, deterministically.
//
//   lines  every non-empty line is a document (a name, a word): round(f·n) of the n lines,
//          chosen by a seeded shuffle, go to val; both parts keep the file's order. At least
//          one line goes to each side when f > 0 and n ≥ 2.
//   tail   running text (a book, fortunes): val is the end of the text, cut at the line
//          boundary nearest to (1 − f) of its bytes. If no line boundary leaves both parts
//          non-empty (one long line), the cut falls on the nearest character boundary.
//   auto   lines when every non-empty line is a single word (no space or tab inside), else
//          tail.
// Both parts end with '\n' when non-empty, so texts of several files never run together.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace slope::data {

enum class SplitMode { kAuto, kLines, kTail };

const char* split_mode_name(SplitMode mode);  // "auto", "lines", "tail"

struct SplitText {
  std::string train;
  std::string val;
  SplitMode mode = SplitMode::kTail;  // the mode used (never kAuto)
};

// What auto picks for `text`.
SplitMode detect_split_mode(std::string_view text);

// Splits `text` (UTF-8) with 0 ≤ val_fraction < 1; `seed` drives the lines mode's shuffle.
SplitText split_text(std::string_view text, double val_fraction, SplitMode mode, uint64_t seed);

}  // namespace slope::data
