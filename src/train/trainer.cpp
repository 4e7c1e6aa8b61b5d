// The training loop (see trainer.h).
#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <optional>
#include <string>
#include <vector>

#include "data/prepare.h"
#include "data/random.h"
#include "data/token_batcher.h"
#include "data/tokenizer.h"
#include "dist/data_parallel.h"
#include "files/atomic_file.h"
#include "files/json_file.h"
#include "files/read_file.h"
#include "io/checkpoint_files.h"
#include "io/gpt_checkpoint.h"
#include "model/gpt.h"
#include "nn/gemm.h"          // GemmDtypeScope
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
// model in evaluation mode (no dropout). With N ranks, the batcher's batches are the global
// ones (N·B rows) and each rank evaluates its B rows of each: every row holds T targets, so
// the mean of the N·iters means is the mean over the whole batches.
double estimate_loss(model::Gpt<float>& gpt, const data::TokenBatcher& batcher, int64_t iters,
                     dist::Communicator& comm) {
  const int64_t N = comm.size(), Bg = batcher.batch_size(), T = batcher.block_size();
  const int64_t B = Bg / N, first = comm.rank() * B;  // this rank's rows of each batch
  std::vector<uint32_t> windows(static_cast<size_t>(Bg * (T + 1)));
  std::vector<int32_t> idx, targets;
  const bool training = gpt.training();
  gpt.set_training(false);
  double sum = 0.0;
  for (int64_t k = 0; k < iters; ++k) {
    batcher.batch_at(static_cast<uint64_t>(k), windows);
    split_windows(windows, Bg, T, idx, targets);
    sum += gpt.forward(idx.data() + first * T, targets.data() + first * T, B, T);
  }
  gpt.set_training(training);
  if (N == 1) return sum / static_cast<double>(iters);
  comm.allreduce_sum(&sum, 1);
  return sum / static_cast<double>(iters * N);
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

// --init-from: the weights of CKPT (its architecture was checked against the run's by
// load_gpt), its tokenizer the corpus's, and OUT/origin.json saying so (with CKPT's own
// origin, so a chain import → surgery → fine-tune reads whole).
void init_from_checkpoint(const TrainOptions& o, model::Gpt<float>& gpt, bool writer) {
  io::load_gpt(o.init_from, gpt);
  const fs::path theirs = io::tokenizer_dir(o.init_from) / data::kTokenizerMetaFile;
  const fs::path ours = o.data_dir / data::kTokenizerDir / data::kTokenizerMetaFile;
  std::error_code ec;
  if (fs::exists(theirs, ec) && files::read_file(theirs) != files::read_file(ours))
    throw Error("--init-from " + o.init_from.string() +
                " was trained with another tokenizer than "
                "the corpus in " +
                o.data_dir.string() + " (" + theirs.string() + " and " + ours.string() +
                " differ): fine-tune on a corpus prepared with its tokenizer "
                "(slope prepare --tokenizer gpt2 --tokenizer-files " +
                io::tokenizer_dir(o.init_from).string() + ")");
  nlohmann::ordered_json origin;
  origin["made_by"] = "slope train --init-from";
  origin["init_from"] = fs::absolute(o.init_from).string();
  origin["pos"] = model::position_name(o.model.pos);
  origin["block_size"] = o.model.block_size;
  origin["train_block_size"] = o.train_len();
  origin["max_iters"] = o.max_iters;
  origin["tokens"] = o.tokens_per_step() * o.max_iters;
  const fs::path source_origin = o.init_from / io::kOriginFile;
  origin["init_from_origin"] = fs::exists(source_origin, ec)
                                   ? nlohmann::ordered_json(files::read_json_file(source_origin))
                                   : nlohmann::ordered_json(nullptr);
  if (!writer) return;  // rank 0 alone touches OUT/
  fs::create_directories(o.out_dir);
  files::write_json_file(o.out_dir / io::kOriginFile, origin);
}

// A GPT run as the loop sees it: next-token windows of the corpus, the evals at block_size and
// OUT/best/ with the tokenizer.
class GptRun final : public LoopHooks {
 public:
  // Every batcher draws the global batches (o.ranks × B rows); the training batcher hands this
  // rank its B rows of each.
  GptRun(const TrainOptions& o, model::Gpt<float>& gpt, const data::PreparedCorpus& corpus,
         dist::Communicator& comm)
      : o_(o),
        gpt_(gpt),
        corpus_(corpus),
        comm_(comm),
        batcher_(corpus.train, o.ranks * o.micro_batch(), o.train_len(), o.seed),
        train_eval_(corpus.train, o.ranks * o.batch_size, o.model.block_size,
                    data::splitmix64(o.seed ^ kTrainEvalSalt)),
        val_eval_(corpus.val, o.ranks * o.batch_size, o.model.block_size,
                  data::splitmix64(o.seed ^ kValEvalSalt)),
        windows_(static_cast<size_t>(o.micro_batch() * (o.train_len() + 1))) {
    if (o.ranks > 1) batcher_.set_rows({comm.rank() * o.micro_batch(), o.micro_batch()});
  }

  void restore_batcher(const data::BatcherState& s) { batcher_.restore(s); }

  double train_loss() override { return estimate_loss(gpt_, train_eval_, o_.eval_iters, comm_); }
  double val_loss() override { return estimate_loss(gpt_, val_eval_, o_.eval_iters, comm_); }
  float micro_step(int64_t* tokens, double* predictions) override {
    const int64_t Bm = o_.micro_batch(), Tt = o_.train_len();
    batcher_.next(windows_);
    split_windows(windows_, Bm, Tt, idx_, targets_);
    *tokens += Bm * Tt;
    *predictions = static_cast<double>(Bm * Tt);
    return gpt_.forward(idx_.data(), targets_.data(), Bm, Tt);
  }
  data::BatcherState batcher_state() const override { return batcher_.state(); }
  void save_best() override {
    save_best_dir(o_.out_dir, [&](const fs::path& best) {
      io::save_gpt(best, gpt_);
      corpus_.tokenizer->save(io::tokenizer_dir(best));
      std::error_code ec;
      if (const fs::path origin = o_.out_dir / io::kOriginFile; fs::exists(origin, ec))
        files::write_file_atomic(best / io::kOriginFile, files::read_file(origin));
    });
  }

 private:
  const TrainOptions& o_;
  model::Gpt<float>& gpt_;
  const data::PreparedCorpus& corpus_;
  dist::Communicator& comm_;
  data::TokenBatcher batcher_;
  const data::TokenBatcher train_eval_, val_eval_;
  std::vector<uint32_t> windows_;
  std::vector<int32_t> idx_, targets_;
};

}  // namespace

