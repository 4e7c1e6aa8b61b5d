// ByteLevelBpeTokenizer: loading (tokenizer.json, vocab.json + merges.txt), encoding, decoding
// and saving as Hugging Face's tokenizer.json (see byte_bpe_tokenizer.h). Training is in
// byte_bpe_train.cpp.
#include "data/byte_bpe_tokenizer.h"

#include <algorithm>
#include <limits>

#include "data/byte_unicode.h"
#include "data/gpt2_pretokenizer.h"
#include "data/utf8.h"
#include "files/atomic_file.h"
#include "files/json_file.h"
#include "files/read_file.h"
#include "slope/error.h"

namespace slope::data {
namespace fs = std::filesystem;
namespace {

// The largest vocabulary a file may describe (GPT-2: 50257; the largest byte-level BPEs in use
// have ~200k): bounds what a corrupt id makes the tables allocate.
constexpr uint64_t kMaxVocab = uint64_t{1} << 24;
// Pieces up to this many bytes are cached by encode(): natural text repeats its words, and a
// long piece (a run of 10k spaces) is rare enough not to be worth keeping.
constexpr size_t kMaxCachedPiece = 64;

uint64_t pair_key(uint32_t left, uint32_t right) { return uint64_t{left} << 32 | right; }

std::string json_type_name(const nlohmann::json& v) { return v.is_null() ? "null" : v.dump(); }

// An optional string option that must be null, absent or one of `allowed`.
void require_option(const nlohmann::json& obj, const char* key,
                    std::initializer_list<nlohmann::json> allowed, const std::string& where,
                    const std::string& what) {
  if (!obj.contains(key)) return;
  const nlohmann::json& v = obj[key];
  for (const nlohmann::json& a : allowed)
    if (v == a) return;
  throw Error(where + ": " + what + " \"" + key + "\" is " + json_type_name(v) +
              ", which GPT-2's byte-level BPE does not use: slope cannot give the same ids");
}

// "merges": ["Ġ t", ...] (tokenizers before 0.20) or [["Ġ", "t"], ...] (0.20 on).
std::pair<std::string, std::string> merge_parts(const nlohmann::json& m, size_t rank,
                                                const std::string& where) {
  if (m.is_string()) {
    const std::string s = m.get<std::string>();
    const size_t space = s.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 >= s.size() ||
        s.find(' ', space + 1) != std::string::npos)
      throw Error(where + ": merge " + std::to_string(rank) + " \"" + s +
                  "\" is not two tokens separated by one space");
    return {s.substr(0, space), s.substr(space + 1)};
  }
  if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string())
    return {m[0].get<std::string>(), m[1].get<std::string>()};
  throw Error(where + ": merge " + std::to_string(rank) + " is " + m.dump() +
              ", not \"left right\" or [\"left\", \"right\"]");
}

