// Python bindings of the fused attention kernels: a thin layer over include/slope/attention.h.
//
// This file is the one place where the shapes of the Python arguments are checked against each
// other; the values (slopes, scale, skip_tolerance, strides) are then checked by slope::validate
// inside the kernels. Every problem becomes a ValueError that names the argument: our own
// checks raise nb::value_error, and slope::Error is translated below. python/slope/__init__.py
// only checks what nanobind cannot report that way (is it a numpy array, is it float32).
//
// Layouts: q, k, v, out and dout are (B, H, T, D) arrays with any non-negative strides and a
// contiguous last dimension; they are read in place, never copied, by the forward pass. The
// backward pass writes dq/dk/dv with the strides of q/k/v (AttentionProblem has one stride set
// per tensor), so there a non-contiguous q, k or v (or an out/dout pair with different layouts)
// is first copied to the contiguous layout; that copy is O(B·H·T·D), small beside the O(T²) work.
// The GIL is released around every kernel call.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "slope/attention.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace {

// Arguments as nanobind receives them. Float tensors are typed (float32 on the CPU, any ndim so
// that a wrong ndim is a ValueError here rather than a TypeError in nanobind's dispatcher).
using FloatArray = nb::ndarray<const float, nb::device::cpu>;
using IndexArray = nb::ndarray<const int64_t, nb::device::cpu>;
using AnyArray = nb::ndarray<nb::ro, nb::device::cpu>;  // attn_mask: bool or float32
using NumpyArray = nb::ndarray<nb::numpy, float>;

[[noreturn]] void bad(const std::string& what) { throw nb::value_error(what.c_str()); }

