// What every `slope train` run does around its model, whatever the architecture (trainer.h:
// GPT; encdec_trainer.h: encoder, seq2seq): the required directories, the checks of a resume
// (the checkpoint's flags, its step against --max-iters) or of a new run (OUT holds no run
// yet), and the state the loop starts from: the checkpoint's weights, moments, batcher and
// dropout counter, or the dropout seed of a new run and its OUT directory.
//
// The trainers call these in order:
//
//   require_dirs(o, hint); validate(o);
//   state = o.resume ? read_resumed_state(o) (+ corpus checks, check_within_max_iters(state, o))
//                    : (refuse_existing_run(out, ...), TrainState{});
//   build the model, AdamW and the batches;
//   start_run(o, state, model, adamw, restore_batcher);
#pragma once

#include <filesystem>
#include <functional>
#include <string>

#include "data/token_batcher.h"  // BatcherState
#include "train/adamw.h"
#include "train/train_options.h"
#include "train/train_state.h"

namespace slope::train {

// Throws slope::Error when --data or --out is missing; data_hint follows `slope prepare` in
// the message (" --task g2p" for a seq2seq).
void require_dirs(const TrainOptions& o, const std::string& data_hint = "");

// OUT/train_state.json, checked against the flags of this run (check_resumable).
TrainState read_resumed_state(const TrainOptions& o);

// Throws slope::Error when the checkpoint is already beyond --max-iters.
void check_within_max_iters(const TrainState& state, const TrainOptions& o);

// A new run refuses an OUT that already holds one: a training checkpoint (train_state.json)
// and, when model_too, a model (config.json) as well.
void refuse_existing_run(const std::filesystem::path& out, bool model_too);

// Sets up the model, AdamW and the batcher for the loop: a resumed run loads OUT's checkpoint
// (load_checkpoint) and restores the batcher's position and the dropout counter; a new run
// seeds dropout from --seed and creates OUT. Then records this run's flags and --data in state.
// rank > 0 (a data-parallel run): dropout draws its own masks, seeded from the run's dropout
// seed and the rank (rank 0's are the single process's), and OUT is left to rank 0.
template <class Model>
void start_run(const TrainOptions& o, TrainState& state, Model& model, AdamW<float>& adamw,
               const std::function<void(const data::BatcherState&)>& restore_batcher, int rank = 0);

}  // namespace slope::train
