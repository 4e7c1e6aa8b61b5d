#include "data/corpus_split.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "data/random.h"
#include "data/utf8.h"
#include "slope/error.h"

namespace slope::data {
namespace {

void end_with_newline(std::string& s) {
  if (!s.empty() && s.back() != '\n') s += '\n';
}

// Non-empty lines, without their '\n' (and a '\r' before it, for files from Windows).
std::vector<std::string_view> documents(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (!line.empty()) lines.push_back(line);
    pos = end + 1;
  }
  return lines;
}

SplitText split_lines(std::string_view text, double f, uint64_t seed) {
  const std::vector<std::string_view> docs = documents(text);
  const size_t n = docs.size();
  size_t n_val = static_cast<size_t>(std::llround(f * static_cast<double>(n)));
  if (f > 0 && n >= 2) n_val = std::clamp<size_t>(n_val, 1, n - 1);
  // Fisher–Yates with platform-independent draws; the first n_val indices go to val.
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::mt19937_64 rng(splitmix64(seed));
  for (size_t i = n; i > 1; --i) std::swap(order[i - 1], order[uniform_below(rng, i)]);
  std::vector<char> is_val(n, 0);
  for (size_t i = 0; i < n_val; ++i) is_val[order[i]] = 1;
  SplitText out;
  out.mode = SplitMode::kLines;
  for (size_t i = 0; i < n; ++i) {
    std::string& dst = is_val[i] ? out.val : out.train;
    dst.append(docs[i]);
    dst += '\n';
  }
  return out;
}

SplitText split_tail(std::string_view text, double f) {
  const size_t size = text.size();
  size_t cut = size;
  if (f > 0 && size > 0) {
    const auto target = static_cast<size_t>(std::llround((1.0 - f) * static_cast<double>(size)));
    // Line boundaries are the positions just after a '\n'; the nearest on each side of target
    // that leaves both parts non-empty.
    size_t before = 0, after = size;
    const size_t b = target == 0 ? std::string_view::npos : text.rfind('\n', target - 1);
    if (b != std::string_view::npos && b + 1 < size) before = b + 1;
    const size_t a = text.find('\n', target);
    if (a != std::string_view::npos && a + 1 < size) after = a + 1;
    const bool has_before = before > 0, has_after = after < size;
    if (has_before && has_after) {
      cut = (target - before <= after - target) ? before : after;
    } else if (has_before) {
      cut = before;
    } else if (has_after) {
      cut = after;
    } else {
      // One line: cut inside it, at the character boundary nearest to target.
      cut = std::clamp<size_t>(target, 1, size - 1);
      while (cut > 0 && !utf8_is_boundary(text, cut)) --cut;
      if (cut == 0) cut = size;  // a single character: it all stays in train
    }
  }
  SplitText out;
  out.mode = SplitMode::kTail;
  out.train.assign(text.substr(0, cut));
  out.val.assign(text.substr(cut));
  end_with_newline(out.train);
  end_with_newline(out.val);
  return out;
}

}  // namespace

const char* split_mode_name(SplitMode mode) {
  switch (mode) {
    case SplitMode::kAuto:
      return "auto";
    case SplitMode::kLines:
      return "lines";
    case SplitMode::kTail:
      return "tail";
  }
  return "?";
}

SplitMode detect_split_mode(std::string_view text) {
  for (const std::string_view line : documents(text)) {
    if (line.find_first_of(" \t") != std::string_view::npos) return SplitMode::kTail;
  }
  return SplitMode::kLines;
}

SplitText split_text(std::string_view text, double val_fraction, SplitMode mode, uint64_t seed) {
  if (!(val_fraction >= 0.0 && val_fraction < 1.0)) {
    throw Error("--val-fraction must be in [0, 1), got " + std::to_string(val_fraction));
  }
  if (mode == SplitMode::kAuto) mode = detect_split_mode(text);
  return mode == SplitMode::kLines ? split_lines(text, val_fraction, seed)
                                   : split_tail(text, val_fraction);
}

}  // namespace slope::data
