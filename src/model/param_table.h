// Where each named tensor of a model sits in one contiguous arena.
//
// Parameters, their gradients and the AdamW moments are each one flat buffer laid out by the
// same table (DESIGN.md): zero_grad is one memset, an optimizer step is one pass, and a
// checkpoint is the table plus the bytes. Names are the PyTorch state-dict keys, shapes are the
// state dict's, so a PyTorch user can load what slope writes and the other way round.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

namespace slope::model {

// Tensors start at a multiple of this many elements (64 bytes in float: one cache line, an
// AVX-512 vector). The gaps between them are zero and stay zero.
constexpr int64_t kArenaAlign = 16;
// The most elements an arena may hold: 2^36 (256 GiB of float32), beyond any machine slope
// trains or samples on. Shapes come from configs read from files; a table that would grow past
// this is an error when it is laid out, not a failed allocation (std::bad_alloc) later.
constexpr int64_t kMaxArenaElements = int64_t{1} << 36;

struct ParamSpec {
  std::string name;            // the state-dict key, "transformer.h.0.attn.c_attn.weight"
  std::vector<int64_t> shape;  // the state dict's shape, (3C, C): linear weights are (out, in)
  int64_t offset = 0;          // first element in the arena
  int64_t size = 0;            // elements reserved: numel(), or more for padded rows (wte's Vp)
  bool decay = false;          // AdamW weight decay, nanoGPT's rule: every tensor of dim >= 2
  // The optimizer keeps every entry >= this (projected steps): a GPT's learned ALiBi slopes stay
  // >= 0. −∞ for an unconstrained tensor.
  double lower_bound = -std::numeric_limits<double>::infinity();

  int64_t numel() const;  // product of the shape; the first numel() reserved elements
};

class ParamTable {
 public:
  // Appends a tensor at the next aligned offset. `reserve` (>= numel, 0: numel) keeps room for
  // rows beyond the state dict's shape, which come after the real ones: the tensor of the
  // state dict is always the first numel() elements. Throws Error on a repeated name.
  const ParamSpec& add(std::string name, std::vector<int64_t> shape, int64_t reserve = 0,
                       double lower_bound = -std::numeric_limits<double>::infinity());

  const std::vector<ParamSpec>& specs() const { return specs_; }
  const ParamSpec* find(std::string_view name) const;  // null when absent
  const ParamSpec& at(std::string_view name) const;    // throws Error naming the tensor
  int64_t size() const { return size_; }               // arena elements, gaps included
  int64_t num_params() const;                          // Σ numel(), what a user calls size

 private:
  std::vector<ParamSpec> specs_;
  int64_t size_ = 0;
};

// "(3, 8)": shapes in error messages, as PyTorch prints them.
std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace slope::model
