#include "data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "files/atomic_file.h"
#include "files/read_file.h"
#include "slope/error.h"

namespace slope::data {
namespace fs = std::filesystem;

// Tokens and header fields are stored little-endian and copied with memcpy.
static_assert(std::endian::native == std::endian::little,
              "token shards assume a little-endian host");

namespace {

constexpr size_t kChecksummedHeaderBytes = 32;  // the checksum covers the header up to itself

template <typename T>
T load(const unsigned char* p) {
  T v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <typename T>
void store(unsigned char* p, T v) {
  std::memcpy(p, &v, sizeof v);
}

}  // namespace

void write_token_shard(const fs::path& path, std::span<const uint32_t> tokens,
                       uint32_t vocab_size) {
  if (vocab_size == 0) throw Error(path.string() + ": cannot write a shard with vocab size 0");
  const uint32_t width = token_width_for_vocab(vocab_size);
  std::string bytes(kTokenShardHeaderBytes + tokens.size() * width, '\0');
  auto* p = reinterpret_cast<unsigned char*>(bytes.data());
  std::memcpy(p, kTokenShardMagic, sizeof kTokenShardMagic);
  store<uint32_t>(p + 8, kTokenShardVersion);
  store<uint32_t>(p + 12, width);
  store<uint32_t>(p + 16, vocab_size);
  store<uint64_t>(p + 24, tokens.size());
  unsigned char* payload = p + kTokenShardHeaderBytes;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] >= vocab_size) {
      throw Error(path.string() + ": token " + std::to_string(tokens[i]) + " at index " +
                  std::to_string(i) + " is not below the vocab size " + std::to_string(vocab_size));
    }
    if (width == 2) {
      store<uint16_t>(payload + 2 * i, static_cast<uint16_t>(tokens[i]));
    } else {
      store<uint32_t>(payload + 4 * i, tokens[i]);
    }
  }
  uint64_t h = files::fnv1a64(p, kChecksummedHeaderBytes);
  h = files::fnv1a64(payload, tokens.size() * width, h);
  store<uint64_t>(p + 32, h);
  files::write_file_atomic(path, bytes);
}

