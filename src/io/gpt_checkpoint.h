// A GPT on disk as a PyTorch user expects it: a directory holding
//
//   config.json         nanoGPT's GPTConfig fields (block_size, vocab_size, n_layer, n_head,
//                       n_embd, dropout, bias) plus slope's "pos" and "max_bias", and
//                       "activation" when it is GPT-2's tanh GELU
//   model.safetensors   the state dict under nanoGPT's names (model/gpt_params.h), F32 for a
//                       Gpt<float> (F64 for a Gpt<double>); lm_head.weight is written as a copy
//                       of transformer.wte.weight, so load_state_dict(strict=True) finds both
//
// Each file is written atomically; the weights first, then the config.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "io/checkpoint_files.h"  // kConfigFile, kModelFile
#include "model/gpt.h"
#include "model/gpt_config.h"

namespace slope::io {

constexpr char kLmHead[] = "lm_head.weight";  // tied: a copy of transformer.wte.weight

nlohmann::ordered_json gpt_config_to_json(const model::GptConfig& config);

// block_size, vocab_size, n_layer, n_head and n_embd are required; dropout (0), bias (true),
// pos ("learned": a plain nanoGPT config), max_bias (8) and activation ("gelu"; "gelu-tanh" for
// GPT-2) are optional; other keys are ignored. Throws slope::Error naming `where` and the field, and validates the result.
model::GptConfig gpt_config_from_json(const nlohmann::json& j, const std::string& where);

void write_gpt_config(const std::filesystem::path& path, const model::GptConfig& config);
model::GptConfig read_gpt_config(const std::filesystem::path& path);

// Throws slope::Error naming the first field in which a checkpoint's architecture differs from
// a model's ("checkpoint out/config.json has n_layer 4, the model 6: ..."). dropout may differ
// (fine-tuning changes it); block_size only matters with learned positions (wpe's rows).
void check_same_architecture(const model::GptConfig& checkpoint, const model::GptConfig& model,
                             const std::string& where);

// Writes dir/model.safetensors and dir/config.json (creating dir).
template <class Real>
void save_gpt(const std::filesystem::path& dir, const model::Gpt<Real>& gpt);

// Reads dir/config.json, checks it against the model's config, then reads every parameter
// from dir/model.safetensors (F32 or F64, shapes checked). A tensor missing or unexpected, or an
// lm_head.weight that differs from wte (an untied head), is an error naming it; nanoGPT's
// causal-mask buffers (*.attn.bias of 4 dimensions) are skipped. The weights are staged in a
// copy of the arena: the model is unchanged when loading fails.
template <class Real>
void load_gpt(const std::filesystem::path& dir, model::Gpt<Real>& gpt);

// The weights alone (no config check beyond the shapes): load_gpt's second half.
template <class Real>
void write_gpt_weights(const std::filesystem::path& path, const model::Gpt<Real>& gpt);
template <class Real>
void read_gpt_weights(const std::filesystem::path& path, model::Gpt<Real>& gpt);

}  // namespace slope::io
