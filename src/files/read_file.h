// Whole-file reads, and the FNV-1a checksum of token shards, tokenizer files and checkpoints.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace slope::files {

// Reads a whole file. Throws slope::Error naming the path when it is missing or unreadable.
std::string read_file(const std::filesystem::path& path);

// True for a plain file name: not empty, not "." or "..", no '/' and no NUL. Names read from a
// file (meta.json's "file", a staging journal's lines) must be plain, so that they stay inside
// the directory they are joined to.
bool is_plain_file_name(std::string_view name);

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

}  // namespace slope::files
