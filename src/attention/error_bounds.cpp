// Per-element rounding-error bounds of an fp32 evaluation of the attention problem (the model is
// stated in attention.h, beside attention_error_bounds). Everything here runs in float64 on the
// float32 inputs: exact values (to ~1e-16) and the first-order error terms that ride on them.
//
// Legend: e_* is an absolute error bound being accumulated, a_* a sum of absolute terms (what
// γ(n) multiplies), x_* an exact value (for the final u·|result| rounding).
#include <cmath>
#include <vector>

#include "attention/scorer.h"
#include "slope/attention.h"

namespace slope {

namespace {

constexpr double kU = 0x1p-24;  // unit roundoff of fp32
// Below this a probability may come out of an fp32 exp as 0 (slope's vexp flushes arguments
// under −87.3, where exp is 1.2e-38; fp32's smallest normal is 2⁻¹²⁶): such keys may be lost
// whole, as skipped ones are. 2⁻¹²⁰ leaves room for the error of the argument.
constexpr double kUnderflow = 0x1p-120;
// Slope-gradient terms are summed in fp32 over at most this many keys, then in double (slope's
// kernel: one key tile, kTileK in cpu_tiles.h; see attention.h).
constexpr int64_t kSlopeChunk = 64;

// γ(n): the bound of an n-term fp32 sum relative to the sum of |terms| (see attention.h).
double gamma(int64_t n) {
  const double dn = static_cast<double>(n);
  return kU * std::min(dn, kErrorModelLambda * std::sqrt(dn));
}

// Elements spanned by a (B, H, T, D) tensor with strides s: offset of the last element + 1.
int64_t extent(const Strides& s, int64_t B, int64_t H, int64_t T, int64_t D) {
  return (B - 1) * s.b + (H - 1) * s.h + (T - 1) * s.t + D;
}

std::vector<double> widen(const float* x, int64_t n) {
  return x ? std::vector<double>(x, x + n) : std::vector<double>();
}

// Exact float64 values of one row (b, h, i): scores, probabilities, output, and the score
// errors δs_ij of the model (with droppable keys counted as errors of 1).
struct Row {
  std::vector<double> s, P, ds, out;
  std::vector<char> vis;
  double lse = -INFINITY;
  double E = 0.0;  // Σ_j P_ij·δs_ij
};

}  // namespace

AttentionErrorBounds attention_error_bounds(const AttentionProblem& p,
                                            const AttentionInputs<float>& in, const float* dout) {
  validate(p, in);
  const int64_t nq = extent(p.q_strides, p.B, p.H, p.Tq, p.D),
                nk = extent(p.k_strides, p.B, p.Hkv, p.Tk, p.D),
                nv = extent(p.v_strides, p.B, p.Hkv, p.Tk, p.Dv),
                no = extent(p.out_strides, p.B, p.H, p.Tq, p.Dv);
  const std::vector<double> q = widen(in.q, nq), k = widen(in.k, nk), v = widen(in.v, nv),
                            sl = widen(in.slopes_left, p.alibi ? p.H : 0),
                            sr = widen(in.slopes_right, p.alibi ? p.H : 0);
  AttentionInputs<double> d_in{q.data(), k.data(), v.data(), sl.empty() ? nullptr : sl.data(),
                               sr.empty() ? nullptr : sr.data()};
  const detail::Scorer<double> sc{p, d_in};
  const double scale = p.effective_scale();
  const int64_t G = p.H / p.Hkv;
  // Far-tile skipping may drop keys of probability ≤ tol/Tk of the row's largest (the bound is
  // evaluated in fp32 with slack, hence the factor 2).
  const bool may_drop = p.alibi && p.skip_tolerance > 0.0f && p.mask_kind != MaskKind::kAdditive;
  const double drop_below = 2.0 * p.skip_tolerance / static_cast<double>(p.Tk);

  AttentionErrorBounds r;
  r.out.assign(static_cast<size_t>(no), 0.0);
  r.lse.assign(static_cast<size_t>(p.B * p.H * p.Tq), 0.0);
  const bool backward = dout != nullptr;
  std::vector<double> e_dq, a_dq, x_dq, e_dk, a_dk, x_dk, e_dv, a_dv, x_dv;
  // Slope gradients per (head, side): Σ bound, Σ bound², exact value.
  std::vector<double> e_ds(static_cast<size_t>(2 * p.H), 0.0), e2_ds(e_ds.size(), 0.0),
      x_ds(e_ds.size(), 0.0);
  if (backward) {
    for (auto* t : {&e_dq, &a_dq, &x_dq}) t->assign(static_cast<size_t>(nq), 0.0);
    for (auto* t : {&e_dk, &a_dk, &x_dk}) t->assign(static_cast<size_t>(nk), 0.0);
    for (auto* t : {&e_dv, &a_dv, &x_dv}) t->assign(static_cast<size_t>(nv), 0.0);
  }

  Row w;
  w.s.resize(static_cast<size_t>(p.Tk));
  w.vis.resize(static_cast<size_t>(p.Tk));
  w.P.resize(static_cast<size_t>(p.Tk));
  w.ds.resize(static_cast<size_t>(p.Tk));
  w.out.resize(static_cast<size_t>(p.Dv));
  std::vector<double> rho(static_cast<size_t>(p.Tk)), e_out(static_cast<size_t>(p.Dv));
  std::vector<double> dP(static_cast<size_t>(p.Tk)), a_dP(static_cast<size_t>(p.Tk));
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t i = 0; i < p.Tq; ++i) {
        const int64_t hk = h / G, pos = i + p.query_offset();
        const double* qi = q.data() + b * p.q_strides.b + h * p.q_strides.h + i * p.q_strides.t;
        auto k_row = [&](int64_t j) {
          return k.data() + b * p.k_strides.b + hk * p.k_strides.h + j * p.k_strides.t;
        };
        auto v_row = [&](int64_t j) {
          return v.data() + b * p.v_strides.b + hk * p.v_strides.h + j * p.v_strides.t;
        };
        const double mx = sc.row(b, h, i, w.s, w.vis);
        if (mx == -INFINITY) continue;  // no visible key: exact zeros, bound 0
        // Exact softmax of the row.
        double sum = 0.0;
        for (int64_t j = 0; j < p.Tk; ++j)
          if (w.vis[j]) sum += std::exp(w.s[j] - mx);
        w.lse = mx + std::log(sum);
        double pmax = 0.0;
        for (int64_t j = 0; j < p.Tk; ++j) {
          w.P[j] = w.vis[j] ? std::exp(w.s[j] - w.lse) : 0.0;
          pmax = std::max(pmax, w.P[j]);
        }
        // Score errors δs_ij (a droppable key, skipped or underflowing: 1, its whole probability).
        w.E = 0.0;
        for (int64_t j = 0; j < p.Tk; ++j) {
          w.ds[j] = 0.0;
          if (!w.vis[j]) continue;
          const double* kj = k_row(j);
          double abs_dot = 0.0;
          for (int64_t d = 0; d < p.D; ++d) abs_dot += std::abs(qi[d] * kj[d]);
          w.ds[j] = gamma(p.D + 2) * scale * abs_dot + 2.0 * kU * sc.abs_bias(b, h, i, j);
          if ((may_drop && w.P[j] <= drop_below * pmax) || w.P[j] < kUnderflow) w.ds[j] += 1.0;
          w.E += w.P[j] * w.ds[j];
        }
        // ρ_ij: relative error of P_ij (attention.h).
        const double g_row = gamma(p.Tk);
        for (int64_t j = 0; j < p.Tk; ++j)
          rho[j] = w.vis[j] ? (1.0 - 2.0 * w.P[j]) * w.ds[j] + w.E + g_row +
                                  kU * (std::abs(w.lse) + std::abs(w.s[j] - w.lse)) + 3.0 * kU
                            : 0.0;
        // Forward: out_id = Σ_j P_ij·v_jd, lse_i.
        const int64_t o_off = b * p.out_strides.b + h * p.out_strides.h + i * p.out_strides.t;
        for (int64_t d = 0; d < p.Dv; ++d) {
          double x = 0.0;
          for (int64_t j = 0; j < p.Tk; ++j)
            if (w.vis[j]) x += w.P[j] * v_row(j)[d];
          w.out[d] = x;
        }
        for (int64_t d = 0; d < p.Dv; ++d) {
          double e = 0.0, a = 0.0;
          for (int64_t j = 0; j < p.Tk; ++j) {
            if (!w.vis[j]) continue;
            const double vjd = v_row(j)[d];
            e += w.P[j] * rho[j] * std::abs(vjd - w.out[d]);
            a += w.P[j] * std::abs(vjd);
          }
          e_out[d] = e + g_row * (a + std::abs(w.out[d])) + kU * std::abs(w.out[d]);
          r.out[static_cast<size_t>(o_off + d)] = e_out[d];
        }
        r.lse[static_cast<size_t>((b * p.H + h) * p.Tq + i)] =
            w.E + g_row + kU * std::abs(w.lse) + 2.0 * kU;
        if (!backward) continue;

        // Backward. dP_ij = dO_i·v_j errs by γ(Dv)·Σ_d|dO_id·v_jd|; D_i = dO_i·out_i, from the
        // fp32 output, by its own sum plus Σ_d|dO_id|·e_out_d; dS_ij = P_ij·(dP_ij − D_i).
        const float* dO32 = dout + o_off;
        double Di = 0.0, e_Di = 0.0;
        for (int64_t d = 0; d < p.Dv; ++d) {
          Di += dO32[d] * w.out[d];
          e_Di += gamma(p.Dv) * std::abs(dO32[d] * w.out[d]) + std::abs(dO32[d]) * e_out[d];
        }
        for (int64_t j = 0; j < p.Tk; ++j) {
          dP[j] = a_dP[j] = 0.0;
          if (!w.vis[j]) continue;
          const double* vj = v_row(j);
          for (int64_t d = 0; d < p.Dv; ++d) {
            dP[j] += dO32[d] * vj[d];
            a_dP[j] += std::abs(dO32[d] * vj[d]);
          }
          a_dP[j] *= gamma(p.Dv);
        }
        const int64_t q_off = b * p.q_strides.b + h * p.q_strides.h + i * p.q_strides.t;
        for (int64_t j = 0; j < p.Tk; ++j) {
          if (!w.vis[j]) continue;
          const double* kj = k_row(j);
          const double dS = w.P[j] * (dP[j] - Di);
          const double e_dS =
              w.P[j] * ((rho[j] + kU) * std::abs(dP[j] - Di) + a_dP[j] + e_Di) + kU * std::abs(dS);
          const int64_t k_off = b * p.k_strides.b + hk * p.k_strides.h + j * p.k_strides.t;
          const int64_t v_off = b * p.v_strides.b + hk * p.v_strides.h + j * p.v_strides.t;
          for (int64_t d = 0; d < p.D; ++d) {
            const size_t iq = static_cast<size_t>(q_off + d), ik = static_cast<size_t>(k_off + d);
            x_dq[iq] += scale * dS * kj[d];
            e_dq[iq] += scale * e_dS * std::abs(kj[d]);
            a_dq[iq] += scale * std::abs(dS * kj[d]);
            x_dk[ik] += scale * dS * qi[d];
            e_dk[ik] += scale * e_dS * std::abs(qi[d]);
            a_dk[ik] += scale * std::abs(dS * qi[d]);
          }
          for (int64_t d = 0; d < p.Dv; ++d) {
            const size_t iv = static_cast<size_t>(v_off + d);
            x_dv[iv] += w.P[j] * dO32[d];
            e_dv[iv] += w.P[j] * rho[j] * std::abs(dO32[d]);
            a_dv[iv] += w.P[j] * std::abs(dO32[d]);
          }
        }
        if (!p.alibi) continue;
        // Slope gradients, per side: R_i = −Σ_j dS_ij·d_ij with d_ij = |p_i − j| for the keys
        // of that side (all keys for one shared vector), 0 for the others. The model is that
        // of a softmax backward whose D_i is consistent with its P (D_i = Σ_j P_ij·dP_ij, as
        // autograd's softmax backward and slope's corrected kernel form it; see SlopeRowSums in
        // cpu_kernels.cpp). Then P renormalised after relative errors r_j moves R_i by
        //   Σ_j P_ij·(r_j − r̄)·(dP_ij − D_i)·(d_ij − d̄_i),  d̄_i = Σ_j P_ij·d_ij,
        // so errors common to the row (lse, the row sum) cancel and distances count from the
        // row's mean; a dP error a_j moves it by Σ_j P_ij·a_j·(d_ij − d̄_i); the rounding of
        // D_i (an fp32 row sum) by γ(Tk)·(Σ_j P_ij·|dP_ij| + |D_i|)·d̄_i; each term dS_ij·d_ij
        // enters an fp32 partial sum of at most kSlopeChunk keys (then double) with relative
        // error γ(kSlopeChunk). These are B·Tq·Tk independent, zero-mean errors, each bounded:
        // their sum is bounded by λ·√(Σ bound²) (Hoeffding; fails with probability
        // ≤ 2·exp(−λ²/2)), or by Σ bound, whichever is smaller.
        const bool two_sides = in.slopes_right != nullptr;
        for (int side = 0; side < (two_sides ? 2 : 1); ++side) {
          auto dist = [&](int64_t j) {
            if (j == pos || (two_sides && (side == 0) != (j < pos))) return 0.0;
            return static_cast<double>(j < pos ? pos - j : j - pos);
          };
          double d_mean = 0.0, abs_dP = 0.0;
          for (int64_t j = 0; j < p.Tk; ++j) {
            d_mean += w.P[j] * dist(j);
            abs_dP += w.P[j] * std::abs(dP[j]);
          }
          const size_t at = static_cast<size_t>(2 * h + side);
          auto add = [&](double bound) {
            e_ds[at] += bound;
            e2_ds[at] += bound * bound;
          };
          add(g_row * (abs_dP + std::abs(Di)) * d_mean);
          double x = 0.0;
          for (int64_t j = 0; j < p.Tk; ++j) {
            if (!w.vis[j]) continue;
            const double dS = w.P[j] * (dP[j] - Di), dj = dist(j);
            const double rj = w.ds[j] + w.E + 3.0 * kU;  // |r_j − r̄| ≤ δs_j + Σ_k P_k·δs_k + 3u
            x -= dS * dj;
            add(w.P[j] * (rj * std::abs(dP[j] - Di) + a_dP[j]) * std::abs(dj - d_mean));
            add(gamma(kSlopeChunk) * std::abs(dS) * dj);
          }
          add(kU * std::abs(x));  // the row's final division by its Σ_j P_ij
          x_ds[at] += x;
        }
      }

  if (backward) {
    auto finish = [](std::vector<double>& e, const std::vector<double>& a,
                     const std::vector<double>& x, double g) {
      for (size_t n = 0; n < e.size(); ++n) e[n] += g * a[n] + kU * std::abs(x[n]);
      return std::move(e);
    };
    r.dq = finish(e_dq, a_dq, x_dq, gamma(p.Tk + 1));
    r.dk = finish(e_dk, a_dk, x_dk, gamma(G * p.Tq + 1));
    r.dv = finish(e_dv, a_dv, x_dv, gamma(G * p.Tq));
    r.dslopes_left.resize(static_cast<size_t>(p.H));
    r.dslopes_right.resize(static_cast<size_t>(p.H));
    for (int64_t h = 0; h < p.H; ++h) {
      const size_t l = static_cast<size_t>(2 * h), rt = l + 1;
      auto total = [&](size_t at) {
        return std::min(e_ds[at], kErrorModelLambda * std::sqrt(e2_ds[at])) +
               kU * std::abs(x_ds[at]);
      };
      r.dslopes_left[static_cast<size_t>(h)] = total(l);
      r.dslopes_right[static_cast<size_t>(h)] = total(rt);
    }
  }
  return r;
}

}  // namespace slope
