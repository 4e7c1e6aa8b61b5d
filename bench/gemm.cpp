// bench/gemm: the GEMM libraries at the trainer's shapes (issue 18, deliverable 3).
//
// The linear layers (src/nn/matmul.cpp) run three row-major sgemms per layer and step, with
// M = B·T rows, K the layer's input width and N its output width:
//   forward  out  (M, N)  = inp (M, K) · W (N, K)ᵀ        NT, β = 1 over the bias (lm_head: 0)
//   dinp     dinp (M, K) += dout (M, N) · W (N, K)         NN, β = 1
//   dweight  dW   (N, K) += dout (M, N)ᵀ · inp (M, K)      TN, β = 1
// For a GPT of width C: qkv (K, N) = (C, 3C), attn proj (C, C), fc (C, 4C), mlp proj (4C, C), each
// L times a step, and lm_head (C, Vp) once (Vp: the vocabulary padded to a multiple of 64, as
// GptConfig::padded_vocab_size does). B = 8, T = 256 and B = 2, T = 1024 are both M = 2048.
//
// Each library runs each GEMM in turn, one call each, repeated (A B C A B C ..., the starting
// library rotated every round), and the median of its calls is its time: load from the other
// users of a shared machine falls on all of them alike. Before timing, every library's result
// is checked against OpenBLAS's within the bound of the error model below, so a wrong call
// (a transpose mixed up, β ignored) fails the run instead of looking fast.
//
// Libraries: OpenBLAS (linked, as the project is); BLIS through dlopen (its libblis.so exports
// cblas_sgemm too, and linked beside OpenBLAS one would shadow the other by link order; its typed
// bli_sgemm takes a row and a column stride per operand, so row-major needs no transposition);
// oneDNN's dnnl_sgemm (row-major) through nn::gemm's backend, so with the row split it applies
// to deep NT products (nn/gemm.cpp); libxsmm's libxsmm_sgemm_omp (column-major: a row-major
// C = op(A)·op(B) is the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so A and B swap, and m with n); Intel
// MKL's cblas_sgemm through nn::gemm's backend.
#include "nn/gemm.h"

#include <cblas.h>
#include <dlfcn.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#ifdef SLOPE_BENCH_HAVE_DNNL
#include <oneapi/dnnl/dnnl.h>
#endif
#ifdef SLOPE_BENCH_HAVE_LIBXSMM
#include <libxsmm.h>
#endif

namespace {

// C (m, n) = alpha · op(A) · op(B) + beta · C, row-major; op(A) is (m, k), op(B) is (k, n).
using Sgemm = void (*)(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                       const float* b, int ldb, float beta, float* c, int ldc);

struct Library {
  std::string name;
  Sgemm gemm;
  std::string about;  // version and the kernels it chose on this machine
};

void openblas_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                   const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n,
              k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// BLIS 0.9's typed API (blis.h, bli_l3_tapi.h): dim_t and inc_t are int64_t (BLIS_INT_TYPE_SIZE
// 64 in Debian's build), trans_t an enum with BLIS_NO_TRANSPOSE = 0, BLIS_TRANSPOSE = 1 << 3.
using BliSgemm = void (*)(int transa, int transb, int64_t m, int64_t n, int64_t k, float* alpha,
                          float* a, int64_t rs_a, int64_t cs_a, float* b, int64_t rs_b,
                          int64_t cs_b, float* beta, float* c, int64_t rs_c, int64_t cs_c);
constexpr int kBlisTranspose = 1 << 3;
BliSgemm bli_sgemm_fn = nullptr;
void (*bli_set_threads_fn)(int64_t) = nullptr;

void blis_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
               const float* b, int ldb, float beta, float* c, int ldc) {
  // Row-major storage: row stride ld, column stride 1; the transpose is BLIS's flag.
  bli_sgemm_fn(ta ? kBlisTranspose : 0, tb ? kBlisTranspose : 0, m, n, k, &alpha,
               const_cast<float*>(a), lda, 1, const_cast<float*>(b), ldb, 1, &beta, c, ldc, 1);
}

