// A prepared directory is written all or nothing: every output goes into a staging directory
// DIR/.tmp-prepare-XXXXXX first and is moved into DIR at the end, meta.json last, so a DIR with
// meta.json is complete and a failed run leaves DIR as it was. `slope prepare` uses it for text
// corpora (prepare.h) and for pairs (pairs.h).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace slope::data {

// Refuses `dir` when it is a file, or when it holds any of `outputs` and `force` is false
// ("... already holds prepared data (meta.json, train.bin): pass --force ..."). Call it before
// the long work, so a refusal comes at once.
void check_output_dir(const std::filesystem::path& dir, const std::vector<std::string>& outputs,
                      bool force);

class StagedDir {
 public:
  // Creates `dir` when missing, then the staging directory inside it. `outputs` are the names
  // commit() moves, in order: put meta.json last. Throws slope::Error on a system failure.
  StagedDir(std::filesystem::path dir, std::vector<std::string> outputs);
  // Without commit(): removes the staging directory, and `dir` too when this made it and it is
  // empty.
  ~StagedDir();
  StagedDir(const StagedDir&) = delete;
  StagedDir& operator=(const StagedDir&) = delete;

  // Where to write the outputs.
  const std::filesystem::path& path() const { return tmp_; }

  // fsyncs the staging directory and renames each output into `dir`. With `force`, the old
  // last output (meta.json) goes first, so that a crash in between leaves a directory that reads
  // as unprepared rather than a mix of two runs, and each old output is replaced.
  void commit(bool force);

 private:
  std::filesystem::path dir_, tmp_;
  std::vector<std::string> outputs_;
  bool created_dir_ = false;
};

}  // namespace slope::data
