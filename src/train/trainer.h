// The training loop of `slope train`, llm.c's step in nanoGPT's loop:
//
//   for step = start .. max_iters:
//     every eval_interval steps and at the end: mean loss over eval_iters fixed batches of the
//       train and val splits (at block_size), a JSON line in the log, the latest checkpoint in
//       OUT/ and, when val improved, the model in OUT/best/
//     zero_grad; grad_accum × (batch → forward → loss → backward); grads /= grad_accum;
//     clip to grad_clip; AdamW with lr_at(step) (warmup, then cosine to min_lr)
//
// A resumed run (options.resume) restores the weights, AdamW's moments and t, the step, the
// batcher's position and the dropout counter from OUT/, so its losses are bitwise those of a run
// that never stopped (same thread count: OpenBLAS's sums depend on it). A loss, gradient norm or
// eval that is not finite stops the run with slope::Error before anything is written: the
// checkpoint in OUT/ is the last good one.
//
// The loop itself is train_loop.h's, which the encoder / seq2seq trainer (encdec_trainer.h)
// runs too; this file sets up the GPT, its batches and its checkpoint files around it.
//
// Library code: nothing is printed. A TrainObserver sees each step and eval (the CLI's
// progress bar and eval lines).
#pragma once

#include <cstdint>
#include <string>

#include "dist/communicator.h"
#include "train/train_options.h"

namespace slope::train {

// A run's random streams other than its training batches (seeded with --seed itself) are
// seeded with splitmix64(--seed ^ salt), one salt per stream; every trainer uses these.
constexpr uint64_t kTrainEvalSalt = 0x7472'6169'6e65'7661ull;
constexpr uint64_t kValEvalSalt = 0x0076'616c'6576'616cull;
constexpr uint64_t kDropoutSalt = 0x6472'6f70'6f75'7421ull;

struct TrainStart {
  int64_t num_params = 0;
  int64_t vocab_size = 0;
  int64_t start_step = 0;  // > 0 when resumed
  int64_t max_iters = 0;
  int64_t micro_batch = 0, train_len = 0;  // the (B, T) of a training forward
  int64_t tokens_per_step = 0;  // 0: it varies (padded batches of variable-length sequences)
  // Data-parallel runs: the ranks now, the ranks of the resumed checkpoint, the sequences of a
  // step over every rank (ranks × micro_batch × grad_accum), and the transport.
  int64_t ranks = 1, saved_ranks = 1, global_batch = 0;
  std::string communicator;
};

struct StepReport {
  int64_t step = 0;  // steps done, 1..max_iters
  int64_t max_iters = 0;
  double loss = 0.0;  // mean over the step's micro-batches
  double lr = 0.0;
  double grad_norm = 0.0;     // before clipping
  double tokens_per_s = 0.0;  // over the steps since the last eval
  double elapsed_s = 0.0;     // since the run first started (across resumes)
  double eta_s = 0.0;         // to max_iters, at the recent pace (evals included)
};

struct EvalReport {
  int64_t step = 0;
  double train_loss = 0.0, val_loss = 0.0;  // mean over eval_iters batches at block_size
  double lr = 0.0;                          // of the step just taken (0 before the first)
  double tokens_per_s = 0.0;
  double elapsed_s = 0.0;
  bool best = false;   // val_loss is the lowest so far: OUT/best/ holds this model
  bool saved = false;  // OUT/ holds this step's checkpoint (every eval after step 0)
};

class TrainObserver {
 public:
  virtual ~TrainObserver() = default;
  virtual void on_start(const TrainStart&) {}
  virtual void on_step(const StepReport&) {}
  virtual void on_eval(const EvalReport&) {}
};

struct TrainSummary {
  int64_t steps = 0;  // the step reached (max_iters)
  EvalReport last_eval;
  double best_val_loss = 0.0;
  int64_t best_step = -1;
  double tokens_per_s = 0.0;  // this run's training steps, evals excluded
  double elapsed_s = 0.0;
  // Data-parallel runs: of this run's training time, the seconds spent averaging gradients
  // (the allreduces, waits for slower ranks included), and the bytes allreduced per step.
  double allreduce_s = 0.0, train_s = 0.0;
  int64_t allreduce_bytes = 0;
};

// Runs (or resumes) a training run. Throws slope::Error: bad options (naming the flag), a
// missing or mismatched corpus or checkpoint, a diverged loss. observer may be null (and is,
// on every rank but 0). comm: the ranks of a data-parallel run (train_loop.h); null: one
// process. options.ranks is set from it.
TrainSummary train_gpt(const TrainOptions& options, TrainObserver* observer = nullptr,
                       dist::Communicator* comm = nullptr);

}  // namespace slope::train
