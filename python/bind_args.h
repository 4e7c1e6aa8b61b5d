// Internal to the Python module: the arguments of the bindings, checked once and turned into an
// AttentionProblem. Shared by the numpy API (_slope.cpp), slope.testing (bind_testing.cpp) and
// the torch operators (bind_torch.cpp).
//
// This is the one place where the shapes of the Python arguments are checked against each other;
// the values (slopes, scale, skip_tolerance, strides, cu_seqlens) are then checked by
// slope::validate inside the kernels. Every problem becomes a ValueError that names the
// argument: our own checks raise nb::value_error, and slope::Error is translated in _slope.cpp.
#pragma once

#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "slope/attention.h"

namespace slope::python {

namespace nb = nanobind;

// Arguments as nanobind receives them. Float tensors are typed (float32 on the CPU, any ndim so
// that a wrong ndim is a ValueError here rather than a TypeError in nanobind's dispatcher).
using FloatArray = nb::ndarray<const float, nb::device::cpu>;
using IndexArray = nb::ndarray<const int64_t, nb::device::cpu>;
using Int32Array = nb::ndarray<const int32_t, nb::device::cpu>;  // cu_seqlens
using AnyArray = nb::ndarray<nb::ro, nb::device::cpu>;  // attn_mask: bool or float32
using NumpyArray = nb::ndarray<nb::numpy, float>;

[[noreturn]] inline void bad(const std::string& what) { throw nb::value_error(what.c_str()); }

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

// The (B, H, T, D) view of a float32 array; ValueError for a wrong ndim, an empty dimension or a
// strided last dimension.
Tensor4 tensor4(const FloatArray& a, const char* name, const char* dims);

// ValueError unless a has the sizes of ref.
void check_same_shape(const Tensor4& a, const Tensor4& ref, const char* name, const char* ref_name,
                      const char* dims);

// Copies a strided tensor into `buf` in C order and points `t` at it.
void make_contiguous(Tensor4& t, std::vector<float>& buf);

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
  std::vector<int32_t> cu_seqlens_q, cu_seqlens_k;
  std::vector<uint8_t> mask_bool;
  std::vector<float> mask_add;
  std::vector<float> copies[5];  // q, k, v, out, dout (backward only)

  Call() = default;
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;
};

// What the torch operators add to the numpy API's arguments (issue 12): packed sequences, where
// the queries sit, a sliding window, softcap and dropout. The defaults are the numpy API's.
struct Extras {
  std::optional<Int32Array> cu_seqlens_q, cu_seqlens_k;  // (B + 1) each, or neither
  int64_t max_seqlen_q = 0, max_seqlen_k = 0;             // with cu_seqlens: Tq and Tk
  slope::QueryPositions query_positions = slope::QueryPositions::kLowerRight;
  int64_t window_left = -1, window_right = -1;
  double softcap = 0.0, dropout_p = 0.0;
  uint64_t dropout_seed = 0, dropout_offset = 0;
};

// Builds the problem from the Python arguments; shape consistency is checked here, once.
// With packed sequences q, k and v arrive as (1, H, total, D) views and B becomes the number of
// documents. Slopes are (H,) or (B, H).
void make_call(Call& c, const FloatArray& q, const FloatArray& k, const FloatArray& v, bool causal,
               std::optional<double> scale, const std::optional<FloatArray>& slopes,
               const std::optional<FloatArray>& slopes_right,
               const std::optional<IndexArray>& key_lengths, const std::optional<AnyArray>& mask,
               std::optional<double> skip_tolerance, const Extras& extras = {});

}  // namespace slope::python
