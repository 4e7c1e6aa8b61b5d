// Per-element rounding-error bounds of an fp32 evaluation of the attention problem (the model is
// stated in attention.h, beside attention_error_bounds). Everything here runs in float64 on the
// float32 inputs: exact values (to ~1e-16) and the first-order error terms that ride on them.
//
// Each bounded result is a sum (Sums): its error bound so far, its sum of |terms| and its exact
// value; the row's steps (ErrorModel) read like the model in attention.h.
#include <algorithm>
#include <cmath>
#include <vector>

#include "attention/dropout.h"
#include "attention/geometry.h"
#include "attention/scorer.h"
#include "slope/attention.h"

namespace slope {

namespace {

constexpr double kU = 0x1p-24;  // unit roundoff of fp32
// The absolute error an fp32 operation may add where its result underflows: the CPU kernels run
// with flush-to-zero (cpu_fp_env.h), so a result below 2⁻¹²⁶ may become 0 (Higham's model
// with underflow, fl(x op y) = (x op y)(1 + δ) + η, |η| ≤ kFlush). Each step below adds it
// once per operation that forms its result; it matters only for results near 10⁻³⁸.
constexpr double kFlush = 0x1p-126;
// Below this a probability may come out of an fp32 exp as 0 (slope's vexp flushes arguments
// under −87.3, where exp is 1.2e-38; fp32's smallest normal is 2⁻¹²⁶): such keys may be lost
// whole, as skipped ones are. 2⁻¹²⁰ leaves room for the error of the argument.
constexpr double kUnderflow = 0x1p-120;
// Slope-gradient terms are summed in fp32 over at most this many keys, then in double (slope's
// kernel: one key tile, kTileK in cpu_tiles.h; see attention.h).
constexpr int64_t kSlopeChunk = 64;
// Relative errors of the kernels' vectorised tanh and sech² (vtanh in cpu_vec.h), in units of u.
constexpr double kTanhUlps = 6.0, kSech2Ulps = 8.0;

// Slopes (and their gradients) hold (H), or (B, H) with batch stride slopes_stride_b.
int64_t slope_extent(const AttentionProblem& p) {
  return p.slopes_stride_b == 0 ? p.H : (p.B - 1) * p.slopes_stride_b + p.H;
}

// γ(n): the bound of an n-term fp32 sum relative to the sum of |terms| (see attention.h).
double gamma(int64_t n) {
  const double dn = static_cast<double>(n);
  return kU * std::min(dn, kErrorModelLambda * std::sqrt(dn));
}

// Elements spanned by a (B, H, T, D) tensor with strides s: offset of the last element + 1.
// Packed sequences: one batch of `total` rows (geometry.h).
int64_t extent(const AttentionProblem& p, const Strides& s, int64_t H, int64_t T, int64_t total,
               int64_t D) {
  if (detail::is_packed(p)) return std::max<int64_t>(0, (H - 1) * s.h + (total - 1) * s.t + D);
  return (p.B - 1) * s.b + (H - 1) * s.h + (T - 1) * s.t + D;
}

std::vector<double> widen(const float* x, int64_t n) {
  return x ? std::vector<double>(x, x + n) : std::vector<double>();
}

// One accumulated sum per element of a result: e, the first-order error bound so far; a, the
// sum of |terms| (what the final γ(n) multiplies); x, the exact value (for the final u·|x|).
struct Sums {
  std::vector<double> e, a, x;
  explicit Sums(int64_t n) : e(static_cast<size_t>(n)), a(e), x(e) {}
  void add(int64_t at, double exact, double bound, double abs_term) {
    const size_t i = static_cast<size_t>(at);
    x[i] += exact, e[i] += bound, a[i] += abs_term;
  }
  std::vector<double> finish(double g) {
    for (size_t n = 0; n < e.size(); ++n) e[n] += g * a[n] + kU * std::abs(x[n]);
    return std::move(e);
  }
};

// The model evaluated row by row (b, h, i): the row's exact softmax and score errors, then its
// forward bounds and its contributions to the backward's sums.
class ErrorModel {
 public:
  ErrorModel(const AttentionProblem& p, const AttentionInputs<float>& in, const float* dout)
      : p_(p),
        dout_(dout),
        G_(p.H / p.Hkv),
        scale_(p.effective_scale()),
        q_(widen(in.q, extent(p, p.q_strides, p.H, p.Tq, detail::total_q(p), p.D))),
        k_(widen(in.k, extent(p, p.k_strides, p.Hkv, p.Tk, detail::total_k(p), p.D))),
        v_(widen(in.v, extent(p, p.v_strides, p.Hkv, p.Tk, detail::total_k(p), p.Dv))),
        sl_(widen(in.slopes_left, slope_extent(p))),
        sr_(widen(in.slopes_right, slope_extent(p))),
        rel_(widen(in.rel.params, relative_bias_param_count(in.rel.kind, p.H, in.rel.num_buckets,
                                                            in.rel.fire_hidden))),
        in64_{q_.data(),
              k_.data(),
              v_.data(),
              sl_.empty() ? nullptr : sl_.data(),
              sr_.empty() ? nullptr : sr_.data(),
              {in.rel.kind, rel_.empty() ? nullptr : rel_.data(), in.rel.num_buckets,
               in.rel.max_distance, in.rel.bidirectional, in.rel.fire_hidden, in.rel.fire_grid}},
        scorer_{p, in64_},
        may_drop_((in.slopes_left || in.rel.kind == RelativeBiasKind::kKerpleLog ||
                   in.rel.kind == RelativeBiasKind::kKerplePower ||
                   in.rel.kind == RelativeBiasKind::kT5) &&
                  p.skip_tolerance > 0.0f && p.mask_kind != MaskKind::kAdditive),
        keep_scale_(detail::dropout_scale(p)),
        keep_err_(p.dropout_p != 0.0f ? 3.0 * kU : 0.0),
        g_row_(gamma(p.Tk)),
        s_(static_cast<size_t>(p.Tk)),
        P_(s_),
        ds_(s_),
        sech2_(s_),
        dsech2_(s_),
        rho_(s_),
        dP_(s_),
        a_dP_(s_),
        Zc_(s_.size(), 1.0),
        keep_(s_.size(), 1),
        vis_(s_.size()),
        out_(static_cast<size_t>(p.Dv)),
        e_out_(out_),
        dq_(dout ? q_.size() : 0),
        dk_(dout ? k_.size() : 0),
        dv_(dout ? v_.size() : 0),
        ds_sum_(static_cast<size_t>(2 * slope_extent(p))),
        ds_sum2_(ds_sum_),
        ds_x_(ds_sum_) {
    r_.out.assign(
        static_cast<size_t>(extent(p, p.out_strides, p.H, p.Tq, detail::total_q(p), p.Dv)), 0.0);
    r_.lse.assign(static_cast<size_t>(detail::lse_elements(p)), 0.0);
  }

