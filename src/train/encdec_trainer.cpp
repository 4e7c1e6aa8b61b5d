// The encoder / seq2seq training loop (see encdec_trainer.h).
#include "train/encdec_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "data/mlm_batcher.h"
#include "data/pairs.h"
#include "data/prepare.h"
#include "data/random.h"
#include "data/tokenizer.h"
#include "dist/data_parallel.h"
#include "files/atomic_file.h"
#include "files/read_file.h"
#include "io/checkpoint_files.h"
#include "io/encdec_checkpoint.h"
#include "model/encdec.h"
#include "nn/gemm.h"          // GemmDtypeScope
#include "slope/attention.h"  // slope::Error
#include "train/adamw.h"
#include "train/encdec_eval.h"
#include "train/run_setup.h"
#include "train/train_loop.h"
#include "train/train_state.h"

namespace slope::train {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// What differs between the two tasks: the batches of a training step, the eval losses and the
// files a checkpoint carries besides the model.
class Task {
 public:
  virtual ~Task() = default;
  int64_t vocab_size = 0, tgt_vocab_size = 0;
  int64_t max_len = 0;  // the longest training sequence (source side for seq2seq)
  // Runs one training micro-batch (this rank's rows of it: forward with targets); returns its
  // loss, adds its real tokens to *tokens and sets *targets to the predictions it averages.
  virtual float step(model::EncDec<float>& m, int64_t* tokens, double* targets) = 0;
  // This rank's share of the eval losses (encdec_eval.h's LossSum); the run sums them.
  virtual LossSum train_loss(model::EncDec<float>& m) = 0;
  virtual LossSum val_loss(model::EncDec<float>& m) = 0;
  virtual void save_vocab(const fs::path& dir) const = 0;
  // The training batcher's position, for exact resume.
  virtual data::BatcherState batcher_state() const = 0;
  virtual void restore_batcher(const data::BatcherState& s) = 0;
  // The vocabulary files of a corpus or checkpoint directory (the same bytes in both), to refuse
  // resuming on another corpus.
  virtual std::string vocab_bytes(const fs::path& dir) const = 0;
};

class MlmTask final : public Task {
 public:
  // The batchers draw the global batches (o.ranks × B rows); this rank trains and evaluates
  // on its B rows of each.
  MlmTask(const TrainOptions& o, std::shared_ptr<data::PreparedCorpus> corpus, int rank)
      : corpus_(std::move(corpus)),
        rank_(rank),
        ranks_(static_cast<int>(o.ranks)),
        // <mask>: the id after the corpus's tokens
        mask_id_(static_cast<int32_t>(corpus_->tokenizer->vocab_size())),
        B_(o.ranks * o.batch_size),
        L_(o.model.block_size),
        iters_(o.eval_iters),
        p_(o.mask_prob),
        train_seed_(data::splitmix64(o.seed ^ kTrainEvalSalt)),
        val_seed_(data::splitmix64(o.seed ^ kValEvalSalt)),
        batcher_(corpus_->train, B_, o.min_window(), L_, mask_id_, /*corpus vocab=*/mask_id_,
                 o.seed, o.mask_prob) {
    vocab_size = mask_id_ + 1;
    max_len = L_;
    if (o.ranks > 1) batcher_.set_rows({rank * o.batch_size, o.batch_size});
  }

