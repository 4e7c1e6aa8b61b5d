// What the environment says about the launcher: Open MPI's mpirun sets OMPI_COMM_WORLD_SIZE,
// MPICH's hydra PMI_SIZE, a PMIx launcher (srun, prterun) PMIX_RANK.
#pragma once

#include <cstdlib>

namespace slope::dist {

// The world size the launcher announced; 0 when no launcher started this process.
inline int launcher_world_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"})
    if (const char* v = std::getenv(var)) return std::atoi(v);
  return std::getenv("PMIX_RANK") ? 1 : 0;
}

}  // namespace slope::dist