  AttentionErrorBounds run() {
    for (int64_t b = 0; b < p_.B; ++b) {
      g_ = detail::row_geometry(p_, b);
      // A key skipping may drop has P ≤ 2·tol/Tk_b of its row's largest (the skip bound is
      // evaluated in fp32 with slack).
      drop_below_ = 2.0 * p_.skip_tolerance / static_cast<double>(std::max<int64_t>(1, g_.Tk));
      for (int64_t h = 0; h < p_.H; ++h)
        for (int64_t i = 0; i < g_.Tq; ++i) {
          if (!softmax_row(b, h, i)) continue;  // no visible key: exact zeros, bound 0
          forward_row(b, h, i);
          if (!dout_) continue;
          const double Di = backward_row(b, h, i);
          if (!sl_.empty()) slope_row(scorer_.slope_index(b, h), i, Di);
        }
    }
    if (dout_) finish_backward();
    return std::move(r_);
  }

 private:
  // Offsets of the current batch row's (g_) elements; b names the row for symmetry only.
  const double* q_row(int64_t /*b*/, int64_t h, int64_t i) const {
    return q_.data() + g_.q + h * p_.q_strides.h + i * p_.q_strides.t;
  }
  int64_t k_off(int64_t /*b*/, int64_t hk, int64_t j) const {
    return g_.k + hk * p_.k_strides.h + j * p_.k_strides.t;
  }
  int64_t v_off(int64_t /*b*/, int64_t hk, int64_t j) const {
    return g_.v + hk * p_.v_strides.h + j * p_.v_strides.t;
  }
  int64_t o_off(int64_t /*b*/, int64_t h, int64_t i) const {
    return g_.out + h * p_.out_strides.h + i * p_.out_strides.t;
  }

