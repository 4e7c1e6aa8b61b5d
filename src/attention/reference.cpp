// Float64 reference of the attention problem: naive, row by row, straight from the definition in
// attention.h. Templated on the scalar so tests run it in double for golden outputs and in
// complex<double> for complex-step gradients. Slow on purpose; every fast path is tested against
// it. Dropout: a kept probability is multiplied by 1/(1 − p), a dropped one by 0, where it meets
// v or dO; the mask is attention_dropout_mask_row's.
#include <cmath>
#include <complex>
#include <type_traits>
#include <vector>

#include "attention/dropout.h"
#include "attention/geometry.h"
#include "attention/scorer.h"
#include "slope/attention.h"

namespace slope {

template <class T>
void attention_forward_reference(const AttentionProblem& p, const AttentionInputs<T>& in, T* out,
                                 T* lse) {
  validate(p, in);
  const detail::Scorer<T> sc{p, in};
  std::vector<T> s(p.Tk);
  std::vector<char> vis(p.Tk);
  std::vector<uint8_t> keep(p.Tk, 1);
  const T scale_kept = T(detail::dropout_scale(p));
  for (int64_t b = 0; b < p.B; ++b) {
    const detail::RowGeometry g = detail::row_geometry(p, b);
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t i = 0; i < g.Tq; ++i) {
        const int64_t hk = h / (p.H / p.Hkv);
        if (p.dropout_p != 0.0f) attention_dropout_mask_row(p, b, h, i, keep.data());
        T* o = out + g.out + h * p.out_strides.h + i * p.out_strides.t;
        T& l = lse[g.lse + h * g.lse_h + i];
        for (int64_t d = 0; d < p.Dv; ++d) o[d] = 0;
        const double mx = sc.row(g, b, h, i, s, vis);
        if (mx == -INFINITY) {
          l = -INFINITY;
          continue;
        }
        T sum = 0;
        for (int64_t j = 0; j < p.Tk; ++j)
          if (vis[j]) sum += std::exp(s[j] - mx);
        l = mx + std::log(sum);
        for (int64_t j = 0; j < p.Tk; ++j) {
          if (!vis[j] || !keep[j]) continue;
          const T pj = std::exp(s[j] - l) * scale_kept;
          const T* v = in.v + g.v + hk * p.v_strides.h + j * p.v_strides.t;
          for (int64_t d = 0; d < p.Dv; ++d) o[d] += pj * v[d];
        }
      }
  }
}

