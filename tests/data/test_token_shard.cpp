// TokenShard: round trips at both widths, and every way a file can be wrong.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "common/temp_files.h"
#include "files/atomic_file.h"
#include "files/read_file.h"
#include "data/token_shard.h"
#include "slope/attention.h"

namespace slope::data {
namespace {

using testing::read_bytes;
using testing::TempDir;
using testing::write_text;

std::vector<uint32_t> random_tokens(size_t n, uint32_t vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> t(n);
  for (auto& x : t) x = static_cast<uint32_t>(rng() % vocab);
  return t;
}

std::vector<uint32_t> read_all(const TokenShard& shard) {
  std::vector<uint32_t> t(shard.size());
  shard.copy(0, t.size(), t.data());
  return t;
}

void round_trip(uint32_t vocab, uint32_t expected_width) {
  TempDir dir;
  std::vector<uint32_t> tokens = random_tokens(1001, vocab, vocab);
  tokens[7] = vocab - 1;  // the largest id survives the width
  write_token_shard(dir / "s.bin", tokens, vocab);
  EXPECT_EQ(std::filesystem::file_size(dir / "s.bin"),
            kTokenShardHeaderBytes + tokens.size() * expected_width);
  const TokenShard shard = TokenShard::open(dir / "s.bin");
  EXPECT_EQ(shard.width(), expected_width);
  EXPECT_EQ(shard.vocab_size(), vocab);
  EXPECT_EQ(shard.size(), tokens.size());
  EXPECT_EQ(read_all(shard), tokens);
  EXPECT_EQ(shard[7], vocab - 1);
  std::vector<uint32_t> window(5);
  shard.copy(996, 5, window.data());
  EXPECT_EQ(window, std::vector<uint32_t>(tokens.end() - 5, tokens.end()));
}

TEST(TokenShard, RoundTripUint16) { round_trip(1000, 2); }
TEST(TokenShard, RoundTripUint16AtLargestVocab) { round_trip(65536, 2); }
TEST(TokenShard, RoundTripUint32) { round_trip(65537, 4); }
TEST(TokenShard, RoundTripUint32LargeVocab) { round_trip(200000, 4); }

TEST(TokenShard, EmptyShard) {
  TempDir dir;
  write_token_shard(dir / "s.bin", {}, 10);
  const TokenShard shard = TokenShard::open(dir / "s.bin");
  EXPECT_EQ(shard.size(), 0u);
}

// Copying 0 tokens into a null buffer (an empty vector's data()) is valid and touches nothing:
// it passed null to memcpy before, undefined behaviour that fuzz_token_shard's CI smoke found
// (the UBSan pass of the test command runs this test too).
TEST(TokenShard, CopyOfNothingIntoNull) {
  TempDir dir;
  for (uint32_t vocab : {10u, 70000u}) {
    write_token_shard(dir / "s.bin", std::vector<uint32_t>{1, 2, 3}, vocab);
    const TokenShard shard = TokenShard::open(dir / "s.bin");
    EXPECT_NO_THROW(shard.copy(3, 0, nullptr));
    EXPECT_NO_THROW(shard.copy(0, 0, nullptr));
  }
}

TEST(TokenShard, HeaderLayout) {
  TempDir dir;
  write_token_shard(dir / "s.bin", std::vector<uint32_t>{1, 2, 3}, 70000);
  const std::string b = read_bytes(dir / "s.bin");
  ASSERT_EQ(b.size(), 64u + 12u);
  EXPECT_EQ(b.substr(0, 8), "SLOPETOK");
  EXPECT_EQ(b[8], 1);   // version
  EXPECT_EQ(b[12], 4);  // width
  EXPECT_EQ(static_cast<unsigned char>(b[16]), 70000 & 0xFF);
  EXPECT_EQ(b[24], 3);  // count
  EXPECT_EQ(b[64], 1);  // first token, little-endian
  EXPECT_EQ(b[68], 2);
}

TEST(TokenShard, WriterRejectsTokensOutsideTheVocab) {
  TempDir dir;
  EXPECT_ERROR_CONTAINS(write_token_shard(dir / "s.bin", std::vector<uint32_t>{1, 10}, 10),
                        "index 1");
  EXPECT_FALSE(std::filesystem::exists(dir / "s.bin"));
}

TEST(TokenShard, WriteReplacesAtomically) {
  TempDir dir;
  write_token_shard(dir / "s.bin", std::vector<uint32_t>{1, 2}, 10);
  write_token_shard(dir / "s.bin", std::vector<uint32_t>{3, 4, 5}, 10);
  EXPECT_EQ(read_all(TokenShard::open(dir / "s.bin")), (std::vector<uint32_t>{3, 4, 5}));
  // No temporary files are left beside it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path()),
                          std::filesystem::directory_iterator()),
            1);
}

