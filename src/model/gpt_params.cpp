// The GPT's parameter table (see gpt_params.h).
#include "model/gpt_params.h"

namespace slope::model {

GptLayout gpt_layout(const GptConfig& c) {
  validate(c);
  GptLayout layout;
  layout.stack =
      add_stack(layout.params, {.prefix = "transformer.",
                                .V = c.vocab_size,
                                .Vp = c.padded_vocab_size(),
                                .L = c.n_layer,
                                .C = c.n_embd,
                                .H = c.n_head,
                                .wpe_rows = c.pos == Position::learned ? c.block_size : 0,
                                .bias = c.bias,
                                .cross = false,
                                .slopes = slope_scheme(StackRole::gpt, c.pos),
                                .rel = relative_bias_of(c.pos, false)});
  return layout;
}

}  // namespace slope::model
