// The parameters of a GPT: one stack (model/stack_params.h) under nanoGPT's `transformer.`
// prefix, with nanoGPT's state-dict names and shapes:
//
//   transformer.wte.weight            (V, C)   tied to lm_head; the arena keeps Vp rows, the
//                                              Vp − V padding rows are zero and stay zero
//   transformer.wpe.weight            (block_size, C)   `learned` only
//   transformer.h.{l}.ln_1.weight     (C)      .bias (C) when config.bias
//   transformer.h.{l}.attn.c_attn.weight  (3C, C)   .bias (3C)
//   transformer.h.{l}.attn.c_proj.weight  (C, C)    .bias (C)
//   transformer.h.{l}.attn.alibi_slopes   (H)       `alibi-learned` only; lower bound 0
//   transformer.h.{l}.ln_2.weight     (C)      .bias (C)
//   transformer.h.{l}.mlp.c_fc.weight     (4C, C)   .bias (4C)
//   transformer.h.{l}.mlp.c_proj.weight   (C, 4C)   .bias (C)
//   transformer.ln_f.weight           (C)      .bias (C)
//
// lm_head.weight is wte itself (nanoGPT ties them): it has no entry of its own; checkpoints
// write it as a copy so that PyTorch's load_state_dict(strict=True) finds both keys.
#pragma once

#include "model/gpt_config.h"
#include "model/stack_params.h"

namespace slope::model {

struct GptLayout {
  ParamLayout params;
  StackOffsets stack;
};

// The table of a config (validated first), in nanoGPT's state-dict order.
GptLayout gpt_layout(const GptConfig& config);

}  // namespace slope::model
