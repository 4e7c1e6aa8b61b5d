// A model's training mode and the bookkeeping of its dropout masks, shared by Gpt and EncDec.
//
// Training mode turns dropout on (evaluation, the default, turns it off), like nn.Module.train()
// / .eval(). The masks of the k-th training forward come from nn::dropout_seed(run_seed, k, site)
// (site: model/stack.h's dropout call sites), so the backward draws the same masks again and a
// resumed run draws the masks it would have drawn.
#pragma once

#include <cstdint>

#include "model/arena.h"  // zero
#include "nn/dropout.h"

namespace slope::model {

// A forward's dropout: applies, in place at a call site, dropout of probability p with this
// forward's masks (nothing at p = 0).
template <class Real>
struct ForwardDropout {
  double p;
  uint64_t run_seed, step;
  void operator()(Real* x, int64_t n, uint64_t site) const {
    if (p > 0.0) nn::dropout_forward(x, x, p, nn::dropout_seed(run_seed, step, site), n);
  }
};

// The backward's: d(branch before dropout) from d(branch after) at a call site, written to
// `scratch` (n values); dout itself when nothing was dropped.
template <class Real>
struct BackwardDropout {
  double p;
  uint64_t run_seed, step;
  Real* scratch;
  const Real* operator()(const Real* dout, int64_t n, uint64_t site) const {
    if (p == 0.0) return dout;
    zero(scratch, n);
    nn::dropout_backward(scratch, dout, p, nn::dropout_seed(run_seed, step, site), n);
    return scratch;
  }
};

class DropoutMode {
 public:
  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }

  // Forwards count from `next_forward`. Set it when resuming a run, or to draw one mask again
  // (the gradient checks).
  void set_dropout_seed(uint64_t run_seed, uint64_t next_forward = 0) {
    run_seed_ = run_seed;
    forward_count_ = next_forward;
  }
  uint64_t dropout_forwards() const { return forward_count_; }  // training forwards so far

 protected:
  // The masks of the next forward at the model's dropout `rate` (0 outside training mode). Once
  // that forward has run, forward_done(drop) counts it and keeps its masks for the backward.
  template <class Real>
  ForwardDropout<Real> forward_dropout(double rate) const {
    return {training_ ? rate : 0.0, run_seed_, forward_count_};
  }
  template <class Real>
  void forward_done(const ForwardDropout<Real>& drop) {
    if (drop.p > 0.0) ++forward_count_;
    last_step_ = drop.step, last_p_ = drop.p;
  }
  // The last forward's masks, undone in the backward.
  template <class Real>
  BackwardDropout<Real> backward_dropout(Real* scratch) const {
    return {last_p_, run_seed_, last_step_, scratch};
  }

 private:
  bool training_ = false;
  uint64_t run_seed_ = 0;
  uint64_t forward_count_ = 0;  // training forwards so far
  uint64_t last_step_ = 0;      // the count the last forward drew its masks with
  double last_p_ = 0.0;         // the dropout probability of the last forward
};

// Evaluation mode for a scope: dropout off, the previous mode restored on exit (exceptions
// included).
template <class Model>
class EvalMode {
 public:
  explicit EvalMode(Model& m) : m_(m), training_(m.training()) { m_.set_training(false); }
  ~EvalMode() { m_.set_training(training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  Model& m_;
  bool training_;
};

}  // namespace slope::model
