// Internal: the definition of the learned relative biases of attention.h (Kerple, T5, FIRE) —
// the one place that evaluates them, in any scalar type (double for the reference and the
// kernels' tables, complex<double> for complex-step gradients) — and the tables the kernels
// read (relative_bias.cpp builds them once per call; the chain rule from the kernels'
// per-distance gradients to the family parameters is there too).
#pragma once

#include <cmath>
#include <complex>
#include <cstdint>
#include <vector>

#include "slope/attention.h"

namespace slope::detail {

inline double rb_re(double x) { return x; }
inline double rb_re(const std::complex<double>& x) { return x.real(); }

// T5's bucket of relative position rp = j − p_i (Hugging Face's _relative_position_bucket,
// the log in float64).
inline int64_t t5_bucket(int64_t rp, int64_t num_buckets, int64_t max_distance,
                         bool bidirectional) {
  int64_t ret = 0, n;
  int64_t nb = num_buckets;
  if (bidirectional) {
    nb /= 2;
    if (rp > 0) ret += nb;
    n = rp < 0 ? -rp : rp;
  } else {
    n = rp < 0 ? -rp : 0;
  }
  const int64_t max_exact = nb / 2;
  if (n < max_exact) return ret + n;
  const double scaled = std::log(static_cast<double>(n) / static_cast<double>(max_exact)) /
                        std::log(static_cast<double>(max_distance) / max_exact) *
                        static_cast<double>(nb - max_exact);
  const int64_t large = max_exact + static_cast<int64_t>(scaled);
  return ret + (large < nb - 1 ? large : nb - 1);
}

// Views of the flat parameter block (attention.h's layout).
template <class T>
struct RelParams {
  const RelativeBias<T>& rb;
  int64_t H;
  const T& r1(int64_t h) const { return rb.params[h]; }
  const T& r2(int64_t h) const { return rb.params[H + h]; }
  const T& table(int64_t bucket, int64_t h) const { return rb.params[bucket * H + h]; }
  const T& w1(int64_t k) const { return rb.params[k]; }
  const T& b1(int64_t k) const { return rb.params[rb.fire_hidden + k]; }
  const T& w2(int64_t h, int64_t k) const {
    return rb.params[2 * rb.fire_hidden + h * rb.fire_hidden + k];
  }
  const T& b2(int64_t h) const { return rb.params[(2 + H) * rb.fire_hidden + h]; }
  const T& c() const { return rb.params[(2 + H) * rb.fire_hidden + H]; }
  const T& L() const { return rb.params[(2 + H) * rb.fire_hidden + H + 1]; }
  // Flat indices of the FIRE parameters (for gradients).
  int64_t i_w1(int64_t k) const { return k; }
  int64_t i_b1(int64_t k) const { return rb.fire_hidden + k; }
  int64_t i_w2(int64_t h, int64_t k) const { return 2 * rb.fire_hidden + h * rb.fire_hidden + k; }
  int64_t i_b2(int64_t h) const { return (2 + H) * rb.fire_hidden + h; }
  int64_t i_c() const { return (2 + H) * rb.fire_hidden + H; }
  int64_t i_L() const { return i_c() + 1; }

  // FIRE's MLP f_h at u.
  T fire_f(int64_t h, const T& u) const {
    T f = b2(h);
    for (int64_t k = 0; k < rb.fire_hidden; ++k) {
      const T pre = w1(k) * u + b1(k);
      if (rb_re(pre) > 0.0) f += w2(h, k) * pre;
    }
    return f;
  }
  // ψ(x) = log(c·x + 1).
  T psi(double x) const { return std::log(c() * x + 1.0); }
  // FIRE's normalised distance before the clamp: ψ(d)/ψ(max(L, pos)) (max(L, pos) is L when
  // L > pos, else pos).
  T fire_u_raw(int64_t pos, int64_t j) const {
    const double d = static_cast<double>(pos > j ? pos - j : j - pos);
    const T m = rb_re(L()) > static_cast<double>(pos) ? L() : T(static_cast<double>(pos));
    return psi(d) / std::log(c() * m + 1.0);
  }
  // The grid cell n and fraction t of u ∈ [0, 1].
  void fire_cell(const T& u, int64_t* n, T* t) const {
    const int64_t N = rb.fire_grid;
    const T x = u * static_cast<double>(N);
    int64_t c0 = static_cast<int64_t>(std::floor(rb_re(x)));
    if (c0 > N - 1) c0 = N - 1;
    if (c0 < 0) c0 = 0;
    *n = c0;
    *t = x - static_cast<double>(c0);
  }

