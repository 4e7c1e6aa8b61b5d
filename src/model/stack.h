// One stack of pre-LN transformer blocks, forward and backward, over the layers of src/nn: what
// the GPT (model/gpt.h), the encoder and the seq2seq decoder (model/encdec.h) all run.
//
//   x = drop(wte[idx] + pos)
//   per block: x += drop(c_proj(attention(c_attn(ln_1(x)))))       bias and padding: StackCall
//              x += drop(c_proj(cross(c_q(ln_x(x)), c_kv(memory))))  only when S > 0
//              x += drop(c_proj(gelu(c_fc(ln_2(x)))))
//   out = ln_f(x)
//
// Internal to src/model: the activations and offsets are the models' own arenas' layout.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "model/arena.h"
#include "model/stack_params.h"
#include "model/stack_slopes.h"
#include "nn/layers.h"
#include "nn/profile.h"

namespace slope::model {

template <class Real>
struct BlockActs {
  Real *ln_1, *ln_1_mean, *ln_1_rstd;  // (B,T,C), (B,T), (B,T)
  Real* qkv;                           // (B,T,3C)
  Real* atty;                          // (B,T,C)
  Real* att_lse;                       // (B,H,T)
  Real* res_2;                         // (B,T,C) after self-attention
  // The cross sub-block (decoder only; null in an encoder).
  Real *ln_x, *ln_x_mean, *ln_x_rstd;  // (B,T,C), (B,T), (B,T)
  Real* xq;                            // (B,T,C)
  Real* xkv;                           // (B,S,2C) from the memory
  Real* xatty;                         // (B,T,C)
  Real* xatt_lse;                      // (B,H,T)
  Real* res_x;                         // (B,T,C) after cross-attention
  Real *ln_2, *ln_2_mean, *ln_2_rstd;  // (B,T,C), (B,T), (B,T)
  Real *fch, *fch_gelu;                // (B,T,4C)
  Real* res_3;                         // (B,T,C) the block's output