  float step(model::EncDec<float>& m, int64_t* tokens, double* targets) override {
    batcher_.next(batch_);
    for (int32_t n : batch_.lengths) *tokens += n;
    *targets = static_cast<double>(std::count_if(batch_.targets.begin(), batch_.targets.end(),
                                                 [](int32_t t) { return t >= 0; }));
    return m.forward_mlm(batch_.idx.data(), batch_.lengths.data(), batch_.targets.data(), batch_.B,
                         batch_.T);
  }
  LossSum train_loss(model::EncDec<float>& m) override {
    return mlm_loss_part(m, corpus_->train, L_, B_, iters_, mask_id_, p_, train_seed_, rank_,
                         ranks_);
  }
  LossSum val_loss(model::EncDec<float>& m) override {
    return mlm_loss_part(m, corpus_->val, L_, B_, iters_, mask_id_, p_, val_seed_, rank_, ranks_);
  }
  void save_vocab(const fs::path& dir) const override {
    corpus_->tokenizer->save(io::tokenizer_dir(dir));
  }
  data::BatcherState batcher_state() const override { return batcher_.state(); }
  void restore_batcher(const data::BatcherState& s) override { batcher_.restore(s); }
  std::string vocab_bytes(const fs::path& dir) const override {
    return files::read_file(dir / data::kTokenizerDir / data::kTokenizerMetaFile);
  }

 private:
  std::shared_ptr<data::PreparedCorpus> corpus_;
  int rank_, ranks_;
  int32_t mask_id_;
  int64_t B_, L_, iters_;
  double p_;
  uint64_t train_seed_, val_seed_;
  data::MlmBatcher batcher_;
  data::MlmBatch batch_;
};

class G2pTask final : public Task {
 public:
  // As MlmTask: global batches of o.ranks × B rows, this rank's B rows of each.
  G2pTask(const TrainOptions& o, std::shared_ptr<data::PreparedPairs> pairs, int rank)
      : pairs_(std::move(pairs)),
        rank_(rank),
        ranks_(static_cast<int>(o.ranks)),
        longest_(longest_word(o, *pairs_)),  // throws before any batch is drawn
        B_(o.ranks * o.batch_size),
        n_(o.eval_iters * B_),
        batcher_(pairs_->train, B_, o.seed, o.max_src_len),
        train_eval_(spread(pairs_->train, n_)),
        val_eval_(spread(pairs_->val, n_)) {
    vocab_size = pairs_->src_vocab.size();
    tgt_vocab_size = pairs_->tgt_vocab.size();
    max_len = longest_;
    if (o.ranks > 1) batcher_.set_rows({rank * o.batch_size, o.batch_size});
  }

  float step(model::EncDec<float>& m, int64_t* tokens, double* targets) override {
    batcher_.next(batch_);
    for (int32_t n : batch_.src_lengths) *tokens += n;
    int64_t predicted = 0;
    for (int32_t y : batch_.tgt_out) predicted += y >= 0;
    *tokens += predicted;
    *targets = static_cast<double>(predicted);
    return m.forward_seq2seq(batch_.src.data(), batch_.src_lengths.data(), batch_.tgt_in.data(),
                             batch_.tgt_out.data(), batch_.B, batch_.S, batch_.T);
  }
  LossSum train_loss(model::EncDec<float>& m) override {
    return seq2seq_loss_part(m, train_eval_, B_, n_, rank_, ranks_);
  }
  LossSum val_loss(model::EncDec<float>& m) override {
    return seq2seq_loss_part(m, val_eval_, B_, n_, rank_, ranks_);
  }
  void save_vocab(const fs::path& dir) const override {
    data::write_pair_vocab(dir / data::kSrcVocabFile, pairs_->src_vocab);
    data::write_pair_vocab(dir / data::kTgtVocabFile, pairs_->tgt_vocab);
  }
  data::BatcherState batcher_state() const override { return batcher_.state(); }
  void restore_batcher(const data::BatcherState& s) override { batcher_.restore(s); }
  std::string vocab_bytes(const fs::path& dir) const override {
    return files::read_file(dir / data::kSrcVocabFile) +
           files::read_file(dir / data::kTgtVocabFile);
  }

