// Tokenizers: text ↔ token ids. Two kinds, one interface:
//
//   CharTokenizer  one id per Unicode code point seen in the training text (makemore, nanoGPT's
//                  shakespeare_char). Id 0 is <unk>: a code point outside the vocabulary
//                  encodes to it and decodes to U+FFFD '�'; find_unknown() finds such
//                  characters for callers (a sampling prompt) that would rather refuse them.
//   BpeTokenizer   SentencePiece BPE with byte fallback, so any UTF-8 text encodes and
//                  decode(encode(s)) == s. Text is not normalised (identity rule, no dummy
//                  prefix, whitespace kept), so the round trip is exact.
//   ByteLevelBpeTokenizer  GPT-2's byte-level BPE (data/byte_bpe_tokenizer.h), loaded from
//                  GPT-2's files or trained; exact round trip too.
//
// On disk a tokenizer is a directory holding `tokenizer.json`:
//   {"format": "slope-tokenizer", "version": 1, "kind": "char" | "bpe", "vocab_size": V, ...}
// char adds "code_points": [..] (ids 1..V-1 in order); bpe adds "model": "bpe.model" (a standard
// SentencePiece ModelProto that SentencePiece's own tools read) with its size and FNV-1a 64.
// A byte-level BPE's directory holds Hugging Face's tokenizer.json instead (no "format" key, a
// "model" object), which `tokenizers` loads as it is.
// load_tokenizer() reads the kind from tokenizer.json and builds the right one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace slope::data {

constexpr uint32_t kTokenizerFormatVersion = 1;
constexpr const char* kTokenizerMetaFile = "tokenizer.json";

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::string kind() const = 0;  // "char", "bpe" or "byte-bpe"
  virtual uint32_t vocab_size() const = 0;
  // text (UTF-8) → ids (N,), each < vocab_size(). Throws slope::Error on malformed UTF-8.
  virtual std::vector<uint32_t> encode(std::string_view text) const = 0;
  // ids (N,) → text. Throws slope::Error on an id ≥ vocab_size().
  virtual std::string decode(const std::vector<uint32_t>& ids) const = 0;
  // Writes tokenizer.json (and any model file) into `dir`, creating it; each file atomically.
  virtual void save(const std::filesystem::path& dir) const = 0;
};

class CharTokenizer final : public Tokenizer {
 public:
  static constexpr uint32_t kUnkId = 0;
  static constexpr char32_t kUnkCodePoint = 0xFFFD;  // what <unk> decodes to

  // Vocabulary = <unk> + the sorted set of code points in `training_text`.
  // Throws slope::Error when the text is empty or not UTF-8.
  static CharTokenizer train(std::string_view training_text);
  // From the tokenizer.json of a char tokenizer.
  static CharTokenizer load(const std::filesystem::path& dir);
  // From the code points of ids 1..V-1 (a vocabulary read from another format). Throws
  // slope::Error naming `where` unless they are ascending Unicode scalar values.
  static CharTokenizer from_code_points(std::vector<char32_t> code_points,
                                        const std::string& where);

  std::string kind() const override { return "char"; }
  uint32_t vocab_size() const override { return static_cast<uint32_t>(code_points_.size()) + 1; }
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<uint32_t>& ids) const override;
  void save(const std::filesystem::path& dir) const override;

  // Byte offset of the first character of `text` outside the vocabulary, if any.
  std::optional<size_t> find_unknown(std::string_view text) const;
  // Code points of ids 1..V-1, ascending.
  const std::vector<char32_t>& code_points() const { return code_points_; }

 private:
  explicit CharTokenizer(std::vector<char32_t> code_points);
  uint32_t id_of(char32_t cp) const;  // kUnkId when absent

  std::vector<char32_t> code_points_;  // (V-1,) sorted
  std::vector<uint32_t> ascii_ids_;    // (128,) fast path for ASCII
};

struct BpeTrainOptions {
  uint32_t vocab_size = 4096;  // includes <unk>, <s>, </s> and the 256 byte pieces
  int num_threads = 0;         // 0: hardware concurrency
};

class BpeTokenizer final : public Tokenizer {
 public:
  // Trains SentencePiece BPE (byte fallback) on `training_text`, one sentence per line.
  // Throws slope::Error with SentencePiece's reason and what to change (--vocab-size).
  static BpeTokenizer train(std::string_view training_text, const BpeTrainOptions& options);
  // From the tokenizer.json and bpe.model of a BPE tokenizer; checks the model's checksum.
  static BpeTokenizer load(const std::filesystem::path& dir);
  // From the bytes of a bpe.model (a serialized SentencePiece ModelProto), what load() does once
  // the file's size and checksum match tokenizer.json. Throws slope::Error when SentencePiece
  // refuses the bytes or the model cannot round-trip text (see the constructor).
  static BpeTokenizer from_model_proto(std::string model_proto);

  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer() override;

  std::string kind() const override { return "bpe"; }
  uint32_t vocab_size() const override;
  std::vector<uint32_t> encode(std::string_view text) const override;
  std::string decode(const std::vector<uint32_t>& ids) const override;
  void save(const std::filesystem::path& dir) const override;

  // The serialized SentencePiece ModelProto (what bpe.model holds).
  const std::string& model_proto() const { return model_proto_; }

 private:
  explicit BpeTokenizer(std::string model_proto);
  void check_round_trip() const;  // throws slope::Error unless decode(encode(s)) == s holds

  std::string model_proto_;
  std::unique_ptr<sentencepiece::SentencePieceProcessor> sp_;
  uint32_t newline_id_ = 0;  // the byte piece <0x0A>: lines are encoded one at a time
};

// Reads dir/tokenizer.json and loads the tokenizer it describes. Throws slope::Error when the
// file is missing, of another format or version, or of an unknown kind.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

}  // namespace slope::data
