// The parameters of an encoder or encoder–decoder: an `encoder.` stack and, for a seq2seq, a
// `decoder.` stack (model/stack_params.h gives each stack's names and shapes):
//
//   {s}.wte.weight        (V, C)  s = encoder: vocab_size; decoder: tgt_vocab_size; each tied
//                                 to its stack's output head (MLM head on the encoder,
//                                 next-phoneme head on the decoder)
//   encoder.wpe.weight    (block_size, C)   `learned` only (the decoder's positions are ALiBi)
//   encoder.h.{l}.attn.alibi_theta_left / _right   (H)   `alibi-learned`: slopes sigmoid(θ)
//   decoder.h.{l}.attn.alibi_theta                 (H)   `alibi-learned`: causal, one side
//   decoder.h.{l}.ln_x, cross.c_q, cross.c_kv, cross.c_proj   cross-attention to the encoder
//
// Initialisation: nanoGPT's, plus θ ~ N(−2, 1) for learned slopes.
#pragma once

#include "model/encdec_config.h"
#include "model/stack_params.h"

namespace slope::model {

struct EncDecLayout {
  ParamLayout params;
  StackOffsets encoder;
  StackOffsets decoder;  // seq2seq only (no blocks otherwise)
};

EncDecLayout encdec_layout(const EncDecConfig& config);  // validates the config

}  // namespace slope::model
