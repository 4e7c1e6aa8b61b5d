// Char and BPE tokenizers: exact round trips (multi-byte UTF-8 included), <unk>, save/load.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "common/temp_files.h"
#include "data/tokenizer.h"
#include "slope/attention.h"

namespace slope::data {
namespace {

using testing::TempDir;

// Lines of made-up words from a few syllables, some with accents: a corpus BPE can learn merges
// from, the same on every run.
std::string generated_corpus(int lines, uint64_t seed) {
  const char* syllables[] = {"ka", "lo", "mi", "ne", "ru",  "sa",
                             "te", "vo", "zé", "ñu", "the", "and"};
  std::mt19937_64 rng(seed);
  std::string text;
  for (int l = 0; l < lines; ++l) {
    const int words = 3 + static_cast<int>(rng() % 8);
    for (int w = 0; w < words; ++w) {
      if (w > 0) text += ' ';
      const int n = 1 + static_cast<int>(rng() % 3);
      for (int s = 0; s < n; ++s) text += syllables[rng() % std::size(syllables)];
    }
    text += l % 7 == 0 ? ".\n" : "\n";
  }
  return text;
}

const std::string kMultiByte = "héllo wörld — 日本語 🎉\ttab\n\n  two spaces\r\n";

TEST(CharTokenizer, RoundTripAscii) {
  const std::string text = "hello world\nthe quick brown fox\n";
  const CharTokenizer tok = CharTokenizer::train(text);
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  const std::set<char> distinct(text.begin(), text.end());
  EXPECT_EQ(tok.vocab_size(), distinct.size() + 1);  // + <unk>
}

TEST(CharTokenizer, RoundTripMultiByteUtf8) {
  const CharTokenizer tok = CharTokenizer::train(kMultiByte);
  const std::vector<uint32_t> ids = tok.encode(kMultiByte);
  // One id per code point, not per byte: é, ö, —, 日, 本, 語, 🎉 are one each.
  EXPECT_EQ(ids.size(), 39u);
  EXPECT_EQ(tok.decode(ids), kMultiByte);
  for (const uint32_t id : ids) EXPECT_NE(id, CharTokenizer::kUnkId);
  // Ids follow code point order: '\t' (9) < '\n' (10) < ... < U+1F389.
  EXPECT_TRUE(std::is_sorted(tok.code_points().begin(), tok.code_points().end()));
  EXPECT_EQ(tok.code_points().front(), U'\t');
  EXPECT_EQ(tok.code_points().back(), U'\U0001F389');
}

TEST(CharTokenizer, UnknownCharactersBecomeUnk) {
  const CharTokenizer tok = CharTokenizer::train("abc");
  const std::vector<uint32_t> ids = tok.encode("abé");
  ASSERT_EQ(ids.size(), 3u);
  EXPECT_EQ(ids[2], CharTokenizer::kUnkId);
  EXPECT_EQ(tok.decode(ids), "ab\xEF\xBF\xBD");  // U+FFFD
  EXPECT_EQ(tok.find_unknown("abé"), std::optional<size_t>(2));
  EXPECT_EQ(tok.find_unknown("cab"), std::nullopt);
}

TEST(CharTokenizer, Errors) {
  EXPECT_ERROR_CONTAINS(CharTokenizer::train(""), "empty");
  EXPECT_ERROR_CONTAINS(CharTokenizer::train("ok\xff"), "offset 2");
  EXPECT_ERROR_CONTAINS(CharTokenizer::train("\xC0\xAF"), "not UTF-8");  // overlong '/'
  const CharTokenizer tok = CharTokenizer::train("ab");
  EXPECT_ERROR_CONTAINS(tok.decode({1, 3}), "outside the char vocabulary");
}

TEST(CharTokenizer, SaveAndLoad) {
  TempDir dir;
  const CharTokenizer tok = CharTokenizer::train(kMultiByte);
  tok.save(dir / "tok");
  const std::unique_ptr<Tokenizer> loaded = load_tokenizer(dir / "tok");
  EXPECT_EQ(loaded->kind(), "char");
  EXPECT_EQ(loaded->vocab_size(), tok.vocab_size());
  EXPECT_EQ(loaded->encode(kMultiByte), tok.encode(kMultiByte));
}

TEST(BpeTokenizer, RoundTripOnGeneratedCorpus) {
  const std::string corpus = generated_corpus(1500, 1);
  BpeTrainOptions options;
  options.vocab_size = 320;
  options.num_threads = 2;
  const BpeTokenizer tok = BpeTokenizer::train(corpus, options);
  EXPECT_EQ(tok.vocab_size(), 320u);
  const std::vector<uint32_t> ids = tok.encode(corpus);
  EXPECT_LT(ids.size(), corpus.size() / 2);  // merges were learned
  for (const uint32_t id : ids) EXPECT_LT(id, tok.vocab_size());
  EXPECT_EQ(tok.decode(ids), corpus);
  // Text it never saw, with characters it has no piece for: byte fallback keeps it exact.
  for (const std::string& text :
       {kMultiByte, std::string(" leading space"), std::string("\n\nblank lines\n\n"),
        std::string("trailing   spaces   "), std::string(""), generated_corpus(40, 2)}) {
    EXPECT_EQ(tok.decode(tok.encode(text)), text) << text;
  }
}

TEST(BpeTokenizer, SaveAndLoad) {
  TempDir dir;
  BpeTrainOptions options;
  options.vocab_size = 300;
  options.num_threads = 2;
  const BpeTokenizer tok = BpeTokenizer::train(generated_corpus(300, 3), options);
  tok.save(dir / "tok");
  EXPECT_TRUE(std::filesystem::exists(dir / "tok" / "bpe.model"));
  const std::unique_ptr<Tokenizer> loaded = load_tokenizer(dir / "tok");
  EXPECT_EQ(loaded->kind(), "bpe");
  EXPECT_EQ(loaded->vocab_size(), 300u);
  EXPECT_EQ(loaded->encode(kMultiByte), tok.encode(kMultiByte));

  // A changed model file is caught by the checksum in tokenizer.json.
  std::string model = testing::read_bytes(dir / "tok" / "bpe.model");
  model[model.size() / 2] ^= 0x01;
  testing::write_text(dir / "tok" / "bpe.model", model);
  EXPECT_ERROR_CONTAINS(load_tokenizer(dir / "tok"), "checksum");
}

// Found by fuzz/fuzz_sentencepiece.cpp (tests/fuzz_corpus/fuzz_sentencepiece/
// edge-round-trip.model, a slope model with one integer changed): SentencePiece accepted a
// bpe.model that no longer reproduced "hello world". A model that cannot keep decode(encode(s))
// == s (it normalises, drops whitespace, or lacks byte pieces) is refused at load.
TEST(BpeTokenizer, ModelThatChangesTextIsRefused) {
  const BpeTrainOptions options{.vocab_size = 300, .num_threads = 2};
  const std::string good = BpeTokenizer::train(generated_corpus(300, 3), options).model_proto();
  EXPECT_NO_THROW(BpeTokenizer::from_model_proto(good));
  const std::string damaged = testing::read_bytes(std::filesystem::path(SLOPE_FUZZ_CORPUS_DIR) /
                                                  "fuzz_sentencepiece" / "edge-round-trip.model");
  EXPECT_ERROR_CONTAINS(BpeTokenizer::from_model_proto(damaged), "BPE tokenizer: the model");
  // The second one it found: whitespace at the start of a line after a blank line changed.
  const std::string damaged2 =
      testing::read_bytes(std::filesystem::path(SLOPE_FUZZ_CORPUS_DIR) / "fuzz_sentencepiece" /
                          "edge-round-trip-lines.model");
  EXPECT_ERROR_CONTAINS(BpeTokenizer::from_model_proto(damaged2), "BPE tokenizer: the model");
  EXPECT_ERROR_CONTAINS(BpeTokenizer::from_model_proto("not a model"), "not a SentencePiece");
  // A piece of zero length: SentencePiece threw darts_clone's own exception.
  const std::string empty_piece = testing::read_bytes(std::filesystem::path(SLOPE_FUZZ_CORPUS_DIR) /
                                                      "fuzz_sentencepiece" / "edge-empty-piece.model");
  EXPECT_ERROR_CONTAINS(BpeTokenizer::from_model_proto(empty_piece), "SentencePiece model");
}

TEST(BpeTokenizer, VocabSizeErrorsNameTheFlag) {
  BpeTrainOptions options;
  options.vocab_size = 100;
  EXPECT_ERROR_CONTAINS(BpeTokenizer::train("some text\n", options), "--vocab-size");
  options.vocab_size = 5000;  // more pieces than a tiny text can make
  EXPECT_ERROR_CONTAINS(BpeTokenizer::train("some text\n", options), "--vocab-size");
}

TEST(LoadTokenizer, Errors) {
  TempDir dir;
  EXPECT_ERROR_CONTAINS(load_tokenizer(dir.path()), "no such file");
  testing::write_text(dir / "tokenizer.json", R"({"format": "slope-tokenizer", "version": 1,
                                                  "kind": "wordpiece"})");
  EXPECT_ERROR_CONTAINS(load_tokenizer(dir.path()), "unknown tokenizer kind");
  testing::write_text(dir / "tokenizer.json", R"({"format": "slope-tokenizer", "version": 9,
                                                  "kind": "char"})");
  EXPECT_ERROR_CONTAINS(load_tokenizer(dir.path()), "version 9");
  testing::write_text(dir / "tokenizer.json", "{not json");
  EXPECT_ERROR_CONTAINS(load_tokenizer(dir.path()), "not valid JSON");
}

