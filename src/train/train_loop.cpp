// The training loop (see train_loop.h).
#include "train/train_loop.h"

#include <cmath>
#include <string>

#include "dist/data_parallel.h"
#include "model/encdec.h"
#include "model/gpt.h"
#include "slope/error.h"  // slope::Error
#include "train/eval_log.h"
#include "train/lr_schedule.h"

namespace slope::train {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

template <class Model>
TrainSummary run_training_loop(const TrainOptions& o, Model& model, AdamW<float>& adamw,
                               TrainState& state, LoopHooks& hooks, TrainObserver* observer,
                               Clock::time_point run_start, dist::Communicator& comm) {
  const std::filesystem::path& out = o.out_dir;
  const int ranks = comm.size();
  const bool writer = comm.rank() == 0;  // rank 0 alone writes OUT/ and the log
  const int64_t start = state.step;
  const double elapsed_before = state.elapsed_s;  // wall time of the runs before this one
  int64_t saved_step = o.resume ? start : -1;
  EvalLog log(o.log_file(), o.resume ? start : -1);
  const LrSchedule schedule{o.lr, o.warmup_iters, o.decay_end(), o.floor_lr(), true};
  // Why a diverged run stops, and what it left behind.
  // With several ranks the losses are averaged before they are checked, so every rank stops
  // with the same error (an AgreedError: rank 0 reports it).
  const auto diverged = [&](int64_t step, const std::string& what) {
    const Error e = diverged_error(step, what, out, saved_step, true);
    if (ranks > 1) throw dist::AgreedError(e.what());
    return e;
  };

  model.set_training(true);
  TrainSummary summary;
  double train_seconds = 0.0, window_seconds = 0.0, last_lr = 0.0;
  int64_t window_tokens = 0, run_tokens = 0;
  for (int64_t step = start;; ++step) {
    const bool last = step == o.max_iters;
    if ((step % o.eval_interval == 0 || last) && !(o.resume && step == start)) {
      EvalReport r;
      r.step = step;
      r.train_loss = hooks.train_loss();
      r.val_loss = hooks.val_loss();
      if (!std::isfinite(r.train_loss) || !std::isfinite(r.val_loss))
        throw diverged(step, "the eval loss is " + std::to_string(r.val_loss));
      r.lr = last_lr;
      r.tokens_per_s = window_seconds > 0.0 ? window_tokens / window_seconds : 0.0;
      r.elapsed_s = elapsed_before + seconds_since(run_start);
      r.best = step > 0 && r.val_loss < state.best_val_loss;
      r.saved = step > 0;
      if (r.best) state.best_val_loss = r.val_loss, state.best_step = step;
      if (r.saved) {
        state.step = step;
        state.adamw_steps = adamw.steps();
        state.batcher = hooks.batcher_state();
        state.dropout_forwards = model.dropout_forwards();
        state.elapsed_s = r.elapsed_s;
        dist::check_same_weights(comm, model.params(), model.table().size(), step);
      }
      dist::run_agreed(comm, [&] {
        if (!writer) return;
        nlohmann::ordered_json line = eval_line(r);
        if (ranks > 1) {  // the data-parallel shape of the step
          line["ranks"] = ranks;
          line["global_batch"] = o.global_batch();
        }
        log.append(line);
        if (r.best) hooks.save_best();
        if (r.saved) {
          hooks.save_extras();
          save_checkpoint(out, model, adamw, state);  // train_state.json last
        }
      });
      if (r.saved) saved_step = step;
      if (observer) observer->on_eval(r);
      summary.last_eval = r;
      window_seconds = 0.0, window_tokens = 0;
    }
    if (last) break;

    const Clock::time_point t0 = Clock::now();
    const double lr = lr_at(schedule, step);
    model.zero_grad();
    double loss = 0.0, targets = 0.0;
    int64_t tokens = 0;
    for (int64_t micro = 0; micro < o.grad_accum; ++micro) {
      double micro_targets = 0.0;
      const float micro_loss = hooks.micro_step(&tokens, &micro_targets);
      if (!std::isfinite(micro_loss) && ranks == 1)
        throw diverged(step + 1, "the training loss is " + std::to_string(micro_loss));
      loss += micro_loss, targets += micro_targets;
      model.backward();
    }
    loss /= static_cast<double>(o.grad_accum);
    const int64_t n = model.table().size();
    if (o.grad_accum > 1) {
      const float scale = 1.0f / static_cast<float>(o.grad_accum);
      float* g = model.grads();
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; ++i) g[i] *= scale;
    }
    if (ranks > 1) {
      // The step's loss is the mean over every rank's predictions: rank r's mean weighs
      // targets_r / Σ targets (1/N for a GPT), and so does its gradient.
      const Clock::time_point c0 = Clock::now();
      double sums[3] = {loss * targets, targets, static_cast<double>(tokens)};
      comm.allreduce_sum(sums, 3);
      loss = sums[0] / sums[1];
      tokens = static_cast<int64_t>(sums[2]);
      if (!std::isfinite(loss))
        throw diverged(step + 1, "the training loss is " + std::to_string(loss));
      dist::average_gradients(comm, model.grads(), n, targets / sums[1]);
      summary.allreduce_s += seconds_since(c0);
      summary.allreduce_bytes = n * static_cast<int64_t>(sizeof(float));
    }
    double norm = 0.0;
    try {
      norm = clip_grad_norm(model.grads(), n, o.grad_clip);
    } catch (const Error&) {
      throw diverged(step + 1, "the gradient norm is not finite");
    }
    adamw.step(model.params(), model.grads(), lr);
    last_lr = lr;
    state.tokens += static_cast<uint64_t>(tokens);

    const double dt = seconds_since(t0);
    train_seconds += dt, window_seconds += dt;
    window_tokens += tokens, run_tokens += tokens;
    if (observer) {
      StepReport s;
      s.step = step + 1, s.max_iters = o.max_iters;
      s.loss = loss, s.lr = lr, s.grad_norm = norm;
      s.tokens_per_s = window_tokens / window_seconds;
      s.elapsed_s = elapsed_before + seconds_since(run_start);
      s.eta_s = seconds_since(run_start) / static_cast<double>(step + 1 - start) *
                static_cast<double>(o.max_iters - step - 1);
      observer->on_step(s);
    }
  }
  summary.steps = o.max_iters;
  summary.best_val_loss = state.best_val_loss;
  summary.best_step = state.best_step;
  summary.tokens_per_s =
      train_seconds > 0.0 ? static_cast<double>(run_tokens) / train_seconds : 0.0;
  summary.train_s = train_seconds;
  summary.elapsed_s = elapsed_before + seconds_since(run_start);
  return summary;
}

template TrainSummary run_training_loop(const TrainOptions&, model::Gpt<float>&, AdamW<float>&,
                                        TrainState&, LoopHooks&, TrainObserver*, Clock::time_point,
                                        dist::Communicator&);
template TrainSummary run_training_loop(const TrainOptions&, model::EncDec<float>&, AdamW<float>&,
                                        TrainState&, LoopHooks&, TrainObserver*, Clock::time_point,
                                        dist::Communicator&);

}  // namespace slope::train
