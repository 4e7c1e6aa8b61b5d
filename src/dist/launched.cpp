#include "dist/communicator.h"
#include "dist/launch_env.h"

namespace slope::dist {

bool launched_by_mpirun() { return launcher_world_size() > 0; }

}  // namespace slope::dist
