// The shape of a GPT, in nanoGPT's GPTConfig terms plus slope's position scheme.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "nn/pointwise.h"     // nn::Activation
#include "slope/attention.h"  // RelativeBias

namespace slope::model {

// How a token learns where it is (DESIGN.md, "Models and training"). RoPE would slot in beside
// these.
enum class Position {
  learned,        // nanoGPT's wpe: a trained (block_size, C) table added to the embedding
  sinusoidal,     // Vaswani et al.'s fixed table added to the embedding, any length
  none,           // no position signal but the causal mask ("NoPE")
  alibi,          // Press et al.'s fixed per-head slopes in attention, no parameter
  alibi_learned,  // GPT: one trained slope vector (H) per layer, started at Press's slopes;
                  // encoders: trained left and right slopes sigmoid(θ), θ ~ N(−2, 1)
  // Encoder schemes (bidirectional attention, model/encdec.h); a GPT refuses them.
  alibi_symmetric,     // bias −m·|i − j|, Press's slopes
  alibi_nonsymmetric,  // half the heads see only the left, half only the right (ALiBi authors)
  // Learned relative biases in attention (issue 19; slope/attention.h, RelativeBias), one
  // parameter tensor per layer: attn.kerple (2, H) = (r1, r2), attn.relative_attention_bias
  // (num_buckets, H) (T5: causal buckets in a GPT, bidirectional in an encoder), attn.fire
  // (FIRE's MLP, c and L; L starts at block_size).
  kerple_log,
  kerple_power,
  t5,
  fire,
};

// True for the learned relative biases.
constexpr bool is_relative(Position pos) {
  return pos == Position::kerple_log || pos == Position::kerple_power || pos == Position::t5 ||
         pos == Position::fire;
}

// The relative bias of a scheme (kind kNone for the others): T5 with 32 buckets, max distance
// 128, bidirectional as given; FIRE with 32 hidden units and a 1024-cell grid.
RelativeBias<float> relative_bias_of(Position pos, bool bidirectional);

// True for the schemes that put the position in attention (a slope per head).
constexpr bool is_alibi(Position pos) {
  return pos == Position::alibi || pos == Position::alibi_learned ||
         pos == Position::alibi_symmetric || pos == Position::alibi_nonsymmetric;
}

// "learned", "sinusoidal", "none", "alibi", "alibi-learned", "alibi-symmetric",
// "alibi-nonsymmetric", "kerple-log", "kerple-power", "t5", "fire" (config.json and the CLI).
const char* position_name(Position pos);
// Accepts the names above (and "alibi_learned"); throws slope::Error listing them otherwise.
Position parse_position(std::string_view name);

// The padded vocabulary is a multiple of this (llm.c's 50257 → 50304), so the head's GEMM gets
// round sizes. Only the arena and the logits are padded; checkpoints keep (vocab_size, C).
constexpr int64_t kVocabMultiple = 64;
constexpr double kDefaultMaxBias = 8.0;  // Press et al.'s slopes
// The largest block_size, n_layer, n_head or n_embd a config may hold (GPT and encoders alike).
// Configs come from files (config.json): bounding each size keeps the products the parameter
// table forms ((4C, C), (Vp, C)) inside int64_t; the table checks their sum itself.
constexpr int64_t kMaxModelDim = int64_t{1} << 30;
// The most blocks a stack may have (GPT-3 has 96): the parameter table holds about 12 tensors a
// block, and a config.json with n_layer 2^30 kept `slope sample` laying them out for minutes.
constexpr int64_t kMaxLayers = 1024;

struct GptConfig {
  int64_t block_size = 1024;  // training context; the length limit only for `learned`
  int64_t vocab_size = 50304;
  int64_t n_layer = 12;
  int64_t n_head = 12;
  int64_t n_embd = 768;
  double dropout = 0.0;  // embeddings and residual branches (not attention probabilities)
  bool bias = true;      // biases in the linear layers and LayerNorms
  Position pos = Position::learned;
  double max_bias = kDefaultMaxBias;  // ALiBi slopes, alibi_slopes(n_head, max_bias)
  // The MLP's GELU: exact (nanoGPT's nn.GELU()) or GPT-2's tanh approximation (models imported
  // from Hugging Face GPT-2, whose activation_function is "gelu_new").
  nn::Activation activation = nn::Activation::gelu;

  int64_t padded_vocab_size() const {  // Vp
    return (vocab_size + kVocabMultiple - 1) / kVocabMultiple * kVocabMultiple;
  }
  int64_t head_dim() const { return n_embd / n_head; }
  bool uses_alibi() const { return pos == Position::alibi || pos == Position::alibi_learned; }
};

// "gelu" | "gelu-tanh" (config.json's "activation"); parse accepts Hugging Face's names too
// ("gelu_new", "gelu_pytorch_tanh" → gelu-tanh) and throws slope::Error on others.
const char* activation_name(nn::Activation act);
nn::Activation parse_activation(std::string_view name);

// Throws slope::Error naming the first field that is out of range and what would be valid
// ("n_embd 100 is not a multiple of n_head 12: ...").
void validate(const GptConfig& config);

}  // namespace slope::model
