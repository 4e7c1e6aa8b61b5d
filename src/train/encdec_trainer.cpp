// The encoder / seq2seq training loop (see encdec_trainer.h).
#include "train/encdec_trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "files/atomic_file.h"
#include "files/read_file.h"
#include "data/mlm_batcher.h"
#include "data/pairs.h"
#include "data/prepare.h"
#include "data/random.h"
#include "data/tokenizer.h"
#include "io/encdec_checkpoint.h"
#include "io/checkpoint_files.h"
#include "model/encdec.h"
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
struct Task {
  int64_t vocab_size = 0, tgt_vocab_size = 0;
  int64_t max_len = 0;  // the longest training sequence (source side for seq2seq)
  // Runs one training micro-batch (forward with targets); returns its loss and adds its real
  // tokens to *tokens.
  std::function<float(model::EncDec<float>&, int64_t* tokens)> step;
  std::function<double(model::EncDec<float>&)> train_loss, val_loss;
  std::function<void(const fs::path&)> save_vocab;
  // The training batcher's position, for exact resume.
  std::function<data::BatcherState()> batcher_state;
  std::function<void(const data::BatcherState&)> restore_batcher;
  // The vocabulary files of a corpus or checkpoint directory (the same bytes in both), to refuse
  // resuming on another corpus.
  std::function<std::string(const fs::path&)> vocab_bytes;
};

Task mlm_task(const TrainOptions& o, std::shared_ptr<data::PreparedCorpus> corpus) {
  Task t;
  const int32_t corpus_vocab = static_cast<int32_t>(corpus->tokenizer->vocab_size());
  const int32_t mask_id = corpus_vocab;  // <mask>: the id after the corpus's tokens
  t.vocab_size = corpus_vocab + 1;
  t.max_len = o.model.block_size;
  const int64_t B = o.batch_size, L = o.model.block_size;
  auto batcher = std::make_shared<data::MlmBatcher>(corpus->train, B, o.min_window(), L, mask_id,
                                                    corpus_vocab, o.seed, o.mask_prob);
  auto batch = std::make_shared<data::MlmBatch>();
  t.step = [=](model::EncDec<float>& m, int64_t* tokens) {
    batcher->next(*batch);
    for (int32_t n : batch->lengths) *tokens += n;
    return m.forward_mlm(batch->idx.data(), batch->lengths.data(), batch->targets.data(), batch->B,
                         batch->T);
  };
  const uint64_t train_seed = data::splitmix64(o.seed ^ kTrainEvalSalt);
  const uint64_t val_seed = data::splitmix64(o.seed ^ kValEvalSalt);
  const int64_t iters = o.eval_iters;
  const double p = o.mask_prob;
  t.train_loss = [=](model::EncDec<float>& m) {
    return mlm_loss(m, corpus->train, L, B, iters, mask_id, p, train_seed);
  };
  t.val_loss = [=](model::EncDec<float>& m) {
    return mlm_loss(m, corpus->val, L, B, iters, mask_id, p, val_seed);
  };
  t.save_vocab = [=](const fs::path& dir) { corpus->tokenizer->save(io::tokenizer_dir(dir)); };
  t.batcher_state = [=] { return batcher->state(); };
  t.restore_batcher = [=](const data::BatcherState& st) { batcher->restore(st); };
  t.vocab_bytes = [](const fs::path& dir) {
    return files::read_file(dir / data::kTokenizerDir / data::kTokenizerMetaFile);
  };
  return t;
}

Task g2p_task(const TrainOptions& o, std::shared_ptr<data::PreparedPairs> pairs) {
  Task t;
  t.vocab_size = pairs->src_vocab.size();
  t.tgt_vocab_size = pairs->tgt_vocab.size();
  for (const data::PairExample& e : pairs->train)
    if (o.max_src_len == 0 || static_cast<int64_t>(e.src.size()) <= o.max_src_len)
      t.max_len = std::max<int64_t>(t.max_len, static_cast<int64_t>(e.src.size()));
  if (o.model.pos == model::Position::learned && t.max_len > o.model.block_size)
    throw Error("--pos learned has --block-size " + std::to_string(o.model.block_size) +
                " positions, but training words have up to " + std::to_string(t.max_len) +
                " characters: raise --block-size or lower --max-src-len");
  const int64_t B = o.batch_size;
  auto batcher = std::make_shared<data::PairBatcher>(pairs->train, B, o.seed, o.max_src_len);
  auto batch = std::make_shared<data::PairBatch>();
  t.step = [=](model::EncDec<float>& m, int64_t* tokens) {
    batcher->next(*batch);
    for (int32_t n : batch->src_lengths) *tokens += n;
    for (int32_t y : batch->tgt_out) *tokens += y >= 0;
    return m.forward_seq2seq(batch->src.data(), batch->src_lengths.data(), batch->tgt_in.data(),
                             batch->tgt_out.data(), batch->B, batch->S, batch->T);
  };
  // The eval estimates read eval_iters·B words spread evenly over each split (the splits are in
  // dictionary order: their first words would all start with "a").
  const int64_t n = o.eval_iters * B;
  auto spread = [n](const std::vector<data::PairExample>& all) {
    const int64_t size = static_cast<int64_t>(all.size());
    auto picked = std::make_shared<std::vector<data::PairExample>>();
    for (int64_t i = 0; i < std::min(n, size); ++i)
      picked->push_back(all[static_cast<size_t>(i * size / std::min(n, size))]);
    return picked;
  };
  auto train_eval = spread(pairs->train), val_eval = spread(pairs->val);
  t.train_loss = [=](model::EncDec<float>& m) { return seq2seq_loss(m, *train_eval, B, n); };
  t.val_loss = [=](model::EncDec<float>& m) { return seq2seq_loss(m, *val_eval, B, n); };
  t.save_vocab = [=](const fs::path& dir) {
    data::write_pair_vocab(dir / data::kSrcVocabFile, pairs->src_vocab);
    data::write_pair_vocab(dir / data::kTgtVocabFile, pairs->tgt_vocab);
  };
  t.batcher_state = [=] { return batcher->state(); };
  t.restore_batcher = [=](const data::BatcherState& st) { batcher->restore(st); };
  t.vocab_bytes = [](const fs::path& dir) {
    return files::read_file(dir / data::kSrcVocabFile) + files::read_file(dir / data::kTgtVocabFile);
  };
  return t;
}

