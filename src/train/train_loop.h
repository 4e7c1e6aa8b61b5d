// The loop every `slope train` run goes through, whatever the model (trainer.h: GPT;
// encdec_trainer.h: encoder, seq2seq). The trainers set up the model, the batches and the
// checkpoint's extra files, and hand the loop what differs as hooks:
//
//   for step = state.step .. max_iters:
//     every eval_interval steps and at the end (not at a resumed run's first step): train and
//       val loss, a line in the log, OUT/best/ when val improved, the training checkpoint in OUT/
//     zero_grad; grad_accum × (micro_step → loss → backward); grads /= grad_accum;
//     clip to grad_clip; AdamW with lr_at(step)
//
// A loss, gradient norm or eval that is not finite stops the run with slope::Error before
// anything is written: OUT/ keeps the last good checkpoint.
#pragma once

#include <chrono>
#include <cstdint>

#include "data/token_batcher.h"  // BatcherState
#include "train/adamw.h"
#include "train/train_state.h"
#include "train/trainer.h"

namespace slope::train {

// What the loop asks of a run: its batches, its evals and its files.
class LoopHooks {
 public:
  virtual ~LoopHooks() = default;
  // Mean loss over fixed train and val batches, the model in evaluation mode.
  virtual double train_loss() = 0;
  virtual double val_loss() = 0;
  // One training micro-batch: the forward with targets; returns its loss and adds the tokens it
  // trained on to *tokens. The loop calls backward() after it.
  virtual float micro_step(int64_t* tokens) = 0;
  virtual data::BatcherState batcher_state() const = 0;  // saved with each checkpoint
  virtual void save_best() = 0;                          // the model into OUT/best/
  virtual void save_extras() {}  // files OUT/ holds besides the checkpoint (vocabulary)
};

// Runs from state.step to options.max_iters, updating `state` (the loss records, the position
// to resume from) and writing OUT/ through save_checkpoint(). The model must have its dropout
// seed and, when resumed, its weights set. run_start: when this process's run began.
template <class Model>
TrainSummary run_training_loop(const TrainOptions& options, Model& model, AdamW<float>& adamw,
                               TrainState& state, LoopHooks& hooks, TrainObserver* observer,
                               std::chrono::steady_clock::time_point run_start);

}  // namespace slope::train
