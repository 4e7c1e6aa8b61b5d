// Training options: validation, JSON, and the resume check (see train_options.h).
#include "train/train_options.h"

#include <cmath>
#include <sstream>
#include <string>

#include "files/json_file.h"
#include "slope/attention.h"  // slope::Error

namespace slope::train {

namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw Error(message);
}

std::string str(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

template <class T>
T field(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key)) throw Error(where + ": field \"" + key + "\" is missing");
  std::optional<T> v = files::json_as<T>(j.at(key));
  if (!v)
    throw Error(where + ": field \"" + key + "\" has the wrong type or is out of range (" +
                j.at(key).dump() + ")");
  return std::move(*v);
}

}  // namespace

void validate(const TrainOptions& o) {
  const model::GptConfig& m = o.model;
  require(m.n_layer >= 1, "--n-layer must be at least 1, got " + std::to_string(m.n_layer));
  require(m.n_head >= 1, "--n-head must be at least 1, got " + std::to_string(m.n_head));
  require(m.n_embd >= 1 && m.n_embd % m.n_head == 0,
          "--n-embd " + std::to_string(m.n_embd) + " is not a positive multiple of --n-head " +
              std::to_string(m.n_head) + ": choose n_embd = n_head * head_dim");
  require(m.block_size >= 1,
          "--block-size must be at least 1, got " + std::to_string(m.block_size));
  require(m.dropout >= 0.0 && m.dropout < 1.0,
          "--dropout must be in [0, 1), got " + str(m.dropout));
  if (o.arch == model::Arch::gpt) model::validate(m);  // encoders: EncDecConfig's validate
  require(o.n_dec_layer >= 0,
          "--n-dec-layer must be >= 0 (0: --n-layer), got " + std::to_string(o.n_dec_layer));
  require(
      o.min_len >= 0 && o.min_len <= m.block_size,
      "--min-len must be in [1, --block-size] (0: block_size/4), got " + std::to_string(o.min_len));
  require(o.mask_prob > 0.0 && o.mask_prob < 1.0,
          "--mask-prob must be in (0, 1), got " + str(o.mask_prob));
  require(o.max_src_len >= 0,
          "--max-src-len must be >= 0 (0: every word), got " + std::to_string(o.max_src_len));
  require(o.batch_size >= 1,
          "--batch-size must be at least 1, got " + std::to_string(o.batch_size));
  require(o.train_block_size >= 0 && o.train_block_size <= m.block_size,
          "--train-block-size must be in [1, --block-size " + std::to_string(m.block_size) +
              "] (0: the block size), got " + std::to_string(o.train_block_size));
  require(o.batch_size * m.block_size % o.train_len() == 0,
          "--batch-size " + std::to_string(o.batch_size) + " x --block-size " +
              std::to_string(m.block_size) + " is not a multiple of --train-block-size " +
              std::to_string(o.train_len()) +
              ": a step must see as many tokens as at full length (choose a divisor of it)");
  require(o.grad_accum >= 1,
          "--grad-accum must be at least 1, got " + std::to_string(o.grad_accum));
  require(o.max_iters >= 0, "--max-iters must be >= 0, got " + std::to_string(o.max_iters));
  require(o.lr > 0.0 && std::isfinite(o.lr), "--lr must be positive and finite, got " + str(o.lr));
  require(o.min_lr < 0.0 || (std::isfinite(o.min_lr) && o.min_lr <= o.lr),
          "--min-lr must be in [0, --lr " + str(o.lr) + "], got " + str(o.min_lr));
  require(o.warmup_iters >= 0,
          "--warmup-iters must be >= 0, got " + std::to_string(o.warmup_iters));
  require(o.lr_decay_iters >= 0, "--lr-decay-iters must be >= 0 (0: --max-iters), got " +
                                     std::to_string(o.lr_decay_iters));
  require(o.decay_end() > o.warmup_iters,
          "--warmup-iters " + std::to_string(o.warmup_iters) +
              " must be below the end of the decay (--lr-decay-iters, default --max-iters: " +
              std::to_string(o.decay_end()) + "): lower --warmup-iters");
  require(o.weight_decay >= 0.0 && std::isfinite(o.weight_decay),
          "--weight-decay must be >= 0, got " + str(o.weight_decay));
  require(o.beta1 >= 0.0 && o.beta1 < 1.0, "--beta1 must be in [0, 1), got " + str(o.beta1));
  require(o.beta2 >= 0.0 && o.beta2 < 1.0, "--beta2 must be in [0, 1), got " + str(o.beta2));
  require(o.grad_clip >= 0.0 && !std::isnan(o.grad_clip),
          "--grad-clip must be >= 0 (0: no clipping), got " + str(o.grad_clip));
  require(o.eval_interval >= 1,
          "--eval-interval must be at least 1, got " + std::to_string(o.eval_interval));
  require(o.eval_iters >= 1,
          "--eval-iters must be at least 1, got " + std::to_string(o.eval_iters));
}

