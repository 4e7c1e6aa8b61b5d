// Encoder / seq2seq checkpoints (see encdec_checkpoint.h).
#include "io/encdec_checkpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <type_traits>
#include <vector>

#include "files/atomic_file.h"
#include "io/checkpoint_files.h"
#include "io/gpt_checkpoint.h"
#include "io/safetensors.h"
#include "slope/error.h"  // slope::Error

namespace slope::io {

namespace fs = std::filesystem;

namespace {

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(path.string() + ": cannot open: " + std::strerror(errno));
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range (1e400)
    throw Error(path.string() + " is not valid JSON: " + e.what());
  }
}

}  // namespace

model::EncDecConfig read_encdec_config(const fs::path& dir) {
  const fs::path path = dir / kConfigFile;
  const nlohmann::json j = read_json(path);
  if (!j.is_object() || !j.contains("arch") || j["arch"] == "gpt")
    throw Error(path.string() + " is a GPT's config (no \"arch\": encoder or seq2seq)");
  return model::encdec_config_from_json(j, path.string());
}

bool is_encdec_checkpoint(const fs::path& dir) {
  const nlohmann::json j = read_json(dir / kConfigFile);
  return j.is_object() && j.contains("arch") && j["arch"].is_string() && j["arch"] != "gpt";
}

template <class Real>
void save_encdec(const fs::path& dir, const model::EncDec<Real>& m) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec)
    throw Error("cannot create the checkpoint directory " + dir.string() + ": " + ec.message());
  const Dtype dtype = std::is_same_v<Real, float> ? Dtype::F32 : Dtype::F64;
  std::vector<TensorView> views;
  for (const model::ParamSpec& s : m.table().specs())
    views.push_back({s.name, dtype, s.shape, m.params() + s.offset});
  write_safetensors(dir / kModelFile, views, {{"format", "pt"}});
  files::write_file_atomic(dir / kConfigFile, model::encdec_config_to_json(m.config()).dump(2) + "\n");
}

template <class Real>
void load_encdec(const fs::path& dir, model::EncDec<Real>& m) {
  const model::EncDecConfig ck = read_encdec_config(dir);
  const model::EncDecConfig& c = m.config();
  const std::string where = "checkpoint " + (dir / kConfigFile).string();
  const nlohmann::ordered_json a = model::encdec_config_to_json(ck);
  const nlohmann::ordered_json b = model::encdec_config_to_json(c);
  for (const auto& [key, value] : a.items())
    if (key != "dropout" && b[key] != value)
      throw Error(where + " has " + key + " " + value.dump() + ", the model " + b[key].dump());

  const fs::path path = dir / kModelFile;
  const SafetensorsReader file(path);
  for (const model::ParamSpec& s : m.table().specs()) {
    const TensorInfo* t = file.find(s.name);
    if (!t) throw Error(path.string() + " has no tensor " + s.name + ": written for another model");
    if (t->shape != s.shape)
      throw Error(path.string() + ": tensor " + s.name + " has shape " +
                  model::shape_string(t->shape) + ", the model expects " +
                  model::shape_string(s.shape));
  }
  for (const TensorInfo& t : file.tensors())
    if (!m.table().find(t.name))
      throw Error(path.string() + " has a tensor " + t.name + " that this model does not have");
  std::vector<Real> staged(m.params(), m.params() + m.table().size());
  for (const model::ParamSpec& s : m.table().specs())
    file.read(s.name, s.shape, staged.data() + s.offset);
  std::copy(staged.begin(), staged.end(), m.params());
}

template void save_encdec<float>(const fs::path&, const model::EncDec<float>&);
template void save_encdec<double>(const fs::path&, const model::EncDec<double>&);
template void load_encdec<float>(const fs::path&, model::EncDec<float>&);
template void load_encdec<double>(const fs::path&, model::EncDec<double>&);

}  // namespace slope::io