template <class Array>
std::string shape_str(const Array& a) {
  std::string s = "(";
  for (size_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A (B, H, T, D) tensor argument: its sizes and the strides AttentionProblem takes.
struct Tensor4 {
  const float* data = nullptr;
  int64_t n[4] = {};  // B, H, T, D
  slope::Strides s;
  bool contiguous = true;  // C order, ignoring the strides of size-1 dimensions

  size_t size() const { return static_cast<size_t>(n[0] * n[1] * n[2] * n[3]); }
};

Tensor4 tensor4(const FloatArray& a, const char* name, const char* dims) {
  if (a.ndim() != 4)
    bad(std::string(name) + " must be 4-D " + dims + ", got shape " + shape_str(a));
  Tensor4 t;
  t.data = a.data();
  for (int i = 0; i < 4; ++i) {
    t.n[i] = static_cast<int64_t>(a.shape(static_cast<size_t>(i)));
    if (t.n[i] == 0)
      bad(std::string(name) + " has an empty dimension: shape " + shape_str(a) + ", expected " +
          dims + " with every size >= 1");
  }
  if (t.n[3] > 1 && a.stride(3) != 1)
    bad(std::string(name) + " must have a contiguous last dimension (stride 1), got stride " +
        std::to_string(a.stride(3)) + "; pass np.ascontiguousarray(" + name + ")");
  // The stride of a size-1 dimension is never used; give it a value validate() accepts.
  t.s.b = t.n[0] == 1 ? 0 : a.stride(0);
  t.s.h = t.n[1] == 1 ? 0 : a.stride(1);
  t.s.t = t.n[2] == 1 ? t.n[3] : a.stride(2);
  int64_t expect = t.n[3];
  for (int i = 2; i >= 0; --i) {
    if (t.n[i] > 1 && a.stride(static_cast<size_t>(i)) != expect) t.contiguous = false;
    expect *= t.n[i];
  }
  return t;
}

void check_same_shape(const Tensor4& a, const Tensor4& ref, const char* name, const char* ref_name,
                      const char* dims) {
  for (int i = 0; i < 4; ++i)
    if (a.n[i] != ref.n[i])
      bad(std::string(name) + " must have the shape of " + ref_name + " " + dims + " (" +
          std::to_string(ref.n[0]) + ", " + std::to_string(ref.n[1]) + ", " +
          std::to_string(ref.n[2]) + ", " + std::to_string(ref.n[3]) + "), got (" +
          std::to_string(a.n[0]) + ", " + std::to_string(a.n[1]) + ", " + std::to_string(a.n[2]) +
          ", " + std::to_string(a.n[3]) + ")");
}

// Copies a strided tensor into `buf` in C order and points `t` at it.
void make_contiguous(Tensor4& t, std::vector<float>& buf) {
  if (t.contiguous) return;
  buf.resize(t.size());
  float* dst = buf.data();
  for (int64_t b = 0; b < t.n[0]; ++b)
    for (int64_t h = 0; h < t.n[1]; ++h)
      for (int64_t i = 0; i < t.n[2]; ++i) {
        std::memcpy(dst, t.data + b * t.s.b + h * t.s.h + i * t.s.t,
                    static_cast<size_t>(t.n[3]) * sizeof(float));
        dst += t.n[3];
      }
  t.data = buf.data();
  t.s = slope::contiguous_strides(t.n[1], t.n[2], t.n[3]);
  t.contiguous = true;
}

// An array we allocate and hand to numpy (zero-filled; numpy frees it).
template <class T>
struct Buffer {
  std::unique_ptr<T[]> buf;
  std::vector<size_t> shape;

  explicit Buffer(std::vector<size_t> sh) : shape(std::move(sh)) {
    size_t n = 1;
    for (size_t d : shape) n *= d;
    buf.reset(new T[n]());
  }
  T* data() const { return buf.get(); }

  nb::ndarray<nb::numpy, T> release() {
    T* p = buf.release();
    nb::capsule owner(p, [](void* q) noexcept { delete[] static_cast<T*>(q); });
    return nb::ndarray<nb::numpy, T>(p, shape.size(), shape.data(), owner);
  }
};
using Output = Buffer<float>;
using Output64 = Buffer<double>;
using Numpy64 = nb::ndarray<nb::numpy, double>;

// Everything one kernel call reads, checked for consistency, plus the buffers it owns
// (converted key lengths, a broadcast mask, contiguous copies for the backward pass).
struct Call {
  slope::AttentionProblem p;
  slope::AttentionInputs<float> in;
  Tensor4 q, k, v;
  std::vector<int32_t> key_lengths;
  std::vector<uint8_t> mask_bool;
  std::vector<float> mask_add;
  std::vector<float> copies[5];  // q, k, v, out, dout (backward only)

  Call() = default;
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
};

void set_slopes(Call& c, const std::optional<FloatArray>& left,
                const std::optional<FloatArray>& right) {
  if (right && !left)
    bad("alibi_slopes_right is given without alibi_slopes; pass alibi_slopes (the left side) too");
  if (!left) return;
  const char* names[2] = {"alibi_slopes", "alibi_slopes_right"};
  const FloatArray* arrays[2] = {&*left, right ? &*right : nullptr};
  for (int side = 0; side < 2; ++side) {
    const FloatArray* a = arrays[side];
    if (!a) continue;
    if (a->ndim() != 1 || static_cast<int64_t>(a->shape(0)) != c.p.H)
      bad(std::string(names[side]) + " must have shape (H,) = (" + std::to_string(c.p.H) +
          ",), one slope per query head, got shape " + shape_str(*a));
    if (c.p.H > 1 && a->stride(0) != 1) bad(std::string(names[side]) + " must be contiguous");
  }
  c.in.slopes_left = left->data();
  c.in.slopes_right = right ? right->data() : nullptr;  // null: the same as the left slopes
}

void set_key_lengths(Call& c, const std::optional<IndexArray>& lengths) {
  if (!lengths) return;
  const IndexArray& a = *lengths;
  if (a.ndim() != 1 || static_cast<int64_t>(a.shape(0)) != c.p.B)
    bad("key_lengths must have shape (B,) = (" + std::to_string(c.p.B) + ",), got shape " +
        shape_str(a));
  c.key_lengths.resize(static_cast<size_t>(c.p.B));
  for (int64_t b = 0; b < c.p.B; ++b) {
    const int64_t len = a.data()[b * a.stride(0)];
    if (len < 0 || len > c.p.Tk)
      bad("key_lengths[" + std::to_string(b) + "] = " + std::to_string(len) +
          " is outside [0, Tk=" + std::to_string(c.p.Tk) + "]");
    c.key_lengths[static_cast<size_t>(b)] = static_cast<int32_t>(len);
  }
  c.p.key_lengths = c.key_lengths.data();
}

// Copies a mask whose query or key dimension is broadcast (size 1) into a dense
// (Bm, Hm, Tq, Tk) buffer: AttentionProblem broadcasts only over B and H.
template <class T>
void expand_mask(const AnyArray& a, const int64_t n[4], const int64_t st[4], int64_t Tq, int64_t Tk,
                 std::vector<T>& buf) {
  const T* src = static_cast<const T*>(a.data());
  buf.resize(static_cast<size_t>(n[0] * n[1] * Tq * Tk));
  size_t o = 0;
  for (int64_t b = 0; b < n[0]; ++b)
    for (int64_t h = 0; h < n[1]; ++h)
      for (int64_t i = 0; i < Tq; ++i)
        for (int64_t j = 0; j < Tk; ++j)
          buf[o++] = src[b * st[0] + h * st[1] + (n[2] == 1 ? 0 : i * st[2]) +
                         (n[3] == 1 ? 0 : j * st[3])];
}

void set_mask(Call& c, const std::optional<AnyArray>& mask) {
  if (!mask) return;
  const AnyArray& a = *mask;
  const bool is_bool = a.dtype() == nb::dtype<bool>();
  const bool is_float = a.dtype() == nb::dtype<float>();
  if (!is_bool && !is_float)
    bad("attn_mask must be a bool array (True = may attend) or a float32 additive bias");
  const slope::AttentionProblem& p = c.p;
  const std::string want = "(Bm, Hm, Tq, Tk) with Bm in {1, B=" + std::to_string(p.B) +
                           "}, Hm in {1, H=" + std::to_string(p.H) +
                           "}, Tq=" + std::to_string(p.Tq) + ", Tk=" + std::to_string(p.Tk) +
                           " (or its trailing 2 or 3 dimensions)";
  const size_t nd = a.ndim();
  if (nd < 2 || nd > 4)
    bad("attn_mask must be 2-, 3- or 4-D " + want + ", got shape " + shape_str(a));
  // Right-align the shape against (B, H, Tq, Tk), as numpy and torch broadcasting do.
  int64_t n[4] = {1, 1, 1, 1}, st[4] = {0, 0, 0, 0};
  for (size_t i = 0; i < nd; ++i) {
    n[4 - nd + i] = static_cast<int64_t>(a.shape(i));
    st[4 - nd + i] = a.stride(i);
  }
  const int64_t full[4] = {p.B, p.H, p.Tq, p.Tk};
  for (int i = 0; i < 4; ++i) {
    if (n[i] != 1 && n[i] != full[i])
      bad("attn_mask of shape " + shape_str(a) + " does not broadcast to " + want);
    if (n[i] == 1) st[i] = 0;
  }
  for (int i = 0; i < 4; ++i)
    if (st[i] < 0) bad("attn_mask has a negative stride; pass np.ascontiguousarray(attn_mask)");
  c.p.mask_kind = is_bool ? slope::MaskKind::kBool : slope::MaskKind::kAdditive;
  c.p.mask_stride_b = st[0];
  c.p.mask_stride_h = st[1];
  // Read in place when rows are whole and apart (contiguous columns, row stride >= Tk).
  const bool dense_rows =
      n[3] == p.Tk && (p.Tk == 1 || st[3] == 1) && (p.Tq == 1 || (n[2] == p.Tq && st[2] >= p.Tk));
  if (dense_rows) {
    c.p.mask = a.data();
    c.p.mask_stride_t = p.Tq == 1 ? p.Tk : st[2];
    return;
  }
  // Broadcast over queries or keys, or strided columns/rows: one dense copy per (Bm, Hm).
  if (is_bool) {
    expand_mask(a, n, st, p.Tq, p.Tk, c.mask_bool);
    c.p.mask = c.mask_bool.data();
  } else {
    expand_mask(a, n, st, p.Tq, p.Tk, c.mask_add);
    c.p.mask = c.mask_add.data();
  }
  c.p.mask_stride_b = n[0] == 1 ? 0 : n[1] * p.Tq * p.Tk;
  c.p.mask_stride_h = n[1] == 1 ? 0 : p.Tq * p.Tk;
  c.p.mask_stride_t = p.Tk;
}

// Builds the problem from the Python arguments; shape consistency is checked here, once.
void make_call(Call& c, const FloatArray& q, const FloatArray& k, const FloatArray& v, bool causal,
               std::optional<double> scale, const std::optional<FloatArray>& slopes,
               const std::optional<FloatArray>& slopes_right,
               const std::optional<IndexArray>& key_lengths, const std::optional<AnyArray>& mask,
               std::optional<double> skip_tolerance) {
  c.q = tensor4(q, "q", "(B, H, Tq, D)");
  c.k = tensor4(k, "k", "(B, Hkv, Tk, D)");
  c.v = tensor4(v, "v", "(B, Hkv, Tk, Dv)");
  slope::AttentionProblem& p = c.p;
  p.B = c.q.n[0];
  p.H = c.q.n[1];
  p.Tq = c.q.n[2];
  p.D = c.q.n[3];
  p.Hkv = c.k.n[1];
  p.Tk = c.k.n[2];
  p.Dv = c.v.n[3];
  if (c.k.n[0] != p.B)
    bad("k has batch size " + std::to_string(c.k.n[0]) + " but q has " + std::to_string(p.B));
  if (c.k.n[3] != p.D)
    bad("k has head dim " + std::to_string(c.k.n[3]) + " but q has " + std::to_string(p.D) +
        " (q and k must share D)");
  if (p.H % p.Hkv != 0)
    bad("k has " + std::to_string(p.Hkv) + " heads, which does not divide q's H=" +
        std::to_string(p.H) + " heads (grouped queries need H % Hkv == 0)");
  if (c.v.n[0] != p.B || c.v.n[1] != p.Hkv || c.v.n[2] != p.Tk)
    bad("v must be (B, Hkv, Tk, Dv) = (" + std::to_string(p.B) + ", " + std::to_string(p.Hkv) +
        ", " + std::to_string(p.Tk) + ", Dv) to match q and k, got (" + std::to_string(c.v.n[0]) +
        ", " + std::to_string(c.v.n[1]) + ", " + std::to_string(c.v.n[2]) + ", " +
        std::to_string(c.v.n[3]) + ")");
  p.q_strides = c.q.s;
  p.k_strides = c.k.s;
  p.v_strides = c.v.s;
  p.out_strides = slope::contiguous_strides(p.H, p.Tq, p.Dv);
  p.causal = causal;
  if (scale) {
    if (!std::isfinite(*scale)) bad("scale must be a finite number, got " + std::to_string(*scale));
    p.scale = static_cast<float>(*scale);
  }
  if (skip_tolerance) p.skip_tolerance = static_cast<float>(*skip_tolerance);
  set_slopes(c, slopes, slopes_right);
  set_key_lengths(c, key_lengths);
  set_mask(c, mask);
  c.in.q = c.q.data;
  c.in.k = c.k.data;
  c.in.v = c.v.data;
}

std::tuple<NumpyArray, NumpyArray> forward(
    const FloatArray& q, const FloatArray& k, const FloatArray& v, bool causal,
    std::optional<double> scale, std::optional<FloatArray> slopes,
    std::optional<FloatArray> slopes_right, std::optional<IndexArray> key_lengths,
    std::optional<AnyArray> mask, std::optional<double> skip_tolerance) {
  Call c;
  make_call(c, q, k, v, causal, scale, slopes, slopes_right, key_lengths, mask, skip_tolerance);
  const auto& p = c.p;
  const size_t B = static_cast<size_t>(p.B), H = static_cast<size_t>(p.H),
               Tq = static_cast<size_t>(p.Tq), Dv = static_cast<size_t>(p.Dv);
  Output out({B, H, Tq, Dv}), lse({B, H, Tq});
  {
    nb::gil_scoped_release release;
    slope::attention_forward(c.p, c.in, out.data(), lse.data());
  }
  return {out.release(), lse.release()};
}

using Grads = std::tuple<NumpyArray, NumpyArray, NumpyArray, std::optional<NumpyArray>,
                         std::optional<NumpyArray>>;

Grads backward(const FloatArray& dout, const FloatArray& q, const FloatArray& k,
               const FloatArray& v, const FloatArray& out, const FloatArray& lse, bool causal,
               std::optional<double> scale, std::optional<FloatArray> slopes,
               std::optional<FloatArray> slopes_right, std::optional<IndexArray> key_lengths,
               std::optional<AnyArray> mask, std::optional<double> skip_tolerance,
               bool slope_grads) {
  Call c;
  make_call(c, q, k, v, causal, scale, slopes, slopes_right, key_lengths, mask, skip_tolerance);
  auto& p = c.p;
  Tensor4 o = tensor4(out, "out", "(B, H, Tq, Dv)");
  Tensor4 d = tensor4(dout, "dout", "(B, H, Tq, Dv)");
  Tensor4 want;
  want.n[0] = p.B, want.n[1] = p.H, want.n[2] = p.Tq, want.n[3] = p.Dv;
  check_same_shape(o, want, "out", "the forward output", "(B, H, Tq, Dv)");
  check_same_shape(d, want, "dout", "the forward output", "(B, H, Tq, Dv)");
  if (lse.ndim() != 3 || static_cast<int64_t>(lse.shape(0)) != p.B ||
      static_cast<int64_t>(lse.shape(1)) != p.H || static_cast<int64_t>(lse.shape(2)) != p.Tq)
    bad("lse must have shape (B, H, Tq) = (" + std::to_string(p.B) + ", " + std::to_string(p.H) +
        ", " + std::to_string(p.Tq) + "), got " + shape_str(lse));
  // lse is read contiguous; a strided one is copied.
  std::vector<float> lse_copy;
  const float* lse_ptr = lse.data();
  const bool lse_contig = (p.Tq == 1 || lse.stride(2) == 1) &&
                          (p.H == 1 || lse.stride(1) == p.Tq) &&
                          (p.B == 1 || lse.stride(0) == p.H * p.Tq);
  // dq/dk/dv take the strides of q/k/v, out and dout share one stride set: go contiguous
  // wherever the layouts are not already the plain one.
  make_contiguous(c.q, c.copies[0]);
  make_contiguous(c.k, c.copies[1]);
  make_contiguous(c.v, c.copies[2]);
  make_contiguous(o, c.copies[3]);
  make_contiguous(d, c.copies[4]);
  if (!lse_contig) {
    lse_copy.resize(static_cast<size_t>(p.B * p.H * p.Tq));
    size_t n = 0;
    for (int64_t b = 0; b < p.B; ++b)
      for (int64_t h = 0; h < p.H; ++h)
        for (int64_t i = 0; i < p.Tq; ++i)
          lse_copy[n++] = lse_ptr[b * lse.stride(0) + h * lse.stride(1) + i * lse.stride(2)];
    lse_ptr = lse_copy.data();
  }
  c.in.q = c.q.data, c.in.k = c.k.data, c.in.v = c.v.data;
  p.q_strides = c.q.s, p.k_strides = c.k.s, p.v_strides = c.v.s;
  p.out_strides = o.s;

  const size_t B = static_cast<size_t>(p.B), H = static_cast<size_t>(p.H),
               Hkv = static_cast<size_t>(p.Hkv), Tq = static_cast<size_t>(p.Tq),
               Tk = static_cast<size_t>(p.Tk), D = static_cast<size_t>(p.D),
               Dv = static_cast<size_t>(p.Dv);
  Output dq({B, H, Tq, D}), dk({B, Hkv, Tk, D}), dv({B, Hkv, Tk, Dv});
  std::optional<Output> dsl, dsr;
  // Fixed slopes (slope_grads false) skip the slope-gradient work in the kernel.
  if (c.in.slopes_left && slope_grads) dsl.emplace(std::vector<size_t>{H});
  if (c.in.slopes_right && slope_grads) dsr.emplace(std::vector<size_t>{H});
  slope::AttentionGrads<float> g;
  g.dq = dq.data();
  g.dk = dk.data();
  g.dv = dv.data();
  g.dslopes_left = dsl ? dsl->data() : nullptr;
  g.dslopes_right = dsr ? dsr->data() : nullptr;
  {
    nb::gil_scoped_release release;
    slope::attention_backward(p, c.in, o.data, d.data, lse_ptr, g);
  }
  std::optional<NumpyArray> rsl, rsr;
  if (dsl) rsl = dsl->release();
  if (dsr) rsr = dsr->release();
  return {dq.release(), dk.release(), dv.release(), rsl, rsr};
}

// The float64 reference and the rounding-error bounds of an fp32 evaluation, on the same
// float32 arguments as forward/backward (slope.testing). Inputs are made contiguous first, so
// every result comes back in the contiguous (B, H, T, D) layout.
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
                 std::optional<double> skip_tolerance) {
  Call& c = c64.c;
  make_call(c, q, k, v, causal, scale, slopes, slopes_right, key_lengths, mask, skip_tolerance);
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
    h = {z(p.H)};
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
                      std::optional<IndexArray> key_lengths, std::optional<AnyArray> mask) {
  Call64 c64;
  make_call64(c64, q, k, v, dout, causal, scale, slopes, slopes_right, key_lengths, mask,
              std::nullopt);
  const Call& c = c64.c;
  const slope::AttentionProblem& p = c.p;
  const Shapes sh(p);
  auto wide = [](const float* x, size_t n) {
    return x ? std::vector<double>(x, x + n) : std::vector<double>();
  };
  const size_t H = static_cast<size_t>(p.H);
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
                       std::optional<double> skip_tolerance) {
  Call64 c64;
  make_call64(c64, q, k, v, dout, causal, scale, slopes, slopes_right, key_lengths, mask,
              skip_tolerance);
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

NumpyArray to_numpy(const std::vector<float>& v) {
  Output o({v.size()});
  std::memcpy(o.data(), v.data(), v.size() * sizeof(float));
  return o.release();
}

}  // namespace

NB_MODULE(_slope, m) {
  m.doc() = "slope: fused ALiBi attention on CPU (bindings; use the `slope` package)";

  nb::register_exception_translator([](const std::exception_ptr& e, void*) {
    try {
      std::rethrow_exception(e);
    } catch (const slope::Error& err) {
      PyErr_SetString(PyExc_ValueError, err.what());
    }
  });

  m.def("attention_forward", &forward, "q"_a.noconvert(), "k"_a.noconvert(), "v"_a.noconvert(),
        "causal"_a, "scale"_a.none(), "alibi_slopes"_a.none(), "alibi_slopes_right"_a.none(),
        "key_lengths"_a.none(), "attn_mask"_a.none(), "skip_tolerance"_a.none(),
        "Returns (out (B, H, Tq, Dv), lse (B, H, Tq)). See slope.attention.");
  m.def("attention_backward", &backward, "dout"_a.noconvert(), "q"_a.noconvert(), "k"_a.noconvert(),
        "v"_a.noconvert(), "out"_a.noconvert(), "lse"_a.noconvert(), "causal"_a, "scale"_a.none(),
        "alibi_slopes"_a.none(), "alibi_slopes_right"_a.none(), "key_lengths"_a.none(),
        "attn_mask"_a.none(), "skip_tolerance"_a.none(), "slope_grads"_a = true,
        "Returns (dq, dk, dv, dslopes, dslopes_right). See slope.attention_backward.");
  m.def("attention_reference", &reference64, "q"_a.noconvert(), "k"_a.noconvert(),
        "v"_a.noconvert(), "dout"_a.noconvert().none(), "causal"_a, "scale"_a.none(),
        "alibi_slopes"_a.none(), "alibi_slopes_right"_a.none(), "key_lengths"_a.none(),
        "attn_mask"_a.none(),
        "float64 reference: (out, lse, dq, dk, dv, dslopes, dslopes_right). See slope.testing.");
  m.def("attention_error_bounds", &error_bounds, "q"_a.noconvert(), "k"_a.noconvert(),
        "v"_a.noconvert(), "dout"_a.noconvert().none(), "causal"_a, "scale"_a.none(),
        "alibi_slopes"_a.none(), "alibi_slopes_right"_a.none(), "key_lengths"_a.none(),
        "attn_mask"_a.none(), "skip_tolerance"_a.none(),
        "fp32 rounding-error bounds, laid out as attention_reference's results. See "
        "slope.testing.");
  m.def(
      "alibi_slopes",
      [](int64_t n, double max_bias) { return to_numpy(slope::alibi_slopes(n, max_bias)); },
      "n_heads"_a, "max_bias"_a = 8.0);
  m.def(
      "alibi_slopes_geometric",
      [](int64_t n, double max_bias) {
        return to_numpy(slope::alibi_slopes_geometric(n, max_bias));
      },
      "n_heads"_a, "max_bias"_a = 8.0);
  m.def(
      "alibi_slopes_nonsymmetric",
      [](int64_t n, double max_bias) {
        slope::SlopePair s = slope::alibi_slopes_nonsymmetric(n, max_bias);
        return std::make_pair(to_numpy(s.left), to_numpy(s.right));
      },
      "n_heads"_a, "max_bias"_a = 8.0);
  m.def("cpu_isa", [] { return std::string(slope::attention_cpu_isa()); });
  m.def("cpu_isas", [] { return slope::attention_cpu_isas(); });
  m.def(
      "set_cpu_isa", [](const std::string& name) { slope::set_attention_cpu_isa(name); }, "name"_a);
}
