// Internal: how many key tiles the CPU forward computed and how many far-tile skipping left out
// (docs/far-tile-skipping.md), summed over every forward call since the last reset. For
// `slope bench train --profile`, where it says how much of a position bias's speed comes from
// skipping rather than from the work per tile. A tile is one (query tile, key tile) pair of
// kTileQ × kTileK scores inside the causal and window range; tiles outside that range are
// neither computed nor counted. Counted per (batch row, head, query tile) item: two relaxed
// atomic adds per item, whatever the instruction set.
#pragma once

#include <cstdint>

namespace slope::detail {

struct ForwardTileCounts {
  int64_t computed = 0, skipped = 0;
};

ForwardTileCounts forward_tile_counts();
void reset_forward_tile_counts();
void add_forward_tile_counts(int64_t computed, int64_t skipped);

}  // namespace slope::detail
