// Atomic, streamed file writes (see atomic_file.h).
#include "files/atomic_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "slope/error.h"  // slope::Error

namespace slope::files {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what, const fs::path& path, int err) {
  throw Error(what + " " + path.string() + ": " + std::strerror(err));
}

fs::path directory_of(const fs::path& path) {
  return path.has_parent_path() ? path.parent_path() : fs::path(".");
}

}  // namespace

void fsync_directory(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail("cannot open directory", dir, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail("cannot fsync directory", dir, err);
}

AtomicFile::AtomicFile(fs::path path) : path_(std::move(path)) {
  // ".NAME.tmp-XXXXXX" (built with append: GCC 12 warns falsely on "." + std::string).
  std::string name(".");
  name.append(path_.filename().string()).append(".tmp-XXXXXX");
  std::string templ = (directory_of(path_) / name).string();
  fd_ = ::mkstemp(templ.data());
  if (fd_ < 0) fail("cannot create a temporary file to write", path_, errno);
  temp_ = templ;
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!temp_.empty()) ::unlink(temp_.c_str());
}

void AtomicFile::write(const void* data, size_t n) {
  if (fd_ < 0) throw Error("AtomicFile: write to " + path_.string() + " after commit");
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    const ssize_t w = ::write(fd_, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", path_, errno);
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void AtomicFile::commit() {
  if (fd_ < 0) throw Error("AtomicFile: " + path_.string() + " is committed twice");
  // mkstemp makes the file 0600; what slope writes is shared like any other file (0644).
  if (::fchmod(fd_, 0644) != 0) fail("cannot set permissions of", path_, errno);
  if (::fsync(fd_) != 0) fail("cannot fsync", path_, errno);
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) fail("cannot close", path_, errno);
  if (::rename(temp_.c_str(), path_.c_str()) != 0) fail("cannot rename into", path_, errno);
  temp_.clear();
  fsync_directory(directory_of(path_));
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  AtomicFile f(path);
  f.write(bytes);
  f.commit();
}

}  // namespace slope::files
