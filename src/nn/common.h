// What every layer shares: the scalar types it is compiled for and its argument checks.
//
// A layer is a *_forward / *_backward pair over flat, contiguous buffers (llm.c style): outputs
// first, then inputs, then weights, then sizes. Backward ACCUMULATES (+=) into every gradient it
// is given, so one zero_grad per step serves gradient accumulation and shared weights alike.
// Layers are templates on the scalar, compiled for float (training) and double (the gradient
// checks run the very same code in float64); nothing else is instantiated.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <type_traits>
#include <utility>

#include "slope/error.h"  // slope::Error

namespace slope::nn {

// How a backward writes its input gradient: `accumulate` adds (+=; the default, since a tensor
// read by several layers sums their gradients), `overwrite` assigns (=) and never reads the old
// contents, for the first writer into a scratch buffer, which then needs no zeroing first.
enum class GradWrite { accumulate, overwrite };

// A pointer argument that may be null (an optional bias, a gradient not wanted) is written
// `const NoDeduce<Real>*`: it takes no part in deducing Real, so a literal nullptr is accepted.
template <class Real>
using NoDeduce = std::type_identity_t<Real>;

// Throws Error unless every size is positive: "layernorm: C must be positive, got 0".
void check_sizes(const char* layer, std::initializer_list<std::pair<const char*, int64_t>> sizes);

// Throws Error when a required pointer is null: "matmul backward: dweight must be given".
void check_given(const char* layer,
                 std::initializer_list<std::pair<const char*, const void*>> ptrs);

}  // namespace slope::nn
