// The `slope` binary. Subcommands so far: `bench attention`. (prepare | train | sample | eval
// arrive with the trainer.) Errors become one line on stderr and a non-zero exit.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/bench_attention.h"
#include "slope/attention.h"

int main(int argc, char** argv) {
  CLI::App app{"slope: fused ALiBi attention (CPU) and, later, the trainer built on it"};
  app.require_subcommand(1);
  CLI::App* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  slope::cli::BenchAttentionOptions attention;
  CLI::App* bench_attention = bench->add_subcommand(
      "attention",
      "time the fused attention variants (forward, forward+backward) against OpenBLAS sgemm "
      "in the same run; --memory adds peak extra memory vs T");
  slope::cli::add_bench_attention_options(*bench_attention, attention);
  CLI11_PARSE(app, argc, argv);
  try {
    if (bench_attention->parsed()) return slope::cli::run_bench_attention(attention);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slope: %s\n", e.what());
    return 1;
  }
  return 0;
}
