// Loss and perplexity of a model at several context lengths, the measurement behind ALiBi's
// "train short, test long" (Press et al. 2022) and `slope eval`.
//
// For a length L the token stream (a validation shard) is cut into windows of L inputs, each
// predicting the next token at every position:
//   non-overlapping (stride 0 or L): windows start at 0, L, 2L, ...; every target is scored
//     once, but early positions of a window see little context.
//   sliding (stride S < L): windows start at 0, S, 2S, ...; the first window scores all L
//     targets, each later one only its last S (each target once, after at least L − S tokens
//     of context): Press et al.'s sliding-window evaluation. Costs L/S times more.
// Only whole windows are scored (a window needs L + 1 tokens); the tail shorter than that is
// left out. The loss is the mean over scored targets, in nats; perplexity = exp(loss).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "data/token_shard.h"
#include "model/gpt.h"

namespace slope::train {

struct LengthEvalOptions {
  std::vector<int64_t> lengths;  // L values, in the order to report them
  int64_t stride = 0;            // 0: non-overlapping windows
  int64_t max_tokens = 0;        // stop a length after scoring this many targets; 0: all
  int64_t batch_tokens = 8192;   // window tokens per forward (memory bound); at least 1 window
};

struct LengthEvalRow {
  int64_t length = 0;
  bool skipped = false;
  std::string note;  // why a length was skipped
  int64_t windows = 0;
  int64_t tokens = 0;  // targets scored
  double loss = 0.0;   // mean cross-entropy, nats
  double perplexity = 0.0;
};

// One row per length. A length the model cannot run (learned positions beyond block_size) or
// the shard cannot fill (fewer than L + 1 tokens) is skipped with a note. Throws slope::Error
// for lengths < 1, a stride < 0 or above a length, or a shard of another vocabulary.
std::vector<LengthEvalRow> evaluate_lengths(model::Gpt<float>& gpt, const data::TokenShard& shard,
                                            const LengthEvalOptions& options);

}  // namespace slope::train
