// CharTokenizer: one id per code point of the training text, id 0 for everything else.
#include <algorithm>
#include <set>

#include "data/tokenizer.h"
#include "data/utf8.h"
#include "files/json_file.h"
#include "slope/error.h"

namespace slope::data {
namespace fs = std::filesystem;

CharTokenizer::CharTokenizer(std::vector<char32_t> code_points)
    : code_points_(std::move(code_points)), ascii_ids_(128, kUnkId) {
  for (size_t i = 0; i < code_points_.size(); ++i) {
    if (code_points_[i] < 128) ascii_ids_[code_points_[i]] = static_cast<uint32_t>(i) + 1;
  }
}

CharTokenizer CharTokenizer::train(std::string_view training_text) {
  if (training_text.empty()) throw Error("cannot build a char vocabulary from empty text");
  std::set<char32_t> seen;
  for (size_t pos = 0; pos < training_text.size();) seen.insert(utf8_next(training_text, pos));
  return CharTokenizer(std::vector<char32_t>(seen.begin(), seen.end()));
}

uint32_t CharTokenizer::id_of(char32_t cp) const {
  if (cp < 128) return ascii_ids_[cp];
  const auto it = std::lower_bound(code_points_.begin(), code_points_.end(), cp);
  if (it == code_points_.end() || *it != cp) return kUnkId;
  return static_cast<uint32_t>(it - code_points_.begin()) + 1;
}

std::vector<uint32_t> CharTokenizer::encode(std::string_view text) const {
  std::vector<uint32_t> ids;
  ids.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) ids.push_back(id_of(utf8_next(text, pos)));
  return ids;
}

std::optional<size_t> CharTokenizer::find_unknown(std::string_view text) const {
  for (size_t pos = 0; pos < text.size();) {
    const size_t start = pos;
    if (id_of(utf8_next(text, pos)) == kUnkId) return start;
  }
  return std::nullopt;
}

std::string CharTokenizer::decode(const std::vector<uint32_t>& ids) const {
  std::string text;
  text.reserve(ids.size());
  for (const uint32_t id : ids) {
    if (id >= vocab_size()) {
      throw Error("token id " + std::to_string(id) + " is outside the char vocabulary of " +
                  std::to_string(vocab_size()));
    }
    utf8_append(text, id == kUnkId ? kUnkCodePoint : code_points_[id - 1]);
  }
  return text;
}

void CharTokenizer::save(const fs::path& dir) const {
  fs::create_directories(dir);
  nlohmann::ordered_json j;
  j["format"] = "slope-tokenizer";
  j["version"] = kTokenizerFormatVersion;
  j["kind"] = kind();
  j["vocab_size"] = vocab_size();
  j["unk_id"] = kUnkId;
  // Numbers, not a string: control characters and lone combining marks stay unambiguous.
  j["code_points"] = std::vector<uint32_t>(code_points_.begin(), code_points_.end());
  files::write_json_file(dir / kTokenizerMetaFile, j);
}

CharTokenizer CharTokenizer::from_code_points(std::vector<char32_t> cps, const std::string& where) {
  for (size_t i = 0; i < cps.size(); ++i) {
    if (cps[i] > 0x10FFFF || (cps[i] >= 0xD800 && cps[i] <= 0xDFFF) ||
        (i > 0 && cps[i] <= cps[i - 1])) {
      throw Error(where + ": \"code_points\" must be ascending Unicode scalar values (entry " +
                  std::to_string(i) + " is not)");
    }
  }
  return CharTokenizer(std::move(cps));
}

CharTokenizer CharTokenizer::load(const fs::path& dir) {
  const fs::path meta_path = dir / kTokenizerMetaFile;
  const nlohmann::json j = files::read_json_file(meta_path);
  files::check_json_format(j, "slope-tokenizer", kTokenizerFormatVersion, meta_path);
  if (files::json_field<std::string>(j, "kind", meta_path) != "char") {
    throw Error(meta_path.string() + ": not a char tokenizer");
  }
  const auto raw = files::json_field<std::vector<uint32_t>>(j, "code_points", meta_path);
  CharTokenizer tok = from_code_points({raw.begin(), raw.end()}, meta_path.string());
  if (files::json_field<uint32_t>(j, "vocab_size", meta_path) != tok.vocab_size()) {
    throw Error(meta_path.string() + ": \"vocab_size\" disagrees with \"code_points\"");
  }
  return tok;
}

}  // namespace slope::data
