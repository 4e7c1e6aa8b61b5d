// The eval log of a training run: JSON lines, one per eval.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "data/atomic_file.h"

namespace slope::train {

// The eval log: JSON lines, rewritten whole and atomically at each eval. A resumed run keeps the
// lines up to its checkpoint's step (later ones came from evals whose checkpoint was never
// written).
class EvalLog {
 public:
  EvalLog(std::filesystem::path path, int64_t keep_through_step) : path_(std::move(path)) {
    if (keep_through_step < 0) return;
    std::error_code ec;
    if (!std::filesystem::exists(path_, ec)) return;
    std::istringstream in(data::read_file(path_));
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
          j["step"].get<int64_t>() <= keep_through_step)
        text_ += line + "\n";
    }
  }
  void append(const nlohmann::ordered_json& line) {
    text_ += line.dump() + "\n";
    data::write_file_atomic(path_, text_);
  }

 private:
  std::filesystem::path path_;
  std::string text_;
};

}  // namespace slope::train