  // The exact softmax of row (b, h, i), the score errors δs_j (a droppable key, skipped or
  // underflowing: 1, its whole probability), E = Σ_j P_j·δs_j, and ρ_j, the relative error of
  // P_j (attention.h). False when the row sees no key.
  bool softmax_row(int64_t b, int64_t h, int64_t i) {
    const double mx = scorer_.row(g_, b, h, i, s_, vis_);
    if (mx == -INFINITY) return false;
    if (p_.dropout_p != 0.0f) {
      attention_dropout_mask_row(p_, b, h, i, keep_.data());
      for (int64_t j = 0; j < p_.Tk; ++j) Zc_[j] = keep_[j] ? keep_scale_ : 0.0;
    }
    double sum = 0.0;
    for (int64_t j = 0; j < p_.Tk; ++j)
      if (vis_[j]) sum += std::exp(s_[j] - mx);
    lse_ = mx + std::log(sum);
    double pmax = 0.0;
    for (int64_t j = 0; j < p_.Tk; ++j) {
      P_[j] = vis_[j] ? std::exp(s_[j] - lse_) : 0.0;
      pmax = std::max(pmax, P_[j]);
    }
    const double* qi = q_row(b, h, i);
    E_ = 0.0;
    for (int64_t j = 0; j < p_.Tk; ++j) {
      ds_[j] = 0.0;
      if (!vis_[j]) continue;
      const double* kj = k_.data() + k_off(b, h / G_, j);
      double abs_dot = 0.0, dot = 0.0, abs_k = 0.0;
      for (int64_t d = 0; d < p_.D; ++d) {
        abs_dot += std::abs(qi[d] * kj[d]);
        dot += qi[d] * kj[d];
        abs_k += std::abs(kj[d]);
      }
      // Underflow: the dot's D products and sums, the scale, the cap, the bias (2D + 4
      // operations), and the kernels' pre-scaled q (scale·q_d flushed, times k_d).
      ds_[j] = score_error(scale_ * dot, scale_ * abs_dot, j) +
               2.0 * kU * scorer_.abs_bias(g_, b, h, i, j) +
               (static_cast<double>(2 * p_.D + 4) + abs_k) * kFlush;
      if ((may_drop_ && P_[j] <= drop_below_ * pmax) || P_[j] < kUnderflow) ds_[j] += 1.0;
      E_ += P_[j] * ds_[j];
    }
    for (int64_t j = 0; j < p_.Tk; ++j)
      rho_[j] = vis_[j] ? (1.0 - 2.0 * P_[j]) * ds_[j] + E_ + g_row_ +
                              kU * (std::abs(lse_) + std::abs(s_[j] - lse_)) + 3.0 * kU
                        : 0.0;
    return true;
  }

  // The error of the score before its bias, x = scale·q·k (abs_x = scale·Σ|q·k|), capped or
  // not, and (softcap) the kernel's sech²(x/softcap) with its error, into sech2_[j], dsech2_[j].
  // Without softcap: γ(D+2)·abs_x (the dot, the scale, and the bias's addition relative to
  // |x|). With softcap c, y = x/c, t = tanh y, the kernel forms x̃ (γ(D+1)·abs_x), ỹ = x̃·fl(1/c)
  // (2u·|y|), t̃ = vtanh(ỹ) (kTanhUlps·u·|t|) and c·t̃ (u): by the mean value theorem
  //   |c·t̃ − c·t| ≤ σ·(γ(D+1)·abs_x + 2u·|x|) + (kTanhUlps + 1)·u·|c·t|,
  //   σ = max sech² over [|y| − δy, |y| + δy] = sech²(max(0, |y| − δy)), δy = (γ(D+1)·abs_x +
  //   2u·|x|)/c (not the first-order sech²(y): with large inputs δy is O(1) and sech² varies
  //   by orders of magnitude across it), and the bias's addition adds u·|c·t|. The kernel's
  //   sech²(ỹ) errs by kSech2Ulps·u·sech²(y) + max|d sech²/dy|·δy, |d sech²/dy| = 2|t|·sech² ≤
  //   min(0.77, 2·min(1, |y| + δy)·σ) (0.77 = 4/(3√3), its maximum), plus sech² itself where
  //   vtanh flushes it to 0 (|ỹ| > 43.6).
  double score_error(double x, double abs_x, int64_t j) {
    if (p_.softcap == 0.0f) return gamma(p_.D + 2) * abs_x;
    const double c = p_.softcap, y = std::abs(x) / c;
    const double dx = gamma(p_.D + 1) * abs_x + 2.0 * kU * std::abs(x), dy = dx / c;
    const double t = std::tanh(y), sech2 = 1.0 / (std::cosh(y) * std::cosh(y));
    const double sigma =
        1.0 / (std::cosh(std::max(0.0, y - dy)) * std::cosh(std::max(0.0, y - dy)));
    sech2_[j] = sech2;
    dsech2_[j] = kSech2Ulps * kU * sech2 + std::min(0.77, 2.0 * std::min(1.0, y + dy) * sigma) * dy;
    if (y + dy > 43.0) dsech2_[j] += sigma;
    return sigma * dx + (kTanhUlps + 2.0) * kU * c * t;
  }

