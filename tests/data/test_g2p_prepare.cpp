// `slope prepare --task g2p`: parsing cmudict, the split by word, the vocabularies, the pair
// shards and what open_prepared_pairs refuses; failures leave the output directory alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "common/temp_files.h"
#include "files/atomic_file.h"
#include "files/read_file.h"
#include "data/pairs.h"
#include "slope/attention.h"

namespace slope::data {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::TempDir;
using testing::write_text;

// Hand-made entries (comments, alternates, stress, upper case, a tab, CRLF), then kGenerated
// words "w??" with made-up pronunciations, every fifth with an alternate.
constexpr int kGenerated = 300;
std::string dictionary() {
  std::string text =
      ";;; a comment line, as cmudict-0.7b has\n"
      "'bout B AW1 T\n"
      "a AH0\n"
      "a(2) EY1\n"
      "HELLO\tHH AH0 L OW1\r\n"
      "\n"
      "live L IH1 V\n"
      "live(2) L AY1 V\n"
      "project P R AA1 JH EH0 K T # noun\n"
      "project(2) P R AA0 JH EH1 K T\n"
      "project(3) P R AH0 JH EH1 K T\n";
  const char* vowels[] = {"AA", "IY", "UW", "EH", "OW"};
  for (int i = 0; i < kGenerated; ++i) {
    const std::string word = std::string("w") + char('a' + i / 26) + char('a' + i % 26);
    const std::string vowel = vowels[i % 5] + std::to_string(i % 3);
    text += word + " W " + vowel + (i % 2 ? " K S\n" : " Z\n");
    if (i % 5 == 0) text += word + "(2) V " + vowel + " Z\n";
  }
  return text;
}
constexpr uint64_t kWords = 5 + kGenerated;  // 'bout a hello live project, w??

class G2p : public ::testing::Test {
 protected:
  G2pPrepareOptions options() {
    write_text(dir_ / "cmudict.txt", dictionary());
    G2pPrepareOptions o;
    o.input = dir_ / "cmudict.txt";
    o.out_dir = dir_ / "g2p";
    return o;
  }
  std::vector<std::string> entries(const fs::path& d) {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(d)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }
  TempDir dir_;
};

TEST_F(G2p, ParseGroupsAlternatesAndStripsStress) {
  const G2pDictionary d = parse_cmudict(dictionary(), /*keep_stress=*/false, "t");
  ASSERT_EQ(d.words.size(), kWords);
  EXPECT_EQ(d.words[0].word, "'bout");
  EXPECT_EQ(d.words[1].word, "a");
  EXPECT_EQ(d.words[1].prons, (std::vector<std::vector<std::string>>{{"AH"}, {"EY"}}));  // a, a(2)
  EXPECT_EQ(d.words[2].word, "hello");  // lower-cased
  EXPECT_EQ(d.words[2].prons[0], (std::vector<std::string>{"HH", "AH", "L", "OW"}));
  EXPECT_EQ(d.words[3].prons.size(), 2u);  // live, live(2)
  // project(2) equals project once stress is gone: kept once.
  EXPECT_EQ(d.words[4].word, "project");
  EXPECT_EQ(d.words[4].prons,
            (std::vector<std::vector<std::string>>{{"P", "R", "AA", "JH", "EH", "K", "T"},
                                                   {"P", "R", "AH", "JH", "EH", "K", "T"}}));
  EXPECT_EQ(d.duplicate_prons, 1u);
  EXPECT_EQ(d.entries, 9u + kGenerated + kGenerated / 5);
}

TEST_F(G2p, ParseKeepsStressWhenAsked) {
  const G2pDictionary d = parse_cmudict(dictionary(), /*keep_stress=*/true, "t");
  EXPECT_EQ(d.words[1].prons, (std::vector<std::vector<std::string>>{{"AH0"}, {"EY1"}}));
  EXPECT_EQ(d.words[4].prons.size(), 3u);
  EXPECT_EQ(d.duplicate_prons, 0u);
}

TEST_F(G2p, ParseErrorsNameTheLine) {
  EXPECT_ERROR_CONTAINS(parse_cmudict("a AH0\nword\n", false, "d.txt"),
                        "d.txt:2: \"word\" has no pronunciation");
  EXPECT_ERROR_CONTAINS(parse_cmudict("a AH0\n\nb bee\n", false, "d.txt"),
                        "d.txt:3: \"bee\" is not an ARPAbet phoneme");
  EXPECT_ERROR_CONTAINS(parse_cmudict("a AH7\n", false, "d.txt"), "d.txt:1: \"AH7\"");
  EXPECT_ERROR_CONTAINS(parse_cmudict(";;; only comments\n# and this\n", false, "d.txt"),
                        "no dictionary entries");
  EXPECT_ERROR_CONTAINS(parse_cmudict("caf\xe9 K AE1 F\n", false, "d.txt"), "not UTF-8");
}

TEST_F(G2p, PrepareWritesASplitByWordThatRoundTrips) {
  const G2pPrepareResult r = prepare_g2p(options());
  EXPECT_EQ(entries(dir_ / "g2p"),
            (std::vector<std::string>{"meta.json", "src_vocab.json", "test.bin", "tgt_vocab.json",
                                      "train.bin", "val.bin"}));
  const uint64_t held = 15;  // round(0.05 · 305)
  EXPECT_EQ(r.test_words, held);
  EXPECT_EQ(r.val_words, held);
  EXPECT_EQ(r.train_words, kWords - 2 * held);
  EXPECT_EQ(r.longest_word, "project");
  EXPECT_EQ(r.longest_chars, 7);
  EXPECT_EQ(r.longest_pron, 7);

  const nlohmann::json meta = nlohmann::json::parse(read_bytes(dir_ / "g2p" / "meta.json"));
  EXPECT_EQ(meta["format"], "slope-prepared-pairs");
  EXPECT_EQ(meta["version"], 1);
  EXPECT_EQ(meta["task"], "g2p");
  EXPECT_EQ(meta["stress"], false);
  EXPECT_EQ(meta["src_vocab"]["size"], r.src_vocab_size);
  EXPECT_EQ(meta["tgt_vocab"]["size"], r.tgt_vocab_size);
  EXPECT_EQ(meta["train"]["words"], r.train_words);
  EXPECT_EQ(meta["test"]["pronunciations"], r.test_prons);
  EXPECT_EQ(meta["source"]["words"], kWords);

  const PreparedPairs p = open_prepared_pairs(dir_ / "g2p");
  EXPECT_FALSE(p.stress);
  // Target vocabulary: <bos>, <eos>, then every phoneme, sorted and without stress digits.
  EXPECT_EQ(p.tgt_vocab.tokens,
            (std::vector<std::string>{"<bos>", "<eos>", "AA", "AH", "AW", "AY", "B", "EH",
                                      "EY",    "HH",    "IH", "IY", "JH", "K",  "L", "OW",
                                      "P",     "R",     "S",  "T",  "UW", "V",  "W", "Z"}));
  // Source vocabulary: <unk>, then the training words' characters in code point order.
  std::set<std::string> train_chars;
  for (const PairExample& x : p.train) {
    for (char c : x.word) train_chars.insert(std::string(1, c));
  }
  std::vector<std::string> expected_src = {"<unk>"};
  expected_src.insert(expected_src.end(), train_chars.begin(), train_chars.end());
  EXPECT_EQ(p.src_vocab.tokens, expected_src);

  // Every word is in exactly one split, with all its pronunciations, as the dictionary has them.
  const G2pDictionary d = parse_cmudict(dictionary(), false, "t");
  std::map<std::string, std::vector<std::vector<std::string>>> expected;
  for (const G2pEntry& e : d.words) expected[e.word] = e.prons;
  std::set<std::string> seen;
  for (const auto* split : {&p.train, &p.val, &p.test}) {
    for (const PairExample& x : *split) {
      EXPECT_TRUE(seen.insert(x.word).second) << x.word << " is in two splits";
      EXPECT_EQ(x.src, encode_word(p.src_vocab, x.word));
      ASSERT_TRUE(expected.count(x.word)) << x.word;
      ASSERT_EQ(x.prons.size(), expected[x.word].size()) << x.word;
      for (size_t i = 0; i < x.prons.size(); ++i) {
        std::vector<std::string> phonemes;
        for (int32_t id : x.prons[i]) phonemes.push_back(p.tgt_vocab.token(id));
        EXPECT_EQ(phonemes, expected[x.word][i]) << x.word;
      }
    }
  }
  EXPECT_EQ(seen.size(), kWords);
  EXPECT_EQ(p.val.size(), held);
  EXPECT_EQ(p.test.size(), held);
}

TEST_F(G2p, KeepStressKeepsTheDigits) {
  G2pPrepareOptions o = options();
  o.keep_stress = true;
  prepare_g2p(o);
  const PreparedPairs p = open_prepared_pairs(o.out_dir);
  EXPECT_TRUE(p.stress);
  EXPECT_GE(p.tgt_vocab.id("AH0"), 2);
  EXPECT_EQ(p.tgt_vocab.id("AH"), -1);
}

TEST_F(G2p, TheSplitIsSeeded) {
  G2pPrepareOptions o = options();
  prepare_g2p(o);
  const std::string test = read_bytes(o.out_dir / "test.bin");
  o.force = true;
  prepare_g2p(o);
  EXPECT_EQ(read_bytes(o.out_dir / "test.bin"), test);
  o.seed = 7;
  prepare_g2p(o);
  EXPECT_NE(read_bytes(o.out_dir / "test.bin"), test);
}

TEST_F(G2p, NoFractionsPutsEveryWordInTrain) {
  G2pPrepareOptions o = options();
  o.val_fraction = 0;
  o.test_fraction = 0;
  prepare_g2p(o);
  const PreparedPairs p = open_prepared_pairs(o.out_dir);
  EXPECT_EQ(p.train.size(), kWords);
  EXPECT_TRUE(p.val.empty());
  EXPECT_TRUE(p.test.empty());
}

TEST_F(G2p, EncodeWord) {
  const PairVocab v{{"<unk>", "a", "b", "é"}};
  EXPECT_EQ(encode_word(v, "abBA"), (std::vector<int32_t>{1, 2, 2, 1}));
  EXPECT_EQ(encode_word(v, "aéz"), (std::vector<int32_t>{1, 3, kSrcUnk}));
  EXPECT_ERROR_CONTAINS(encode_word(v, "a\xff"), "UTF-8");
  EXPECT_EQ(v.decode({1, 3}, ""), "aé");
  EXPECT_ERROR_CONTAINS(v.token(4), "outside the vocabulary");
}

TEST_F(G2p, VocabFilesRoundTripAndRefuseNonsense) {
  const PairVocab v{{"<bos>", "<eos>", "AH", "B"}};
  write_pair_vocab(dir_ / "v.json", v);
  EXPECT_EQ(read_pair_vocab(dir_ / "v.json").tokens, v.tokens);
  write_text(dir_ / "v.json",
             R"({"format": "slope-pair-vocab", "version": 1, "tokens": ["a", "b", "a"]})");
  EXPECT_ERROR_CONTAINS(read_pair_vocab(dir_ / "v.json"), "\"a\" is empty or repeated");
  write_text(dir_ / "v.json", R"({"format": "slope-pair-vocab", "version": 1, "tokens": []})");
  EXPECT_ERROR_CONTAINS(read_pair_vocab(dir_ / "v.json"), "holds no tokens");
  write_text(dir_ / "v.json", R"({"format": "slope-pair-vocab", "version": 2, "tokens": ["a"]})");
  EXPECT_ERROR_CONTAINS(read_pair_vocab(dir_ / "v.json"), "version 2");
  EXPECT_ERROR_CONTAINS(read_pair_vocab(dir_ / "none.json"), "none.json: no such file");
}

// Flips the byte at `offset` of `path`.
void flip(const fs::path& path, size_t offset) {
  std::string bytes = read_bytes(path);
  bytes.at(offset) ^= 0x5a;
  write_text(path, bytes);
}

TEST_F(G2p, CorruptShardsAreRefused) {
  const fs::path dir = dir_ / "g2p", train = dir / "train.bin";
  prepare_g2p(options());
  const std::string good = read_bytes(train);

  write_text(train, good.substr(0, good.size() - 3));
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "train.bin: pair shard is truncated");
  write_text(train, good.substr(0, 20));
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "bytes of header");
  write_text(train, "");
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "not a slope pair shard");
  write_text(train, good + "x");
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "bytes after its");
  write_text(train, good);
  flip(train, good.size() / 2);
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "checksum mismatch");
  write_text(train, good);
  flip(train, 0);
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "not a slope pair shard");
  write_text(train, good);
  flip(train, 8);  // the version
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "format version");

  // A record that lies, under a checksum that agrees: the first word's first source id
  // (after the 6-byte record head and the word) set out of range.
  std::string bad = good;
  uint16_t word_bytes;
  std::memcpy(&word_bytes, bad.data() + kPairShardHeaderBytes, 2);
  const size_t id_at = kPairShardHeaderBytes + 6 + word_bytes;
  bad[id_at] = bad[id_at + 1] = '\xff';
  uint64_t payload;
  std::memcpy(&payload, bad.data() + 32, 8);
  uint64_t sum = files::fnv1a64(bad.data(), 40);
  sum = files::fnv1a64(bad.data() + kPairShardHeaderBytes, payload, sum);
  std::memcpy(bad.data() + 40, &sum, 8);
  write_text(train, bad);
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "source id 65535 is not below the vocab size");

  write_text(train, good);
  EXPECT_NO_THROW(open_prepared_pairs(dir));
}

