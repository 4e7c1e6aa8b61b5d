#include "attention/tile_counts.h"

#include <atomic>

namespace slope::detail {

namespace {
std::atomic<int64_t> g_computed{0}, g_skipped{0};
}  // namespace

ForwardTileCounts forward_tile_counts() {
  return {g_computed.load(std::memory_order_relaxed), g_skipped.load(std::memory_order_relaxed)};
}

void reset_forward_tile_counts() {
  g_computed.store(0, std::memory_order_relaxed);
  g_skipped.store(0, std::memory_order_relaxed);
}

void add_forward_tile_counts(int64_t computed, int64_t skipped) {
  g_computed.fetch_add(computed, std::memory_order_relaxed);
  g_skipped.fetch_add(skipped, std::memory_order_relaxed);
}

}  // namespace slope::detail
