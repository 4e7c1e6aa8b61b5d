// The eval log of a training run: JSON lines, one per eval.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "files/atomic_file.h"
#include "files/read_file.h"
#include "slope/error.h"  // slope::Error
#include "train/trainer.h"    // EvalReport

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
    std::istringstream in(files::read_file(path_));
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (j.is_object() && j.contains("step") && j["step"].is_number_integer() &&
          j["step"].get<int64_t>() <= keep_through_step)
        text_ += line + "\n";
    }
  }
  void append(const nlohmann::ordered_json& line) {
    text_ += line.dump() + "\n";
    files::write_file_atomic(path_, text_);
  }

 private:
  std::filesystem::path path_;
  std::string text_;
};

// One eval as a line of the log.
inline nlohmann::ordered_json eval_line(const EvalReport& r) {
  nlohmann::ordered_json line;
  line["step"] = r.step;
  line["train_loss"] = r.train_loss;
  line["val_loss"] = r.val_loss;
  line["lr"] = r.lr;
  line["tokens_per_s"] = r.tokens_per_s;
  line["elapsed_s"] = r.elapsed_s;
  line["best"] = r.best;
  return line;
}

// Why a diverged run stops, and what it left behind in `out` (saved_step < 0: nothing yet).
inline Error diverged_error(int64_t step, const std::string& what, const std::filesystem::path& out,
                            int64_t saved_step, bool resumable) {
  const std::string kept = saved_step >= 0 ? out.string() + " still holds the checkpoint of step " +
                                                 std::to_string(saved_step) + ", untouched"
                                           : "no checkpoint was written yet";
  return Error("step " + std::to_string(step) + ": " + what + ": the run diverged (" + kept +
               "); lower --lr or --grad-clip and train again" +
               (resumable && saved_step >= 0 ? " with --resume" : ""));
}

}  // namespace slope::train