  // out_id = Σ_j P_ij·w_jd and lse_i: their bounds. w_jd = Zc_j·v_jd, the value as dropout
  // leaves it (v_jd without dropout): relative errors r_j of P_j move out by
  // Σ_j P_j·r_j·(w_jd − out_d) (the normaliser sums every P_j, kept or not), and a kept term's
  // factor 1/(1 − p) adds keep_err_ (3u) of its own.
  void forward_row(int64_t b, int64_t h, int64_t i) {
    const int64_t hk = h / G_;
    for (int64_t d = 0; d < p_.Dv; ++d) {
      double x = 0.0;
      for (int64_t j = 0; j < p_.Tk; ++j)
        if (vis_[j]) x += P_[j] * Zc_[j] * v_[static_cast<size_t>(v_off(b, hk, j) + d)];
      out_[d] = x;
    }
    for (int64_t d = 0; d < p_.Dv; ++d) {
      double e = 0.0, a = 0.0;
      for (int64_t j = 0; j < p_.Tk; ++j) {
        if (!vis_[j]) continue;
        const double wjd = Zc_[j] * v_[static_cast<size_t>(v_off(b, hk, j) + d)];
        e += P_[j] * (rho_[j] * std::abs(wjd - out_[d]) + keep_err_ * std::abs(wjd));
        a += P_[j] * std::abs(wjd);
      }
      // Underflow: per key a product and a sum, per key tile a rescaling (≤ Tk of them), the
      // final division, and dropout's factor.
      e_out_[d] = e + g_row_ * (a + std::abs(out_[d])) + kU * std::abs(out_[d]) +
                  static_cast<double>(3 * p_.Tk + 2) * kFlush;
      r_.out[static_cast<size_t>(o_off(b, h, i) + d)] = e_out_[d];
    }
    r_.lse[static_cast<size_t>(g_.lse + h * g_.lse_h + i)] =
        E_ + g_row_ + kU * std::abs(lse_) + 2.0 * kU;
  }

