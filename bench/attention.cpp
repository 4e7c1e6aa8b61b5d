// bench/attention: the same benchmark as `slope bench attention`, as a program of its own.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/bench_attention.h"

int main(int argc, char** argv) {
  CLI::App app{"bench/attention: slope's fused CPU attention variants vs OpenBLAS sgemm"};
  slope::cli::BenchAttentionOptions o;
  slope::cli::add_bench_attention_options(app, o);
  CLI11_PARSE(app, argc, argv);
  try {
    return slope::cli::run_bench_attention(o);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention: %s\n", e.what());
    return 1;
  }
}
