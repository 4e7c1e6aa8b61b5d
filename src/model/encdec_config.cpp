// Encoder / seq2seq configs (see encdec_config.h).
#include "model/encdec_config.h"

#include <cmath>
#include <limits>

#include "files/json_file.h"
#include "slope/attention.h"  // slope::Error

namespace slope::model {

namespace {

void require_positive(const char* field, int64_t value) {
  if (value < 1)
    throw Error(std::string("EncDecConfig: ") + field + " must be at least 1, got " +
                std::to_string(value));
  if (value > kMaxModelDim)
    throw Error(std::string("EncDecConfig: ") + field + " " + std::to_string(value) +
                " is larger than any model slope builds (at most " + std::to_string(kMaxModelDim) +
                "): the config is corrupt or far too large");
}

template <class T>
T field(const nlohmann::json& j, const char* name, const std::string& where) {
  if (!j.contains(name)) throw Error(where + ": missing field \"" + name + "\"");
  std::optional<T> v = files::json_as<T>(j.at(name));
  if (!v) throw Error(where + ": field \"" + name + "\" has the wrong type or is out of range");
  return std::move(*v);
}

}  // namespace

const char* arch_name(Arch arch) {
  switch (arch) {
    case Arch::gpt:
      return "gpt";
    case Arch::encoder:
      return "encoder";
    case Arch::seq2seq:
      return "seq2seq";
  }
  return "?";
}

Arch parse_arch(std::string_view name) {
  for (Arch a : {Arch::gpt, Arch::encoder, Arch::seq2seq})
    if (name == arch_name(a)) return a;
  throw Error("unknown architecture \"" + std::string(name) + "\": use gpt, encoder or seq2seq");
}

void validate(const EncDecConfig& c) {
  if (c.arch == Arch::gpt)
    throw Error("EncDecConfig: arch gpt is model/gpt.h's: use encoder or seq2seq");
  require_positive("block_size", c.block_size);
  require_positive("vocab_size", c.vocab_size);
  require_positive("n_layer", c.n_layer);
  if (c.n_layer > kMaxLayers)
    throw Error("EncDecConfig: n_layer " + std::to_string(c.n_layer) + " is more than the " +
                std::to_string(kMaxLayers) + " blocks slope builds: the config is corrupt");
  require_positive("n_head", c.n_head);
  require_positive("n_embd", c.n_embd);
  if (c.arch == Arch::seq2seq) {
    require_positive("tgt_vocab_size", c.tgt_vocab_size);
    require_positive("n_dec_layer", c.n_dec_layer);
    if (c.n_dec_layer > kMaxLayers)
      throw Error("EncDecConfig: n_dec_layer " + std::to_string(c.n_dec_layer) +
                  " is more than the " + std::to_string(kMaxLayers) +
                  " blocks slope builds: the config is corrupt");
  }
  for (int64_t v : {c.vocab_size, c.tgt_vocab_size})
    if (v > std::numeric_limits<int32_t>::max() - kVocabMultiple)
      throw Error("EncDecConfig: vocabulary of " + std::to_string(v) +
                  " does not fit 32-bit token ids");
  if (c.n_embd % c.n_head != 0)
    throw Error("EncDecConfig: n_embd " + std::to_string(c.n_embd) +
                " is not a multiple of n_head " + std::to_string(c.n_head));
  if (c.pos == Position::alibi)
    throw Error(
        "EncDecConfig: pos alibi is the decoder's causal scheme; an encoder takes "
        "alibi-symmetric, alibi-nonsymmetric or alibi-learned");
  if (c.pos == Position::fire)
    throw Error(
        "EncDecConfig: pos fire is a causal scheme (Li et al. normalise by the query's position); "
        "an encoder takes kerple-log, kerple-power or t5 among the learned relative biases");
  if (c.pos == Position::alibi_nonsymmetric && c.n_head % 2 != 0)
    throw Error("EncDecConfig: alibi-nonsymmetric gives half the heads each side: n_head " +
                std::to_string(c.n_head) + " must be even");
  if (!(c.dropout >= 0.0 && c.dropout < 1.0))
    throw Error("EncDecConfig: dropout must be in [0, 1), got " + std::to_string(c.dropout));
  if (!(c.max_bias > 0.0) || !std::isfinite(c.max_bias))
    throw Error("EncDecConfig: max_bias must be a positive finite number");
}

nlohmann::ordered_json encdec_config_to_json(const EncDecConfig& c) {
  nlohmann::ordered_json j;
  j["arch"] = arch_name(c.arch);
  j["block_size"] = c.block_size;
  j["vocab_size"] = c.vocab_size;
  j["tgt_vocab_size"] = c.tgt_vocab_size;
  j["n_layer"] = c.n_layer;
  j["n_dec_layer"] = c.n_dec_layer;
  j["n_head"] = c.n_head;
  j["n_embd"] = c.n_embd;
  j["dropout"] = c.dropout;
  j["bias"] = c.bias;
  j["pos"] = position_name(c.pos);
  j["max_bias"] = c.max_bias;
  return j;
}

EncDecConfig encdec_config_from_json(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + ": not a JSON object");
  EncDecConfig c;
  try {
    c.arch = parse_arch(field<std::string>(j, "arch", where));
    c.pos = parse_position(field<std::string>(j, "pos", where));
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  c.block_size = field<int64_t>(j, "block_size", where);
  c.vocab_size = field<int64_t>(j, "vocab_size", where);
  c.tgt_vocab_size = field<int64_t>(j, "tgt_vocab_size", where);
  c.n_layer = field<int64_t>(j, "n_layer", where);
  c.n_dec_layer = field<int64_t>(j, "n_dec_layer", where);
  c.n_head = field<int64_t>(j, "n_head", where);
  c.n_embd = field<int64_t>(j, "n_embd", where);
  c.dropout = field<double>(j, "dropout", where);
  c.bias = field<bool>(j, "bias", where);
  c.max_bias = field<double>(j, "max_bias", where);
  try {
    validate(c);
  } catch (const Error& e) {
    throw Error(where + ": " + e.what());
  }
  return c;
}

}  // namespace slope::model