TrainSummary train_gpt(const TrainOptions& options, TrainObserver* observer,
                       dist::Communicator* communicator) {
  const Clock::time_point run_start = Clock::now();
  dist::SingleProcess single;
  dist::Communicator& comm = communicator ? *communicator : single;
  const bool writer = comm.rank() == 0;  // rank 0 alone touches OUT/
  TrainOptions o = options;
  o.ranks = comm.size();
  const fs::path out = o.out_dir;
  // Setup on every rank; an error on any of them stops all of them with rank 0's (or the first
  // failing rank's) message.
  std::optional<data::PreparedCorpus> corpus;
  TrainState state;
  std::optional<nn::GemmDtypeScope> dtype;  // --dtype, for this run's GEMMs
  dist::run_agreed(comm, [&] {
    dtype.emplace(o.dtype);  // bf16 on a CPU without it: refused before OUT is touched
    require_dirs(o);
    if (writer) recover_interrupted_save(out);
  });
  std::optional<model::Gpt<float>> gpt;
  std::optional<AdamW<float>> adamw;
  std::optional<GptRun> run;
  int64_t saved_ranks = o.ranks;  // the checkpoint's, when resumed
  dist::run_agreed(comm, [&] {
    corpus = data::open_prepared_corpus(o.data_dir);
    o.model.vocab_size = corpus->tokenizer->vocab_size();
    validate(o);
    if (o.resume) {
      state = read_resumed_state(o);
      saved_ranks = state.options.ranks;
      check_same_tokenizer(o.data_dir, out);
      check_within_max_iters(state, o);
    } else {
      refuse_existing_run(out, /*model_too=*/false);
    }
    gpt.emplace(o.model, o.seed);
    if (!o.resume && !o.init_from.empty()) init_from_checkpoint(o, *gpt, writer);  // fresh AdamW
    adamw.emplace(gpt->table(), AdamWConfig{o.beta1, o.beta2, 1e-8, o.weight_decay});
    run.emplace(o, *gpt, *corpus, comm);
    start_run(
        o, state, *gpt, *adamw, [&](const data::BatcherState& s) { run->restore_batcher(s); },
        comm.rank());
    // a checkpoint is self-contained
    if (!o.resume && writer) corpus->tokenizer->save(io::tokenizer_dir(out));
  });
  dist::check_same_weights(comm, gpt->params(), gpt->table().size(), state.step);

  if (observer) {
    TrainStart s;
    s.num_params = gpt->num_params(), s.vocab_size = o.model.vocab_size;
    s.start_step = state.step, s.max_iters = o.max_iters;
    s.micro_batch = o.micro_batch(), s.train_len = o.train_len();
    s.tokens_per_step = o.tokens_per_step();
    s.ranks = o.ranks, s.saved_ranks = saved_ranks, s.global_batch = o.global_batch();
    s.communicator = comm.name();
    observer->on_start(s);
  }
  return run_training_loop(o, *gpt, *adamw, state, *run, observer, run_start, comm);
}

}  // namespace slope::train
