// The whole GPT's backward against finite differences in float64, for every position scheme
// (a sample of every tensor, every ALiBi slope), and the float32 model against the float64 one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "gpt_testing.h"
#include "model/gpt.h"
#include "model_gradcheck.h"

namespace slope::model::testing {
namespace {

constexpr int64_t kB = 2, kT = 5;
// 4-point central differences: truncation ~h⁴·|f⁽⁵⁾|/30, rounding ~1e-16·|L|/h. The tied wte
// (embedding and head: the loss is far from linear in it) needs h below 1e-3, which measured
// 3e-8; at 5e-4 the worst tensor measured 8e-10 of its largest entry, rounding ~1e-12.
constexpr double kFdStep = 5e-4;
constexpr double kFdTolerance = 1e-8;

GptConfig tiny(Position pos, bool bias = true, double dropout = 0.0) {
  GptConfig c;
  c.n_layer = 2, c.n_head = 2, c.n_embd = 8, c.vocab_size = 11, c.block_size = 8;
  c.pos = pos, c.bias = bias, c.dropout = dropout;
  return c;
}

void check_gradients(const GptConfig& config) {
  // Hundreds of forwards of a few hundred flops each: with more threads than idle cores, every
  // OpenMP barrier waits for a descheduled thread (seen: 60 s instead of 0.2 s on a busy
  // 2-core machine). The layers' own tests cover thread-count independence.
  const OneThread one_thread;
  Gpt<double> gpt(config, 3);
  randomize_params(gpt, 4);
  const Batch batch = make_batch(kB, kT, config.vocab_size, 5);
  const bool dropout = config.dropout > 0.0;
  gpt.set_training(dropout);
  auto loss = [&] {
    gpt.set_dropout_seed(99, 0);  // the same masks every time
    return gpt.forward(batch.idx.data(), batch.targets.data(), kB, kT);
  };
  loss();
  gpt.zero_grad();
  gpt.backward();

  check_against_differences(gpt, loss, kFdStep, kFdTolerance, /*every_tensor_used=*/false);

  // wte's padding rows (V..Vp) take no gradient: no token reads them, no target scores them.
  const ParamSpec& wte = gpt.table().at("transformer.wte.weight");
  for (int64_t i = wte.numel(); i < wte.size; ++i)
    ASSERT_EQ(gpt.grads()[wte.offset + i], 0.0) << "padding entry " << i;
}

class GptGradients : public ::testing::TestWithParam<Position> {};

TEST_P(GptGradients, FiniteDifferences) { check_gradients(tiny(GetParam())); }
TEST_P(GptGradients, FiniteDifferencesWithoutBias) { check_gradients(tiny(GetParam(), false)); }
TEST_P(GptGradients, FiniteDifferencesWithDropout) { check_gradients(tiny(GetParam(), true, 0.2)); }

// Gpt<float> (fused kernels, sgemm) against Gpt<double> (reference attention, dgemm) on the
// same float-representable parameters.
TEST_P(GptGradients, FloatAgreesWithDouble) {
  const GptConfig config = tiny(GetParam());
  Gpt<float> f(config, 3);
  Gpt<double> d(config, 3);
  randomize_params(f, 4);
  randomize_params(d, 4);
  const Batch batch = make_batch(kB, kT, config.vocab_size, 5);
  const double loss32 = f.forward(batch.idx.data(), batch.targets.data(), kB, kT);
  const double loss64 = d.forward(batch.idx.data(), batch.targets.data(), kB, kT);
  f.backward();
  d.backward();
  // ~30 roundings deep (2 blocks of layernorm, 3 GEMMs, softmax), each ~eps32 = 6e-8 relative
  // to the values it combines; measured ≤ 3e-7 (logits) and ≤ 1.7e-6 (gradients) here. 2e-5
  // leaves a margin for other BLAS kernels and instruction sets.
  constexpr double kTolerance = 2e-5;
  EXPECT_NEAR(loss32, loss64, kTolerance * std::abs(loss64));
  expect_float_agrees_with_double(f, d, kB * kT * config.padded_vocab_size(), kTolerance);
}

INSTANTIATE_TEST_SUITE_P(Positions, GptGradients,
                         ::testing::Values(Position::learned, Position::sinusoidal, Position::none,
                                           Position::alibi, Position::alibi_learned,
                                           Position::kerple_log, Position::kerple_power,
                                           Position::t5, Position::fire),
                         [](const auto& p) { return label(p.param); });

}  // namespace
}  // namespace slope::model::testing
