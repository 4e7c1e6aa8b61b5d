// The learned relative biases of attention.h: parameter layout, names, starting values, the
// domain projection, the kernels' per-call tables and the chain rule from the kernels'
// per-distance (or per-grid-point) gradients to the family parameters.
#include "attention/relative_bias.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <string>

namespace slope {

int64_t relative_bias_param_count(RelativeBiasKind kind, int64_t H, int64_t num_buckets,
                                  int64_t fire_hidden) {
  switch (kind) {
    case RelativeBiasKind::kKerpleLog:
    case RelativeBiasKind::kKerplePower:
      return 2 * H;
    case RelativeBiasKind::kT5:
      return num_buckets * H;
    case RelativeBiasKind::kFire:
      return (2 + H) * fire_hidden + H + 2;
    default:
      return 0;
  }
}

const char* relative_bias_name(RelativeBiasKind kind) {
  switch (kind) {
    case RelativeBiasKind::kKerpleLog:
      return "kerple-log";
    case RelativeBiasKind::kKerplePower:
      return "kerple-power";
    case RelativeBiasKind::kT5:
      return "t5";
    case RelativeBiasKind::kFire:
      return "fire";
    default:
      return "none";
  }
}

RelativeBiasKind relative_bias_kind(const std::string& name) {
  for (RelativeBiasKind k :
       {RelativeBiasKind::kNone, RelativeBiasKind::kKerpleLog, RelativeBiasKind::kKerplePower,
        RelativeBiasKind::kT5, RelativeBiasKind::kFire})
    if (name == relative_bias_name(k)) return k;
  throw Error("relative bias '" + name +
              "' is unknown; use kerple-log, kerple-power, t5, fire or none");
}

std::vector<float> relative_bias_init(const RelativeBias<float>& shape, int64_t H, double fire_L,
                                      uint64_t seed) {
  const int64_t n = relative_bias_param_count(shape.kind, H, shape.num_buckets, shape.fire_hidden);
  std::vector<float> p(static_cast<size_t>(n), 0.0f);
  const std::vector<float> m = alibi_slopes(H);
  switch (shape.kind) {
    case RelativeBiasKind::kKerpleLog:
      for (int64_t h = 0; h < H; ++h) p[h] = 1.0f, p[H + h] = m[h];
      break;
    case RelativeBiasKind::kKerplePower:
      for (int64_t h = 0; h < H; ++h) p[h] = m[h], p[H + h] = 1.0f;
      break;
    case RelativeBiasKind::kFire: {
      std::mt19937_64 rng(seed);
      const int64_t K = shape.fire_hidden;
      std::uniform_real_distribution<float> first(-1.0f, 1.0f);  // fan_in 1
      const float bound2 = 1.0f / std::sqrt(static_cast<float>(K));
      std::uniform_real_distribution<float> second(-bound2, bound2);
      for (int64_t k = 0; k < 2 * K; ++k) p[k] = first(rng);                 // w1, b1
      for (int64_t k = 2 * K; k < (2 + H) * K + H; ++k) p[k] = second(rng);  // w2, b2
      p[(2 + H) * K + H] = 1.0f;                                             // c
      p[(2 + H) * K + H + 1] = static_cast<float>(fire_L);                   // L
      break;
    }
    default:
      break;
  }
  return p;
}

template <class T>
int64_t relative_bias_clamp(const RelativeBias<float>& shape, int64_t H, T* params) {
  int64_t moved = 0;
  auto clamp = [&](T& x, T lo, T hi) {
    const T y = std::clamp(x, lo, hi);
    if (y != x) ++moved, x = y;
  };
  switch (shape.kind) {
    case RelativeBiasKind::kKerpleLog:
      for (int64_t h = 0; h < H; ++h) clamp(params[H + h], T(0), T(INFINITY));
      break;
    case RelativeBiasKind::kKerplePower:
      for (int64_t h = 0; h < H; ++h) clamp(params[H + h], T(1e-2f), T(2));
      break;
    case RelativeBiasKind::kFire: {
      const int64_t at = (2 + H) * shape.fire_hidden + H;
      clamp(params[at], T(1e-3f), T(INFINITY));
      clamp(params[at + 1], T(1), T(INFINITY));
      break;
    }
    default:
      break;
  }
  return moved;
}

template int64_t relative_bias_clamp<float>(const RelativeBias<float>&, int64_t, float*);
template int64_t relative_bias_clamp<double>(const RelativeBias<float>&, int64_t, double*);

namespace detail {

RelTables build_rel_tables(const AttentionProblem& p, const RelativeBias<float>& rb, int64_t pad) {
  RelTables t;
  t.kind = rb.kind;
  if (!t.on()) return t;
  t.H = p.H;
  t.O = p.Tq + p.Tk + pad;
  t.W = 2 * t.O + 1;
  const RelParams<float> P{rb, p.H};
  const int64_t H = p.H, O = t.O, W = t.W;
  if (t.distance_table()) {
    t.fwd.resize(static_cast<size_t>(H * W));
    t.rev.resize(t.fwd.size());
    t.max_left.resize(static_cast<size_t>(H * (O + 1)));
    t.max_right.resize(t.max_left.size());
    // bias_h(jd) for jd = j − pos: value(h, pos = 0, j = jd) for jd ≥ 0, (pos = −jd, j = 0)
    // below (the families depend on jd alone).
    for (int64_t h = 0; h < H; ++h)
      for (int64_t jd = -O; jd <= O; ++jd) {
        const float b = jd >= 0 ? static_cast<float>(P.value(h, 0, jd))
                                : static_cast<float>(P.value(h, -jd, 0));
        t.fwd[static_cast<size_t>(h * W + O + jd)] = b;
        t.rev[static_cast<size_t>(h * W + O - jd)] = b;
      }
    if (rb.kind != RelativeBiasKind::kT5) {
      t.w_r1.resize(t.fwd.size());
      t.w_r2.resize(t.fwd.size());
      for (int64_t h = 0; h < H; ++h)
        for (int64_t jd = -O; jd <= O; ++jd) {
          double g[2] = {0.0, 0.0};  // ∂bias/∂r1, ∂bias/∂r2 (relative_bias.h, add_grad)
          const double d = static_cast<double>(jd < 0 ? -jd : jd);
          const double r1 = P.r1(h), r2 = P.r2(h);
          if (rb.kind == RelativeBiasKind::kKerpleLog) {
            g[0] = -std::log1p(r2 * d);
            g[1] = -r1 * d / (1.0 + r2 * d);
          } else if (d > 0.0) {
            g[0] = -std::pow(d, r2);
            g[1] = -r1 * std::pow(d, r2) * std::log(d);
          }
          t.w_r1[static_cast<size_t>(h * W + O + jd)] = static_cast<float>(g[0]);
          t.w_r2[static_cast<size_t>(h * W + O + jd)] = static_cast<float>(g[1]);
        }
    }
    for (int64_t h = 0; h < H; ++h) {
      float ml = -INFINITY, mr = -INFINITY;
      for (int64_t d = O; d >= 0; --d) {
        ml = std::max(ml, t.fwd[static_cast<size_t>(h * W + O - d)]);
        mr = std::max(mr, t.fwd[static_cast<size_t>(h * W + O + d)]);
        t.max_left[static_cast<size_t>(h * (O + 1) + d)] = ml;
        t.max_right[static_cast<size_t>(h * (O + 1) + d)] = mr;
      }
    }
    return t;
  }
  // FIRE.
  const double c = P.c(), L = P.L();
  t.c = c, t.L = L;
  t.psi_fwd.resize(static_cast<size_t>(W));
  t.psi_rev.resize(t.psi_fwd.size());
  t.psic.resize(static_cast<size_t>(O + 1));
  for (int64_t d = 0; d <= O; ++d) {
    const float v = static_cast<float>(std::log1p(c * static_cast<double>(d)));
    t.psi_fwd[static_cast<size_t>(O + d)] = t.psi_fwd[static_cast<size_t>(O - d)] = v;
    t.psi_rev[static_cast<size_t>(O + d)] = t.psi_rev[static_cast<size_t>(O - d)] = v;
    t.psic[static_cast<size_t>(d)] = static_cast<double>(d) / (c * static_cast<double>(d) + 1.0);
  }
  // Positions: pos = i + offset ∈ [−Tq, Tk + pad] (offset ≥ −Tq, queries padded to vectors).
  t.P0 = p.Tq + pad;
  const int64_t npos = p.Tq + p.Tk + 2 * pad + 1;
  t.rinv.resize(static_cast<size_t>(npos));
  t.psi_m.resize(t.rinv.size());
  t.psic_m.resize(t.rinv.size());
  t.m_is_L.resize(t.rinv.size());
  for (int64_t k = 0; k < npos; ++k) {
    const double pos = static_cast<double>(k - t.P0);
    const bool is_L = L > pos;
    const double m = is_L ? L : pos;
    const double pm = std::log1p(c * m);
    t.rinv[static_cast<size_t>(k)] = static_cast<float>(1.0 / pm);
    t.psi_m[static_cast<size_t>(k)] = pm;
    t.psic_m[static_cast<size_t>(k)] = m / (c * m + 1.0);
    t.m_is_L[static_cast<size_t>(k)] = is_L;
  }
  t.N = rb.fire_grid;
  t.F.resize(static_cast<size_t>(H * (t.N + 1)));
  t.dF.resize(static_cast<size_t>(H * (t.N + 1)));  // the last entry of each head unused (0)
  std::vector<double> Fd(static_cast<size_t>(t.N + 1));
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t n = 0; n <= t.N; ++n) {  // f_h(u_n) in double from the float parameters
      const double u = static_cast<double>(n) / static_cast<double>(t.N);
      double f = P.b2(h);
      for (int64_t k = 0; k < rb.fire_hidden; ++k) {
        const double pre = static_cast<double>(P.w1(k)) * u + P.b1(k);
        if (pre > 0.0) f += static_cast<double>(P.w2(h, k)) * pre;
      }
      Fd[static_cast<size_t>(n)] = f;
    }
    for (int64_t n = 0; n <= t.N; ++n) {
      t.F[static_cast<size_t>(h * (t.N + 1) + n)] = static_cast<float>(Fd[static_cast<size_t>(n)]);
      t.dF[static_cast<size_t>(h * (t.N + 1) + n)] =
          n < t.N ? static_cast<float>(Fd[static_cast<size_t>(n + 1)] - Fd[static_cast<size_t>(n)])
                  : 0.0f;
    }
  }
  return t;
}

