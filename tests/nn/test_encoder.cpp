// Token + position embedding: gradients (repeated tokens, learned / fixed / no position table),
// the sinusoidal table against its formula, token-range errors.
#include <cmath>

#include "gradcheck.h"
#include "nn/encoder.h"

namespace slope::nn::testing {
namespace {

// x = {wte (V, C)} or {wte, wpe (T, C)}.
struct Encoder {
  int64_t B, T, C, V;
  std::vector<int32_t> tokens;  // (B, T)

  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x) const {
    std::vector<Real> out(static_cast<size_t>(B * T * C));
    encoder_forward(out.data(), tokens.data(), x[0].data(), x.size() > 1 ? x[1].data() : nullptr, B,
                    T, C, V);
    return out;
  }
  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>&, const std::vector<Real>& dout) const {
    encoder_backward(dx[0].data(), dx.size() > 1 ? or_null(dx[1]) : nullptr, dout.data(),
                     tokens.data(), B, T, C, V);
  }
};

// B = 2, T = 4 over a vocabulary of 5: tokens repeat, within a row and across rows, and token
// 3 never occurs (its gradient row stays zero).
Encoder small_encoder() { return {2, 4, 6, 5, {0, 2, 2, 4, 1, 0, 2, 4}}; }

CheckOptions encoder_tolerances(const Encoder& e) {
  // One rounding forward; backward sums at most B·T rows.
  return {2 * kEps32, fp32_tolerance(e.B * e.T), kFdTolerance};
}

TEST(Encoder, LearnedPositions) {
  const Encoder e = small_encoder();
  std::mt19937_64 rng(1);
  check_layer(e, {random_vector(e.V * e.C, rng), random_vector(e.T * e.C, rng)}, {"wte", "wpe"},
              {true, true}, encoder_tolerances(e));
}

TEST(Encoder, NoPositions) {  // alibi, alibi-learned, none
  const Encoder e = small_encoder();
  std::mt19937_64 rng(2);
  check_layer(e, {random_vector(e.V * e.C, rng)}, {"wte"}, {true}, encoder_tolerances(e));
}

TEST(Encoder, FixedSinusoidalPositions) {  // the table is read, never trained
  const Encoder e = small_encoder();
  std::mt19937_64 rng(3);
  std::vector<double> table(static_cast<size_t>(e.T * e.C));
  sinusoidal_positions(table.data(), e.T, e.C);
  for (double& v : table) v = static_cast<float>(v);  // what the float run reads
  check_layer(e, {random_vector(e.V * e.C, rng), table}, {"wte", "wpe"}, {true, false},
              encoder_tolerances(e));
}

TEST(Encoder, UnusedTokenRowsStayZero) {
  const Encoder e = small_encoder();
  std::vector<float> dwte(static_cast<size_t>(e.V * e.C), 0.0f);
  std::vector<float> dout(static_cast<size_t>(e.B * e.T * e.C), 1.0f);
  encoder_backward(dwte.data(), nullptr, dout.data(), e.tokens.data(), e.B, e.T, e.C, e.V);
  for (int64_t c = 0; c < e.C; ++c) {
    EXPECT_EQ(dwte[static_cast<size_t>(3 * e.C + c)], 0.0f);  // token 3: absent
    EXPECT_EQ(dwte[static_cast<size_t>(2 * e.C + c)], 3.0f);  // token 2: three times
  }
}

TEST(Encoder, RejectsTokensOutsideTheVocabulary) {
  Encoder e = small_encoder();
  std::vector<float> wte(static_cast<size_t>(e.V * e.C)), out(static_cast<size_t>(e.B * e.T * e.C));
  for (int32_t bad : {-1, 5}) {
    e.tokens[3] = bad;
    EXPECT_THROW(
        encoder_forward(out.data(), e.tokens.data(), wte.data(), nullptr, e.B, e.T, e.C, e.V),
        Error);
    EXPECT_THROW(
        encoder_backward(wte.data(), nullptr, out.data(), e.tokens.data(), e.B, e.T, e.C, e.V),
        Error);
  }
}

TEST(Sinusoidal, MatchesAttentionIsAllYouNeed) {
  constexpr int64_t T = 50, C = 9;  // odd C: the last column is a sine
  std::vector<double> table(T * C);
  std::vector<float> table32(T * C);
  sinusoidal_positions(table.data(), T, C);
  sinusoidal_positions(table32.data(), T, C);
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; 2 * i < C; ++i) {
      // PE(pos, 2i) = sin(pos / 10000^(2i/d_model)), PE(pos, 2i+1) = cos(...).
      const double angle = t / std::pow(10000.0, 2.0 * i / C);
      EXPECT_NEAR(table[t * C + 2 * i], std::sin(angle), 1e-15);
      if (2 * i + 1 < C) {
        EXPECT_NEAR(table[t * C + 2 * i + 1], std::cos(angle), 1e-15);
      }
    }
  for (int64_t i = 0; i < T * C; ++i)
    EXPECT_EQ(table32[i], static_cast<float>(table[i]));  // computed in double, rounded once
  EXPECT_EQ(table[0], 0.0);                               // position 0: sin 0, cos 0
  EXPECT_EQ(table[1], 1.0);
}

}  // namespace
}  // namespace slope::nn::testing
