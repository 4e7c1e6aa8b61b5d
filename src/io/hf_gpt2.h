// Hugging Face GPT-2 in: a `GPT2LMHeadModel.save_pretrained` directory (config.json,
// model.safetensors) as a slope GPT.
//
// GPT-2 is nanoGPT's architecture with nanoGPT's state-dict names, so the mapping is one to one
// except for three things:
//   - GPT-2's linear layers are Conv1D modules storing weights (in, out); slope and nanoGPT store
//     (out, in): c_attn, attn.c_proj, mlp.c_fc and mlp.c_proj weights are transposed.
//   - GPT-2's MLP uses the tanh GELU ("gelu_new"): the config gets activation gelu-tanh.
//   - lm_head is tied to wte (save_pretrained drops it; a file that has it must match wte).
// Refused, each with its reason: layer_norm_epsilon other than slope's 1e-5, n_inner other than
// 4·n_embd, scale_attn_by_inverse_layer_idx, an activation other than the two GELUs, an untied
// head, tensors of other dtypes than F32/F64 (save the model in float32), missing or extra
// tensors. The causal-mask buffers of older transformers (attn.bias, attn.masked_bias) are
// skipped. Dropout becomes 0: fine-tuning sets its own.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "model/gpt.h"
#include "model/gpt_config.h"

namespace slope::io {

// The slope config of a Hugging Face GPT-2 config.json (parsed); `where` names it in errors.
model::GptConfig gpt_config_from_hf_gpt2(const nlohmann::json& j, const std::string& where);

// Reads dir/config.json and dir/model.safetensors into a new Gpt<float>.
model::Gpt<float> read_hf_gpt2(const std::filesystem::path& dir);

}  // namespace slope::io
