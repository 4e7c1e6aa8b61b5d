// The encoder / seq2seq parameter table (see encdec_params.h).
#include "model/encdec_params.h"

namespace slope::model {

namespace {

StackSpec stack_spec(const EncDecConfig& c, bool decoder) {
  const bool wpe = c.pos == Position::learned && !decoder;  // the decoder's positions: ALiBi
  return {.prefix = decoder ? "decoder." : "encoder.",
          .V = decoder ? c.tgt_vocab_size : c.vocab_size,
          .Vp = decoder ? c.padded_tgt_vocab_size() : c.padded_vocab_size(),
          .L = decoder ? c.n_dec_layer : c.n_layer,
          .C = c.n_embd,
          .H = c.n_head,
          .wpe_rows = wpe ? c.block_size : 0,
          .bias = c.bias,
          .cross = decoder,
          .slopes = slope_scheme(decoder ? StackRole::decoder : StackRole::encoder, c.pos),
          // Kerple and T5 (bidirectional buckets) in the encoder; a seq2seq decoder keeps
          // Press's causal slopes, as with every scheme but alibi-learned.
          .rel = decoder ? RelativeBias<float>{} : relative_bias_of(c.pos, true)};
}

}  // namespace

EncDecLayout encdec_layout(const EncDecConfig& c) {
  validate(c);
  EncDecLayout layout;
  layout.encoder = add_stack(layout.params, stack_spec(c, false));
  if (c.arch == Arch::seq2seq) layout.decoder = add_stack(layout.params, stack_spec(c, true));
  return layout;
}

}  // namespace slope::model
