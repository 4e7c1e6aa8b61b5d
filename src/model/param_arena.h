// A model's parameters and their gradients: two arenas laid out by one name/shape table
// (DESIGN.md). What the optimizer, the checkpoints and the trainer see of every model (Gpt,
// EncDec); the models add their forward and backward.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

#include "model/param_table.h"

namespace slope::model {

template <class Real>
class ParamArena {
 public:
  explicit ParamArena(ParamTable table)
      : table_(std::move(table)),
        params_(static_cast<size_t>(table_.size()), Real(0)),
        grads_(params_.size(), Real(0)) {}

  const ParamTable& table() const { return table_; }
  int64_t num_params() const { return table_.num_params(); }

  // The parameter arena (table().size() elements) and one tensor of it by state-dict name
  // (slope::Error when absent).
  Real* params() { return params_.data(); }
  const Real* params() const { return params_.data(); }
  Real* param(std::string_view name) { return params_.data() + table_.at(name).offset; }
  const Real* param(std::string_view name) const { return params_.data() + table_.at(name).offset; }

  // The gradient arena, laid out like the parameters. A model's backward() adds to it.
  Real* grads() { return grads_.data(); }
  const Real* grads() const { return grads_.data(); }
  Real* grad(std::string_view name) { return grads_.data() + table_.at(name).offset; }
  void zero_grad() { std::fill(grads_.begin(), grads_.end(), Real(0)); }  // one memset

 private:
  ParamTable table_;
  std::vector<Real> params_;  // (table().size())
  std::vector<Real> grads_;   // (table().size())
};

}  // namespace slope::model
