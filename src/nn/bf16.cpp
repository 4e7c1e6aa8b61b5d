// bf16 GEMM inputs on oneDNN's matmul primitive (see bf16.h). Debian's OpenBLAS 0.3.21 has no
// sbgemm and oneDNN 2.6's C GEMM API (dnnl_sgemm) has no bf16, so the matmul primitive it is:
// src (m, k) and weights (k, n) bf16 with strides that say which is transposed, dst (m, n) f32
// with C's row stride, α as an output scale and β as a sum post-op (absent when β = 0, so C is
// not read). A primitive is made once per shape and kept: the trainer uses a handful of shapes.
//
// The operands are rounded into dense bf16 buffers at every call, the weights included: a
// weight matrix (OC, C) costs OC·C conversions against the GEMM's 2·BT·OC·C FLOPs, 1/(2·BT) of
// it (BT = B·T tokens per micro-step, 2048 on the main job), and an activation (BT, C) costs
// 1/(2·OC). Converting the weights once per optimizer step would save that 1/(2·BT) at the
// price of a second copy of the weights kept in step with AdamW; not done.
#include "nn/bf16.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "nn/float_kernels.h"
#include "slope/error.h"

#ifdef SLOPE_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

namespace slope::nn {

void bf16_round_rows(uint16_t* out, const float* in, int64_t rows, int64_t cols, int64_t ld) {
  const auto round_range = isa::kernels().bf16_round_range;  // vectorised, per instruction set
#pragma omp parallel for schedule(static) if (rows * cols > (int64_t{1} << 16))
  for (int64_t r = 0; r < rows; ++r) round_range(out + r * cols, in + r * ld, cols);
}

#ifdef SLOPE_HAVE_ONEDNN

namespace {

using dt = dnnl::memory::data_type;

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

// op(X) (rows, cols) of a dense buffer stored (rows, cols), or (cols, rows) when transposed.
dnnl::memory::desc operand_desc(int64_t rows, int64_t cols, bool transposed, dt type) {
  return dnnl::memory::desc({rows, cols}, type,
                            transposed ? dnnl::memory::dims{1, rows} : dnnl::memory::dims{cols, 1});
}

dnnl::matmul::primitive_desc make_matmul(bool trans_a, bool trans_b, int64_t m, int64_t n,
                                         int64_t k, float alpha, float beta, int64_t ldc) {
  const dnnl::memory::desc src = operand_desc(m, k, trans_a, dt::bf16);
  const dnnl::memory::desc weights = operand_desc(k, n, trans_b, dt::bf16);
  const dnnl::memory::desc dst({m, n}, dt::f32, dnnl::memory::dims{ldc, 1});
  dnnl::primitive_attr attr;
  if (alpha != 1.0f) attr.set_output_scales(0, {alpha});
  if (beta != 0.0f) {
    dnnl::post_ops ops;
    ops.append_sum(beta);
    attr.set_post_ops(ops);
  }
  return dnnl::matmul::primitive_desc(dnnl::matmul::desc(src, weights, dst), attr, cpu_engine());
}

using Shape = std::tuple<bool, bool, int64_t, int64_t, int64_t, float, float, int64_t>;

dnnl::matmul& cached_matmul(const Shape& s) {
  static std::mutex mutex;
  static std::map<Shape, dnnl::matmul> cache;
  const std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(s);
  if (it == cache.end()) {
    const auto [ta, tb, m, n, k, alpha, beta, ldc] = s;
    it = cache.emplace(s, dnnl::matmul(make_matmul(ta, tb, m, n, k, alpha, beta, ldc))).first;
  }
  return it->second;
}

std::string effective_isa_name() {
  switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_avx512_core_amx:
      return "AMX";
    case dnnl_cpu_isa_avx512_core_bf16:
      return "AVX512_BF16";
    case dnnl_cpu_isa_avx512_core_vnni:
      return "AVX512_CORE_VNNI";
    case dnnl_cpu_isa_avx512_core:
      return "AVX512_CORE";
    case dnnl_cpu_isa_avx2_vnni:
      return "AVX2_VNNI";
    case dnnl_cpu_isa_avx2:
      return "AVX2";
    default:
      return "older than AVX2";
  }
}

}  // namespace

