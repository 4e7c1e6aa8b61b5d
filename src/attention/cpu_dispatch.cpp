// Public entry points of the CPU kernels: validate once, pick the instruction set once, call.
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "attention/cpu_kernels.h"
#include "attention/geometry.h"

namespace slope {
namespace cpu {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      return "avx2";
    default:
      return "generic";
  }
}

bool isa_supported(Isa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma");
    case Isa::kAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default:
      return true;
  }
}

namespace {
// The instruction set named `name`, if this processor supports it; `what` prefixes the error.
Isa isa_named(const char* name, const std::string& what) {
  for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512})
    if (std::strcmp(name, isa_name(isa)) == 0) {
      if (!isa_supported(isa)) throw Error(what + " is not supported by this processor");
      return isa;
    }
  throw Error(what + " is unknown; use generic, avx2 or avx512");
}

Isa choose_isa() {
  // SLOPE_ISA=generic|avx2|avx512 forces a (supported) instruction set, for tests and benchmarks.
  if (const char* env = std::getenv("SLOPE_ISA"))
    return isa_named(env, std::string("SLOPE_ISA=") + env);
  if (isa_supported(Isa::kAvx512)) return Isa::kAvx512;
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kGeneric;
}

std::atomic<int> g_forced{-1};  // set_attention_cpu_isa(); −1: none
}  // namespace

Isa best_isa() {
  const int forced = g_forced.load(std::memory_order_relaxed);
  if (forced >= 0) return static_cast<Isa>(forced);
  static const Isa isa = choose_isa();
  return isa;
}

void forward(Isa isa, const AttentionProblem& problem, const AttentionInputs<float>& in,
             float* out, float* lse) {
  const AttentionProblem p = detail::with_packed_extents(problem);
  switch (isa) {
    case Isa::kAvx512:
      return avx512::forward(p, in, out, lse);
    case Isa::kAvx2:
      return avx2::forward(p, in, out, lse);
    default:
      return generic::forward(p, in, out, lse);
  }
}

void backward(Isa isa, const AttentionProblem& problem, const AttentionInputs<float>& in,
              const float* out, const float* dout, const float* lse,
              const AttentionGrads<float>& grads) {
  const AttentionProblem p = detail::with_packed_extents(problem);
  switch (isa) {
    case Isa::kAvx512:
      return avx512::backward(p, in, out, dout, lse, grads);
    case Isa::kAvx2:
      return avx2::backward(p, in, out, dout, lse, grads);
    default:
      return generic::backward(p, in, out, dout, lse, grads);
  }
}

void dropout_keep_tile(Isa isa, const AttentionProblem& p, int64_t b, int64_t h, int64_t i0,
                       int64_t nrows, int64_t j0, int64_t ncols, float value, float* tile,
                       int64_t ld, bool transposed) {
  switch (isa) {
    case Isa::kAvx512:
      return avx512::dropout_keep_tile(p, b, h, i0, nrows, j0, ncols, value, tile, ld, transposed);
    case Isa::kAvx2:
      return avx2::dropout_keep_tile(p, b, h, i0, nrows, j0, ncols, value, tile, ld, transposed);
    default:
      return generic::dropout_keep_tile(p, b, h, i0, nrows, j0, ncols, value, tile, ld, transposed);
  }
}

}  // namespace cpu

void attention_forward(const AttentionProblem& p, const AttentionInputs<float>& in, float* out,
                       float* lse) {
  validate(p, in);
  if (!out || !lse) throw Error("attention: out and lse must be given");
  cpu::forward(cpu::best_isa(), p, in, out, lse);
}

void attention_backward(const AttentionProblem& p, const AttentionInputs<float>& in,
                        const float* out, const float* dout, const float* lse,
                        const AttentionGrads<float>& grads) {
  validate_backward(p, in);
  if (!out || !dout || !lse) throw Error("attention backward: out, dout and lse must be given");
  if (!grads.dq || !grads.dk || !grads.dv)
    throw Error("attention backward: dq, dk and dv must be given");
  cpu::backward(cpu::best_isa(), p, in, out, dout, lse, grads);
}

const char* attention_cpu_isa() { return cpu::isa_name(cpu::best_isa()); }

std::vector<std::string> attention_cpu_isas() {
  std::vector<std::string> r;
  for (cpu::Isa isa : {cpu::Isa::kGeneric, cpu::Isa::kAvx2, cpu::Isa::kAvx512})
    if (cpu::isa_supported(isa)) r.emplace_back(cpu::isa_name(isa));
  return r;
}

void set_attention_cpu_isa(const std::string& name) {
  const cpu::Isa isa = cpu::isa_named(name.c_str(), "instruction set '" + name + "'");
  cpu::g_forced.store(static_cast<int>(isa), std::memory_order_relaxed);
}

}  // namespace slope