  // bias_h(p_i = pos, j): the definition of attention.h.
  T value(int64_t h, int64_t pos, int64_t j) const {
    const int64_t d = pos > j ? pos - j : j - pos;
    switch (rb.kind) {
      case RelativeBiasKind::kKerpleLog:
        return -r1(h) * std::log(1.0 + r2(h) * static_cast<double>(d));
      case RelativeBiasKind::kKerplePower:
        return d == 0 ? T(0) : -r1(h) * std::exp(r2(h) * std::log(static_cast<double>(d)));
      case RelativeBiasKind::kT5:
        return table(t5_bucket(j - pos, rb.num_buckets, rb.max_distance, rb.bidirectional), h);
      case RelativeBiasKind::kFire: {
        T u = fire_u_raw(pos, j);
        if (rb_re(u) > 1.0) u = T(1.0);
        int64_t n;
        T t;
        fire_cell(u, &n, &t);
        const double N = static_cast<double>(rb.fire_grid);
        const T f0 = fire_f(h, T(n / N)), f1 = fire_f(h, T((n + 1) / N));
        return f0 + t * (f1 - f0);
      }
      default:
        return T(0);
    }
  }

  // Adds dS·∂bias_h(pos, j)/∂θ to grad (the flat layout), θ every parameter: the reference's
  // backward, straight from value() by the chain rule.
  template <class Acc>
  void add_grad(int64_t h, int64_t pos, int64_t j, const Acc& dS, Acc* grad) const {
    const int64_t d = pos > j ? pos - j : j - pos;
    const double dd = static_cast<double>(d);
    switch (rb.kind) {
      case RelativeBiasKind::kKerpleLog:
        grad[h] -= dS * Acc(std::log(1.0 + r2(h) * dd));
        grad[H + h] -= dS * Acc(r1(h) * dd / (1.0 + r2(h) * dd));
        return;
      case RelativeBiasKind::kKerplePower:
        if (d == 0) return;
        grad[h] -= dS * Acc(std::exp(r2(h) * std::log(dd)));
        grad[H + h] -= dS * Acc(r1(h) * std::exp(r2(h) * std::log(dd)) * std::log(dd));
        return;
      case RelativeBiasKind::kT5:
        grad[t5_bucket(j - pos, rb.num_buckets, rb.max_distance, rb.bidirectional) * H + h] += dS;
        return;
      case RelativeBiasKind::kFire: {
        const T u_raw = fire_u_raw(pos, j);
        const bool clamped = rb_re(u_raw) > 1.0;
        const T u = clamped ? T(1.0) : u_raw;
        int64_t n;
        T t;
        fire_cell(u, &n, &t);
        const double N = static_cast<double>(rb.fire_grid);
        // bias = (1 − t)·F_n + t·F_{n+1}; F_m = b2_h + Σ_k w2_hk·relu(w1_k·u_m + b1_k).
        for (int side = 0; side < 2; ++side) {
          const double um = (n + side) / N;
          const Acc wt = side == 0 ? Acc(1.0 - t) : Acc(t);
          const Acc g = dS * wt;
          grad[i_b2(h)] += g;
          for (int64_t k = 0; k < rb.fire_hidden; ++k) {
            const T pre = w1(k) * um + b1(k);
            if (!(rb_re(pre) > 0.0)) continue;
            grad[i_w2(h, k)] += g * Acc(pre);
            grad[i_w1(k)] += g * Acc(w2(h, k) * um);
            grad[i_b1(k)] += g * Acc(w2(h, k));
          }
        }
        if (clamped) return;
        // ∂bias/∂u = N·(F_{n+1} − F_n); u = ψ(d)/ψ(m), m = max(L, pos).
        const T slope = N * (fire_f(h, T((n + 1) / N)) - fire_f(h, T(n / N)));
        const bool m_is_L = rb_re(L()) > static_cast<double>(pos);
        const T m = m_is_L ? L() : T(static_cast<double>(pos));
        const T psi_d = psi(dd), psi_m = std::log(c() * m + 1.0);
        const T psic_d = dd / (c() * dd + 1.0), psic_m = m / (c() * m + 1.0);
        grad[i_c()] += dS * Acc(slope * (psic_d / psi_m - psi_d * psic_m / (psi_m * psi_m)));
        if (m_is_L)
          grad[i_L()] -= dS * Acc(slope * psi_d * (c() / (c() * m + 1.0)) / (psi_m * psi_m));
        return;
      }
      default:
        return;
    }
  }
};

// ---- The kernels' tables (relative_bias.cpp), built once per call from the float
// parameters, every entry evaluated in double and rounded once to float --------------------

struct RelTables {
  RelativeBiasKind kind = RelativeBiasKind::kNone;
  int64_t H = 0;
  int64_t O = 0;  // index offset: entry jd (or −jd) of a head's table sits at O + jd
  int64_t W = 0;  // entries per head: 2·O + 1
  // Kerple and T5: bias_h(jd) at fwd[h·W + O + jd] and at rev[h·W + O − jd] (the second runs
  // along −jd, for tiles whose vectors run along queries).
  std::vector<float> fwd, rev;
  // Kerple's gradient weights ∂bias_h/∂r1 and ∂bias_h/∂r2 by jd, at w_r1[h·W + O + jd] and
  // w_r2 (the backward's per-row sums, cpu_rel_grads.h).
  std::vector<float> w_r1, w_r2;
  // Far-tile skipping: the largest bias at distance ≥ d on each side, max_left[h·(Dm + 1) + d]
  // (keys left of the query, jd = −d) and max_right (jd = +d), d ≤ Dm = O.
  std::vector<float> max_left, max_right;
  // FIRE: ψ(|jd|) at psi_fwd[O + jd] and psi_rev[O − jd]; 1/ψ(max(L, pos)) at
  // rinv[pos + P0]; the grid F_n (H, N + 1) and its differences dF_n = F_{n+1} − F_n (H, N).
  std::vector<float> psi_fwd, psi_rev, rinv, F, dF;
  int64_t P0 = 0, N = 0;
  // FIRE's gradient also needs ψ_c(d) = ∂ψ/∂c = d/(c·d + 1) by distance, and per position
  // ψ(m), ψ_c(m) and whether m = L (doubles, read once per row).
  std::vector<double> psic;           // (O + 1) by d
  std::vector<double> psi_m, psic_m;  // by pos + P0
  std::vector<char> m_is_L;           // by pos + P0
  double c = 0.0, L = 0.0;

  bool on() const { return kind != RelativeBiasKind::kNone; }
  bool distance_table() const {
    return kind == RelativeBiasKind::kKerpleLog || kind == RelativeBiasKind::kKerplePower ||
           kind == RelativeBiasKind::kT5;
  }
};

// The tables of problem p (Tq, Tk: the kernels' extents), with `pad` spare entries on each side
// for vector lanes past the tile's real rows or columns.
RelTables build_rel_tables(const AttentionProblem& p, const RelativeBias<float>& rb, int64_t pad);

// The kernels' gradient sums, reduced over the batch: for Kerple and T5, hist (H, W): Σ dS over
// the scores of head h at signed distance jd (at h·W + O + jd); for FIRE, dF (H, N + 1):
// Σ dS·∂bias/∂F_n, and dc, dL: Σ dS·∂bias/∂c and ∂/∂L. Writes the flat gradient drel (the
// chain rule, O((Tq + Tk)·H) or O(N·hidden·H) work, in double).
void rel_param_grads(const RelTables& t, const RelativeBias<float>& rb,
                     const std::vector<double>& hist, const std::vector<double>& dF, double dc,
                     double dL, float* drel);

}  // namespace slope::detail