// vocab (text → id) as a table id → text, checking that the ids are 0..V-1 without holes.
std::vector<std::string> tokens_by_id(const nlohmann::json& vocab, const std::string& where) {
  if (!vocab.is_object() || vocab.empty())
    throw Error(where + ": the vocabulary is not a non-empty JSON object of token → id");
  if (vocab.size() > kMaxVocab)
    throw Error(where + ": " + std::to_string(vocab.size()) + " tokens, more than slope reads");
  std::vector<std::string> tokens(vocab.size());
  std::vector<bool> seen(vocab.size(), false);
  for (const auto& [text, v] : vocab.items()) {
    const std::optional<uint64_t> id = files::json_as<uint64_t>(v);
    if (!id || *id >= vocab.size())
      throw Error(where + ": token \"" + text + "\" has id " + v.dump() + ", but the " +
                  std::to_string(vocab.size()) + " ids must be 0.." +
                  std::to_string(vocab.size() - 1));
    if (seen[*id])
      throw Error(where + ": id " + std::to_string(*id) + " is given to two tokens (\"" +
                  tokens[*id] + "\" and \"" + text + "\")");
    seen[*id] = true;
    tokens[*id] = text;
  }
  return tokens;
}

}  // namespace

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(std::vector<std::string> tokens,
                                             std::vector<std::pair<uint32_t, uint32_t>> merges,
                                             std::vector<Special> specials, bool ignore_merges,
                                             const std::string& where)
    : tokens_(std::move(tokens)),
      merges_(std::move(merges)),
      specials_(std::move(specials)),
      ignore_merges_(ignore_merges),
      pretokenizer_(std::make_unique<Gpt2PreTokenizer>()) {
  const size_t V = tokens_.size();
  std::vector<bool> special(V, false);
  for (const Special& s : specials_) {
    if (s.text.empty()) throw Error(where + ": a special token is empty");
    utf8_validate(s.text, where + ": special token");
    if (s.id >= V) throw Error(where + ": special token \"" + s.text + "\" has no id in range");
    special[s.id] = true;
  }
  ids_.reserve(V);
  token_bytes_.resize(V);
  for (uint32_t id = 0; id < V; ++id) {
    if (!ids_.emplace(tokens_[id], id).second)
      throw Error(where + ": token \"" + tokens_[id] + "\" appears twice");
    if (special[id]) {
      token_bytes_[id] = tokens_[id];
      continue;
    }
    std::optional<std::string> bytes = token_text_to_bytes(tokens_[id]);
    if (!bytes || bytes->empty())
      throw Error(where + ": token " + std::to_string(id) + " \"" + tokens_[id] +
                  "\" is not spelled in GPT-2's byte-level alphabet (is this a byte-level BPE?)");
    token_bytes_[id] = std::move(*bytes);
  }
  // Each byte must have its one-byte token, or some text cannot be encoded.
  byte_ids_.assign(256, 0);
  const auto& map = byte_to_unicode();
  for (int b = 0; b < 256; ++b) {
    std::string text;
    utf8_append(text, map[b]);
    const auto it = ids_.find(text);
    if (it == ids_.end() || special[it->second])
      throw Error(where + ": the vocabulary has no token for byte 0x" +
                  files::hex64(static_cast<uint64_t>(b)).substr(14) + " (\"" + text +
                  "\"): not a byte-level BPE, some text could not be encoded");
    byte_ids_[b] = it->second;
  }
  merge_of_.reserve(merges_.size());
  for (uint32_t rank = 0; rank < merges_.size(); ++rank) {
    const auto [l, r] = merges_[rank];
    const auto it = ids_.find(tokens_[l] + tokens_[r]);
    if (it == ids_.end())
      throw Error(where + ": merge " + std::to_string(rank) + " \"" + tokens_[l] + " " +
                  tokens_[r] + "\" makes a token that is not in the vocabulary");
    // A repeated pair keeps its first (lowest) rank, as tokenizers does.
    merge_of_.emplace(pair_key(l, r), std::make_pair(rank, it->second));
  }
}

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept = default;
ByteLevelBpeTokenizer& ByteLevelBpeTokenizer::operator=(ByteLevelBpeTokenizer&&) noexcept = default;
ByteLevelBpeTokenizer::~ByteLevelBpeTokenizer() = default;