TokenShard TokenShard::open(const fs::path& path) {
  const std::string name = path.string();
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) {
    throw Error(name + ": cannot open token shard: " + std::strerror(errno) +
                (errno == ENOENT ? " (run `slope prepare` first?)" : ""));
  }
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw Error(name + ": cannot stat: " + std::strerror(err));
  }
  const auto file_bytes = static_cast<uint64_t>(st.st_size);
  TokenShard shard;
  shard.path_ = path;
  if (file_bytes > 0) {
    shard.map_ = ::mmap(nullptr, file_bytes, PROT_READ, MAP_PRIVATE, fd, 0);
    if (shard.map_ == MAP_FAILED) {
      const int err = errno;
      shard.map_ = nullptr;
      ::close(fd);
      throw Error(name + ": cannot map: " + std::strerror(err));
    }
    shard.map_bytes_ = file_bytes;
  }
  ::close(fd);  // the mapping keeps the file open

  const auto* p = static_cast<const unsigned char*>(shard.map_);
  const size_t magic_seen = std::min<uint64_t>(file_bytes, sizeof kTokenShardMagic);
  if (file_bytes == 0 || std::memcmp(p, kTokenShardMagic, magic_seen) != 0) {
    throw Error(name + ": not a slope token shard (it does not start with \"SLOPETOK\")");
  }
  if (file_bytes < kTokenShardHeaderBytes) {
    throw Error(name + ": token shard is truncated: expected at least " +
                std::to_string(kTokenShardHeaderBytes) + " bytes of header, found " +
                std::to_string(file_bytes));
  }
  const auto version = load<uint32_t>(p + 8);
  if (version == 0 || version > kTokenShardVersion) {
    throw Error(name + ": token shard format version " + std::to_string(version) +
                ", but this build of slope reads version " + std::to_string(kTokenShardVersion) +
                ": use a newer slope, or run `slope prepare` again");
  }
  const auto width = load<uint32_t>(p + 12);
  const auto vocab = load<uint32_t>(p + 16);
  const auto count = load<uint64_t>(p + 24);
  const auto stored_sum = load<uint64_t>(p + 32);
  if (width != 2 && width != 4) {
    throw Error(name + ": token width " + std::to_string(width) +
                " bytes in the header (must be 2 or 4): the file is corrupt");
  }
  if (vocab == 0 || (width == 2 && vocab > 65536)) {
    throw Error(name + ": vocab size " + std::to_string(vocab) + " does not fit token width " +
                std::to_string(width) + ": the file is corrupt");
  }
  const uint64_t payload_bytes = count * width;
  if (count > (UINT64_MAX - kTokenShardHeaderBytes) / width) {
    throw Error(name + ": token count " + std::to_string(count) + " is impossible: corrupt");
  }
  const uint64_t expected = kTokenShardHeaderBytes + payload_bytes;
  if (file_bytes < expected) {
    throw Error(name + ": token shard is truncated: expected " + std::to_string(expected) +
                " bytes (" + std::to_string(count) + " tokens), found " +
                std::to_string(file_bytes));
  }
  if (file_bytes > expected) {
    throw Error(name + ": token shard has " + std::to_string(file_bytes - expected) +
                " bytes after its " + std::to_string(count) + " tokens: the file is corrupt");
  }
  const unsigned char* payload = p + kTokenShardHeaderBytes;
  uint64_t sum = files::fnv1a64(p, kChecksummedHeaderBytes);
  sum = files::fnv1a64(payload, payload_bytes, sum);
  if (sum != stored_sum) {
    throw Error(name + ": token shard checksum mismatch (stored " + files::hex64(stored_sum) +
                ", computed " + files::hex64(sum) +
                "): the file is corrupt; run `slope prepare --force` to rebuild it");
  }
  shard.tokens_ = payload;
  shard.size_ = count;
  shard.vocab_size_ = vocab;
  shard.width_ = width;
  for (uint64_t i = 0; i < count; ++i) {
    if (shard[i] >= vocab) {
      throw Error(name + ": token " + std::to_string(shard[i]) + " at index " + std::to_string(i) +
                  " is not below the vocab size " + std::to_string(vocab) +
                  ": the file is corrupt");
    }
  }
  return shard;
}

TokenShard::TokenShard(TokenShard&& other) noexcept { *this = std::move(other); }

TokenShard& TokenShard::operator=(TokenShard&& other) noexcept {
  if (this != &other) {
    unmap();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    tokens_ = std::exchange(other.tokens_, nullptr);
    size_ = std::exchange(other.size_, 0);
    vocab_size_ = std::exchange(other.vocab_size_, 0);
    width_ = std::exchange(other.width_, 0);
  }
  return *this;
}

TokenShard::~TokenShard() { unmap(); }

void TokenShard::unmap() {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
}

uint32_t TokenShard::operator[](uint64_t i) const {
  assert(i < size_);
  return width_ == 2 ? load<uint16_t>(tokens_ + 2 * i) : load<uint32_t>(tokens_ + 4 * i);
}

void TokenShard::copy(uint64_t start, uint64_t n, uint32_t* out) const {
  if (start > size_ || n > size_ - start) {
    throw Error(path_.string() + ": tokens [" + std::to_string(start) + ", " +
                std::to_string(start + n) + ") are outside the shard of " + std::to_string(size_) +
                " tokens");
  }
  if (n == 0) return;  // out may be null then (an empty vector's data()): memcpy must not see it
  if (width_ == 4) {
    std::memcpy(out, tokens_ + 4 * start, n * 4);
    return;
  }
  for (uint64_t i = 0; i < n; ++i) out[i] = load<uint16_t>(tokens_ + 2 * (start + i));
}

}  // namespace slope::data
