// `slope eval`: loss and perplexity of a checkpoint per context length on the validation split
// (train/length_eval.h), as a table (or JSON), a CSV and a gnuplot PNG.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
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
  // Encoder and seq2seq checkpoints (cli/encdec_cli.h).
  std::string split = "test";         // seq2seq: test | val | train
  int64_t beam = 1;                   // seq2seq: beam width (1: greedy)
  int64_t bucket_width = 4;           // seq2seq: word-length buckets, characters
  int64_t batch_size = 64;            // words decoded together / MLM windows per batch
  int64_t max_words = 0;              // seq2seq: 0 = the whole split
  std::filesystem::path predictions;  // seq2seq: a TSV of every word's output, when given
  int64_t eval_batches = 20;          // encoder: batches per length
  double mask_prob = 0.15;            // encoder
  uint64_t seed = 1337;               // encoder: the masking of the eval windows
  int threads = 0;
};

void add_eval_options(CLI::App& app, EvalOptions& o);

// Evaluates, writes the CSV (atomically) and the plot, prints the table; returns the exit
// code. Throws slope::Error.
int run_eval(const EvalOptions& o);

}  // namespace slope::cli
