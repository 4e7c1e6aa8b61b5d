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

#include "data/atomic_file.h"
#include "data/mlm_batcher.h"
#include "data/pairs.h"
#include "data/prepare.h"
#include "data/random.h"
#include "data/tokenizer.h"
#include "io/encdec_checkpoint.h"
#include "io/gpt_checkpoint.h"  // kConfigFile
#include "model/encdec.h"
#include "slope/attention.h"  // slope::Error
#include "train/adamw.h"
#include "train/encdec_eval.h"
#include "train/eval_log.h"
#include "train/lr_schedule.h"
#include "train/train_state.h"

namespace slope::train {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

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
  t.save_vocab = [=](const fs::path& dir) { corpus->tokenizer->save(dir / "tokenizer"); };
  t.batcher_state = [=] { return batcher->state(); };
  t.restore_batcher = [=](const data::BatcherState& st) { batcher->restore(st); };
  t.vocab_bytes = [](const fs::path& dir) {
    return data::read_file(dir / "tokenizer" / data::kTokenizerMetaFile);
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
    return data::read_file(dir / data::kSrcVocabFile) + data::read_file(dir / data::kTgtVocabFile);
  };
  return t;
}

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
  if (o.data_dir.empty())
    throw Error("--data is required: a directory made by `slope prepare`" +
                std::string(o.arch == model::Arch::seq2seq ? " --task g2p" : ""));
  if (o.out_dir.empty()) throw Error("--out is required: the directory for checkpoints and logs");
  if (o.grad_accum != 1 || o.train_block_size != 0)
    throw Error(std::string("--grad-accum and --train-block-size are GPT options; --arch ") +
                model::arch_name(o.arch) + " takes --batch-size, --min-len and --max-src-len");
  validate(o);
  const fs::path out = o.out_dir;
  std::error_code ec;
  TrainState state;
  if (o.resume) {
    state = read_train_state(out);
    check_resumable(state.options, o, "the checkpoint in " + out.string());
    if (state.step > o.max_iters)
      throw Error("the checkpoint in " + out.string() + " is at step " +
                  std::to_string(state.step) + ", beyond --max-iters " +
                  std::to_string(o.max_iters) + ": pass a larger --max-iters to go on");
  } else if (has_checkpoint(out) || fs::exists(out / io::kConfigFile, ec)) {
    throw Error(out.string() +
                " already holds a checkpoint: pass --resume to continue it, or "
                "choose another --out");
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
    load_checkpoint(out, state, net, adamw);
    task.restore_batcher(state.batcher);
    net.set_dropout_seed(state.dropout_seed, state.dropout_forwards);
  } else {
    state.dropout_seed = data::splitmix64(o.seed ^ kDropoutSalt);
    net.set_dropout_seed(state.dropout_seed, 0);
    fs::create_directories(out, ec);
    if (ec) throw Error("cannot create --out " + out.string() + ": " + ec.message());
  }
  state.options = o;
  state.data_dir = fs::absolute(o.data_dir);
  const int64_t start = state.step;
  const double elapsed_before = state.elapsed_s;
  EvalLog log(o.log_file(), o.resume ? start : -1);
  const LrSchedule schedule{o.lr, o.warmup_iters, o.decay_end(), o.floor_lr(), true};
  // A checkpoint carries the run's flags too: `slope eval` reads --max-src-len from them.
  const std::string flags = options_to_json(o).dump(2) + "\n";
  const auto save = [&](const fs::path& dir) {
    io::save_encdec(dir, net);
    task.save_vocab(dir);
    data::write_file_atomic(dir / kTrainOptionsFile, flags);
  };
  // OUT/ is a training checkpoint (model, optimizer, train_state.json: train_state.h) plus the
  // vocabulary and the flags; OUT/best/ the model alone.
  const auto save_latest = [&](int64_t step, double elapsed) {
    state.step = step;
    state.adamw_steps = adamw.steps();
    state.batcher = task.batcher_state();
    state.dropout_forwards = net.dropout_forwards();
    state.elapsed_s = elapsed;
    task.save_vocab(out);
    data::write_file_atomic(out / kTrainOptionsFile, flags);
    save_checkpoint(out, net, adamw, state);  // train_state.json last
  };

  if (observer)
    observer->on_start(
        {net.num_params(), task.vocab_size, start, o.max_iters, o.batch_size, task.max_len, 0});
  int64_t saved_step = o.resume ? start : -1;
  const auto diverged = [&](int64_t step, const std::string& what) {
    return diverged_error(step, what, out, saved_step, true);
  };

  net.set_training(true);
  TrainSummary summary;
  double train_seconds = 0.0, window_seconds = 0.0, last_lr = 0.0;
  int64_t window_tokens = 0, total_tokens = 0;
  for (int64_t step = start;; ++step) {
    const bool last = step == o.max_iters;
    if ((step % o.eval_interval == 0 || last) && !(o.resume && step == start)) {
      EvalReport r;
      r.step = step;
      r.train_loss = task.train_loss(net);
      r.val_loss = task.val_loss(net);
      if (!std::isfinite(r.train_loss) || !std::isfinite(r.val_loss))
        throw diverged(step, "the eval loss is " + std::to_string(r.val_loss));
      r.lr = last_lr;
      r.tokens_per_s = window_seconds > 0.0 ? window_tokens / window_seconds : 0.0;
      r.elapsed_s = elapsed_before + seconds_since(run_start);
      r.best = step > 0 && r.val_loss < state.best_val_loss;
      r.saved = step > 0;
      log.append(eval_line(r));
      if (r.best) {
        state.best_val_loss = r.val_loss, state.best_step = step;
        save(out / "best");
      }
      if (r.saved) save_latest(step, r.elapsed_s), saved_step = step;
      if (observer) observer->on_eval(r);
      summary.last_eval = r;
      window_seconds = 0.0, window_tokens = 0;
    }
    if (last) break;

    const Clock::time_point t0 = Clock::now();
    const double lr = lr_at(schedule, step);
    net.zero_grad();
    int64_t tokens = 0;
    const float loss = task.step(net, &tokens);
    if (!std::isfinite(loss))
      throw diverged(step + 1, "the training loss is " + std::to_string(loss));
    net.backward();
    double norm = 0.0;
    try {
      norm = clip_grad_norm(net.grads(), net.table().size(), o.grad_clip);
    } catch (const Error&) {
      throw diverged(step + 1, "the gradient norm is not finite");
    }
    adamw.step(net.params(), net.grads(), lr);
    last_lr = lr;
    state.tokens += static_cast<uint64_t>(tokens);
    const double dt = seconds_since(t0);
    train_seconds += dt, window_seconds += dt;
    window_tokens += tokens, total_tokens += tokens;
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
  summary.tokens_per_s = train_seconds > 0.0 ? total_tokens / train_seconds : 0.0;
  summary.elapsed_s = elapsed_before + seconds_since(run_start);
  return summary;
}

}  // namespace slope::train
