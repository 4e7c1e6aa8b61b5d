// Position names and config validation (see gpt_config.h).
#include "model/gpt_config.h"

#include <cmath>
#include <limits>
#include <string>

#include "slope/attention.h"  // slope::Error

namespace slope::model {

namespace {

constexpr Position kPositions[] = {Position::learned,
                                   Position::sinusoidal,
                                   Position::none,
                                   Position::alibi,
                                   Position::alibi_learned,
                                   Position::alibi_symmetric,
                                   Position::alibi_nonsymmetric,
                                   Position::kerple_log,
                                   Position::kerple_power,
                                   Position::t5,
                                   Position::fire};

void require_positive(const char* field, int64_t value) {
  if (value < 1)
    throw Error(std::string("GptConfig: ") + field + " must be at least 1, got " +
                std::to_string(value));
  if (value > kMaxModelDim)
    throw Error(std::string("GptConfig: ") + field + " " + std::to_string(value) +
                " is larger than any model slope builds (at most " + std::to_string(kMaxModelDim) +
                "): the config is corrupt or far too large");
}

}  // namespace

const char* position_name(Position pos) {
  switch (pos) {
    case Position::learned:
      return "learned";
    case Position::sinusoidal:
      return "sinusoidal";
    case Position::none:
      return "none";
    case Position::alibi:
      return "alibi";
    case Position::alibi_learned:
      return "alibi-learned";
    case Position::alibi_symmetric:
      return "alibi-symmetric";
    case Position::alibi_nonsymmetric:
      return "alibi-nonsymmetric";
    case Position::kerple_log:
      return "kerple-log";
    case Position::kerple_power:
      return "kerple-power";
    case Position::t5:
      return "t5";
    case Position::fire:
      return "fire";
  }
  return "?";
}

RelativeBias<float> relative_bias_of(Position pos, bool bidirectional) {
  RelativeBias<float> r;
  if (!is_relative(pos)) return r;
  r.kind = relative_bias_kind(position_name(pos));
  r.bidirectional = bidirectional;
  return r;
}

Position parse_position(std::string_view name) {
  if (name == "alibi_learned") return Position::alibi_learned;
  if (name == "alibi_symmetric") return Position::alibi_symmetric;
  if (name == "alibi_nonsymmetric") return Position::alibi_nonsymmetric;
  std::string valid;
  for (Position p : kPositions) {
    if (name == position_name(p)) return p;
    valid += valid.empty() ? "" : ", ";
    valid += position_name(p);
  }
  throw Error("unknown position scheme \"" + std::string(name) + "\": use one of " + valid);
}

const char* activation_name(nn::Activation act) {
  return act == nn::Activation::gelu_tanh ? "gelu-tanh" : "gelu";
}

nn::Activation parse_activation(std::string_view name) {
  if (name == "gelu") return nn::Activation::gelu;
  if (name == "gelu-tanh" || name == "gelu_tanh" || name == "gelu_new" ||
      name == "gelu_pytorch_tanh")
    return nn::Activation::gelu_tanh;
  throw Error("unknown activation \"" + std::string(name) +
              "\": use gelu (exact) or gelu-tanh (GPT-2's, Hugging Face's gelu_new)");
}

void validate(const GptConfig& c) {
  require_positive("block_size", c.block_size);
  require_positive("vocab_size", c.vocab_size);
  require_positive("n_layer", c.n_layer);
  if (c.n_layer > kMaxLayers)
    throw Error("GptConfig: n_layer " + std::to_string(c.n_layer) + " is more than the " +
                std::to_string(kMaxLayers) + " blocks slope builds: the config is corrupt");
  require_positive("n_head", c.n_head);
  require_positive("n_embd", c.n_embd);
  if (c.vocab_size > std::numeric_limits<int32_t>::max() - kVocabMultiple)
    throw Error("GptConfig: vocab_size " + std::to_string(c.vocab_size) +
                " does not fit 32-bit token ids");
  if (c.n_embd % c.n_head != 0)
    throw Error("GptConfig: n_embd " + std::to_string(c.n_embd) + " is not a multiple of n_head " +
                std::to_string(c.n_head) + ": choose n_embd = n_head * head_dim");
  if (!(c.dropout >= 0.0 && c.dropout < 1.0))
    throw Error("GptConfig: dropout must be in [0, 1), got " + std::to_string(c.dropout));
  if (c.pos == Position::alibi_symmetric || c.pos == Position::alibi_nonsymmetric)
    throw Error(std::string("GptConfig: pos ") + position_name(c.pos) +
                " is an encoder scheme (bidirectional attention): a GPT takes alibi or "
                "alibi-learned; train it with --arch encoder or seq2seq");
  if (!(c.max_bias > 0.0) || !std::isfinite(c.max_bias))
    throw Error("GptConfig: max_bias must be a positive finite number, got " +
                std::to_string(c.max_bias));
}

}  // namespace slope::model
