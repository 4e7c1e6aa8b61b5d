// The arena's table of named tensors (see param_table.h).
#include "model/param_table.h"

#include "slope/error.h"  // slope::Error

namespace slope::model {

int64_t ParamSpec::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

const ParamSpec& ParamTable::add(std::string name, std::vector<int64_t> shape, int64_t reserve,
                                 double lower_bound) {
  if (find(name)) throw Error("ParamTable: tensor " + name + " is added twice");
  for (int64_t d : shape)
    if (d < 1) throw Error("ParamTable: tensor " + name + " has an empty dimension");
  ParamSpec spec;
  spec.name = std::move(name);
  spec.shape = std::move(shape);
  spec.decay = spec.shape.size() >= 2;
  spec.size = reserve > 0 ? reserve : spec.numel();
  spec.lower_bound = lower_bound;
  if (spec.size < spec.numel())
    throw Error("ParamTable: tensor " + spec.name + " reserves fewer elements than its shape");
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
