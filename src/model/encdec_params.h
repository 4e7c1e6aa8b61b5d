// The parameters of an encoder or encoder–decoder: their table, in nanoGPT's naming style with
// an `encoder.` and a `decoder.` stack, and their initialisation (nanoGPT's, plus θ ~ N(−2, 1)
// for learned slopes).
//
//   {s}.wte.weight                    (V, C)  s = encoder: vocab_size; decoder: tgt_vocab_size;
//                                             each tied to its stack's output head (MLM head on
//                                             the encoder, next-phoneme head on the decoder);
//                                             the arena keeps padded rows, zero forever
//   encoder.wpe.weight                (block_size, C)      `learned` only
//   {s}.h.{l}.ln_1.weight / .bias     (C)
//   {s}.h.{l}.attn.c_attn.weight      (3C, C)  .bias (3C)
//   {s}.h.{l}.attn.c_proj.weight      (C, C)   .bias (C)
//   encoder.h.{l}.attn.alibi_theta_left / _right   (H)   `alibi-learned`: slopes sigmoid(θ)
//   decoder.h.{l}.attn.alibi_theta                 (H)   `alibi-learned`: causal, one side
//   decoder.h.{l}.ln_x.weight / .bias (C)      cross-attention to the encoder's output:
//   decoder.h.{l}.cross.c_q.weight    (C, C)   .bias (C)    queries from the decoder
//   decoder.h.{l}.cross.c_kv.weight   (2C, C)  .bias (2C)   keys and values from the encoder
//   decoder.h.{l}.cross.c_proj.weight (C, C)   .bias (C)
//   {s}.h.{l}.ln_2, mlp.c_fc (4C, C), mlp.c_proj (C, 4C)
//   {s}.ln_f.weight / .bias           (C)
#pragma once

#include <cstdint>
#include <vector>

#include "model/encdec_config.h"
#include "model/gpt_params.h"

namespace slope::model {

struct EncDecBlockOffsets {
  GptBlockOffsets self;                          // alibi_slopes unused (kAbsent)
  int64_t theta_left = kAbsent;                  // (H) alibi-learned
  int64_t theta_right = kAbsent;                 // (H) alibi-learned, encoder only
  int64_t ln_x_w = kAbsent, ln_x_b = kAbsent;    // decoder only
  int64_t xq_w = kAbsent, xq_b = kAbsent;        // (C, C), (C)
  int64_t xkv_w = kAbsent, xkv_b = kAbsent;      // (2C, C), (2C)
  int64_t xproj_w = kAbsent, xproj_b = kAbsent;  // (C, C), (C)
};

struct StackOffsets {
  int64_t wte = kAbsent, wpe = kAbsent, ln_f_w = kAbsent, ln_f_b = kAbsent;
  std::vector<EncDecBlockOffsets> blocks;
};

struct EncDecLayout {
  ParamTable table;
  std::vector<ParamInit> init;  // per table entry
  StackOffsets encoder;
  StackOffsets decoder;  // seq2seq only (no blocks otherwise)
};

EncDecLayout encdec_layout(const EncDecConfig& config);  // validates the config

}  // namespace slope::model
