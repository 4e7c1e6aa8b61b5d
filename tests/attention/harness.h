// Test harness for the attention problem: random problems of every variant, their float64
// reference, the naive fp32 baseline (what a float32 framework computes) and the fused kernels.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "attention/cpu_kernels.h"
#include "attention/geometry.h"
#include "slope/attention.h"

namespace slope::testing {

enum class Bias { kNone, kAlibi, kSymmetric, kNonsymmetric, kLearned };

// A learned relative bias instead of ALiBi (attention.h's RelativeBias), random parameters in
// each family's domain.
struct RelCase {
  RelativeBiasKind kind = RelativeBiasKind::kNone;
  bool bidirectional = true;  // T5
  int64_t num_buckets = 32, max_distance = 64;
  int64_t fire_hidden = 8, fire_grid = 256;
  double fire_L = 40.0;  // FIRE's L: rows past it take the per-score gradient path
  float scale = 1.0f;    // Kerple's r1, T5's table and FIRE's output layer, scaled
};

struct Case {
  std::string name;
  int64_t B = 1, H = 1, Hkv = 1, Tq = 1, Tk = 1, D = 16, Dv = 16;
  bool causal = false;
  Bias bias = Bias::kNone;
  bool ragged = false;               // key lengths, one of them 0
  std::vector<int32_t> key_lengths;  // explicit key lengths (B), overriding `ragged`
  MaskKind mask = MaskKind::kNone;
  float input_scale = 1.0f;
  bool shared_slopes = false;  // slopes_right = null
  bool strided = false;        // q/k/v as slices of a packed (B, T, 3, H, D)-like buffer
  float skip_tolerance = 0x1p-24f;
  float dropout_p = 0.0f;  // attention dropout, with the seed and offset below
  uint64_t dropout_seed = 0x5eed'0000'0001u, dropout_offset = 7;
  QueryPositions positions = QueryPositions::kLowerRight;
  // Packed sequences: each document's query and key count (flash-attn varlen, (total, H, D)
  // rows). Given, they replace B (their count), Tq and Tk (the longest, at least 1).
  std::vector<int32_t> docs_q, docs_k;
  int64_t window_left = -1, window_right = -1;  // sliding window (−1: unbounded)
  float softcap = 0.0f;
  bool per_batch_slopes = false;  // slopes (B, H), batch stride H + 2 (a gap between rows)
  bool negative_slopes = false;   // every other head's finite slopes negated
  RelCase rel;                    // a learned relative bias (bias must be kNone)
};

// How GoogleTest prints a case (in test names and failures): by its name, not its bytes.
inline void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

// All tensors of one problem, in float (what kernels read) and double (the reference).
struct Instance {
  AttentionProblem p;
  std::vector<float> q, k, v, sl, sr, dout, mask_f;
  std::vector<float> rel;         // the relative bias's parameters (RelativeBias's flat layout)
  RelativeBias<float> rel_shape;  // its kind and sizes (params: set by inputs())
  std::vector<uint8_t> mask_b;
  std::vector<int32_t> key_lengths, cu_q, cu_k;
  int64_t q_size = 0, k_size = 0, v_size = 0, out_size = 0;

