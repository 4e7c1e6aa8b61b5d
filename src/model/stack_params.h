// The parameters of one stack of pre-LN transformer blocks (model/stack.h), for every model: the
// GPT has one stack (`transformer.`), an encoder one (`encoder.`), an encoder–decoder two
// (`encoder.`, `decoder.`). Names and shapes are nanoGPT's state-dict keys under the prefix:
//
//   {p}wte.weight                    (V, C)   tied to the stack's output head; the arena keeps
//                                              Vp rows, the padding rows zero forever
//   {p}wpe.weight                    (block_size, C)        learned positions only
//   {p}h.{l}.ln_1.weight / .bias     (C)                     biases only with config.bias
//   {p}h.{l}.attn.c_attn.weight      (3C, C)  .bias (3C)
//   {p}h.{l}.attn.c_proj.weight      (C, C)   .bias (C)
//   {p}h.{l}.attn.<learned slopes>   (H)      one or two vectors (model/stack_slopes.h names them)
//   {p}h.{l}.ln_x.weight / .bias     (C)      cross-attention to a memory (decoders only):
//   {p}h.{l}.cross.c_q.weight        (C, C)   .bias (C)    queries from the stack
//   {p}h.{l}.cross.c_kv.weight       (2C, C)  .bias (2C)   keys and values from the memory
//   {p}h.{l}.cross.c_proj.weight     (C, C)   .bias (C)
//   {p}h.{l}.ln_2.weight / .bias     (C)
//   {p}h.{l}.mlp.c_fc.weight         (4C, C)  .bias (4C)
//   {p}h.{l}.mlp.c_proj.weight       (C, 4C)  .bias (C)
//   {p}ln_f.weight / .bias           (C)
//
// and how each tensor starts (nanoGPT's _init_weights, plus the slopes).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/param_table.h"
#include "model/stack_slopes.h"  // SlopeScheme

namespace slope::model {

constexpr uint64_t kDefaultInitSeed = 1337;  // nanoGPT's torch.manual_seed(1337)
constexpr int64_t kAbsent = -1;              // offset of a tensor this config does not have
constexpr double kInitStd = 0.02;            // nanoGPT, GPT-2

// Arena offsets of one block's tensors; kAbsent where the config has none (biases without
// config.bias, the slopes of a fixed scheme, the cross sub-block outside a decoder).
struct BlockOffsets {
  int64_t ln_1_w = kAbsent, ln_1_b = kAbsent;
  int64_t c_attn_w = kAbsent, c_attn_b = kAbsent;         // (3C, C), (3C)
  int64_t attn_proj_w = kAbsent, attn_proj_b = kAbsent;   // (C, C), (C)
  int64_t slopes_left = kAbsent, slopes_right = kAbsent;  // (H) learned: raw or θ (SlopeScheme)
  int64_t rel = kAbsent;  // a learned relative bias's parameters (RelativeBias's flat layout)
  int64_t ln_x_w = kAbsent, ln_x_b = kAbsent;    // cross sub-block: (C)
  int64_t xq_w = kAbsent, xq_b = kAbsent;        // (C, C), (C)
  int64_t xkv_w = kAbsent, xkv_b = kAbsent;      // (2C, C), (2C)
  int64_t xproj_w = kAbsent, xproj_b = kAbsent;  // (C, C), (C)
  int64_t ln_2_w = kAbsent, ln_2_b = kAbsent;
  int64_t c_fc_w = kAbsent, c_fc_b = kAbsent;          // (4C, C), (4C)
  int64_t mlp_proj_w = kAbsent, mlp_proj_b = kAbsent;  // (C, 4C), (C)
};

// Arena offsets of one stack's tensors, as model/stack.h reads them.
struct StackOffsets {
  int64_t wte = kAbsent, wpe = kAbsent, ln_f_w = kAbsent, ln_f_b = kAbsent;
  std::vector<BlockOffsets> blocks;  // (L)
};

// How a tensor starts (nanoGPT's _init_weights, plus the slopes).
enum class ParamInit {
  normal,           // N(0, 0.02²): wte, wpe, c_attn, c_fc
  normal_residual,  // N(0, (0.02/√(2·layers))²): every c_proj weight (GPT-2's scaling)
  zeros,            // biases
  ones,             // LayerNorm weights
  alibi_slopes,     // alibi_slopes(n_head, max_bias): raw learned slopes start at Press's
  alibi_theta,      // N(−2, 1): sigmoid(θ) learned slopes (DESIGN.md)
};

// A model's parameter table as it is built, and how each tensor starts.
struct ParamLayout {
  ParamTable table;
  std::vector<ParamInit> init;  // per table entry

  // Appends a tensor; raw ALiBi slopes get the lower bound 0.
  int64_t add(const std::string& name, std::vector<int64_t> shape, ParamInit how,
              int64_t reserve = 0);
  int64_t add_bias(bool bias, const std::string& name, int64_t n);  // kAbsent without bias
};

// What one stack holds.
struct StackSpec {
  std::string prefix;  // "transformer.", "encoder.", "decoder."
  int64_t V, Vp;       // its vocabulary (wte's rows) and the arena's padded rows
  int64_t L, C, H;
  int64_t wpe_rows;    // learned positions' rows, 0: no wpe
  bool bias;           // biases in the linear layers and LayerNorms
  bool cross;          // a cross sub-block in each block (a decoder)
  SlopeScheme slopes;  // which learned slope parameters each block has (none for fixed schemes)
  RelativeBias<float> rel{};  // a learned relative bias per block (kind kNone: none)
};

// The tensor name and shape of a relative bias's parameters (under "{prefix}h.{l}."): Kerple
// attn.kerple (2, H), T5 attn.relative_attention_bias (num_buckets, H), FIRE attn.fire (n).
std::string relative_bias_tensor(const RelativeBias<float>& rel, int64_t H,
                                 std::vector<int64_t>* shape);

// The shape of a relative bias in scalar Real (params null; set per layer).
template <class Real>
RelativeBias<Real> relative_bias_of_real(const RelativeBias<float>& r) {
  return {r.kind,          nullptr,       r.num_buckets, r.max_distance,
          r.bidirectional, r.fire_hidden, r.fire_grid};
}

// Writes each block's relative-bias parameters (relative_bias_init; FIRE's L = fire_L, each
// layer its own draw from seed + l).
template <class Real>
void init_relative_bias(Real* params, const StackOffsets& so, const RelativeBias<float>& rel,
                        int64_t H, double fire_L, uint64_t seed);

// Projects each block's relative-bias parameters into their family's domain
// (relative_bias_clamp, as KERPLE clamps its parameters in place before each forward).
template <class Real>
void clamp_relative_bias(Real* params, const StackOffsets& so, const RelativeBias<float>& rel,
                         int64_t H);

// Appends one stack's tensors, in nanoGPT's state-dict order, and returns where they are.
StackOffsets add_stack(ParamLayout& layout, const StackSpec& spec);

// Writes every tensor of the table into `params` (table.size() elements; gaps and padding rows
// zero). Each tensor draws from its own stream, seeded by (seed, its name), so one tensor's
// values do not depend on which others the config has. Values are rounded to float first: a
// float and a double model built with one seed hold the same numbers. `residual_layers` sets
// normal_residual's std 0.02/√(2·layers); n_head and max_bias the alibi_slopes entries.
template <class Real>
void init_params(Real* params, const ParamTable& table, const std::vector<ParamInit>& init,
                 int64_t residual_layers, int64_t n_head, double max_bias, uint64_t seed);

}  // namespace slope::model
