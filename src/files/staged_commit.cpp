// Files and directories replaced as one (see staged_commit.h).
#include "files/staged_commit.h"

#include <fcntl.h>
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "files/atomic_file.h"
#include "files/read_file.h"
#include "slope/error.h"

namespace slope::files {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void fail(const std::string& what, const fs::path& path, int err) {
  throw Error(what + " " + path.string() + ": " + std::strerror(err));
}

void fsync_file(const fs::path& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) fail("cannot open", path, errno);
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  if (rc != 0) fail("cannot fsync", path, err);
}

// fsyncs every regular file and directory under dir, then dir.
void fsync_tree(const fs::path& dir) {
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory(ec))
      fsync_directory(it->path());
    else if (it->is_regular_file(ec))
      fsync_file(it->path());
  }
  if (ec) fail("cannot list", dir, ec.value());
  fsync_directory(dir);
}

void remove_tree(const fs::path& path) {
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) fail("cannot remove", path, ec.value());
}

void rename_or_fail(const fs::path& from, const fs::path& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0)
    fail("cannot rename " + from.string() + " to", to, errno);
}

std::vector<std::string> read_journal(const fs::path& journal) {
  std::ifstream in(journal);
  if (!in) fail("cannot read", journal, errno);
  std::vector<std::string> names;
  for (std::string line; std::getline(in, line);) {
    if (line.empty()) continue;
    // The journal names files of the staging; a name that leaves it is not ours to move.
    if (!is_plain_file_name(line))
      throw Error(journal.string() + ": \"" + line +
                  "\" is not a file name of the staging: the journal is corrupt; move " +
                  journal.parent_path().string() + " away and run again");
    names.push_back(line);
  }
  return names;
}

// Renames each name still in the staging into dir, in order; then removes the staging.
void finish_commit(const fs::path& dir, const fs::path& staging,
                   const std::vector<std::string>& names) {
  std::error_code ec;
  for (const std::string& name : names)
    if (fs::exists(staging / name, ec)) rename_or_fail(staging / name, dir / name);
  fsync_directory(dir);
  remove_tree(staging);
}

}  // namespace

void recover_staged_files(const fs::path& dir, const std::string& staging) {
  const fs::path path = dir / staging;
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  if (fs::exists(path / kStagingJournal, ec))
    finish_commit(dir, path, read_journal(path / kStagingJournal));
  else
    remove_tree(path);
}

StagedFiles::StagedFiles(fs::path dir, std::string staging)
    : dir_(std::move(dir)), staging_path_(dir_ / staging) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) fail("cannot create directory", dir_, ec.value());
  recover_staged_files(dir_, staging);
  fs::create_directory(staging_path_, ec);
  if (ec) fail("cannot create directory", staging_path_, ec.value());
}

StagedFiles::~StagedFiles() {
  if (committed_) return;
  std::error_code ec;
  fs::remove_all(staging_path_, ec);  // best effort: the next recover() removes what is left
}

void StagedFiles::commit(const std::vector<std::string>& names) {
  std::ostringstream journal;
  for (const std::string& name : names) {
    if (name.empty() || name.find('/') != std::string::npos || name.find('\n') != std::string::npos)
      throw Error("StagedFiles: invalid file name '" + name + "'");
    std::error_code ec;
    if (!fs::is_regular_file(staging_path_ / name, ec))
      throw Error("cannot commit " + (dir_ / name).string() + ": " +
                  (staging_path_ / name).string() + " was not written");
    fsync_file(staging_path_ / name);
    journal << name << '\n';
  }
  // The journal is written atomically and fsynced with the directory: once it exists, the
  // staging is complete and recover() commits it.
  write_file_atomic(staging_path_ / kStagingJournal, journal.str());
  committed_ = true;  // from here on the staging is the new set: never removed uncommitted
  finish_commit(dir_, staging_path_, names);
}

void replace_directory(const fs::path& staged, const fs::path& target) {
  fsync_tree(staged);
  std::error_code ec;
  const fs::path parent = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::exists(target, ec)) {
    rename_or_fail(staged, target);
  } else if (::renameat2(AT_FDCWD, staged.c_str(), AT_FDCWD, target.c_str(), RENAME_EXCHANGE) !=
             0) {
    const int err = errno;
    if (err != EINVAL && err != ENOSYS && err != ENOTSUP)
      fail("cannot exchange " + staged.string() + " with", target, err);
    // No RENAME_EXCHANGE on this file system: two renames (a crash in between leaves no target).
    const fs::path old = staged.string() + ".old";
    remove_tree(old);
    rename_or_fail(target, old);
    rename_or_fail(staged, target);
    fsync_directory(parent);
    remove_tree(old);
    return;
  }
  fsync_directory(parent);
  remove_tree(staged);  // the old contents, after an exchange
}

}  // namespace slope::files
