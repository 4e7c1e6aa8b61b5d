// The attention problem: its one validation function and the default ALiBi slopes.
#include <algorithm>
#include <array>
#include <cfloat>
#include <cmath>
#include <complex>
#include <cstdio>
#include <string>
#include <utility>

#include "attention/geometry.h"
#include "attention/scorer.h"  // detail::re
#include "slope/attention.h"

namespace slope {

float AttentionProblem::effective_scale() const {
  return std::isnan(scale) ? 1.0f / std::sqrt(static_cast<float>(D)) : scale;
}

namespace {

// Raises Error("WHO: what"): WHO is "attention", or the nn layer that built the problem.
struct Checker {
  const char* who;

  [[noreturn]] void fail(const std::string& what) const {
    throw Error(std::string(who) + ": " + what);
  }

  void strides(const char* name, const Strides& s, int64_t inner) const {
    if (s.b < 0 || s.h < 0 || s.t < 0)
      fail(std::string(name) + " has a negative stride; pass a tensor with non-negative strides");
    if (s.t < inner)
      fail(std::string(name) + " time stride " + std::to_string(s.t) +
           " is smaller than its head dim " + std::to_string(inner) + "; rows would overlap");
  }

  template <class T>
  void relative_bias(const AttentionProblem& p, const AttentionInputs<T>& in) const;
  void disjoint(const char* name, const Strides& s, int64_t B, int64_t H, int64_t T, int64_t D,
                const char* why) const;
  void cu_seqlens(const char* name, const int32_t* cu, int64_t B, int64_t T_max,
                  const char* T_name) const;
  void packed(const AttentionProblem& p) const;
  void query_positions(const AttentionProblem& p) const;