nlohmann::ordered_json options_to_json(const TrainOptions& o) {
  nlohmann::ordered_json j;
  j["arch"] = model::arch_name(o.arch);
  j["n-layer"] = o.model.n_layer;
  j["n-dec-layer"] = o.n_dec_layer;
  j["min-len"] = o.min_len;
  j["mask-prob"] = o.mask_prob;
  j["max-src-len"] = o.max_src_len;
  j["n-head"] = o.model.n_head;
  j["n-embd"] = o.model.n_embd;
  j["block-size"] = o.model.block_size;
  j["pos"] = model::position_name(o.model.pos);
  j["dropout"] = o.model.dropout;
  j["bias"] = o.model.bias;
  j["max-bias"] = o.model.max_bias;
  j["activation"] = model::activation_name(o.model.activation);
  j["vocab-size"] = o.model.vocab_size;
  j["batch-size"] = o.batch_size;
  j["train-block-size"] = o.train_block_size;
  j["grad-accum"] = o.grad_accum;
  j["max-iters"] = o.max_iters;
  j["lr-decay-iters"] = o.lr_decay_iters;
  j["lr"] = o.lr;
  j["min-lr"] = o.min_lr;
  j["warmup-iters"] = o.warmup_iters;
  j["weight-decay"] = o.weight_decay;
  j["beta1"] = o.beta1;
  j["beta2"] = o.beta2;
  j["grad-clip"] = o.grad_clip;
  j["seed"] = o.seed;
  j["eval-interval"] = o.eval_interval;
  j["eval-iters"] = o.eval_iters;
  j["dtype"] = nn::gemm_dtype_name(o.dtype);
  if (o.ranks != 1) j["ranks"] = o.ranks;
  return j;
}

