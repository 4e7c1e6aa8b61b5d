// Python bindings of the fused attention kernels: a thin layer over include/slope/attention.h.
// This file holds the module and the numpy API (slope.attention / attention_backward);
// slope.testing's functions are in bind_testing.cpp, the torch operators' in bind_torch.cpp, and
// the argument checks all three share in bind_args.{h,cpp}.
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

#include <cstdint>
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
void bind_testing(nb::module_& m);  // bind_testing.cpp
void bind_torch(nb::module_& m);    // bind_torch.cpp
}  // namespace slope::python

namespace {

using namespace slope::python;

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
  bind_testing(m);
  bind_torch(m);
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
