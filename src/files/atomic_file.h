// Files that are either whole or absent, written as a stream: the bytes go to a temporary file
// beside the target (".NAME.tmp-XXXXXX"), which commit() fsyncs and renames over the target,
// then fsyncs the directory. An error or an exception at any point before the rename leaves the
// old file (or no file) in place and removes the temporary: bad input never corrupts a
// checkpoint. Streaming, a checkpoint never needs a second copy of the weights in memory.
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace slope::files {

class AtomicFile {
 public:
  // Creates the temporary file. Throws slope::Error naming the path and the system's reason.
  explicit AtomicFile(std::filesystem::path path);
  // Without commit(): closes and removes the temporary file, leaving the target untouched.
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t n);  // throws slope::Error (disk full, file too large)
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // Makes the file 0644, fsyncs, closes and renames it over the target, fsyncs the directory.
  void commit();

  const std::filesystem::path& path() const { return path_; }
  const std::string& temp_path() const { return temp_; }  // empty once committed

 private:
  std::filesystem::path path_;
  std::string temp_;
  int fd_ = -1;
};

// The whole file in one call.
void write_file_atomic(const std::filesystem::path& path, std::string_view bytes);

// fsyncs a directory so that renames inside it survive a crash. Throws slope::Error on failure.
void fsync_directory(const std::filesystem::path& dir);

}  // namespace slope::files