class BrokenShard : public ::testing::Test {
 protected:
  void SetUp() override {
    write_token_shard(dir_ / "s.bin", random_tokens(100, 300, 5), 300);
    bytes_ = read_bytes(dir_ / "s.bin");
  }
  // Writes `bytes` and expects opening to fail with `needle` in the message.
  void expect_open_error(const std::string& bytes, const std::string& needle) {
    write_text(dir_ / "s.bin", bytes);
    EXPECT_ERROR_CONTAINS(TokenShard::open(dir_ / "s.bin"), needle);
  }
  TempDir dir_;
  std::string bytes_;
};

TEST_F(BrokenShard, TruncatedPayload) {
  expect_open_error(bytes_.substr(0, bytes_.size() - 1), "truncated: expected 264 bytes");
  expect_open_error(bytes_.substr(0, bytes_.size() - 1), "found 263");
}

TEST_F(BrokenShard, TruncatedHeader) { expect_open_error(bytes_.substr(0, 30), "truncated"); }

TEST_F(BrokenShard, CorruptPayloadByte) {
  std::string b = bytes_;
  b[64 + 51] ^= 0x01;
  expect_open_error(b, "checksum mismatch");
}

TEST_F(BrokenShard, CorruptVocabSizeInHeader) {
  std::string b = bytes_;
  b[16] ^= 0x40;
  expect_open_error(b, "checksum mismatch");
}

TEST_F(BrokenShard, WrongMagic) {
  std::string b = bytes_;
  b[3] = 'X';
  expect_open_error(b, "not a slope token shard");
  expect_open_error("", "not a slope token shard");
  expect_open_error("hello world, this is a text file\n", "not a slope token shard");
}

TEST_F(BrokenShard, NewerVersion) {
  std::string b = bytes_;
  b[8] = 2;
  expect_open_error(b, "format version 2");
}

TEST_F(BrokenShard, BadWidth) {
  std::string b = bytes_;
  b[12] = 3;
  expect_open_error(b, "token width 3");
}

TEST_F(BrokenShard, TokenAboveVocabWithAValidChecksum) {
  // A writer bug rather than a disk error: the checksum matches, the ids do not fit.
  std::string b = bytes_;
  b[16] = 10;  // vocab 300 -> 10 (little-endian 0x012c -> 0x000a)
  b[17] = 0;
  uint64_t sum = files::fnv1a64(b.data(), 32);
  sum = files::fnv1a64(b.data() + 64, b.size() - 64, sum);
  std::memcpy(b.data() + 32, &sum, 8);
  expect_open_error(b, "is not below the vocab size 10");
}

TEST_F(BrokenShard, TrailingBytes) { expect_open_error(bytes_ + "xx", "2 bytes after its 100"); }

TEST_F(BrokenShard, MissingFile) {
  EXPECT_ERROR_CONTAINS(TokenShard::open(dir_ / "nope.bin"), "slope prepare");
}

TEST(TokenShard, CopyOutsideTheShard) {
  TempDir dir;
  write_token_shard(dir / "s.bin", std::vector<uint32_t>{1, 2, 3}, 10);
  const TokenShard shard = TokenShard::open(dir / "s.bin");
  std::vector<uint32_t> out(4);
  EXPECT_ERROR_CONTAINS(shard.copy(0, 4, out.data()), "outside the shard");
  EXPECT_ERROR_CONTAINS(shard.copy(4, 0, out.data()), "outside the shard");
}

}  // namespace
}  // namespace slope::data
