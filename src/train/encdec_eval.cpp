// Encoder and seq2seq evaluations (see encdec_eval.h).
#include "train/encdec_eval.h"

#include <algorithm>
#include <limits>

#include "data/mlm_batcher.h"
#include "slope/error.h"  // slope::Error

namespace slope::train {

namespace {

template <class F>
auto in_eval_mode(model::EncDec<float>& m, F f) {
  const model::EvalMode eval_mode(m);
  return f();
}

}  // namespace

LossSum mlm_loss_part(model::EncDec<float>& m, const data::TokenShard& shard, int64_t len,
                      int64_t batch_size, int64_t batches, int32_t mask_id, double mask_prob,
                      uint64_t seed, int rank, int ranks) {
  const int32_t V = mask_id;  // random replacements come from the corpus's tokens
  data::MlmBatcher batcher(shard, batch_size, len, len, mask_id, V, seed, mask_prob);
  const int64_t B = batch_size / ranks;
  if (ranks > 1) batcher.set_rows({rank * B, B});
  return in_eval_mode(m, [&] {
    data::MlmBatch batch;
    LossSum loss;
    // Every row holds len tokens and as many selected ones: the mean over the whole batch is
    // the mean of the slices' means.
    for (int64_t k = 0; k < batches; ++k) {
      batcher.next(batch);  // batch k
      loss.sum += m.forward_mlm(batch.idx.data(), batch.lengths.data(), batch.targets.data(),
                                batch.B, batch.T);
      loss.weight += 1.0;
    }
    return loss;
  });
}

double mlm_loss(model::EncDec<float>& m, const data::TokenShard& shard, int64_t len,
                int64_t batch_size, int64_t batches, int32_t mask_id, double mask_prob,
                uint64_t seed) {
  const LossSum loss =
      mlm_loss_part(m, shard, len, batch_size, batches, mask_id, mask_prob, seed, 0, 1);
  return loss.sum / loss.weight;
}

LossSum seq2seq_loss_part(model::EncDec<float>& m, const std::vector<data::PairExample>& examples,
                          int64_t batch_size, int64_t max_examples, int rank, int ranks) {
  const int64_t n = std::min<int64_t>(max_examples, static_cast<int64_t>(examples.size()));
  if (n < 1) throw Error("seq2seq_loss: the split has no examples");
  const int64_t B = batch_size / ranks;
  return in_eval_mode(m, [&] {
    data::PairBatch batch;
    LossSum loss;
    for (int64_t whole = 0; whole < n; whole += batch_size) {
      const int64_t first = whole + rank * B;  // this rank's rows of the batch
      const int64_t count = std::min({B, n - first, batch_size - rank * B});
      if (count <= 0) continue;
      data::make_pair_batch(examples, first, count, batch);
      const double l =
          m.forward_seq2seq(batch.src.data(), batch.src_lengths.data(), batch.tgt_in.data(),
                            batch.tgt_out.data(), batch.B, batch.S, batch.T);
      const int64_t targets = std::count_if(batch.tgt_out.begin(), batch.tgt_out.end(),
                                            [](int32_t t) { return t >= 0; });
      loss.sum += l * static_cast<double>(targets), loss.weight += static_cast<double>(targets);
    }
    return loss;
  });
}

double seq2seq_loss(model::EncDec<float>& m, const std::vector<data::PairExample>& examples,
                    int64_t batch_size, int64_t max_examples) {
  const LossSum loss = seq2seq_loss_part(m, examples, batch_size, max_examples, 0, 1);
  return loss.sum / loss.weight;
}

int64_t edit_distance(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  std::vector<int64_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = static_cast<int64_t>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    int64_t diag = row[0];
    row[0] = static_cast<int64_t>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      const int64_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

G2pReport evaluate_g2p(model::EncDec<float>& m, const std::vector<data::PairExample>& examples,
                       const data::PairVocab& tgt_vocab, const model::DecodeOptions& options,
                       int64_t batch_size, int64_t bucket_width,
                       const std::function<void(int64_t, int64_t)>& progress) {
  if (batch_size < 1 || bucket_width < 1)
    throw Error("evaluate_g2p: batch size and bucket width must be at least 1");
  const int64_t n = static_cast<int64_t>(examples.size());
  G2pReport report;
  std::vector<G2pBucket> buckets;
  data::PairBatch batch;
  for (int64_t first = 0; first < n; first += batch_size) {
    const int64_t count = std::min(batch_size, n - first);
    data::make_pair_batch(examples, first, count, batch);
    const std::vector<model::Decoded> out =
        model::decode(m, batch.src.data(), batch.src_lengths.data(), batch.B, batch.S, options);
    for (int64_t i = 0; i < count; ++i) {
      const data::PairExample& e = examples[static_cast<size_t>(first + i)];
      const std::vector<int32_t>& pred = out[static_cast<size_t>(i)].ids;
      bool correct = false;
      int64_t best = std::numeric_limits<int64_t>::max(), ref_len = 0;
      size_t closest = 0;
      for (size_t r = 0; r < e.prons.size(); ++r) {
        const int64_t d = edit_distance(pred, e.prons[r]);
        correct = correct || d == 0;
        if (d < best) best = d, ref_len = static_cast<int64_t>(e.prons[r].size()), closest = r;
      }
      const int64_t chars = static_cast<int64_t>(e.src.size());
      const size_t k = static_cast<size_t>((chars - 1) / bucket_width);
      if (buckets.size() <= k) buckets.resize(k + 1);
      for (G2pBucket* b : {&report.all, &buckets[k]}) {
        b->words += 1, b->correct += correct, b->edits += best, b->ref_phonemes += ref_len;
      }
      report.examples.push_back(
          {e.word, tgt_vocab.decode(pred), tgt_vocab.decode(e.prons[closest]), correct});
    }
    if (progress) progress(first + count, n);
  }
  for (size_t k = 0; k < buckets.size(); ++k) {
    buckets[k].min_chars = static_cast<int64_t>(k) * bucket_width + 1;
    buckets[k].max_chars = static_cast<int64_t>(k + 1) * bucket_width;
    if (buckets[k].words > 0) report.buckets.push_back(buckets[k]);
  }
  report.all.min_chars = report.buckets.empty() ? 0 : report.buckets.front().min_chars;
  report.all.max_chars = report.buckets.empty() ? 0 : report.buckets.back().max_chars;
  return report;
}

}  // namespace slope::train
