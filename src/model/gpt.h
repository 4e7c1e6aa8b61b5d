// A GPT in nanoGPT's shape, trained llm.c style: every parameter in one arena, every
// activation of a (B, T) batch in another, forward and backward as plain calls of the layers
// in src/nn.
//
//   x = drop(wte[idx] + pos[t])                     pos: wpe (learned), a sinusoid table, or 0
//   for each block:                                   (pre-LN)
//     x += drop(c_proj(attention(c_attn(ln_1(x)))))   causal, per-head ALiBi slopes or none
//     x += drop(c_proj(gelu(c_fc(ln_2(x)))))
//   logits = ln_f(x) · wteᵀ                          lm_head tied to wte, (B, T, Vp)
//   loss = mean cross-entropy over targets ≠ -1
//
// Dropout (config.dropout, training mode only) acts on the embeddings and on both residual
// branches, as nanoGPT's transformer.drop, attn.resid_dropout and mlp.dropout do. nanoGPT also
// drops attention probabilities (attn.attn_dropout); the fused attention kernel never forms
// the probability matrix, so that one is not possible here: a model trained with dropout > 0
// sees slightly less noise than nanoGPT's.
//
// Templated on the scalar: Gpt<float> trains (the fused attention kernels), Gpt<double> runs
// the same code on slope's float64 attention reference for the gradient checks.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "model/encdec_params.h"  // StackOffsets
#include "model/gpt_config.h"
#include "model/gpt_params.h"
#include "model/param_table.h"

namespace slope::model {

constexpr uint64_t kDefaultInitSeed = 1337;  // nanoGPT's torch.manual_seed(1337)

template <class Real>
class Gpt {
 public:
  // Validates the config (slope::Error naming the field), lays out the parameters and
  // initialises them as nanoGPT does (gpt_init) from `seed`.
  explicit Gpt(const GptConfig& config, uint64_t seed = kDefaultInitSeed);

  const GptConfig& config() const { return config_; }
  const GptLayout& layout() const { return layout_; }
  const ParamTable& table() const { return layout_.table; }
  int64_t num_params() const { return layout_.table.num_params(); }

  // The parameter arena (table().size() elements) and one tensor of it by state-dict name
  // (slope::Error when absent).
  Real* params() { return params_.data(); }
  const Real* params() const { return params_.data(); }
  Real* param(std::string_view name) { return params_.data() + table().at(name).offset; }
  const Real* param(std::string_view name) const {
    return params_.data() + table().at(name).offset;
  }

  // The gradient arena, laid out like the parameters. backward() adds to it.
  Real* grads() { return grads_.data(); }
  const Real* grads() const { return grads_.data(); }
  Real* grad(std::string_view name) { return grads_.data() + table().at(name).offset; }
  void zero_grad();  // one memset

  // Training mode turns dropout on (evaluation, the default, turns it off), like
  // nn.Module.train() / .eval().
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }

  // The dropout masks of the k-th training forward come from nn::dropout_seed(run_seed, k,
  // site); forwards count from `next_forward`. Set it when resuming a run, or to draw one
  // mask again (the gradient checks).
  void set_dropout_seed(uint64_t run_seed, uint64_t next_forward = 0) {
    dropout_run_seed_ = run_seed;
    dropout_forward_count_ = next_forward;
  }
  uint64_t dropout_forwards() const { return dropout_forward_count_; }  // training forwards so far

  // Runs the model on idx (B, T) and keeps what backward() needs. With targets (B, T, ids in
  // [0, V) or -1 to ignore) returns the mean cross-entropy; without (null), returns NaN and
  // backward() is not possible. T may exceed block_size, except with learned positions
  // (slope::Error: crop the input). The activation arena grows to the largest B·T seen.
  Real forward(const int32_t* idx, const int32_t* targets, int64_t B, int64_t T);

  // ACCUMULATES d(mean loss of the last forward)/d(parameters) into grads(). May be called
  // more than once per forward (each call adds the gradient again).
  void backward();

  // (B, T, Vp) of the last forward, Vp = config().padded_vocab_size(); columns from
  // vocab_size on are 0 (wte's padding rows) and carry no probability in the loss.
  const Real* logits() const;
  int64_t batch_size() const { return B_; }  // B of the last forward, 0 before the first
  int64_t seq_len() const { return T_; }     // T of the last forward

 private:
  const Real* fixed_or_learned_slopes(const Real* base, int64_t block) const;
  double dropout_p() const { return training_ ? config_.dropout : 0.0; }

  GptConfig config_;
  GptLayout layout_;
  StackOffsets stack_;                  // layout_'s blocks as model/stack.h reads them
  std::vector<Real> params_;            // (table().size())
  std::vector<Real> grads_;             // (table().size())
  std::vector<Real> acts_;              // activations of the last forward, laid out for (B_, T_)
  std::vector<Real> grad_acts_;         // backward's scratch, allocated on the first backward
  std::vector<Real> alibi_slopes_;      // (H) `alibi`: Press's slopes, fixed
  std::vector<Real> pos_table_;         // (rows, C) `sinusoidal`: grown to the longest T seen
  std::vector<int32_t> idx_, targets_;  // (B, T) copies of the last forward's inputs

  int64_t B_ = 0, T_ = 0;
  bool has_targets_ = false;
  bool training_ = false;
  uint64_t dropout_run_seed_ = 0;
  uint64_t dropout_forward_count_ = 0;  // training forwards so far
  uint64_t dropout_step_ = 0;           // the count the last forward drew its masks with
  double last_p_ = 0.0;                 // the dropout probability of the last forward
};

extern template class Gpt<float>;
extern template class Gpt<double>;

}  // namespace slope::model
