// `slope train`: options and entry point (the work is slope::train::train_gpt).
#pragma once

#include <string>

#include "cli/config_file.h"
#include "train/train_options.h"

namespace slope::cli {

struct TrainCliOptions {
  train::TrainOptions train;
  std::string arch = "gpt";
  std::string dtype = "fp32";   // --dtype: fp32 or bf16 GEMM inputs (train::TrainOptions::dtype)
  std::string pos = "alibi";    // alibi-symmetric when --arch is not gpt and --pos is not given
  int threads = 0;              // 0: OpenMP's default (all cores, or OMP_NUM_THREADS)
  double dist_timeout = 600.0;  // --dist-timeout: seconds a rank waits for the others (0: ever)
};

// Registers the options of `slope train` on `app`, writing into `o`.
void add_train_options(ConfigurableSubcommand& app, TrainCliOptions& o);

// Trains (or resumes), showing progress on stderr and a summary on stdout; returns the exit
// code. With --resume, every flag not given takes the checkpoint's value. Throws slope::Error.
// Under mpirun (a build with MPI), each process is one rank of a data-parallel run
// (dist/communicator.h): rank 0 alone prints, and errors are reported here, once, with the
// exit code 1 (an error on one rank alone: "slope: rank R: ...", then the rank exits and
// mpirun ends the others).
int run_train(const ConfigurableSubcommand& app, TrainCliOptions& o);

// --threads: OpenMP's and OpenBLAS's thread count (0 leaves the defaults).
void set_threads(int threads);

}  // namespace slope::cli
