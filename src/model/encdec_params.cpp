// The encoder / seq2seq parameter table (see encdec_params.h).
#include "model/encdec_params.h"

#include <string>

namespace slope::model {

namespace {

StackOffsets add_stack(LayoutBuilder& b, const EncDecConfig& c, bool decoder) {
  const int64_t C = c.n_embd, H = c.n_head;
  const std::string s = decoder ? "decoder." : "encoder.";
  const int64_t V = decoder ? c.tgt_vocab_size : c.vocab_size;
  StackOffsets st;
  st.wte = b.add(s + "wte.weight", {V, C}, ParamInit::normal, EncDecConfig::pad_vocab(V) * C);
  if (c.pos == Position::learned && !decoder)  // the decoder's positions are its ALiBi
    st.wpe = b.add(s + "wpe.weight", {c.block_size, C}, ParamInit::normal);
  const int64_t L = decoder ? c.n_dec_layer : c.n_layer;
  for (int64_t l = 0; l < L; ++l) {
    const std::string h = s + "h." + std::to_string(l) + ".";
    EncDecBlockOffsets o;
    GptBlockOffsets& a = o.self;
    a.ln_1_w = b.add(h + "ln_1.weight", {C}, ParamInit::ones);
    a.ln_1_b = b.add_bias(c.bias, h + "ln_1.bias", C);
    a.c_attn_w = b.add(h + "attn.c_attn.weight", {3 * C, C}, ParamInit::normal);
    a.c_attn_b = b.add_bias(c.bias, h + "attn.c_attn.bias", 3 * C);
    a.attn_proj_w = b.add(h + "attn.c_proj.weight", {C, C}, ParamInit::normal_residual);
    a.attn_proj_b = b.add_bias(c.bias, h + "attn.c_proj.bias", C);
    a.alibi_slopes = kAbsent;
    if (c.pos == Position::alibi_learned) {
      if (decoder) {
        o.theta_left = b.add(h + "attn.alibi_theta", {H}, ParamInit::alibi_theta);
      } else {
        o.theta_left = b.add(h + "attn.alibi_theta_left", {H}, ParamInit::alibi_theta);
        o.theta_right = b.add(h + "attn.alibi_theta_right", {H}, ParamInit::alibi_theta);
      }
    }
    if (decoder) {
      o.ln_x_w = b.add(h + "ln_x.weight", {C}, ParamInit::ones);
      o.ln_x_b = b.add_bias(c.bias, h + "ln_x.bias", C);
      o.xq_w = b.add(h + "cross.c_q.weight", {C, C}, ParamInit::normal);
      o.xq_b = b.add_bias(c.bias, h + "cross.c_q.bias", C);
      o.xkv_w = b.add(h + "cross.c_kv.weight", {2 * C, C}, ParamInit::normal);
      o.xkv_b = b.add_bias(c.bias, h + "cross.c_kv.bias", 2 * C);
      o.xproj_w = b.add(h + "cross.c_proj.weight", {C, C}, ParamInit::normal_residual);
      o.xproj_b = b.add_bias(c.bias, h + "cross.c_proj.bias", C);
    }
    a.ln_2_w = b.add(h + "ln_2.weight", {C}, ParamInit::ones);
    a.ln_2_b = b.add_bias(c.bias, h + "ln_2.bias", C);
    a.c_fc_w = b.add(h + "mlp.c_fc.weight", {4 * C, C}, ParamInit::normal);
    a.c_fc_b = b.add_bias(c.bias, h + "mlp.c_fc.bias", 4 * C);
    a.mlp_proj_w = b.add(h + "mlp.c_proj.weight", {C, 4 * C}, ParamInit::normal_residual);
    a.mlp_proj_b = b.add_bias(c.bias, h + "mlp.c_proj.bias", C);
    st.blocks.push_back(o);
  }
  st.ln_f_w = b.add(s + "ln_f.weight", {C}, ParamInit::ones);
  st.ln_f_b = b.add_bias(c.bias, s + "ln_f.bias", C);
  return st;
}

}  // namespace

EncDecLayout encdec_layout(const EncDecConfig& c) {
  validate(c);
  EncDecLayout layout;
  LayoutBuilder b{layout.table, layout.init};
  layout.encoder = add_stack(b, c, false);
  if (c.arch == Arch::seq2seq) layout.decoder = add_stack(b, c, true);
  return layout;
}

}  // namespace slope::model
