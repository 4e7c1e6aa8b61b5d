// What the trainer tests share: a fresh directory per test, a tiny prepared corpus of made-up
// names, tiny training options, and reading files to check they did not change.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <stdexcept>
#include <string>

#include "common/temp_files.h"
#include "data/prepare.h"
#include "slope/attention.h"  // slope::Error
#include "train/train_options.h"

namespace slope::train::testing {

using slope::testing::TempDir;

using slope::testing::read_bytes;

// Every regular file under dir (relative path → bytes).
inline std::map<std::string, std::string> snapshot(const std::filesystem::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir))
    if (e.is_regular_file())
      files[std::filesystem::relative(e.path(), dir).string()] = read_bytes(e.path());
  return files;
}

// Prepares `lines` made-up names (char tokenizer) into dir.
inline void prepare_names(const std::filesystem::path& dir, int lines = 1500) {
  static const char* const kSyllables[] = {"an", "na", "li", "sa", "mar", "el", "jo", "ra",
                                           "be", "th", "ka", "ri", "on",  "ia", "em"};
  std::mt19937_64 rng(3);
  std::string text;
  for (int i = 0; i < lines; ++i) {
    const int n = 2 + static_cast<int>(rng() % 3);
    for (int k = 0; k < n; ++k) text += kSyllables[rng() % 15];
    text += "\n";
  }
  std::filesystem::create_directories(dir);
  const std::filesystem::path input = dir.parent_path() / "names.txt";
  std::ofstream(input, std::ios::binary) << text;
  data::PrepareOptions o;
  o.inputs = {input};
  o.out_dir = dir;
  o.force = true;
  data::prepare_corpus(o);
}

// A model and run small enough for a test: 2 layers of 32 channels, blocks of 16 tokens.
inline TrainOptions tiny_options(const std::filesystem::path& data,
                                 const std::filesystem::path& out) {
  TrainOptions o;
  o.data_dir = data, o.out_dir = out;
  o.model.n_layer = 2, o.model.n_head = 2, o.model.n_embd = 32, o.model.block_size = 16;
  o.model.pos = model::Position::alibi;
  o.batch_size = 4, o.max_iters = 6, o.warmup_iters = 2;
  o.eval_interval = 2, o.eval_iters = 2;
  return o;
}

}  // namespace slope::train::testing
