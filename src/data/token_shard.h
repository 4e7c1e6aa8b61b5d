// TokenShard: a file of token ids, the output of `slope prepare` and the input of training.
//
// Layout (little-endian), a 64-byte header then the tokens:
//
//   offset  type      field
//        0  char[8]   magic "SLOPETOK"
//        8  uint32    format version (kTokenShardVersion)
//       12  uint32    token width in bytes: 2 (uint16 ids) when V ≤ 65536, else 4 (uint32)
//       16  uint32    vocab size V; every token is < V
//       20  uint32    reserved, 0
//       24  uint64    token count N
//       32  uint64    checksum: FNV-1a 64 over header bytes [0, 32), then the N·width payload
//       40  byte[24]  reserved, 0
//       64  tokens    (N,) ids, `width` bytes each
//
// The reader checks all of it (magic, version, width, size, checksum, every token < V) before
// handing out a single token, so a truncated or corrupt file is an error, never silent garbage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace slope::data {

constexpr char kTokenShardMagic[8] = {'S', 'L', 'O', 'P', 'E', 'T', 'O', 'K'};
constexpr uint32_t kTokenShardVersion = 1;
constexpr size_t kTokenShardHeaderBytes = 64;

// 2 when every id of a vocabulary of V fits in uint16, else 4.
constexpr uint32_t token_width_for_vocab(uint64_t V) { return V <= 65536 ? 2 : 4; }

// Writes tokens (N,) as a shard, atomically (temporary file, fsync, rename). Throws
// slope::Error when a token is ≥ vocab_size or the file cannot be written.
void write_token_shard(const std::filesystem::path& path, std::span<const uint32_t> tokens,
                       uint32_t vocab_size);

// A validated shard, memory-mapped read-only. Move-only; the mapping lives as long as it does.
class TokenShard {
 public:
  // Maps and validates the file. Throws slope::Error naming the path and what is wrong:
  // "not a slope token shard", "truncated: expected N bytes, found M", "checksum mismatch", ...
  static TokenShard open(const std::filesystem::path& path);

  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  TokenShard(const TokenShard&) = delete;
  TokenShard& operator=(const TokenShard&) = delete;
  ~TokenShard();

  uint64_t size() const { return size_; }  // N, the number of tokens
  uint32_t vocab_size() const { return vocab_size_; }
  uint32_t width() const { return width_; }  // bytes per token: 2 or 4
  const std::filesystem::path& path() const { return path_; }

  // Token i (i < N; unchecked in release builds).
  uint32_t operator[](uint64_t i) const;

  // out (n,) = tokens [start, start + n). Throws slope::Error when the range leaves the shard.
  void copy(uint64_t start, uint64_t n, uint32_t* out) const;

 private:
  TokenShard() = default;
  void unmap();

  std::filesystem::path path_;
  void* map_ = nullptr;  // whole file, read-only
  size_t map_bytes_ = 0;
  const unsigned char* tokens_ = nullptr;  // (N, width) bytes, inside map_
  uint64_t size_ = 0;
  uint32_t vocab_size_ = 0;
  uint32_t width_ = 0;
};

}  // namespace slope::data
