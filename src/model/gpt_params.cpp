// The GPT's parameter table and initialisation (see gpt_params.h).
#include "model/gpt_params.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>
#include <string>

#include "slope/attention.h"  // alibi_slopes

namespace slope::model {

namespace {

// SplitMix64's output function: the counter-based generator behind the initial weights, the
// same on every platform and standard library (std::normal_distribution is not).
constexpr uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

uint64_t name_hash(const std::string& name) {  // FNV-1a
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : name) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

// Uniform in (0, 1]: 53 random bits, never 0 (the logarithm below).
double uniform(uint64_t stream, uint64_t counter) {
  return (static_cast<double>(mix64(stream + counter * kGolden) >> 11) + 1.0) * 0x1p-53;
}

// The i-th standard normal of a stream (Box–Muller, one value per pair of uniforms).
double normal(uint64_t stream, uint64_t i) {
  const double u1 = uniform(stream, 2 * i), u2 = uniform(stream, 2 * i + 1);
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

}  // namespace

int64_t LayoutBuilder::add(const std::string& name, std::vector<int64_t> shape, ParamInit how,
                           int64_t reserve) {
  init.push_back(how);
  // ALiBi slopes must stay >= 0 (the kernels' domain, and a negative slope would favour
  // distant tokens): the optimizer projects them back.
  const double lower =
      how == ParamInit::alibi_slopes ? 0.0 : -std::numeric_limits<double>::infinity();
  return table.add(name, std::move(shape), reserve, lower).offset;
}

int64_t LayoutBuilder::add_bias(bool bias, const std::string& name, int64_t n) {
  return bias ? add(name, {n}, ParamInit::zeros) : kAbsent;
}

GptLayout gpt_layout(const GptConfig& c) {
  validate(c);
  GptLayout layout;
  LayoutBuilder b{layout.table, layout.init};
  const int64_t C = c.n_embd;
  layout.wte = b.add("transformer.wte.weight", {c.vocab_size, C}, ParamInit::normal,
                     c.padded_vocab_size() * C);
  if (c.pos == Position::learned)
    layout.wpe = b.add("transformer.wpe.weight", {c.block_size, C}, ParamInit::normal);
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string h = "transformer.h." + std::to_string(l) + ".";
    GptBlockOffsets o;
    o.ln_1_w = b.add(h + "ln_1.weight", {C}, ParamInit::ones);
    o.ln_1_b = b.add_bias(c.bias, h + "ln_1.bias", C);
    o.c_attn_w = b.add(h + "attn.c_attn.weight", {3 * C, C}, ParamInit::normal);
    o.c_attn_b = b.add_bias(c.bias, h + "attn.c_attn.bias", 3 * C);
    o.attn_proj_w = b.add(h + "attn.c_proj.weight", {C, C}, ParamInit::normal_residual);
    o.attn_proj_b = b.add_bias(c.bias, h + "attn.c_proj.bias", C);
    o.alibi_slopes = c.pos == Position::alibi_learned
                         ? b.add(h + "attn.alibi_slopes", {c.n_head}, ParamInit::alibi_slopes)
                         : kAbsent;
    o.ln_2_w = b.add(h + "ln_2.weight", {C}, ParamInit::ones);
    o.ln_2_b = b.add_bias(c.bias, h + "ln_2.bias", C);
    o.c_fc_w = b.add(h + "mlp.c_fc.weight", {4 * C, C}, ParamInit::normal);
    o.c_fc_b = b.add_bias(c.bias, h + "mlp.c_fc.bias", 4 * C);
    o.mlp_proj_w = b.add(h + "mlp.c_proj.weight", {C, 4 * C}, ParamInit::normal_residual);
    o.mlp_proj_b = b.add_bias(c.bias, h + "mlp.c_proj.bias", C);
    layout.blocks.push_back(o);
  }
  layout.ln_f_w = b.add("transformer.ln_f.weight", {C}, ParamInit::ones);
  layout.ln_f_b = b.add_bias(c.bias, "transformer.ln_f.bias", C);
  return layout;
}

template <class Real>
void gpt_init(Real* params, const GptLayout& layout, const GptConfig& c, uint64_t seed) {
  init_params(params, layout.table, layout.init, c.n_layer, c.n_head, c.max_bias, seed);
}

template <class Real>
void init_params(Real* params, const ParamTable& table, const std::vector<ParamInit>& init,
                 int64_t residual_layers, int64_t n_head, double max_bias, uint64_t seed) {
  std::fill(params, params + table.size(), Real(0));
  const std::vector<float> slopes = alibi_slopes(n_head, max_bias);
  const double residual_std = kInitStd / std::sqrt(2.0 * static_cast<double>(residual_layers));
  for (size_t i = 0; i < table.specs().size(); ++i) {
    const ParamSpec& spec = table.specs()[i];
    Real* p = params + spec.offset;
    const int64_t n = spec.numel();  // padding rows stay zero
    const uint64_t stream = mix64(mix64(seed) ^ name_hash(spec.name));
    switch (init[i]) {
      case ParamInit::normal:
      case ParamInit::normal_residual: {
        const double std = init[i] == ParamInit::normal ? kInitStd : residual_std;
        for (int64_t j = 0; j < n; ++j)
          p[j] = static_cast<Real>(static_cast<float>(std * normal(stream, j)));
        break;
      }
      case ParamInit::zeros:
        break;
      case ParamInit::ones:
        std::fill(p, p + n, Real(1));
        break;
      case ParamInit::alibi_slopes:
        std::copy(slopes.begin(), slopes.end(), p);
        break;
      case ParamInit::alibi_theta:
        for (int64_t j = 0; j < n; ++j)
          p[j] = static_cast<Real>(static_cast<float>(-2.0 + normal(stream, j)));
        break;
    }
  }
}

template void gpt_init<float>(float*, const GptLayout&, const GptConfig&, uint64_t);
template void gpt_init<double>(double*, const GptLayout&, const GptConfig&, uint64_t);
template void init_params<float>(float*, const ParamTable&, const std::vector<ParamInit>&, int64_t,
                                 int64_t, double, uint64_t);
template void init_params<double>(double*, const ParamTable&, const std::vector<ParamInit>&,
                                  int64_t, int64_t, double, uint64_t);

}  // namespace slope::model
