// Carving an activation arena into the buffers of one forward (the GPT's, the encoder's).
#pragma once

#include <algorithm>
#include <cstdint>

#include "model/param_table.h"  // kArenaAlign

namespace slope::model {

// Hands out consecutive aligned slices of an arena. With a null base it only counts, which is
// how the arena's size is found.
template <class Real>
struct Carver {
  Real* base = nullptr;
  int64_t used = 0;
  Real* take(int64_t n) {
    Real* p = base ? base + used : nullptr;
    used += (n + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
    return p;
  }
};

template <class Real>
void zero(Real* p, int64_t n) {
  std::fill(p, p + n, Real(0));
}

// A tensor of an arena, or null when this config does not have it (offset kAbsent = -1).
template <class Real>
Real* at(Real* base, int64_t offset) {
  return offset < 0 ? nullptr : base + offset;
}

}  // namespace slope::model