  const Real* mlp_in() const { return res_x ? res_x : res_2; }
};

template <class Real>
struct StackActs {
  Real* encoded;  // (B,T,C)
  std::vector<BlockActs<Real>> blocks;
  Real *ln_f, *ln_f_mean, *ln_f_rstd;  // (B,T,C), (B,T), (B,T)
  const Real* last() const { return blocks.empty() ? encoded : blocks.back().res_3; }
};

// S > 0 carves the cross sub-blocks (a decoder over a memory of S positions).
template <class Real>
StackActs<Real> carve_stack(Carver<Real>& a, int64_t L, int64_t B, int64_t T, int64_t C, int64_t H,
                            int64_t S) {
  const int64_t BT = B * T;
  StackActs<Real> st;
  st.encoded = a.take(BT * C);
  for (int64_t l = 0; l < L; ++l) {
    BlockActs<Real> k{};
    k.ln_1 = a.take(BT * C), k.ln_1_mean = a.take(BT), k.ln_1_rstd = a.take(BT);
    k.qkv = a.take(BT * 3 * C), k.atty = a.take(BT * C), k.att_lse = a.take(B * H * T);
    k.res_2 = a.take(BT * C);
    if (S > 0) {
      k.ln_x = a.take(BT * C), k.ln_x_mean = a.take(BT), k.ln_x_rstd = a.take(BT);
      k.xq = a.take(BT * C), k.xkv = a.take(B * S * 2 * C), k.xatty = a.take(BT * C);
      k.xatt_lse = a.take(B * H * T), k.res_x = a.take(BT * C);
    }
    k.ln_2 = a.take(BT * C), k.ln_2_mean = a.take(BT), k.ln_2_rstd = a.take(BT);
    k.fch = a.take(BT * 4 * C), k.fch_gelu = a.take(BT * 4 * C), k.res_3 = a.take(BT * C);
    st.blocks.push_back(k);
  }
  st.ln_f = a.take(BT * C), st.ln_f_mean = a.take(BT), st.ln_f_rstd = a.take(BT);
  return st;
}

// The backward's scratch for N positions of a stack (N = B·max(S, T) serves both stacks of a
// seq2seq) and a memory of S positions (0 without cross-attention), plus the logits' gradient.
template <class Real>
struct GradActs {
  Real* dlogits;           // (logits_size)
  Real* dresidual;         // (N, C) carried down through a stack's blocks
  Real* dbranch;           // (N, C) a branch's gradient before its dropout
  Real* dsmall;            // (N, C)
  Real *dfch_gelu, *dfch;  // (N, 4C)
  Real* dqkv;              // (N, 3C); d(xq) in a cross sub-block
  Real* scratch;           // (N, 3C) the attention backward's workspace
  Real* dxkv;              // (B, S, 2C)
  Real* dmemory;           // (B, S, C) d(loss)/d(encoder output), summed over the decoder's blocks
};

template <class Real>
GradActs<Real> carve_grad_acts(Carver<Real>& a, int64_t logits_size, int64_t N, int64_t C,
                               int64_t B, int64_t S) {
  GradActs<Real> g;
  g.dlogits = a.take(logits_size);
  g.dresidual = a.take(N * C), g.dbranch = a.take(N * C), g.dsmall = a.take(N * C);
  g.dfch_gelu = a.take(N * 4 * C), g.dfch = a.take(N * 4 * C);
  g.dqkv = a.take(N * 3 * C), g.scratch = a.take(N * 3 * C);
  g.dxkv = a.take(B * S * 2 * C), g.dmemory = a.take(B * S * C);
  return g;
}

// Dropout call sites: a GPT's or an encoder's embedding 0, its block l 1 + 2l (attention) and
// 2 + 2l (MLP); a seq2seq decoder's from kDecoderSites: embedding, then 3 per block (self,
// cross, MLP).
constexpr uint64_t kDecoderSites = 1u << 20;
inline uint64_t site(bool decoder, int64_t block, int branch) {  // branch 0 self, 1 cross, 2 MLP
  if (!decoder) return block < 0 ? 0 : 1 + 2 * static_cast<uint64_t>(block) + (branch == 2);
  return kDecoderSites + (block < 0 ? 0 : 1 + 3 * static_cast<uint64_t>(block) + branch);
}

// One stack's call: what it reads besides its activations.
template <class Real>
struct StackCall {
  const StackOffsets* so;
  bool decoder;  // a seq2seq decoder's dropout sites (the cross sub-block comes with S > 0)
  int64_t B, T, C, H, V;
  const int32_t* idx;             // (B, T)
  const Real* pos;                // (T, C) added to the embedding, or null
  nn::AttentionBias<Real> bias;   // causal, key lengths and the relative bias's shape; slopes
                                  // and relative-bias parameters set per layer
  const Real* memory;             // (B, S, C) the encoder output (decoder only)
  const int32_t* memory_lengths;  // (B) or null
  int64_t S;
  nn::Activation act = nn::Activation::gelu;  // the MLP's GELU (GPT-2's: gelu_tanh)
};

// Runs one stack over acts st (embedding, blocks, ln_f), each layer's attention with its slopes
// (refreshed by the caller for P). `drop` applies dropout in place at a call site, or nothing.
template <class Real, class Drop>
void stack_forward(const StackActs<Real>& st, Real* branch, const StackCall<Real>& call,
                   const Real* P, const StackSlopes<Real>& slopes, Drop drop) {
  const StackOffsets& so = *call.so;
  const int64_t B = call.B, T = call.T, C = call.C, H = call.H, BT = B * T;
  const Real* pos = call.pos ? call.pos : at(P, so.wpe);
  {
    const nn::ProfileScope prof("embedding");
    nn::encoder_forward(st.encoded, call.idx, P + so.wte, pos, B, T, C, call.V);
  }
  drop(st.encoded, BT * C, site(call.decoder, -1, 0));
  const Real* residual = st.encoded;
  for (int64_t l = 0; l < static_cast<int64_t>(so.blocks.size()); ++l) {
    const BlockOffsets& o = so.blocks[static_cast<size_t>(l)];
    const BlockActs<Real>& k = st.blocks[static_cast<size_t>(l)];
    {
      const nn::ProfileScope prof("layernorm");
      nn::layernorm_forward(k.ln_1, k.ln_1_mean, k.ln_1_rstd, residual, P + o.ln_1_w,
                            at(P, o.ln_1_b), B, T, C);
    }
    {
      const nn::ProfileScope prof("matmul c_attn");
      nn::matmul_forward(k.qkv, k.ln_1, P + o.c_attn_w, at(P, o.c_attn_b), B, T, C, 3 * C);
    }
    nn::AttentionBias<Real> bias = call.bias;
    slopes.of(l, P, &bias.slopes_left, &bias.slopes_right);
    if (o.rel != kAbsent) bias.rel.params = P + o.rel;
    {
      const nn::ProfileScope prof("attention");
      nn::self_attention_forward(k.atty, k.att_lse, k.qkv, bias, B, T, C, H);
    }
    {
      const nn::ProfileScope prof("matmul attn_proj");
      nn::matmul_forward(branch, k.atty, P + o.attn_proj_w, at(P, o.attn_proj_b), B, T, C, C);
    }
    drop(branch, BT * C, site(call.decoder, l, 0));
    {
      const nn::ProfileScope prof("residual");
      nn::residual_forward(k.res_2, residual, branch, BT * C);
    }
    if (k.res_x) {
      const int64_t S = call.S;
      {
        const nn::ProfileScope prof("layernorm");
        nn::layernorm_forward(k.ln_x, k.ln_x_mean, k.ln_x_rstd, k.res_2, P + o.ln_x_w,
                              at(P, o.ln_x_b), B, T, C);
      }
      {
        const nn::ProfileScope prof("matmul xq");
        nn::matmul_forward(k.xq, k.ln_x, P + o.xq_w, at(P, o.xq_b), B, T, C, C);
      }
      {
        const nn::ProfileScope prof("matmul xkv");
        nn::matmul_forward(k.xkv, call.memory, P + o.xkv_w, at(P, o.xkv_b), B, S, C, 2 * C);
      }
      {
        const nn::ProfileScope prof("cross-attention");
        nn::cross_attention_forward(k.xatty, k.xatt_lse, k.xq, k.xkv, call.memory_lengths, B, T, S,
                                    C, H);
      }
      {
        const nn::ProfileScope prof("matmul xproj");
        nn::matmul_forward(branch, k.xatty, P + o.xproj_w, at(P, o.xproj_b), B, T, C, C);
      }
      drop(branch, BT * C, site(call.decoder, l, 1));
      {
        const nn::ProfileScope prof("residual");
        nn::residual_forward(k.res_x, k.res_2, branch, BT * C);
      }
    }
    {
      const nn::ProfileScope prof("layernorm");
      nn::layernorm_forward(k.ln_2, k.ln_2_mean, k.ln_2_rstd, k.mlp_in(), P + o.ln_2_w,
                            at(P, o.ln_2_b), B, T, C);
    }
    {
      const nn::ProfileScope prof("matmul c_fc");
      nn::matmul_forward(k.fch, k.ln_2, P + o.c_fc_w, at(P, o.c_fc_b), B, T, C, 4 * C);
    }
    {
      const nn::ProfileScope prof("gelu");
      nn::activation_forward(call.act, k.fch_gelu, k.fch, BT * 4 * C);
    }
    {
      const nn::ProfileScope prof("matmul mlp_proj");
      nn::matmul_forward(branch, k.fch_gelu, P + o.mlp_proj_w, at(P, o.mlp_proj_b), B, T, 4 * C, C);
    }
    drop(branch, BT * C, site(call.decoder, l, 2));
    {
      const nn::ProfileScope prof("residual");
      nn::residual_forward(k.res_3, k.mlp_in(), branch, BT * C);
    }
    residual = k.res_3;
  }
  {
    const nn::ProfileScope prof("layernorm");
    nn::layernorm_forward(st.ln_f, st.ln_f_mean, st.ln_f_rstd, residual, P + so.ln_f_w,
                          at(P, so.ln_f_b), B, T, C);
  }
}

// The backward of stack_forward, from d(loss)/d(ln_f output) in dout, which is read first and
// only then (it may be g.dsmall or g.dmemory, never g.dresidual).
// Adds to the parameter gradients G (learned slopes included, through `slopes`) and to
// g.dmemory (decoder). `undrop` maps a branch's gradient to its gradient before dropout.
template <class Real, class Undrop>
void stack_backward(const GradActs<Real>& g, const StackActs<Real>& st, const Real* dout,
                    const StackCall<Real>& call, const Real* P, Real* G, StackSlopes<Real>& slopes,
                    Undrop undrop) {
  const StackOffsets& so = *call.so;
  slopes.begin_backward();
  const int64_t B = call.B, T = call.T, C = call.C, H = call.H, BT = B * T;
  {
    const nn::ProfileScope prof("zero gradient buffers");
    zero(g.dresidual, BT * C);
  }
  {
    const nn::ProfileScope prof("layernorm backward");
    nn::layernorm_backward(g.dresidual, G + so.ln_f_w, at(G, so.ln_f_b), dout, st.last(),
                           st.ln_f_mean, st.ln_f_rstd, P + so.ln_f_w, B, T, C);
  }
  for (int64_t l = static_cast<int64_t>(so.blocks.size()) - 1; l >= 0; --l) {
    const BlockOffsets& o = so.blocks[static_cast<size_t>(l)];
    const BlockActs<Real>& k = st.blocks[static_cast<size_t>(l)];
    const Real* residual = l > 0 ? st.blocks[static_cast<size_t>(l - 1)].res_3 : st.encoded;

    const Real* dmlp = undrop(g.dresidual, BT * C, site(call.decoder, l, 2));
    {
      const nn::ProfileScope prof("matmul mlp_proj backward");
      nn::matmul_backward(g.dfch_gelu, G + o.mlp_proj_w, at(G, o.mlp_proj_b), dmlp, k.fch_gelu,
                          P + o.mlp_proj_w, B, T, 4 * C, C, nn::GradWrite::overwrite);
    }
    {
      const nn::ProfileScope prof("gelu backward");
      nn::activation_backward(call.act, g.dfch, g.dfch_gelu, k.fch, BT * 4 * C,
                              nn::GradWrite::overwrite);
    }
    {
      const nn::ProfileScope prof("matmul c_fc backward");
      nn::matmul_backward(g.dsmall, G + o.c_fc_w, at(G, o.c_fc_b), g.dfch, k.ln_2, P + o.c_fc_w, B,
                          T, C, 4 * C, nn::GradWrite::overwrite);
    }
    {
      const nn::ProfileScope prof("layernorm backward");
      nn::layernorm_backward(g.dresidual, G + o.ln_2_w, at(G, o.ln_2_b), g.dsmall, k.mlp_in(),
                             k.ln_2_mean, k.ln_2_rstd, P + o.ln_2_w, B, T, C);
    }

    if (k.res_x) {
      const int64_t S = call.S;
      const Real* dx = undrop(g.dresidual, BT * C, site(call.decoder, l, 1));
      {
        const nn::ProfileScope prof("matmul xproj backward");
        nn::matmul_backward(g.dsmall, G + o.xproj_w, at(G, o.xproj_b), dx, k.xatty, P + o.xproj_w,
                            B, T, C, C, nn::GradWrite::overwrite);
      }
      Real* dxq = g.dqkv;
      {
        const nn::ProfileScope prof("zero gradient buffers");
        zero(dxq, BT * C);
      }
      {
        const nn::ProfileScope prof("zero gradient buffers");
        zero(g.dxkv, B * S * 2 * C);
      }
      {
        const nn::ProfileScope prof("cross-attention backward");
        nn::cross_attention_backward(dxq, g.dxkv, g.scratch, g.dsmall, k.xq, k.xkv, k.xatty,
                                     k.xatt_lse, call.memory_lengths, B, T, S, C, H);
      }
      {
        const nn::ProfileScope prof("matmul xq backward");
        nn::matmul_backward(g.dsmall, G + o.xq_w, at(G, o.xq_b), dxq, k.ln_x, P + o.xq_w, B, T, C,
                            C, nn::GradWrite::overwrite);
      }
      {
        const nn::ProfileScope prof("matmul xkv backward");
        nn::matmul_backward(g.dmemory, G + o.xkv_w, at(G, o.xkv_b), g.dxkv, call.memory,
                            P + o.xkv_w, B, S, C, 2 * C);
      }
      {
        const nn::ProfileScope prof("layernorm backward");
        nn::layernorm_backward(g.dresidual, G + o.ln_x_w, at(G, o.ln_x_b), g.dsmall, k.res_2,
                               k.ln_x_mean, k.ln_x_rstd, P + o.ln_x_w, B, T, C);
      }
    }

    const Real* dattn = undrop(g.dresidual, BT * C, site(call.decoder, l, 0));
    {
      const nn::ProfileScope prof("matmul attn_proj backward");
      nn::matmul_backward(g.dsmall, G + o.attn_proj_w, at(G, o.attn_proj_b), dattn, k.atty,
                          P + o.attn_proj_w, B, T, C, C, nn::GradWrite::overwrite);
    }
    {
      const nn::ProfileScope prof("zero gradient buffers");
      zero(g.dqkv, BT * 3 * C);
    }
    nn::AttentionBias<Real> bias = call.bias;
    slopes.of(l, P, &bias.slopes_left, &bias.slopes_right);
    Real *dleft = nullptr, *dright = nullptr;
    slopes.grads_of(l, G, &dleft, &dright);
    if (o.rel != kAbsent) bias.rel.params = P + o.rel, bias.drel = G + o.rel;
    {
      const nn::ProfileScope prof("attention backward");
      nn::self_attention_backward(g.dqkv, dleft, dright, g.scratch, g.dsmall, k.qkv, k.atty,
                                  k.att_lse, bias, B, T, C, H);
    }
    {
      const nn::ProfileScope prof("matmul c_attn backward");
      nn::matmul_backward(g.dsmall, G + o.c_attn_w, at(G, o.c_attn_b), g.dqkv, k.ln_1,
                          P + o.c_attn_w, B, T, C, 3 * C, nn::GradWrite::overwrite);
    }
    {
      const nn::ProfileScope prof("layernorm backward");
      nn::layernorm_backward(g.dresidual, G + o.ln_1_w, at(G, o.ln_1_b), g.dsmall, residual,
                             k.ln_1_mean, k.ln_1_rstd, P + o.ln_1_w, B, T, C);
    }
  }
  const Real* demb = undrop(g.dresidual, BT * C, site(call.decoder, -1, 0));
  {
    const nn::ProfileScope prof("embedding backward");
    nn::encoder_backward(G + so.wte, at(G, so.wpe), demb, call.idx, B, T, C, call.V);
  }
  slopes.end_backward(G);
}

}  // namespace slope::model
