// init_communicator() of a build without MPI (see communicator.h).
#include <cstdlib>

#include "dist/communicator.h"
#include "dist/launch_env.h"
#include "slope/error.h"

namespace slope::dist {

bool have_mpi() { return false; }

std::unique_ptr<Communicator> init_communicator(int*, char***, double) {
  const int ranks = launcher_world_size();
  if (ranks > 1)
    throw Error("mpirun started " + std::to_string(ranks) +
                " ranks, but this slope was built without MPI: install Open MPI (Debian "
                "libopenmpi-dev) and rebuild, or run it without mpirun");
  return std::make_unique<SingleProcess>();
}

}  // namespace slope::dist