std::string load_blis(const std::string& path) {
  void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) return "";
  // bli_init before anything else: BLIS 0.9.0's bli_arch_query_id, called first with
  // BLIS_ARCH_TYPE set, looks the subconfiguration up before the table is filled and aborts.
  auto init = reinterpret_cast<void (*)()>(dlsym(h, "bli_init"));
  if (!init) return "";
  init();
  bli_sgemm_fn = reinterpret_cast<BliSgemm>(dlsym(h, "bli_sgemm"));
  bli_set_threads_fn = reinterpret_cast<void (*)(int64_t)>(dlsym(h, "bli_thread_set_num_threads"));
  auto version = reinterpret_cast<const char* (*)()>(dlsym(h, "bli_info_get_version_str"));
  auto arch_id = reinterpret_cast<int (*)()>(dlsym(h, "bli_arch_query_id"));
  auto arch_name = reinterpret_cast<const char* (*)(int)>(dlsym(h, "bli_arch_string"));
  if (!bli_sgemm_fn || !bli_set_threads_fn || !version || !arch_id || !arch_name) return "";
  return path + " " + version() + ", kernels " + arch_name(arch_id());
}

// Intel MKL through the trainer's own backend (nn/gemm.h: dlopen'ed libmkl_rt, GNU threading
// layer, reproducibility AUTO,STRICT), so this measures what the trainer runs.
void mkl_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
              const float* b, int ldb, float beta, float* c, int ldc) {
  slope::nn::gemm(slope::nn::GemmBackend::mkl, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
                  ldc);
}

#ifdef SLOPE_BENCH_HAVE_DNNL
// oneDNN through the trainer's own backend (nn/gemm.h: dnnl_sgemm, rows split over the threads
// for deep NT products), so this measures what the trainer runs.
void onednn_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) {
  slope::nn::gemm(slope::nn::GemmBackend::onednn, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c,
                  ldc);
}

std::string onednn_about() {
  const dnnl_version_t* v = dnnl_version();
  const char* isa = "other";
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx2:
      isa = "avx2";
      break;
    case dnnl_cpu_isa_avx2_vnni:
      isa = "avx2_vnni";
      break;
    case dnnl_cpu_isa_avx512_core:
      isa = "avx512_core";
      break;
    case dnnl_cpu_isa_avx512_core_vnni:
      isa = "avx512_core_vnni";
      break;
    case dnnl_cpu_isa_avx512_core_bf16:
      isa = "avx512_core_bf16";
      break;
    case dnnl_cpu_isa_avx512_core_amx:
      isa = "avx512_core_amx";
      break;
    default:
      break;
  }
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
         std::to_string(v->patch) + ", cpu_runtime " +
         (v->cpu_runtime == DNNL_RUNTIME_OMP ? "omp" : "other") + ", ISA " + isa;
}
#endif

#ifdef SLOPE_BENCH_HAVE_LIBXSMM
void libxsmm_gemm(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                  const float* b, int ldb, float beta, float* c, int ldc) {
  const char tra = ta ? 'T' : 'N', trb = tb ? 'T' : 'N';
  const libxsmm_blasint mm = m, nn = n, kk = k, la = lda, lb = ldb, lc = ldc;
  libxsmm_sgemm_omp(&trb, &tra, &nn, &mm, &kk, &alpha, b, &lb, a, &la, &beta, c, &lc);
}
#endif

void set_threads(int n) {
  omp_set_num_threads(n);  // oneDNN and libxsmm (OpenMP builds) follow omp_get_max_threads()
  openblas_set_num_threads(n);
  if (bli_set_threads_fn) bli_set_threads_fn(n);
}

