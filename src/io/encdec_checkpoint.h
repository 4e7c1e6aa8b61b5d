// An encoder or encoder–decoder on disk:
//
//   config.json         encdec_config_to_json (model/encdec_config.h): "arch" says which
//   model.safetensors   the parameters under the names of model/encdec_params.h, F32 (F64 for
//                       an EncDec<double>); each stack's output head is tied to its wte and has
//                       no tensor of its own
//
// Each file is written atomically; the weights first, then the config.
#pragma once

#include <filesystem>

#include "model/encdec.h"
#include "model/encdec_config.h"

namespace slope::io {

// Reads dir/config.json as an encoder / seq2seq config (slope::Error naming the file and field;
// a GPT checkpoint, which has no "arch", is refused with a message saying so).
model::EncDecConfig read_encdec_config(const std::filesystem::path& dir);

// True when dir/config.json names an arch other than gpt.
bool is_encdec_checkpoint(const std::filesystem::path& dir);

template <class Real>
void save_encdec(const std::filesystem::path& dir, const model::EncDec<Real>& model);

// Checks dir/config.json against the model's architecture, then reads every tensor (shapes
// checked; a missing or unexpected tensor is an error naming it). The weights are staged: the
// model is unchanged when loading fails.
template <class Real>
void load_encdec(const std::filesystem::path& dir, model::EncDec<Real>& model);

}  // namespace slope::io
