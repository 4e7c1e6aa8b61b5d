// The corpus splitter (data/corpus_split.h), which cuts every text `slope prepare` reads.
//
// Input: byte 0 the validation fraction (byte / 256), byte 1 the mode (auto, lines, tail),
// bytes 2..9 the seed, the rest the text. Invariants: lines mode keeps every document (the
// non-empty lines) exactly once between train and val; tail mode keeps every byte in order
// (train then val, the '\n' the splitter adds aside); both parts end with '\n' when non-empty;
// valid UTF-8 stays valid (the cut falls on a character boundary).
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "data/corpus_split.h"
#include "data/utf8.h"
#include "fuzz_common.h"
#include "slope/error.h"

namespace {

std::vector<std::string> documents(std::string_view text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string line(text.substr(pos, end - pos));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
    pos = end + 1;
  }
  return lines;
}

// The '\n'-terminated lines of a part, as they are.
std::vector<std::string> lines(std::string_view part) {
  std::vector<std::string> out;
  for (size_t pos = 0; pos < part.size();) {
    const size_t end = part.find('\n', pos);
    out.emplace_back(part.substr(pos, end - pos));
    pos = end + 1;  // every part ends with '\n'
  }
  return out;
}

std::string without_newlines(std::string s) {
  s.erase(std::remove(s.begin(), s.end(), '\n'), s.end());
  return s;
}

bool valid_utf8(std::string_view s) {
  try {
    slope::data::utf8_validate(s, "text");
    return true;
  } catch (const slope::Error&) {
    return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 10) return 0;
  const double f = data[0] / 256.0;
  const auto mode = static_cast<slope::data::SplitMode>(data[1] % 3);
  uint64_t seed;
  std::memcpy(&seed, data + 2, sizeof seed);
  const std::string_view text = slope::fuzz::as_text(data + 10, size - 10);
  slope::data::SplitText out;
  try {
    out = slope::data::split_text(text, f, mode, seed);
  } catch (const slope::Error&) {
    return 0;
  }
  FUZZ_CHECK(out.mode != slope::data::SplitMode::kAuto, "auto resolved");
  for (const std::string* part : {&out.train, &out.val})
    FUZZ_CHECK(part->empty() || part->back() == '\n', "a part does not end with a newline");
  if (out.mode == slope::data::SplitMode::kLines) {
    // Each part is its documents verbatim, one per line (a document may end in '\r' itself).
    std::vector<std::string> expected = documents(text), got = lines(out.train);
    const std::vector<std::string> val = lines(out.val);
    got.insert(got.end(), val.begin(), val.end());
    std::sort(expected.begin(), expected.end());
    std::sort(got.begin(), got.end());
    FUZZ_CHECK(got == expected, "lines mode lost or invented a document");
  } else {
    FUZZ_CHECK(without_newlines(out.train + out.val) == without_newlines(std::string(text)),
               "tail mode changed the text");
  }
  if (valid_utf8(text))
    FUZZ_CHECK(valid_utf8(out.train) && valid_utf8(out.val), "a cut inside a character");
  return 0;
}
