// Internal: Philox4x32-10 on kW counters at once, and the dropout keep factors of a tile from it,
// for the CPU kernels (one copy per instruction set, like cpu_vec.h: everything here lives in
// slope::cpu::SLOPE_ISA, so no inline function is shared between the objects built with
// different flags). Bitwise the words of Random123's philox4x32 (dropout.cpp keeps it as the
// reference; tests/attention/test_dropout.cpp compares the two on every instruction set).
//
// The 32×32→64-bit products are written on 64-bit lanes holding the even and the odd 32-bit
// lanes of a vector (pmuludq of x and of x >> 32 by M), then put back in place.
#pragma once

#include <cstdint>
#include <cstring>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "attention/cpu_vec.h"
#include "attention/dropout.h"

namespace slope::cpu::SLOPE_ISA {

typedef uint32_t vu __attribute__((vector_size(kW * sizeof(uint32_t))));
typedef uint64_t vu2 __attribute__((vector_size(kW * sizeof(uint32_t))));  // kW/2 pairs

inline vu iota_u() {
  vu v;
  for (int l = 0; l < kW; ++l) v[l] = static_cast<uint32_t>(l);
  return v;
}

// The 64-bit products of the low 32-bit halves of a's lanes by m (< 2³²): pmuludq by name. As
// plain vector code ((a & 0xffffffff)·m) GCC 12 emits vpmullq with AVX512DQ (3 µops) and, for
// SSE2/AVX2, a shift-and-add expansion around pmuludq (3× the instructions of a round).
inline vu2 mul_low_halves(vu2 a, uint64_t m) {
  const long long mm = static_cast<long long>(m);
#if defined(__AVX512F__)
  // maskz: _mm512_mul_epu32 trips -Wuninitialized on its undefined pass-through operand.
  return (vu2)_mm512_maskz_mul_epu32(0xff, (__m512i)a, _mm512_set1_epi64(mm));
#elif defined(__AVX2__)
  return (vu2)_mm256_mul_epu32((__m256i)a, _mm256_set1_epi64x(mm));
#elif defined(__SSE2__)
  return (vu2)_mm_mul_epu32((__m128i)a, _mm_set1_epi64x(mm));
#else
  return (a & 0xffffffffu) * m;
#endif
}

// lo = (a·m) mod 2³², *hi = ⌊a·m / 2³²⌋ lane by lane.
inline vu mulhilo(vu a, uint64_t m, vu* hi) {
  vu2 a2;
  std::memcpy(&a2, &a, sizeof a2);
  const vu2 even = mul_low_halves(a2, m);       // products of the even lanes
  const vu2 odd = mul_low_halves(a2 >> 32, m);  // and of the odd lanes
  const vu2 lo2 = (even & 0xffffffffu) | (odd << 32);
  const vu2 hi2 = (even >> 32) | (odd & ~uint64_t{0xffffffffu});
  vu lo;
  std::memcpy(&lo, &lo2, sizeof lo);
  std::memcpy(hi, &hi2, sizeof *hi);
  return lo;
}

// x = philox4x32_10(x, (k0, k1)) for each lane's counter (x[0][l], x[1][l], x[2][l], x[3][l]).
inline void philox4x32_10(vu x[4], uint32_t k0, uint32_t k1) {
  for (int round = 0; round < 10; ++round) {
    vu hi0, hi1;
    const vu lo0 = mulhilo(x[0], 0xD2511F53u, &hi0);
    const vu lo1 = mulhilo(x[2], 0xCD9E8D57u, &hi1);
    const vu x1 = x[1], x3 = x[3];
    x[0] = hi1 ^ x1 ^ k0;
    x[1] = lo1;
    x[2] = hi0 ^ x3 ^ k1;
    x[3] = lo0;
    k0 += 0x9E3779B9u;  // the key schedule (Random123's bumpkey)
    k1 += 0xBB67AE85u;
  }
}

// Factors of one group g = ⌊j/4⌋ of keys: f[e] = value where key 4g + e of the lane's row is
// kept, else 0. Counters (g, i, b·H + h, lo(offset)) per lane, as attention.h maps them.
inline void keep_factors(const detail::DropoutKeys& m, vu g, vu i, uint32_t bh, float value,
                         vf f[4]) {
  vu x[4] = {g, i, vu{} + bh, vu{} + m.offset_lo};
  philox4x32_10(x, m.key0, m.key1);
  for (int e = 0; e < 4; ++e) f[e] = x[e] >= m.threshold ? splat(value) : vf{};
}

// tile[r + c·ld] = keep(b, h, i0 + r, j0 + c) ? value : 0 for c < ncols and r < nrows rounded
// up to whole vectors (lanes are query rows; rows ≥ nrows get those rows' factors, finite):
// the forward's transposed tile (keys × query lanes).
inline void keep_tile_transposed(const detail::DropoutKeys& m, int64_t b, int64_t h, int64_t i0,
                                 int64_t nrows, int64_t j0, int64_t ncols, float value, float* tile,
                                 int64_t ld) {
  const uint32_t bh = static_cast<uint32_t>(b) * m.H + static_cast<uint32_t>(h);
  for (int64_t r0 = 0; r0 < nrows; r0 += kW) {
    const vu i = static_cast<uint32_t>(i0 + r0) + iota_u();
    for (int64_t g = j0 / 4; 4 * g < j0 + ncols; ++g) {
      vf f[4];
      keep_factors(m, vu{} + static_cast<uint32_t>(g), i, bh, value, f);
      for (int64_t e = 0; e < 4; ++e) {
        const int64_t c = 4 * g + e - j0;
        if (c >= 0 && c < ncols) store(tile + c * ld + r0, f[e]);
      }
    }
  }
}

// tile[r·ld + c] = keep(b, h, i0 + r, j0 + c) ? value : 0 for r < nrows, c < ncols: the
// backward's tile (query rows × keys). Lanes are groups of 4 keys of one row, interleaved into
// 4·kW consecutive keys.
inline void keep_tile_rows(const detail::DropoutKeys& m, int64_t b, int64_t h, int64_t i0,
                           int64_t nrows, int64_t j0, int64_t ncols, float value, float* tile,
                           int64_t ld) {
  const uint32_t bh = static_cast<uint32_t>(b) * m.H + static_cast<uint32_t>(h);
  for (int64_t r = 0; r < nrows; ++r) {
    const vu i = vu{} + static_cast<uint32_t>(i0 + r);
    for (int64_t g0 = j0 / 4; 4 * g0 < j0 + ncols; g0 += kW) {
      vf f[4];
      keep_factors(m, static_cast<uint32_t>(g0) + iota_u(), i, bh, value, f);
      alignas(64) float keys[4 * kW];  // keys 4·g0 .. 4·g0 + 4·kW − 1
      for (int l = 0; l < kW; ++l)
        for (int e = 0; e < 4; ++e) keys[4 * l + e] = f[e][l];
      const int64_t c0 = 4 * g0 - j0;  // the column of keys[0]
      const int64_t lo = c0 < 0 ? -c0 : 0, hi = ncols - c0 < 4 * kW ? ncols - c0 : 4 * kW;
      std::memcpy(tile + r * ld + c0 + lo, keys + lo, static_cast<size_t>(hi - lo) * sizeof(float));
    }
  }
}

}  // namespace slope::cpu::SLOPE_ISA
