// The linear layers' GEMM backends (see gemm.h). Each library takes row-major operands directly:
// OpenBLAS and MKL through CBLAS, oneDNN through dnnl_sgemm (row-major by definition, int64
// sizes). All thread with OpenMP (Debian's libopenblas0-openmp and libdnnl2 use libgomp, MKL its
// GNU threading layer), so the trainer's omp_set_num_threads governs each.
#include "nn/gemm.h"

#include <cblas.h>
#include <dlfcn.h>
#include <link.h>
#include <omp.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <limits>
#include <string>
#include <vector>

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

#ifdef SLOPE_HAVE_ONEDNN
void onednn_sgemm_call(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                       const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                       float* c, int64_t ldc) {
  const dnnl_status_t s = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a,
                                     lda, b, ldb, beta, c, ldc);
  if (s != dnnl_success)
    throw Error("gemm: dnnl_sgemm failed with status " + std::to_string(static_cast<int>(s)) +
                " (m n k = " + std::to_string(m) + " " + std::to_string(n) + " " +
                std::to_string(k) + "); SLOPE_GEMM=openblas avoids oneDNN");
}

// dnnl_sgemm, except that an NT product (C = A·Bᵀ, A not transposed) at least twice as deep as
// it is wide (k ≥ 2n) has its rows split evenly over the threads, each part one single-threaded
// dnnl_sgemm (oneDNN runs sequentially inside a parallel region). The trainer's such product is
// the MLP's c_proj forward, (B·T, 4C) by (C, 4C)ᵀ. oneDNN 2.6 threads it worse than its
// neighbours: on 2 threads of an AMD EPYC (Zen 4, AVX-512; 2026-12-02) at m n k = 2048 384 1536
// it ran 127–150 GFLOP/s against 166–186 for the step's other shapes, and the row split
// 148–177, 1.16–1.20× in three interleaved runs; on those other shapes the split was no faster
// (0.85–1.12×), so they stay with oneDNN's own threading. bench/gemm measures this path.
void onednn_sgemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                  const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
                  int64_t ldc) {
  constexpr int64_t kRowAlign = 16, kMinRowsPerThread = 128;
  const int64_t threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (trans_a || !trans_b || k < 2 * n || threads < 2 || m < kMinRowsPerThread * threads) {
    onednn_sgemm_call(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const int64_t part = (m / threads + kRowAlign - 1) / kRowAlign * kRowAlign;
  std::exception_ptr error;
#pragma omp parallel for num_threads(threads) schedule(static, 1)
  for (int64_t t = 0; t < threads; ++t) {
    const int64_t r0 = std::min(m, t * part), rows = std::min(m, r0 + part) - r0;
    if (rows == 0) continue;
    try {
      onednn_sgemm_call(false, true, rows, n, k, alpha, a + r0 * lda, lda, b, ldb, beta,
                        c + r0 * ldc, ldc);
    } catch (...) {
#pragma omp critical(slope_onednn_sgemm_error)
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}
#endif

// ---- Intel MKL, loaded at run time (gemm.h) ----------------------------------------------------

#ifndef SLOPE_MKL_LIB_DEFAULT
#define SLOPE_MKL_LIB_DEFAULT ""
#endif

struct Mkl {
  // cblas_sgemm: the standard CBLAS signature; the enums' values (101 row-major, 111/112 no/trans)
  // are CBLAS's, shared with OpenBLAS's cblas.h.
  using Sgemm = void (*)(int, int, int, int, int, int, float, const float*, int, const float*, int,
                         float, float*, int);
  Sgemm sgemm = nullptr;
  std::string version, error;  // error: why it is unavailable ("" when sgemm is set)
};

// mkl_service.h's values and C entry points (the wheel ships no headers; its lowercase
// mkl_cbwr_set and mkl_get_version_string are the Fortran ones, arguments by reference).
constexpr int kMklInterfaceLp64 = 0, kMklThreadingGnu = 3;
constexpr int kMklCbwrAuto = 2, kMklCbwrStrict = 0x10000, kMklCbwrSuccess = 0;

// Whether `dir` holds `name`.
bool file_in(const std::string& dir, const std::string& name) {
  const std::string path = dir + "/" + name;
  return access(path.c_str(), R_OK) == 0;
}

Mkl load_mkl() {
  Mkl m;
  std::vector<std::string> paths;
  const char* env = std::getenv("SLOPE_MKL_LIB");
  if (env && *env) {
    paths.emplace_back(env);  // set: the only one tried
  } else {
    if (*SLOPE_MKL_LIB_DEFAULT) paths.emplace_back(SLOPE_MKL_LIB_DEFAULT);
    paths.emplace_back("libmkl_rt.so.3");
    paths.emplace_back("libmkl_rt.so.2");
  }
  void* h = nullptr;
  std::string tried, suffix;
  for (const std::string& path : paths) {
    h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h) {
      m.version = path;
      const size_t at = path.rfind("libmkl_rt");
      suffix = at == std::string::npos ? ".so" : path.substr(at + 9);  // ".so.3"
      break;
    }
    const char* why = dlerror();
    tried += (tried.empty() ? "" : "; ") + std::string(why ? why : path.c_str());
  }
  const std::string help =
      " (pip install mkl, or scripts/setup.sh, then SLOPE_MKL_LIB=/path/to/libmkl_rt.so.3; or "
      "SLOPE_GEMM=onednn|openblas)";
  if (!h) {
    m.error = "Intel MKL's libmkl_rt did not load: " + tried + help;
    return m;
  }
  // libmkl_rt loads the rest from its own directory at the first BLAS call, and calls exit()
  // when one is missing: so the ones this process would load must be there now. The CPU kernel
  // library MKL picks is the processor's (def, mc3, avx2, avx512; a newer processor may ask
  // for one this list does not know, avx10 on AVX10.1 parts: scripts/setup.sh unpacks them all).
  char dir[4096] = {};
  if (dlinfo(h, RTLD_DI_ORIGIN, dir) != 0) {
    m.error = m.version + ": its directory is unknown (dlinfo)" + help;
    return m;
  }
  std::vector<std::string> needed = {"core", "gnu_thread", "intel_lp64", "def", "mc3"};
  if (__builtin_cpu_supports("avx2")) needed.emplace_back("avx2");
  if (__builtin_cpu_supports("avx512f")) needed.emplace_back("avx512");
  for (const std::string& part : needed)
    if (!file_in(dir, "libmkl_" + part + suffix)) {
      m.error = m.version + ": libmkl_" + part + suffix + " is missing from " + dir + help;
      return m;
    }
  // Before any other MKL call: 32-bit BLAS ints (an inherited MKL_INTERFACE_LAYER=ILP64 would
  // change what the int arguments mean), the GNU threading layer, then reproducibility.
  using SetLayer = int (*)(int);
  using CbwrSet = int (*)(int);
  using Version = void (*)(char*, int);
  auto set_interface = reinterpret_cast<SetLayer>(dlsym(h, "MKL_Set_Interface_Layer"));
  auto set_layer = reinterpret_cast<SetLayer>(dlsym(h, "MKL_Set_Threading_Layer"));
  auto cbwr_set = reinterpret_cast<CbwrSet>(dlsym(h, "MKL_CBWR_Set"));
  auto version = reinterpret_cast<Version>(dlsym(h, "MKL_Get_Version_String"));
  auto sgemm = reinterpret_cast<Mkl::Sgemm>(dlsym(h, "cblas_sgemm"));
  if (!set_interface || !set_layer || !cbwr_set || !sgemm) {
    m.error = m.version +
              " lacks MKL_Set_Interface_Layer, MKL_Set_Threading_Layer, MKL_CBWR_Set or "
              "cblas_sgemm" +
              help;
    return m;
  }
  if (set_interface(kMklInterfaceLp64) != kMklInterfaceLp64) {
    m.error = m.version + ": the LP64 interface layer is refused" + help;
    return m;
  }
  if (set_layer(kMklThreadingGnu) != kMklThreadingGnu) {
    m.error = m.version + ": the GNU OpenMP threading layer is refused" + help;
    return m;
  }
  if (cbwr_set(kMklCbwrAuto | kMklCbwrStrict) != kMklCbwrSuccess) {
    m.error = m.version + ": conditional numerical reproducibility AUTO,STRICT is refused" + help;
    return m;
  }
  if (version) {
    char buf[256] = {};
    version(buf, sizeof buf - 1);
    m.version = std::string(buf) + " (" + m.version + ")";
  }
  m.sgemm = sgemm;
  return m;
}

const Mkl& mkl() {
  static const Mkl m = load_mkl();
  return m;
}

// The default where SLOPE_GEMM is not set, from bench/gemm (docs/BENCHMARKS.md, "GEMM libraries
// at the trainer's shapes (issue 18)"): on a Xeon with AVX-512 (2026-12-01, 1 thread) the
// step's GEMMs at GPT L6 C384 and L12 C768 ran at 1.10–1.18× OpenBLAS's FLOP rate on oneDNN's
// AVX-512 kernels, and at 1.00–1.04× with both held to AVX2 (OPENBLAS_CORETYPE=Haswell,
// ONEDNN_MAX_CPU_ISA=AVX2), within the noise; MKL then ran them at 1.13–1.16× oneDNN's. On AMD
// EPYC with AVX-512 (2 threads) MKL ran a step's GEMMs at 0.71–0.83× oneDNN's rate on Zen 4
// (2026-12-02) and 0.42–0.45× on Zen 5 (2026-12-01), and oneDNN at 1.12× OpenBLAS's on Zen 4
// (L6 C384 V65) and 1.03× on Zen 5. On an AVX2-only AMD EPYC (Zen 3, 2026-12-02, 2 threads)
// oneDNN's avx2 kernels ran them at 1.02–1.13× OpenBLAS's (core Zen), BLIS (zen3) at
// 0.99–1.00× and MKL at 0.78–0.92×. So MKL on an Intel processor with AVX-512 when it loads,
// oneDNN where it runs at least its avx2 kernels (it says which, honouring ONEDNN_MAX_CPU_ISA),
// OpenBLAS elsewhere (older processors, where neither was measured, and builds without oneDNN).
GemmBackend default_backend() {
  if (__builtin_cpu_is("intel") && __builtin_cpu_supports("avx512f") && mkl().sgemm)
    return GemmBackend::mkl;
#ifdef SLOPE_HAVE_ONEDNN
  const unsigned isa = dnnl_get_effective_cpu_isa(), avx2 = dnnl_cpu_isa_avx2;
  if ((isa & avx2) == avx2) return GemmBackend::onednn;
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
  switch (backend) {
    case GemmBackend::onednn:
      return "onednn";
    case GemmBackend::mkl:
      return "mkl";
    default:
      return "openblas";
  }
}

std::string gemm_backend_unavailable_reason(GemmBackend backend) {
  if (backend == GemmBackend::mkl) return mkl().error;
#ifndef SLOPE_HAVE_ONEDNN
  if (backend == GemmBackend::onednn)
    return "oneDNN is not in this build: install libdnnl-dev and reconfigure with "
           "-DSLOPE_WITH_ONEDNN=ON, or use openblas";
#endif
  return "";
}

bool gemm_backend_available(GemmBackend backend) {
  return gemm_backend_unavailable_reason(backend).empty();
}

std::string gemm_backend_version(GemmBackend backend) {
  if (!gemm_backend_available(backend)) return gemm_backend_unavailable_reason(backend);
  switch (backend) {
    case GemmBackend::mkl:
      return mkl().version;
#ifdef SLOPE_HAVE_ONEDNN
    case GemmBackend::onednn: {
      const dnnl_version_t* v = dnnl_version();
      return "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
             std::to_string(v->patch);
    }
#endif
    default:
      return openblas_get_config();
  }
}

GemmBackend parse_gemm_backend(std::string_view name) {
  for (GemmBackend b : {GemmBackend::openblas, GemmBackend::onednn, GemmBackend::mkl})
    if (name == gemm_backend_name(b)) {
      if (!gemm_backend_available(b))
        throw Error("gemm backend " + std::string(name) + ": " +
                    gemm_backend_unavailable_reason(b));
      return b;
    }
  throw Error("gemm backend '" + std::string(name) + "' is unknown; use openblas, onednn or mkl");
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
  if (!gemm_backend_available(backend)) parse_gemm_backend(gemm_backend_name(backend));  // throws
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
    onednn_sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
#endif
  if (backend == GemmBackend::mkl) {
    const Mkl& lib = mkl();
    if (!lib.sgemm) throw Error("gemm: " + lib.error);
    lib.sgemm(CblasRowMajor, cblas_trans(trans_a), cblas_trans(trans_b), im, in, ik, alpha, a, ia,
              b, ib, beta, c, ic);
    return;
  }
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
