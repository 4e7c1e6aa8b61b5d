// The linear layers' GEMM backends (see gemm.h). Both libraries take row-major operands directly:
// OpenBLAS through CBLAS, oneDNN through dnnl_sgemm (row-major by definition, int64 sizes).
// Both thread with OpenMP (Debian's libopenblas0-openmp and libdnnl2 use libgomp), so the
// trainer's omp_set_num_threads governs either.
#include "nn/gemm.h"

#include <cblas.h>

#include <atomic>
#include <cstdlib>
#include <limits>
#include <string>

#include "nn/bf16.h"
#include "slope/error.h"

#ifdef SLOPE_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.h>
#endif

namespace slope::nn {

namespace {

int blas_int(int64_t n, const char* what) {
  if (n < 0 || n > std::numeric_limits<int>::max())
    throw Error(std::string("gemm: ") + what + " = " + std::to_string(n) +
                " is outside the BLAS int range [0, 2^31 - 1]: split the batch");
  return static_cast<int>(n);
}

CBLAS_TRANSPOSE cblas_trans(bool t) { return t ? CblasTrans : CblasNoTrans; }

// The default where SLOPE_GEMM is not set, from bench/gemm (docs/BENCHMARKS.md, "GEMM libraries
// at the trainer's shapes (issue 18)", Xeon with AVX-512, 1 thread, 2026-12-01): the step's GEMMs
// at GPT L6 C384 and L12 C768 ran at 1.10–1.18× OpenBLAS's FLOP rate on oneDNN's AVX-512
// kernels, and at 1.00–1.04× with both held to AVX2 (OPENBLAS_CORETYPE=Haswell,
// ONEDNN_MAX_CPU_ISA=AVX2), within the noise: so oneDNN where it runs its avx512_core kernels
// (it says which, honouring ONEDNN_MAX_CPU_ISA), OpenBLAS elsewhere.
GemmBackend default_backend() {
#ifdef SLOPE_HAVE_ONEDNN
  const unsigned isa = dnnl_get_effective_cpu_isa(), avx512 = dnnl_cpu_isa_avx512_core;
  if ((isa & avx512) == avx512) return GemmBackend::onednn;
#endif
  return GemmBackend::openblas;
}

GemmBackend choose_backend() {
  if (const char* env = std::getenv("SLOPE_GEMM")) {
    try {
      return parse_gemm_backend(env);
    } catch (const Error& e) {
      throw Error(std::string("SLOPE_GEMM: ") + e.what());
    }
  }
  return default_backend();
}

}  // namespace

const char* gemm_backend_name(GemmBackend backend) {
  return backend == GemmBackend::onednn ? "onednn" : "openblas";
}

bool gemm_backend_built(GemmBackend backend) {
#ifdef SLOPE_HAVE_ONEDNN
  (void)backend;
  return true;
#else
  return backend == GemmBackend::openblas;
#endif
}

GemmBackend parse_gemm_backend(std::string_view name) {
  for (GemmBackend b : {GemmBackend::openblas, GemmBackend::onednn})
    if (name == gemm_backend_name(b)) {
      if (!gemm_backend_built(b))
        throw Error("gemm backend " + std::string(name) +
                    " is not in this build: install libdnnl-dev and reconfigure with "
                    "-DSLOPE_WITH_ONEDNN=ON, or use openblas");
      return b;
    }
  throw Error("gemm backend '" + std::string(name) + "' is unknown; use openblas or onednn");
}

namespace {
std::atomic<int> g_forced{-1};  // set_gemm_backend(); −1: none
}  // namespace

GemmBackend gemm_backend() {
  const int forced = g_forced.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<GemmBackend>(forced);
  static const GemmBackend backend = choose_backend();
  return backend;
}

void set_gemm_backend(GemmBackend backend) {
  if (!gemm_backend_built(backend)) parse_gemm_backend(gemm_backend_name(backend));  // throws
  g_forced.store(static_cast<int>(backend), std::memory_order_relaxed);
}

namespace {
std::atomic<int> g_dtype{static_cast<int>(GemmDtype::fp32)};
}  // namespace

const char* gemm_dtype_name(GemmDtype dtype) { return dtype == GemmDtype::bf16 ? "bf16" : "fp32"; }

GemmDtype parse_gemm_dtype(std::string_view name) {
  for (GemmDtype d : {GemmDtype::fp32, GemmDtype::bf16})
    if (name == gemm_dtype_name(d)) return d;
  throw Error("dtype '" + std::string(name) + "' is unknown; use fp32 or bf16");
}

GemmDtype gemm_dtype() { return static_cast<GemmDtype>(g_dtype.load(std::memory_order_relaxed)); }

void set_gemm_dtype(GemmDtype dtype) {
  if (dtype == GemmDtype::bf16) require_bf16();
  g_dtype.store(static_cast<int>(dtype), std::memory_order_relaxed);
}

void gemm(GemmBackend backend, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
          float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
          float* c, int64_t ldc) {
  const int im = blas_int(m, "m"), in = blas_int(n, "n"), ik = blas_int(k, "k");
  const int ia = blas_int(lda, "lda"), ib = blas_int(ldb, "ldb"), ic = blas_int(ldc, "ldc");
#ifdef SLOPE_HAVE_ONEDNN
  if (backend == GemmBackend::onednn) {
    const dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                       lda, b, ldb, beta, c, ldc);
    if (s != dnnl_success)
      throw Error("gemm: dnnl_sgemm failed with status " + std::to_string(static_cast<int>(s)) +
                  " (m n k = " + std::to_string(m) + " " + std::to_string(n) + " " +
                  std::to_string(k) + "); SLOPE_GEMM=openblas avoids oneDNN");
    return;
  }
#else
  (void)backend;
#endif
  cblas_sgemm(CblasRowMajor, cblas_trans(trans_a), cblas_trans(trans_b), im, in, ik, alpha, a, ia,
              b, ib, beta, c, ic);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  if (gemm_dtype() == GemmDtype::bf16) {
    gemm_bf16(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  gemm(gemm_backend(), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc) {
  cblas_dgemm(CblasRowMajor, cblas_trans(trans_a), cblas_trans(trans_b), blas_int(m, "m"),
              blas_int(n, "n"), blas_int(k, "k"), alpha, a, blas_int(lda, "lda"), b,
              blas_int(ldb, "ldb"), beta, c, blas_int(ldc, "ldc"));
}

}  // namespace slope::nn
