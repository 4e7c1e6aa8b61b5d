// Public entry points of the CPU kernels: validate once, pick the instruction set once, call.
#include <cstdlib>
#include <cstring>
#include <string>

#include "attention/cpu_kernels.h"

namespace slope {
namespace cpu {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kAvx512: return "avx512";
    case Isa::kAvx2: return "avx2";
    default: return "generic";
  }
}

bool isa_supported(Isa isa) {
  __builtin_cpu_init();
  switch (isa) {
    case Isa::kAvx512:
      return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("fma");
    case Isa::kAvx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    default: return true;
  }
}

namespace {
Isa choose_isa() {
  // SLOPE_ISA=generic|avx2|avx512 forces a (supported) instruction set, for tests and benchmarks.
  if (const char* env = std::getenv("SLOPE_ISA")) {
    for (Isa isa : {Isa::kGeneric, Isa::kAvx2, Isa::kAvx512})
      if (std::strcmp(env, isa_name(isa)) == 0) {
        if (!isa_supported(isa))
          throw Error(std::string("SLOPE_ISA=") + env + " is not supported by this processor");
        return isa;
      }
    throw Error(std::string("SLOPE_ISA=") + env + " is unknown; use generic, avx2 or avx512");
  }
  if (isa_supported(Isa::kAvx512)) return Isa::kAvx512;
  if (isa_supported(Isa::kAvx2)) return Isa::kAvx2;
  return Isa::kGeneric;
}
}  // namespace

Isa best_isa() {
  static const Isa isa = choose_isa();
  return isa;
}

void forward(Isa isa, const AttentionProblem& p, const AttentionInputs<float>& in, float* out,
             float* lse) {
  switch (isa) {
    case Isa::kAvx512: return avx512::forward(p, in, out, lse);
    case Isa::kAvx2: return avx2::forward(p, in, out, lse);
    default: return generic::forward(p, in, out, lse);
  }
}

void backward(Isa isa, const AttentionProblem& p, const AttentionInputs<float>& in,
              const float* out, const float* dout, const float* lse,
              const AttentionGrads<float>& grads) {
  switch (isa) {
    case Isa::kAvx512: return avx512::backward(p, in, out, dout, lse, grads);
    case Isa::kAvx2: return avx2::backward(p, in, out, dout, lse, grads);
    default: return generic::backward(p, in, out, dout, lse, grads);
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

}  // namespace slope