// One GEMM of a step: C (m, n) = op(A) (m, k) · op(B) (k, n) + beta · C, row-major.
struct Problem {
  std::string layer, op;  // "qkv C384", "fwd NT"
  bool ta, tb;
  int m, n, k;
  float beta;
  double flops() const { return 2.0 * m * n * k; }
  int lda() const { return ta ? m : k; }
  int ldb() const { return tb ? k : n; }
  size_t a_size() const { return size_t(m) * k; }
  size_t b_size() const { return size_t(k) * n; }
  size_t c_size() const { return size_t(m) * n; }
};

// The three GEMMs of one linear layer (K, N) over M rows.
std::vector<Problem> linear_problems(const std::string& layer, int M, int K, int N,
                                     float fwd_beta) {
  return {{layer, "fwd NT", false, true, M, N, K, fwd_beta},
          {layer, "dinp NN", false, false, M, K, N, 1.0f},
          {layer, "dW TN", true, false, N, K, M, 1.0f}};
}

std::vector<float> uniform(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

// Checks every library against OpenBLAS on p. Each library's ĉ_ij is within
// γ_{k+1}·S_ij of the exact value, S = |op(A)|·|op(B)| + |β|·|C0| (k products summed, then β·C0
// added; α = 1 is exact), γ_n = n·u/(1 − n·u), u = 2⁻²⁴. Two libraries differ by at most twice
// that. S is itself computed in float by OpenBLAS from non-negative terms, so its relative
// error is within γ_{k+1} as well, hence the (1 + γ) factor. Returns, per library, the largest
// |ĉ_lib − ĉ_openblas| / S in units of u (0 for OpenBLAS itself); throws past the bound.
std::vector<double> check(const Problem& p, const std::vector<Library>& libs) {
  const std::vector<float> a = uniform(p.a_size(), 1), b = uniform(p.b_size(), 2),
                           c0 = uniform(p.c_size(), 3);
  std::vector<float> abs_a(a.size()), abs_b(b.size()), s(c0.size());
  std::transform(a.begin(), a.end(), abs_a.begin(), [](float x) { return std::fabs(x); });
  std::transform(b.begin(), b.end(), abs_b.begin(), [](float x) { return std::fabs(x); });
  std::transform(c0.begin(), c0.end(), s.begin(),
                 [&](float x) { return std::fabs(p.beta) * std::fabs(x); });
  openblas_gemm(p.ta, p.tb, p.m, p.n, p.k, 1.0f, abs_a.data(), p.lda(), abs_b.data(), p.ldb(), 1.0f,
                s.data(), p.n);
  std::vector<float> ref = c0;
  openblas_gemm(p.ta, p.tb, p.m, p.n, p.k, 1.0f, a.data(), p.lda(), b.data(), p.ldb(), p.beta,
                ref.data(), p.n);
  const double u = std::ldexp(1.0, -24), nu = (p.k + 1) * u, gamma = nu / (1 - nu);
  const double bound = 2 * gamma * (1 + gamma);
  std::vector<double> worst(libs.size(), 0.0);
  std::vector<float> c(c0.size());
  for (size_t l = 1; l < libs.size(); ++l) {
    c = c0;
    libs[l].gemm(p.ta, p.tb, p.m, p.n, p.k, 1.0f, a.data(), p.lda(), b.data(), p.ldb(), p.beta,
                 c.data(), p.n);
    double w = 0;
    for (size_t i = 0; i < c.size(); ++i) {
      const double d = std::fabs(double(c[i]) - double(ref[i]));
      const double r = s[i] > 0 ? d / s[i] : (d > 0 ? INFINITY : 0.0);
      if (!(r <= bound)) {  // NaN fails too
        std::ostringstream msg;
        msg << libs[l].name << " disagrees with openblas on " << p.layer << " " << p.op
            << " (m n k = " << p.m << " " << p.n << " " << p.k << ") at element " << i << ": "
            << c[i] << " vs " << ref[i] << ", |diff|/S = " << r << " > bound " << bound;
        throw std::runtime_error(msg.str());
      }
      w = std::max(w, r);
    }
    worst[l] = w / u;
  }
  return worst;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

struct Timing {
  int reps;
  std::vector<double> median;  // seconds, per library
};

// Interleaved medians: a warm-up call of each library, then `reps` rounds of one call each,
// the round's first library rotating; reps from the warm-up's OpenBLAS time so that each
// library gets about `seconds` of calls, within [min_reps, max_reps].
Timing time_problem(const Problem& p, const std::vector<Library>& libs, double seconds,
                    int min_reps, int max_reps) {
  const std::vector<float> a = uniform(p.a_size(), 4), b = uniform(p.b_size(), 5);
  std::vector<float> c =
      uniform(p.c_size(), 6);  // β = 1 accumulates into it: values stay O(k·reps)
  auto call = [&](const Library& lib) {
    const auto t0 = std::chrono::steady_clock::now();
    lib.gemm(p.ta, p.tb, p.m, p.n, p.k, 1.0f, a.data(), p.lda(), b.data(), p.ldb(), p.beta,
             c.data(), p.n);
    return seconds_since(t0);
  };
  double first = 0;
  for (size_t l = 0; l < libs.size(); ++l) {
    const double t = call(libs[l]);
    if (l == 0) first = t;
  }
  const int reps = std::clamp(static_cast<int>(std::ceil(seconds / first)), min_reps, max_reps);
  std::vector<std::vector<double>> ts(libs.size());
  for (int r = 0; r < reps; ++r)
    for (size_t i = 0; i < libs.size(); ++i) {
      const size_t l = (r + i) % libs.size();
      ts[l].push_back(call(libs[l]));
    }
  Timing out{reps, {}};
  for (auto& t : ts) {
    std::sort(t.begin(), t.end());
    out.median.push_back(t[t.size() / 2]);
  }
  return out;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string one, five, fifteen;
  f >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "unknown";
}

const char* env_or(const char* name, const char* otherwise) {
  const char* v = std::getenv(name);
  return v ? v : otherwise;
}

std::vector<int> parse_ints(const std::string& s) {
  std::vector<int> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoi(item));
  return out;
}

struct Model {  // a GPT's width and depth: C384:6 is `slope bench train`'s L6 H6 C384
  int C, L;
};

std::vector<Model> parse_models(const std::string& s) {
  std::vector<Model> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos)
      throw std::runtime_error("--models: '" + item + "' is not C:L (e.g. 384:6)");
    out.push_back({std::stoi(item.substr(0, colon)), std::stoi(item.substr(colon + 1))});
  }
  return out;
}

