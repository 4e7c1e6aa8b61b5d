// Internal: the vector vocabulary of the CPU kernels, written with GCC vector extensions so one
// source compiles to SSE2, AVX2 or AVX-512 depending on the flags of the translation unit that
// includes it (cpu_kernels.cpp and cpu_backward.cpp are built once per instruction set). No
// intrinsics, no run-time checks here: dispatch happens once, in cpu_dispatch.cpp.
#pragma once

#include <cstdint>
#include <cstring>
#if defined(__AVX2__)
#include <immintrin.h>  // the gathers of vgather() only
#endif

namespace slope::cpu::SLOPE_ISA {

#if defined(__AVX512F__)
constexpr int kW = 16;  // floats per vector
#elif defined(__AVX2__)
constexpr int kW = 8;
#else
constexpr int kW = 4;
#endif

typedef float vf __attribute__((vector_size(kW * sizeof(float))));
typedef int32_t vi __attribute__((vector_size(kW * sizeof(int32_t))));

inline vf load(const float* p) {
  vf v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
inline void store(float* p, vf v) { std::memcpy(p, &v, sizeof v); }
// x − 0 is x for every float (−0 included), so this folds to one broadcast. (vf{} + x does not
// fold without -ffast-math, since −0 + 0 = +0, and costs an add per splat; a lane-by-lane loop
// went through the stack: 4× slower tile products, measured.)
inline vf splat(float x) { return x - vf{}; }
inline vf iota() {
  vf v;
  for (int i = 0; i < kW; ++i) v[i] = static_cast<float>(i);
  return v;
}
inline vf vmax(vf a, vf b) { return a > b ? a : b; }
inline vf vmin(vf a, vf b) { return a < b ? a : b; }
inline float hmax(vf v) {
  float m = v[0];
  for (int i = 1; i < kW; ++i) m = v[i] > m ? v[i] : m;
  return m;
}
inline float hsum(vf v) {
  float s = 0.0f;
  for (int i = 0; i < kW; ++i) s += v[i];
  return s;
}

// Σ_d a[d]·b[d] over n floats: kW lane sums over the whole vectors, then the lanes and the tail
// in order — a fixed order, so the same result on every call, thread and run of one ISA. For
// the row norms of the skip bound (cpu_skip.h, whose slack covers any summation order) and
// the backward's Dᵢ. A scalar loop here is one dependent add per element: at T = 256 the norms
// and Dᵢ were 3% of a training step (perf, Xeon AVX-512).
inline float dot(const float* a, const float* b, int64_t n) {
  vf acc{};
  int64_t d = 0;
  for (; d + kW <= n; d += kW) acc += load(a + d) * load(b + d);
  float s = hsum(acc);
  for (; d < n; ++d) s += a[d] * b[d];
  return s;
}

// The same in double: each product and sum of floats widened first.
inline double dot_double(const float* a, const float* b, int64_t n) {
  typedef double vdw __attribute__((vector_size(kW * sizeof(double))));
  vdw acc{};
  int64_t d = 0;
  for (; d + kW <= n; d += kW)
    acc += __builtin_convertvector(load(a + d), vdw) * __builtin_convertvector(load(b + d), vdw);
  double s = 0.0;
  for (int i = 0; i < kW; ++i) s += acc[i];
  for (; d < n; ++d) s += static_cast<double>(a[d]) * b[d];
  return s;
}

// exp(x) for a vector, Cephes' expf polynomial after range reduction x = n·ln2 + r, |r| ≤ ln2/2.
// Valid for every float: relative error ≤ 2 ulp on [−87.3, 88.3]; x < −87.3 (including −∞)
// gives exactly 0; x > 88.3 saturates at exp(88.3) (+∞ is not produced); NaN gives NaN or 0 —
// callers never pass NaN (a masked score is −∞, and rows with no visible key are skipped).
inline vf vexp(vf x) {
  const vf xc = vmin(vmax(x, splat(-87.3f)), splat(88.3f));
  const vf t = xc * 1.44269504088896341f;
  const vf n = (t + 12582912.0f) - 12582912.0f;  // round to nearest (1.5·2^23 trick, |t| < 2^22)
  vf r = xc - n * 0.693359375f;                  // ln2 split in two for an exact reduction
  r = r - n * -2.12194440e-4f;
  vf p = splat(1.9875691500e-4f);
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * (r * r) + r + 1.0f;
  const vi e = (__builtin_convertvector(n, vi) + 127) << 23;  // 2^n as float bits
  vf scale;
  std::memcpy(&scale, &e, sizeof scale);
  const vf y = p * scale;
  return x < -87.3f ? vf{} : y;
}

// tanh(y) of a vector, and d tanh/dy = sech²(y) = 1 − tanh²(y) into *sech2, both from
// w = exp(−2|y|) (vexp, so w ≤ 1 never overflows):
//   tanh|y| = (1 − w)/(1 + w),  sech² y = 4w/(1 + w)²,
// except tanh for |y| < 0.625, where 1 − w cancels: Cephes' tanhf polynomial y + y³·P(y²).
// The sign of tanh is restored from y. sech² straight from w keeps a relative error where
// 1 − tanh² would cancel (tanh → ±1), so the backward's gradient through a softcap does not
// lose it. Error, relative (u = 2⁻²⁴; from vexp's 4u and the 3–4 roundings after it, and
// measured by tests/attention/test_kernels.cpp over 2²² arguments in [−50, 50] plus
// denormals against double): |tanh| ≤ 6u (measured ≤ 2.5u), sech² ≤ 8u (measured ≤ 4.6u) while
// |y| ≤ 43.6. From |y| > 43.65 on, w flushes to 0: tanh = ±1 exactly (the true value differs
// by < 3·10⁻³⁸) and sech² = 0 (the true value is < 5·10⁻³⁸). |tanh| ≤ 1 always, and tanh has
// y's sign (−0 included). NaN gives NaN or 0, as vexp.
inline vf vtanh(vf y, vf* sech2) {
  const vf a = vmax(y, -y);
  const vf w = vexp(-2.0f * a);
  const vf one_w = 1.0f + w;
  *sech2 = 4.0f * w / (one_w * one_w);
  const vf z = y * y;
  vf poly = splat(-5.70498872745e-3f);
  poly = poly * z + 2.06390887954e-2f;
  poly = poly * z - 5.37397155531e-2f;
  poly = poly * z + 1.33314422036e-1f;
  poly = poly * z - 3.33332819422e-1f;
  const vf small = poly * z * a + a;
  const vf t = a < 0.625f ? small : (1.0f - w) / one_w;  // ≥ 0
  vi tb, yb;                                             // tanh takes y's sign bit (−0 included)
  std::memcpy(&tb, &t, sizeof tb);
  std::memcpy(&yb, &y, sizeof yb);
  tb |= yb & static_cast<int32_t>(0x80000000u);
  vf r;
  std::memcpy(&r, &tb, sizeof r);
  return r;
}

// r[l] = base[idx[l]]: FIRE's grid lookups (cpu_rel_bias.h). The one place with intrinsics:
// GCC's vector extensions have no gather, and a lane-by-lane loop goes through the stack.
inline vf vgather(const float* base, vi idx) {
#if defined(__AVX512F__)
  // The masked forms with a zero source: the plain ones read an uninitialised one (GCC warns).
  return reinterpret_cast<vf>(_mm512_mask_i32gather_ps(_mm512_setzero_ps(),
                                                       static_cast<__mmask16>(0xffff),
                                                       reinterpret_cast<__m512i>(idx), base, 4));
#elif defined(__AVX2__)
  return reinterpret_cast<vf>(
      _mm256_mask_i32gather_ps(_mm256_setzero_ps(), base, reinterpret_cast<__m256i>(idx),
                               _mm256_castsi256_ps(_mm256_set1_epi32(-1)), 4));
#else
  vf r;
  for (int l = 0; l < kW; ++l) r[l] = base[idx[l]];
  return r;
#endif
}

}  // namespace slope::cpu::SLOPE_ISA
