// What a training run is told: the flags of `slope train`, as one struct. The field names are
// the flags' (n_layer ↔ --n-layer); error messages name the flag, not the field.
#pragma once

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "io/checkpoint_files.h"  // kLogFile
#include "model/encdec_config.h"
#include "model/gpt_config.h"
#include "nn/gemm.h"  // GemmDtype

namespace slope::train {

struct TrainOptions {
  std::filesystem::path data_dir;  // --data: a `slope prepare` output
  std::filesystem::path out_dir;   // --out: checkpoints, the log, the tokenizer
  std::filesystem::path log_path;  // --log: JSON lines, one per eval; empty: OUT/log.jsonl

  // --n-layer, --n-head, --n-embd, --block-size, --dropout, --pos. vocab_size comes from the
  // corpus; block_size is the length the model is for (and evaluated at).
  model::GptConfig model = small_model();

  // --arch: gpt (a decoder LM on a `slope prepare` corpus), encoder (masked LM on the same
  // corpus, model/encdec.h) or seq2seq (G2P on a `slope prepare --task g2p` corpus).
  model::Arch arch = model::Arch::gpt;
  int64_t n_dec_layer = 0;  // --n-dec-layer: seq2seq decoder blocks; 0 = --n-layer
  int64_t min_len = 0;      // --min-len: encoder windows are [min_len, block_size] long;
                            // 0 = block_size / 4
  double mask_prob = 0.15;  // --mask-prob: encoder tokens selected for the MLM loss
  int64_t max_src_len = 0;  // --max-src-len: seq2seq trains only on sources this short; 0 = all

  int64_t batch_size = 32;       // --batch-size: sequences of block_size per micro-step
  int64_t train_block_size = 0;  // --train-block-size: 0 = block_size (see micro_batch())
  int64_t grad_accum = 1;        // --grad-accum: micro-steps per optimizer step
  int64_t max_iters = 2000;      // --max-iters: optimizer steps of the whole run
  int64_t lr_decay_iters = 0;    // --lr-decay-iters: end of the cosine; 0 = max_iters
  double lr = 1e-3;              // --lr: the peak learning rate
  double min_lr = -1.0;          // --min-lr: the floor; < 0 = lr/10
  int64_t warmup_iters = 100;    // --warmup-iters
  double weight_decay = 0.1;     // --weight-decay (tensors of dim >= 2)
  double beta1 = 0.9;            // --beta1
  double beta2 = 0.99;           // --beta2 (nanoGPT's small-model setting)
  double grad_clip = 1.0;        // --grad-clip: max global norm; 0 = off
  uint64_t seed = 1337;          // --seed: init, batches, dropout
  int64_t eval_interval = 250;   // --eval-interval: steps between evals (and checkpoints)
  int64_t eval_iters = 20;       // --eval-iters: batches per eval estimate
  bool resume = false;           // --resume: continue the checkpoint in OUT
  // --dtype: the linear layers' GEMM inputs, fp32 or bf16 (rounded operands, float32
  // accumulation; nn/bf16.h). Weights, gradients, AdamW and the checkpoints stay float32, so a
  // run may resume with the other dtype.
  nn::GemmDtype dtype = nn::GemmDtype::fp32;
  // --init-from CKPT: a new run (fresh AdamW, step 0, the schedule from the start) whose weights
  // come from CKPT (after `slope surgery` or `slope import`); the architecture is CKPT's, and
  // OUT/origin.json records where it came from. gpt only.
  std::filesystem::path init_from;
  // Not a flag: the processes of a data-parallel run (mpirun -np N), each training on
  // batch_size of every global batch of ranks·batch_size sequences (dist/communicator.h).
  int64_t ranks = 1;

  static model::GptConfig small_model() {
    model::GptConfig c;
    c.n_layer = 4, c.n_head = 4, c.n_embd = 128, c.block_size = 64;
    c.pos = model::Position::alibi;
    return c;
  }

  // Composer's sequence-length warmup, held fixed: train on windows of train_block_size with
  // batch_size·block_size/train_block_size of them per micro-step, so a step sees as many
  // tokens as at the full length.
  int64_t min_window() const {
    return min_len > 0 ? min_len : std::max<int64_t>(1, model.block_size / 4);
  }
  int64_t dec_layers() const { return n_dec_layer > 0 ? n_dec_layer : model.n_layer; }
  int64_t train_len() const { return train_block_size > 0 ? train_block_size : model.block_size; }
  int64_t micro_batch() const { return batch_size * model.block_size / train_len(); }
  int64_t tokens_per_step() const { return micro_batch() * train_len() * grad_accum; }
  // Sequences per optimizer step over every rank: ranks × micro-batch × grad_accum.
  int64_t global_batch() const { return ranks * micro_batch() * grad_accum; }
  int64_t decay_end() const { return lr_decay_iters > 0 ? lr_decay_iters : max_iters; }
  double floor_lr() const { return min_lr >= 0.0 ? min_lr : lr / 10.0; }
  std::filesystem::path log_file() const {
    return log_path.empty() ? out_dir / io::kLogFile : log_path;
  }
};

// Throws slope::Error naming the first flag out of range and what would be valid. The model's
// vocab_size must be set (from the corpus) first.
void validate(const TrainOptions& o);

// Every field but the paths, --resume and --init-from, under the flags' names ("n-layer": 4, ...),
// and "ranks" when it is not 1.
nlohmann::ordered_json options_to_json(const TrainOptions& o);
// The inverse, for train_state.json; `where` names the file in errors. Paths are left empty.
TrainOptions options_from_json(const nlohmann::json& j, const std::string& where);

// A run resumed with other flags than it was started with: throws slope::Error naming the
// first flag that fixes the model or the stream of batches (--n-layer, --n-head, --n-embd,
// --block-size, --pos, --dropout, --batch-size, --train-block-size, --grad-accum, --seed) and
// how to resume ("pass --n-layer 4, or drop it"). With another number of ranks, --batch-size
// may change so that ranks × --batch-size, the global batch, stays: the batches are then the
// very ones the saved run would have drawn (token_batcher.h's RowSlice); another global batch
// is refused, naming the mpirun -np and --batch-size that resume. Optimizer and schedule flags
// (--lr,
// --max-iters, ...) may change: extending a run is a resume with a larger --max-iters.
void check_resumable(const TrainOptions& saved, const TrainOptions& now, const std::string& where);

}  // namespace slope::train
