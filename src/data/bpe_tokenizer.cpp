// BpeTokenizer: SentencePiece BPE with byte fallback, trained in memory, text kept verbatim.
//
// SentencePiece trains on sentences, one per line, so no piece ever contains '\n': encode()
// therefore encodes line by line and puts the byte piece <0x0A> between lines, which gives the
// same ids as encoding the whole text at once, in memory proportional to a line.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstdio>
#include <thread>
#include <unordered_map>

#include "data/tokenizer.h"
#include "data/utf8.h"
#include "files/atomic_file.h"
#include "files/json_file.h"
#include "files/read_file.h"
#include "slope/attention.h"

namespace slope::data {
namespace fs = std::filesystem;
namespace {

constexpr const char* kModelFile = "bpe.model";
constexpr uint32_t kMinVocab = 3 + 256 + 1;  // <unk> <s> </s>, 256 byte pieces, one more
// SentencePiece drops longer training sentences; longer lines are cut into pieces this long
// (at a code point boundary) for training only, where only the statistics matter.
constexpr size_t kMaxTrainSentenceBytes = 16384;

// Feeds the lines of a text to the trainer without copying the text.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(std::string_view text) : text_(text) { Next(); }
  bool done() const override { return done_; }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return {}; }
  void Next() override {
    while (pos_ < text_.size()) {
      size_t end = text_.find('\n', pos_);
      if (end == std::string_view::npos) end = text_.size();
      size_t take = std::min(end - pos_, kMaxTrainSentenceBytes);
      while (!utf8_is_boundary(text_, pos_ + take)) --take;
      line_.assign(text_.substr(pos_, take));
      pos_ += take;
      if (pos_ == end) ++pos_;  // step over the '\n'
      if (!line_.empty()) return;
    }
    done_ = true;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
  std::string line_;
  bool done_ = false;
};

std::unique_ptr<sentencepiece::SentencePieceProcessor> load_processor(const std::string& proto,
                                                                      const std::string& what) {
  auto sp = std::make_unique<sentencepiece::SentencePieceProcessor>();
  // SentencePiece reports most bad models by status, some by throwing its own exceptions
  // (darts_clone's "zero-length key", found by fuzz/fuzz_sentencepiece.cpp).
  sentencepiece::util::Status status;
  try {
    status = sp->LoadFromSerializedProto(proto);
  } catch (const std::exception& e) {
    throw Error(what + ": not a usable SentencePiece model: " + e.what());
  }
  if (!status.ok()) throw Error(what + ": not a SentencePiece model: " + status.ToString());
  return sp;
}

// SentencePiece's "Vocabulary size too high (4096). Please set it to a value <= 317." becomes
// advice in terms of slope's flag.
std::string explain_training_failure(const std::string& msg, uint32_t vocab_size) {
  const std::string marker = "Please set it to a value <= ";
  const size_t at = msg.find(marker);
  if (at != std::string::npos) {
    const std::string most =
        msg.substr(at + marker.size(),
                   msg.find_first_not_of("0123456789", at + marker.size()) - (at + marker.size()));
    return "--vocab-size " + std::to_string(vocab_size) +
           " is too large for this training text: BPE can make at most " + most +
           " pieces from it; pass --vocab-size " + most + " or less, or give more text";
  }
  return "BPE training failed: " + msg;
}

}  // namespace

BpeTokenizer::BpeTokenizer(std::string model_proto) : model_proto_(std::move(model_proto)) {
  sp_ = load_processor(model_proto_, "BPE tokenizer");
  const int newline = sp_->PieceToId("<0x0A>");
  if (newline == sp_->unk_id() || newline < 0) {
    throw Error(
        "BPE tokenizer: the model has no byte piece <0x0A> (was it trained with "
        "byte_fallback?)");
  }
  newline_id_ = static_cast<uint32_t>(newline);
  check_round_trip();
}

// tokenizer.h promises decode(encode(s)) == s for any UTF-8 text. slope trains every model so
// (byte fallback, identity normalisation, no dummy prefix, whitespace kept), but a bpe.model is
// a file: one edited or damaged so that it normalises, drops whitespace or lacks a byte piece
// would silently change text (found by fuzz/fuzz_sentencepiece.cpp). It is refused at load.
void BpeTokenizer::check_round_trip() const {
  for (int byte = 0; byte < 256; ++byte) {
    char piece[8];
    std::snprintf(piece, sizeof piece, "<0x%02X>", byte);
    const int id = sp_->PieceToId(piece);
    if (id < 0 || id == sp_->unk_id() || !sp_->IsByte(id))
      throw Error(std::string("BPE tokenizer: the model has no byte piece ") + piece +
                  ", so some text cannot be encoded exactly: it was not made by slope prepare "
                  "(byte_fallback) or is damaged");
  }
  // Several lines (encode() works line by line), blank ones, whitespace runs at both ends of a
  // line, tabs, every printable ASCII character, characters that NFKC would change (ﬁ, Ａ,
  // e + combining acute, ①), accents, CJK, an emoji and control bytes.
  std::string probe =
      "  lead  and\ttrail  \n\n\t second  line \x01\x7f ﬁ Ａ e\u0301 ① Ångström 東京 🙂 "
      "\n ";
  for (char c = ' '; c <= '~'; ++c) probe += c;
  probe += "\n\n  ";
  if (decode(encode(probe)) != probe)
    throw Error(
        "BPE tokenizer: the model does not reproduce text exactly (it normalises or drops "
        "whitespace): it was not made by slope prepare or is damaged");
}

