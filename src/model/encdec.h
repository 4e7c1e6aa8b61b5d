// A BERT-style encoder (masked-language-model objective) and an encoder–decoder (seq2seq), built
// like the GPT (model/gpt.h): one parameter arena, one activation arena, forward and backward
// as plain calls of the layers in src/nn.
//
//   encoder:  x = drop(wte[src] + pos)                     pos: wpe, a sinusoid table, or 0
//             per block (pre-LN): x += drop(c_proj(attention(c_attn(ln_1(x)))))
//                                 x += drop(mlp(ln_2(x)))
//             memory = ln_f(x)                             (B, S, C)
//             MLM:  logits = memory · wteᵀ                 (B, S, Vp), tied head
//   decoder:  y = drop(wte_dec[tgt])                       (seq2seq only; no position table)
//             per block: y += drop(c_proj(causal ALiBi attention(c_attn(ln_1(y)))))
//                        y += drop(c_proj(cross attention(c_q(ln_x(y)), c_kv(memory))))
//                        y += drop(mlp(ln_2(y)))
//             logits = ln_f(y) · wte_decᵀ                  (B, T, Vp_tgt), tied head
//   loss = mean cross-entropy over targets ≠ -1
//
// Encoder self-attention is bidirectional with the config's position scheme (encdec_config.h);
// padding is key lengths (src_lengths), never a mask tensor: a padded batch gives the real
// positions the outputs of each sequence run alone. Cross-attention has no position bias and
// sees only the source's real tokens. The decoder's own padding sits after its real tokens, so
// the causal mask already hides it; its targets are -1.
//
// Templated on the scalar like Gpt: EncDec<float> trains on the fused kernels, EncDec<double>
// runs the float64 reference for the gradient checks.
#pragma once

#include <cstdint>
#include <vector>

#include "model/dropout_mode.h"
#include "model/encdec_config.h"
#include "model/encdec_params.h"
#include "model/param_arena.h"
#include "model/stack_params.h"  // kDefaultInitSeed
#include "model/stack_slopes.h"

namespace slope::model {

// The parameters, their gradients and the table are the ParamArena's, the training mode and the
// dropout seed the DropoutMode's, as a Gpt's.
template <class Real>
class EncDec : public ParamArena<Real>, public DropoutMode {
 public:
  explicit EncDec(const EncDecConfig& config, uint64_t seed = kDefaultInitSeed);

  const EncDecConfig& config() const { return config_; }

  // Masked LM (arch encoder): idx (B, S) token ids, lengths (B) real tokens per row in [1, S]
  // (null: all S), targets (B, S) the original ids where the loss counts, -1 elsewhere and at
  // every padded position (slope::Error otherwise), or null. Returns the mean loss (NaN
  // without targets).
  Real forward_mlm(const int32_t* idx, const int32_t* lengths, const int32_t* targets, int64_t B,
                   int64_t S);

  // seq2seq: src (B, S) with src_lengths (B) in [1, S] (null: all S), tgt (B, T) the decoder's
  // input (<bos> + target), targets (B, T) the target + <eos>, -1 where padded, or null.
  Real forward_seq2seq(const int32_t* src, const int32_t* src_lengths, const int32_t* tgt,
                       const int32_t* targets, int64_t B, int64_t S, int64_t T);

  // ACCUMULATES d(mean loss of the last forward)/d(parameters) into grads().
  void backward();

  // (B, S or T, Vp) logits of the last forward (Vp of the output vocabulary).
  const Real* logits() const;

  // Inference (evaluation mode, no backward): encode a batch of sources once, then run the
  // decoder on prefixes tgt (B2, T) whose row r attends to source row rows[r] (beam search
  // runs several prefixes per source). Returns logits (B2, T, Vp_tgt), valid until the next
  // call.
  void encode(const int32_t* src, const int32_t* src_lengths, int64_t B, int64_t S);
  const Real* decode(const int32_t* tgt, const int32_t* rows, int64_t B2, int64_t T);

 private:
  EncDec(const EncDecConfig& config, EncDecLayout layout, uint64_t seed);
  void refresh_slopes();             // learned slopes sigmoid(θ) from the current parameters
  const Real* positions(int64_t T);  // the wpe rows or the sinusoid table, or null
  void check_length(const char* what, int64_t T) const;
  Real run_forward(const int32_t* src, const int32_t* src_lengths, const int32_t* tgt,
                   const int32_t* targets, int64_t B, int64_t S, int64_t T);

  EncDecConfig config_;
  StackOffsets encoder_, decoder_;  // decoder_: seq2seq only (no blocks otherwise)
  StackSlopes<Real> encoder_slopes_, decoder_slopes_;
  std::vector<Real> acts_, grad_acts_;
  std::vector<Real> pos_table_;
  std::vector<int32_t> src_, src_lengths_, tgt_, targets_;
  int64_t B_ = 0, S_ = 0, T_ = 0;  // the last forward's sizes (T_ = 0: encoder only)
  bool has_targets_ = false;
  // encode() / decode()
  std::vector<Real> infer_acts_, memory_, gathered_;
  std::vector<int32_t> memory_lengths_;
  int64_t memory_B_ = 0, memory_S_ = 0;
};

extern template class EncDec<float>;
extern template class EncDec<double>;

}  // namespace slope::model
