// GPT-2's byte-level BPE: the byte ↔ unicode map, the pre-tokenizer regex, encoding with a
// hand-made vocabulary, training, and the Hugging Face tokenizer.json round trip. The ids are
// checked against Hugging Face `tokenizers` itself in tests/python/test_gpt2_tokenizer.py.
#include <gtest/gtest.h>

#include <set>

#include "common/temp_files.h"
#include "data/byte_bpe_tokenizer.h"
#include "data/byte_unicode.h"
#include "data/gpt2_pretokenizer.h"
#include "data/utf8.h"
#include "files/json_file.h"
#include "slope/error.h"

namespace slope::data {
namespace {

std::string utf8(char32_t cp) {
  std::string s;
  utf8_append(s, cp);
  return s;
}

// tests/data/utf8_torture.txt: accents, CJK, emoji (with a ZWJ sequence and a flag), combining
// marks, contractions in both cases, digits of other scripts, runs of spaces, tabs and newlines
// (CRLF too), Unicode spaces (NBSP, ideographic, U+180E which Unicode 6.3 took out of
// White_Space), the special token, near-misses of it, and text that looks like escapes or broken
// encodings. test_gpt2_tokenizer.py encodes the same file with Hugging Face's tokenizers.
const std::string kTorture = slope::testing::read_bytes(SLOPE_TEST_DATA_DIR "/utf8_torture.txt");

TEST(ByteUnicode, KnownCodePoints) {
  const auto& m = byte_to_unicode();
  EXPECT_EQ(m['!'], U'!');
  EXPECT_EQ(m['~'], U'~');
  EXPECT_EQ(m[0xFF], U'\u00FF');
  EXPECT_EQ(m[0x00], U'\u0100');
  EXPECT_EQ(m['\n'], U'\u010A');  // 'Ċ'
  EXPECT_EQ(m[' '], U'\u0120');   // 'Ġ'
  EXPECT_EQ(m[0x7F], U'\u0121');  // after the 33 bytes 0x00..0x20
  EXPECT_EQ(m[0xA0], U'\u0142');
  EXPECT_EQ(m[0xAD], U'\u0143');  // the 68th and last remapped byte
  std::set<char32_t> distinct(m.begin(), m.end());
  EXPECT_EQ(distinct.size(), 256u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(unicode_to_byte(m[b]), std::optional<uint8_t>(b));
  EXPECT_EQ(unicode_to_byte(U' '), std::nullopt);
  EXPECT_EQ(unicode_to_byte(U'\u0144'), std::nullopt);
  EXPECT_EQ(unicode_to_byte(U'東'), std::nullopt);
  EXPECT_EQ(byte_order()[0], '!');
  EXPECT_EQ(byte_order()[188], 0x00);  // 188 printable bytes, then the remapped ones
  EXPECT_EQ(byte_order()[255], 0xAD);
  std::string text;
  bytes_to_token_text(" \n\xE6\x9D\xB1", text);
  EXPECT_EQ(text, "Ġ" + utf8(U'\u010A') + utf8(0xE6) + utf8(U'\u013F') + utf8(0xB1));  // 0x9D: C1
  EXPECT_EQ(token_text_to_bytes(text), " \n\xE6\x9D\xB1");
  EXPECT_EQ(token_text_to_bytes("東"), std::nullopt);
}

std::vector<std::string> split(std::string_view text) {
  const Gpt2PreTokenizer pre;
  std::vector<std::string_view> pieces;
  pre.split(text, pieces);
  return {pieces.begin(), pieces.end()};
}

TEST(Gpt2PreTokenizer, SplitsAsGpt2) {
  using V = std::vector<std::string>;
  // A whitespace run leaves its last space to the next word; at the end it stays whole.
  EXPECT_EQ(split("Hello world's  \n\n  123 🙂 a\u00a0b"),
            (V{"Hello", " world", "'s", "  \n\n ", " 123", " 🙂", " a", "\u00a0", "b"}));
  EXPECT_EQ(split("a  "), (V{"a", "  "}));
  // Contractions are lowercase only; digits and letters never share a piece.
  EXPECT_EQ(split("don't I'M x2y"), (V{"don", "'t", " I", "'", "M", " x", "2", "y"}));
  // Letters of any script (\p{L}), digits of any script (\p{N}), a combining mark (\p{M}) is a
  // symbol: "e" then the accent.
  EXPECT_EQ(split("東京 ١٢٣ e\u0301"), (V{"東京", " ١٢٣", " e", "\u0301"}));
  // U+180E is not White_Space (Oniguruma's \s, tokenizers' regex engine); PCRE2's \s has it.
  EXPECT_EQ(split("x \u180ey"), (V{"x", " \u180e", "y"}));
  // U+0085 (NEL) and U+3000 are whitespace.
  EXPECT_EQ(split("a\u0085\u3000b"), (V{"a", "\u0085", "\u3000", "b"}));
  ASSERT_GT(kTorture.size(), 500u) << "tests/data/utf8_torture.txt is missing or cut";
  std::string joined;
  for (const std::string& p : split(kTorture)) joined += p;
  EXPECT_EQ(joined, kTorture);
  EXPECT_TRUE(split("").empty());
}

// The 256 byte tokens in GPT-2's order, then `extra` tokens.
nlohmann::json vocab_with(const std::vector<std::string>& extra) {
  nlohmann::json v = nlohmann::json::object();
  uint32_t id = 0;
  for (uint8_t b : byte_order()) v[utf8(byte_to_unicode()[b])] = id++;
  for (const std::string& t : extra) v[t] = id++;
  return v;
}

ByteLevelBpeTokenizer small_gpt2() {
  return ByteLevelBpeTokenizer::from_vocab_merges(vocab_with({"Ġt", "he", "Ġthe", "<|endoftext|>"}),
                                                  "#version: 0.2\nĠ t\nh e\nĠt he\n", "test");
}

TEST(ByteLevelBpe, EncodesByMergeRank) {
  const ByteLevelBpeTokenizer tok = small_gpt2();
  EXPECT_EQ(tok.vocab_size(), 260u);
  const uint32_t t = *tok.token_id("t"), x = *tok.token_id("x"), space = *tok.token_id("Ġ");
  EXPECT_EQ(tok.encode(" the"), (std::vector<uint32_t>{258}));
  EXPECT_EQ(tok.encode("the"), (std::vector<uint32_t>{t, 257}));  // (t, he) is no merge
  EXPECT_EQ(tok.encode("x<|endoftext|> the"), (std::vector<uint32_t>{x, 259, 258}));
  // "  the": the run gives its last space to the word, which merges whole.
  EXPECT_EQ(tok.encode("  the"), (std::vector<uint32_t>{space, 258}));
  EXPECT_EQ(tok.decode({x, 259, 258}), "x<|endoftext|> the");
  EXPECT_EQ(tok.decode(tok.encode(kTorture)), kTorture);
  EXPECT_THROW(tok.decode({260}), Error);
  EXPECT_THROW(tok.encode("bad \xff byte"), Error);
}

TEST(ByteLevelBpe, HfJsonRoundTrip) {
  const ByteLevelBpeTokenizer tok = small_gpt2();
  const nlohmann::json j = tok.to_hf_json();
  EXPECT_EQ(j["model"]["type"], "BPE");
  EXPECT_EQ(j["pre_tokenizer"]["type"], "ByteLevel");
  EXPECT_EQ(j["model"]["merges"][2], "Ġt he");
  const ByteLevelBpeTokenizer back = ByteLevelBpeTokenizer::from_hf_json(j, "json");
  EXPECT_EQ(back.encode(kTorture), tok.encode(kTorture));
  // tokenizers 0.20 writes merges as pairs.
  nlohmann::json pairs = j;
  using J = nlohmann::json;
  pairs["model"]["merges"] =
      J::array({J::array({"Ġ", "t"}), J::array({"h", "e"}), J::array({"Ġt", "he"})});
  EXPECT_EQ(ByteLevelBpeTokenizer::from_hf_json(pairs, "json").encode(" the the"),
            tok.encode(" the the"));

  slope::testing::TempDir dir;
  tok.save(dir.path());
  const std::unique_ptr<Tokenizer> loaded = load_tokenizer(dir.path());
  EXPECT_EQ(loaded->kind(), "byte-bpe");
  EXPECT_EQ(loaded->encode(kTorture), tok.encode(kTorture));
}

TEST(ByteLevelBpe, RefusesWhatItCannotReproduce) {
  const nlohmann::json good = small_gpt2().to_hf_json();
  // `what` must appear in the message: each edit is refused for its own reason.
  const auto refused = [&](const char* what, auto edit) {
    nlohmann::json j = good;
    edit(j);
    try {
      ByteLevelBpeTokenizer::from_hf_json(j, "json");
      ADD_FAILURE() << "accepted: " << what;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  refused("normalizer", [](nlohmann::json& j) { j["normalizer"] = {{"type", "NFC"}}; });
  refused("Metaspace", [](nlohmann::json& j) { j["pre_tokenizer"] = {{"type", "Metaspace"}}; });
  refused("add_prefix_space",
          [](nlohmann::json& j) { j["pre_tokenizer"]["add_prefix_space"] = true; });
  refused("TemplateProcessing", [](nlohmann::json& j) {
    j["post_processor"] = {{"type", "TemplateProcessing"}};
  });
  refused("dropout", [](nlohmann::json& j) { j["model"]["dropout"] = 0.1; });
  refused("end_of_word_suffix",
          [](nlohmann::json& j) { j["model"]["end_of_word_suffix"] = "</w>"; });
  refused("WordPiece", [](nlohmann::json& j) { j["model"]["type"] = "WordPiece"; });
  refused("lstrip", [](nlohmann::json& j) { j["added_tokens"][0]["lstrip"] = true; });
  refused("\"zz\" is not in the vocabulary",
          [](nlohmann::json& j) { j["model"]["merges"][0] = "Ġ zz"; });
  refused("makes a token that is not in the vocabulary",
          [](nlohmann::json& j) { j["model"]["merges"][0] = "x y"; });
  refused("ids must be 0..259", [](nlohmann::json& j) { j["model"]["vocab"]["Ġthe"] = 9999; });
  refused("no token for byte 0x71", [](nlohmann::json& j) {
    j["model"]["vocab"]["zz"] = j["model"]["vocab"]["q"];
    j["model"]["vocab"].erase("q");
  });
  refused("vocabulary gives it 259", [](nlohmann::json& j) { j["added_tokens"][0]["id"] = 5; });
  // vocab.json + merges.txt
  EXPECT_THROW(ByteLevelBpeTokenizer::from_vocab_merges(vocab_with({}), "a b c\n", "t"), Error);
  EXPECT_THROW(ByteLevelBpeTokenizer::from_vocab_merges(vocab_with({}), "a b\n", "t"), Error);
  slope::testing::TempDir empty;
  EXPECT_THROW(ByteLevelBpeTokenizer::load(empty.path()), Error);
}

TEST(ByteLevelBpe, TrainsAndRoundTrips) {
  std::string text;
  for (int i = 0; i < 20; ++i) text += "the theme of the thesis is the thermal theory. " + kTorture;
  ByteBpeTrainOptions o;
  o.vocab_size = 400;
  const ByteLevelBpeTokenizer tok = ByteLevelBpeTokenizer::train(text, o);
  EXPECT_EQ(tok.vocab_size(), 400u);
  EXPECT_EQ(tok.num_merges(), 400u - 256 - 1);
  EXPECT_EQ(tok.token_id("<|endoftext|>"), std::optional<uint32_t>(399));
  // The most frequent piece of all became a single token.
  EXPECT_EQ(tok.encode(" the"), std::vector<uint32_t>{*tok.token_id("Ġthe")});
  const std::vector<uint32_t> ids = tok.encode(text);
  EXPECT_LT(ids.size(), text.size() / 2);  // it compresses
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.decode(tok.encode(kTorture)), kTorture);
  // The special token is cut out before counting, never merged from its characters.
  const std::vector<uint32_t> eot = tok.encode("<|endoftext|>");
  EXPECT_EQ(eot, std::vector<uint32_t>{399});
  // Deterministic.
  EXPECT_EQ(ByteLevelBpeTokenizer::train(text, o).encode(text), ids);

  o.vocab_size = 100000;
  try {
    ByteLevelBpeTokenizer::train("tiny text", o);
    FAIL() << "a vocabulary larger than the text allows was trained";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--vocab-size"), std::string::npos) << e.what();
  }
  o.vocab_size = 257;
  EXPECT_THROW(ByteLevelBpeTokenizer::train(text, o), Error);
}

}  // namespace
}  // namespace slope::data
