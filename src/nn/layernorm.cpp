// LayerNorm forward and backward (see layernorm.h): the loops are rows_impl.h's, run for float
// by the vectorised copy of this processor's instruction set (float_kernels.h).
//
// Backward, with n = (x − mean)·rstd and g = dout·weight per row:
//   dinp = rstd · (g − mean(g) − n · mean(g·n)),  dweight = Σ_rows dout·n,  dbias = Σ_rows dout.
#include "nn/layernorm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "nn/float_kernels.h"
#include "nn/rows_impl.h"

namespace slope::nn {

namespace {
// Rows per task. The dweight/dbias reduction goes by slices of impl::kMaxChannels channels
// (one accumulator pair per channel on the stack); rows are visited in order inside a task, so
// the sums do not depend on the threads.
constexpr int64_t kRowBlock = 16;
}  // namespace

template <class Real>
void layernorm_forward(Real* out, Real* mean, Real* rstd, const Real* inp, const Real* weight,
                       const NoDeduce<Real>* bias, int64_t B, int64_t T, int64_t C) {
  check_sizes("layernorm", {{"B", B}, {"T", T}, {"C", C}});
  check_given("layernorm",
              {{"out", out}, {"mean", mean}, {"rstd", rstd}, {"inp", inp}, {"weight", weight}});
  const Real eps = static_cast<Real>(kLayerNormEps);
  const int64_t nblocks = (B * T + kRowBlock - 1) / kRowBlock;
  const isa::Kernels k = isa::kernels();
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t r0 = blk * kRowBlock, rows = std::min(kRowBlock, B * T - r0);
    if constexpr (std::is_same_v<Real, float>)
      k.layernorm_forward_rows(out + r0 * C, mean + r0, rstd + r0, inp + r0 * C, weight, bias, rows,
                               C, eps);
    else
      for (int64_t r = r0; r < r0 + rows; ++r)
        impl::layernorm_forward_row(out + r * C, mean + r, rstd + r, inp + r * C, weight, bias, C,
                                    eps);
  }
}

template <class Real>
void layernorm_backward(Real* dinp, Real* dweight, NoDeduce<Real>* dbias, const Real* dout,
                        const Real* inp, const Real* mean, const Real* rstd, const Real* weight,
                        int64_t B, int64_t T, int64_t C) {
  check_sizes("layernorm backward", {{"B", B}, {"T", T}, {"C", C}});
  check_given("layernorm backward", {{"dinp", dinp},
                                     {"dweight", dweight},
                                     {"dout", dout},
                                     {"inp", inp},
                                     {"mean", mean},
                                     {"rstd", rstd},
                                     {"weight", weight}});
  const int64_t BT = B * T, nrow_blocks = (BT + kRowBlock - 1) / kRowBlock;
  const isa::Kernels k = isa::kernels();
  // dinp, row by row.
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nrow_blocks; ++blk) {
    const int64_t r0 = blk * kRowBlock, rows = std::min(kRowBlock, BT - r0);
    if constexpr (std::is_same_v<Real, float>)
      k.layernorm_backward_rows(dinp + r0 * C, dout + r0 * C, inp + r0 * C, mean + r0, rstd + r0,
                                weight, rows, C);
    else
      for (int64_t r = r0; r < r0 + rows; ++r)
        impl::layernorm_backward_row(dinp + r * C, dout + r * C, inp + r * C, mean[r], rstd[r],
                                     weight, C);
  }
  // dweight and dbias, channel slice by channel slice.
  const int64_t nblocks = (C + impl::kMaxChannels - 1) / impl::kMaxChannels;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * impl::kMaxChannels, w = std::min(C - c0, impl::kMaxChannels);
    if constexpr (std::is_same_v<Real, float>)
      k.layernorm_param_grads(dweight, dbias, dout, inp, mean, rstd, BT, C, c0, w);
    else
      impl::layernorm_param_grads(dweight, dbias, dout, inp, mean, rstd, BT, C, c0, w);
  }
}

#define SLOPE_NN_INSTANTIATE(Real)                                                                \
  template void layernorm_forward<Real>(Real*, Real*, Real*, const Real*, const Real*,            \
                                        const Real*, int64_t, int64_t, int64_t);                  \
  template void layernorm_backward<Real>(Real*, Real*, Real*, const Real*, const Real*,           \
                                         const Real*, const Real*, const Real*, int64_t, int64_t, \
                                         int64_t);
SLOPE_NN_INSTANTIATE(float)
SLOPE_NN_INSTANTIATE(double)
#undef SLOPE_NN_INSTANTIATE

}  // namespace slope::nn