  // `py` is the argument's name in Python, `field` in C++ (AttentionInputs): messages name both.
  // Slopes are (H), or (B, H) with batch stride stride_b: any finite real (a negative one makes
  // far keys heavier) whose bias −m·distance stays a float32 at every distance (< Tq + Tk), or
  // +inf to mask that side; NaN and −inf mean nothing.
  template <class T>
  void slopes(const char* py, const char* field, const T* s, int64_t B, int64_t H, int64_t stride_b,
              int64_t max_distance) const {
    for (int64_t b = 0; b < (stride_b == 0 ? 1 : B); ++b)
      for (int64_t h = 0; h < H; ++h) {
        const int64_t at = b * stride_b + h;
        const double m = detail::re(s[at]);
        const bool overflows =
            std::isfinite(m) && std::abs(m) * static_cast<double>(max_distance) > FLT_MAX;
        if (!(std::isnan(m) || m == -INFINITY || overflows)) continue;
        const std::string index =
            stride_b == 0 ? std::to_string(h) : std::to_string(b) + ", " + std::to_string(h);
        std::string what(py);
        what.append("[").append(index).append("] (").append(field);
        char value[32];
        std::snprintf(value, sizeof value, "%.9g", m);
        what.append("[").append(std::to_string(at)).append("]) = ").append(value);
        if (overflows)
          fail(what + " makes the bias -slope*distance overflow float32 at distances up to " +
               std::to_string(max_distance) +
               " (Tq + Tk); |slope| must stay below 3.4e38 / (Tq + Tk), or be +inf to mask "
               "that side");
        fail(what +
             " is NaN or -inf; slopes must be finite (either sign), or +inf to mask that "
             "side");
      }
  }
};

// The learned relative bias (attention.h): a known kind, no ALiBi slopes beside it, its
// parameters given, finite and in the family's domain, and a bias that stays a float32 at every
// distance < Tq + Tk.
template <class T>
void Checker::relative_bias(const AttentionProblem& p, const AttentionInputs<T>& in) const {
  const RelativeBias<T>& rb = in.rel;
  const int kind = static_cast<int>(rb.kind);
  if (kind < 0 || kind > static_cast<int>(RelativeBiasKind::kFire))
    fail("relative bias kind = " + std::to_string(kind) +
         " is not a RelativeBiasKind (kNone, kKerpleLog, kKerplePower, kT5, kFire)");
  if (rb.kind == RelativeBiasKind::kNone) return;
  const std::string name = std::string("relative bias ") + relative_bias_name(rb.kind);
  if (in.slopes_left)
    fail(name + " is given together with ALiBi slopes; pass one position bias, not both");
  if (!rb.params) fail(name + ": its parameters are null");
  const int64_t nb = rb.num_buckets, max_distance = rb.max_distance;
  if (rb.kind == RelativeBiasKind::kT5 &&
      (nb < (rb.bidirectional ? 4 : 2) || max_distance <= (rb.bidirectional ? nb / 2 : nb) / 2))
    fail(name + ": num_buckets = " + std::to_string(rb.num_buckets) +
         " and max_distance = " + std::to_string(rb.max_distance) +
         " are out of range; need num_buckets >= 4 (bidirectional) or >= 2 (causal) and "
         "max_distance > the exact buckets (num_buckets/4 bidirectional, num_buckets/2 causal)");
  const int64_t hidden = rb.fire_hidden, grid = rb.fire_grid;
  if (rb.kind == RelativeBiasKind::kFire && (hidden < 1 || grid < 1 || grid > (int64_t{1} << 20)))
    fail(name + ": fire_hidden = " + std::to_string(rb.fire_hidden) + " and fire_grid = " +
         std::to_string(rb.fire_grid) + " must be >= 1 (the grid at most 2^20 cells)");
  const int64_t n = relative_bias_param_count(rb.kind, p.H, rb.num_buckets, rb.fire_hidden);
  for (int64_t k = 0; k < n; ++k)
    if (!std::isfinite(detail::re(rb.params[k])))
      fail(name + ": parameter " + std::to_string(k) + " is not finite");
  const double dmax = static_cast<double>(p.Tq + p.Tk);
  for (int64_t h = 0; h < p.H && (rb.kind == RelativeBiasKind::kKerpleLog ||
                                  rb.kind == RelativeBiasKind::kKerplePower);
       ++h) {
    const double r1 = detail::re(rb.params[h]), r2 = detail::re(rb.params[p.H + h]);
    const bool log_kind = rb.kind == RelativeBiasKind::kKerpleLog;
    if (log_kind ? !(r2 >= 0.0) : !(r2 > 0.0 && r2 <= 2.0))
      fail(name + ": r2[" + std::to_string(h) + "] = " + std::to_string(r2) +
           (log_kind ? " must be >= 0" : " must be in (0, 2]") +
           " (relative_bias_clamp() projects learned values back)");
    const double big = std::abs(r1) * (log_kind ? std::log1p(r2 * dmax) : std::pow(dmax, r2));
    if (big > FLT_MAX)
      fail(name + ": r1[" + std::to_string(h) + "] makes the bias overflow float32 at distance " +
           std::to_string(p.Tq + p.Tk));
  }
  if (rb.kind == RelativeBiasKind::kFire) {
    const int64_t at = (2 + p.H) * rb.fire_hidden + p.H;
    const double cc = detail::re(rb.params[at]), L = detail::re(rb.params[at + 1]);
    if (!(cc > 0.0) || !(L > 0.0))
      fail(name + ": c = " + std::to_string(cc) + " and L = " + std::to_string(L) +
           " must be > 0 (psi(x) = log(c*x + 1) normalised by psi(max(L, i)))");
  }
}

// Whether distinct (b, h, t, d) of a (B, H, T, D) tensor with these strides (last dim 1) map to
// distinct elements: sorted by stride, each dimension must step past everything the smaller
// ones span. (Sufficient, and what every real layout satisfies; broadcast strides of 0 fail.)
bool strides_disjoint(const Strides& s, int64_t B, int64_t H, int64_t T, int64_t D) {
  std::array<std::pair<int64_t, int64_t>, 4> dims = {{{1, D}, {s.t, T}, {s.h, H}, {s.b, B}}};
  std::sort(dims.begin(), dims.end());
  int64_t span = 0;  // largest offset reachable by the dimensions so far
  for (const auto& [stride, n] : dims) {
    if (n == 1) continue;
    if (stride <= span) return false;
    span += (n - 1) * stride;
  }
  return true;
}

void Checker::disjoint(const char* name, const Strides& s, int64_t B, int64_t H, int64_t T,
                       int64_t D, const char* why) const {
  if (!strides_disjoint(s, B, H, T, D))
    fail(std::string(name) + " strides (b=" + std::to_string(s.b) + ", h=" + std::to_string(s.h) +
         ", t=" + std::to_string(s.t) + ") make different positions share memory; " + why);
}

// cu (B + 1): from 0, non-decreasing, no document longer than T_max (Tq or Tk).
void Checker::cu_seqlens(const char* name, const int32_t* cu, int64_t B, int64_t T_max,
                         const char* T_name) const {
  const std::string n(name);
  if (cu[0] != 0)
    fail(n + "[0] = " + std::to_string(cu[0]) + "; cumulative lengths must start at 0");
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = static_cast<int64_t>(cu[b + 1]) - cu[b];
    const std::string at = n + "[" + std::to_string(b + 1) + "] = " + std::to_string(cu[b + 1]);
    if (len < 0)
      fail(at + " is less than " + n + "[" + std::to_string(b) + "] = " + std::to_string(cu[b]) +
           "; cumulative lengths must be non-decreasing");
    if (len > T_max)
      fail(at + " makes document " + std::to_string(b) + " " + std::to_string(len) +
           " long, more than " + T_name + "=" + std::to_string(T_max) +
           "; pass the longest document's length (max_seqlen)");
  }
}

// Packed sequences: both cumulative lengths, no key lengths, rows addressed by time alone.
void Checker::packed(const AttentionProblem& p) const {
  if (!p.cu_seqlens_q != !p.cu_seqlens_k)
    fail("cu_seqlens_q and cu_seqlens_k must be given together (packed sequences) or not at all");
  if (!p.cu_seqlens_q) return;
  if (p.key_lengths)
    fail(
        "key_lengths must be null with packed sequences (cu_seqlens_k gives each document's keys)");
  const Strides* s[] = {&p.q_strides, &p.k_strides, &p.v_strides, &p.out_strides};
  const char* names[] = {"q", "k", "v", "out"};
  for (int t = 0; t < 4; ++t)
    if (s[t]->b != 0)
      fail(std::string(names[t]) + " batch stride is " + std::to_string(s[t]->b) +
           "; with packed sequences rows are addressed as (total, H, D): pass batch stride 0");
  cu_seqlens("cu_seqlens_q", p.cu_seqlens_q, p.B, p.Tq, "Tq");
  cu_seqlens("cu_seqlens_k", p.cu_seqlens_k, p.B, p.Tk, "Tk");
}

void Checker::query_positions(const AttentionProblem& p) const {
  const int qp = static_cast<int>(p.query_positions);
  if (qp < 0 || qp > static_cast<int>(QueryPositions::kKeyLengths))
    fail("query_positions = " + std::to_string(qp) +
         " is not a QueryPositions (kLowerRight, kUpperLeft or kKeyLengths)");
  if (p.query_positions == QueryPositions::kKeyLengths && !p.key_lengths)
    fail(
        "query_positions = kKeyLengths places the queries at the end of each row's keys, but "
        "key_lengths is null; pass key_lengths (flash_attn_with_kvcache's cache_seqlens)");
}

}  // namespace

