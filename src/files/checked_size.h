// Sizes that come from outside (a file's header, a config's fields) multiplied and added without
// undefined behaviour: a shape of (2^40, 2^40) is an error naming the file, not a wrapped
// product that passes the next check by accident.
//
// Header-only (every layer uses it: files, model, io, data). Each function either returns the
// exact result or reports the overflow; callers that read outside bytes turn it into a
// slope::Error naming the file and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "slope/error.h"

namespace slope::files {

// a·b, or nullopt when it does not fit T (any integer type; negative operands allowed).
template <class T>
constexpr std::optional<T> mul_fits(T a, T b) {
  T r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// a + b, or nullopt when it does not fit T.
template <class T>
constexpr std::optional<T> add_fits(T a, T b) {
  T r;
  if (__builtin_add_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// The product of the dimensions of a shape (1 for a scalar ()), or nullopt when a dimension is
// negative or the product does not fit int64_t.
inline std::optional<int64_t> shape_numel(std::span<const int64_t> shape) {
  int64_t n = 1;
  for (const int64_t d : shape) {
    if (d < 0) return std::nullopt;
    const std::optional<int64_t> next = mul_fits(n, d);
    if (!next) return std::nullopt;
    n = *next;
  }
  return n;
}

// a·b, throwing slope::Error("<what>: <a> × <b> overflows") when it does not fit.
template <class T>
T checked_mul(T a, T b, const std::string& what) {
  const std::optional<T> r = mul_fits(a, b);
  if (!r)
    throw Error(what + ": " + std::to_string(a) + " x " + std::to_string(b) +
                " does not fit a 64-bit size");
  return *r;
}

// a + b, throwing slope::Error naming `what` when it does not fit.
template <class T>
T checked_add(T a, T b, const std::string& what) {
  const std::optional<T> r = add_fits(a, b);
  if (!r)
    throw Error(what + ": " + std::to_string(a) + " + " + std::to_string(b) +
                " does not fit a 64-bit size");
  return *r;
}

}  // namespace slope::files