  // The row's terms of dq, dk and dv. dP_ij = Zc_ij·(dO_i·v_j) errs by
  // Zc_ij·γ(Dv)·Σ_d|dO_id·v_jd| (+ keep_err_·|dP_ij| for its factor 1/(1 − p));
  // D_i = dO_i·out_i, from the fp32 output, by its own sum plus Σ_d|dO_id|·e_out_d;
  // dS_ij = P_ij·(dP_ij − D_i). Returns D_i.
  double backward_row(int64_t b, int64_t h, int64_t i) {
    const int64_t hk = h / G_, q_off = q_row(b, h, i) - q_.data();
    const float* dO = dout_ + o_off(b, h, i);
    double Di = 0.0, e_Di = 0.0;
    for (int64_t d = 0; d < p_.Dv; ++d) {
      Di += dO[d] * out_[d];
      e_Di += gamma(p_.Dv) * std::abs(dO[d] * out_[d]) + std::abs(dO[d]) * e_out_[d] + 2.0 * kFlush;
    }
    for (int64_t j = 0; j < p_.Tk; ++j) {
      dP_[j] = a_dP_[j] = 0.0;
      if (!vis_[j]) continue;
      const double* vj = v_.data() + v_off(b, hk, j);
      for (int64_t d = 0; d < p_.Dv; ++d) {
        dP_[j] += dO[d] * vj[d];
        a_dP_[j] += std::abs(dO[d] * vj[d]);
      }
      dP_[j] *= Zc_[j];
      a_dP_[j] = Zc_[j] * gamma(p_.Dv) * a_dP_[j] + keep_err_ * std::abs(dP_[j]) +
                 static_cast<double>(2 * p_.Dv + 1) * kFlush;
    }
    const double* qi = q_row(b, h, i);
    for (int64_t j = 0; j < p_.Tk; ++j) {
      if (!vis_[j]) continue;
      const double* kj = k_.data() + k_off(b, hk, j);
      const double dS = P_[j] * (dP_[j] - Di);
      const double e_dS = P_[j] * ((rho_[j] + kU) * std::abs(dP_[j] - Di) + a_dP_[j] + e_Di) +
                          kU * std::abs(dS) + 2.0 * kFlush;  // the subtraction, the product
      // Through the softcap: dx = dS·sech², its error from both factors and the product's u.
      const bool cap = p_.softcap != 0.0f;
      const double dx = cap ? dS * sech2_[j] : dS;
      const double e_dx =
          cap ? sech2_[j] * e_dS + std::abs(dS) * dsech2_[j] + kU * std::abs(dx) + kFlush : e_dS;
      // Underflow in each term: dq's product and sum, then the final scale (the kernel scales
      // the sum: 2·|scale| + 1); dk's product, sum and scale, and the kernel's pre-scaled q
      // (scale·q_d flushed, times dS); dv's product, dropout's factor, sum. The slope
      // gradient's dS·d_ij flushes before its distance multiplies it (2·d_ij), and the row's
      // E = Σ P·dP term by term before the mean distance does (d̄) — slope_row.
      for (int64_t d = 0; d < p_.D; ++d) {
        dq_.add(q_off + d, scale_ * dx * kj[d],
                scale_ * e_dx * std::abs(kj[d]) + (2.0 * std::abs(scale_) + 1.0) * kFlush,
                scale_ * std::abs(dx * kj[d]));
        dk_.add(k_off(b, hk, j) + d, scale_ * dx * qi[d],
                scale_ * e_dx * std::abs(qi[d]) + (3.0 + std::abs(dx)) * kFlush,
                scale_ * std::abs(dx * qi[d]));
      }
      const double pz = P_[j] * Zc_[j];  // dv's terms carry the dropout factor too
      for (int64_t d = 0; d < p_.Dv; ++d)
        dv_.add(v_off(b, hk, j) + d, pz * dO[d],
                pz * (rho_[j] + keep_err_) * std::abs(dO[d]) + 3.0 * kFlush, pz * std::abs(dO[d]));
    }
    return Di;
  }

  // Slope gradients, per side: R_i = −Σ_j dS_ij·d_ij with d_ij = |p_i − j| for the keys of that
  // side (all keys for one shared vector), 0 for the others. The model is that of a softmax
  // backward whose D_i is consistent with its P (D_i = Σ_j P_ij·dP_ij, as autograd's softmax
  // backward and slope's corrected kernel form it; see SlopeRowSums in cpu_slope_grads.h). Then P
  // renormalised after relative errors r_j moves R_i by
  //   Σ_j P_ij·(r_j − r̄)·(dP_ij − D_i)·(d_ij − d̄_i),  d̄_i = Σ_j P_ij·d_ij,
  // so errors common to the row (lse, the row sum) cancel and distances count from the row's
  // mean; a dP error a_j moves it by Σ_j P_ij·a_j·(d_ij − d̄_i); the rounding of D_i (an fp32
  // row sum) by γ(Tk)·(Σ_j P_ij·|dP_ij| + |D_i|)·d̄_i; each term dS_ij·d_ij enters an fp32
  // partial sum of at most kSlopeChunk keys (then double) with relative error γ(kSlopeChunk).
  // These are B·Tq·Tk independent, zero-mean errors, each bounded: their sum is bounded by
  // λ·√(Σ bound²) (Hoeffding; fails with probability ≤ 2·exp(−λ²/2)), or by Σ bound, whichever
  // is smaller (finish_backward).
  void slope_row(int64_t slope_at, int64_t i, double Di) {
    const int64_t pos = i + g_.offset;
    const bool two_sides = sr_.size() > 0;
    for (int side = 0; side < (two_sides ? 2 : 1); ++side) {
      auto dist = [&](int64_t j) {
        if (j == pos || (two_sides && (side == 0) != (j < pos))) return 0.0;
        return static_cast<double>(j < pos ? pos - j : j - pos);
      };
      double d_mean = 0.0, abs_dP = 0.0;
      for (int64_t j = 0; j < p_.Tk; ++j) {
        d_mean += P_[j] * dist(j);
        abs_dP += P_[j] * std::abs(dP_[j]);
      }
      const size_t at = static_cast<size_t>(2 * slope_at + side);
      auto add = [&](double bound) {
        ds_sum_[at] += bound;
        ds_sum2_[at] += bound * bound;
      };
      add(g_row_ * (abs_dP + std::abs(Di)) * d_mean);
      double x = 0.0;
      for (int64_t j = 0; j < p_.Tk; ++j) {
        if (!vis_[j]) continue;
        const double dS = P_[j] * (dP_[j] - Di), dj = dist(j);
        const double rj = ds_[j] + E_ + 3.0 * kU;  // |r_j − r̄| ≤ δs_j + Σ_k P_k·δs_k + 3u
        x -= dS * dj;
        add(P_[j] * (rj * std::abs(dP_[j] - Di) + a_dP_[j]) * std::abs(dj - d_mean));
        add(gamma(kSlopeChunk) * std::abs(dS) * dj + (2.0 * dj + d_mean + 3.0) * kFlush);
      }
      add(kU * std::abs(x));  // the row's final division by its Σ_j P_ij
      ds_x_[at] += x;
    }
  }