template <class T>
void validate(const AttentionProblem& p, const AttentionInputs<T>& in, const char* who) {
  const Checker c{who};
  if (p.B < 1 || p.H < 1 || p.Hkv < 1 || p.Tq < 1 || p.Tk < 1 || p.D < 1 || p.Dv < 1)
    c.fail("every size must be >= 1 (B=" + std::to_string(p.B) + " H=" + std::to_string(p.H) +
           " Hkv=" + std::to_string(p.Hkv) + " Tq=" + std::to_string(p.Tq) +
           " Tk=" + std::to_string(p.Tk) + " D=" + std::to_string(p.D) +
           " Dv=" + std::to_string(p.Dv) + ")");
  if (p.H % p.Hkv != 0)
    c.fail("H=" + std::to_string(p.H) + " is not a multiple of Hkv=" + std::to_string(p.Hkv) +
           " (grouped queries need whole groups)");
  if (!in.q || !in.k || !in.v) c.fail("q, k and v must all be given");
  c.strides("q", p.q_strides, p.D);
  c.strides("k", p.k_strides, p.D);
  c.strides("v", p.v_strides, p.Dv);
  c.strides("out", p.out_strides, p.Dv);
  c.packed(p);
  c.query_positions(p);
  const int64_t Bt = detail::is_packed(p) ? 1 : p.B;  // packed: one batch of total rows
  c.disjoint("out", p.out_strides, Bt, p.H, detail::total_q(p) / Bt, p.Dv,
             "the output needs its own memory");
  const float scale = p.effective_scale();
  if (!std::isfinite(scale)) c.fail("scale must be finite, got " + std::to_string(scale));
  if (in.slopes_right && !in.slopes_left)
    c.fail(
        "slopes_right is given without slopes_left; pass slopes_left too (it switches ALiBi "
        "on)");
  if (p.slopes_stride_b != 0 && (p.slopes_stride_b < p.H || !in.slopes_left))
    c.fail("slopes_stride_b = " + std::to_string(p.slopes_stride_b) +
           " must be 0 (slopes (H), shared by the batch) or >= H=" + std::to_string(p.H) +
           " with slopes given (alibi_slopes of shape (B, H))");
  if (in.slopes_left) {
    const int64_t max_distance = p.Tq + p.Tk;
    c.slopes("alibi_slopes", "slopes_left", in.slopes_left, p.B, p.H, p.slopes_stride_b,
             max_distance);
    if (in.slopes_right)
      c.slopes("alibi_slopes_right", "slopes_right", in.slopes_right, p.B, p.H, p.slopes_stride_b,
               max_distance);
  }
  c.relative_bias(p, in);
  for (int64_t b = 0; p.key_lengths && b < p.B; ++b) {
    const int32_t len = p.key_lengths[b];
    if (len < 0 || len > p.Tk)
      c.fail("key_lengths[" + std::to_string(b) + "] = " + std::to_string(len) +
             " is outside [0, Tk=" + std::to_string(p.Tk) +
             "]: it counts the real keys of "
             "sequence " +
             std::to_string(b) + ", at most the padded length");
  }
  if (p.mask_kind != MaskKind::kNone) {
    if (!p.mask) c.fail("attn_mask kind is set but the mask pointer is null");
    if (p.mask_stride_b < 0 || p.mask_stride_h < 0 || p.mask_stride_t < p.Tk)
      c.fail("attn_mask strides are invalid: rows need stride >= Tk=" + std::to_string(p.Tk) +
             " and the batch/head strides must be >= 0 (0 broadcasts)");
  }
  if (p.window_left < -1 || p.window_right < -1)
    c.fail("window_size (window_left, window_right) = (" + std::to_string(p.window_left) + ", " +
           std::to_string(p.window_right) + "): each must be -1 (unbounded) or >= 0");
  if (!(std::isfinite(p.softcap) && p.softcap >= 0.0f))
    c.fail("softcap must be finite and >= 0 (0: off), got " + std::to_string(p.softcap));
  // Interface landed before the kernels (issue 12): each line goes when its feature lands.
  if (!(p.dropout_p >= 0.0f && p.dropout_p < 1.0f))
    c.fail("dropout_p must be in [0, 1) (the probability of dropping a key), got " +
           std::to_string(p.dropout_p));
  // The keep mask's Philox counter holds ⌊j/4⌋, i and b·H + h in 32 bits each (attention.h).
  constexpr int64_t k32 = int64_t{1} << 32;
  if (p.dropout_p != 0.0f && (p.B * p.H > k32 || p.Tq > k32 || p.Tk > 4 * k32))
    c.fail("dropout_p > 0 needs B·H <= 2^32, Tq <= 2^32 and Tk <= 2^34 (the keep mask's counter)");
  if (!(p.skip_tolerance >= 0.0f && p.skip_tolerance < 1.0f))
    c.fail("skip_tolerance must be in [0, 1), got " + std::to_string(p.skip_tolerance));
}

