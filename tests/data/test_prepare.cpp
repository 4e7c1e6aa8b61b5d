// prepare_corpus: the files it writes, what it refuses, and that failures write nothing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "common/temp_files.h"
#include "data/prepare.h"
#include "slope/attention.h"

namespace slope::data {
namespace {

namespace fs = std::filesystem;
using testing::read_bytes;
using testing::TempDir;
using testing::write_text;

std::string names(int n) {
  const char* first[] = {"emma", "olivia", "ava", "isabella", "sophia", "mia", "zoë", "liam"};
  std::string text;
  for (int i = 0; i < n; ++i) text += std::string(first[i % 8]) + std::to_string(i % 13) + "\n";
  return text;
}

std::string prose(int lines) {
  std::string text;
  for (int i = 0; i < lines; ++i) {
    text += "And it came to pass in the " + std::to_string(i) + "th year, that the king said.\n";
  }
  return text;
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

class Prepare : public ::testing::Test {
 protected:
  PrepareOptions options(const std::vector<fs::path>& inputs) {
    PrepareOptions o;
    o.inputs = inputs;
    o.out_dir = dir_ / "out";
    o.num_threads = 2;
    return o;
  }
  TempDir dir_;
};

TEST_F(Prepare, CharCorpus) {
  write_text(dir_ / "names.txt", names(200));
  const PrepareResult r = prepare_corpus(options({dir_ / "names.txt"}));
  EXPECT_EQ(r.tokenizer_kind, "char");
  EXPECT_EQ(r.token_bytes, 2u);
  ASSERT_EQ(r.sources.size(), 1u);
  EXPECT_EQ(r.sources[0].split, SplitMode::kLines);
  EXPECT_EQ(entries(dir_ / "out"),
            (std::vector<std::string>{"meta.json", "tokenizer", "train.bin", "val.bin"}));

  const nlohmann::json meta = nlohmann::json::parse(read_bytes(dir_ / "out" / "meta.json"));
  EXPECT_EQ(meta["format"], "slope-prepared-corpus");
  EXPECT_EQ(meta["version"], 1);
  EXPECT_EQ(meta["tokenizer"]["kind"], "char");
  EXPECT_EQ(meta["tokenizer"]["vocab_size"], r.vocab_size);
  EXPECT_EQ(meta["train"]["tokens"], r.train_tokens);
  EXPECT_EQ(meta["val"]["tokens"], r.val_tokens);
  EXPECT_EQ(meta["val_fraction"], 0.1);
  EXPECT_EQ(meta["sources"][0]["split"], "lines");

  const PreparedCorpus corpus = open_prepared_corpus(dir_ / "out");
  EXPECT_EQ(corpus.train.size(), r.train_tokens);
  EXPECT_EQ(corpus.val.size(), r.val_tokens);
  // 20 of the 200 names are in val; decoding both shards gives back every name once.
  std::vector<uint32_t> ids(corpus.train.size() + corpus.val.size());
  corpus.train.copy(0, corpus.train.size(), ids.data());
  corpus.val.copy(0, corpus.val.size(), ids.data() + corpus.train.size());
  const std::string text = corpus.tokenizer->decode(ids);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 200);
  EXPECT_EQ(text.size(), names(200).size());
}

TEST_F(Prepare, BpeCorpusFromSeveralFiles) {
  write_text(dir_ / "a.txt", prose(300));
  write_text(dir_ / "b.txt", "Other text, with ünïcode.\nAnd a second line.\nA third one.\n");
  PrepareOptions o = options({dir_ / "a.txt", dir_ / "b.txt"});
  o.tokenizer = TokenizerKind::kBpe;
  o.vocab_size = 300;
  const PrepareResult r = prepare_corpus(o);
  EXPECT_EQ(r.tokenizer_kind, "bpe");
  EXPECT_EQ(r.vocab_size, 300u);
  ASSERT_EQ(r.sources.size(), 2u);
  EXPECT_EQ(r.sources[0].split, SplitMode::kTail);
  const PreparedCorpus corpus = open_prepared_corpus(dir_ / "out");
  std::vector<uint32_t> val(corpus.val.size());
  corpus.val.copy(0, val.size(), val.data());
  const std::string text = corpus.tokenizer->decode(val);
  // Each file's tail is in val: the end of a.txt, then the last line of b.txt.
  EXPECT_NE(text.find("299th year"), std::string::npos);
  EXPECT_NE(text.find("A third one.\n"), std::string::npos);
  EXPECT_EQ(text.find("the 0th year"), std::string::npos);  // the start stays in train
}

TEST_F(Prepare, EmptyFileWritesNothing) {
  write_text(dir_ / "empty.txt", "");
  EXPECT_ERROR_CONTAINS(prepare_corpus(options({dir_ / "empty.txt"})), "no text in");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  write_text(dir_ / "blank.txt", "\n  \n\t\n");
  EXPECT_ERROR_CONTAINS(prepare_corpus(options({dir_ / "blank.txt"})), "blank.txt");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(Prepare, MissingFileIsNamed) {
  write_text(dir_ / "ok.txt", names(10));
  EXPECT_ERROR_CONTAINS(prepare_corpus(options({dir_ / "ok.txt", dir_ / "nope.txt"})),
                        "nope.txt: no such file");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(Prepare, NotUtf8IsRefused) {
  write_text(dir_ / "latin1.txt", "caf\xe9\n");
  EXPECT_ERROR_CONTAINS(prepare_corpus(options({dir_ / "latin1.txt"})), "not UTF-8");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(Prepare, SecondRunNeedsForceAndLeavesTheFirstIntact) {
  write_text(dir_ / "a.txt", names(100));
  write_text(dir_ / "b.txt", prose(50));
  prepare_corpus(options({dir_ / "a.txt"}));
  const std::string train = read_bytes(dir_ / "out" / "train.bin");
  const std::string meta = read_bytes(dir_ / "out" / "meta.json");

  EXPECT_ERROR_CONTAINS(prepare_corpus(options({dir_ / "b.txt"})), "--force");
  EXPECT_EQ(read_bytes(dir_ / "out" / "train.bin"), train);
  EXPECT_EQ(read_bytes(dir_ / "out" / "meta.json"), meta);
  EXPECT_EQ(entries(dir_ / "out").size(), 4u);  // no staging directory left behind

  PrepareOptions forced = options({dir_ / "b.txt"});
  forced.force = true;
  prepare_corpus(forced);
  EXPECT_NE(read_bytes(dir_ / "out" / "train.bin"), train);
  EXPECT_EQ(entries(dir_ / "out").size(), 4u);
  EXPECT_NO_THROW(open_prepared_corpus(dir_ / "out"));
}

TEST_F(Prepare, FailureInAnExistingDirectoryLeavesItAlone) {
  fs::create_directories(dir_ / "out");
  write_text(dir_ / "out" / "notes.txt", "mine");
  write_text(dir_ / "tiny.txt", "abc\n");
  PrepareOptions o = options({dir_ / "tiny.txt"});
  o.tokenizer = TokenizerKind::kBpe;
  o.val_fraction = 0.0;
  o.vocab_size = 5000;  // too large for 4 bytes of text: fails in training
  EXPECT_ERROR_CONTAINS(prepare_corpus(o), "--vocab-size");
  EXPECT_EQ(entries(dir_ / "out"), (std::vector<std::string>{"notes.txt"}));
}

TEST_F(Prepare, OptionErrors) {
  write_text(dir_ / "a.txt", names(10));
  PrepareOptions o = options({dir_ / "a.txt"});
  o.vocab_size = 100;  // char tokenizer
  EXPECT_ERROR_CONTAINS(prepare_corpus(o), "--vocab-size applies to --tokenizer bpe");
  o = options({dir_ / "a.txt"});
  o.val_fraction = 1.0;
  EXPECT_ERROR_CONTAINS(prepare_corpus(o), "--val-fraction");
  o = options({});
  EXPECT_ERROR_CONTAINS(prepare_corpus(o), "--input");
  write_text(dir_ / "one.txt", "x\n");
  EXPECT_ERROR_CONTAINS(prepare_corpus(options({dir_ / "one.txt"})), "--val-fraction 0");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

TEST_F(Prepare, UnseenValCharactersAreCounted) {
  write_text(dir_ / "a.txt", "aaaa\nbbbb\ncccc\nxyzé\n");
  PrepareOptions o = options({dir_ / "a.txt"});
  o.val_fraction = 0.25;
  o.split = SplitMode::kTail;
  const PrepareResult r = prepare_corpus(o);
  EXPECT_EQ(r.val_unknown, 4u);  // x, y, z, é
}

// Issue 17 (found writing fuzz/fuzz_prepared_meta.cpp): the files meta.json names are read from
// DIR, and a name is a plain name inside it. "/dev/zero" made read_file read without end (and a
// FIFO would block); ".." or an absolute path reached other runs' files.
TEST_F(Prepare, MetaNamesOnlyFilesInsideTheDirectory) {
  write_text(dir_ / "names.txt", names(50));
  prepare_corpus(options({dir_ / "names.txt"}));
  const fs::path meta_path = dir_ / "out" / "meta.json";
  const nlohmann::json good = nlohmann::json::parse(read_bytes(meta_path));
  const std::pair<const char*, const char*> fields[] = {
      {"train", "file"}, {"val", "file"}, {"tokenizer", "dir"}};
  for (const char* name : {"/dev/zero", "..", ".", "", "../out/train.bin", "sub/train.bin"}) {
    for (const auto& [part, key] : fields) {
      nlohmann::json bad = good;
      bad[part][key] = name;
      write_text(meta_path, bad.dump());
      EXPECT_ERROR_CONTAINS(open_prepared_corpus(dir_ / "out"),
                            std::string("field \"") + key + "\" is \"" + name +
                                "\", which is not a file name inside");
    }
  }
  write_text(meta_path, good.dump());
  EXPECT_NO_THROW(open_prepared_corpus(dir_ / "out"));
}

// Numbers read from JSON files convert only when they are integers of the field's range: 1e30
// as a uint32_t was an undefined cast, 2^32 + 5 wrapped to 5.
TEST_F(Prepare, MetaNumbersOutOfRangeAreErrors) {
  write_text(dir_ / "names.txt", names(50));
  prepare_corpus(options({dir_ / "names.txt"}));
  const fs::path meta_path = dir_ / "out" / "meta.json";
  const nlohmann::json good = nlohmann::json::parse(read_bytes(meta_path));
  for (const char* v : {"1e30", "4294967301", "-1", "3.5", "true"}) {
    nlohmann::json bad = good;
    bad["tokenizer"]["vocab_size"] = nlohmann::json::parse(v);
    write_text(meta_path, bad.dump());
    EXPECT_ERROR_CONTAINS(open_prepared_corpus(dir_ / "out"),
                          "field \"vocab_size\" has the wrong type or is out of range");
  }
}

// Found by fuzz/fuzz_prepared_meta.cpp (tests/fuzz_corpus/fuzz_prepared_meta/
// edge-format-number.json): "format": 1 made nlohmann's value("format", "") throw its own
// type_error, which escaped as a foreign exception.
TEST_F(Prepare, MetaFormatOfAnotherTypeIsAnError) {
  fs::create_directories(dir_ / "out");
  write_text(dir_ / "out" / "meta.json",
             R"({"format":  1, "tokenizer": {"dir": "/", "vocab_size": 3}})");
  EXPECT_ERROR_CONTAINS(open_prepared_corpus(dir_ / "out"),
                        "field \"format\" has the wrong type or is out of range");
}

TEST_F(Prepare, OpenRefusesAnUnfinishedDirectory) {
  fs::create_directories(dir_ / "out");
  EXPECT_ERROR_CONTAINS(open_prepared_corpus(dir_ / "out"), "no meta.json");
}

}  // namespace
}  // namespace slope::data