bool ByteLevelBpeTokenizer::is_hf_tokenizer_json(const nlohmann::json& j) {
  return j.is_object() && !j.contains("format") && j.contains("model") && j["model"].is_object();
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_vocab_merges(const nlohmann::json& vocab,
                                                               std::string_view merges_text,
                                                               const std::string& where) {
  std::vector<std::string> tokens = tokens_by_id(vocab, where + " (vocab.json)");
  std::vector<std::pair<uint32_t, uint32_t>> merges;
  size_t pos = 0, line_no = 0;
  while (pos < merges_text.size()) {
    size_t end = merges_text.find('\n', pos);
    if (end == std::string_view::npos) end = merges_text.size();
    std::string_view line = merges_text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const std::string what = where + " (merges.txt line " + std::to_string(line_no) + ")";
    const auto [l, r] = merge_parts(std::string(line), merges.size(), what);
    const auto li = vocab.find(l), ri = vocab.find(r);
    if (li == vocab.end() || ri == vocab.end())
      throw Error(what + ": \"" + (li == vocab.end() ? l : r) + "\" is not in vocab.json");
    merges.emplace_back(li->get<uint32_t>(), ri->get<uint32_t>());
  }
  std::vector<Special> specials;
  if (const auto it = vocab.find(kEndOfText); it != vocab.end())
    specials.push_back({kEndOfText, it->get<uint32_t>()});
  return ByteLevelBpeTokenizer(std::move(tokens), std::move(merges), std::move(specials), false,
                               where);
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::from_hf_json(const nlohmann::json& j,
                                                          const std::string& where) {
  if (!is_hf_tokenizer_json(j))
    throw Error(where + ": not a Hugging Face tokenizer.json (no \"model\" object)");
  const nlohmann::json& model = j["model"];
  if (model.contains("type") && model["type"] != "BPE")
    throw Error(where + ": the model is " + model["type"].dump() +
                ", not BPE: slope reads byte-level BPE tokenizers (GPT-2's kind)");
  const std::string unsupported = "the tokenizer's";
  require_option(j, "normalizer", {nullptr}, where, unsupported);
  if (!j.contains("pre_tokenizer") || !j["pre_tokenizer"].is_object() ||
      j["pre_tokenizer"].value("type", "") != "ByteLevel")
    throw Error(where + ": the pre-tokenizer is " +
                (j.contains("pre_tokenizer") ? json_type_name(j["pre_tokenizer"]) : "missing") +
                ", not ByteLevel: slope reads GPT-2-style byte-level BPE only");
  require_option(j["pre_tokenizer"], "add_prefix_space", {false}, where, "pre-tokenizer option");
  require_option(j["pre_tokenizer"], "use_regex", {true}, where, "pre-tokenizer option");
  if (j.contains("post_processor") && !j["post_processor"].is_null() &&
      j["post_processor"].value("type", "") != "ByteLevel")
    throw Error(where + ": the post-processor " + j["post_processor"].value("type", "?") +
                " adds tokens around each text; slope encodes text as it is");
  if (j.contains("decoder") && !j["decoder"].is_null() &&
      j["decoder"].value("type", "") != "ByteLevel")
    throw Error(where + ": the decoder is " + j["decoder"].value("type", "?") +
                ", not ByteLevel: decoding would differ");
  const std::string bpe = "BPE option";
  require_option(model, "dropout", {nullptr}, where, bpe);
  require_option(model, "continuing_subword_prefix", {nullptr, ""}, where, bpe);
  require_option(model, "end_of_word_suffix", {nullptr, ""}, where, bpe);
  require_option(model, "byte_fallback", {false}, where, bpe);
  require_option(model, "ignore_merges", {false, true}, where, bpe);
  const bool ignore_merges = model.value("ignore_merges", false);
  if (!model.contains("vocab") || !model.contains("merges") || !model["merges"].is_array())
    throw Error(where + ": the BPE model needs \"vocab\" and \"merges\"");

  // The model's vocabulary, then added tokens: those with new ids extend it.
  nlohmann::json vocab = model["vocab"];
  if (!vocab.is_object()) throw Error(where + ": \"model.vocab\" is not an object");
  std::vector<Special> specials;
  if (j.contains("added_tokens") && !j["added_tokens"].is_null()) {
    if (!j["added_tokens"].is_array()) throw Error(where + ": \"added_tokens\" is not a list");
    for (const nlohmann::json& a : j["added_tokens"]) {
      const std::string what = where + ": added token " + a.dump();
      const auto content = files::json_field<std::string>(a, "content", what);
      const auto id = files::json_field<uint32_t>(a, "id", what);
      for (const char* flag : {"single_word", "lstrip", "rstrip"})
        if (a.value(flag, false))
          throw Error(what + " sets \"" + std::string(flag) +
                      "\", which slope does not implement: the ids could differ");
      const auto it = vocab.find(content);
      if (it != vocab.end() && *it != id)
        throw Error(what + " has id " + std::to_string(id) + " but the vocabulary gives it " +
                    it->dump());
      vocab[content] = id;
      specials.push_back({content, id});
    }
  }
  std::vector<std::string> tokens = tokens_by_id(vocab, where);
  std::vector<std::pair<uint32_t, uint32_t>> merges;
  merges.reserve(model["merges"].size());
  for (const nlohmann::json& m : model["merges"]) {
    const auto [l, r] = merge_parts(m, merges.size(), where);
    const auto li = vocab.find(l), ri = vocab.find(r);
    if (li == vocab.end() || ri == vocab.end())
      throw Error(where + ": merge " + std::to_string(merges.size()) + ": \"" +
                  (li == vocab.end() ? l : r) + "\" is not in the vocabulary");
    merges.emplace_back(li->get<uint32_t>(), ri->get<uint32_t>());
  }
  return ByteLevelBpeTokenizer(std::move(tokens), std::move(merges), std::move(specials),
                               ignore_merges, where);
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::load(const fs::path& dir) {
  const fs::path hf = dir / kTokenizerMetaFile;
  std::error_code ec;
  if (fs::exists(hf, ec)) return from_hf_json(files::read_json_file(hf), hf.string());
  const fs::path vocab = dir / kHfVocabFile, merges = dir / kHfMergesFile;
  if (!fs::exists(vocab, ec) || !fs::exists(merges, ec))
    throw Error(dir.string() +
                " holds neither tokenizer.json nor vocab.json + merges.txt: give "
                "the directory of a GPT-2 tokenizer (save_pretrained writes both)");
  return from_vocab_merges(files::read_json_file(vocab), files::read_file(merges), dir.string());
}

std::optional<uint32_t> ByteLevelBpeTokenizer::token_id(std::string_view token) const {
  const auto it = ids_.find(std::string(token));
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

void ByteLevelBpeTokenizer::encode_piece(std::string_view piece, std::vector<uint32_t>& ids) const {
  if (ignore_merges_) {
    std::string text;
    bytes_to_token_text(piece, text);
    if (const auto it = ids_.find(text); it != ids_.end()) {
      ids.push_back(it->second);
      return;
    }
  }
  std::vector<uint32_t> sym(piece.size());  // (n,) the piece's tokens, merged in place
  for (size_t i = 0; i < piece.size(); ++i) sym[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
  while (sym.size() > 1) {
    uint32_t best_rank = std::numeric_limits<uint32_t>::max(), left = 0, right = 0, merged = 0;
    for (size_t i = 0; i + 1 < sym.size(); ++i) {
      const auto it = merge_of_.find(pair_key(sym[i], sym[i + 1]));
      if (it != merge_of_.end() && it->second.first < best_rank)
        best_rank = it->second.first, left = sym[i], right = sym[i + 1], merged = it->second.second;
    }
    if (best_rank == std::numeric_limits<uint32_t>::max()) break;
    // Every occurrence of the pair, left to right without overlap (encoder.py's bpe()).
    size_t out = 0;
    for (size_t i = 0; i < sym.size();) {
      if (i + 1 < sym.size() && sym[i] == left && sym[i + 1] == right) {
        sym[out++] = merged, i += 2;
      } else {
        sym[out++] = sym[i++];
      }
    }
    sym.resize(out);
  }
  ids.insert(ids.end(), sym.begin(), sym.end());
}

std::vector<uint32_t> ByteLevelBpeTokenizer::encode(std::string_view text) const {
  utf8_validate(text, "text to encode");
  std::vector<uint32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  std::unordered_map<std::string_view, std::vector<uint32_t>> cache;  // piece → its ids
  std::vector<std::string_view> pieces;
  std::vector<uint32_t> piece_ids;
  // next[k]: where specials_[k] next occurs at or after pos (npos: nowhere), found once each.
  std::vector<size_t> next(specials_.size());
  for (size_t k = 0; k < specials_.size(); ++k) next[k] = text.find(specials_[k].text);
  size_t pos = 0;
  while (pos <= text.size()) {
    // The next special token: leftmost, then longest.
    size_t at = text.size();
    const Special* found = nullptr;
    for (size_t k = 0; k < specials_.size(); ++k) {
      const Special& s = specials_[k];
      if (next[k] != std::string_view::npos && next[k] < pos) next[k] = text.find(s.text, pos);
      const size_t p = next[k];
      if (p < at || (p == at && found && s.text.size() > found->text.size())) at = p, found = &s;
    }
    pieces.clear();
    pretokenizer_->split(text.substr(pos, at - pos), pieces);
    for (std::string_view piece : pieces) {
      if (piece.size() > kMaxCachedPiece) {
        encode_piece(piece, ids);
        continue;
      }
      auto [it, fresh] = cache.try_emplace(piece);
      if (fresh) {
        piece_ids.clear();
        encode_piece(piece, piece_ids);
        it->second = piece_ids;
      }
      ids.insert(ids.end(), it->second.begin(), it->second.end());
    }
    if (!found) break;
    ids.push_back(found->id);
    pos = at + found->text.size();
  }
  return ids;
}

std::string ByteLevelBpeTokenizer::decode(const std::vector<uint32_t>& ids) const {
  std::string text;
  for (uint32_t id : ids) {
    if (id >= vocab_size())
      throw Error("token id " + std::to_string(id) +
                  " is outside the byte-level BPE vocabulary of " + std::to_string(vocab_size()));
    text += token_bytes_[id];
  }
  return text;
}

nlohmann::json ByteLevelBpeTokenizer::to_hf_json() const {
  // std::map-backed objects (keys sorted): tokenizers reads the vocabulary into a hash map, and
  // nlohmann's insertion-ordered object would cost O(V²) to build for GPT-2's 50257 tokens.
  nlohmann::json vocab = nlohmann::json::object();
  for (uint32_t id = 0; id < vocab_size(); ++id) vocab[tokens_[id]] = id;
  nlohmann::json merges = nlohmann::json::array();
  for (const auto& [l, r] : merges_) merges.push_back(tokens_[l] + " " + tokens_[r]);
  nlohmann::json added = nlohmann::json::array();
  for (const Special& s : specials_)
    added.push_back({{"id", s.id},
                     {"content", s.text},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  const auto byte_level = [](bool add_prefix_space, bool trim_offsets) {
    return nlohmann::json{{"type", "ByteLevel"},
                          {"add_prefix_space", add_prefix_space},
                          {"trim_offsets", trim_offsets},
                          {"use_regex", true}};
  };
  nlohmann::json model;
  model["type"] = "BPE";
  model["dropout"] = nullptr;
  model["unk_token"] = nullptr;
  model["continuing_subword_prefix"] = nullptr;
  model["end_of_word_suffix"] = nullptr;
  model["fuse_unk"] = false;
  model["byte_fallback"] = false;
  if (ignore_merges_) model["ignore_merges"] = true;  // older tokenizers do not know the key
  model["vocab"] = std::move(vocab);
  model["merges"] = std::move(merges);
  nlohmann::json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = std::move(added);
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = byte_level(false, true);  // GPT-2's own tokenizer.json has these values
  j["post_processor"] = byte_level(true, false);
  j["decoder"] = byte_level(true, true);
  j["model"] = std::move(model);
  return j;
}

void ByteLevelBpeTokenizer::save(const fs::path& dir) const {
  fs::create_directories(dir);
  files::write_file_atomic(dir / kTokenizerMetaFile, to_hf_json().dump(2) + "\n");
}

}  // namespace slope::data
