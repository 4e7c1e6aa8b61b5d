// The attention-dropout keep mask: Philox4x32-10 from Random123 (Debian's librandom123-dev),
// with the counter mapping documented in attention.h. One Philox call gives the uniforms of 4
// consecutive keys of one query row.
#include "attention/dropout.h"

#include <Random123/philox.h>

#include <algorithm>
#include <cmath>

namespace slope {

namespace {

uint32_t lo32(uint64_t x) { return static_cast<uint32_t>(x); }
uint32_t hi32(uint64_t x) { return static_cast<uint32_t>(x >> 32); }

// The mapping of one problem (detail::DropoutKeys) with Random123's Philox.
struct KeepMask {
  r123::Philox4x32::key_type key;
  uint32_t offset_lo, H, threshold;

  explicit KeepMask(const AttentionProblem& p) : KeepMask(detail::dropout_keys(p)) {}
  explicit KeepMask(const detail::DropoutKeys& k)
      : key{{k.key0, k.key1}}, offset_lo(k.offset_lo), H(k.H), threshold(k.threshold) {}

  // The four uniforms (as 32-bit words) of keys 4g .. 4g + 3 of row (b, h, i).
  r123::Philox4x32::ctr_type words(int64_t b, int64_t h, int64_t i, int64_t g) const {
    const r123::Philox4x32::ctr_type ctr = {
        {static_cast<uint32_t>(g), static_cast<uint32_t>(i),
         static_cast<uint32_t>(b) * H + static_cast<uint32_t>(h), offset_lo}};
    return r123::Philox4x32()(ctr, key);
  }
  bool kept(uint32_t word) const { return word >= threshold; }
};

}  // namespace

std::array<uint32_t, 4> philox4x32_10(const std::array<uint32_t, 4>& counter,
                                      const std::array<uint32_t, 2>& key) {
  const r123::Philox4x32::ctr_type c = {{counter[0], counter[1], counter[2], counter[3]}};
  const r123::Philox4x32::key_type k = {{key[0], key[1]}};
  const r123::Philox4x32::ctr_type r = r123::Philox4x32()(c, k);
  return {r[0], r[1], r[2], r[3]};
}

bool attention_dropout_mask(const AttentionProblem& p, int64_t b, int64_t h, int64_t i, int64_t j) {
  const KeepMask m(p);
  return m.kept(m.words(b, h, i, j / 4)[static_cast<size_t>(j % 4)]);
}

void attention_dropout_mask_row(const AttentionProblem& p, int64_t b, int64_t h, int64_t i,
                                uint8_t* keep) {
  const KeepMask m(p);
  for (int64_t j0 = 0; j0 < p.Tk; j0 += 4) {
    const auto w = m.words(b, h, i, j0 / 4);
    for (int64_t e = 0; e < 4 && j0 + e < p.Tk; ++e)
      keep[j0 + e] = m.kept(w[static_cast<size_t>(e)]) ? 1 : 0;
  }
}

namespace detail {

// p·2³² is exact in double for a float p.
DropoutKeys dropout_keys(const AttentionProblem& p) {
  return {lo32(p.dropout_seed), hi32(p.dropout_seed) ^ hi32(p.dropout_offset),
          lo32(p.dropout_offset), static_cast<uint32_t>(p.H),
          static_cast<uint32_t>(std::ldexp(static_cast<double>(p.dropout_p), 32))};
}

double dropout_scale(const AttentionProblem& p) {
  return 1.0 / (1.0 - static_cast<double>(p.dropout_p));
}

void dropout_keep_tile(const AttentionProblem& p, int64_t b, int64_t h, int64_t i0, int64_t nrows,
                       int64_t j0, int64_t ncols, float value, float* tile, int64_t ld_row,
                       int64_t ld_col) {
  const KeepMask m(p);
  for (int64_t r = 0; r < nrows; ++r)
    for (int64_t c = 0; c < ncols;) {
      const int64_t j = j0 + c;
      const auto w = m.words(b, h, i0 + r, j / 4);
      for (int64_t e = j % 4; e < 4 && c < ncols; ++e, ++c)
        tile[r * ld_row + c * ld_col] = m.kept(w[static_cast<size_t>(e)]) ? value : 0.0f;
    }
}

}  // namespace detail

}  // namespace slope
