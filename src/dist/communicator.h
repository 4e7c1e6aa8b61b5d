// The processes of a data-parallel run and what they say to each other: rank/size, an in-place
// sum over every rank, a broadcast, a barrier. The trainer (train/train_loop.h) talks to this
// interface only, so that another transport (NCCL, for GPUs) plugs in without touching it.
//
//   SingleProcess     size 1: every call is a no-op (a plain `slope train`, or a build without MPI)
//   MpiCommunicator   MPI_COMM_WORLD (mpi_communicator.cpp, built when CMake finds MPI)
//
// Every collective must be called by every rank in the same order with the same sizes, as MPI
// requires; a rank that stops calling them is caught by the watchdog (dist/watchdog.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace slope::dist {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;  // 0 .. size-1; rank 0 alone prints and writes files
  virtual int size() const = 0;
  // data[i] ← Σ over ranks of data[i], the same bytes on every rank afterwards.
  virtual void allreduce_sum(float* data, int64_t n) = 0;
  virtual void allreduce_sum(double* data, int64_t n) = 0;
  // data (bytes) ← root's data on every rank.
  virtual void broadcast(void* data, int64_t bytes, int root) = 0;
  virtual void barrier() = 0;
  virtual std::string name() const = 0;  // "single process", "MPI (Open MPI 4.1.4)"
};

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void broadcast(void*, int64_t, int) override {}
  void barrier() override {}
  std::string name() const override { return "single process"; }
};

// True when this build has the MPI communicator (CMake found MPI).
bool have_mpi();

// True when this process was started by mpirun/mpiexec (Open MPI's, MPICH's or a PMIx launcher's
// environment variables say so), whatever the number of ranks.
bool launched_by_mpirun();

// The communicator of this process: MPI's when this build has it and mpirun started the process
// (MPI_Init here, MPI_Finalize when it is destroyed), else a SingleProcess. A collective that
// waits longer than timeout_s seconds (0: forever) means another rank is gone or stuck: the
// process prints one line saying so and exits with status 1, and mpirun ends the others.
// Throws slope::Error when mpirun started more than one rank but this build has no MPI (each
// would train alone into the same OUT).
std::unique_ptr<Communicator> init_communicator(int* argc, char*** argv, double timeout_s);

}  // namespace slope::dist
