// Greedy and beam-search decoding (model/seq2seq_decode.h) against plain references on a tiny
// random seq2seq: greedy against an argmax loop over full forwards, beam search wide enough to
// be exhaustive against brute-force enumeration of every output, max_len, <bos> never emitted.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <limits>
#include <vector>

#include "encdec_testing.h"
#include "model/seq2seq_decode.h"
#include "slope/attention.h"  // slope::Error

namespace slope::model::testing {
namespace {

constexpr int32_t kBos = 0, kEos = 1;

EncDec<float> tiny_model(int64_t tgt_vocab, Position pos, uint64_t seed) {
  EncDecConfig c;
  c.arch = Arch::seq2seq;
  c.vocab_size = 7, c.tgt_vocab_size = tgt_vocab;
  c.n_layer = 1, c.n_dec_layer = 2, c.n_head = 2, c.n_embd = 16, c.block_size = 32;
  c.pos = pos;
  EncDec<float> m(c, seed);
  randomize_params(m, seed + 1);
  return m;
}

// log p(tokens, then <eos> unless cut) of one source under teacher forcing, in double.
double sequence_logprob(EncDec<float>& m, const std::vector<int32_t>& src,
                        const std::vector<int32_t>& ids, bool ends_with_eos) {
  const int64_t S = static_cast<int64_t>(src.size());
  std::vector<int32_t> tgt{kBos};
  tgt.insert(tgt.end(), ids.begin(), ids.end());
  std::vector<int32_t> next = ids;
  if (ends_with_eos) {
    next.push_back(kEos);
  } else {
    tgt.pop_back();  // a cut output: scored on its tokens only
  }
  const int64_t T = static_cast<int64_t>(tgt.size());
  const int32_t len = static_cast<int32_t>(S);
  m.forward_seq2seq(src.data(), &len, tgt.data(), nullptr, 1, S, T);
  const int64_t V = m.config().tgt_vocab_size, Vp = m.config().padded_tgt_vocab_size();
  double total = 0.0;
  for (int64_t t = 0; t < T; ++t) {
    const float* row = m.logits() + t * Vp;
    double mx = -std::numeric_limits<double>::infinity(), sum = 0.0;
    for (int64_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    for (int64_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
    total += row[next[static_cast<size_t>(t)]] - mx - std::log(sum);
  }
  return total;
}

TEST(Seq2SeqDecode, GreedyIsTheArgmaxLoop) {
  for (Position pos : {Position::alibi_symmetric, Position::learned, Position::alibi_learned}) {
    EncDec<float> m = tiny_model(9, pos, 3);
    const std::vector<int32_t> src = {2, 5, 1, 3, 6, 0, 0, 4, 4, 0};  // (2, 5)
    const std::vector<int32_t> lengths = {5, 3};
    DecodeOptions o;
    o.max_len = 6;
    const std::vector<Decoded> out = decode(m, src.data(), lengths.data(), 2, 5, o);
    for (int64_t b = 0; b < 2; ++b) {
      const std::vector<int32_t> one(src.begin() + b * 5, src.begin() + b * 5 + lengths[b]);
      std::vector<int32_t> tgt{kBos};
      std::vector<int32_t> expect;
      const int32_t len = lengths[b];
      while (static_cast<int64_t>(expect.size()) < o.max_len) {
        m.forward_seq2seq(one.data(), &len, tgt.data(), nullptr, 1, len,
                          static_cast<int64_t>(tgt.size()));
        const float* row = m.logits() + (tgt.size() - 1) * m.config().padded_tgt_vocab_size();
        int32_t best = kEos;
        for (int32_t v = 1; v < 9; ++v)  // <bos> is never emitted
          if (row[v] > row[best]) best = v;
        if (best == kEos) break;
        expect.push_back(best), tgt.push_back(best);
      }
      EXPECT_EQ(out[static_cast<size_t>(b)].ids, expect) << position_name(pos) << " row " << b;
      EXPECT_LE(static_cast<int64_t>(out[static_cast<size_t>(b)].ids.size()), o.max_len);
    }
  }
}

// With 2 tokens besides <bos>/<eos> and max_len 3 there are at most 8 live prefixes: beam 8 is
// exhaustive, so it must find the most likely of all 15 outputs (ended by <eos> after 0..2
// tokens... and the 8 cut ones of 3 tokens).
TEST(Seq2SeqDecode, WideBeamFindsTheMostLikelyOutput) {
  for (uint64_t seed : {5, 6, 7, 8}) {
    EncDec<float> m = tiny_model(4, Position::alibi_symmetric, seed);
    const std::vector<int32_t> src = {3, 1, 4, 1, 5};
    const int32_t len = 5;
    DecodeOptions o;
    o.beam = 8, o.max_len = 3;
    const Decoded got = decode(m, src.data(), &len, 1, 5, o)[0];

    double best = -std::numeric_limits<double>::infinity();
    std::vector<int32_t> best_ids;
    std::function<void(std::vector<int32_t>&)> visit = [&](std::vector<int32_t>& ids) {
      const bool cut = static_cast<int64_t>(ids.size()) == o.max_len;
      const double lp = sequence_logprob(m, src, ids, !cut);
      if (lp > best) best = lp, best_ids = ids;
      if (cut) return;
      for (int32_t v : {2, 3}) {
        ids.push_back(v);
        visit(ids);
        ids.pop_back();
      }
    };
    std::vector<int32_t> empty;
    visit(empty);
    EXPECT_EQ(got.ids, best_ids) << "seed " << seed;
    EXPECT_NEAR(got.logprob, best, 1e-4) << "seed " << seed;
  }
}

TEST(Seq2SeqDecode, BeamNeverWorseThanGreedy) {
  EncDec<float> m = tiny_model(9, Position::alibi_nonsymmetric, 11);
  const std::vector<int32_t> src = {2, 5, 1, 3, 6, 0, 0, 4, 4, 0, 1, 1, 2, 2, 3};  // (3, 5)
  const std::vector<int32_t> lengths = {5, 3, 5};
  DecodeOptions greedy, beam;
  greedy.max_len = beam.max_len = 8;
  beam.beam = 4;
  const std::vector<Decoded> g = decode(m, src.data(), lengths.data(), 3, 5, greedy);
  const std::vector<Decoded> b = decode(m, src.data(), lengths.data(), 3, 5, beam);
  for (size_t i = 0; i < 3; ++i) EXPECT_GE(b[i].logprob, g[i].logprob - 1e-5) << "row " << i;
}

TEST(Seq2SeqDecode, RejectsBadOptions) {
  EncDec<float> m = tiny_model(5, Position::none, 1);
  const std::vector<int32_t> src = {1, 2};
  const int32_t len = 2;
  DecodeOptions o;
  o.beam = 0;
  EXPECT_THROW(decode(m, src.data(), &len, 1, 2, o), slope::Error);
  o.beam = 1, o.max_len = 0;
  EXPECT_THROW(decode(m, src.data(), &len, 1, 2, o), slope::Error);
  o.max_len = 4, o.eos = 5;
  EXPECT_THROW(decode(m, src.data(), &len, 1, 2, o), slope::Error);
  m.set_training(true);
  o.eos = kEos;
  decode(m, src.data(), &len, 1, 2, o);
  EXPECT_TRUE(m.training()) << "decode restores the training mode";
}

}  // namespace
}  // namespace slope::model::testing