template void validate<float>(const AttentionProblem&, const AttentionInputs<float>&, const char*);
template void validate<double>(const AttentionProblem&, const AttentionInputs<double>&,
                               const char*);
template void validate<std::complex<double>>(const AttentionProblem&,
                                             const AttentionInputs<std::complex<double>>&,
                                             const char*);

void validate_backward(const AttentionProblem& p, const AttentionInputs<float>& in) {
  validate(p, in);
  // The gradients are written with the inputs' strides: a broadcast (stride 0) or overlapping
  // q, k or v would have one gradient overwrite another instead of summing.
  const Checker c{"attention"};
  const char* why = "its gradient is written with the same strides: pass a contiguous copy";
  const int64_t Bt = detail::is_packed(p) ? 1 : p.B;  // packed: one batch of total rows
  c.disjoint("q", p.q_strides, Bt, p.H, detail::total_q(p) / Bt, p.D, why);
  c.disjoint("k", p.k_strides, Bt, p.Hkv, detail::total_k(p) / Bt, p.D, why);
  c.disjoint("v", p.v_strides, Bt, p.Hkv, detail::total_k(p) / Bt, p.Dv, why);
}

// ---- default slopes ----

namespace {
std::vector<float> geometric(int64_t n, double max_bias) {
  std::vector<float> s(static_cast<size_t>(n));
  for (int64_t h = 0; h < n; ++h)
    s[static_cast<size_t>(h)] = static_cast<float>(
        std::exp2(-max_bias * static_cast<double>(h + 1) / static_cast<double>(n)));
  return s;
}
void check_heads(int64_t n, double max_bias) {
  if (n < 1) throw Error("alibi_slopes: n_heads must be >= 1, got " + std::to_string(n));
  if (!(max_bias > 0.0) || !std::isfinite(max_bias))
    throw Error("alibi_slopes: max_bias must be a positive finite number, got " +
                std::to_string(max_bias));
}
}  // namespace

