// `slope bench train`: options and entry point. Training throughput of a small GPT (forward,
// backward, AdamW step, zero_grad) on random tokens; bench/train.py runs it beside PyTorch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace CLI {
class App;
}

namespace slope::cli {

struct BenchTrainOptions {
  std::vector<int64_t> vocab = {65, 50304};  // char-level and GPT-2's padded vocabulary
  std::string pos = "alibi";
  int64_t B = 8, T = 256;
  int64_t n_layer = 6, n_head = 6, n_embd = 384;
  int steps = 5;    // timed steps after one warm-up step
  int threads = 0;  // 0: OpenMP's default (all cores, or OMP_NUM_THREADS)
  bool json = false;
  std::string dtype = "fp32";  // --dtype: the linear layers' GEMM inputs, fp32 or bf16
  bool profile = false;        // --profile: wall time per layer call (nn/profile.h)
};

// Registers the options on `app`.
void add_bench_train_options(CLI::App& app, BenchTrainOptions& o);

// Runs the benchmark, printing a table (or JSON lines); returns the exit code.
int run_bench_train(const BenchTrainOptions& o);

}  // namespace slope::cli