void rel_param_grads(const RelTables& t, const RelativeBias<float>& rb,
                     const std::vector<double>& hist, const std::vector<double>& dF, double dc,
                     double dL, float* drel) {
  const int64_t H = t.H, O = t.O, W = t.W;
  const RelParams<float> P{rb, H};
  const int64_t n_params = relative_bias_param_count(rb.kind, H, rb.num_buckets, rb.fire_hidden);
  std::vector<double> g(static_cast<size_t>(n_params), 0.0);
  switch (rb.kind) {
    case RelativeBiasKind::kKerpleLog:
    case RelativeBiasKind::kKerplePower:
    case RelativeBiasKind::kT5:
      // Σ_jd hist_h(jd)·∂bias_h(jd)/∂θ: add_grad at one representative (pos, j) per distance.
      for (int64_t h = 0; h < H; ++h)
        for (int64_t jd = -O; jd <= O; ++jd) {
          const double s = hist[static_cast<size_t>(h * W + O + jd)];
          if (s == 0.0) continue;
          if (jd >= 0)
            P.add_grad(h, 0, jd, s, g.data());
          else
            P.add_grad(h, -jd, 0, s, g.data());
        }
      break;
    case RelativeBiasKind::kFire: {
      const int64_t K = rb.fire_hidden, N = t.N;
      // The rows normalised by ψ(L) (hist, by distance) into the grid and c, L, with the
      // kernel's own float roundings of u (cpu_rel_bias.h, fire_bias).
      std::vector<double> dFt(static_cast<size_t>(H * (N + 1)), 0.0);
      if (!dF.empty()) dFt = dF;
      const double c = t.c, L = t.L, pL = std::log1p(c * L), pcL = L / (c * L + 1.0);
      const float rinv_L = static_cast<float>(1.0 / pL);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t jd = -O; jd <= O; ++jd) {
          const double s = hist[static_cast<size_t>(h * W + O + jd)];
          if (s == 0.0) continue;
          const float psi = t.psi_fwd[static_cast<size_t>(O + jd)];
          const float raw = psi * rinv_L;
          const float x = (raw < 1.0f ? raw : 1.0f) * static_cast<float>(N);
          int64_t n = static_cast<int64_t>(x);
          if (n > N - 1) n = N - 1;
          const double tt = x - static_cast<float>(n);
          dFt[static_cast<size_t>(h * (N + 1) + n)] += s * (1.0 - tt);
          dFt[static_cast<size_t>(h * (N + 1) + n + 1)] += s * tt;
          if (raw > 1.0f) continue;  // clamped: u does not move with c or L
          const double slope = static_cast<double>(N) * t.dF[static_cast<size_t>(h * (N + 1) + n)];
          const double d = static_cast<double>(jd < 0 ? -jd : jd);
          const double pd = std::log1p(c * d), pcd = d / (c * d + 1.0);
          dc += s * slope * (pcd / pL - pd * pcL / (pL * pL));
          dL -= s * slope * pd * (c / (c * L + 1.0)) / (pL * pL);
        }
      for (int64_t m = 0; m <= N; ++m) {
        const double u = static_cast<double>(m) / static_cast<double>(N);
        for (int64_t h = 0; h < H; ++h) {
          const double s = dFt[static_cast<size_t>(h * (N + 1) + m)];
          if (s == 0.0) continue;
          g[static_cast<size_t>(P.i_b2(h))] += s;
          for (int64_t k = 0; k < K; ++k) {
            const double pre = static_cast<double>(P.w1(k)) * u + P.b1(k);
            if (!(pre > 0.0)) continue;
            g[static_cast<size_t>(P.i_w2(h, k))] += s * pre;
            g[static_cast<size_t>(P.i_w1(k))] += s * P.w2(h, k) * u;
            g[static_cast<size_t>(P.i_b1(k))] += s * P.w2(h, k);
          }
        }
      }
      g[static_cast<size_t>(P.i_c())] = dc;
      g[static_cast<size_t>(P.i_L())] = dL;
      break;
    }
    default:
      break;
  }
  for (int64_t k = 0; k < n_params; ++k) drel[k] = static_cast<float>(g[static_cast<size_t>(k)]);
}

}  // namespace detail
}  // namespace slope
