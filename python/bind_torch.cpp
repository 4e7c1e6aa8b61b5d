// The kernels of slope.torch's custom operators (python/slope/torch.py): forward and backward on
// torch tensors' own memory, received through DLPack (nanobind's ndarray), with the outputs
// allocated by torch and written in place. No copies: every tensor is read or written with its
// strides. The Python side hands over float32 (B, H, T, D) views — (1, H, total, D) for packed
// sequences — and does the dtype conversion and layout bookkeeping.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>

#include <cstdint>
#include <optional>
#include <string>

#include "bind_args.h"
#include "slope/attention.h"

namespace nb = nanobind;
using namespace nb::literals;

namespace slope::python {

namespace {

using MutFloatArray = nb::ndarray<float, nb::device::cpu>;

// Options every torch call carries (python/slope/torch.py passes them all, by keyword).
struct TorchOptions {
  bool causal = false;
  double scale = 0.0;
  double skip_tolerance = 0.0;
  Extras extras;
  slope::RelativeBias<float> rel;  // a learned relative bias's kind and sizes (params per call)
};

// The learned relative bias of a call (slope/attention.h): rel_params is its flat parameter
// block (relative_bias_param_count elements), or absent (none).
void set_rel(Call& c, const TorchOptions& o, const std::optional<FloatArray>& rel_params) {
  if (o.rel.kind == slope::RelativeBiasKind::kNone) {
    if (rel_params) bad("rel_params given but the options' relative bias is none");
    return;
  }
  if (!rel_params) bad("the options name a relative bias but rel_params is None");
  const int64_t n =
      slope::relative_bias_param_count(o.rel.kind, c.p.H, o.rel.num_buckets, o.rel.fire_hidden);
  if (static_cast<int64_t>(rel_params->size()) != n || rel_params->ndim() != 1 ||
      (n > 1 && rel_params->stride(0) != 1))
    bad(std::string("rel_params of ") + slope::relative_bias_name(o.rel.kind) +
        " must be contiguous (" + std::to_string(n) + "), got " + shape_str(*rel_params));
  c.in.rel = o.rel;
  c.in.rel.params = rel_params->data();
}

// Sets a learned relative bias on the options (slope.relative_bias): kind 0 none, 1 kerple-log,
// 2 kerple-power, 3 t5, 4 fire.
TorchOptions with_rel(const TorchOptions& o, int kind, int64_t num_buckets, int64_t max_distance,
                      bool bidirectional, int64_t fire_hidden, int64_t fire_grid) {
  if (kind < 0 || kind > 4) bad("relative bias kind must be 0..4, got " + std::to_string(kind));
  TorchOptions r = o;
  r.rel.kind = static_cast<slope::RelativeBiasKind>(kind);
  r.rel.num_buckets = num_buckets, r.rel.max_distance = max_distance;
  r.rel.bidirectional = bidirectional;
  r.rel.fire_hidden = fire_hidden, r.rel.fire_grid = fire_grid;
  return r;
}

// The output-side (B, H, Tq, Dv) view: out, dout. Their strides become out_strides.
Tensor4 out_view(const FloatArray& a, const char* name, const slope::AttentionProblem& p,
                 int64_t batch, int64_t rows) {
  Tensor4 t = tensor4(a, name, "(B, H, Tq, Dv)");
  if (t.n[0] != batch || t.n[1] != p.H || t.n[2] != rows || t.n[3] != p.Dv)
    bad(std::string(name) + " must be (" + std::to_string(batch) + ", " + std::to_string(p.H) +
        ", " + std::to_string(rows) + ", " + std::to_string(p.Dv) + "), got " + shape_str(a));
  if (p.cu_seqlens_q) t.s.b = 0;
  return t;
}

// lse: (B, H, Tq), or (H, total_q) for packed sequences; contiguous either way.
float* lse_data(const FloatArray& a, const slope::AttentionProblem& p, int64_t total_q) {
  const bool packed = p.cu_seqlens_q != nullptr;
  const size_t want_ndim = packed ? 2 : 3;
  const int64_t want[3] = {packed ? p.H : p.B, packed ? total_q : p.H, p.Tq};
  bool ok = a.ndim() == want_ndim;
  int64_t expect = 1;
  for (size_t i = want_ndim; ok && i-- > 0;) {
    const int64_t n = static_cast<int64_t>(a.shape(i));
    ok = n == want[i] && (n == 1 || a.stride(i) == expect);
    expect *= n;
  }
  if (!ok)
    bad(std::string("lse must be contiguous ") + (packed ? "(H, total_q)" : "(B, H, Tq)") +
        ", got shape " + shape_str(a));
  return const_cast<float*>(a.data());
}

void make_torch_call(Call& c, const FloatArray& q, const FloatArray& k, const FloatArray& v,
                     const std::optional<FloatArray>& sl, const std::optional<FloatArray>& sr,
                     const std::optional<IndexArray>& key_lengths,
                     const std::optional<AnyArray>& mask, const TorchOptions& o) {
  make_call(c, q, k, v, o.causal, o.scale, sl, sr, key_lengths, mask, o.skip_tolerance, o.extras);
}

TorchOptions options(bool causal, double scale, int query_positions, int64_t window_left,
                     int64_t window_right, double softcap, double dropout_p, uint64_t dropout_seed,
                     uint64_t dropout_offset, double skip_tolerance,
                     const std::optional<Int32Array>& cu_seqlens_q,
                     const std::optional<Int32Array>& cu_seqlens_k, int64_t max_seqlen_q,
                     int64_t max_seqlen_k) {
  if (query_positions < 0 || query_positions > 2)
    bad("query_positions must be 0 (lower right), 1 (upper left) or 2 (key lengths), got " +
        std::to_string(query_positions));
  TorchOptions o;
  o.causal = causal;
  o.scale = scale;
  o.skip_tolerance = skip_tolerance;
  o.extras.cu_seqlens_q = cu_seqlens_q;
  o.extras.cu_seqlens_k = cu_seqlens_k;
  o.extras.max_seqlen_q = max_seqlen_q;
  o.extras.max_seqlen_k = max_seqlen_k;
  o.extras.query_positions = static_cast<slope::QueryPositions>(query_positions);
  o.extras.window_left = window_left;
  o.extras.window_right = window_right;
  o.extras.softcap = softcap;
  o.extras.dropout_p = dropout_p;
  o.extras.dropout_seed = dropout_seed;
  o.extras.dropout_offset = dropout_offset;
  return o;
}

void forward(const FloatArray& q, const FloatArray& k, const FloatArray& v,
             const MutFloatArray& out, const MutFloatArray& lse,
             const std::optional<FloatArray>& sl, const std::optional<FloatArray>& sr,
             const std::optional<IndexArray>& key_lengths, const std::optional<AnyArray>& mask,
             const TorchOptions& o, const std::optional<FloatArray>& rel_params) {
  Call c;
  make_torch_call(c, q, k, v, sl, sr, key_lengths, mask, o);
  set_rel(c, o, rel_params);
  const int64_t rows = c.q.n[2];  // Tq, or total_q when packed
  const Tensor4 ov = out_view(FloatArray(out), "out", c.p, c.q.n[0], rows);
  c.p.out_strides = ov.s;
  float* lse_ptr = lse_data(FloatArray(lse), c.p, rows);
  nb::gil_scoped_release release;
  slope::attention_forward(c.p, c.in, const_cast<float*>(ov.data), lse_ptr);
}

// dq, dk and dv must have the strides of q, k and v (slope.torch allocates them with
// torch.empty_like); dout those of out.
void backward(const FloatArray& dout, const FloatArray& q, const FloatArray& k, const FloatArray& v,
              const FloatArray& out, const FloatArray& lse, const MutFloatArray& dq,
              const MutFloatArray& dk, const MutFloatArray& dv,
              const std::optional<MutFloatArray>& dsl, const std::optional<MutFloatArray>& dsr,
              const std::optional<FloatArray>& sl, const std::optional<FloatArray>& sr,
              const std::optional<IndexArray>& key_lengths, const std::optional<AnyArray>& mask,
              const TorchOptions& o, const std::optional<FloatArray>& rel_params,
              const std::optional<MutFloatArray>& drel) {
  Call c;
  make_torch_call(c, q, k, v, sl, sr, key_lengths, mask, o);
  set_rel(c, o, rel_params);
  slope::AttentionProblem& p = c.p;
  const int64_t rows = c.q.n[2];
  const Tensor4 ov = out_view(out, "out", p, c.q.n[0], rows);
  const Tensor4 dov = out_view(dout, "dout", p, c.q.n[0], rows);
  if (ov.s.b != dov.s.b || ov.s.h != dov.s.h || ov.s.t != dov.s.t)
    bad("dout must have the strides of out");
  p.out_strides = ov.s;
  const float* lse_ptr = lse_data(lse, p, rows);
  const Tensor4* inputs[3] = {&c.q, &c.k, &c.v};
  const MutFloatArray* grads[3] = {&dq, &dk, &dv};
  const char* names[3] = {"dq", "dk", "dv"};
  float* g[3];
  for (int i = 0; i < 3; ++i) {
    Tensor4 t = tensor4(FloatArray(*grads[i]), names[i], "like its input");
    if (p.cu_seqlens_q) t.s.b = 0;
    check_same_shape(t, *inputs[i], names[i], "its input", "");
    const slope::Strides& a = t.s;
    const slope::Strides& b = inputs[i]->s;
    if (a.b != b.b || a.h != b.h || a.t != b.t)
      bad(std::string(names[i]) + " must have the strides of its input");
    g[i] = const_cast<float*>(t.data);
  }
  const size_t n_slopes = static_cast<size_t>(p.slopes_stride_b ? p.B * p.H : p.H);
  auto slope_grad = [&](const std::optional<MutFloatArray>& a, const char* name) -> float* {
    if (!a) return nullptr;
    if (a->size() != n_slopes) bad(std::string(name) + " must have the size of its slopes");
    return a->data();
  };
  slope::AttentionGrads<float> grads_out{g[0], g[1], g[2], slope_grad(dsl, "dslopes_left"),
                                         slope_grad(dsr, "dslopes_right")};
  if (drel) {
    if (!rel_params || drel->size() != rel_params->size())
      bad("drel must have the size of rel_params");
    grads_out.drel = drel->data();
  }
  nb::gil_scoped_release release;
  slope::attention_backward(p, c.in, ov.data, dov.data, lse_ptr, grads_out);
}

}  // namespace

void bind_torch(nb::module_& m) {
  m.def("torch_options", &options, "causal"_a, "scale"_a, "query_positions"_a, "window_left"_a,
        "window_right"_a, "softcap"_a, "dropout_p"_a, "dropout_seed"_a, "dropout_offset"_a,
        "skip_tolerance"_a, "cu_seqlens_q"_a.none(), "cu_seqlens_k"_a.none(), "max_seqlen_q"_a,
        "max_seqlen_k"_a, "The options of slope.torch's operators, checked once.");
  nb::class_<TorchOptions>(m, "TorchOptions");
  m.def("torch_options_with_rel", &with_rel, "options"_a, "kind"_a, "num_buckets"_a,
        "max_distance"_a, "bidirectional"_a, "fire_hidden"_a, "fire_grid"_a,
        "The options with a learned relative bias (slope.relative_bias).");
  m.def("torch_forward", &forward, "q"_a, "k"_a, "v"_a, "out"_a, "lse"_a, "alibi_slopes"_a.none(),
        "alibi_slopes_right"_a.none(), "key_lengths"_a.none(), "attn_mask"_a.none(), "options"_a,
        "rel_params"_a.none() = nb::none(),
        "Writes out and lse in place (slope.torch's forward operator).");
  m.def("torch_backward", &backward, "dout"_a, "q"_a, "k"_a, "v"_a, "out"_a, "lse"_a, "dq"_a,
        "dk"_a, "dv"_a, "dslopes"_a.none(), "dslopes_right"_a.none(), "alibi_slopes"_a.none(),
        "alibi_slopes_right"_a.none(), "key_lengths"_a.none(), "attn_mask"_a.none(), "options"_a,
        "rel_params"_a.none() = nb::none(), "drel"_a.none() = nb::none(),
        "Writes dq, dk, dv and the slope gradients in place (slope.torch's backward operator).");
}

}  // namespace slope::python
