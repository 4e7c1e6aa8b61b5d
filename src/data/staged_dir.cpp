#include "data/staged_dir.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <utility>

#include "files/atomic_file.h"
#include "files/read_file.h"
#include "slope/error.h"

namespace slope::data {
namespace fs = std::filesystem;

void check_output_dir(const fs::path& dir, const std::vector<std::string>& outputs, bool force) {
  if (dir.empty()) throw Error("no output directory: pass --out DIR");
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
    throw Error(dir.string() + " exists and is not a directory: choose another --out");
  }
  if (force) return;
  std::string found;
  for (const std::string& name : outputs) {
    if (fs::exists(dir / name, ec)) found += (found.empty() ? "" : ", ") + name;
  }
  if (!found.empty()) {
    throw Error(dir.string() + " already holds prepared data (" + found +
                "): pass --force to replace it, or choose another --out");
  }
}

StagedDir::StagedDir(fs::path dir, std::vector<std::string> outputs)
    : dir_(std::move(dir)), outputs_(std::move(outputs)) {
  std::error_code ec;
  if (!fs::exists(dir_, ec)) {
    fs::create_directories(dir_, ec);
    if (ec) throw Error("cannot create " + dir_.string() + ": " + ec.message());
    created_dir_ = true;
  }
  std::string templ = (dir_ / ".tmp-prepare-XXXXXX").string();
  if (::mkdtemp(templ.data()) == nullptr) {
    const int err = errno;
    if (created_dir_) fs::remove(dir_, ec);
    throw Error("cannot create a staging directory in " + dir_.string() + ": " +
                std::strerror(err));
  }
  tmp_ = templ;
}

StagedDir::~StagedDir() {
  std::error_code ec;
  if (!tmp_.empty()) fs::remove_all(tmp_, ec);
  if (created_dir_ && fs::is_empty(dir_, ec)) fs::remove(dir_, ec);
}

void StagedDir::commit(bool force) {
  std::error_code ec;
  files::fsync_directory(tmp_);
  if (force && !outputs_.empty()) {
    fs::remove(dir_ / outputs_.back(), ec);
    files::fsync_directory(dir_);
  }
  for (const std::string& name : outputs_) {
    const fs::path target = dir_ / name;
    if (force) {
      fs::remove_all(target, ec);
      if (ec) throw Error("cannot remove the old " + target.string() + ": " + ec.message());
    }
    fs::rename(tmp_ / name, target, ec);
    if (ec) throw Error("cannot move " + target.string() + " into place: " + ec.message());
  }
  files::fsync_directory(dir_);
  created_dir_ = false;
}

}  // namespace slope::data
