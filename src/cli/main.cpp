// The `slope` binary: prepare | train | sample | eval | export | import | surgery |
// bench attention | bench train. Errors, on the command line or in the work, become one line
// "slope: ..." on stderr and exit code 1.
#include <unistd.h>  // execv

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <memory>

#include "cli/bench_attention.h"
#include "cli/bench_train.h"
#include "cli/config_file.h"
#include "cli/convert.h"
#include "cli/eval.h"
#include "cli/model_io.h"
#include "cli/prepare.h"
#include "cli/sample.h"
#include "cli/train.h"
#include "slope/attention.h"

namespace {

// OpenMP threads that wait at a barrier sleep at once (OMP_WAIT_POLICY=passive) unless the user
// chose otherwise. libgomp's default spins first, which on a machine with other work running
// (a shared box, a build, an MPI neighbour) burns the time slices the thread being waited for
// needs: `slope bench train` at load ~6 on 2 cores ran 2.5x slower than passive (T=256) and 10x
// (T=64) — docs/training-profile.md. libgomp reads the variable once, when it loads, so it is
// set and the binary re-executed before anything runs; an explicit OMP_WAIT_POLICY (active
// included) is kept, and so is a run under valgrind (a re-exec would leave its tool).
void prefer_passive_openmp_waits(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY")) return;
  const char* preload = std::getenv("LD_PRELOAD");
  if (preload && std::strstr(preload, "vgpreload")) return;
  if (setenv("OMP_WAIT_POLICY", "passive", 0) != 0) return;
  execv("/proc/self/exe", argv);  // returns only if it failed: go on with libgomp's default
}

}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp_waits(argv);
  CLI::App app{
      "slope: ALiBi attention (fused, CPU) and small transformers (GPT, encoder, "
      "encoder-decoder) trained end to end"};
  app.require_subcommand(1);

  slope::data::PrepareOptions prepare_options;
  // prepare, train, sample and eval get their descriptions from their add_*_options.
  CLI::App* prepare = app.add_subcommand("prepare");
  slope::cli::add_prepare_options(*prepare, prepare_options);

  slope::cli::TrainCliOptions train_options;
  auto train = std::make_shared<slope::cli::ConfigurableSubcommand>("train", "");
  app.add_subcommand(train);
  slope::cli::add_train_options(*train, train_options);

  slope::cli::SampleOptions sample_options;
  CLI::App* sample = app.add_subcommand("sample");
  slope::cli::add_sample_options(*sample, sample_options);

  slope::cli::EvalOptions eval_options;
  CLI::App* eval = app.add_subcommand("eval");
  slope::cli::add_eval_options(*eval, eval_options);

  slope::cli::ExportOptions export_options;
  CLI::App* export_cmd = app.add_subcommand("export");
  slope::cli::add_export_options(*export_cmd, export_options);

  slope::cli::ImportOptions import_options;
  CLI::App* import_cmd = app.add_subcommand("import");
  slope::cli::add_import_options(*import_cmd, import_options);

  slope::cli::SurgeryOptions surgery_options;
  CLI::App* surgery = app.add_subcommand("surgery");
  slope::cli::add_surgery_options(*surgery, surgery_options);

  CLI::App* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  slope::cli::BenchAttentionOptions attention;
  CLI::App* bench_attention = bench->add_subcommand(
      "attention",
      "time the fused attention variants (forward, forward+backward) against OpenBLAS sgemm "
      "in the same run; --memory adds peak extra memory vs T");
  slope::cli::add_bench_attention_options(*bench_attention, attention);
  slope::cli::BenchTrainOptions train_bench;
  CLI::App* bench_train = bench->add_subcommand(
      "train",
      "training throughput of a GPT (L6 H6 C384, T=256, B=8) on random tokens: tokens/s and "
      "model FLOP/s against a 1024^3 sgemm on the linear layers' GEMM library in the same run");
  slope::cli::add_bench_train_options(*bench_train, train_bench);

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
    if (train->parsed()) {
      train->apply_config();
      return slope::cli::run_train(*train, train_options);
    }
    if (sample->parsed()) return slope::cli::run_sample(sample_options);
    if (eval->parsed()) return slope::cli::run_eval(eval_options);
    if (export_cmd->parsed()) return slope::cli::run_export(export_options);
    if (import_cmd->parsed()) return slope::cli::run_import(import_options);
    if (surgery->parsed()) return slope::cli::run_surgery(surgery_options);
    if (bench_attention->parsed()) return slope::cli::run_bench_attention(attention);
    if (bench_train->parsed()) return slope::cli::run_bench_train(train_bench);
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::fprintf(stderr, "slope: %s\n", e.what());
    return 1;
  }
  return 0;
}
