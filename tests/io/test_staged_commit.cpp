// files/staged_commit.h: a set of files committed as one, and a directory swapped whole. The
// crash cases are built by hand (the states a kill -9 can leave) and recovered; the kill -9 runs
// of `slope train` are tests/cli/test_cli_crash.sh.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "files/atomic_file.h"
#include "files/staged_commit.h"
#include "slope/error.h"

namespace slope::files {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

class StagedCommit : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("slope-staged-" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) +
            "-" + ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    write_file_atomic(dir_ / "a", "old a");
    write_file_atomic(dir_ / "b", "old b");
    write_file_atomic(dir_ / "log", "kept");
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

TEST_F(StagedCommit, CommitReplacesEveryFileAndKeepsTheRest) {
  {
    StagedFiles s(dir_, ".next");
    write_file_atomic(s.path() / "a", "new a");
    write_file_atomic(s.path() / "b", "new b");
    s.commit({"a", "b"});
  }
  EXPECT_EQ(slurp(dir_ / "a"), "new a");
  EXPECT_EQ(slurp(dir_ / "b"), "new b");
  EXPECT_EQ(slurp(dir_ / "log"), "kept");
  EXPECT_FALSE(fs::exists(dir_ / ".next"));
}

TEST_F(StagedCommit, WithoutCommitNothingChanges) {
  {
    StagedFiles s(dir_, ".next");
    write_file_atomic(s.path() / "a", "new a");
  }  // an exception (disk full) unwinds past here
  EXPECT_EQ(slurp(dir_ / "a"), "old a");
  EXPECT_FALSE(fs::exists(dir_ / ".next"));
}

TEST_F(StagedCommit, AMissingFileIsRefusedBeforeAnythingMoves) {
  StagedFiles s(dir_, ".next");
  write_file_atomic(s.path() / "a", "new a");
  EXPECT_THROW(s.commit({"a", "b"}), Error);
  EXPECT_EQ(slurp(dir_ / "a"), "old a");
}

// A kill before the journal: the staging is incomplete and recovery discards it.
TEST_F(StagedCommit, RecoveryDiscardsAnIncompleteStaging) {
  fs::create_directory(dir_ / ".next");
  write_file_atomic(dir_ / ".next" / "a", "new a");
  recover_staged_files(dir_, ".next");
  EXPECT_EQ(slurp(dir_ / "a"), "old a");
  EXPECT_EQ(slurp(dir_ / "b"), "old b");
  EXPECT_FALSE(fs::exists(dir_ / ".next"));
}

// A kill after the journal and the first rename: recovery finishes the commit.
TEST_F(StagedCommit, RecoveryRollsACompleteStagingForward) {
  fs::create_directory(dir_ / ".next");
  write_file_atomic(dir_ / ".next" / "b", "new b");
  write_file_atomic(dir_ / ".next" / kStagingJournal, "a\nb\n");
  write_file_atomic(dir_ / "a", "new a");  // already moved
  recover_staged_files(dir_, ".next");
  EXPECT_EQ(slurp(dir_ / "a"), "new a");
  EXPECT_EQ(slurp(dir_ / "b"), "new b");
  EXPECT_FALSE(fs::exists(dir_ / ".next"));
  recover_staged_files(dir_, ".next");  // nothing left to do
  EXPECT_EQ(slurp(dir_ / "b"), "new b");
}

// Issue 17: the journal is read from disk, and its names are joined to DIR. A name that leaves
// the staging ("../x", "/etc/x", "..") would move files that are not the staging's: it is an
// error naming the journal, and nothing moves.
TEST_F(StagedCommit, AJournalNameOutsideTheStagingIsRefused) {
  fs::create_directory(dir_ / ".next");
  write_file_atomic(dir_ / ".next" / "b", "new b");
  for (const char* bad : {"../a", "/etc/passwd", "..", "sub/b"}) {
    write_file_atomic(dir_ / ".next" / kStagingJournal, std::string("b\n") + bad + "\n");
    try {
      recover_staged_files(dir_, ".next");
      ADD_FAILURE() << "accepted " << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("is not a file name of the staging"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(slurp(dir_ / "b"), "old b");  // nothing moved
    EXPECT_EQ(slurp(dir_ / ".next" / "b"), "new b");
  }
}

TEST_F(StagedCommit, ReplaceDirectorySwapsTheWholeDirectory) {
  fs::create_directories(dir_ / "best" / "tokenizer");
  write_file_atomic(dir_ / "best" / "model", "old model");
  write_file_atomic(dir_ / "best" / "stale", "only in the old one");
  fs::create_directories(dir_ / ".best-next" / "tokenizer");
  write_file_atomic(dir_ / ".best-next" / "model", "new model");
  replace_directory(dir_ / ".best-next", dir_ / "best");
  EXPECT_EQ(slurp(dir_ / "best" / "model"), "new model");
  EXPECT_FALSE(fs::exists(dir_ / "best" / "stale"));
  EXPECT_FALSE(fs::exists(dir_ / ".best-next"));
  // And where there was none yet.
  fs::create_directories(dir_ / ".other-next");
  write_file_atomic(dir_ / ".other-next" / "model", "first");
  replace_directory(dir_ / ".other-next", dir_ / "other");
  EXPECT_EQ(slurp(dir_ / "other" / "model"), "first");
}

}  // namespace
}  // namespace slope::files