int run(const std::string& libs_arg, const std::string& threads_arg, const std::string& models_arg,
        const std::string& vocabs_arg, int rows, double seconds, int min_reps, int max_reps,
        const std::string& blis_path) {
  // The libraries, OpenBLAS first: the checks and ratios are against it.
  std::vector<Library> all;
  all.push_back({"openblas", openblas_gemm,
                 std::string(openblas_get_config()) + ", core " + openblas_get_corename()});
  if (const std::string about = load_blis(blis_path); !about.empty())
    all.push_back({"blis", blis_gemm, about});
  else
    std::printf("# blis: %s not loadable (apt-get install libblis4-openmp)\n", blis_path.c_str());
#ifdef SLOPE_BENCH_HAVE_DNNL
  all.push_back({"onednn", onednn_gemm, onednn_about()});
#else
  std::printf("# onednn: not built in (apt-get install libdnnl-dev, then reconfigure)\n");
#endif
  if (slope::nn::gemm_backend_available(slope::nn::GemmBackend::mkl))
    all.push_back({"mkl", mkl_gemm, slope::nn::gemm_backend_version(slope::nn::GemmBackend::mkl)});
  else
    std::printf("# mkl: %s\n",
                slope::nn::gemm_backend_unavailable_reason(slope::nn::GemmBackend::mkl).c_str());
#ifdef SLOPE_BENCH_HAVE_LIBXSMM
  libxsmm_init();
  all.push_back({"libxsmm", libxsmm_gemm,
                 std::string(LIBXSMM_VERSION) + ", target " + libxsmm_get_target_arch()});
#else
  std::printf("# libxsmm: not built in (apt-get install libxsmm-dev, then reconfigure)\n");
#endif
  std::vector<Library> libs;
  for (const Library& lib : all)
    if (lib.name == "openblas" || libs_arg == "all" ||
        ("," + libs_arg + ",").find("," + lib.name + ",") != std::string::npos)
      libs.push_back(lib);

  std::printf("# machine: %s, %s; load average %s\n", cpu_model().c_str(),
              __builtin_cpu_supports("avx512f") ? "AVX-512" : "AVX2 (no AVX-512)",
              loadavg().c_str());
  std::printf(
      "# forced ISA: OPENBLAS_CORETYPE=%s BLIS_ARCH_TYPE=%s ONEDNN_MAX_CPU_ISA=%s "
      "LIBXSMM_TARGET=%s; OMP_WAIT_POLICY=%s\n",
      env_or("OPENBLAS_CORETYPE", "-"), env_or("BLIS_ARCH_TYPE", "-"),
      env_or("ONEDNN_MAX_CPU_ISA", "-"), env_or("LIBXSMM_TARGET", "-"),
      env_or("OMP_WAIT_POLICY", "-"));
  for (const Library& lib : libs) std::printf("# %s: %s\n", lib.name.c_str(), lib.about.c_str());

  const std::vector<Model> models = parse_models(models_arg);
  const std::vector<int> vocabs = parse_ints(vocabs_arg);
  // The problems: 1024³ NT first (the yardstick of `slope bench`), then each model's layers.
  std::vector<Problem> problems = {{"1024^3", "NT", false, true, 1024, 1024, 1024, 0.0f}};
  for (const Model& md : models) {
    const int C = md.C;
    const std::string w = " C" + std::to_string(C);
    for (const Problem& p : linear_problems("qkv" + w, rows, C, 3 * C, 1.0f)) problems.push_back(p);
    for (const Problem& p : linear_problems("proj" + w, rows, C, C, 1.0f)) problems.push_back(p);
    for (const Problem& p : linear_problems("fc" + w, rows, C, 4 * C, 1.0f)) problems.push_back(p);
    for (const Problem& p : linear_problems("mlp" + w, rows, 4 * C, C, 1.0f)) problems.push_back(p);
    for (int V : vocabs) {
      const int Vp = (V + 63) / 64 * 64;
      for (const Problem& p : linear_problems("head" + std::to_string(Vp) + w, rows, C, Vp, 0.0f))
        problems.push_back(p);
    }
  }

  for (int threads : parse_ints(threads_arg)) {
    set_threads(threads);
    std::printf("\n## %d thread%s, M = B·T = %d (load average %s)\n\n", threads,
                threads > 1 ? "s" : "", rows, loadavg().c_str());
    std::printf("| GEMM | op | m n k | reps |");
    for (const Library& lib : libs) std::printf(" %s GF/s |", lib.name.c_str());
    for (size_t l = 1; l < libs.size(); ++l) std::printf(" %s/ob |", libs[l].name.c_str());
    for (size_t l = 1; l < libs.size(); ++l) std::printf(" %s err/u |", libs[l].name.c_str());
    std::printf("\n|---|---|---|---|");
    for (size_t l = 0; l < 3 * libs.size() - 2; ++l) std::printf("---|");
    std::printf("\n");
    std::vector<Timing> timings;
    for (const Problem& p : problems) {
      const std::vector<double> err = check(p, libs);
      const Timing t = time_problem(p, libs, seconds, min_reps, max_reps);
      timings.push_back(t);
      std::printf("| %s | %s | %d %d %d | %d |", p.layer.c_str(), p.op.c_str(), p.m, p.n, p.k,
                  t.reps);
      for (double s : t.median) std::printf(" %.1f |", p.flops() / s * 1e-9);
      for (size_t l = 1; l < libs.size(); ++l) std::printf(" %.3f |", t.median[0] / t.median[l]);
      for (size_t l = 1; l < libs.size(); ++l) std::printf(" %.0f |", err[l]);
      std::printf("\n");
      std::fflush(stdout);
    }
    // One step's GEMMs: each layer's three L times, lm_head's three once; a library's step time
    // is the sum of its medians, and its ratio to OpenBLAS is weighted by each GEMM's time.
    std::printf("\n| step's GEMMs (%d thread%s) | GFLOP |", threads, threads > 1 ? "s" : "");
    for (const Library& lib : libs) std::printf(" %s GF/s |", lib.name.c_str());
    for (size_t l = 1; l < libs.size(); ++l) std::printf(" %s/ob |", libs[l].name.c_str());
    std::printf("\n|---|---|");
    for (size_t l = 0; l < 2 * libs.size() - 1; ++l) std::printf("---|");
    std::printf("\n");
    for (const Model& md : models)
      for (int V : vocabs) {
        const int Vp = (V + 63) / 64 * 64;
        const std::string w = " C" + std::to_string(md.C), head = "head" + std::to_string(Vp) + w;
        double flops = 0;
        std::vector<double> secs(libs.size(), 0.0);
        for (size_t i = 0; i < problems.size(); ++i) {
          const Problem& p = problems[i];
          int count = 0;
          if (p.layer == "qkv" + w || p.layer == "proj" + w || p.layer == "fc" + w ||
              p.layer == "mlp" + w)
            count = md.L;
          else if (p.layer == head)
            count = 1;
          flops += count * p.flops();
          for (size_t l = 0; l < libs.size(); ++l) secs[l] += count * timings[i].median[l];
        }
        std::printf("| L%d C%d V%d (Vp %d) | %.1f |", md.L, md.C, V, Vp, flops * 1e-9);
        for (double s : secs) std::printf(" %.1f |", flops / s * 1e-9);
        for (size_t l = 1; l < libs.size(); ++l) std::printf(" %.3f |", secs[0] / secs[l]);
        std::printf("\n");
      }
  }
  std::printf("\n# load average at the end: %s\n", loadavg().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "bench/gemm: OpenBLAS vs BLIS, oneDNN and libxsmm sgemm at the GPT trainer's "
      "shapes, interleaved, as ratios to OpenBLAS in the same run"};
  std::string libs = "all", threads = "1,2", models = "384:6,768:12", vocabs = "65,50304";
  std::string blis_path = "libblis.so.4";
  int rows = 2048, min_reps = 5, max_reps = 40;
  double seconds = 1.0;
  app.add_option("--libs", libs,
                 "Libraries besides OpenBLAS: all, or a list (blis,onednn,mkl,libxsmm)")
      ->capture_default_str();
  app.add_option("--threads", threads, "Thread counts, comma-separated")->capture_default_str();
  app.add_option("--models", models, "GPT widths and depths C:L, comma-separated")
      ->capture_default_str();
  app.add_option("--vocabs", vocabs,
                 "Vocabulary sizes (padded to a multiple of 64 as the model "
                 "does)")
      ->capture_default_str();
  app.add_option("--rows", rows, "M = B·T, the rows of every linear layer's input")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  app.add_option("--seconds", seconds, "Target time of each library's calls on each GEMM")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--min-reps", min_reps, "Fewest rounds per GEMM")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--max-reps", max_reps, "Most rounds per GEMM")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  app.add_option("--blis", blis_path, "BLIS shared library to dlopen")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    return run(libs, threads, models, vocabs, rows, seconds, min_reps, std::max(min_reps, max_reps),
               blis_path);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gemm: %s\n", e.what());
    return 1;
  }
}