TrainOptions options_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": \"options\" is not a JSON object");
  TrainOptions o;
  // Absent in the train states of runs from before encoders existed: their defaults.
  if (j.contains("arch")) {
    o.arch = model::parse_arch(field<std::string>(j, "arch", where));
    o.n_dec_layer = field<int64_t>(j, "n-dec-layer", where);
    o.min_len = field<int64_t>(j, "min-len", where);
    o.mask_prob = field<double>(j, "mask-prob", where);
    o.max_src_len = field<int64_t>(j, "max-src-len", where);
  }
  o.model.n_layer = field<int64_t>(j, "n-layer", where);
  o.model.n_head = field<int64_t>(j, "n-head", where);
  o.model.n_embd = field<int64_t>(j, "n-embd", where);
  o.model.block_size = field<int64_t>(j, "block-size", where);
  o.model.pos = model::parse_position(field<std::string>(j, "pos", where));
  o.model.dropout = field<double>(j, "dropout", where);
  o.model.bias = field<bool>(j, "bias", where);
  o.model.max_bias = field<double>(j, "max-bias", where);
  // Absent in the train states of runs from before GPT-2's GELU existed: the exact GELU.
  if (j.contains("activation"))
    o.model.activation = model::parse_activation(field<std::string>(j, "activation", where));
  o.model.vocab_size = field<int64_t>(j, "vocab-size", where);
  o.batch_size = field<int64_t>(j, "batch-size", where);
  o.train_block_size = field<int64_t>(j, "train-block-size", where);
  o.grad_accum = field<int64_t>(j, "grad-accum", where);
  o.max_iters = field<int64_t>(j, "max-iters", where);
  o.lr_decay_iters = field<int64_t>(j, "lr-decay-iters", where);
  o.lr = field<double>(j, "lr", where);
  o.min_lr = field<double>(j, "min-lr", where);
  o.warmup_iters = field<int64_t>(j, "warmup-iters", where);
  o.weight_decay = field<double>(j, "weight-decay", where);
  o.beta1 = field<double>(j, "beta1", where);
  o.beta2 = field<double>(j, "beta2", where);
  o.grad_clip = field<double>(j, "grad-clip", where);
  o.seed = field<uint64_t>(j, "seed", where);
  o.eval_interval = field<int64_t>(j, "eval-interval", where);
  o.eval_iters = field<int64_t>(j, "eval-iters", where);
  // Absent in the train states of runs from before --dtype existed: fp32.
  if (j.contains("dtype")) o.dtype = nn::parse_gemm_dtype(field<std::string>(j, "dtype", where));
  if (j.contains("ranks")) o.ranks = field<int64_t>(j, "ranks", where);  // absent: one process
  if (o.ranks < 1) throw Error(where + ": \"ranks\" must be at least 1");
  return o;
}

void check_resumable(const TrainOptions& saved, const TrainOptions& now, const std::string& where) {
  // These fix the parameters' shapes or the stream of batches and dropout masks.
  static const char* const kFixed[] = {
      "arch",     "n-dec-layer", "min-len",          "mask-prob",  "max-src-len", "n-layer",
      "n-head",   "n-embd",      "block-size",       "pos",        "dropout",     "bias",
      "max-bias", "vocab-size",  "train-block-size", "grad-accum", "seed"};
  const nlohmann::ordered_json a = options_to_json(saved), b = options_to_json(now);
  const auto text = [](const nlohmann::ordered_json& v) {
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  const int64_t saved_global = saved.ranks * saved.batch_size;
  if (saved_global != now.ranks * now.batch_size) {
    if (saved.ranks == now.ranks)
      throw Error(where + " was trained with --batch-size " + std::to_string(saved.batch_size) +
                  ", but this run has " + std::to_string(now.batch_size) + ": pass --batch-size " +
                  std::to_string(saved.batch_size) +
                  " (or leave it out: --resume takes the checkpoint's value)");
    std::string other_n;
    if (saved_global % now.ranks == 0)
      other_n = ", or keep " + std::to_string(now.ranks) + " rank(s) with --batch-size " +
                std::to_string(saved_global / now.ranks);
    throw Error(
        where + " was trained on " + std::to_string(saved.ranks) + " rank(s) x --batch-size " +
        std::to_string(saved.batch_size) + " = a global batch of " + std::to_string(saved_global) +
        " sequences, but this run has " + std::to_string(now.ranks) + " x " +
        std::to_string(now.batch_size) + " = " + std::to_string(now.ranks * now.batch_size) +
        ": resume with mpirun -np " + std::to_string(saved.ranks) + " and --batch-size " +
        std::to_string(saved.batch_size) + other_n);
  }
  for (const char* key : kFixed) {
    if (a[key] == b[key]) continue;
    if (std::string(key) == "vocab-size")
      throw Error(where + " was trained with a vocabulary of " + a[key].dump() +
                  " tokens, but --data has " + b[key].dump() +
                  ": resume with the corpus it was trained on");
    throw Error(where + " was trained with --" + key + " " + text(a[key]) + ", but this run has " +
                text(b[key]) + ": pass --" + key + " " + text(a[key]) +
                " (or leave it out: --resume takes the checkpoint's value)");
  }
}

}  // namespace slope::train
