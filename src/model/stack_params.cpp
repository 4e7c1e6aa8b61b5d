// A stack's parameter table and the initialisation of every model's parameters (see
// stack_params.h).
#include "model/stack_params.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numbers>

#include "slope/attention.h"  // alibi_slopes

namespace slope::model {

int64_t ParamLayout::add(const std::string& name, std::vector<int64_t> shape, ParamInit how,
                         int64_t reserve) {
  init.push_back(how);
  // Raw ALiBi slopes stay >= 0 (a negative slope would favour distant tokens): the optimizer
  // projects them back.
  const double lower =
      how == ParamInit::alibi_slopes ? 0.0 : -std::numeric_limits<double>::infinity();
  return table.add(name, std::move(shape), reserve, lower).offset;
}

int64_t ParamLayout::add_bias(bool bias, const std::string& name, int64_t n) {
  return bias ? add(name, {n}, ParamInit::zeros) : kAbsent;
}

std::string relative_bias_tensor(const RelativeBias<float>& rel, int64_t H,
                                 std::vector<int64_t>* shape) {
  switch (rel.kind) {
    case RelativeBiasKind::kKerpleLog:
    case RelativeBiasKind::kKerplePower:
      *shape = {2, H};
      return "attn.kerple";
    case RelativeBiasKind::kT5:
      *shape = {rel.num_buckets, H};
      return "attn.relative_attention_bias";
    default:
      *shape = {relative_bias_param_count(rel.kind, H, rel.num_buckets, rel.fire_hidden)};
      return "attn.fire";
  }
}

template <class Real>
void init_relative_bias(Real* params, const StackOffsets& so, const RelativeBias<float>& rel,
                        int64_t H, double fire_L, uint64_t seed) {
  for (size_t l = 0; l < so.blocks.size(); ++l) {
    if (so.blocks[l].rel == kAbsent) continue;
    const std::vector<float> w = relative_bias_init(rel, H, fire_L, seed + l);
    std::copy(w.begin(), w.end(), params + so.blocks[l].rel);
  }
}

template <class Real>
void clamp_relative_bias(Real* params, const StackOffsets& so, const RelativeBias<float>& rel,
                         int64_t H) {
  for (const BlockOffsets& o : so.blocks)
    if (o.rel != kAbsent) relative_bias_clamp(rel, H, params + o.rel);
}

template void init_relative_bias<float>(float*, const StackOffsets&, const RelativeBias<float>&,
                                        int64_t, double, uint64_t);
template void init_relative_bias<double>(double*, const StackOffsets&, const RelativeBias<float>&,
                                         int64_t, double, uint64_t);
template void clamp_relative_bias<float>(float*, const StackOffsets&, const RelativeBias<float>&,
                                         int64_t);
template void clamp_relative_bias<double>(double*, const StackOffsets&, const RelativeBias<float>&,
                                          int64_t);

namespace {

// One block's tensors under h = "{prefix}h.{l}.".
BlockOffsets add_block(ParamLayout& p, const std::string& h, const StackSpec& s) {
  const int64_t C = s.C;
  BlockOffsets o;
  o.ln_1_w = p.add(h + "ln_1.weight", {C}, ParamInit::ones);
  o.ln_1_b = p.add_bias(s.bias, h + "ln_1.bias", C);
  o.c_attn_w = p.add(h + "attn.c_attn.weight", {3 * C, C}, ParamInit::normal);
  o.c_attn_b = p.add_bias(s.bias, h + "attn.c_attn.bias", 3 * C);
  o.attn_proj_w = p.add(h + "attn.c_proj.weight", {C, C}, ParamInit::normal_residual);
  o.attn_proj_b = p.add_bias(s.bias, h + "attn.c_proj.bias", C);
  if (s.slopes.learned()) {
    // Raw slopes are the slopes (attn.alibi_slopes), sigmoid ones their θ (attn.alibi_theta).
    const bool raw = s.slopes.kind == SlopeKind::raw;
    const std::string name = h + (raw ? "attn.alibi_slopes" : "attn.alibi_theta");
    const ParamInit how = raw ? ParamInit::alibi_slopes : ParamInit::alibi_theta;
    if (s.slopes.two_sided) {
      o.slopes_left = p.add(name + "_left", {s.H}, how);
      o.slopes_right = p.add(name + "_right", {s.H}, how);
    } else {
      o.slopes_left = p.add(name, {s.H}, how);
    }
  }
  if (s.rel.kind != RelativeBiasKind::kNone) {
    std::vector<int64_t> shape;
    const std::string name = relative_bias_tensor(s.rel, s.H, &shape);
    o.rel = p.add(h + name, shape, ParamInit::zeros);  // init_relative_bias writes it
  }
  if (s.cross) {
    o.ln_x_w = p.add(h + "ln_x.weight", {C}, ParamInit::ones);
    o.ln_x_b = p.add_bias(s.bias, h + "ln_x.bias", C);
    o.xq_w = p.add(h + "cross.c_q.weight", {C, C}, ParamInit::normal);
    o.xq_b = p.add_bias(s.bias, h + "cross.c_q.bias", C);
    o.xkv_w = p.add(h + "cross.c_kv.weight", {2 * C, C}, ParamInit::normal);
    o.xkv_b = p.add_bias(s.bias, h + "cross.c_kv.bias", 2 * C);
    o.xproj_w = p.add(h + "cross.c_proj.weight", {C, C}, ParamInit::normal_residual);
    o.xproj_b = p.add_bias(s.bias, h + "cross.c_proj.bias", C);
  }
  o.ln_2_w = p.add(h + "ln_2.weight", {C}, ParamInit::ones);
  o.ln_2_b = p.add_bias(s.bias, h + "ln_2.bias", C);
  o.c_fc_w = p.add(h + "mlp.c_fc.weight", {4 * C, C}, ParamInit::normal);
  o.c_fc_b = p.add_bias(s.bias, h + "mlp.c_fc.bias", 4 * C);
  o.mlp_proj_w = p.add(h + "mlp.c_proj.weight", {C, 4 * C}, ParamInit::normal_residual);
  o.mlp_proj_b = p.add_bias(s.bias, h + "mlp.c_proj.bias", C);
  return o;
}

}  // namespace

StackOffsets add_stack(ParamLayout& p, const StackSpec& s) {
  StackOffsets st;
  st.wte = p.add(s.prefix + "wte.weight", {s.V, s.C}, ParamInit::normal, s.Vp * s.C);
  if (s.wpe_rows > 0) st.wpe = p.add(s.prefix + "wpe.weight", {s.wpe_rows, s.C}, ParamInit::normal);
  for (int64_t l = 0; l < s.L; ++l)
    st.blocks.push_back(add_block(p, s.prefix + "h." + std::to_string(l) + ".", s));
  st.ln_f_w = p.add(s.prefix + "ln_f.weight", {s.C}, ParamInit::ones);
  st.ln_f_b = p.add_bias(s.bias, s.prefix + "ln_f.bias", s.C);
  return st;
}

// ---- Initialisation ----------------------------------------------------------------------

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

template void init_params<float>(float*, const ParamTable&, const std::vector<ParamInit>&, int64_t,
                                 int64_t, double, uint64_t);
template void init_params<double>(double*, const ParamTable&, const std::vector<ParamInit>&,
                                  int64_t, int64_t, double, uint64_t);

}  // namespace slope::model
