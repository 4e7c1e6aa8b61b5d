// Hugging Face GPT-2 in (see hf_gpt2.h).
#include "io/hf_gpt2.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <vector>

#include "files/json_file.h"
#include "io/checkpoint_files.h"
#include "io/safetensors.h"
#include "slope/error.h"

namespace slope::io {
namespace fs = std::filesystem;
namespace {

constexpr double kHfLayerNormEps = 1e-5;  // transformers' default, = nn::kLayerNormEps

template <class T>
T hf_field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw Error(where + ": field \"" + key + "\" is missing");
  std::optional<T> v = files::json_as<T>(j[key]);
  if (!v) throw Error(where + ": field \"" + key + "\" is " + j[key].dump() + ", not usable");
  return *v;
}

template <class T>
T hf_optional(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
  return j.contains(key) && !j[key].is_null() ? hf_field<T>(j, key, where) : fallback;
}

// True for the weights of GPT-2's Conv1D layers, stored (in, out).
bool is_conv1d_weight(const std::string& name) {
  for (const char* suffix :
       {".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight", ".mlp.c_proj.weight"}) {
    const std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0)
      return true;
  }
  return false;
}

// The causal-mask buffers older transformers saved with every attention layer.
bool is_mask_buffer(const std::string& name) {
  for (const std::string s : {".attn.bias", ".attn.masked_bias"})
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0 &&
        name.find(".h.") != std::string::npos)
      return true;
  return false;
}

}  // namespace

model::GptConfig gpt_config_from_hf_gpt2(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": not a JSON object");
  const auto type = hf_optional<std::string>(j, "model_type", "gpt2", where);
  if (type != "gpt2")
    throw Error(where + ": model_type is \"" + type + "\", not gpt2: slope imports GPT-2 only");
  model::GptConfig c;
  c.vocab_size = hf_field<int64_t>(j, "vocab_size", where);
  c.block_size = hf_field<int64_t>(j, "n_positions", where);
  c.n_layer = hf_field<int64_t>(j, "n_layer", where);
  c.n_head = hf_field<int64_t>(j, "n_head", where);
  c.n_embd = hf_field<int64_t>(j, "n_embd", where);
  c.dropout = 0.0;
  c.bias = true;
  c.pos = model::Position::learned;
  const auto act = hf_optional<std::string>(j, "activation_function", "gelu_new", where);
  if (act != "gelu_new" && act != "gelu_pytorch_tanh" && act != "gelu")
    throw Error(where + ": activation_function \"" + act +
                "\" is not one slope has (gelu_new / gelu_pytorch_tanh: GPT-2's tanh GELU; gelu)");
  c.activation = model::parse_activation(act);
  const auto eps = hf_optional<double>(j, "layer_norm_epsilon", kHfLayerNormEps, where);
  if (eps != kHfLayerNormEps) {
    std::ostringstream s;
    s << where << ": layer_norm_epsilon " << eps
      << " differs from slope's 1e-5 (GPT-2's own value): the logits would differ";
    throw Error(s.str());
  }
  if (const auto inner = hf_optional<int64_t>(j, "n_inner", 4 * c.n_embd, where);
      inner != 4 * c.n_embd)
    throw Error(where + ": n_inner " + std::to_string(inner) + " is not 4·n_embd = " +
                std::to_string(4 * c.n_embd) + ", the only MLP width slope has");
  if (hf_optional<bool>(j, "scale_attn_by_inverse_layer_idx", false, where))
    throw Error(where + ": scale_attn_by_inverse_layer_idx is true; slope scales by 1/√D only");
  if (!hf_optional<bool>(j, "scale_attn_weights", true, where))
    throw Error(where + ": scale_attn_weights is false; slope scales by 1/√D");
  if (!hf_optional<bool>(j, "tie_word_embeddings", true, where))
    throw Error(where + ": tie_word_embeddings is false; slope ties lm_head to wte");
  try {
    model::validate(c);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return c;
}

model::Gpt<float> read_hf_gpt2(const fs::path& dir) {
  const fs::path config_path = dir / kConfigFile;
  const model::GptConfig config =
      gpt_config_from_hf_gpt2(files::read_json_file(config_path), config_path.string());
  const fs::path weights = dir / kModelFile;
  std::error_code ec;
  if (!fs::exists(weights, ec))
    throw Error(weights.string() +
                " is missing: save the model with save_pretrained(..., "
                "safe_serialization=True) (slope reads safetensors, not pytorch_model.bin)");
  const SafetensorsReader file(weights);
  // GPT2LMHeadModel saves "transformer.h.0...", a bare GPT2Model "h.0...".
  const std::string prefix = file.find("transformer.wte.weight") ? "transformer." : "";
  const auto hf_name = [&](const std::string& slope_name) {
    const std::string t = "transformer.";
    return prefix + slope_name.substr(slope_name.rfind(t, 0) == 0 ? t.size() : 0);
  };

  model::Gpt<float> gpt(config);
  std::vector<std::string> used;
  for (const model::ParamSpec& s : gpt.table().specs()) {
    const std::string name = hf_name(s.name);
    if (!file.find(name))
      throw Error(weights.string() + " has no tensor " + name + ": not a GPT-2 checkpoint");
    used.push_back(name);
    float* dst = gpt.params() + s.offset;
    if (!is_conv1d_weight(s.name)) {
      file.read(name, s.shape, dst);
      continue;
    }
    // Conv1D (in, out) → linear (out, in).
    const int64_t out = s.shape.at(0), in = s.shape.at(1);
    std::vector<float> w(static_cast<size_t>(in * out));
    file.read(name, {in, out}, w.data());
    for (int64_t i = 0; i < in; ++i)
      for (int64_t o = 0; o < out; ++o) dst[o * in + i] = w[static_cast<size_t>(i * out + o)];
  }
  const model::ParamSpec& wte = gpt.table().at("transformer.wte.weight");
  for (const TensorInfo& t : file.tensors()) {
    if (std::find(used.begin(), used.end(), t.name) != used.end() || is_mask_buffer(t.name))
      continue;
    if (t.name == "lm_head.weight") {
      const std::vector<float> head = file.read<float>(t.name);
      if (t.shape != wte.shape || !std::equal(head.begin(), head.end(), gpt.params() + wte.offset))
        throw Error(weights.string() +
                    ": lm_head.weight differs from transformer.wte.weight: an untied head, "
                    "which slope does not have");
      continue;
    }
    throw Error(weights.string() + " has a tensor " + t.name +
                " that GPT-2 does not have: not a GPT2LMHeadModel checkpoint");
  }
  return gpt;
}

}  // namespace slope::io
