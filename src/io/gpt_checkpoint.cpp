// GPT checkpoints: config.json and model.safetensors (see gpt_checkpoint.h).
#include "io/gpt_checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <type_traits>
#include <vector>

#include "files/atomic_file.h"
#include "files/json_file.h"
#include "io/safetensors.h"
#include "slope/attention.h"  // slope::Error

namespace slope::io {

namespace fs = std::filesystem;
using model::GptConfig;

namespace {

template <class T>
T field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw Error(where + ": field \"" + key + "\" is missing");
  std::optional<T> v = files::json_as<T>(j[key]);
  if (!v)
    throw Error(where + ": field \"" + key + "\" has the wrong type or is out of range (" +
                j[key].dump() + ")");
  return std::move(*v);
}

template <class T>
T optional_field(const nlohmann::json& j, const char* key, T fallback, const std::string& where) {
  return j.contains(key) && !j[key].is_null() ? field<T>(j, key, where) : fallback;
}

template <class T>
void same(const char* name, T checkpoint, T model, const std::string& where) {
  if (checkpoint == model) return;
  std::ostringstream s;
  s << std::boolalpha << where << " has " << name << " " << checkpoint << " but the model has "
    << model << ": build the model from the checkpoint's config.json (or pass --" << name << " "
    << checkpoint << ")";
  throw Error(s.str());
}

// nanoGPT registers `bias`, the (1, 1, block_size, block_size) causal mask, as a buffer of
// every attention layer when flash attention is unavailable; it is not a parameter.
bool is_mask_buffer(const TensorInfo& t) {
  const std::string suffix = ".attn.bias";
  return t.shape.size() == 4 && t.name.size() > suffix.size() &&
         t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

template <class Real>
constexpr Dtype dtype_of() {
  return std::is_same_v<Real, float> ? Dtype::F32 : Dtype::F64;
}

}  // namespace

nlohmann::ordered_json gpt_config_to_json(const GptConfig& c) {
  nlohmann::ordered_json j;
  j["block_size"] = c.block_size;
  j["vocab_size"] = c.vocab_size;
  j["n_layer"] = c.n_layer;
  j["n_head"] = c.n_head;
  j["n_embd"] = c.n_embd;
  j["dropout"] = c.dropout;
  j["bias"] = c.bias;
  j["pos"] = model::position_name(c.pos);
  j["max_bias"] = c.max_bias;
  // Only when it is not nanoGPT's exact GELU: configs written before the key existed, and
  // nanoGPT's, read as they always did.
  if (c.activation != nn::Activation::gelu) j["activation"] = model::activation_name(c.activation);
  return j;
}

GptConfig gpt_config_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": expected a JSON object of GPT config fields");
  GptConfig c;
  c.block_size = field<int64_t>(j, "block_size", where);
  c.vocab_size = field<int64_t>(j, "vocab_size", where);
  c.n_layer = field<int64_t>(j, "n_layer", where);
  c.n_head = field<int64_t>(j, "n_head", where);
  c.n_embd = field<int64_t>(j, "n_embd", where);
  c.dropout = optional_field<double>(j, "dropout", 0.0, where);
  c.bias = optional_field<bool>(j, "bias", true, where);
  c.pos = model::parse_position(optional_field<std::string>(j, "pos", "learned", where));
  c.max_bias = optional_field<double>(j, "max_bias", model::kDefaultMaxBias, where);
  try {
    c.activation =
        model::parse_activation(optional_field<std::string>(j, "activation", "gelu", where));
    model::validate(c);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return c;
}

void write_gpt_config(const fs::path& path, const GptConfig& config) {
  files::write_file_atomic(path, gpt_config_to_json(config).dump(2) + "\n");
}

GptConfig read_gpt_config(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(path.string() + ": cannot open: " + std::strerror(errno));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e400)
    throw Error(path.string() + " is not valid JSON: " + e.what());
  }
  return gpt_config_from_json(j, path.string());
}

