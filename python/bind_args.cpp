// The arguments of the bindings: see bind_args.h.
#include "bind_args.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace slope::python {

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

namespace {

void set_slopes(Call& c, const std::optional<FloatArray>& left,
                const std::optional<FloatArray>& right) {
  if (right && !left)
    bad("alibi_slopes_right is given without alibi_slopes; pass alibi_slopes (the left side) too");
  if (!left) return;
  const char* names[2] = {"alibi_slopes", "alibi_slopes_right"};
  const FloatArray* arrays[2] = {&*left, right ? &*right : nullptr};
  const int64_t B = c.p.B, H = c.p.H;
  const int64_t ndim = static_cast<int64_t>(left->ndim());
  for (int side = 0; side < 2; ++side) {
    const FloatArray* a = arrays[side];
    if (!a) continue;
    const std::string name = names[side];
    const bool per_head = a->ndim() == 1 && static_cast<int64_t>(a->shape(0)) == H;
    const bool per_batch = a->ndim() == 2 && static_cast<int64_t>(a->shape(0)) == B &&
                           static_cast<int64_t>(a->shape(1)) == H;
    if (!per_head && !per_batch)
      bad(name + " must have shape (H,) = (" + std::to_string(H) + ",), one slope per query head, or (B, H) = (" +
          std::to_string(B) + ", " + std::to_string(H) + "), one per batch row and head; got shape " +
          shape_str(*a));
    if (static_cast<int64_t>(a->ndim()) != ndim)
      bad(name + " has shape " + shape_str(*a) + " but alibi_slopes has " + shape_str(*left) +
          "; give both sides the same shape");
    const bool dense = (H == 1 || a->stride(a->ndim() - 1) == 1) &&
                       (!per_batch || B == 1 || a->stride(0) == H);
    if (!dense) bad(name + " must be contiguous");
  }
  c.p.slopes_stride_b = ndim == 2 && B > 1 ? H : 0;
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

// Packed sequences: B becomes the number of documents, Tq and Tk the longest ones, and every
// tensor's batch stride 0 (rows are addressed through cu_seqlens).
void set_packed(Call& c, const Extras& e) {
  if (!e.cu_seqlens_q && !e.cu_seqlens_k) return;
  if (!e.cu_seqlens_q || !e.cu_seqlens_k) bad("cu_seqlens_q and cu_seqlens_k must be given together");
  const char* names[2] = {"cu_seqlens_q", "cu_seqlens_k"};
  const Int32Array* cu[2] = {&*e.cu_seqlens_q, &*e.cu_seqlens_k};
  const int64_t total[2] = {c.q.n[2], c.k.n[2]};
  std::vector<int32_t>* copies[2] = {&c.cu_seqlens_q, &c.cu_seqlens_k};
  for (int s = 0; s < 2; ++s) {
    const Int32Array& a = *cu[s];
    if (a.ndim() != 1 || a.shape(0) < 2)
      bad(std::string(names[s]) + " must be 1-D (B + 1,) with B >= 1 documents, got shape " +
          shape_str(a));
    copies[s]->resize(a.shape(0));
    for (size_t i = 0; i < a.shape(0); ++i) (*copies[s])[i] = a.data()[static_cast<int64_t>(i) * a.stride(0)];
    if (copies[s]->back() != total[s])
      bad(std::string(names[s]) + "[-1] = " + std::to_string(copies[s]->back()) +
          " must equal the packed length " + std::to_string(total[s]) + " of " + (s ? "k" : "q"));
  }
  if (c.cu_seqlens_q.size() != c.cu_seqlens_k.size())
    bad("cu_seqlens_q and cu_seqlens_k must have the same length (B + 1), got " +
        std::to_string(c.cu_seqlens_q.size()) + " and " + std::to_string(c.cu_seqlens_k.size()));
  slope::AttentionProblem& p = c.p;
  p.B = static_cast<int64_t>(c.cu_seqlens_q.size()) - 1;
  // The longest document bounds the work; a larger max_seqlen (flash-attn allows one) is
  // clamped to the packed length, which no document can exceed.
  if (e.max_seqlen_q < 1 || e.max_seqlen_k < 1)
    bad("max_seqlen_q and max_seqlen_k must be >= 1, got " + std::to_string(e.max_seqlen_q) +
        " and " + std::to_string(e.max_seqlen_k));
  p.Tq = std::min(e.max_seqlen_q, std::max<int64_t>(1, total[0]));
  p.Tk = std::min(e.max_seqlen_k, std::max<int64_t>(1, total[1]));
  p.q_strides.b = p.k_strides.b = p.v_strides.b = 0;
  p.out_strides = {0, p.Dv, p.H * p.Dv};  // out (total_q, H, Dv)
  p.cu_seqlens_q = c.cu_seqlens_q.data();
  p.cu_seqlens_k = c.cu_seqlens_k.data();
}

void set_extras(Call& c, const Extras& e) {
  set_packed(c, e);
  slope::AttentionProblem& p = c.p;
  p.query_positions = e.query_positions;
  p.window_left = e.window_left;
  p.window_right = e.window_right;
  p.softcap = static_cast<float>(e.softcap);
  p.dropout_p = static_cast<float>(e.dropout_p);
  p.dropout_seed = e.dropout_seed;
  p.dropout_offset = e.dropout_offset;
}

}  // namespace

void make_call(Call& c, const FloatArray& q, const FloatArray& k, const FloatArray& v, bool causal,
               std::optional<double> scale, const std::optional<FloatArray>& slopes,
               const std::optional<FloatArray>& slopes_right,
               const std::optional<IndexArray>& key_lengths, const std::optional<AnyArray>& mask,
               std::optional<double> skip_tolerance, const Extras& extras) {
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
  set_extras(c, extras);
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

}  // namespace slope::python
