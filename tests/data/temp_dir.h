// The data tests' names for the shared file helpers (tests/common/temp_files.h).
#pragma once

#include "common/temp_files.h"

namespace slope::data::testing {

using slope::testing::read_bytes;
using slope::testing::TempDir;
using slope::testing::write_text;

}  // namespace slope::data::testing
