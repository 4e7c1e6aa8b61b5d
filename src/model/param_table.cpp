// The arena's table of named tensors (see param_table.h).
#include "model/param_table.h"

#include <limits>
#include <optional>

#include "files/checked_size.h"
#include "slope/error.h"  // slope::Error

namespace slope::model {

int64_t ParamSpec::numel() const {
  // ParamTable::add checked the product, so this cannot fail for a tensor of a table.
  const std::optional<int64_t> n = files::shape_numel(shape);
  if (!n) throw Error("ParamTable: tensor " + name + " " + shape_string(shape) + " is too large");
  return *n;
}

const ParamSpec& ParamTable::add(std::string name, std::vector<int64_t> shape, int64_t reserve,
                                 double lower_bound) {
  if (find(name)) throw Error("ParamTable: tensor " + name + " is added twice");
  for (int64_t d : shape)
    if (d < 1) throw Error("ParamTable: tensor " + name + " has an empty dimension");
  // Shapes come from configs read from files (config.json's n_embd): a product that does not
  // fit int64_t, or an arena beyond kMaxArenaElements, is a config too large for any machine,
  // reported as such, never a wrapped size or a failed allocation.
  const auto too_large = [this](const std::string& tensor, const std::vector<int64_t>& dims) {
    return Error("ParamTable: tensor " + tensor + " " + shape_string(dims) + " after " +
                 std::to_string(size_) + " elements makes the arena larger than " +
                 std::to_string(kMaxArenaElements) +
                 " elements (256 GiB of float32): the model's config is far too large (check "
                 "n_embd, n_layer, vocab_size and block_size)");
  };
  const std::optional<int64_t> numel = files::shape_numel(shape);
  if (!numel) throw too_large(name, shape);
  ParamSpec spec;
  spec.name = std::move(name);
  spec.shape = std::move(shape);
  spec.decay = spec.shape.size() >= 2;
  spec.size = reserve > 0 ? reserve : *numel;
  spec.lower_bound = lower_bound;
  if (spec.size < *numel)
    throw Error("ParamTable: tensor " + spec.name + " reserves fewer elements than its shape");
  // size_ + kArenaAlign - 1 and offset + size must both fit int64_t.
  // size_ <= kMaxArenaElements, so neither sum below can overflow.
  if (spec.size > kMaxArenaElements ||
      (size_ + kArenaAlign - 1) / kArenaAlign * kArenaAlign + spec.size > kMaxArenaElements)
    throw too_large(spec.name, spec.shape);
  spec.offset = (size_ + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
  size_ = spec.offset + spec.size;
  specs_.push_back(std::move(spec));
  return specs_.back();
}

const ParamSpec* ParamTable::find(std::string_view name) const {
  for (const ParamSpec& s : specs_)
    if (s.name == name) return &s;
  return nullptr;
}

const ParamSpec& ParamTable::at(std::string_view name) const {
  if (const ParamSpec* s = find(name)) return *s;
  throw Error("no parameter named " + std::string(name) + " in this model");
}

int64_t ParamTable::num_params() const {
  int64_t n = 0;
  for (const ParamSpec& s : specs_) n += s.numel();
  return n;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace slope::model
