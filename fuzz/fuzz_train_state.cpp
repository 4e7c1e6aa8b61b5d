// A training checkpoint's train_state.json (train/train_state.h), as `slope train --resume`
// reads it (with the run's options inside it).
//
// Input: the whole train_state.json. Invariants: an accepted state has step == adamw_steps ≥ 0
// (what the reader promises), and its options survive options_to_json → options_from_json.
#include "fuzz_common.h"
#include "slope/error.h"
#include "train/train_options.h"
#include "train/train_state.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto path =
      slope::fuzz::write_scratch("ckpt/train_state.json", slope::fuzz::as_text(data, size));
  slope::train::TrainState s;
  try {
    s = slope::train::read_train_state(path.parent_path());
  } catch (const slope::Error&) {
    return 0;
  }
  FUZZ_CHECK(s.step >= 0 && s.adamw_steps == s.step, "step and adamw_steps");
  const std::string once = slope::train::options_to_json(s.options).dump();
  const slope::train::TrainOptions again =
      slope::train::options_from_json(nlohmann::json::parse(once), "again");
  FUZZ_CHECK(slope::train::options_to_json(again).dump() == once,
             "options changed in a JSON round trip: " + once);
  return 0;
}
