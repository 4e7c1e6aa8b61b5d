// The linear layer on OpenBLAS (see matmul.h). Row-major throughout:
//   forward   out (BT, OC)  = inp (BT, C) · W (OC, C)ᵀ           gemm(N, T), β = 1 over the bias
//   backward  dinp (BT, C)  += dout (BT, OC) · W (OC, C)         gemm(N, N), β = 1
//             dW (OC, C)    += dout (BT, OC)ᵀ · inp (BT, C)      gemm(T, N), β = 1
#include "nn/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>

#include "nn/float_kernels.h"  // dbias column sums (rows_impl.h), vectorised for float
#include "nn/rows_impl.h"

namespace slope::nn {

namespace {

int blas_int(int64_t n, const char* what) {
  if (n > std::numeric_limits<int>::max())
    throw Error(std::string("matmul: ") + what + " = " + std::to_string(n) +
                " exceeds the BLAS int range: split the batch");
  return static_cast<int>(n);
}

// C (m, n) = alpha · op(A) · op(B) + beta · C, row-major, in the scalar's BLAS precision.
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a,
          int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
          const double* a, int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// y (m) = alpha · A (m, n) · x (n) + beta · y, row-major.
void gemv(int m, int n, float alpha, const float* a, int lda, const float* x, float beta,
          float* y) {
  cblas_sgemv(CblasRowMajor, CblasNoTrans, m, n, alpha, a, lda, x, 1, beta, y, 1);
}
void gemv(int m, int n, double alpha, const double* a, int lda, const double* x, double beta,
          double* y) {
  cblas_dgemv(CblasRowMajor, CblasNoTrans, m, n, alpha, a, lda, x, 1, beta, y, 1);
}

}  // namespace

template <class Real>
void matmul_forward(Real* out, const Real* inp, const Real* weight, const NoDeduce<Real>* bias,
                    int64_t B, int64_t T, int64_t C, int64_t OC) {
  check_sizes("matmul", {{"B", B}, {"T", T}, {"C", C}, {"OC", OC}});
  check_given("matmul", {{"out", out}, {"inp", inp}, {"weight", weight}});
  const int m = blas_int(B * T, "B*T"), n = blas_int(OC, "OC"), k = blas_int(C, "C");
  if (bias) {
#pragma omp parallel for schedule(static)
    for (int64_t bt = 0; bt < B * T; ++bt) std::copy(bias, bias + OC, out + bt * OC);
  }
  if (m == 1) {
    // One row (decoding one token): a GEMV reads each weight once. OpenBLAS's sgemm copies the
    // whole (OC, C) weight into its packed layout first: decoding a 124M GPT on one thread ran
    // at 3.9 tokens/s with sgemm (perf: sgemm_incopy its top symbol), 7.7 with this.
    gemv(n, k, Real(1), weight, k, inp, bias ? Real(1) : Real(0), out);
    return;
  }
  gemm(CblasNoTrans, CblasTrans, m, n, k, Real(1), inp, k, weight, k, bias ? Real(1) : Real(0), out,
       n);
}

template <class Real>
void matmul_backward(Real* dinp, Real* dweight, NoDeduce<Real>* dbias, const Real* dout,
                     const Real* inp, const Real* weight, int64_t B, int64_t T, int64_t C,
                     int64_t OC, GradWrite dinp_write) {
  check_sizes("matmul backward", {{"B", B}, {"T", T}, {"C", C}, {"OC", OC}});
  check_given(
      "matmul backward",
      {{"dinp", dinp}, {"dweight", dweight}, {"dout", dout}, {"inp", inp}, {"weight", weight}});
  const int m = blas_int(B * T, "B*T"), n = blas_int(OC, "OC"), k = blas_int(C, "C");
  // β = 0: BLAS does not read C (a scratch buffer's stale contents, NaN included, vanish).
  const Real beta = dinp_write == GradWrite::overwrite ? Real(0) : Real(1);
  gemm(CblasNoTrans, CblasNoTrans, m, k, n, Real(1), dout, n, weight, k, beta, dinp, k);
  gemm(CblasTrans, CblasNoTrans, n, k, m, Real(1), dout, n, inp, k, Real(1), dweight, k);
  if (!dbias) return;
  const int64_t nblocks = (OC + impl::kMaxChannels - 1) / impl::kMaxChannels;
  const isa::Kernels kern = isa::kernels();
#pragma omp parallel for schedule(static)
  for (int64_t blk = 0; blk < nblocks; ++blk) {
    const int64_t o0 = blk * impl::kMaxChannels, w = std::min(OC - o0, impl::kMaxChannels);
    if constexpr (std::is_same_v<Real, float>)
      kern.column_sums(dbias + o0, dout + o0, B * T, OC, w);
    else
      impl::column_sums(dbias + o0, dout + o0, B * T, OC, w);
  }
}

#define SLOPE_NN_INSTANTIATE(Real)                                                                \
  template void matmul_forward<Real>(Real*, const Real*, const Real*, const Real*, int64_t,       \
                                     int64_t, int64_t, int64_t);                                  \
  template void matmul_backward<Real>(Real*, Real*, Real*, const Real*, const Real*, const Real*, \
                                      int64_t, int64_t, int64_t, int64_t, GradWrite);
SLOPE_NN_INSTANTIATE(float)
SLOPE_NN_INSTANTIATE(double)
#undef SLOPE_NN_INSTANTIATE

}  // namespace slope::nn
