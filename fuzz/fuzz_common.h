// What every fuzz target shares: a scratch directory of its own for readers that take a path,
// and FUZZ_CHECK for the invariants a target checks beyond "it did not crash".
//
// A target calls the reader's real entry point; when that reads a file, the input is written to
// a file in the scratch directory first (tmpfs when /dev/shm exists: a write costs microseconds).
// Every reader may throw slope::Error and nothing else: any other exception escapes
// LLVMFuzzerTestOneInput, which libFuzzer reports as a crash.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace slope::fuzz {

// This process's scratch directory, created on first use and removed at a normal exit.
inline const std::filesystem::path& scratch_dir() {
  static const std::filesystem::path dir = [] {
    std::error_code ec;
    std::string base = std::filesystem::is_directory("/dev/shm", ec) ? "/dev/shm" : "/tmp";
    if (const char* t = std::getenv("TMPDIR"); t && *t) base = t;
    std::string tmpl = base + "/slope-fuzz-XXXXXX";
    if (!::mkdtemp(tmpl.data())) {
      std::perror("slope fuzz: mkdtemp");
      std::abort();
    }
    static const std::string keep = tmpl;
    std::atexit([] {
      std::error_code e;
      std::filesystem::remove_all(keep, e);
    });
    return std::filesystem::path(tmpl);
  }();
  return dir;
}

// Writes bytes to scratch_dir()/name (creating parent folders) and returns the path.
inline std::filesystem::path write_scratch(const std::string& name, std::string_view bytes) {
  const std::filesystem::path path = scratch_dir() / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "slope fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

[[noreturn]] inline void invariant_failed(const char* expr, const char* file, int line,
                                          const std::string& detail) {
  std::fprintf(stderr, "%s:%d: invariant failed: %s\n  %s\n", file, line, expr, detail.c_str());
  std::abort();
}

}  // namespace slope::fuzz

// Aborts (a crash libFuzzer saves) when cond is false; detail says what differed.
#define FUZZ_CHECK(cond, detail) \
  ((cond) ? (void)0 : ::slope::fuzz::invariant_failed(#cond, __FILE__, __LINE__, (detail)))