// Found by fuzz/fuzz_char_tokenizer.cpp (tests/fuzz_corpus/fuzz_char_tokenizer/
// edge-number-overflow.json): nlohmann throws out_of_range, not parse_error, for a number beyond
// double; it escaped every JSON reader as a foreign exception. Every reader now catches the base.
TEST(LoadTokenizer, NumberBeyondDoubleIsAnError) {
  TempDir dir;
  testing::write_text(dir / "tokenizer.json",
                      "{\"format\": \"slope-tokenizer\", \"version\": 1e3000, \"code_poin33, 1"
                      "ts\": [20, 233, 128512]}");
  EXPECT_ERROR_CONTAINS(load_tokenizer(dir.path()), "tokenizer.json: not valid JSON");
  // The other kinds of the same mistake: a field of a valid file out of its type's range.
  testing::write_text(dir / "tokenizer.json", R"({"format": "slope-tokenizer", "version": 1,
      "kind": "char", "vocab_size": 3, "code_points": [65, 1e30]})");
  EXPECT_ERROR_CONTAINS(load_tokenizer(dir.path()),
                        "field \"code_points\" has the wrong type or is out of range");
  testing::write_text(dir / "tokenizer.json", R"({"format": "slope-tokenizer",
      "version": 4294967297, "kind": "char"})");
  EXPECT_ERROR_CONTAINS(load_tokenizer(dir.path()), "field \"version\" has the wrong type");
}

// A BPE tokenizer.json names its model file inside its own directory only.
TEST(LoadTokenizer, BpeModelOutsideItsDirectoryIsRefused) {
  TempDir dir;
  testing::write_text(dir / "tokenizer.json", R"({"format": "slope-tokenizer", "version": 1,
      "kind": "bpe", "vocab_size": 300, "model": "../../etc/passwd", "model_bytes": 1,
      "model_fnv1a64": "0"})");
  EXPECT_ERROR_CONTAINS(load_tokenizer(dir.path()),
                        "field \"model\" is \"../../etc/passwd\", which is not a file name inside");
}

}  // namespace
}  // namespace slope::data
