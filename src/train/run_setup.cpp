// The run setup shared by every trainer (see run_setup.h).
#include "train/run_setup.h"

#include "data/random.h"
#include "io/checkpoint_files.h"
#include "model/encdec.h"
#include "model/gpt.h"
#include "slope/error.h"    // slope::Error
#include "train/trainer.h"  // kDropoutSalt

namespace slope::train {

namespace fs = std::filesystem;

void require_dirs(const TrainOptions& o, const std::string& data_hint) {
  if (o.data_dir.empty())
    throw Error("--data is required: a directory made by `slope prepare`" + data_hint);
  if (o.out_dir.empty()) throw Error("--out is required: the directory for checkpoints and logs");
}

TrainState read_resumed_state(const TrainOptions& o) {
  TrainState state = read_train_state(o.out_dir);
  check_resumable(state.options, o, "the checkpoint in " + o.out_dir.string());
  return state;
}

void check_within_max_iters(const TrainState& state, const TrainOptions& o) {
  if (state.step > o.max_iters)
    throw Error("the checkpoint in " + o.out_dir.string() + " is at step " +
                std::to_string(state.step) + ", beyond --max-iters " + std::to_string(o.max_iters) +
                ": pass a larger --max-iters to go on");
}

void refuse_existing_run(const fs::path& out, bool model_too) {
  std::error_code ec;
  if (!model_too) {
    if (has_checkpoint(out))
      throw Error(out.string() + " already holds a training checkpoint (" + io::kTrainStateFile +
                  "): pass --resume to continue it, or choose another --out");
  } else if (has_checkpoint(out) || fs::exists(out / io::kConfigFile, ec)) {
    throw Error(out.string() +
                " already holds a checkpoint: pass --resume to continue it, or "
                "choose another --out");
  }
}

template <class Model>
void start_run(const TrainOptions& o, TrainState& state, Model& model, AdamW<float>& adamw,
               const std::function<void(const data::BatcherState&)>& restore_batcher, int rank) {
  const fs::path& out = o.out_dir;
  if (o.resume) {
    load_checkpoint(out, state, model, adamw);
    restore_batcher(state.batcher);
  } else {
    state.dropout_seed = data::splitmix64(o.seed ^ kDropoutSalt);
    state.dropout_forwards = 0;
    std::error_code ec;
    if (rank == 0) fs::create_directories(out, ec);
    if (ec) throw Error("cannot create --out " + out.string() + ": " + ec.message());
  }
  const uint64_t seed =
      rank == 0
          ? state.dropout_seed
          : data::splitmix64(state.dropout_seed ^ data::splitmix64(static_cast<uint64_t>(rank)));
  model.set_dropout_seed(seed, state.dropout_forwards);
  state.options = o;
  state.data_dir = fs::absolute(o.data_dir);
}

template void start_run(const TrainOptions&, TrainState&, model::Gpt<float>&, AdamW<float>&,
                        const std::function<void(const data::BatcherState&)>&, int);
template void start_run(const TrainOptions&, TrainState&, model::EncDec<float>&, AdamW<float>&,
                        const std::function<void(const data::BatcherState&)>&, int);

}  // namespace slope::train