void check_same_architecture(const GptConfig& ck, const GptConfig& m, const std::string& where) {
  same("n_layer", ck.n_layer, m.n_layer, where);
  same("n_head", ck.n_head, m.n_head, where);
  same("n_embd", ck.n_embd, m.n_embd, where);
  same("vocab_size", ck.vocab_size, m.vocab_size, where);
  same("bias", ck.bias, m.bias, where);
  same<std::string>("pos", model::position_name(ck.pos), model::position_name(m.pos), where);
  if (ck.pos == model::Position::learned) same("block_size", ck.block_size, m.block_size, where);
  if (ck.uses_alibi()) same("max_bias", ck.max_bias, m.max_bias, where);
  same<std::string>("activation", model::activation_name(ck.activation),
                    model::activation_name(m.activation), where);
}

template <class Real>
void write_gpt_weights(const fs::path& path, const model::Gpt<Real>& gpt) {
  std::vector<TensorView> views;
  for (const model::ParamSpec& s : gpt.table().specs())
    views.push_back({s.name, dtype_of<Real>(), s.shape, gpt.params() + s.offset});
  const model::ParamSpec& wte = gpt.table().at("transformer.wte.weight");
  views.push_back({kLmHead, dtype_of<Real>(), wte.shape, gpt.params() + wte.offset});
  write_safetensors(path, views, {{"format", "pt"}});
}

template <class Real>
void read_gpt_weights(const fs::path& path, model::Gpt<Real>& gpt) {
  const SafetensorsReader file(path);
  const std::string name = path.string();
  for (const model::ParamSpec& s : gpt.table().specs()) {
    const TensorInfo* t = file.find(s.name);
    if (!t)
      throw Error(name + " has no tensor " + s.name + " " + model::shape_string(s.shape) +
                  ": it was written for another model (compare its config.json: pos " +
                  model::position_name(gpt.config().pos) + ", bias " +
                  (gpt.config().bias ? "true" : "false") + " here)");
    if (t->shape != s.shape)
      throw Error(name + ": tensor " + s.name + " has shape " + model::shape_string(t->shape) +
                  ", the model expects " + model::shape_string(s.shape));
  }
  for (const TensorInfo& t : file.tensors())
    if (!gpt.table().find(t.name) && t.name != kLmHead && !is_mask_buffer(t))
      throw Error(name + " has a tensor " + t.name +
                  " that this GPT does not have: it was written for another model");

  std::vector<Real> staged(gpt.params(), gpt.params() + gpt.table().size());
  for (const model::ParamSpec& s : gpt.table().specs())
    file.read(s.name, s.shape, staged.data() + s.offset);
  if (const TensorInfo* head = file.find(kLmHead)) {
    const model::ParamSpec& wte = gpt.table().at("transformer.wte.weight");
    const std::vector<Real> h = file.read<Real>(kLmHead);
    if (head->shape != wte.shape || !std::equal(h.begin(), h.end(), staged.begin() + wte.offset))
      throw Error(name +
                  ": lm_head.weight differs from transformer.wte.weight, but slope ties "
                  "them (nanoGPT's weight tying): this checkpoint has an untied head");
  }
  std::copy(staged.begin(), staged.end(), gpt.params());
}

template <class Real>
void save_gpt(const fs::path& dir, const model::Gpt<Real>& gpt) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw Error("cannot create the checkpoint directory " + dir.string() + ": " + ec.message());
  write_gpt_weights(dir / kModelFile, gpt);
  write_gpt_config(dir / kConfigFile, gpt.config());
}

template <class Real>
void load_gpt(const fs::path& dir, model::Gpt<Real>& gpt) {
  const fs::path config_path = dir / kConfigFile;
  check_same_architecture(read_gpt_config(config_path), gpt.config(),
                          "checkpoint " + config_path.string());
  read_gpt_weights(dir / kModelFile, gpt);
}

#define SLOPE_IO_INSTANTIATE(Real)                                                 \
  template void save_gpt<Real>(const fs::path&, const model::Gpt<Real>&);          \
  template void load_gpt<Real>(const fs::path&, model::Gpt<Real>&);                \
  template void write_gpt_weights<Real>(const fs::path&, const model::Gpt<Real>&); \
  template void read_gpt_weights<Real>(const fs::path&, model::Gpt<Real>&);
SLOPE_IO_INSTANTIATE(float)
SLOPE_IO_INSTANTIATE(double)
#undef SLOPE_IO_INSTANTIATE

}  // namespace slope::io