TEST_F(G2p, OpenChecksMetaAgainstTheFiles) {
  const fs::path dir = dir_ / "g2p";
  prepare_g2p(options());
  const std::string meta = read_bytes(dir / "meta.json");
  nlohmann::json j = nlohmann::json::parse(meta);
  j["val"]["words"] = 1;
  write_text(dir / "meta.json", j.dump());
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "val.bin does not match");
  j = nlohmann::json::parse(meta);
  j["tgt_vocab"]["size"] = 99;
  write_text(dir / "meta.json", j.dump());
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "tgt_vocab.json holds");
  j = nlohmann::json::parse(meta);
  j["format"] = "slope-something-else";
  write_text(dir / "meta.json", j.dump());
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "expected \"slope-prepared-pairs\"");
  j["format"] = "slope-prepared-corpus";  // a text corpus given where pairs belong: say so
  write_text(dir / "meta.json", j.dump());
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "is a text corpus");
  fs::remove(dir / "meta.json");
  EXPECT_ERROR_CONTAINS(open_prepared_pairs(dir), "no meta.json");
}

TEST_F(G2p, ExistingDirectoryIsLeftAlone) {
  const G2pPrepareOptions o = options();
  prepare_g2p(o);
  const std::string train = read_bytes(o.out_dir / "train.bin");
  const std::string meta = read_bytes(o.out_dir / "meta.json");
  EXPECT_ERROR_CONTAINS(prepare_g2p(o), "--force");
  // With --force but a bad input: the error comes before anything is touched.
  G2pPrepareOptions bad = o;
  bad.force = true;
  write_text(dir_ / "bad.txt", "a AH0\nb\n");
  bad.input = dir_ / "bad.txt";
  EXPECT_ERROR_CONTAINS(prepare_g2p(bad), "bad.txt:2");
  EXPECT_EQ(read_bytes(o.out_dir / "train.bin"), train);
  EXPECT_EQ(read_bytes(o.out_dir / "meta.json"), meta);
  EXPECT_EQ(entries(o.out_dir).size(), 6u);  // no staging directory left behind

  // A directory with other files in it keeps them, and only them, after a failure.
  fs::create_directories(dir_ / "mine");
  write_text(dir_ / "mine" / "notes.txt", "mine");
  bad.out_dir = dir_ / "mine";
  EXPECT_ERROR_CONTAINS(prepare_g2p(bad), "has no pronunciation");
  EXPECT_EQ(entries(dir_ / "mine"), (std::vector<std::string>{"notes.txt"}));
  bad.out_dir = dir_ / "new";
  EXPECT_ERROR_CONTAINS(prepare_g2p(bad), "has no pronunciation");
  EXPECT_FALSE(fs::exists(dir_ / "new"));
}

TEST_F(G2p, OptionAndInputErrors) {
  G2pPrepareOptions o = options();
  o.val_fraction = 1.0;
  EXPECT_ERROR_CONTAINS(prepare_g2p(o), "--val-fraction must be in [0, 1)");
  o = options();
  o.test_fraction = -0.1;
  EXPECT_ERROR_CONTAINS(prepare_g2p(o), "--test-fraction");
  o = options();
  o.val_fraction = 0.5;
  o.test_fraction = 0.5;
  EXPECT_ERROR_CONTAINS(prepare_g2p(o), "below 1");
  o = options();
  write_text(dir_ / "two.txt", "a AH0\nb B IY1\n");
  o.input = dir_ / "two.txt";
  EXPECT_ERROR_CONTAINS(prepare_g2p(o), "too few");
  write_text(dir_ / "empty.txt", "");
  o.input = dir_ / "empty.txt";
  EXPECT_ERROR_CONTAINS(prepare_g2p(o), "no text in");
  o.input = dir_ / "missing.txt";
  EXPECT_ERROR_CONTAINS(prepare_g2p(o), "missing.txt: no such file");
  EXPECT_FALSE(fs::exists(o.out_dir));
}

}  // namespace
}  // namespace slope::data
