// Evaluations of encoders and encoder–decoders: masked-token loss at a given length, teacher-
// forced seq2seq loss, and G2P decoding scored by word accuracy and phoneme error rate, overall
// and per source-length bucket (words longer than any trained on included).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/pairs.h"
#include "data/token_shard.h"
#include "model/encdec.h"
#include "model/seq2seq_decode.h"

namespace slope::train {

// The masked-LM loss of `batches` batches of B windows of exactly `len` tokens of the shard
// (data::MlmBatcher with min_len = max_len = len, the same batches for a given seed), in
// evaluation mode. The shard must hold at least len tokens.
double mlm_loss(model::EncDec<float>& model, const data::TokenShard& shard, int64_t len,
                int64_t batch_size, int64_t batches, int32_t mask_id, double mask_prob,
                uint64_t seed);

// Teacher-forced loss (per target token, <eos> included) over the first `max_examples` words of
// a split (each word's first pronunciation), in batches of B; evaluation mode.
double seq2seq_loss(model::EncDec<float>& model, const std::vector<data::PairExample>& examples,
                    int64_t batch_size, int64_t max_examples);

// One rank's share of an eval loss, to be summed over the ranks: the loss is sum / weight.
struct LossSum {
  double sum = 0.0, weight = 0.0;
};

// The same losses computed by `ranks` processes: each batch of `batch_size` rows is split into
// ranks equal slices (batch_size must be a multiple of ranks) and rank `rank` evaluates its own.
// Summed over the ranks, sum / weight is the loss above (up to the order of the sums); with one
// rank it is the loss above bit for bit.
LossSum mlm_loss_part(model::EncDec<float>& model, const data::TokenShard& shard, int64_t len,
                      int64_t batch_size, int64_t batches, int32_t mask_id, double mask_prob,
                      uint64_t seed, int rank, int ranks);
LossSum seq2seq_loss_part(model::EncDec<float>& model,
                          const std::vector<data::PairExample>& examples, int64_t batch_size,
                          int64_t max_examples, int rank, int ranks);

// Levenshtein distance between two token sequences.
int64_t edit_distance(const std::vector<int32_t>& a, const std::vector<int32_t>& b);

struct G2pBucket {
  int64_t min_chars = 0, max_chars = 0;  // word lengths [min, max]
  int64_t words = 0, correct = 0;
  int64_t edits = 0, ref_phonemes = 0;  // against the closest reference pronunciation
  double accuracy() const { return words ? static_cast<double>(correct) / words : 0.0; }
  double per() const { return ref_phonemes ? static_cast<double>(edits) / ref_phonemes : 0.0; }
};

struct G2pReport {
  G2pBucket all;
  std::vector<G2pBucket> buckets;  // by word length, those holding words
  struct Example {
    std::string word, predicted, reference;  // phonemes joined by spaces
    bool correct = false;
  };
  std::vector<Example> examples;  // every word, in split order
};

// Decodes every word of `examples` (greedy or beam, options) in batches of B. A word is correct
// when the output equals any of its pronunciations; its phoneme errors are the edit distance to
// the closest one, and PER = Σ errors / Σ that reference's length. Buckets are `bucket_width`
// characters wide. `progress(done, total)` is called after each batch when given.
G2pReport evaluate_g2p(model::EncDec<float>& model, const std::vector<data::PairExample>& examples,
                       const data::PairVocab& tgt_vocab, const model::DecodeOptions& options,
                       int64_t batch_size, int64_t bucket_width,
                       const std::function<void(int64_t, int64_t)>& progress = {});

}  // namespace slope::train