template <class T>
void attention_backward_reference(const AttentionProblem& p, const AttentionInputs<T>& in,
                                  const T* dout, const AttentionGrads<T>& g, const T* out) {
  validate(p, in);
  const detail::Scorer<T> sc{p, in};
  const double scale = p.effective_scale();
  // Zero every gradient first (backward overwrites).
  for (int64_t b = 0; b < p.B; ++b) {
    const detail::RowGeometry rg = detail::row_geometry(p, b);
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t i = 0; i < rg.Tq; ++i)
        for (int64_t d = 0; d < p.D; ++d)
          g.dq[rg.q + h * p.q_strides.h + i * p.q_strides.t + d] = 0;
    for (int64_t h = 0; h < p.Hkv; ++h)
      for (int64_t j = 0; j < rg.Tk_rows; ++j) {
        for (int64_t d = 0; d < p.D; ++d)
          g.dk[rg.k + h * p.k_strides.h + j * p.k_strides.t + d] = 0;
        for (int64_t d = 0; d < p.Dv; ++d)
          g.dv[rg.v + h * p.v_strides.h + j * p.v_strides.t + d] = 0;
      }
  }
  const bool shared = !in.slopes_right;
  // Slope-gradient terms are summed in double (complex<double> for T = complex), as slope's
  // kernel sums them: in float the naive sum over B·Tq·Tk terms would be the baseline's error.
  // Indexed like the slopes: (H), or (B, H) with batch stride slopes_stride_b.
  using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
  const int64_t n_slopes = p.slopes_stride_b == 0 ? p.H : (p.B - 1) * p.slopes_stride_b + p.H;
  std::vector<Acc> dsl_acc(static_cast<size_t>(n_slopes), Acc(0)), dsr_acc(dsl_acc);
  // The relative bias's parameter gradient (its flat layout), summed in Acc likewise.
  const detail::RelParams<T> rel{in.rel, p.H};
  const bool has_rel = in.rel.kind != RelativeBiasKind::kNone;
  std::vector<Acc> drel_acc(static_cast<size_t>(relative_bias_param_count(
                                in.rel.kind, p.H, in.rel.num_buckets, in.rel.fire_hidden)),
                            Acc(0));
  std::vector<T> s(p.Tk), P(p.Tk), dP(p.Tk), sech2(p.Tk),
      Zc(p.Tk);  // Zc: Z_ij/(1 − p), the keep factor
  std::vector<char> vis(p.Tk);
  std::vector<uint8_t> keep(p.Tk, 1);
  const T scale_kept = T(detail::dropout_scale(p));
  for (int64_t b = 0; b < p.B; ++b) {
    const detail::RowGeometry rg = detail::row_geometry(p, b);
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t i = 0; i < rg.Tq; ++i) {
        const int64_t hk = h / (p.H / p.Hkv);
        if (p.dropout_p != 0.0f) attention_dropout_mask_row(p, b, h, i, keep.data());
        for (int64_t j = 0; j < p.Tk; ++j) Zc[j] = keep[j] ? scale_kept : T(0);
        const int64_t pos = i + rg.offset;
        const double mx = sc.row(rg, b, h, i, s, vis, &sech2);
        if (mx == -INFINITY) continue;  // fully masked row: no gradient
        T sum = 0;
        for (int64_t j = 0; j < p.Tk; ++j)
          if (vis[j]) sum += std::exp(s[j] - mx);
        const T lse = mx + std::log(sum);
        const T* q = in.q + rg.q + h * p.q_strides.h + i * p.q_strides.t;
        const T* dO = dout + rg.out + h * p.out_strides.h + i * p.out_strides.t;
        // out_i = Σ_j P_ij·Zc_ij·v_j, so dL/dP_ij = dP_ij = Zc_ij·(dO_i·v_j) and the softmax
        // backward gives dS_ij = P_ij·(dP_ij − D_i), D_i = Σ_j P_ij·dP_ij. The flash form
        // D_i = dO_i·out_i is the same sum with dropout too: dO_i·out_i = Σ_j P_ij·Zc_ij·dO_i·v_j.
        T Di = 0;
        for (int64_t j = 0; j < p.Tk; ++j) {
          P[j] = 0;
          dP[j] = 0;
          if (!vis[j]) continue;
          P[j] = std::exp(s[j] - lse);
          const T* v = in.v + rg.v + hk * p.v_strides.h + j * p.v_strides.t;
          for (int64_t d = 0; d < p.Dv; ++d) dP[j] += dO[d] * v[d];
          dP[j] *= Zc[j];
          Di += P[j] * dP[j];
        }
        if (out) {  // the flash formulation: D_i from the forward output
          const T* o = out + rg.out + h * p.out_strides.h + i * p.out_strides.t;
          Di = 0;
          for (int64_t d = 0; d < p.Dv; ++d) Di += dO[d] * o[d];
        }
        T* dq = g.dq + rg.q + h * p.q_strides.h + i * p.q_strides.t;
        for (int64_t j = 0; j < p.Tk; ++j) {
          if (!vis[j]) continue;
          const T dS = P[j] * (dP[j] - Di);  // ∂L/∂s: what the bias (after the cap) gets
          const T dx = dS * sech2[j];        // ∂L/∂(scale·q·k), through the softcap
          const T* k = in.k + rg.k + hk * p.k_strides.h + j * p.k_strides.t;
          T* dk = g.dk + rg.k + hk * p.k_strides.h + j * p.k_strides.t;
          T* dv = g.dv + rg.v + hk * p.v_strides.h + j * p.v_strides.t;
          for (int64_t d = 0; d < p.D; ++d) {
            dq[d] += dx * scale * k[d];
            dk[d] += dx * scale * q[d];
          }
          for (int64_t d = 0; d < p.Dv; ++d) dv[d] += P[j] * Zc[j] * dO[d];
          if (in.slopes_left && j != pos) {
            const bool left = j < pos;
            const double dist = static_cast<double>(left ? pos - j : j - pos);
            std::vector<Acc>& dm = (left || shared) ? dsl_acc : dsr_acc;
            dm[static_cast<size_t>(sc.slope_index(b, h))] -= Acc(dS) * dist;
          }
          if (has_rel) rel.add_grad(h, pos, j, Acc(dS), drel_acc.data());
        }
      }
  }
  for (int64_t b = 0; b < (p.slopes_stride_b == 0 ? 1 : p.B); ++b)
    for (int64_t h = 0; h < p.H; ++h) {
      const int64_t at = sc.slope_index(b, h);
      const size_t i = static_cast<size_t>(at);
      if (g.dslopes_left) g.dslopes_left[at] = static_cast<T>(dsl_acc[i]);
      if (g.dslopes_right && !shared) g.dslopes_right[at] = static_cast<T>(dsr_acc[i]);
    }
  if (has_rel && g.drel)
    for (size_t k = 0; k < drel_acc.size(); ++k) g.drel[k] = static_cast<T>(drel_acc[k]);
}

template void attention_forward_reference<float>(const AttentionProblem&,
                                                 const AttentionInputs<float>&, float*, float*);
template void attention_backward_reference<float>(const AttentionProblem&,
                                                  const AttentionInputs<float>&, const float*,
                                                  const AttentionGrads<float>&, const float*);
template void attention_forward_reference<double>(const AttentionProblem&,
                                                  const AttentionInputs<double>&, double*, double*);
template void attention_backward_reference<double>(const AttentionProblem&,
                                                   const AttentionInputs<double>&, const double*,
                                                   const AttentionGrads<double>&, const double*);
using cd = std::complex<double>;
template void attention_forward_reference<cd>(const AttentionProblem&, const AttentionInputs<cd>&,
                                              cd*, cd*);
template void attention_backward_reference<cd>(const AttentionProblem&, const AttentionInputs<cd>&,
                                               const cd*, const AttentionGrads<cd>&, const cd*);

}  // namespace slope