 private:
  // The longest training word (of at most --max-src-len characters); a --pos learned model
  // must have a position for each of its characters.
  static int64_t longest_word(const TrainOptions& o, const data::PreparedPairs& pairs) {
    int64_t longest = 0;
    for (const data::PairExample& e : pairs.train)
      if (o.max_src_len == 0 || static_cast<int64_t>(e.src.size()) <= o.max_src_len)
        longest = std::max<int64_t>(longest, static_cast<int64_t>(e.src.size()));
    if (o.model.pos == model::Position::learned && longest > o.model.block_size)
      throw Error("--pos learned has --block-size " + std::to_string(o.model.block_size) +
                  " positions, but training words have up to " + std::to_string(longest) +
                  " characters: raise --block-size or lower --max-src-len");
    return longest;
  }
  // The eval estimates read eval_iters·B words spread evenly over each split (the splits are in
  // dictionary order: their first words would all start with "a").
  static std::vector<data::PairExample> spread(const std::vector<data::PairExample>& all,
                                               int64_t n) {
    const int64_t size = static_cast<int64_t>(all.size());
    std::vector<data::PairExample> picked;
    for (int64_t i = 0; i < std::min(n, size); ++i)
      picked.push_back(all[static_cast<size_t>(i * size / std::min(n, size))]);
    return picked;
  }

  std::shared_ptr<data::PreparedPairs> pairs_;
  int rank_, ranks_;
  int64_t longest_, B_, n_;
  data::PairBatcher batcher_;
  data::PairBatch batch_;
  const std::vector<data::PairExample> train_eval_, val_eval_;
};

// An encoder or seq2seq run as the loop sees it: the task's batches and evals; OUT/best/ and
// OUT/ carry the vocabulary and the run's flags besides the model (OUT/ is also a training
// checkpoint: model, optimizer, train_state.json).
class EncDecRun final : public LoopHooks {
 public:
  // flags: train_options.json's text (`slope eval` reads --max-src-len from it).
  EncDecRun(Task& task, model::EncDec<float>& net, fs::path out, std::string flags,
            dist::Communicator& comm)
      : task_(task), net_(net), out_(std::move(out)), flags_(std::move(flags)), comm_(comm) {}

  double train_loss() override { return mean_over_ranks(task_.train_loss(net_)); }
  double val_loss() override { return mean_over_ranks(task_.val_loss(net_)); }
  float micro_step(int64_t* tokens, double* targets) override {
    return task_.step(net_, tokens, targets);
  }
  data::BatcherState batcher_state() const override { return task_.batcher_state(); }
  void save_best() override {
    save_best_dir(out_, [&](const fs::path& best) {
      io::save_encdec(best, net_);
      save_extras_to(best);
    });
  }
  void save_extras() override { save_extras_to(out_); }

 private:
  void save_extras_to(const fs::path& dir) const {
    task_.save_vocab(dir);
    files::write_file_atomic(dir / io::kTrainOptionsFile, flags_);
  }
  double mean_over_ranks(LossSum loss) {
    if (comm_.size() == 1) return loss.sum / loss.weight;
    double sums[2] = {loss.sum, loss.weight};
    comm_.allreduce_sum(sums, 2);
    return sums[0] / sums[1];
  }

  Task& task_;
  model::EncDec<float>& net_;
  const fs::path out_;
  const std::string flags_;
  dist::Communicator& comm_;
};

}  // namespace

model::EncDecConfig encdec_config(const TrainOptions& o, int64_t vocab_size,
                                  int64_t tgt_vocab_size) {
  model::EncDecConfig c;
  c.arch = o.arch;
  c.block_size = o.model.block_size;
  c.vocab_size = vocab_size;
  c.tgt_vocab_size = tgt_vocab_size;
  c.n_layer = o.model.n_layer;
  c.n_dec_layer = o.arch == model::Arch::seq2seq ? o.dec_layers() : 0;
  c.n_head = o.model.n_head;
  c.n_embd = o.model.n_embd;
  c.dropout = o.model.dropout;
  c.bias = o.model.bias;
  c.pos = o.model.pos;
  c.max_bias = o.model.max_bias;
  return c;
}

