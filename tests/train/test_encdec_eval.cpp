// The G2P metrics: edit distance (phoneme errors), and evaluate_g2p's accounting of word
// accuracy and PER per bucket against decode() run directly.
#include <gtest/gtest.h>

#include <vector>

#include "model/encdec.h"
#include "train/encdec_eval.h"

namespace slope::train {
namespace {

TEST(EditDistance, KnownCases) {
  using V = std::vector<int32_t>;
  EXPECT_EQ(edit_distance(V{}, V{}), 0);
  EXPECT_EQ(edit_distance(V{1, 2, 3}, V{}), 3);
  EXPECT_EQ(edit_distance(V{}, V{4, 5}), 2);
  EXPECT_EQ(edit_distance(V{1, 2, 3}, V{1, 2, 3}), 0);
  EXPECT_EQ(edit_distance(V{1, 2, 3}, V{1, 3}), 1);           // deletion
  EXPECT_EQ(edit_distance(V{1, 3}, V{1, 2, 3}), 1);           // insertion
  EXPECT_EQ(edit_distance(V{1, 2, 3}, V{1, 4, 3}), 1);        // substitution
  EXPECT_EQ(edit_distance(V{1, 2, 3, 4}, V{2, 1, 4, 3}), 3);  // kitten/sitting-like
  EXPECT_EQ(edit_distance(V{5, 6, 7}, V{7, 6, 5}), 2);
}

TEST(EvaluateG2p, CountsWhatDecodeProduces) {
  model::EncDecConfig c;
  c.arch = model::Arch::seq2seq;
  c.vocab_size = 6, c.tgt_vocab_size = 6;
  c.n_layer = 1, c.n_dec_layer = 1, c.n_head = 2, c.n_embd = 8;
  model::EncDec<float> m(c, 9);
  data::PairVocab tgt{{"<bos>", "<eos>", "A", "B", "C", "D"}};
  // Words of 1..6 characters; each has the model's own greedy output as a second
  // pronunciation when `hit`, so its correctness is known.
  std::vector<data::PairExample> words;
  model::DecodeOptions o;
  o.max_len = 12;
  for (int n = 1; n <= 6; ++n) {
    data::PairExample e;
    for (int i = 0; i < n; ++i) e.src.push_back(1 + (i * 7 + n) % 5);
    e.word = std::string(static_cast<size_t>(n), 'x');
    e.prons.push_back({2, 3, 4});
    const int32_t len = n;
    const model::Decoded d = model::decode(m, e.src.data(), &len, 1, n, o)[0];
    if (n % 2 == 0 && d.ids != e.prons[0]) e.prons.push_back(d.ids);
    words.push_back(e);
  }
  const G2pReport r = evaluate_g2p(m, words, tgt, o, 4, 3);
  ASSERT_EQ(r.buckets.size(), 2u);
  EXPECT_EQ(r.buckets[0].min_chars, 1);
  EXPECT_EQ(r.buckets[0].max_chars, 3);
  EXPECT_EQ(r.buckets[1].words, 3);
  EXPECT_EQ(r.all.words, 6);
  int64_t correct = 0, edits = 0, ref = 0;
  for (const data::PairExample& e : words) {
    const int32_t len = static_cast<int32_t>(e.src.size());
    const model::Decoded d =
        model::decode(m, e.src.data(), &len, 1, static_cast<int64_t>(e.src.size()), o)[0];
    int64_t best = 1 << 30, best_len = 0;
    for (const auto& p : e.prons) {
      const int64_t k = edit_distance(d.ids, p);
      if (k < best) best = k, best_len = static_cast<int64_t>(p.size());
    }
    correct += best == 0, edits += best, ref += best_len;
  }
  EXPECT_GE(correct, 3);  // the even-length words
  EXPECT_EQ(r.all.correct, correct);
  EXPECT_EQ(r.all.edits, edits);
  EXPECT_EQ(r.all.ref_phonemes, ref);
  EXPECT_EQ(r.examples.size(), 6u);
}

}  // namespace
}  // namespace slope::train