// An encoder or seq2seq run as the loop sees it: the task's batches and evals; OUT/best/ and
// OUT/ carry the vocabulary and the run's flags besides the model (OUT/ is also a training
// checkpoint: model, optimizer, train_state.json).
class EncDecRun final : public LoopHooks {
 public:
  // flags: train_options.json's text (`slope eval` reads --max-src-len from it).
  EncDecRun(const Task& task, model::EncDec<float>& net, fs::path out, std::string flags)
      : task_(task), net_(net), out_(std::move(out)), flags_(std::move(flags)) {}

  double train_loss() override { return task_.train_loss(net_); }
  double val_loss() override { return task_.val_loss(net_); }
  float micro_step(int64_t* tokens) override { return task_.step(net_, tokens); }
  data::BatcherState batcher_state() const override { return task_.batcher_state(); }
  void save_best() override {
    io::save_encdec(io::best_dir(out_), net_);
    save_extras_to(io::best_dir(out_));
  }
  void save_extras() override { save_extras_to(out_); }

 private:
  void save_extras_to(const fs::path& dir) const {
    task_.save_vocab(dir);
    files::write_file_atomic(dir / io::kTrainOptionsFile, flags_);
  }

  const Task& task_;
  model::EncDec<float>& net_;
  const fs::path out_;
  const std::string flags_;
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

TrainSummary train_encdec(const TrainOptions& options, TrainObserver* observer) {
  const Clock::time_point run_start = Clock::now();
  const TrainOptions& o = options;
  if (o.arch == model::Arch::gpt) throw Error("train_encdec: --arch gpt is train_gpt's");
  require_dirs(o, o.arch == model::Arch::seq2seq ? " --task g2p" : "");
  if (o.grad_accum != 1 || o.train_block_size != 0)
    throw Error(std::string("--grad-accum and --train-block-size are GPT options; --arch ") +
                model::arch_name(o.arch) + " takes --batch-size, --min-len and --max-src-len");
  validate(o);
  const fs::path out = o.out_dir;
  TrainState state;
  if (o.resume) {
    state = read_resumed_state(o);
    check_within_max_iters(state, o);
  } else {
    refuse_existing_run(out, /*model_too=*/true);
  }

  Task task;
  if (o.arch == model::Arch::encoder) {
    task =
        mlm_task(o, std::make_shared<data::PreparedCorpus>(data::open_prepared_corpus(o.data_dir)));
  } else {
    task =
        g2p_task(o, std::make_shared<data::PreparedPairs>(data::open_prepared_pairs(o.data_dir)));
  }
  const model::EncDecConfig config = encdec_config(o, task.vocab_size, task.tgt_vocab_size);
  model::EncDec<float> net(config, o.seed);
  AdamW<float> adamw(net.table(), {o.beta1, o.beta2, 1e-8, o.weight_decay});
  if (o.resume) {
    // The corpus must be the one the checkpoint was trained on: its vocabulary files agree.
    const std::string ours = task.vocab_bytes(out);
    const std::string theirs = task.vocab_bytes(o.data_dir);
    if (ours != theirs)
      throw Error("the corpus in " + o.data_dir.string() +
                  " has another vocabulary than the checkpoint in " + out.string() +
                  ": resume with --data of the corpus it was trained on");
  }
  start_run(o, state, net, adamw, task.restore_batcher);
  if (observer)
    observer->on_start({net.num_params(), task.vocab_size, state.step, o.max_iters, o.batch_size,
                        task.max_len, 0});
  EncDecRun run(task, net, out, options_to_json(o).dump(2) + "\n");
  return run_training_loop(o, net, adamw, state, run, observer, run_start);
}

}  // namespace slope::train
