// ByteLevelBpeTokenizer: GPT-2's byte-level BPE, the tokenizer of GPT-2, GPT-J, RoBERTa, ...
//
//   text → special tokens cut out (<|endoftext|>: leftmost, longest first, as Hugging Face's
//          added vocabulary does) → GPT-2's pre-tokenizer regex on the rest (gpt2_pretokenizer.h)
//        → each piece's bytes as byte tokens → BPE: merge the adjacent pair of lowest merge rank
//          until no ranked pair is left (openai/gpt-2's encoder.py) → ids
//   ids  → the bytes of each token (byte_unicode.h), special tokens as their text → text
//
// Every byte has a token, so any UTF-8 text encodes and decode(encode(s)) == s exactly.
//
// Files it reads (`slope prepare --tokenizer gpt2 --tokenizer-files DIR`):
//   DIR/tokenizer.json   Hugging Face `tokenizers`' format with a BPE model and the ByteLevel
//                        pre-tokenizer (GPT-2's, or what `tokenizers` trains), or
//   DIR/vocab.json + DIR/merges.txt   openai/gpt-2's encoder.json and vocab.bpe under their
//                        Hugging Face names; "<|endoftext|>", when in the vocabulary, is special.
// It saves itself as a Hugging Face tokenizer.json (what `tokenizers.Tokenizer.from_file` and
// `transformers.PreTrainedTokenizerFast(tokenizer_file=...)` load, giving the same ids); in a
// slope tokenizer directory that file is the tokenizer (load_tokenizer() recognises it).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "data/tokenizer.h"

namespace slope::data {

class Gpt2PreTokenizer;

constexpr const char* kEndOfText = "<|endoftext|>";
constexpr const char* kHfVocabFile = "vocab.json";
constexpr const char* kHfMergesFile = "merges.txt";

struct ByteBpeTrainOptions {
  uint32_t vocab_size = 4096;  // the 256 byte tokens + merges + special tokens
  std::vector<std::string> special_tokens = {kEndOfText};  // ids after the merges, in order
};

class ByteLevelBpeTokenizer final : public Tokenizer {
 public:
  // Learns vocab_size − 256 − specials merges from `training_text`: counts the pre-tokenizer's
  // pieces (special tokens cut out first), then repeatedly merges the most frequent adjacent
  // pair (ties: the pair of smaller ids). Throws slope::Error when the text runs out of pairs
  // first, naming the largest vocabulary it allows.
  static ByteLevelBpeTokenizer train(std::string_view training_text,
                                     const ByteBpeTrainOptions& options);
  // DIR/tokenizer.json, else DIR/vocab.json + DIR/merges.txt (see above).
  static ByteLevelBpeTokenizer load(const std::filesystem::path& dir);
  // A parsed Hugging Face tokenizer.json. Throws slope::Error naming `where` and what differs
  // from byte-level BPE (a normalizer, another pre-tokenizer, a post-processor that adds tokens,
  // BPE options such as a subword prefix or dropout).
  static ByteLevelBpeTokenizer from_hf_json(const nlohmann::json& j, const std::string& where);
  // vocab.json's object and merges.txt's text.
  static ByteLevelBpeTokenizer from_vocab_merges(const nlohmann::json& vocab,
                                                 std::string_view merges, const std::string& where);
  // True when tokenizer.json's JSON is Hugging Face's (a "model" object), not slope's own.
  static bool is_hf_tokenizer_json(const nlohmann::json& j);

  ByteLevelBpeTokenizer(ByteLevelBpeTokenizer&&) noexcept;
  ByteLevelBpeTokenizer& operator=(ByteLevelBpeTokenizer&&) noexcept;
  ~ByteLevelBpeTokenizer() override;

  std::string kind() const override { return "byte-bpe"; }
  uint32_t vocab_size() const override { return static_cast<uint32_t>(tokens_.size()); }
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<uint32_t>& ids) const override;
  // Writes dir/tokenizer.json in Hugging Face's format.
  void save(const std::filesystem::path& dir) const override;
  nlohmann::json to_hf_json() const;

  // The id of a token spelled in vocabulary text ("Ġthe", "<|endoftext|>"), if any.
  std::optional<uint32_t> token_id(std::string_view token) const;
  size_t num_merges() const { return merges_.size(); }

 private:
  struct Special {
    std::string text;
    uint32_t id;
  };
  ByteLevelBpeTokenizer(std::vector<std::string> tokens,
                        std::vector<std::pair<uint32_t, uint32_t>> merges,
                        std::vector<Special> specials, bool ignore_merges,
                        const std::string& where);
  // Appends the ids of one pre-tokenizer piece (raw bytes) to `ids`.
  void encode_piece(std::string_view piece, std::vector<uint32_t>& ids) const;

  std::vector<std::string> tokens_;                    // (V,) id → vocabulary text ("Ġthe")
  std::vector<std::string> token_bytes_;               // (V,) id → the bytes it decodes to
  std::unordered_map<std::string, uint32_t> ids_;      // vocabulary text → id
  std::vector<std::pair<uint32_t, uint32_t>> merges_;  // (M,) in rank order: left id, right id
  std::unordered_map<uint64_t, std::pair<uint32_t, uint32_t>> merge_of_;  // pair → (rank, id)
  std::vector<Special> specials_;
  std::vector<uint32_t> byte_ids_;  // (256,) byte → id of its one-byte token
  bool ignore_merges_ = false;      // tokenizers' option: a piece in the vocabulary is one id
  std::unique_ptr<Gpt2PreTokenizer> pretokenizer_;
};

}  // namespace slope::data
