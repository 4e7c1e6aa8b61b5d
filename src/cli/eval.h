// `slope eval`: loss and perplexity of a checkpoint per context length on the validation split
// (train/length_eval.h), as a table (or JSON), a CSV and a gnuplot PNG.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

namespace CLI {
class App;
}

namespace slope::cli {

struct EvalOptions {
  std::filesystem::path checkpoint;
  std::filesystem::path data_dir;
  std::vector<int64_t> lengths = {64, 128, 256, 512};
  int64_t stride = 0;         // 0: non-overlapping windows
  int64_t max_tokens = 0;     // 0: the whole split
  std::filesystem::path csv;  // empty: CHECKPOINT/eval.csv
  std::filesystem::path png;  // empty: the CSV's path with .png
  bool json = false;
  int threads = 0;
};

void add_eval_options(CLI::App& app, EvalOptions& o);

// Evaluates, writes the CSV (atomically) and the plot, prints the table; returns the exit
// code. Throws slope::Error.
int run_eval(const EvalOptions& o);

}  // namespace slope::cli
