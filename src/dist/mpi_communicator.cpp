// MpiCommunicator: the Communicator of MPI_COMM_WORLD (see communicator.h). Built only when CMake
// finds MPI; the build without it has single_process.cpp instead.
//
// MPI is initialised with MPI_THREAD_FUNNELED: only the main thread calls MPI (OpenMP's threads
// compute, the watchdog's thread only watches). Errors return (MPI_ERRORS_RETURN) and become
// slope::Error, rather than MPI's default abort with its own banner.
// The C interface only (the C++ bindings, deprecated, would need libmpi_cxx).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <climits>
#include <string>

#include "dist/communicator.h"
#include "dist/launch_env.h"
#include "dist/watchdog.h"
#include "slope/error.h"

namespace slope::dist {

namespace {

void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw Error(std::string(call) + " failed: " + std::string(text, static_cast<size_t>(len)));
}

// MPI counts are int: larger arrays go in pieces.
constexpr int64_t kMaxCount = INT_MAX;

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator(int* argc, char*** argv, double timeout_s) {
    int provided = 0;
    check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    check(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(version, &len);
    name_ = std::string(version, static_cast<size_t>(len));
    name_ = "MPI (" + name_.substr(0, std::min(name_.find(','), name_.find('\n'))) + ")";
    if (size_ > 1) watchdog_ = std::make_unique<Watchdog>(timeout_s, rank_);
  }
  ~MpiCommunicator() override {
    watchdog_.reset();
    MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void allreduce_sum(float* data, int64_t n) override { allreduce(data, n, MPI_FLOAT); }
  void allreduce_sum(double* data, int64_t n) override { allreduce(data, n, MPI_DOUBLE); }
  void broadcast(void* data, int64_t bytes, int root) override {
    if (size_ == 1) return;
    const Watchdog::Wait wait(*watchdog_, "broadcast");
    auto* p = static_cast<char*>(data);
    for (int64_t done = 0; done < bytes; done += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, bytes - done));
      check(MPI_Bcast(p + done, count, MPI_BYTE, root, MPI_COMM_WORLD), "MPI_Bcast");
    }
  }
  void barrier() override {
    if (size_ == 1) return;
    const Watchdog::Wait wait(*watchdog_, "barrier");
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
  }
  std::string name() const override { return name_; }

 private:
  template <class T>
  void allreduce(T* data, int64_t n, MPI_Datatype type) {
    if (size_ == 1) return;
    const Watchdog::Wait wait(*watchdog_, "allreduce");
    for (int64_t done = 0; done < n; done += kMaxCount) {
      const int count = static_cast<int>(std::min(kMaxCount, n - done));
      check(MPI_Allreduce(MPI_IN_PLACE, data + done, count, type, MPI_SUM, MPI_COMM_WORLD),
            "MPI_Allreduce");
    }
  }

  int rank_ = 0, size_ = 1;
  std::string name_;
  std::unique_ptr<Watchdog> watchdog_;
};

}  // namespace

bool have_mpi() { return true; }

std::unique_ptr<Communicator> init_communicator(int* argc, char*** argv, double timeout_s) {
  if (launcher_world_size() == 0) return std::make_unique<SingleProcess>();
  return std::make_unique<MpiCommunicator>(argc, argv, timeout_s);
}

}  // namespace slope::dist
