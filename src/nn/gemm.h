// The GEMM under the linear layers (matmul.cpp), on OpenBLAS, oneDNN or Intel MKL, chosen once
// per process. bench/gemm measured them (with BLIS and libxsmm) at the trainer's shapes; the
// results and the reason for each default are in docs/BENCHMARKS.md, "GEMM libraries at the
// trainer's shapes (issue 18)". The environment variable SLOPE_GEMM=openblas|onednn|mkl
// overrides the default. float64 always runs OpenBLAS's dgemm: it is the reference the float
// path is checked against. The float GEMM's inputs are float32, or bf16 while gemm_dtype() is
// bf16 (`slope train --dtype bf16`, bf16.h: always on oneDNN's matmul, whatever the backend).
//
// MKL is not linked: its libmkl_rt is loaded with dlopen on first use, from the path in the
// environment variable SLOPE_MKL_LIB, else the one this build was configured with
// (-DSLOPE_MKL_LIB=..., scripts/setup.sh unpacks PyPI's `mkl` wheel into
// $HOME/.cache/slope/mkl-<version>/), else the loader's search for libmkl_rt.so.3 and .so.2. It
// runs with the GNU threading layer (the process's libgomp, so omp_set_num_threads governs it)
// and conditional numerical reproducibility AUTO,STRICT (the same bits on every run for a
// processor and thread count, whatever the operands' alignment).
#pragma once

#include <cstdint>
#include <string_view>

namespace slope::nn {

enum class GemmBackend { openblas, onednn, mkl };

// "openblas", "onednn" or "mkl".
const char* gemm_backend_name(GemmBackend backend);

// Whether this process can run the backend: OpenBLAS always; oneDNN when built in
// (SLOPE_WITH_ONEDNN=ON, the default); MKL when its library loads (see above; tried once).
bool gemm_backend_available(GemmBackend backend);

// Why gemm_backend_available(backend) is false, as a sentence that says what to do ("" if it is
// available).
std::string gemm_backend_unavailable_reason(GemmBackend backend);

// The library behind a backend, for reports: OpenBLAS's config string, "oneDNN 2.6.3", MKL's
// version string and the path it was loaded from ("Intel(R) oneAPI Math Kernel Library Version
// 2026.2-Product Build ... (/path/libmkl_rt.so.3)"); the reason when it is unavailable.
std::string gemm_backend_version(GemmBackend backend);

// The backend named `name`; throws slope::Error on other names and on one this process cannot
// run (with the reason).
GemmBackend parse_gemm_backend(std::string_view name);

// The process's backend: set_gemm_backend's if called, else SLOPE_GEMM if set (a bad value
// throws slope::Error, every call), else the measured default for this processor. Read once.
GemmBackend gemm_backend();

// For benchmarks and tests: gemm_backend() returns `backend` from now on, in every thread (it
// must be available: throws slope::Error otherwise). Not for use while another thread runs a
// GEMM.
void set_gemm_backend(GemmBackend backend);

// The float GEMM's input type: fp32 (the default) or bf16 (operands rounded to bfloat16, float32
// accumulation and result: gemm_bf16 in bf16.h), for the gemm() overload without a backend.
enum class GemmDtype { fp32, bf16 };

// "fp32" or "bf16".
const char* gemm_dtype_name(GemmDtype dtype);

// The dtype named `name`; throws slope::Error on other names.
GemmDtype parse_gemm_dtype(std::string_view name);

// The process's GEMM input type: fp32 unless set_gemm_dtype or a GemmDtypeScope says bf16.
GemmDtype gemm_dtype();

// gemm_dtype() returns `dtype` from now on, in every thread. bf16 checks require_bf16() first
// (throws slope::Error on CPUs without AVX512_BF16 or AMX). Not while another thread runs a GEMM.
void set_gemm_dtype(GemmDtype dtype);

// set_gemm_dtype(dtype) for the scope's life, then the dtype before it (the trainer's --dtype).
class GemmDtypeScope {
 public:
  explicit GemmDtypeScope(GemmDtype dtype) : saved_(gemm_dtype()) { set_gemm_dtype(dtype); }
  ~GemmDtypeScope() { set_gemm_dtype(saved_); }
  GemmDtypeScope(const GemmDtypeScope&) = delete;
  GemmDtypeScope& operator=(const GemmDtypeScope&) = delete;

 private:
  GemmDtype saved_;
};

// Row-major C (m, n) = alpha · op(A) · op(B) + beta · C, with op(A) (m, k) and op(B) (k, n);
// lda, ldb, ldc are the row strides of A, B and C as stored (A is (k, m) when trans_a). With
// beta = 0, C's old contents are not read (NaN there does not propagate). Each of m, n, k and
// the strides must fit in a BLAS int (2^31 − 1); m, n, k ≥ 1. Deterministic for a given backend
// and thread count.
void gemm(GemmBackend backend, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
          float alpha, const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
          float* c, int64_t ldc);

// On gemm_backend(), or gemm_bf16 (bf16.h) while gemm_dtype() is bf16.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
          int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);

// float64: OpenBLAS dgemm, whatever the backend.
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, double alpha,
          const double* a, int64_t lda, const double* b, int64_t ldb, double beta, double* c,
          int64_t ldc);

}  // namespace slope::nn