  AttentionInputs<float> inputs() const {
    AttentionInputs<float> in{q.data(), k.data(), v.data(), nullptr, nullptr};
    if (!sl.empty()) {
      in.slopes_left = sl.data();
      in.slopes_right = sr.empty() ? nullptr : sr.data();
    }
    in.rel = rel_shape;
    in.rel.params = rel.empty() ? nullptr : rel.data();
    return in;
  }
};

// Random parameters of the relative bias of c (attention.h's layout).
inline std::vector<float> make_rel_params(const Case& c, const RelativeBias<float>& shape,
                                          std::mt19937_64& rng) {
  const int64_t H = c.H;
  std::vector<float> r(static_cast<size_t>(
      relative_bias_param_count(shape.kind, H, shape.num_buckets, shape.fire_hidden)));
  auto uni = [&](float lo, float hi) { return std::uniform_real_distribution<float>(lo, hi)(rng); };
  const float s = c.rel.scale;
  switch (shape.kind) {
    case RelativeBiasKind::kKerpleLog:
      for (int64_t h = 0; h < H; ++h) r[h] = s * uni(0.2f, 2.0f), r[H + h] = uni(0.05f, 1.5f);
      break;
    case RelativeBiasKind::kKerplePower:
      for (int64_t h = 0; h < H; ++h) r[h] = s * uni(0.05f, 0.5f), r[H + h] = uni(0.3f, 1.8f);
      break;
    case RelativeBiasKind::kT5:
      for (float& e : r) e = s * uni(-2.0f, 2.0f);
      break;
    case RelativeBiasKind::kFire: {
      const int64_t K = shape.fire_hidden;
      for (int64_t k = 0; k < K; ++k) r[k] = uni(-3.0f, 3.0f), r[K + k] = uni(-1.0f, 1.0f);
      for (int64_t k = 2 * K; k < (2 + H) * K + H; ++k) r[k] = s * uni(-1.5f, 1.5f);
      r[(2 + H) * K + H] = uni(0.5f, 2.0f);                       // c
      r[(2 + H) * K + H + 1] = static_cast<float>(c.rel.fire_L);  // L
      break;
    }
    default:
      break;
  }
  return r;
}

// cu_seqlens (n + 1) of the lengths.
inline std::vector<int32_t> cumulative(const std::vector<int32_t>& lengths) {
  std::vector<int32_t> cu(1, 0);
  for (int32_t n : lengths) cu.push_back(cu.back() + n);
  return cu;
}

// Elements a tensor of the problem spans with strides s: B·s.b padded, up to the last row of
// `total` packed rows.
inline int64_t tensor_size(const AttentionProblem& p, const Strides& s, int64_t H, int64_t total,
                           int64_t D) {
  if (!detail::is_packed(p)) return p.B * s.b;
  return total == 0 ? 0 : (H - 1) * s.h + (total - 1) * s.t + D;
}

// Packed (total, H, D) strides; `strided`: rows padded as in the padded layout's strided case.
inline void set_packed_strides(AttentionProblem& p, bool strided) {
  const int64_t pq = strided ? 3 : 0, pk = strided ? 5 : 0, pv = strided ? 1 : 0,
                po = strided ? 2 : 0;
  p.q_strides = {0, p.D + pq, p.H * (p.D + pq)};
  p.k_strides = {0, p.D + pk, p.Hkv * (p.D + pk)};
  p.v_strides = {0, p.Dv + pv, p.Hkv * (p.Dv + pv)};
  p.out_strides = {0, p.Dv + po, p.H * (p.Dv + po)};
}

// The instruction sets this processor runs: every kernel test runs on each.
inline std::vector<cpu::Isa> isas() {
  std::vector<cpu::Isa> r;
  for (cpu::Isa i : {cpu::Isa::kGeneric, cpu::Isa::kAvx2, cpu::Isa::kAvx512})
    if (cpu::isa_supported(i)) r.push_back(i);
  return r;
}

inline Instance make_instance(const Case& c, uint64_t seed = 1234) {
  Instance x;
  AttentionProblem& p = x.p;
  p.B = c.B, p.H = c.H, p.Hkv = c.Hkv, p.Tq = c.Tq, p.Tk = c.Tk, p.D = c.D, p.Dv = c.Dv;
  p.causal = c.causal;
  p.skip_tolerance = c.skip_tolerance;
  p.dropout_p = c.dropout_p;
  p.dropout_seed = c.dropout_seed;
  p.dropout_offset = c.dropout_offset;
  p.window_left = c.window_left, p.window_right = c.window_right;
  p.softcap = c.softcap;
  p.query_positions = c.positions;
  if (!c.docs_q.empty()) {
    x.cu_q = cumulative(c.docs_q);
    x.cu_k = cumulative(c.docs_k);
    p.B = static_cast<int64_t>(c.docs_q.size());
    p.Tq = std::max(1, *std::max_element(c.docs_q.begin(), c.docs_q.end()));
    p.Tk = std::max(1, *std::max_element(c.docs_k.begin(), c.docs_k.end()));
    p.cu_seqlens_q = x.cu_q.data();
    p.cu_seqlens_k = x.cu_k.data();
    set_packed_strides(p, c.strided);
  } else if (c.strided) {
    // Rows padded by 3 floats and heads interleaved in time, as a view of a packed buffer.
    p.q_strides = {c.Tq * c.H * (c.D + 3), c.D + 3, c.H * (c.D + 3)};
    p.k_strides = {c.Tk * c.Hkv * (c.D + 5), c.D + 5, c.Hkv * (c.D + 5)};
    p.v_strides = {c.Tk * c.Hkv * (c.Dv + 1), c.Dv + 1, c.Hkv * (c.Dv + 1)};
    p.out_strides = {c.Tq * c.H * (c.Dv + 2), c.Dv + 2, c.H * (c.Dv + 2)};
  } else {
    p.q_strides = contiguous_strides(c.H, c.Tq, c.D);
    p.k_strides = contiguous_strides(c.Hkv, c.Tk, c.D);
    p.v_strides = contiguous_strides(c.Hkv, c.Tk, c.Dv);
    p.out_strides = contiguous_strides(c.H, c.Tq, c.Dv);
  }
  x.q_size = tensor_size(p, p.q_strides, p.H, detail::total_q(p), p.D);
  x.k_size = tensor_size(p, p.k_strides, p.Hkv, detail::total_k(p), p.D);
  x.v_size = tensor_size(p, p.v_strides, p.Hkv, detail::total_k(p), p.Dv);
  x.out_size = tensor_size(p, p.out_strides, p.H, detail::total_q(p), p.Dv);
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto fill = [&](std::vector<float>& t, int64_t n, float s) {
    t.resize(static_cast<size_t>(n));
    for (float& e : t) e = s * normal(rng);
  };
  fill(x.q, x.q_size, c.input_scale);
  fill(x.k, x.k_size, c.input_scale);
  fill(x.v, x.v_size, c.input_scale);
  fill(x.dout, x.out_size, 1.0f);
  const float inf = std::numeric_limits<float>::infinity();
  switch (c.bias) {
    case Bias::kNone:
      break;
    case Bias::kAlibi:
    case Bias::kSymmetric:
      x.sl = alibi_slopes(c.H);
      if (!c.shared_slopes) x.sr = x.sl;
      break;
    case Bias::kNonsymmetric: {
      const SlopePair s = alibi_slopes_nonsymmetric(c.H);
      x.sl = s.left;
      x.sr = s.right;
      break;
    }
    case Bias::kLearned: {
      std::uniform_real_distribution<float> u(0.01f, 0.9f);
      x.sl.resize(static_cast<size_t>(c.H));
      for (float& m : x.sl) m = u(rng);
      if (!c.shared_slopes) {
        x.sr.resize(static_cast<size_t>(c.H));
        for (float& m : x.sr) m = u(rng);
        x.sr.back() = inf;  // one head masks its right side
      }
      break;
    }
  }
  if (c.rel.kind != RelativeBiasKind::kNone) {
    x.rel_shape.kind = c.rel.kind;
    x.rel_shape.bidirectional = c.rel.bidirectional;
    x.rel_shape.num_buckets = c.rel.num_buckets;
    x.rel_shape.max_distance = c.rel.max_distance;
    x.rel_shape.fire_hidden = c.rel.fire_hidden;
    x.rel_shape.fire_grid = c.rel.fire_grid;
    x.rel = make_rel_params(c, x.rel_shape, rng);
  }
  if (c.per_batch_slopes && !x.sl.empty()) {
    // Row b: the per-head slopes times (1 + b/4), so that rows differ; NaN in the gaps, which
    // nothing may read.
    p.slopes_stride_b = c.H + 2;
    auto widen_b = [&](std::vector<float>& s) {
      if (s.empty()) return;
      std::vector<float> w(static_cast<size_t>((p.B - 1) * p.slopes_stride_b + c.H), NAN);
      for (int64_t b = 0; b < p.B; ++b)
        for (int64_t h = 0; h < c.H; ++h)
          w[static_cast<size_t>(b * p.slopes_stride_b + h)] =
              s[static_cast<size_t>(h)] * (1.0f + 0.25f * static_cast<float>(b));
      s = std::move(w);
    };
    widen_b(x.sl);
    widen_b(x.sr);
  }
  if (c.negative_slopes)
    for (std::vector<float>* s : {&x.sl, &x.sr})
      for (size_t n = 0; n < s->size(); ++n)
        if (n % 2 == 1 && std::isfinite((*s)[n])) (*s)[n] = -(*s)[n];
  if (c.ragged) {
    x.key_lengths.resize(static_cast<size_t>(p.B));
    std::uniform_int_distribution<int32_t> len(1, static_cast<int32_t>(p.Tk));
    for (auto& l : x.key_lengths) l = len(rng);
    x.key_lengths[0] = 0;
    if (p.B > 1) x.key_lengths[1] = static_cast<int32_t>(p.Tk);
    p.key_lengths = x.key_lengths.data();
  }
  if (!c.key_lengths.empty()) {
    x.key_lengths = c.key_lengths;
    p.key_lengths = x.key_lengths.data();
  }
  if (c.mask != MaskKind::kNone) {
    // Broadcast over B (stride 0), one mask per head.
    p.mask_kind = c.mask;
    p.mask_stride_b = 0;
    p.mask_stride_h = p.Tq * p.Tk;
    p.mask_stride_t = p.Tk;
    const size_t n = static_cast<size_t>(p.H * p.Tq * p.Tk);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    if (c.mask == MaskKind::kBool) {
      x.mask_b.resize(n);
      for (auto& m : x.mask_b) m = u(rng) < 0.7f;
      p.mask = x.mask_b.data();
    } else {
      x.mask_f.resize(n);
      for (auto& m : x.mask_f) m = u(rng) < 0.2f ? -inf : 2.0f * (u(rng) - 0.5f);
      p.mask = x.mask_f.data();
    }
  }
  return x;
}

// Length of the slopes and their gradients: (H), or (B, H) with batch stride slopes_stride_b.
inline int64_t slope_extent(const AttentionProblem& p) {
  return p.slopes_stride_b == 0 ? p.H : (p.B - 1) * p.slopes_stride_b + p.H;
}

// Float64 outputs of the reference on the instance's (float) inputs.
struct Golden {
  std::vector<double> out, lse, dq, dk, dv, dsl, dsr;
  std::vector<double> drel;  // the relative bias's parameter gradient
};

template <class T>
struct Typed {
  std::vector<T> q, k, v, sl, sr, dout, rel;
  RelativeBias<float> rel_shape;
  explicit Typed(const Instance& x)
      : q(x.q.begin(), x.q.end()),
        k(x.k.begin(), x.k.end()),
        v(x.v.begin(), x.v.end()),
        sl(x.sl.begin(), x.sl.end()),
        sr(x.sr.begin(), x.sr.end()),
        dout(x.dout.begin(), x.dout.end()),
        rel(x.rel.begin(), x.rel.end()),
        rel_shape(x.rel_shape) {}
  AttentionInputs<T> inputs() const {
    AttentionInputs<T> in{q.data(), k.data(), v.data(), nullptr, nullptr};
    if (!sl.empty()) {
      in.slopes_left = sl.data();
      in.slopes_right = sr.empty() ? nullptr : sr.data();
    }
    in.rel = {rel_shape.kind,          rel.empty() ? nullptr : rel.data(),
              rel_shape.num_buckets,   rel_shape.max_distance,
              rel_shape.bidirectional, rel_shape.fire_hidden,
              rel_shape.fire_grid};
    return in;
  }
};

// Runs the reference in scalar type T and returns its results widened to double. `flash`: the
// backward forms D_i = rowsum(dO∘O) from this run's own output (the fp32 flash baseline).
template <class T>
Golden run_reference(const Instance& x, bool flash = false) {
  const AttentionProblem& p = x.p;
  Typed<T> t(x);
  std::vector<T> out(static_cast<size_t>(x.out_size)),
      lse(static_cast<size_t>(detail::lse_elements(p))), dq(static_cast<size_t>(x.q_size)),
      dk(static_cast<size_t>(x.k_size)), dv(static_cast<size_t>(x.v_size)),
      dsl(static_cast<size_t>(slope_extent(p))), dsr(dsl.size()), drel(t.rel.size());
  attention_forward_reference<T>(p, t.inputs(), out.data(), lse.data());
  attention_backward_reference<T>(
      p, t.inputs(), t.dout.data(),
      {dq.data(), dk.data(), dv.data(), dsl.data(), dsr.data(), drel.data()},
      flash ? out.data() : nullptr);
  auto widen = [](const std::vector<T>& a) { return std::vector<double>(a.begin(), a.end()); };
  return {widen(out), widen(lse), widen(dq),  widen(dk),
          widen(dv),  widen(dsl), widen(dsr), widen(drel)};
}

// Runs the fused kernel with a given instruction set.
inline Golden run_kernel(const Instance& x, cpu::Isa isa) {
  const AttentionProblem& p = x.p;
  std::vector<float> out(static_cast<size_t>(x.out_size)),
      lse(static_cast<size_t>(detail::lse_elements(p))), dq(static_cast<size_t>(x.q_size)),
      dk(static_cast<size_t>(x.k_size)), dv(static_cast<size_t>(x.v_size)),
      dsl(static_cast<size_t>(slope_extent(p))), dsr(dsl.size()), drel(x.rel.size());
  validate_backward(p, x.inputs());
  cpu::forward(isa, p, x.inputs(), out.data(), lse.data());
  cpu::backward(isa, p, x.inputs(), out.data(), x.dout.data(), lse.data(),
                {dq.data(), dk.data(), dv.data(), dsl.data(), dsr.data(), drel.data()});
  auto widen = [](const std::vector<float>& a) { return std::vector<double>(a.begin(), a.end()); };
  return {widen(out), widen(lse), widen(dq),  widen(dk),
          widen(dv),  widen(dsl), widen(dsr), widen(drel)};
}

// Max |a − b| over elements both finite; counts elements where exactly one is non-finite or
// where they are infinities of different sign (reported through *mismatches).
inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b,
                           int64_t* mismatches) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const bool fa = std::isfinite(a[i]), fb = std::isfinite(b[i]);
    if (fa && fb) {
      m = std::max(m, std::abs(a[i] - b[i]));
    } else if (!(std::isinf(a[i]) && std::isinf(b[i]) && (a[i] > 0) == (b[i] > 0))) {
      ++*mismatches;
    }
  }
  return m;
}

inline double max_abs(const std::vector<double>& a) {
  double m = 0.0;
  for (double e : a)
    if (std::isfinite(e)) m = std::max(m, std::abs(e));
  return m;
}

}  // namespace slope::testing
