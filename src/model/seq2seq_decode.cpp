// Greedy and beam-search decoding (see seq2seq_decode.h).
#include "model/seq2seq_decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "slope/error.h"  // slope::Error

namespace slope::model {

namespace {

struct Hyp {
  std::vector<int32_t> ids;  // generated tokens, <bos> excluded
  double score = 0.0;        // total log-probability
  int64_t source = 0;
};

// log-softmax of one row of logits over the first V entries, in double.
void log_softmax(const float* logits, int64_t V, std::vector<double>& out) {
  out.resize(static_cast<size_t>(V));
  double mx = -std::numeric_limits<double>::infinity();
  for (int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(logits[v]));
  double sum = 0.0;
  for (int64_t v = 0; v < V; ++v) sum += std::exp(static_cast<double>(logits[v]) - mx);
  const double lse = mx + std::log(sum);
  for (int64_t v = 0; v < V; ++v) out[static_cast<size_t>(v)] = logits[v] - lse;
}

}  // namespace

std::vector<Decoded> decode(EncDec<float>& model, const int32_t* src, const int32_t* src_lengths,
                            int64_t B, int64_t S, const DecodeOptions& o) {
  if (o.beam < 1) throw Error("decode: beam must be at least 1, got " + std::to_string(o.beam));
  if (o.max_len < 1)
    throw Error("decode: max_len must be at least 1, got " + std::to_string(o.max_len));
  const EncDecConfig& c = model.config();
  const int64_t V = c.tgt_vocab_size, Vp = c.padded_tgt_vocab_size();
  if (o.bos < 0 || o.bos >= V || o.eos < 0 || o.eos >= V)
    throw Error("decode: <bos> or <eos> is outside the target vocabulary");
  // Every prefix the decoder sees holds <bos> plus at most max_len − 1 tokens (a hypothesis is
  // cut at max_len tokens without running it again), so T ≤ max_len.
  const EvalMode eval_mode(model);
  model.encode(src, src_lengths, B, S);

  std::vector<Hyp> alive;
  for (int64_t b = 0; b < B; ++b) alive.push_back({{}, 0.0, b});
  std::vector<Decoded> best(static_cast<size_t>(B));
  std::vector<bool> found(static_cast<size_t>(B), false);
  auto finish = [&](const Hyp& h) {
    Decoded& d = best[static_cast<size_t>(h.source)];
    if (!found[static_cast<size_t>(h.source)] || h.score > d.logprob) {
      d = {h.ids, h.score};
      found[static_cast<size_t>(h.source)] = true;
    }
  };
  std::vector<int32_t> prefix, rows;
  std::vector<double> lp;
  for (int64_t t = 0; !alive.empty(); ++t) {
    if (t == o.max_len) {  // cut: the best of what is left competes as it stands
      for (const Hyp& h : alive) finish(h);
      break;
    }
    const int64_t R = static_cast<int64_t>(alive.size()), T = t + 1;
    prefix.assign(static_cast<size_t>(R * T), o.bos);
    rows.resize(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) {
      std::copy(alive[r].ids.begin(), alive[r].ids.end(), prefix.begin() + r * T + 1);
      rows[static_cast<size_t>(r)] = static_cast<int32_t>(alive[r].source);
    }
    const float* logits = model.decode(prefix.data(), rows.data(), R, T);

    // Candidates per source: each alive hypothesis extended by each token.
    std::vector<std::vector<Hyp>> next(static_cast<size_t>(B));
    for (int64_t r = 0; r < R; ++r) {
      const Hyp& h = alive[static_cast<size_t>(r)];
      log_softmax(logits + (r * T + t) * Vp, V, lp);
      lp[static_cast<size_t>(o.bos)] = -std::numeric_limits<double>::infinity();  // never emitted
      // Only the beam best tokens of a hypothesis can survive the cut below.
      std::vector<int32_t> order(static_cast<size_t>(V));
      for (int32_t v = 0; v < V; ++v) order[static_cast<size_t>(v)] = v;
      const int64_t k = std::min<int64_t>(o.beam, V);
      std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
        return lp[static_cast<size_t>(a)] > lp[static_cast<size_t>(b)] ||
               (lp[static_cast<size_t>(a)] == lp[static_cast<size_t>(b)] && a < b);
      });
      for (int64_t i = 0; i < k; ++i) {
        const int32_t v = order[static_cast<size_t>(i)];
        Hyp n = h;
        n.score += lp[static_cast<size_t>(v)];
        if (v == o.eos) {
          finish(n);
          continue;
        }
        n.ids.push_back(v);
        next[static_cast<size_t>(h.source)].push_back(std::move(n));
      }
    }
    alive.clear();
    for (int64_t b = 0; b < B; ++b) {
      std::vector<Hyp>& cand = next[static_cast<size_t>(b)];
      std::stable_sort(cand.begin(), cand.end(),
                       [](const Hyp& x, const Hyp& y) { return x.score > y.score; });
      if (static_cast<int64_t>(cand.size()) > o.beam) cand.resize(static_cast<size_t>(o.beam));
      // Scores only fall: a source whose best finished output beats every prefix is done.
      if (cand.empty() ||
          (found[static_cast<size_t>(b)] && best[static_cast<size_t>(b)].logprob >= cand[0].score))
        continue;
      for (Hyp& h : cand) alive.push_back(std::move(h));
    }
  }
  return best;
}

}  // namespace slope::model
