// The parameters of a GPT: their table (nanoGPT's state-dict names and shapes) and their
// initialisation (nanoGPT's).
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

#include <cstdint>
#include <string>
#include <vector>

#include "model/gpt_config.h"
#include "model/param_table.h"

namespace slope::model {

constexpr int64_t kAbsent = -1;  // offset of a tensor this config does not have

// Arena offsets of one block's tensors; biases are kAbsent without config.bias.
struct GptBlockOffsets {
  int64_t ln_1_w, ln_1_b;
  int64_t c_attn_w, c_attn_b;        // (3C, C), (3C)
  int64_t attn_proj_w, attn_proj_b;  // (C, C), (C)
  int64_t alibi_slopes;              // (H), alibi-learned only
  int64_t ln_2_w, ln_2_b;
  int64_t c_fc_w, c_fc_b;          // (4C, C), (4C)
  int64_t mlp_proj_w, mlp_proj_b;  // (C, 4C), (C)
};

// How a tensor starts (nanoGPT's _init_weights, plus the slopes).
enum class ParamInit {
  normal,           // N(0, 0.02²): wte, wpe, c_attn, c_fc
  normal_residual,  // N(0, (0.02/√(2·n_layer))²): the two c_proj weights (GPT-2's scaling)
  zeros,            // biases
  ones,             // LayerNorm weights
  alibi_slopes,     // alibi_slopes(n_head, max_bias)
  alibi_theta,      // N(−2, 1): an encoder's learned slopes are sigmoid(θ) (DESIGN.md)
};

// Appends tensors to a table and records how each starts; ALiBi slopes get the lower bound 0.
struct LayoutBuilder {
  ParamTable& table;
  std::vector<ParamInit>& init;
  int64_t add(const std::string& name, std::vector<int64_t> shape, ParamInit how,
              int64_t reserve = 0);
  int64_t add_bias(bool bias, const std::string& name, int64_t n);  // kAbsent without bias
};

struct GptLayout {
  ParamTable table;
  std::vector<ParamInit> init;  // per table entry
  int64_t wte = kAbsent, wpe = kAbsent, ln_f_w = kAbsent, ln_f_b = kAbsent;
  std::vector<GptBlockOffsets> blocks;  // (L)
};

// The table of a (validated) config, in nanoGPT's state-dict order.
GptLayout gpt_layout(const GptConfig& config);

constexpr double kInitStd = 0.02;  // nanoGPT, GPT-2

// Writes every tensor of the layout into `params` (layout.table.size() elements; gaps and
// padding rows zero). Each tensor draws from its own stream, seeded by (seed, its name), so one
// tensor's values do not depend on which others the config has. Values are rounded to float
// first: a float and a double model built with one seed hold the same numbers.
template <class Real>
void gpt_init(Real* params, const GptLayout& layout, const GptConfig& config, uint64_t seed);

// The same for any table: `residual_layers` sets normal_residual's std 0.02/√(2·layers), and
// n_head, max_bias the alibi_slopes entries.
template <class Real>
void init_params(Real* params, const ParamTable& table, const std::vector<ParamInit>& init,
                 int64_t residual_layers, int64_t n_head, double max_bias, uint64_t seed);

}  // namespace slope::model
