// The encoder (masked LM) and the encoder–decoder: the whole backward against finite differences
// in float64 for every position scheme on padded batches, float against double, padded batches
// against each sequence run alone, encode()+decode() against the training forward, and bad input.
// Checkpoints: tests/io/test_encdec_checkpoint.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "common/temp_files.h"  // EXPECT_ERROR_CONTAINS
#include "encdec_testing.h"
#include "model/encdec.h"
#include "model_gradcheck.h"
#include "slope/attention.h"

namespace slope::model::testing {
namespace {

// As test_gpt_gradients.cpp: 4-point central differences with h = 5e-4 (truncation ~h⁴, the
// tied embeddings the least linear), held to 1e-8 of each tensor's largest entry.
constexpr double kFdStep = 5e-4;
constexpr double kFdTolerance = 1e-8;
// Float against double on the same parameters: ~30 roundings deep, as in the GPT's test.
constexpr double kFloatTolerance = 2e-5;
// A padded batch against its sequences run alone, in float: the same arithmetic on other
// buffer sizes (GEMM blocking, kernel tiles), so only rounding may differ.
constexpr double kPaddingTolerance = 1e-5;
constexpr double kPaddingGradTolerance = 1e-12;  // the same, in double

EncDecConfig tiny_encoder(Position pos, double dropout = 0.0, bool bias = true) {
  EncDecConfig c;
  c.arch = Arch::encoder;
  c.n_layer = 2, c.n_head = 4, c.n_embd = 16, c.vocab_size = 11, c.block_size = 8;
  c.pos = pos, c.dropout = dropout, c.bias = bias;
  return c;
}

EncDecConfig tiny_seq2seq(Position pos, double dropout = 0.0, bool bias = true) {
  EncDecConfig c;
  c.arch = Arch::seq2seq;
  c.n_layer = 1, c.n_dec_layer = 2, c.n_head = 2, c.n_embd = 8, c.block_size = 8;
  c.vocab_size = 11, c.tgt_vocab_size = 9;
  c.pos = pos, c.dropout = dropout, c.bias = bias;
  return c;
}

// The gradient checks' batches: ragged lengths, random ids in the padding, -1 targets there.
const MlmBatch& mlm_batch() {
  static const MlmBatch b = make_mlm_batch({6, 4}, 6, 11, 5);
  return b;
}
const Seq2SeqBatch& seq2seq_batch() {
  static const Seq2SeqBatch b = make_seq2seq_batch({6, 3, 5}, 6, {5, 2, 4}, 5, 11, 9, 5);
  return b;
}

// Runs the model's forward on its arch's batch (above); returns the mean loss.
template <class Real>
Real forward(EncDec<Real>& m) {
  if (m.config().arch == Arch::encoder) {
    const MlmBatch& b = mlm_batch();
    return m.forward_mlm(b.idx.data(), b.lengths.data(), b.targets.data(), b.B, b.S);
  }
  const Seq2SeqBatch& b = seq2seq_batch();
  return m.forward_seq2seq(b.src.data(), b.src_lengths.data(), b.tgt.data(), b.targets.data(), b.B,
                           b.S, b.T);
}

int64_t logits_size(const EncDecConfig& c) {
  if (c.arch == Arch::encoder) return mlm_batch().B * mlm_batch().S * c.padded_vocab_size();
  return seq2seq_batch().B * seq2seq_batch().T * c.padded_tgt_vocab_size();
}

void check_gradients(const EncDecConfig& config) {
  // Thousands of tiny forwards: one thread (see test_gpt_gradients.cpp).
  const OneThread one_thread;
  EncDec<double> m(config, 3);
  randomize_params(m, 4);
  m.set_training(config.dropout > 0.0);
  auto loss = [&] {
    m.set_dropout_seed(99, 0);  // the same masks every time
    return forward(m);
  };
  loss();
  m.zero_grad();
  m.backward();

  check_against_differences(m, loss, kFdStep, kFdTolerance, /*every_tensor_used=*/true);

  // The embeddings' padding rows (V..Vp) take no gradient.
  for (const char* name : {"encoder.wte.weight", "decoder.wte.weight"}) {
    const ParamSpec* wte = m.table().find(name);
    if (!wte) continue;
    for (int64_t i = wte->numel(); i < wte->size; ++i)
      ASSERT_EQ(m.grads()[wte->offset + i], 0.0) << name << " padding entry " << i;
  }
}

// EncDec<float> (fused kernels, sgemm) against EncDec<double> (reference attention, dgemm) on the
// same float-representable parameters.
void check_float_against_double(const EncDecConfig& config) {
  EncDec<float> f(config, 3);
  EncDec<double> d(config, 3);
  randomize_params(f, 4);
  randomize_params(d, 4);
  const double loss32 = forward(f), loss64 = forward(d);
  f.backward();
  d.backward();
  EXPECT_NEAR(loss32, loss64, kFloatTolerance * std::abs(loss64));
  expect_float_agrees_with_double(f, d, logits_size(config), kFloatTolerance);
}

class EncoderGradients : public ::testing::TestWithParam<Position> {};

TEST_P(EncoderGradients, FiniteDifferences) { check_gradients(tiny_encoder(GetParam())); }
TEST_P(EncoderGradients, FiniteDifferencesWithoutBias) {
  check_gradients(tiny_encoder(GetParam(), 0.0, false));
}
TEST_P(EncoderGradients, FiniteDifferencesWithDropout) {
  check_gradients(tiny_encoder(GetParam(), 0.2));
}
TEST_P(EncoderGradients, FloatAgreesWithDouble) {
  check_float_against_double(tiny_encoder(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Positions, EncoderGradients, ::testing::ValuesIn(kEncoderPositions),
                         [](const auto& p) { return label(p.param); });

class Seq2SeqGradients : public ::testing::TestWithParam<Position> {};

TEST_P(Seq2SeqGradients, FiniteDifferences) { check_gradients(tiny_seq2seq(GetParam())); }
TEST_P(Seq2SeqGradients, FiniteDifferencesWithDropout) {
  check_gradients(tiny_seq2seq(GetParam(), 0.2));
}
TEST_P(Seq2SeqGradients, FloatAgreesWithDouble) {
  check_float_against_double(tiny_seq2seq(GetParam()));
}

INSTANTIATE_TEST_SUITE_P(Positions, Seq2SeqGradients, ::testing::ValuesIn(kEncoderPositions),
                         [](const auto& p) { return label(p.param); });

// ---- A padded batch against its sequences run alone ---------------------------------------

// max |a − b| over n entries, against max |b|.
struct Diff {
  double err = 0.0, scale = 0.0;
  void add(double a, double b) {
    err = std::max(err, std::abs(a - b));
    scale = std::max(scale, std::abs(b));
  }
};

// The batch's gradients of the mean loss equal Σ_b (n_b / n) · those of sequence b alone, n_b
// its counted targets; `single(b)` runs sequence b alone (a forward with targets).
template <class Real>
void check_summed_gradients(EncDec<Real>& m, const std::vector<Real>& batch_grads,
                            const std::vector<int64_t>& counts,
                            const std::function<void(int64_t)>& single) {
  const int64_t n = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  std::vector<double> sum(batch_grads.size(), 0.0);
  for (size_t b = 0; b < counts.size(); ++b) {
    m.zero_grad();
    single(static_cast<int64_t>(b));
    m.backward();
    const double w = static_cast<double>(counts[b]) / static_cast<double>(n);
    for (size_t i = 0; i < sum.size(); ++i) sum[i] += w * m.grads()[i];
  }
  double largest = 0.0;
  for (double g : sum) largest = std::max(largest, std::abs(g));
  ASSERT_GT(largest, 0.0);
  for (const ParamSpec& s : m.table().specs()) {
    Diff d;
    for (int64_t i = s.offset; i < s.offset + s.size; ++i)
      d.add(batch_grads[static_cast<size_t>(i)], sum[static_cast<size_t>(i)]);
    EXPECT_LE(d.err, kPaddingGradTolerance * std::max(d.scale, 1e-3 * largest))
        << "d" << s.name << ": error " << d.err << ", largest entry " << d.scale;
  }
}

// Logits of a padded batch at the real positions against each sequence alone: float (the fused
// kernels on other tile splits) to kPaddingTolerance, double to kPaddingGradTolerance. Gradients
// only in double: in float both sides carry rounding errors of ~1e-6 of a tensor's largest
// entry (cancelling sums), which would drown what the check is for.
template <class Real>
double logits_tolerance() {
  return std::is_same_v<Real, float> ? kPaddingTolerance : kPaddingGradTolerance;
}

template <class Real>
void check_encoder_padding(Position pos) {
  const EncDecConfig c = small_encdec(Arch::encoder, pos);
  EncDec<Real> m(c, 1);
  randomize_params(m, 2);
  const int64_t S = 9, Vp = c.padded_vocab_size();
  const MlmBatch batch = make_mlm_batch({9, 4, 7, 1}, S, c.vocab_size, 3);
  m.forward_mlm(batch.idx.data(), batch.lengths.data(), batch.targets.data(), batch.B, S);
  const std::vector<Real> logits(m.logits(), m.logits() + batch.B * S * Vp);
  m.zero_grad();
  m.backward();
  const std::vector<Real> grads(m.grads(), m.grads() + m.table().size());

  std::vector<int64_t> counts;
  auto single = [&](int64_t b) {
    const int64_t n = batch.lengths[static_cast<size_t>(b)];
    m.forward_mlm(batch.idx.data() + b * S, nullptr, batch.targets.data() + b * S, 1, n);
  };
  for (int64_t b = 0; b < batch.B; ++b) {
    single(b);
    const int64_t n = batch.lengths[static_cast<size_t>(b)];
    Diff d;
    for (int64_t t = 0; t < n; ++t)
      for (int64_t v = 0; v < Vp; ++v) d.add(logits[(b * S + t) * Vp + v], m.logits()[t * Vp + v]);
    EXPECT_LE(d.err, logits_tolerance<Real>() * d.scale) << "sequence " << b << " of length " << n;
    counts.push_back(std::count_if(batch.targets.begin() + b * S, batch.targets.begin() + b * S + S,
                                   [](int32_t t) { return t >= 0; }));
  }
  if (std::is_same_v<Real, double>) check_summed_gradients(m, grads, counts, single);
}

template <class Real>
void check_seq2seq_padding(Position pos) {
  const EncDecConfig c = small_encdec(Arch::seq2seq, pos);
  EncDec<Real> m(c, 1);
  randomize_params(m, 2);
  const int64_t S = 7, T = 6, Vp = c.padded_tgt_vocab_size();
  const Seq2SeqBatch batch =
      make_seq2seq_batch({7, 3, 5, 1}, S, {4, 6, 2, 1}, T, c.vocab_size, c.tgt_vocab_size, 3);
  m.forward_seq2seq(batch.src.data(), batch.src_lengths.data(), batch.tgt.data(),
                    batch.targets.data(), batch.B, S, T);
  const std::vector<Real> logits(m.logits(), m.logits() + batch.B * T * Vp);
  m.zero_grad();
  m.backward();
  const std::vector<Real> grads(m.grads(), m.grads() + m.table().size());

  std::vector<int64_t> counts;
  auto single = [&](int64_t b) {
    const int64_t n = batch.src_lengths[static_cast<size_t>(b)];
    const int64_t k = batch.tgt_lengths[static_cast<size_t>(b)];
    m.forward_seq2seq(batch.src.data() + b * S, nullptr, batch.tgt.data() + b * T,
                      batch.targets.data() + b * T, 1, n, k);
  };
  for (int64_t b = 0; b < batch.B; ++b) {
    single(b);
    const int64_t k = batch.tgt_lengths[static_cast<size_t>(b)];
    Diff d;
    for (int64_t t = 0; t < k; ++t)
      for (int64_t v = 0; v < Vp; ++v) d.add(logits[(b * T + t) * Vp + v], m.logits()[t * Vp + v]);
    EXPECT_LE(d.err, logits_tolerance<Real>() * d.scale) << "pair " << b;
    counts.push_back(k);
  }
  if (std::is_same_v<Real, double>) check_summed_gradients(m, grads, counts, single);
}

class Padding : public ::testing::TestWithParam<Position> {};

TEST_P(Padding, EncoderBatchEqualsEachSequenceAloneFloat) {
  check_encoder_padding<float>(GetParam());
}
TEST_P(Padding, EncoderBatchEqualsEachSequenceAloneDouble) {
  check_encoder_padding<double>(GetParam());
}
TEST_P(Padding, Seq2SeqBatchEqualsEachPairAloneFloat) { check_seq2seq_padding<float>(GetParam()); }
TEST_P(Padding, Seq2SeqBatchEqualsEachPairAloneDouble) {
  check_seq2seq_padding<double>(GetParam());
}

INSTANTIATE_TEST_SUITE_P(Positions, Padding, ::testing::ValuesIn(kEncoderPositions),
                         [](const auto& p) { return label(p.param); });

// ---- Inference: encode once, decode prefixes against the training forward ----------------

template <class Real>
void check_encode_decode(Position pos, double tolerance) {
  const EncDecConfig c = small_encdec(Arch::seq2seq, pos);
  EncDec<Real> m(c, 1);
  randomize_params(m, 2);
  const int64_t S = 7, T = 5, Vp = c.padded_tgt_vocab_size();
  const Seq2SeqBatch two =
      make_seq2seq_batch({4, 7}, S, {T, T}, T, c.vocab_size, c.tgt_vocab_size, 3);
  const std::vector<int32_t> rows = {1, 0, 1};
  const int64_t B2 = static_cast<int64_t>(rows.size());
  std::vector<int32_t> src, lengths, tgt;  // the sources gathered by rows, three prefixes
  std::mt19937_64 rng(4);
  for (int32_t r : rows) {
    src.insert(src.end(), two.src.begin() + r * S, two.src.begin() + (r + 1) * S);
    lengths.push_back(two.src_lengths[static_cast<size_t>(r)]);
    for (int64_t t = 0; t < T; ++t) tgt.push_back(random_id(rng, c.tgt_vocab_size));
  }
  m.forward_seq2seq(src.data(), lengths.data(), tgt.data(), nullptr, B2, S, T);
  const std::vector<Real> expected(m.logits(), m.logits() + B2 * T * Vp);

  m.encode(two.src.data(), two.src_lengths.data(), two.B, S);
  const Real* got = m.decode(tgt.data(), rows.data(), B2, T);
  Diff d;
  for (int64_t i = 0; i < B2 * T * Vp; ++i) d.add(got[i], expected[static_cast<size_t>(i)]);
  EXPECT_LE(d.err, tolerance * d.scale) << position_name(pos);
  EXPECT_GT(d.scale, 0.0);
  EXPECT_ERROR_CONTAINS(m.logits(), "no forward");  // decode replaced the training state

  // A shorter prefix of the same memory: the first positions of the longer one (causal).
  const std::vector<int32_t> one_row = {rows[0]};
  std::vector<int32_t> prefix(tgt.begin(), tgt.begin() + 2);
  got = m.decode(prefix.data(), one_row.data(), 1, 2);
  Diff p;
  for (int64_t i = 0; i < 2 * Vp; ++i) p.add(got[i], expected[static_cast<size_t>(i)]);
  EXPECT_LE(p.err, tolerance * p.scale) << position_name(pos) << " prefix";
}

class EncodeDecode : public ::testing::TestWithParam<Position> {};

TEST_P(EncodeDecode, DecodeEqualsForwardSeq2SeqFloat) {
  check_encode_decode<float>(GetParam(), kPaddingTolerance);
}
TEST_P(EncodeDecode, DecodeEqualsForwardSeq2SeqDouble) {
  check_encode_decode<double>(GetParam(), 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Positions, EncodeDecode, ::testing::ValuesIn(kEncoderPositions),
                         [](const auto& p) { return label(p.param); });

// ---- Bad input ----------------------------------------------------------------------------

TEST(EncDecErrors, BadBatchesAreRefusedAndNamed) {
  EncDec<float> enc(small_encdec(Arch::encoder, Position::learned), 1);
  const int64_t S = 4;
  std::vector<int32_t> idx = {1, 2, 3, 4, 5, 6, 7, 8};
  std::vector<int32_t> lengths = {4, 2};
  std::vector<int32_t> targets = {1, -1, 2, -1, 3, -1, -1, -1};
  EXPECT_TRUE(std::isfinite(enc.forward_mlm(idx.data(), lengths.data(), targets.data(), 2, S)));
  targets[7] = 5;  // (1, 3) is padding
  EXPECT_ERROR_CONTAINS(enc.forward_mlm(idx.data(), lengths.data(), targets.data(), 2, S),
                        "target at padded position (1, 3) is not -1");
  targets[7] = -1;
  for (int32_t bad : {0, 5, -1}) {
    lengths[1] = bad;
    EXPECT_ERROR_CONTAINS(enc.forward_mlm(idx.data(), lengths.data(), targets.data(), 2, S),
                          "src_lengths[1] = " + std::to_string(bad) + " is outside [1, 4]");
  }
  EXPECT_ERROR_CONTAINS(enc.backward(), "no targets (or failed)");  // the forward failed
  lengths[1] = 2;
  // Learned positions have block_size (16) rows.
  std::vector<int32_t> long_idx(17, 1);
  EXPECT_ERROR_CONTAINS(enc.forward_mlm(long_idx.data(), nullptr, nullptr, 1, 17),
                        "source length 17 exceeds block_size 16");
  std::vector<int32_t> bad_id = {1, 2, 3, 11};
  EXPECT_ERROR_CONTAINS(enc.forward_mlm(bad_id.data(), nullptr, nullptr, 1, 4), "11");
  EXPECT_ERROR_CONTAINS(enc.forward_seq2seq(idx.data(), nullptr, idx.data(), nullptr, 1, 4, 4),
                        "the model is an encoder");
  EXPECT_ERROR_CONTAINS(enc.encode(idx.data(), nullptr, 1, 4), "no decoder");
  // Without targets there is no loss to differentiate.
  EXPECT_TRUE(std::isnan(enc.forward_mlm(idx.data(), lengths.data(), nullptr, 2, S)));
  EXPECT_ERROR_CONTAINS(enc.backward(), "no targets");

  EncDec<float> s2s(small_encdec(Arch::seq2seq, Position::learned), 1);
  EXPECT_ERROR_CONTAINS(s2s.forward_mlm(idx.data(), nullptr, targets.data(), 1, 4),
                        "the model is a seq2seq");
  EXPECT_ERROR_CONTAINS(
      s2s.forward_seq2seq(long_idx.data(), nullptr, idx.data(), nullptr, 1, 17, 4),
      "source length 17 exceeds block_size 16");
  // The decoder is causal ALiBi whatever the encoder's scheme: any target length.
  EXPECT_TRUE(
      std::isnan(s2s.forward_seq2seq(idx.data(), nullptr, long_idx.data(), nullptr, 1, 4, 17)));
  lengths[0] = 9;
  EXPECT_ERROR_CONTAINS(
      s2s.forward_seq2seq(idx.data(), lengths.data(), idx.data(), nullptr, 2, 4, 4),
      "src_lengths[0] = 9 is outside [1, 4]");
  lengths[0] = 4;
  EXPECT_ERROR_CONTAINS(s2s.decode(idx.data(), lengths.data(), 1, 4), "call encode first");
  s2s.encode(idx.data(), lengths.data(), 2, S);
  const std::vector<int32_t> rows = {0, 2};
  EXPECT_ERROR_CONTAINS(s2s.decode(idx.data(), rows.data(), 2, 4),
                        "rows[1] = 2 is not a row of the encoded batch of 2");
}

// An encoder has no decoder: its n_dec_layer, which validation does not read, changes nothing
// (it once scaled the residual projections' init, and sized the learned-slope buffer).
TEST(EncDecInit, EncoderIgnoresNDecLayer) {
  for (Position pos : {Position::learned, Position::alibi_learned}) {
    EncDecConfig c = small_encdec(Arch::encoder, pos);
    c.n_dec_layer = 0;
    const EncDec<float> base(c, 5);
    for (int64_t n : {-3, 1, 7}) {
      c.n_dec_layer = n;
      const EncDec<float> m(c, 5);
      EXPECT_EQ(params_of(m), params_of(base)) << "n_dec_layer " << n;
    }
  }
}

TEST(EncDecErrors, LengthsBeyondBlockSizeWithoutLearnedPositions) {
  for (Position pos : kEncoderPositions) {
    if (pos == Position::learned) continue;
    EncDec<float> m(small_encdec(Arch::seq2seq, pos), 1);
    std::vector<int32_t> ids(24, 1);
    EXPECT_TRUE(
        std::isfinite(m.forward_seq2seq(ids.data(), nullptr, ids.data(), ids.data(), 1, 24, 24)))
        << position_name(pos);
  }
}

}  // namespace
}  // namespace slope::model::testing
