// The training loop (see trainer.h).
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "files/atomic_file.h"
#include "files/read_file.h"
#include "data/prepare.h"
#include "data/random.h"
#include "data/token_batcher.h"
#include "data/tokenizer.h"
#include "io/checkpoint_files.h"
#include "io/gpt_checkpoint.h"
#include "model/gpt.h"
#include "slope/attention.h"  // slope::Error
#include "train/adamw.h"
#include "train/run_setup.h"
#include "train/train_loop.h"
#include "train/train_state.h"

namespace slope::train {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// Windows (B, T+1) → inputs idx (B, T) and targets (B, T), shifted by one.
void split_windows(const std::vector<uint32_t>& windows, int64_t B, int64_t T,
                   std::vector<int32_t>& idx, std::vector<int32_t>& targets) {
  idx.resize(static_cast<size_t>(B * T));
  targets.resize(idx.size());
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      idx[b * T + t] = static_cast<int32_t>(windows[b * (T + 1) + t]);
      targets[b * T + t] = static_cast<int32_t>(windows[b * (T + 1) + t + 1]);
    }
}

// Mean loss over batches 0 .. iters−1 of `batcher` (the same batches at every eval), with the
// model in evaluation mode (no dropout).
double estimate_loss(model::Gpt<float>& gpt, const data::TokenBatcher& batcher, int64_t iters) {
  const int64_t B = batcher.batch_size(), T = batcher.block_size();
  std::vector<uint32_t> windows(static_cast<size_t>(B * (T + 1)));
  std::vector<int32_t> idx, targets;
  const bool training = gpt.training();
  gpt.set_training(false);
  double sum = 0.0;
  for (int64_t k = 0; k < iters; ++k) {
    batcher.batch_at(static_cast<uint64_t>(k), windows);
    split_windows(windows, B, T, idx, targets);
    sum += gpt.forward(idx.data(), targets.data(), B, T);
  }
  gpt.set_training(training);
  return sum / static_cast<double>(iters);
}

// A checkpoint names its tokenizer by content: the corpus resumed on must have been prepared
// with the same one.
void check_same_tokenizer(const fs::path& data_dir, const fs::path& out) {
  const fs::path ours = io::tokenizer_dir(out) / data::kTokenizerMetaFile;
  const fs::path theirs = data_dir / data::kTokenizerDir / data::kTokenizerMetaFile;
  if (files::read_file(ours) != files::read_file(theirs))
    throw Error("the corpus in " + data_dir.string() +
                " was prepared with another tokenizer than " + "the checkpoint in " + out.string() +
                " (" + ours.string() + " and " + theirs.string() +
                " differ): resume with --data of the corpus it was trained on");
}

}  // namespace

TrainSummary train_gpt(const TrainOptions& options, TrainObserver* observer) {
  const Clock::time_point run_start = Clock::now();
  TrainOptions o = options;
  require_dirs(o);
  const fs::path out = o.out_dir;
  data::PreparedCorpus corpus = data::open_prepared_corpus(o.data_dir);
  o.model.vocab_size = corpus.tokenizer->vocab_size();
  validate(o);

  TrainState state;
  if (o.resume) {
    state = read_resumed_state(o);
    check_same_tokenizer(o.data_dir, out);
    check_within_max_iters(state, o);
  } else {
    refuse_existing_run(out, /*model_too=*/false);
  }

  model::Gpt<float> gpt(o.model, o.seed);
  AdamW<float> adamw(gpt.table(), {o.beta1, o.beta2, 1e-8, o.weight_decay});
  data::TokenBatcher batcher(corpus.train, o.micro_batch(), o.train_len(), o.seed);
  const data::TokenBatcher train_eval(corpus.train, o.batch_size, o.model.block_size,
                                      data::splitmix64(o.seed ^ kTrainEvalSalt));
  const data::TokenBatcher val_eval(corpus.val, o.batch_size, o.model.block_size,
                                    data::splitmix64(o.seed ^ kValEvalSalt));
  start_run(o, state, gpt, adamw, [&](const data::BatcherState& s) { batcher.restore(s); });
  if (!o.resume) corpus.tokenizer->save(io::tokenizer_dir(out));  // a checkpoint is self-contained

  const int64_t Bm = o.micro_batch(), Tt = o.train_len();
  if (observer)
    observer->on_start({gpt.num_params(), o.model.vocab_size, state.step, o.max_iters, Bm, Tt,
                        o.tokens_per_step()});
  std::vector<uint32_t> windows(static_cast<size_t>(Bm * (Tt + 1)));
  std::vector<int32_t> idx, targets;
  LoopHooks hooks;
  hooks.train_loss = [&] { return estimate_loss(gpt, train_eval, o.eval_iters); };
  hooks.val_loss = [&] { return estimate_loss(gpt, val_eval, o.eval_iters); };
  hooks.micro_step = [&](int64_t* tokens) {
    batcher.next(windows);
    split_windows(windows, Bm, Tt, idx, targets);
    *tokens += Bm * Tt;
    return gpt.forward(idx.data(), targets.data(), Bm, Tt);
  };
  hooks.batcher_state = [&] { return batcher.state(); };
  hooks.save_best = [&] {
    io::save_gpt(io::best_dir(out), gpt);
    corpus.tokenizer->save(io::tokenizer_dir(io::best_dir(out)));
  };
  return run_training_loop(o, gpt, adamw, state, hooks, observer, run_start);
}

}  // namespace slope::train