std::vector<float> alibi_slopes(int64_t n_heads, double max_bias) {
  check_heads(n_heads, max_bias);
  int64_t pow2 = 1;
  while (pow2 * 2 <= n_heads) pow2 *= 2;
  std::vector<float> s = geometric(pow2, max_bias);
  if (pow2 == n_heads) return s;
  // Press et al.: the remaining heads take every other slope of the next power of two.
  const std::vector<float> next = geometric(2 * pow2, max_bias);
  for (int64_t i = 0; static_cast<int64_t>(s.size()) < n_heads; i += 2)
    s.push_back(next[static_cast<size_t>(i)]);
  return s;
}

std::vector<float> alibi_slopes_geometric(int64_t n_heads, double max_bias) {
  check_heads(n_heads, max_bias);
  return geometric(n_heads, max_bias);
}

SlopePair alibi_slopes_nonsymmetric(int64_t n_heads, double max_bias) {
  check_heads(n_heads, max_bias);
  if (n_heads % 2 != 0)
    throw Error(
        "alibi_slopes_nonsymmetric: n_heads must be even (half look left, half right), got " +
        std::to_string(n_heads));
  const std::vector<float> half = alibi_slopes(n_heads / 2, max_bias);
  const float inf = std::numeric_limits<float>::infinity();
  SlopePair p;
  p.left = half;
  p.right.assign(half.size(), inf);
  p.left.insert(p.left.end(), half.size(), inf);
  p.right.insert(p.right.end(), half.begin(), half.end());
  return p;
}

}  // namespace slope
