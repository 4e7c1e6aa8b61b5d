// Several files (or a whole directory) replaced as one, so that a crash — kill -9, power loss —
// at any moment leaves either the old set or the new one, never a mix, and a failed write (disk
// full) leaves the old set untouched.
//
// StagedFiles: for files that must keep their names inside a directory that holds other things
// (a training checkpoint in OUT/, beside the log and best/). The new files are written into
// DIR/<staging>/; commit() fsyncs them and writes the staging's journal (the names, in commit
// order; its presence marks the staging complete), then renames each file into DIR and removes
// the staging. recover_staged_files() runs first thing in every reader and writer of DIR: a
// complete staging is committed (rolled forward), an incomplete one discarded. Between a crash
// and the next recover(), each file in DIR is whole (renames are atomic) and belongs to the old
// or the new set; after it, all of them belong to one set.
//
// replace_directory(): for a directory replaced whole (OUT/best/): the new one is written
// beside it and swapped in with one renameat2(RENAME_EXCHANGE), which is atomic.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace slope::files {

// The journal inside a complete staging directory: one file name per line, in commit order.
inline constexpr char kStagingJournal[] = ".commit";

// Commits a complete DIR/<staging>/ left by an interrupted commit() (renames its remaining files
// into DIR in the journal's order, then removes it) or removes an incomplete one. Nothing to do
// when there is none. Throws slope::Error on a system failure (naming the path).
void recover_staged_files(const std::filesystem::path& dir, const std::string& staging);

class StagedFiles {
 public:
  // Recovers DIR/<staging> (see above), creates DIR when missing, then an empty staging
  // directory. Throws slope::Error on a system failure.
  StagedFiles(std::filesystem::path dir, std::string staging);
  // Without commit(): removes the staging directory, leaving DIR as it was.
  ~StagedFiles();
  StagedFiles(const StagedFiles&) = delete;
  StagedFiles& operator=(const StagedFiles&) = delete;

  // Where to write the new files (plain names; no subdirectories).
  const std::filesystem::path& path() const { return staging_path_; }

  // fsyncs every named file of the staging, writes and fsyncs the journal, then renames each
  // into DIR in this order (put the file that describes the others last) and removes the
  // staging. Throws slope::Error when a named file is missing or on a system failure; before
  // the journal is written that leaves DIR as it was.
  void commit(const std::vector<std::string>& names);

 private:
  std::filesystem::path dir_, staging_path_;
  bool committed_ = false;
};

// Replaces the directory `target` by `staged` (a complete directory in the same parent): fsyncs
// staged's files, renameat2(RENAME_EXCHANGE) when target exists (else rename), fsyncs the parent,
// then removes the old contents, now at `staged`. A crash leaves target old or new, whole; the
// old one may linger at `staged`, and the next writer removes it. Throws slope::Error on a system
// failure (file systems without RENAME_EXCHANGE fall back to two renames, not atomic).
void replace_directory(const std::filesystem::path& staged, const std::filesystem::path& target);

}  // namespace slope::files
