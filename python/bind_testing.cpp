// slope.testing's bindings: the float64 reference and the rounding-error bounds of an fp32
// evaluation, on the same float32 arguments as the numpy API. Inputs are made contiguous first,
// so every result comes back in the contiguous (B, H, T, D) layout.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/tuple.h>

#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bind_args.h"
#include "slope/attention.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace slope::python {

namespace {

// The features beyond the numpy API that the reference and the bounds take too (packed
// sequences and dropout are tested through slope.torch instead).
Extras extras(int query_positions, int64_t window_left, int64_t window_right, double softcap) {
  if (query_positions < 0 || query_positions > 2)
    bad("query_positions must be 0 (lower right), 1 (upper left) or 2 (key lengths), got " +
        std::to_string(query_positions));
  Extras e;
  e.query_positions = static_cast<slope::QueryPositions>(query_positions);
  e.window_left = window_left;
  e.window_right = window_right;
  e.softcap = softcap;
  return e;
}

using Results64 =
    std::tuple<Numpy64, Numpy64, std::optional<Numpy64>, std::optional<Numpy64>,
               std::optional<Numpy64>, std::optional<Numpy64>, std::optional<Numpy64>>;

struct Call64 {
  Call c;
  const float* dout = nullptr;
  std::vector<float> dout_copy;
};

void make_call64(Call64& c64, const FloatArray& q, const FloatArray& k, const FloatArray& v,
                 const std::optional<FloatArray>& dout, bool causal, std::optional<double> scale,
                 const std::optional<FloatArray>& slopes,
                 const std::optional<FloatArray>& slopes_right,
                 const std::optional<IndexArray>& key_lengths, const std::optional<AnyArray>& mask,
                 std::optional<double> skip_tolerance, const Extras& extras) {
  Call& c = c64.c;
  make_call(c, q, k, v, causal, scale, slopes, slopes_right, key_lengths, mask, skip_tolerance,
            extras);
  make_contiguous(c.q, c.copies[0]);
  make_contiguous(c.k, c.copies[1]);
  make_contiguous(c.v, c.copies[2]);
  c.in.q = c.q.data, c.in.k = c.k.data, c.in.v = c.v.data;
  c.p.q_strides = c.q.s, c.p.k_strides = c.k.s, c.p.v_strides = c.v.s;
  if (dout) {
    Tensor4 d = tensor4(*dout, "dout", "(B, H, Tq, Dv)");
    Tensor4 want;
    want.n[0] = c.p.B, want.n[1] = c.p.H, want.n[2] = c.p.Tq, want.n[3] = c.p.Dv;
    check_same_shape(d, want, "dout", "the forward output", "(B, H, Tq, Dv)");
    make_contiguous(d, c64.dout_copy);
    c64.dout = d.data;
  }
  slope::validate(c.p, c.in);
}

// Results in the contiguous layouts: out, lse, then dq, dk, dv, dslopes, dslopes_right (None
// where not computed; dslopes_right None for one shared slope vector).
struct Shapes {
  std::vector<size_t> out, lse, q, k, v, h;
  explicit Shapes(const slope::AttentionProblem& p) {
    auto z = [](int64_t x) { return static_cast<size_t>(x); };
    out = {z(p.B), z(p.H), z(p.Tq), z(p.Dv)};
    lse = {z(p.B), z(p.H), z(p.Tq)};
    q = {z(p.B), z(p.H), z(p.Tq), z(p.D)};
    k = {z(p.B), z(p.Hkv), z(p.Tk), z(p.D)};
    v = {z(p.B), z(p.Hkv), z(p.Tk), z(p.Dv)};
    h = p.slopes_stride_b ? std::vector<size_t>{z(p.B), z(p.H)} : std::vector<size_t>{z(p.H)};
  }
};

Numpy64 to_numpy64(const std::vector<size_t>& shape, const double* src) {
  Output64 o(shape);
  size_t n = 1;
  for (size_t d : shape) n *= d;
  std::memcpy(o.data(), src, n * sizeof(double));
  return o.release();
}

Results64 reference64(const FloatArray& q, const FloatArray& k, const FloatArray& v,
                      std::optional<FloatArray> dout, bool causal, std::optional<double> scale,
                      std::optional<FloatArray> slopes, std::optional<FloatArray> slopes_right,
                      std::optional<IndexArray> key_lengths, std::optional<AnyArray> mask,
                      int query_positions, int64_t window_left, int64_t window_right,
                      double softcap) {
  Call64 c64;
  make_call64(c64, q, k, v, dout, causal, scale, slopes, slopes_right, key_lengths, mask,
              std::nullopt, extras(query_positions, window_left, window_right, softcap));
  const Call& c = c64.c;
  const slope::AttentionProblem& p = c.p;
  const Shapes sh(p);
  auto wide = [](const float* x, size_t n) {
    return x ? std::vector<double>(x, x + n) : std::vector<double>();
  };
  const size_t H = static_cast<size_t>(p.slopes_stride_b ? p.B * p.H : p.H);  // slope count
  const std::vector<double> q64 = wide(c.in.q, c.q.size()), k64 = wide(c.in.k, c.k.size()),
                            v64 = wide(c.in.v, c.v.size()), sl = wide(c.in.slopes_left, H),
                            sr = wide(c.in.slopes_right, H);
  slope::AttentionInputs<double> in{q64.data(), k64.data(), v64.data(),
                                    sl.empty() ? nullptr : sl.data(),
                                    sr.empty() ? nullptr : sr.data()};
  Output64 out(sh.out), lse(sh.lse);
  std::optional<Output64> dq, dk, dv, dsl, dsr;
  std::vector<double> dout64;
  if (c64.dout) {
    dout64 = wide(c64.dout, static_cast<size_t>(p.B * p.H * p.Tq * p.Dv));
    dq.emplace(sh.q), dk.emplace(sh.k), dv.emplace(sh.v);
    if (c.in.slopes_left) dsl.emplace(sh.h);
    if (c.in.slopes_right) dsr.emplace(sh.h);
  }
  {
    nb::gil_scoped_release release;
    slope::attention_forward_reference<double>(p, in, out.data(), lse.data());
    if (c64.dout)
      slope::attention_backward_reference<double>(
          p, in, dout64.data(),
          {dq->data(), dk->data(), dv->data(), dsl ? dsl->data() : nullptr,
           dsr ? dsr->data() : nullptr});
  }
  auto rel = [](std::optional<Output64>& o) {
    return o ? std::optional<Numpy64>(o->release()) : std::nullopt;
  };
  return {out.release(), lse.release(), rel(dq), rel(dk), rel(dv), rel(dsl), rel(dsr)};
}

Results64 error_bounds(const FloatArray& q, const FloatArray& k, const FloatArray& v,
                       std::optional<FloatArray> dout, bool causal, std::optional<double> scale,
                       std::optional<FloatArray> slopes, std::optional<FloatArray> slopes_right,
                       std::optional<IndexArray> key_lengths, std::optional<AnyArray> mask,
                       std::optional<double> skip_tolerance, int query_positions,
                       int64_t window_left, int64_t window_right, double softcap) {
  Call64 c64;
  make_call64(c64, q, k, v, dout, causal, scale, slopes, slopes_right, key_lengths, mask,
              skip_tolerance, extras(query_positions, window_left, window_right, softcap));
  const slope::AttentionProblem& p = c64.c.p;
  const Shapes sh(p);
  slope::AttentionErrorBounds b;
  {
    nb::gil_scoped_release release;
    b = slope::attention_error_bounds(p, c64.c.in, c64.dout);
  }
  std::optional<Numpy64> dq, dk, dv, dsl, dsr;
  if (c64.dout) {
    dq = to_numpy64(sh.q, b.dq.data());
    dk = to_numpy64(sh.k, b.dk.data());
    dv = to_numpy64(sh.v, b.dv.data());
    if (c64.c.in.slopes_left) dsl = to_numpy64(sh.h, b.dslopes_left.data());
    if (c64.c.in.slopes_right) dsr = to_numpy64(sh.h, b.dslopes_right.data());
  }
  return {to_numpy64(sh.out, b.out.data()), to_numpy64(sh.lse, b.lse.data()), dq, dk, dv, dsl, dsr};
}

// Attention dropout's keep mask Z (B, H, Tq, Tk) as uint8 0/1: attention_dropout_mask() of a
// problem of these sizes (see attention.h for the mapping).
nb::ndarray<nb::numpy, uint8_t> dropout_mask(int64_t B, int64_t H, int64_t Tq, int64_t Tk,
                                             double dropout_p, uint64_t seed, uint64_t offset) {
  if (B < 1 || H < 1 || Tq < 1 || Tk < 1)
    bad("B, H, Tq and Tk must all be >= 1, got " + std::to_string(B) + ", " + std::to_string(H) +
        ", " + std::to_string(Tq) + ", " + std::to_string(Tk));
  if (!(dropout_p >= 0.0 && dropout_p < 1.0))
    bad("dropout_p must be in [0, 1), got " + std::to_string(dropout_p));
  slope::AttentionProblem p;
  p.B = B, p.H = H, p.Hkv = H, p.Tq = Tq, p.Tk = Tk;
  p.dropout_p = static_cast<float>(dropout_p);
  p.dropout_seed = seed;
  p.dropout_offset = offset;
  Buffer<uint8_t> z({static_cast<size_t>(B), static_cast<size_t>(H), static_cast<size_t>(Tq),
                     static_cast<size_t>(Tk)});
  {
    nb::gil_scoped_release release;
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t i = 0; i < Tq; ++i)
          slope::attention_dropout_mask_row(p, b, h, i, z.data() + ((b * H + h) * Tq + i) * Tk);
  }
  return z.release();
}

}  // namespace

