// LayerNorm forward and backward (see layernorm.h).
//
// Backward, with n = (x − mean)·rstd and g = dout·weight per row:
//   dinp = rstd · (g − mean(g) − n · mean(g·n)),  dweight = Σ_rows dout·n,  dbias = Σ_rows dout.
#include "nn/layernorm.h"

#include <algorithm>
#include <cmath>

namespace slope::nn {

namespace {
// Channels per task of the dweight/dbias reduction (one accumulator pair per channel on the
// stack); rows are visited in order inside a task, so the sums do not depend on the threads.
constexpr int64_t kChannelBlock = 64;
}  // namespace

template <class Real>
void layernorm_forward(Real* out, Real* mean, Real* rstd, const Real* inp, const Real* weight,
                       const NoDeduce<Real>* bias, int64_t B, int64_t T, int64_t C) {
  check_sizes("layernorm", {{"B", B}, {"T", T}, {"C", C}});
  check_given("layernorm",
              {{"out", out}, {"mean", mean}, {"rstd", rstd}, {"inp", inp}, {"weight", weight}});
  const Real eps = static_cast<Real>(kLayerNormEps);
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const Real* x = inp + bt * C;
    Real* o = out + bt * C;
    Real m = 0;
    for (int64_t c = 0; c < C; ++c) m += x[c];
    m /= static_cast<Real>(C);
    Real v = 0;
    for (int64_t c = 0; c < C; ++c) v += (x[c] - m) * (x[c] - m);
    v /= static_cast<Real>(C);
    const Real s = Real(1) / std::sqrt(v + eps);
    for (int64_t c = 0; c < C; ++c) {
      const Real n = (x[c] - m) * s;
      o[c] = n * weight[c] + (bias ? bias[c] : Real(0));
    }
    mean[bt] = m;
    rstd[bt] = s;
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
  // dinp, row by row.
#pragma omp parallel for schedule(static)
  for (int64_t bt = 0; bt < B * T; ++bt) {
    const Real* x = inp + bt * C;
    const Real* g = dout + bt * C;
    Real* dx = dinp + bt * C;
    const Real m = mean[bt], s = rstd[bt];
    Real g_mean = 0, gn_mean = 0;
    for (int64_t c = 0; c < C; ++c) {
      const Real gw = g[c] * weight[c];
      g_mean += gw;
      gn_mean += gw * (x[c] - m) * s;
    }
    g_mean /= static_cast<Real>(C);
    gn_mean /= static_cast<Real>(C);
    for (int64_t c = 0; c < C; ++c) {
      const Real n = (x[c] - m) * s;
      dx[c] += s * (g[c] * weight[c] - g_mean - n * gn_mean);
    }
  }
  // dweight and dbias, channel slice by channel slice.
  const int64_t nblocks = (C + kChannelBlock - 1) / kChannelBlock;
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t c0 = blk * kChannelBlock, w = std::min(C - c0, kChannelBlock);
    Real dw[kChannelBlock] = {}, db[kChannelBlock] = {};
    for (int64_t bt = 0; bt < B * T; ++bt) {
      const Real* x = inp + bt * C + c0;
      const Real* g = dout + bt * C + c0;
      const Real m = mean[bt], s = rstd[bt];
      for (int64_t c = 0; c < w; ++c) {
        dw[c] += g[c] * (x[c] - m) * s;
        db[c] += g[c];
      }
    }
    for (int64_t c = 0; c < w; ++c) {
      dweight[c0 + c] += dw[c];
      if (dbias) dbias[c0 + c] += db[c];
    }
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
