// Internal: the attention-dropout keep mask as the float64 reference, the error model and the
// CPU kernels read it (dropout.cpp; the public mapping is documented in attention.h).
// Compiled once, with the baseline flags: the per-ISA kernels call dropout_keep_tile once per
// tile rather than inlining Random123, whose inline functions would otherwise be instantiated
// with AVX-512 flags in one object and shared (COMDAT) with code that runs on every machine.
#pragma once

#include <cstdint>

#include "slope/attention.h"

namespace slope::detail {

// 1/(1 − dropout_p) in double: the factor of a kept probability (1 when dropout is off).
double dropout_scale(const AttentionProblem& p);

// tile[r·ld_row + c·ld_col] = keep(b, h, i0 + r, j0 + c) ? value : 0 for r < nrows, c < ncols.
// Backward tiles (queries × keys) pass ld_row = the tile's width and ld_col = 1; the forward's
// transposed ones (keys × queries) pass ld_row = 1 and ld_col = the tile's width.
void dropout_keep_tile(const AttentionProblem& p, int64_t b, int64_t h, int64_t i0, int64_t nrows,
                       int64_t j0, int64_t ncols, float value, float* tile, int64_t ld_row,
                       int64_t ld_col);

}  // namespace slope::detail
