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
//
// Data-parallel (dist/communicator.h, N ranks under mpirun): every rank runs this loop on its
// own micro-batches (the hooks draw rank r's rows of each global batch), and after the
// backward the gradient arena becomes the gradient of the whole step's loss
// (dist::average_gradients, each rank weighted by its share of the predicted tokens), so every
// rank takes the same clip and the same AdamW step. Step losses are averaged the same way; the
// eval hooks average over ranks themselves. Rank 0 alone writes the log, OUT/best/ and the
// checkpoint; the others wait for it at the next collective, and an error in any of that
// reaches every rank (dist::run_agreed). With one rank every collective is a no-op and the
// loop is the single-process loop, bit for bit.
#pragma once

#include <chrono>
#include <cstdint>

#include "data/token_batcher.h"  // BatcherState
#include "dist/communicator.h"
#include "train/adamw.h"
#include "train/train_state.h"
#include "train/trainer.h"

namespace slope::train {

// What the loop asks of a run: its batches, its evals and its files.
class LoopHooks {
 public:
  virtual ~LoopHooks() = default;
  // Mean loss over fixed train and val batches, the model in evaluation mode; with several
  // ranks, each evaluates its share of the batches and the mean is over all of them (the same
  // value on every rank).
  virtual double train_loss() = 0;
  virtual double val_loss() = 0;
  // One training micro-batch (this rank's rows of it): the forward with targets; returns its
  // loss, adds the tokens it trained on to *tokens and sets *targets to the number of
  // predictions its loss is the mean of (B·T for a GPT; the selected or target tokens of an
  // encoder or seq2seq batch). The loop calls backward() after it.
  virtual float micro_step(int64_t* tokens, double* targets) = 0;
  virtual data::BatcherState batcher_state() const = 0;  // saved with each checkpoint
  virtual void save_best() = 0;                          // the model into OUT/best/
  virtual void save_extras() {}  // files OUT/ holds besides the checkpoint (vocabulary)
};

// Runs from state.step to options.max_iters, updating `state` (the loss records, the position
// to resume from) and writing OUT/ through save_checkpoint(). The model must have its dropout
// seed and, when resumed, its weights set. run_start: when this process's run began. observer:
// rank 0's (the others pass null). Every rank must hold the same weights and moments.
template <class Model>
TrainSummary run_training_loop(const TrainOptions& options, Model& model, AdamW<float>& adamw,
                               TrainState& state, LoopHooks& hooks, TrainObserver* observer,
                               std::chrono::steady_clock::time_point run_start,
                               dist::Communicator& comm);

}  // namespace slope::train
