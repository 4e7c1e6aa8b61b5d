// Loss per context length (see length_eval.h).
#include "train/length_eval.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "nn/crossentropy.h"  // kIgnoreIndex
#include "slope/error.h"  // slope::Error

namespace slope::train {

namespace {

LengthEvalRow evaluate_length(model::Gpt<float>& gpt, const data::TokenShard& shard, int64_t L,
                              const LengthEvalOptions& o) {
  LengthEvalRow row;
  row.length = L;
  const model::GptConfig& c = gpt.config();
  if (c.pos == model::Position::learned && L > c.block_size) {
    row.skipped = true;
    row.note = "learned positions end at block_size " + std::to_string(c.block_size);
    return row;
  }
  const int64_t N = static_cast<int64_t>(shard.size());
  if (N < L + 1) {
    row.skipped = true;
    row.note = "the split holds " + std::to_string(N) + " tokens, fewer than L + 1";
    return row;
  }
  const int64_t S = o.stride > 0 ? o.stride : L;  // window step
  const int64_t num_windows = (N - L - 1) / S + 1;
  const int64_t Bmax = std::max<int64_t>(1, o.batch_tokens / L);

  std::vector<uint32_t> window(static_cast<size_t>(L + 1));
  std::vector<int32_t> idx, targets;
  double loss_sum = 0.0;
  for (int64_t w0 = 0; w0 < num_windows; w0 += Bmax) {
    if (o.max_tokens > 0 && row.tokens >= o.max_tokens) break;
    const int64_t B = std::min(Bmax, num_windows - w0);
    idx.assign(static_cast<size_t>(B * L), 0);
    targets.assign(idx.size(), nn::kIgnoreIndex);
    int64_t counted = 0;
    for (int64_t b = 0; b < B; ++b) {
      const int64_t w = w0 + b;
      shard.copy(static_cast<uint64_t>(w * S), static_cast<uint64_t>(L + 1), window.data());
      const int64_t first_scored = w == 0 ? 0 : L - S;  // earlier targets were scored before
      for (int64_t t = 0; t < L; ++t) {
        idx[b * L + t] = static_cast<int32_t>(window[t]);
        if (t >= first_scored) {
          targets[b * L + t] = static_cast<int32_t>(window[t + 1]);
          ++counted;
        }
      }
    }
    const double mean = gpt.forward(idx.data(), targets.data(), B, L);
    if (!std::isfinite(mean))
      throw Error("the loss at length " + std::to_string(L) +
                  " is not finite: the checkpoint's weights are broken");
    loss_sum += mean * static_cast<double>(counted);
    row.tokens += counted;
    row.windows += B;
  }
  row.loss = loss_sum / static_cast<double>(row.tokens);
  row.perplexity = std::exp(row.loss);
  return row;
}

}  // namespace

std::vector<LengthEvalRow> evaluate_lengths(model::Gpt<float>& gpt, const data::TokenShard& shard,
                                            const LengthEvalOptions& o) {
  if (o.lengths.empty()) throw Error("--lengths is empty: give lengths like 64,128,256");
  for (int64_t L : o.lengths) {
    if (L < 1) throw Error("--lengths: " + std::to_string(L) + " is not a positive length");
    if (o.stride > L)
      throw Error("--stride " + std::to_string(o.stride) + " exceeds the length " +
                  std::to_string(L) + ": a stride must be at most every length");
  }
  if (o.stride < 0) throw Error("--stride must be >= 0 (0: non-overlapping windows)");
  if (o.max_tokens < 0) throw Error("--max-tokens must be >= 0 (0: the whole split)");
  if (static_cast<int64_t>(shard.vocab_size()) != gpt.config().vocab_size)
    throw Error(shard.path().string() + " has a vocabulary of " +
                std::to_string(shard.vocab_size()) + " tokens, the model " +
                std::to_string(gpt.config().vocab_size) +
                ": evaluate on the corpus the model was trained on");
  const bool training = gpt.training();
  gpt.set_training(false);
  std::vector<LengthEvalRow> rows;
  for (int64_t L : o.lengths) rows.push_back(evaluate_length(gpt, shard, L, o));
  gpt.set_training(training);
  return rows;
}

}  // namespace slope::train