TrainSummary train_encdec(const TrainOptions& options, TrainObserver* observer,
                          dist::Communicator* communicator) {
  const Clock::time_point run_start = Clock::now();
  dist::SingleProcess single;
  dist::Communicator& comm = communicator ? *communicator : single;
  const bool writer = comm.rank() == 0;  // rank 0 alone touches OUT/
  TrainOptions o = options;
  o.ranks = comm.size();
  const fs::path out = o.out_dir;
  // Setup on every rank; an error on any stops them all with one message (dist::run_agreed).
  std::optional<nn::GemmDtypeScope> dtype;  // --dtype, for this run's GEMMs
  dist::run_agreed(comm, [&] {
    if (o.arch == model::Arch::gpt) throw Error("train_encdec: --arch gpt is train_gpt's");
    dtype.emplace(o.dtype);  // bf16 on a CPU without it: refused before OUT is touched
    require_dirs(o, o.arch == model::Arch::seq2seq ? " --task g2p" : "");
    if (o.grad_accum != 1 || o.train_block_size != 0)
      throw Error(std::string("--grad-accum and --train-block-size are GPT options; --arch ") +
                  model::arch_name(o.arch) + " takes --batch-size, --min-len and --max-src-len");
    validate(o);
    if (writer) recover_interrupted_save(out);
  });
  TrainState state;
  int64_t saved_ranks = o.ranks;  // the checkpoint's, when resumed
  std::unique_ptr<Task> task;
  std::optional<model::EncDec<float>> net;
  std::optional<AdamW<float>> adamw;
  dist::run_agreed(comm, [&] {
    if (o.resume) {
      state = read_resumed_state(o);
      saved_ranks = state.options.ranks;
      check_within_max_iters(state, o);
    } else {
      refuse_existing_run(out, /*model_too=*/true);
    }
    if (o.arch == model::Arch::encoder) {
      task = std::make_unique<MlmTask>(
          o, std::make_shared<data::PreparedCorpus>(data::open_prepared_corpus(o.data_dir)),
          comm.rank());
    } else {
      task = std::make_unique<G2pTask>(
          o, std::make_shared<data::PreparedPairs>(data::open_prepared_pairs(o.data_dir)),
          comm.rank());
    }
    const model::EncDecConfig config = encdec_config(o, task->vocab_size, task->tgt_vocab_size);
    net.emplace(config, o.seed);
    adamw.emplace(net->table(), AdamWConfig{o.beta1, o.beta2, 1e-8, o.weight_decay});
    if (o.resume) {
      // The corpus must be the one the checkpoint was trained on: its vocabulary files agree.
      const std::string ours = task->vocab_bytes(out);
      const std::string theirs = task->vocab_bytes(o.data_dir);
      if (ours != theirs)
        throw Error("the corpus in " + o.data_dir.string() +
                    " has another vocabulary than the checkpoint in " + out.string() +
                    ": resume with --data of the corpus it was trained on");
    }
    start_run(
        o, state, *net, *adamw, [&](const data::BatcherState& s) { task->restore_batcher(s); },
        comm.rank());
  });
  dist::check_same_weights(comm, net->params(), net->table().size(), state.step);
  if (observer) {
    TrainStart s;
    s.num_params = net->num_params(), s.vocab_size = task->vocab_size;
    s.start_step = state.step, s.max_iters = o.max_iters;
    s.micro_batch = o.batch_size, s.train_len = task->max_len, s.tokens_per_step = 0;
    s.ranks = o.ranks, s.saved_ranks = saved_ranks, s.global_batch = o.global_batch();
    s.communicator = comm.name();
    observer->on_start(s);
  }
  // train_options.json: the flags of one process (`slope eval` reads them), without "ranks".
  TrainOptions flags = o;
  flags.ranks = 1;
  EncDecRun run(*task, *net, out, options_to_json(flags).dump(2) + "\n", comm);
  return run_training_loop(o, *net, *adamw, state, run, observer, run_start, comm);
}

}  // namespace slope::train
