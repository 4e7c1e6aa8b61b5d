// slope's tokenizers as Hugging Face and llama.cpp read them (see mpt_tokenizer.h).
#include "io/mpt_tokenizer.h"

#include <optional>

#include "data/utf8.h"
#include "slope/error.h"

namespace slope::io {

namespace {

constexpr char kUnk[] = "<unk>";
constexpr char32_t kSpmSpace = 0x2581;  // '▁', how SentencePiece and llama.cpp write ' '
constexpr char kEveryCodePoint[] = "[\\s\\S]";

// llama.cpp's token types (llama_token_type).
constexpr int32_t kTokenNormal = 1, kTokenUnknown = 2;

const data::CharTokenizer& char_tokenizer(const data::Tokenizer& tokenizer) {
  const auto* c = dynamic_cast<const data::CharTokenizer*>(&tokenizer);
  if (!c)
    throw Error("the checkpoint's tokenizer is of kind \"" + tokenizer.kind() +
                "\"; MPT export writes char tokenizers (prepare the corpus with --tokenizer "
                "char)");
  return *c;
}

std::string utf8_of(char32_t cp) {
  std::string s;
  data::utf8_append(s, cp);
  return s;
}

// The one code point of `s`, or nullopt when s is not exactly one valid UTF-8 character.
std::optional<char32_t> single_code_point(const std::string& s) {
  if (s.empty()) return std::nullopt;
  try {
    size_t pos = 0;
    const char32_t cp = data::utf8_next(s, pos);
    if (pos != s.size()) return std::nullopt;
    return cp;
  } catch (const Error&) {
    return std::nullopt;
  }
}

}  // namespace

nlohmann::ordered_json hf_tokenizer_json(const data::Tokenizer& tokenizer) {
  const data::CharTokenizer& tok = char_tokenizer(tokenizer);
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  vocab[kUnk] = data::CharTokenizer::kUnkId;
  const std::vector<char32_t>& cps = tok.code_points();
  for (size_t i = 0; i < cps.size(); ++i) vocab[utf8_of(cps[i])] = i + 1;
  nlohmann::ordered_json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = nlohmann::ordered_json::array();
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = {{"type", "Split"},
                        {"pattern", {{"Regex", kEveryCodePoint}}},
                        {"behavior", "Isolated"},
                        {"invert", false}};
  j["post_processor"] = nullptr;
  j["decoder"] = {{"type", "Fuse"}};
  j["model"] = {{"type", "WordLevel"}, {"vocab", vocab}, {"unk_token", kUnk}};
  return j;
}

nlohmann::ordered_json hf_tokenizer_config_json(const data::Tokenizer& tokenizer) {
  char_tokenizer(tokenizer);  // the same refusal as tokenizer.json
  return {{"tokenizer_class", "PreTrainedTokenizerFast"},
          {"unk_token", kUnk},
          {"model_max_length", 1000000000},
          {"clean_up_tokenization_spaces", false}};
}

std::vector<std::pair<std::string, GgufValue>> gguf_tokenizer_metadata(
    const data::Tokenizer& tokenizer) {
  const data::CharTokenizer& tok = char_tokenizer(tokenizer);
  std::vector<std::string> tokens{kUnk};
  std::vector<int32_t> types{kTokenUnknown};
  for (const char32_t cp : tok.code_points()) {
    if (cp == kSpmSpace)
      throw Error(
          "the char vocabulary holds U+2581 '\u2581', which llama.cpp's tokenizer "
          "reserves for the space: a GGUF of it would tokenize differently");
    tokens.push_back(utf8_of(cp == U' ' ? kSpmSpace : cp));
    types.push_back(kTokenNormal);
  }
  const std::vector<float> scores(tokens.size(), 0.0f);
  const uint32_t unk = data::CharTokenizer::kUnkId;
  return {
      {"tokenizer.ggml.model", GgufValue::string("llama")},
      {"tokenizer.ggml.tokens", GgufValue::strings_array(std::move(tokens))},
      {"tokenizer.ggml.scores", GgufValue::f32_array(scores)},
      {"tokenizer.ggml.token_type", GgufValue::i32_array(types)},
      {"tokenizer.ggml.unknown_token_id", GgufValue::u32(unk)},
      {"tokenizer.ggml.bos_token_id", GgufValue::u32(unk)},
      {"tokenizer.ggml.eos_token_id", GgufValue::u32(unk)},
      {"tokenizer.ggml.add_bos_token", GgufValue::boolean(false)},
      {"tokenizer.ggml.add_eos_token", GgufValue::boolean(false)},
      {"tokenizer.ggml.add_space_prefix", GgufValue::boolean(false)},
  };
}

std::unique_ptr<data::Tokenizer> tokenizer_from_hf_json(const nlohmann::json& j,
                                                        const std::string& where) {
  const nlohmann::json* model = j.contains("model") ? &j["model"] : nullptr;
  if (!model || !model->is_object() || model->value("type", "") != "WordLevel" ||
      !model->contains("vocab") || !(*model)["vocab"].is_object())
    return nullptr;
  const nlohmann::json& pre = j.contains("pre_tokenizer") ? j["pre_tokenizer"] : nlohmann::json();
  if (!pre.is_object() || pre.value("type", "") != "Split" || !pre.contains("pattern") ||
      pre["pattern"].value("Regex", "") != kEveryCodePoint)
    return nullptr;
  const nlohmann::json& vocab = (*model)["vocab"];
  std::vector<char32_t> cps(vocab.size() > 0 ? vocab.size() - 1 : 0);
  std::vector<bool> seen(vocab.size(), false);
  for (const auto& [piece, id_json] : vocab.items()) {
    if (!id_json.is_number_unsigned() || id_json.get<uint64_t>() >= vocab.size()) return nullptr;
    const size_t id = id_json.get<size_t>();
    if (seen[id]) return nullptr;
    seen[id] = true;
    if (id == data::CharTokenizer::kUnkId) {
      if (piece != kUnk) return nullptr;
      continue;
    }
    const std::optional<char32_t> cp = single_code_point(piece);
    if (!cp) return nullptr;
    cps[id - 1] = *cp;
  }
  return std::make_unique<data::CharTokenizer>(
      data::CharTokenizer::from_code_points(std::move(cps), where));
}

std::unique_ptr<data::Tokenizer> tokenizer_from_gguf(const GgufReader& gguf) {
  if (!gguf.find("tokenizer.ggml.model") || gguf.get_string("tokenizer.ggml.model") != "llama")
    return nullptr;
  const std::vector<std::string>& tokens = gguf.get_strings("tokenizer.ggml.tokens");
  if (tokens.empty() || tokens[0] != kUnk) return nullptr;
  std::vector<char32_t> cps;
  for (size_t i = 1; i < tokens.size(); ++i) {
    const std::optional<char32_t> cp = single_code_point(tokens[i]);
    if (!cp) return nullptr;
    cps.push_back(*cp == kSpmSpace ? U' ' : *cp);
  }
  return std::make_unique<data::CharTokenizer>(
      data::CharTokenizer::from_code_points(std::move(cps), gguf.path().string()));
}

}  // namespace slope::io
