// Training checkpoints (see train_state.h).
#include "train/train_state.h"

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "files/atomic_file.h"
#include "files/json_file.h"
#include "files/read_file.h"
#include "files/staged_commit.h"
#include "io/encdec_checkpoint.h"
#include "io/gpt_checkpoint.h"
#include "io/safetensors.h"
#include "slope/error.h"  // slope::Error

namespace slope::train {

namespace fs = std::filesystem;

namespace {

constexpr const char* kFormat = "slope-train-state";
constexpr const char* kMoments[] = {".exp_avg", ".exp_avg_sq"};  // PyTorch's AdamW state names
constexpr size_t kChunk = size_t{1} << 20;

struct FileSum {
  uint64_t bytes = 0;
  uint64_t fnv = files::kFnv1aOffset;
};

FileSum checksum(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("checkpoint file " + path.string() + " is missing or unreadable");
  FileSum s;
  std::vector<char> buf(kChunk);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const size_t n = static_cast<size_t>(in.gcount());
    s.fnv = files::fnv1a64(buf.data(), n, s.fnv);
    s.bytes += n;
  }
  return s;
}

const char* const kCheckedFiles[] = {io::kModelFile, io::kConfigFile, io::kOptimizerFile};

}  // namespace

bool has_checkpoint(const fs::path& dir) {
  std::error_code ec;
  return fs::exists(dir / io::kTrainStateFile, ec);
}

namespace {

// The weights and config.json of each kind of model.
void save_model(const fs::path& dir, const model::Gpt<float>& gpt) { io::save_gpt(dir, gpt); }
void save_model(const fs::path& dir, const model::EncDec<float>& m) { io::save_encdec(dir, m); }
void load_model(const fs::path& dir, model::Gpt<float>& gpt) { io::load_gpt(dir, gpt); }
void load_model(const fs::path& dir, model::EncDec<float>& m) { io::load_encdec(dir, m); }

}  // namespace

template <class Model>
void save_checkpoint(const fs::path& out, const Model& gpt, const AdamW<float>& adamw,
                     const TrainState& state) {
  // Written into OUT/.checkpoint-next/, then committed into OUT as one (files/staged_commit.h).
  files::StagedFiles staged(out, kCheckpointStaging);
  const fs::path& dir = staged.path();
  save_model(dir, gpt);
  std::vector<io::TensorView> moments;
  for (const model::ParamSpec& s : gpt.table().specs()) {
    moments.push_back({s.name + kMoments[0], io::Dtype::F32, s.shape, adamw.m() + s.offset});
    moments.push_back({s.name + kMoments[1], io::Dtype::F32, s.shape, adamw.v() + s.offset});
  }
  io::write_safetensors(dir / io::kOptimizerFile, moments, {{"step", std::to_string(state.step)}});

  nlohmann::ordered_json j;
  j["format"] = kFormat;
  j["version"] = kTrainStateVersion;
  j["step"] = state.step;
  j["adamw_steps"] = state.adamw_steps;
  j["batcher"] = {{"seed", state.batcher.seed},
                  {"batches_drawn", state.batcher.batches_drawn},
                  {"batch_size", state.batcher.batch_size},
                  {"block_size", state.batcher.block_size}};
  j["dropout"] = {{"run_seed", state.dropout_seed}, {"forwards", state.dropout_forwards}};
  j["best_val_loss"] = state.best_step >= 0 ? nlohmann::ordered_json(state.best_val_loss)
                                            : nlohmann::ordered_json(nullptr);
  j["best_step"] = state.best_step;
  j["elapsed_s"] = state.elapsed_s;
  j["tokens"] = state.tokens;
  j["data"] = state.data_dir.string();
  j["options"] = options_to_json(state.options);
  nlohmann::ordered_json files = nlohmann::ordered_json::object();
  for (const char* name : kCheckedFiles) {
    const FileSum s = checksum(dir / name);
    files[name] = {{"bytes", s.bytes}, {"fnv1a64", files::hex64(s.fnv)}};
  }
  j["files"] = files;
  files::write_json_file(dir / io::kTrainStateFile, j);
  staged.commit({io::kConfigFile, io::kModelFile, io::kOptimizerFile, io::kTrainStateFile});
}

void recover_interrupted_save(const fs::path& out) {
  std::error_code ec;
  if (!fs::is_directory(out, ec)) return;
  files::recover_staged_files(out, kCheckpointStaging);
  // A best/ never swapped in, or the old one swapped out (".old": replace_directory's fallback).
  for (const std::string& name : {std::string(kBestStaging), std::string(kBestStaging) + ".old"}) {
    fs::remove_all(out / name, ec);
    if (ec) throw Error("cannot remove " + (out / name).string() + ": " + ec.message());
  }
}