bool bf16_native() {
  const unsigned isa = dnnl_get_effective_cpu_isa(), bf16 = dnnl_cpu_isa_avx512_core_bf16;
  return (isa & bf16) == bf16;  // AMX's flags hold AVX512_BF16's
}

bool bf16_matmul_available() {
  static const bool available = [] {
    try {
      make_matmul(false, false, 2, 2, 2, 1.0f, 0.0f, 2);
      return true;
    } catch (const dnnl::error&) {
      return false;  // "could not create a primitive descriptor": no bf16 kernel at this ISA
    }
  }();
  return available;
}

void require_bf16() {
  if (bf16_native()) return;
  const char* emulate = std::getenv("SLOPE_BF16_EMULATE");
  const bool asked = emulate && std::strcmp(emulate, "1") == 0;
  if (asked && bf16_matmul_available()) return;
  std::string what =
      "--dtype bf16 is not supported on this CPU: it needs AVX512_BF16 or AMX (oneDNN "
      "finds " +
      effective_isa_name() + ")";
  if (asked)
    what += "; SLOPE_BF16_EMULATE=1 was set, but oneDNN cannot emulate bf16 below AVX512_CORE";
  throw Error(what + "; use --dtype fp32");
}

void gemm_bf16(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
               const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
               int64_t ldc) {
  if (m < 1 || n < 1 || k < 1 || ldc < n)
    throw Error("gemm_bf16: m n k = " + std::to_string(m) + " " + std::to_string(n) + " " +
                std::to_string(k) + " with ldc " + std::to_string(ldc) +
                ": sizes must be >= 1 and ldc >= n");
  // Dense bf16 copies as stored: A (m, k), or (k, m) when trans_a; B (k, n), or (n, k).
  thread_local std::vector<uint16_t> a16, b16;
  a16.resize(static_cast<size_t>(m * k));
  b16.resize(static_cast<size_t>(k * n));
  bf16_round_rows(a16.data(), a, trans_a ? k : m, trans_a ? m : k, lda);
  bf16_round_rows(b16.data(), b, trans_b ? n : k, trans_b ? k : n, ldb);
  try {
    dnnl::matmul& mm = cached_matmul({trans_a, trans_b, m, n, k, alpha, beta, ldc});
    dnnl::engine& engine = cpu_engine();
    dnnl::stream stream(engine);
    dnnl::memory src(operand_desc(m, k, trans_a, dt::bf16), engine, a16.data());
    dnnl::memory weights(operand_desc(k, n, trans_b, dt::bf16), engine, b16.data());
    dnnl::memory dst(dnnl::memory::desc({m, n}, dt::f32, dnnl::memory::dims{ldc, 1}), engine, c);
    mm.execute(stream, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, weights}, {DNNL_ARG_DST, dst}});
    stream.wait();
  } catch (const dnnl::error& e) {
    throw Error(std::string("gemm_bf16: oneDNN's bf16 matmul failed (") + e.what() +
                ", m n k = " + std::to_string(m) + " " + std::to_string(n) + " " +
                std::to_string(k) + "); use --dtype fp32");
  }
}

#else  // no oneDNN: no bf16

bool bf16_native() { return false; }
bool bf16_matmul_available() { return false; }

void require_bf16() {
  throw Error(
      "--dtype bf16 needs oneDNN: this build has none (install libdnnl-dev and reconfigure with "
      "-DSLOPE_WITH_ONEDNN=ON); use --dtype fp32");
}

void gemm_bf16(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t, const float*,
               int64_t, float, float*, int64_t) {
  require_bf16();
}

#endif

}  // namespace slope::nn