void bind_testing(nb::module_& m) {
  m.def("attention_dropout_mask", &dropout_mask, "B"_a, "H"_a, "Tq"_a, "Tk"_a, "dropout_p"_a,
        "seed"_a, "offset"_a, "Attention dropout's keep mask (B, H, Tq, Tk), uint8 0/1.");
  m.def("attention_reference", &reference64, "q"_a.noconvert(), "k"_a.noconvert(),
        "v"_a.noconvert(), "dout"_a.noconvert().none(), "causal"_a, "scale"_a.none(),
        "alibi_slopes"_a.none(), "alibi_slopes_right"_a.none(), "key_lengths"_a.none(),
        "attn_mask"_a.none(), "query_positions"_a = 0, "window_left"_a = -1, "window_right"_a = -1,
        "softcap"_a = 0.0,
        "float64 reference: (out, lse, dq, dk, dv, dslopes, dslopes_right). See slope.testing.");
  m.def("attention_error_bounds", &error_bounds, "q"_a.noconvert(), "k"_a.noconvert(),
        "v"_a.noconvert(), "dout"_a.noconvert().none(), "causal"_a, "scale"_a.none(),
        "alibi_slopes"_a.none(), "alibi_slopes_right"_a.none(), "key_lengths"_a.none(),
        "attn_mask"_a.none(), "skip_tolerance"_a.none(), "query_positions"_a = 0,
        "window_left"_a = -1, "window_right"_a = -1, "softcap"_a = 0.0,
        "fp32 rounding-error bounds, laid out as attention_reference's results. See "
        "slope.testing.");
}

}  // namespace slope::python