void save_best_dir(const fs::path& out, const std::function<void(const fs::path&)>& write) {
  const fs::path staging = out / kBestStaging;
  std::error_code ec;
  fs::remove_all(staging, ec);
  if (ec) throw Error("cannot remove " + staging.string() + ": " + ec.message());
  try {
    write(staging);
    files::replace_directory(staging, io::best_dir(out));
  } catch (...) {
    fs::remove_all(staging, ec);  // a failed write (disk full) leaves best/ as it was
    throw;
  }
}

TrainState read_train_state(const fs::path& dir) {
  const fs::path path = dir / io::kTrainStateFile;
  if (!has_checkpoint(dir))
    throw Error(dir.string() + " holds no training checkpoint (no " + io::kTrainStateFile +
                "): train without --resume first");
  const nlohmann::json j = files::read_json_file(path);
  files::check_json_format(j, kFormat, kTrainStateVersion, path);
  TrainState s;
  s.step = files::json_field<int64_t>(j, "step", path);
  s.adamw_steps = files::json_field<int64_t>(j, "adamw_steps", path);
  const auto batcher = files::json_field<nlohmann::json>(j, "batcher", path);
  s.batcher.seed = files::json_field<uint64_t>(batcher, "seed", path);
  s.batcher.batches_drawn = files::json_field<uint64_t>(batcher, "batches_drawn", path);
  s.batcher.batch_size = files::json_field<int64_t>(batcher, "batch_size", path);
  s.batcher.block_size = files::json_field<int64_t>(batcher, "block_size", path);
  const auto dropout = files::json_field<nlohmann::json>(j, "dropout", path);
  s.dropout_seed = files::json_field<uint64_t>(dropout, "run_seed", path);
  s.dropout_forwards = files::json_field<uint64_t>(dropout, "forwards", path);
  s.best_step = files::json_field<int64_t>(j, "best_step", path);
  if (s.best_step >= 0) s.best_val_loss = files::json_field<double>(j, "best_val_loss", path);
  s.elapsed_s = files::json_field<double>(j, "elapsed_s", path);
  s.tokens = files::json_field<uint64_t>(j, "tokens", path);
  s.data_dir = files::json_field<std::string>(j, "data", path);
  s.options =
      options_from_json(files::json_field<nlohmann::json>(j, "options", path), path.string());
  if (s.step < 0 || s.adamw_steps != s.step)
    throw Error(path.string() + ": step " + std::to_string(s.step) + " and adamw_steps " +
                std::to_string(s.adamw_steps) + " disagree: the checkpoint is damaged");
  return s;
}

template <class Model>
void load_checkpoint(const fs::path& dir, const TrainState& state, Model& gpt,
                     AdamW<float>& adamw) {
  const fs::path state_path = dir / io::kTrainStateFile;
  const nlohmann::json j = files::read_json_file(state_path);
  const auto files = files::json_field<nlohmann::json>(j, "files", state_path);
  for (const char* name : kCheckedFiles) {
    const auto entry = files::json_field<nlohmann::json>(files, name, state_path);
    const auto bytes = files::json_field<uint64_t>(entry, "bytes", state_path);
    const auto fnv = files::json_field<std::string>(entry, "fnv1a64", state_path);
    const FileSum s = checksum(dir / name);
    if (s.bytes != bytes || files::hex64(s.fnv) != fnv)
      throw Error("checkpoint file " + (dir / name).string() + " does not match " +
                  state_path.string() + " (" + std::to_string(s.bytes) + " bytes, expected " +
                  std::to_string(bytes) + (s.bytes == bytes ? ", other content" : "") +
                  "): it is truncated, damaged or from another step; resume from a copy of a "
                  "complete checkpoint or start again without --resume");
  }

  // Stage the moments, then the weights (loading leaves the model unchanged when it fails).
  const io::SafetensorsReader reader(dir / io::kOptimizerFile);
  const int64_t n = gpt.table().size();
  std::vector<float> m(static_cast<size_t>(n), 0.0f), v(static_cast<size_t>(n), 0.0f);
  for (const model::ParamSpec& s : gpt.table().specs()) {
    reader.read(s.name + kMoments[0], s.shape, m.data() + s.offset);
    reader.read(s.name + kMoments[1], s.shape, v.data() + s.offset);
  }
  load_model(dir, gpt);
  std::copy(m.begin(), m.end(), adamw.m());
  std::copy(v.begin(), v.end(), adamw.v());
  adamw.set_steps(state.adamw_steps);
}

template void save_checkpoint(const fs::path&, const model::Gpt<float>&, const AdamW<float>&,
                              const TrainState&);
template void save_checkpoint(const fs::path&, const model::EncDec<float>&, const AdamW<float>&,
                              const TrainState&);
template void load_checkpoint(const fs::path&, const TrainState&, model::Gpt<float>&,
                              AdamW<float>&);
template void load_checkpoint(const fs::path&, const TrainState&, model::EncDec<float>&,
                              AdamW<float>&);

}  // namespace slope::train
