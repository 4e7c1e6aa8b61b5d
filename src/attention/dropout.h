// Internal: the attention-dropout keep mask as the float64 reference, the error model and the
// CPU kernels read it (dropout.cpp; the public mapping is documented in attention.h).
// Compiled once, with the baseline flags, and kept out of the per-ISA kernels: Random123's
// inline functions would otherwise be instantiated with AVX-512 flags in one object and shared
// (COMDAT) with code that runs on every machine. The kernels run their own vector Philox
// (cpu_philox.h) from the words of dropout_keys(); dropout_keep_tile is its scalar reference.
#pragma once

#include <cstdint>

#include "slope/attention.h"

namespace slope::detail {

// The fixed part of the mapping of one problem (attention.h): the Philox key, counter word 3,
// H (counter word 2 is b·H + h) and the drop threshold ⌊p·2³²⌋ (kept ⟺ word ≥ threshold).
struct DropoutKeys {
  uint32_t key0, key1;
  uint32_t offset_lo;
  uint32_t H;
  uint32_t threshold;
};
DropoutKeys dropout_keys(const AttentionProblem& p);

// 1/(1 − dropout_p) in double: the factor of a kept probability (1 when dropout is off).
double dropout_scale(const AttentionProblem& p);

// tile[r·ld_row + c·ld_col] = keep(b, h, i0 + r, j0 + c) ? value : 0 for r < nrows, c < ncols.
// Backward tiles (queries × keys) pass ld_row = the tile's width and ld_col = 1; the forward's
// transposed ones (keys × queries) pass ld_row = 1 and ld_col = the tile's width.
void dropout_keep_tile(const AttentionProblem& p, int64_t b, int64_t h, int64_t i0, int64_t nrows,
                       int64_t j0, int64_t ncols, float value, float* tile, int64_t ld_row,
                       int64_t ld_col);

}  // namespace slope::detail
