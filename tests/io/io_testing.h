// The io tests' names for the shared file helpers (tests/common/temp_files.h).
#pragma once

#include "common/temp_files.h"

namespace slope::io::testing {

using slope::testing::read_bytes;
using slope::testing::TempDir;
using slope::testing::write_text;

}  // namespace slope::io::testing
