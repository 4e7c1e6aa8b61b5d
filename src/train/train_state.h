// A training checkpoint: everything a stopped run needs to go on as if it had never stopped.
//
//   DIR/model.safetensors      the weights (io/gpt_checkpoint.h), nanoGPT names
//   DIR/config.json            the GPT's config
//   DIR/optimizer.safetensors  AdamW's moments: "<param>.exp_avg" and "<param>.exp_avg_sq"
//                              (PyTorch's state names), F32, the parameters' shapes
//   DIR/train_state.json       {"format": "slope-train-state", "version": 1, "step",
//                              "adamw_steps", "batcher": {seed, batches_drawn, batch_size,
//                              block_size}, "dropout": {run_seed, forwards}, "best_val_loss",
//                              "best_step", "elapsed_s", "tokens", "data", "options": {flags},
//                              "files": {name: {"bytes", "fnv1a64"}} of the three files above}
//
// Every file is written atomically and train_state.json last: it names the size and checksum
// of each file it belongs with, so a run killed between two writes leaves a set that
// load_checkpoint() refuses (naming the file) rather than one that mixes two steps.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>

#include "data/token_batcher.h"
#include "io/checkpoint_files.h"  // kTrainStateFile, kOptimizerFile
#include "model/encdec.h"
#include "model/gpt.h"
#include "train/adamw.h"
#include "train/train_options.h"

namespace slope::train {

constexpr uint32_t kTrainStateVersion = 1;

struct TrainState {
  int64_t step = 0;         // optimizer steps done
  int64_t adamw_steps = 0;  // AdamW's t (= step)
  data::BatcherState batcher;
  uint64_t dropout_seed = 0;
  uint64_t dropout_forwards = 0;  // training forwards that drew dropout masks
  double best_val_loss = std::numeric_limits<double>::infinity();
  int64_t best_step = -1;          // -1: no eval yet
  double elapsed_s = 0.0;          // wall time of every run so far
  uint64_t tokens = 0;             // training tokens seen
  TrainOptions options;            // the flags the run was started (or last resumed) with
  std::filesystem::path data_dir;  // --data, absolute: a resume without --data reads it again
};

// True when dir holds a train_state.json (a checkpoint, complete or not).
bool has_checkpoint(const std::filesystem::path& dir);

// Staging directories inside OUT: the checkpoint being written, and the next best/.
inline constexpr char kCheckpointStaging[] = ".checkpoint-next";
inline constexpr char kBestStaging[] = ".best-next";

// Writes the four files (see above) into OUT as one set: first into OUT/.checkpoint-next/, then
// committed (files/staged_commit.h), so that a crash at any moment leaves OUT's checkpoint old or
// new, and recover_interrupted_save() makes it whole. Throws slope::Error on a failed write (disk
// full: the previous checkpoint is untouched). Model: model::Gpt<float> (io/gpt_checkpoint.h) or
// model::EncDec<float> (io/encdec_checkpoint.h).
template <class Model>
void save_checkpoint(const std::filesystem::path& out, const Model& model,
                     const AdamW<float>& adamw, const TrainState& state);

// Finishes or discards what a killed run left half-saved in OUT: a complete staged checkpoint
// is committed, an incomplete one removed, a leftover best/ staging removed. Every `slope train`
// calls it before it reads OUT. Throws slope::Error on a system failure.
void recover_interrupted_save(const std::filesystem::path& out);

// Replaces OUT/best/ as one: write(dir) fills a fresh OUT/.best-next/, which is then swapped in
// atomically (files::replace_directory). On an exception (disk full) best/ is left as it was.
void save_best_dir(const std::filesystem::path& out,
                   const std::function<void(const std::filesystem::path&)>& write);

// Reads and checks DIR/train_state.json alone (format, version, fields).
TrainState read_train_state(const std::filesystem::path& dir);

// Checks every file against train_state.json's sizes and checksums, then loads the weights
// into gpt (whose config must match config.json) and the moments into adamw. Throws
// slope::Error naming the file that is missing, truncated or from another step; gpt and adamw
// are unchanged then.
template <class Model>
void load_checkpoint(const std::filesystem::path& dir, const TrainState& state, Model& model,
                     AdamW<float>& adamw);

}  // namespace slope::train
