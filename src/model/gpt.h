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
#include <vector>

#include "model/dropout_mode.h"
#include "model/gpt_config.h"
#include "model/gpt_params.h"
#include "model/param_arena.h"
#include "model/stack_params.h"
#include "model/stack_slopes.h"

namespace slope::model {

// The parameters, their gradients and the table (params(), grads(), table(), zero_grad(), ...)
// are the ParamArena's; the training mode and the dropout seed (set_training(),
// set_dropout_seed(), ...) the DropoutMode's.
template <class Real>
class Gpt : public ParamArena<Real>, public DropoutMode {
 public:
  // Validates the config (slope::Error naming the field), lays out the parameters and
  // initialises them as nanoGPT does from `seed` (init_params).
  explicit Gpt(const GptConfig& config, uint64_t seed = kDefaultInitSeed);

  const GptConfig& config() const { return config_; }
  const StackOffsets& stack() const { return stack_; }         // where each tensor sits
  const StackSlopes<Real>& slopes() const { return slopes_; }  // each layer's ALiBi slopes

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
  Gpt(const GptConfig& config, GptLayout layout, uint64_t seed);

  GptConfig config_;
  StackOffsets stack_;
  StackSlopes<Real> slopes_;
  std::vector<Real> acts_;              // activations of the last forward, laid out for (B_, T_)
  std::vector<Real> grad_acts_;         // backward's scratch, allocated on the first backward
  std::vector<Real> pos_table_;         // (rows, C) `sinusoidal`: grown to the longest T seen
  std::vector<int32_t> idx_, targets_;  // (B, T) copies of the last forward's inputs

  int64_t B_ = 0, T_ = 0;
  bool has_targets_ = false;
};

extern template class Gpt<float>;
extern template class Gpt<double>;

}  // namespace slope::model
