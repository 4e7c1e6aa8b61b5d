#include "cli/train.h"

#include <cblas.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>

#include "cli/progress.h"
#include "dist/data_parallel.h"
#include "io/checkpoint_files.h"
#include "io/gpt_checkpoint.h"
#include "nn/gemm.h"      // parse_gemm_dtype
#include "slope/error.h"  // slope::Error
#include "train/encdec_trainer.h"
#include "train/train_state.h"
#include "train/trainer.h"

namespace slope::cli {

namespace fs = std::filesystem;

void set_threads(int threads) {
  if (threads <= 0) return;
  omp_set_num_threads(threads);
  openblas_set_num_threads(threads);
}

void add_train_options(ConfigurableSubcommand& app, TrainCliOptions& o) {
  train::TrainOptions& t = o.train;
  model::GptConfig& m = t.model;
  app.description(
      "Train a GPT (--arch gpt), a BERT-style masked-LM encoder (--arch encoder) or an "
      "encoder-decoder for grapheme-to-phoneme (--arch seq2seq) on a corpus made by "
      "`slope prepare` (`--task g2p` for seq2seq): AdamW, warmup then cosine decay, "
      "gradient clipping (and accumulation, gpt only). Every --eval-interval steps: train and val "
      "loss, a "
      "line in the log, the latest checkpoint in OUT/ and the best (by val loss) in OUT/best/.");
  app.footer(
      "Checkpoints (OUT/ and OUT/best/) hold model.safetensors (nanoGPT names), config.json and\n"
      "tokenizer/; OUT/ adds optimizer.safetensors and train_state.json for --resume, which\n"
      "continues exactly (the same losses as a run that never stopped, at the same --threads).\n"
      "With --resume, flags left out (--data too) take the checkpoint's values.\n"
      "Examples:\n"
      "  slope train --data data/names --out out/names --max-iters 2000\n"
      "  slope train --data data/names --out out/names --resume --max-iters 4000\n"
      "  slope train --config names.toml   (keys as the flags: n-layer = 4, lr = 1e-3, ...)\n"
      "  slope train --arch encoder --pos alibi-symmetric --data data/bible --out out/mlm\n"
      "  slope train --arch seq2seq --pos alibi-learned --data data/g2p --out out/g2p\n"
      "  slope train --data data/bible --init-from out/base-alibi --out out/ft "
      "--train-block-size 64\n"
      "Encoder and seq2seq checkpoints carry their vocabulary (tokenizer/ or src_vocab.json and\n"
      "tgt_vocab.json) and resume exactly too.\n"
      "Data-parallel (a build with MPI, docs/distributed.md): mpirun -np N slope train ...\n"
      "runs N ranks, each on --batch-size sequences of every global batch of N x --batch-size\n"
      "(x --grad-accum), with gradients averaged every step; rank 0 prints and writes OUT/.\n"
      "--resume takes the same N, or another N with the same N x --batch-size.\n");
  app.add_option("--data", t.data_dir, "prepared corpus DIR (`slope prepare --out DIR`)")
      ->type_name("DIR");
  app.add_option("--out", t.out_dir, "checkpoint directory OUT (created if missing)")
      ->type_name("DIR");
  app.add_option("--arch", o.arch,
                 "gpt: decoder LM | encoder: masked LM (bidirectional, padded batches) | "
                 "seq2seq: encoder-decoder on a `slope prepare --task g2p` corpus")
      ->check(CLI::IsMember({"gpt", "encoder", "seq2seq"}))
      ->capture_default_str();
  app.add_option("--n-layer", m.n_layer, "transformer blocks (the encoder's for seq2seq)")
      ->capture_default_str();
  app.add_option("--n-dec-layer", t.n_dec_layer, "seq2seq: decoder blocks (0: --n-layer)")
      ->capture_default_str();
  app.add_option("--min-len", t.min_len,
                 "encoder: training windows are --min-len..--block-size tokens, padded to the "
                 "longest of the batch (0: block-size/4)")
      ->capture_default_str();
  app.add_option("--mask-prob", t.mask_prob,
                 "encoder: fraction of tokens in the MLM loss (80% <mask>, 10% random, 10% kept)")
      ->capture_default_str();
  app.add_option("--max-src-len", t.max_src_len,
                 "seq2seq: train only on words of at most this many characters (0: all), to "
                 "test longer ones")
      ->capture_default_str();
  app.add_option("--n-head", m.n_head, "attention heads")->capture_default_str();
  app.add_option("--n-embd", m.n_embd, "channels (a multiple of --n-head)")->capture_default_str();
  app.add_option("--block-size", m.block_size,
                 "context length of the model (eval length; learned positions' limit). encoder: "
                 "the longest training window; seq2seq: learned positions' limit only")
      ->capture_default_str();
  app.add_option("--train-block-size", t.train_block_size,
                 "train on windows this long, batch-size x block-size / this many per "
                 "micro-step (same tokens per step); 0: --block-size")
      ->capture_default_str();
  app.add_option("--batch-size", t.batch_size,
                 "sequences per micro-step (gpt: of --block-size tokens; encoder, seq2seq: "
                 "of variable length, padded to the longest)")
      ->capture_default_str();
  app.add_option("--grad-accum", t.grad_accum, "micro-steps per optimizer step")
      ->capture_default_str();
  app.add_option("--max-iters", t.max_iters, "optimizer steps of the whole run")
      ->capture_default_str();
  app.add_option("--lr", t.lr, "peak learning rate")->capture_default_str();
  app.add_option("--min-lr", t.min_lr, "learning rate at the end of the cosine (default lr/10)");
  app.add_option("--warmup-iters", t.warmup_iters, "linear warmup steps")->capture_default_str();
  app.add_option("--lr-decay-iters", t.lr_decay_iters,
                 "step where the cosine reaches --min-lr (0: --max-iters)")
      ->capture_default_str();
  app.add_option("--weight-decay", t.weight_decay, "AdamW decay of the weight matrices")
      ->capture_default_str();
  app.add_option("--beta1", t.beta1, "AdamW beta1")->capture_default_str();
  app.add_option("--beta2", t.beta2, "AdamW beta2")->capture_default_str();
  app.add_option("--grad-clip", t.grad_clip, "max global gradient norm (0: no clipping)")
      ->capture_default_str();
  app.add_option("--dropout", m.dropout, "dropout on embeddings and residual branches")
      ->capture_default_str();
  app.add_option("--bias", m.bias,
                 "gpt: biases in the linear layers and LayerNorms (nanoGPT's bias; false for a "
                 "model `slope export` writes as MPT)")
      ->capture_default_str();
  app.add_option("--max-bias", m.max_bias,
                 "ALiBi slopes 2^(-max_bias·h/H), h = 1..H, for H a power of two (Press et al. at "
                 "8; MPT's alibi_bias_max)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--pos", o.pos,
                 "position scheme. gpt: learned, sinusoidal, none, alibi, alibi-learned, and "
                 "the learned relative biases kerple-log, kerple-power (Chi et al. 2022), t5 "
                 "(Raffel et al. 2020, causal buckets), fire (Li et al. 2023) "
                 "(docs/relative-biases.md); "
                 "encoder and seq2seq: learned, sinusoidal, none, alibi-symmetric, "
                 "alibi-nonsymmetric, alibi-learned (sigmoid slopes, left and right), "
                 "kerple-log, kerple-power, t5 (bidirectional buckets; in the encoder, the "
                 "decoder keeps causal ALiBi). Default: "
                 "alibi for gpt, alibi-symmetric otherwise")
      ->check(CLI::IsMember({"learned", "sinusoidal", "none", "alibi", "alibi-learned",
                             "alibi-symmetric", "alibi-nonsymmetric", "kerple-log", "kerple-power",
                             "t5", "fire"}))
      ->capture_default_str();
  app.add_option("--seed", t.seed, "seed of the init, the batches and dropout")
      ->capture_default_str();
  app.add_option("--eval-interval", t.eval_interval, "steps between evals and checkpoints")
      ->capture_default_str();
  app.add_option("--eval-iters", t.eval_iters, "batches per eval estimate")->capture_default_str();
  app.add_option("--log", t.log_path, "JSON lines, one per eval (default OUT/log.jsonl)")
      ->type_name("FILE.jsonl");
  app.add_option("--threads", o.threads, "threads (0: all cores or OMP_NUM_THREADS)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  app.add_option("--dtype", o.dtype,
                 "the linear layers' GEMM inputs. fp32 | bf16: operands rounded to bfloat16, "
                 "float32 accumulation; weights, gradients, AdamW, LayerNorm, softmax and "
                 "attention stay float32, and so do the checkpoints (--resume may switch). bf16 "
                 "needs a CPU with AVX512_BF16 or AMX and is refused elsewhere; "
                 "SLOPE_BF16_EMULATE=1 runs oneDNN's emulation on other AVX-512 CPUs, for "
                 "testing only (slower than fp32)")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_flag("--resume", t.resume, "continue the checkpoint in OUT");
  app.add_option("--init-from", t.init_from,
                 "gpt: start a new run from CKPT's weights (after `slope surgery` or `slope "
                 "import`) with a fresh optimizer and schedule; the architecture (--n-layer, "
                 "--n-head, --n-embd, --pos, --block-size unless given) is CKPT's; OUT/origin.json "
                 "records it")
      ->check(CLI::ExistingDirectory)
      ->type_name("CKPT");
  app.add_option("--dist-timeout", o.dist_timeout,
                 "under mpirun: seconds a rank waits in a collective for the others before it "
                 "stops the run as hung (a dead rank ends the run at once; 0: wait forever)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

namespace {

// --resume: flags not given take the checkpoint's values; given ones are checked by the
// trainer (check_resumable), which names any that may not change.
train::TrainOptions merge_with_checkpoint(const ConfigurableSubcommand& app,
                                          const train::TrainOptions& given) {
  const train::TrainState state = train::read_train_state(given.out_dir);
  nlohmann::ordered_json merged = train::options_to_json(state.options);
  const nlohmann::ordered_json now = train::options_to_json(given);
  for (const auto& [key, value] : now.items())
    if (app.given("--" + key)) merged[key] = value;
  train::TrainOptions o =
      train::options_from_json(merged, (given.out_dir / io::kTrainStateFile).string());
  o.data_dir = given.data_dir.empty() ? state.data_dir : given.data_dir;
  o.out_dir = given.out_dir, o.log_path = given.log_path;
  o.resume = true;
  return o;
}

// --init-from: the model is the checkpoint's. Flags that fix its shape must agree with it when
// given; --block-size may change for position schemes other than learned (the length to train
// and evaluate at: ALiBi runs any length); --dropout is the run's.
void take_checkpoint_architecture(const ConfigurableSubcommand& app, TrainCliOptions& o) {
  if (o.train.resume) throw Error("--init-from starts a new run; --resume continues one: pass one");
  if (o.train.arch != model::Arch::gpt) throw Error("--init-from is for --arch gpt");
  const fs::path path = o.train.init_from / io::kConfigFile;
  const model::GptConfig ck = io::read_gpt_config(path);
  model::GptConfig& m = o.train.model;
  const auto agree = [&](const char* flag, int64_t given, int64_t theirs) {
    if (app.given(flag) && given != theirs)
      throw Error(std::string(flag) + " " + std::to_string(given) + " but --init-from " +
                  path.string() + " has " + std::to_string(theirs) + ": leave it out");
  };
  agree("--n-layer", m.n_layer, ck.n_layer);
  agree("--n-head", m.n_head, ck.n_head);
  agree("--n-embd", m.n_embd, ck.n_embd);
  if (app.given("--pos") && o.pos != model::position_name(ck.pos))
    throw Error("--pos " + o.pos + " but --init-from " + path.string() + " has " +
                model::position_name(ck.pos) + ": change positions with `slope surgery`");
  if (ck.pos == model::Position::learned) agree("--block-size", m.block_size, ck.block_size);
  if (app.given("--bias") && m.bias != ck.bias)
    throw Error("--bias differs from --init-from " + path.string() + "'s: leave it out");
  if (app.given("--max-bias") && m.max_bias != ck.max_bias)
    throw Error("--max-bias differs from --init-from " + path.string() +
                "'s: leave it out (the slopes are part of the model)");
  const int64_t block_size = app.given("--block-size") ? m.block_size : ck.block_size;
  const double dropout = m.dropout;
  m = ck;
  m.block_size = block_size;
  m.dropout = dropout;
  o.pos = model::position_name(ck.pos);
}

}  // namespace

namespace {

int train_and_report(const ConfigurableSubcommand& app, TrainCliOptions& o,
                     dist::Communicator& comm) {
  train::TrainOptions options;
  // Every rank checks the flags and reads the checkpoint's; an error is every rank's.
  dist::run_agreed(comm, [&] {
    o.train.arch = model::parse_arch(o.arch);
    o.train.dtype = nn::parse_gemm_dtype(o.dtype);
    if (o.train.arch == model::Arch::gpt)
      for (const char* flag : {"--n-dec-layer", "--min-len", "--mask-prob", "--max-src-len"})
        if (app.given(flag))
          throw Error(std::string(flag) + " is for --arch encoder or seq2seq, not a GPT");
    if (o.train.arch != model::Arch::gpt && !app.given("--pos")) o.pos = "alibi-symmetric";
    if (!o.train.init_from.empty()) take_checkpoint_architecture(app, o);
    o.train.model.pos = model::parse_position(o.pos);
    if (o.train.out_dir.empty())
      throw Error("--out is required: the directory for checkpoints and the log");
    if (o.train.data_dir.empty() && !o.train.resume)
      throw Error("--data is required: a directory made by `slope prepare`");
    options = o.train.resume ? merge_with_checkpoint(app, o.train) : o.train;
  });
  set_threads(o.threads);

  const bool rank0 = comm.rank() == 0;
  ProgressPrinter progress;
  train::TrainSummary s;
  try {
    train::TrainObserver* observer = rank0 ? &progress : nullptr;
    s = options.arch == model::Arch::gpt ? train::train_gpt(options, observer, &comm)
                                         : train::train_encdec(options, observer, &comm);
  } catch (...) {
    progress.finish();
    throw;
  }
  progress.finish();
  if (!rank0) return 0;
  if (s.last_eval.step != s.steps) {  // resumed at max_iters: no step, no eval
    std::printf("nothing to train: the checkpoint in %s is at step %lld = --max-iters\n",
                options.out_dir.c_str(), static_cast<long long>(s.steps));
    return 0;
  }
  std::printf(
      "trained to step %lld: train loss %.4f, val loss %.4f (best %.4f at step %lld), %.0f "
      "tokens/s, %.1f s in all\n",
      static_cast<long long>(s.steps), s.last_eval.train_loss, s.last_eval.val_loss,
      s.best_val_loss, static_cast<long long>(s.best_step), s.tokens_per_s, s.elapsed_s);
  std::printf("checkpoints: %s (latest), %s (best)\n", options.out_dir.c_str(),
              io::best_dir(options.out_dir).c_str());
  if (comm.size() > 1 && s.train_s > 0.0)
    std::printf(
        "data-parallel: %d ranks, %.1f MB of gradients allreduced per step, %.1f%% of "
        "rank 0's training time in the allreduce (waits for the other ranks included)\n",
        comm.size(), static_cast<double>(s.allreduce_bytes) / 1e6,
        100.0 * s.allreduce_s / s.train_s);
  return 0;
}

}  // namespace

int run_train(const ConfigurableSubcommand& app, TrainCliOptions& o) {
  std::unique_ptr<dist::Communicator> comm =
      dist::init_communicator(nullptr, nullptr, o.dist_timeout);
  if (comm->size() == 1) return train_and_report(app, o, *comm);
  // Several ranks: report errors here (main's "slope: ..." would print one per rank).
  try {
    return train_and_report(app, o, *comm);
  } catch (const dist::AgreedError& e) {
    // Every rank has it, and every rank is here: rank 0 says it, all finalize together.
    if (comm->rank() == 0) {
      std::fflush(stdout);
      std::fprintf(stderr, "slope: %s\n", e.what());
    }
    return 1;
  } catch (const std::exception& e) {
    // This rank's alone: the others may be waiting in a collective, where MPI_Finalize would
    // wait for them too. Say it and leave without finalizing; mpirun then ends the others.
    std::fflush(stdout);
    if (comm->rank() == 0)
      std::fprintf(stderr, "slope: %s\n", e.what());
    else
      std::fprintf(stderr, "slope: rank %d: %s\n", comm->rank(), e.what());
    std::fflush(stderr);
    std::_Exit(1);
  }
}

}  // namespace slope::cli