BpeTokenizer BpeTokenizer::from_model_proto(std::string model_proto) {
  return BpeTokenizer(std::move(model_proto));
}

BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer BpeTokenizer::train(std::string_view training_text, const BpeTrainOptions& options) {
  if (options.vocab_size < kMinVocab) {
    throw Error("--vocab-size " + std::to_string(options.vocab_size) +
                " is too small for BPE: it needs at least " + std::to_string(kMinVocab) +
                " (3 special pieces and 256 byte pieces come first)");
  }
  utf8_validate(training_text, "BPE training text");
  LineIterator lines(training_text);
  if (lines.done()) throw Error("cannot train a BPE tokenizer on text with no characters");
  const unsigned threads = options.num_threads > 0
                               ? static_cast<unsigned>(options.num_threads)
                               : std::max(1u, std::thread::hardware_concurrency());
  const std::unordered_map<std::string, std::string> args = {
      {"model_type", "bpe"},
      {"vocab_size", std::to_string(options.vocab_size)},
      {"byte_fallback", "true"},
      {"character_coverage", "0.9995"},  // rarer characters become byte pieces
      {"normalization_rule_name", "identity"},
      {"add_dummy_prefix", "false"},
      {"remove_extra_whitespaces", "false"},
      {"allow_whitespace_only_pieces", "true"},
      {"max_sentence_length", std::to_string(kMaxTrainSentenceBytes)},
      {"num_threads", std::to_string(threads)},
      {"minloglevel", "2"},  // library code does not print: SentencePiece logs only errors
  };
  std::string proto;
  const auto status = sentencepiece::SentencePieceTrainer::Train(args, &lines, &proto);
  if (!status.ok()) throw Error(explain_training_failure(status.ToString(), options.vocab_size));
  return BpeTokenizer(std::move(proto));
}

uint32_t BpeTokenizer::vocab_size() const { return static_cast<uint32_t>(sp_->GetPieceSize()); }

std::vector<uint32_t> BpeTokenizer::encode(std::string_view text) const {
  utf8_validate(text, "text to encode");
  std::vector<uint32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  std::vector<int> line_ids;
  size_t pos = 0;
  while (true) {
    size_t end = text.find('\n', pos);
    const bool last = end == std::string_view::npos;
    if (last) end = text.size();
    if (end > pos) {
      const auto status = sp_->Encode(text.substr(pos, end - pos), &line_ids);
      if (!status.ok()) throw Error("BPE encode failed: " + status.ToString());
      ids.insert(ids.end(), line_ids.begin(), line_ids.end());
    }
    if (last) break;
    ids.push_back(newline_id_);
    pos = end + 1;
  }
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<uint32_t>& ids) const {
  std::vector<int> sp_ids(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= vocab_size()) {
      throw Error("token id " + std::to_string(ids[i]) + " is outside the BPE vocabulary of " +
                  std::to_string(vocab_size()));
    }
    sp_ids[i] = static_cast<int>(ids[i]);
  }
  std::string text;
  const auto status = sp_->Decode(sp_ids, &text);
  if (!status.ok()) throw Error("BPE decode failed: " + status.ToString());
  return text;
}

void BpeTokenizer::save(const fs::path& dir) const {
  fs::create_directories(dir);
  files::write_file_atomic(dir / kModelFile, model_proto_);
  nlohmann::ordered_json j;
  j["format"] = "slope-tokenizer";
  j["version"] = kTokenizerFormatVersion;
  j["kind"] = kind();
  j["vocab_size"] = vocab_size();
  j["model"] = kModelFile;
  j["model_bytes"] = model_proto_.size();
  j["model_fnv1a64"] = files::hex64(files::fnv1a64(model_proto_.data(), model_proto_.size()));
  files::write_json_file(dir / kTokenizerMetaFile, j);  // last: its presence says the model is there
}

BpeTokenizer BpeTokenizer::load(const fs::path& dir) {
  const fs::path meta_path = dir / kTokenizerMetaFile;
  const nlohmann::json j = files::read_json_file(meta_path);
  files::check_json_format(j, "slope-tokenizer", kTokenizerFormatVersion, meta_path);
  if (files::json_field<std::string>(j, "kind", meta_path) != "bpe") {
    throw Error(meta_path.string() + ": not a BPE tokenizer");
  }
  const fs::path model_path = files::json_name_in_dir(j, "model", meta_path, dir);
  std::string proto = files::read_file(model_path);
  const auto bytes = files::json_field<uint64_t>(j, "model_bytes", meta_path);
  const auto sum = files::json_field<std::string>(j, "model_fnv1a64", meta_path);
  if (proto.size() != bytes) {
    throw Error(model_path.string() + ": " + std::to_string(proto.size()) + " bytes, but " +
                meta_path.string() + " says " + std::to_string(bytes) +
                ": the file is truncated or was replaced");
  }
  if (files::hex64(files::fnv1a64(proto.data(), proto.size())) != sum) {
    throw Error(model_path.string() + ": checksum mismatch with " + meta_path.string() +
                ": the file is corrupt or was replaced");
  }
  BpeTokenizer tok = from_model_proto(std::move(proto));
  if (files::json_field<uint32_t>(j, "vocab_size", meta_path) != tok.vocab_size()) {
    throw Error(meta_path.string() + ": \"vocab_size\" disagrees with " + model_path.string());
  }
  return tok;
}

}  // namespace slope::data
