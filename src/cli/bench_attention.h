// `slope bench attention`: options and entry point, shared by the `slope` binary and
// bench/attention.
#pragma once

#include <cstdint>
#include <vector>

namespace CLI {
class App;
}

namespace slope::cli {

struct BenchAttentionOptions {
  std::vector<int64_t> T = {256, 1024, 2048, 4096, 8192};
  int64_t B = 4, H = 12, D = 64;
  int reps = 0;  // 0: adaptive (≥ 3 runs and ≥ 0.5 s)
  bool memory = false, json = false;
};

// Registers the options on `app` (a subcommand or a program of its own).
void add_bench_attention_options(CLI::App& app, BenchAttentionOptions& o);

// Runs the benchmark, printing a table (or JSON lines); returns the exit code.
int run_bench_attention(const BenchAttentionOptions& o);

}  // namespace slope::cli
