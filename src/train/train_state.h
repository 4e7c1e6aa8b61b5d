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

// Writes the four files (see above). Throws slope::Error on a failed write; the files already
// replaced stay, and train_state.json still describes the previous set until it is replaced.
// Model: model::Gpt<float> (io/gpt_checkpoint.h) or model::EncDec<float> (io/encdec_checkpoint.h).
template <class Model>
void save_checkpoint(const std::filesystem::path& dir, const Model& model,
                     const AdamW<float>& adamw, const TrainState& state);

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
