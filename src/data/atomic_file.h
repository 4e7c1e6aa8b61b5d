// Files that are either whole or absent: write a temporary file in the same directory, fsync
// it, rename it over the target, fsync the directory. A crash or an error at any point leaves
// the old file (or no file) in place, never a half-written one.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace slope::data {

// Writes `bytes` to `path` atomically (see above). Throws slope::Error naming the path and the
// system's reason when any step fails; the temporary file is removed then.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// Reads a whole file. Throws slope::Error naming the path when it is missing or unreadable.
std::string read_file(const std::filesystem::path& path);

// fsyncs a directory so that renames inside it survive a crash. Throws slope::Error on failure.
void fsync_directory(const std::filesystem::path& dir);

// FNV-1a, 64 bit: the checksum of token shards and of the files a tokenizer refers to.
// Not cryptographic; it catches truncation, flipped bits and files swapped by mistake.
constexpr uint64_t kFnv1aOffset = 0xcbf29ce484222325ull;
constexpr uint64_t kFnv1aPrime = 0x100000001b3ull;
inline uint64_t fnv1a64(const void* data, size_t n, uint64_t h = kFnv1aOffset) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * kFnv1aPrime;
  return h;
}

// A 64-bit checksum as 16 lower-case hex digits (how JSON files store it).
std::string hex64(uint64_t v);

}  // namespace slope::data
