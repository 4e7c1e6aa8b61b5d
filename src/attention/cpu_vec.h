// Internal: the vector vocabulary of the CPU kernels, written with GCC vector extensions so one
// source compiles to SSE2, AVX2 or AVX-512 depending on the flags of the translation unit that
// includes it (cpu_kernels.cpp and cpu_backward.cpp are built once per instruction set). No
// intrinsics, no run-time checks here: dispatch happens once, in cpu_dispatch.cpp.
#pragma once

#include <cstdint>
#include <cstring>

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

}  // namespace slope::cpu::SLOPE_ISA
