// The `slope` binary. Subcommands so far: `prepare`, `bench attention`. (train | sample | eval
// arrive with the trainer.) Errors, on the command line or in the work, become one line
// "slope: ..." on stderr and exit code 1.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>

#include "cli/bench_attention.h"
#include "cli/prepare.h"
#include "slope/attention.h"

int main(int argc, char** argv) {
  CLI::App app{"slope: fused ALiBi attention (CPU) and, later, the trainer built on it"};
  app.require_subcommand(1);

  slope::data::PrepareOptions prepare_options;
  CLI::App* prepare =
      app.add_subcommand("prepare", "text files -> tokenizer + token shards for `slope train`");
  slope::cli::add_prepare_options(*prepare, prepare_options);

  CLI::App* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  slope::cli::BenchAttentionOptions attention;
  CLI::App* bench_attention = bench->add_subcommand(
      "attention",
      "time the fused attention variants (forward, forward+backward) against OpenBLAS sgemm "
      "in the same run; --memory adds peak extra memory vs T");
  slope::cli::add_bench_attention_options(*bench_attention, attention);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "slope: %s (see --help)\n", e.what());
    return 1;
  }
  try {
    if (prepare->parsed()) return slope::cli::run_prepare(prepare_options);
    if (bench_attention->parsed()) return slope::cli::run_bench_attention(attention);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slope: %s\n", e.what());
    return 1;
  }
  return 0;
}
