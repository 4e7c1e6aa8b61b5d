// The shape of an encoder (BERT-style masked LM) or an encoder–decoder (seq2seq), in the terms of
// GptConfig plus what a second stack needs.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "model/gpt_config.h"

namespace slope::model {

// Which model `slope train --arch` builds: gpt (model/gpt.h), encoder or seq2seq (here).
enum class Arch { gpt, encoder, seq2seq };
const char* arch_name(Arch arch);        // "gpt", "encoder", "seq2seq"
Arch parse_arch(std::string_view name);  // throws slope::Error listing the names

struct EncDecConfig {
  Arch arch = Arch::encoder;  // encoder or seq2seq
  // Training length: learned positions' rows (both stacks); other schemes take any length.
  int64_t block_size = 64;
  int64_t vocab_size = 0;      // encoder input tokens (MLM: the corpus's plus <mask>)
  int64_t tgt_vocab_size = 0;  // seq2seq: decoder tokens (with <bos>, <eos>); 0 for encoders
  int64_t n_layer = 4;         // encoder blocks
  int64_t n_dec_layer = 4;     // seq2seq: decoder blocks
  int64_t n_head = 4;
  int64_t n_embd = 128;
  double dropout = 0.0;  // embeddings and residual branches
  bool bias = true;
  // Encoder side: learned, sinusoidal, none, alibi-symmetric, alibi-nonsymmetric, alibi-learned
  // (sigmoid(θ) left and right slopes). The decoder of a seq2seq is causal ALiBi whatever the
  // encoder's scheme (the recipe): Press's slopes, or learned causal slopes sigmoid(θ)
  // with alibi-learned. Cross-attention never carries a position bias.
  Position pos = Position::alibi_symmetric;
  double max_bias = kDefaultMaxBias;

  int64_t head_dim() const { return n_embd / n_head; }
  int64_t padded_vocab_size() const { return pad_vocab(vocab_size); }
  int64_t padded_tgt_vocab_size() const { return pad_vocab(tgt_vocab_size); }
  // The vocabulary the loss is over: the decoder's for seq2seq, the encoder's for MLM.
  int64_t out_vocab_size() const { return arch == Arch::seq2seq ? tgt_vocab_size : vocab_size; }
  static int64_t pad_vocab(int64_t v) {
    return (v + kVocabMultiple - 1) / kVocabMultiple * kVocabMultiple;
  }
};

// Throws slope::Error naming the first field out of range ("EncDecConfig: pos alibi is a
// decoder scheme: ...", an odd n_head with alibi-nonsymmetric, ...).
void validate(const EncDecConfig& config);

// config.json: {"arch", "block_size", "vocab_size", "tgt_vocab_size", "n_layer", "n_dec_layer",
// "n_head", "n_embd", "dropout", "bias", "pos", "max_bias"}; from_json validates and names
// `where` and the field in errors.
nlohmann::ordered_json encdec_config_to_json(const EncDecConfig& config);
EncDecConfig encdec_config_from_json(const nlohmann::json& j, const std::string& where);

}  // namespace slope::model