  void finish_backward() {
    r_.dq = dq_.finish(gamma(p_.Tk + 1));
    r_.dk = dk_.finish(gamma(G_ * p_.Tq + 1));
    r_.dv = dv_.finish(gamma(G_ * p_.Tq));
    r_.dslopes_left.resize(static_cast<size_t>(slope_extent(p_)));
    r_.dslopes_right.resize(static_cast<size_t>(slope_extent(p_)));
    auto total = [&](size_t at) {
      return std::min(ds_sum_[at], kErrorModelLambda * std::sqrt(ds_sum2_[at])) +
             kU * std::abs(ds_x_[at]);
    };
    for (int64_t n = 0; n < slope_extent(p_); ++n) {  // gaps of a (B, H) layout: 0
      r_.dslopes_left[static_cast<size_t>(n)] = total(static_cast<size_t>(2 * n));
      r_.dslopes_right[static_cast<size_t>(n)] = total(static_cast<size_t>(2 * n + 1));
    }
  }

  const AttentionProblem& p_;
  const float* dout_;  // (B, H, Tq, Dv), out_strides; null: forward only
  const int64_t G_;    // query heads per kv head
  const double scale_;
  const std::vector<double> q_, k_, v_, sl_, sr_;  // the inputs, widened (their strides)
  const std::vector<double> rel_;                  // the relative bias's parameters, widened
  const AttentionInputs<double> in64_;
  const detail::Scorer<double> scorer_;
  const bool may_drop_;      // far-tile skipping may drop keys
  double drop_below_ = 0.0;  // ... of probability ≤ this × the row's largest (current row)
  detail::RowGeometry g_{};  // the current batch row
  const double keep_scale_;  // 1/(1 − dropout_p)
  const double keep_err_;    // 3u with dropout (the fp32 factor 1/(1 − p), its product), else 0
  const double g_row_;       // γ(Tk)
  // The current row: scores, probabilities, δs, sech² of the softcap and its error, ρ, dP,
  // γ(Dv)·Σ|dO·v|, visibility (Tk); output and its bounds (Dv); lse and E = Σ_j P_j·δs_j.
  std::vector<double> s_, P_, ds_, sech2_, dsech2_, rho_, dP_, a_dP_;
  std::vector<double> Zc_;     // (Tk) the row's dropout factors Z_j/(1 − p); 1 without dropout
  std::vector<uint8_t> keep_;  // (Tk) the row's keep mask
  std::vector<char> vis_;
  std::vector<double> out_, e_out_;
  double lse_ = -INFINITY, E_ = 0.0;
  Sums dq_, dk_, dv_;
  std::vector<double> ds_sum_, ds_sum2_, ds_x_;  // per (slope, side): Σ bound, Σ bound², value
  AttentionErrorBounds r_;
};

}  // namespace

AttentionErrorBounds attention_error_bounds(const AttentionProblem& p,
                                            const AttentionInputs<float>& in, const float* dout) {
  validate(p, in);
  return ErrorModel(p, in, dout).run();
}

}  // namespace slope
