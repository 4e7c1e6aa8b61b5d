// AdamW against a hand computation of PyTorch's formula, gradient clipping, and a few steps of
// training that must fit one batch.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "../model/gpt_testing.h"
#include "model/gpt.h"
#include "slope/attention.h"
#include "train/adamw.h"

namespace slope::train {
namespace {

// A 2-D weight (decayed) and a bias (not), with a gap between them (kArenaAlign).
model::ParamTable two_tensors() {
  model::ParamTable t;
  t.add("w", {2, 3});
  t.add("b", {3});
  return t;
}

TEST(AdamW, TwoStepsByHand) {
  const model::ParamTable table = two_tensors();
  ASSERT_EQ(table.at("b").offset, model::kArenaAlign);
  const AdamWConfig config{0.9, 0.95, 1e-8, 0.1};
  AdamW<double> opt(table, config);
  std::vector<double> p(static_cast<size_t>(table.size()), 0.0), g(p.size(), 0.0);
  const std::vector<double> p0 = {0.5, -1.0, 2.0, 0.0, 0.25, -0.75}, b0 = {1.0, -2.0, 3.0};
  const std::vector<std::vector<double>> grads = {{0.1, -0.2, 0.3, -0.4, 0.5, 0.0},
                                                  {-0.3, 0.1, 0.2, 0.0, -0.5, 0.6}};
  std::copy(p0.begin(), p0.end(), p.begin());
  std::copy(b0.begin(), b0.end(), p.begin() + 16);

  // The hand computation: PyTorch's AdamW (decoupled decay, bias-corrected moments).
  std::vector<double> ref_p = p, m(p.size(), 0.0), v(p.size(), 0.0);
  const double lrs[] = {1e-2, 5e-3};
  for (int t = 1; t <= 2; ++t) {
    const double lr = lrs[t - 1];
    std::fill(g.begin(), g.end(), 0.0);
    for (size_t i = 0; i < 6; ++i) g[i] = grads[t - 1][i];
    for (size_t i = 0; i < 3; ++i) g[16 + i] = grads[t - 1][i + 3];
    for (size_t i : {0, 1, 2, 3, 4, 5, 16, 17, 18}) {
      const bool decay = i < 6;
      if (decay) ref_p[i] *= 1.0 - lr * 0.1;
      m[i] = 0.9 * m[i] + 0.1 * g[i];
      v[i] = 0.95 * v[i] + 0.05 * g[i] * g[i];
      const double mhat = m[i] / (1.0 - std::pow(0.9, t)), vhat = v[i] / (1.0 - std::pow(0.95, t));
      ref_p[i] -= lr * mhat / (std::sqrt(vhat) + 1e-8);
    }
    opt.step(p.data(), g.data(), lr);
    EXPECT_EQ(opt.steps(), t);
    for (size_t i = 0; i < p.size(); ++i)
      EXPECT_NEAR(p[i], ref_p[i], 1e-15) << "step " << t << ", entry " << i;
  }
  // Step 1 moves every entry with a gradient by lr·sign(g) (mhat/√vhat = ±1), up to eps.
  for (size_t i = 0; i < 6; ++i)
    EXPECT_NEAR(opt.m()[i], 0.9 * 0.1 * grads[0][i] + 0.1 * grads[1][i], 1e-15);
  // The gap is untouched.
  for (size_t i = 6; i < 16; ++i) EXPECT_EQ(p[i], 0.0);
}

TEST(AdamW, LowerBoundProjects) {
  model::ParamTable table;
  table.add("slopes", {3}, 0, 0.0);
  AdamW<double> opt(table, {});
  std::vector<double> p = {0.001, 0.5, 0.0}, g = {1.0, 1.0, -1.0};
  opt.step(p.data(), g.data(), 0.01);  // moves each entry by ∓0.01
  EXPECT_EQ(p[0], 0.0);
  EXPECT_NEAR(p[1], 0.49, 1e-9);
  EXPECT_NEAR(p[2], 0.01, 1e-9);
}

TEST(AdamW, FloatMatchesDouble) {
  const model::ParamTable table = two_tensors();
  AdamW<float> f(table, {});
  AdamW<double> d(table, {});
  std::vector<float> pf(static_cast<size_t>(table.size()), 0.5f), gf(pf.size(), 0.25f);
  std::vector<double> pd(pf.begin(), pf.end()), gd(gf.begin(), gf.end());
  for (int t = 0; t < 3; ++t) {
    f.step(pf.data(), gf.data(), 1e-3);
    d.step(pd.data(), gd.data(), 1e-3);
  }
  for (size_t i = 0; i < pf.size(); ++i) EXPECT_NEAR(pf[i], pd[i], 1e-6);
}

TEST(AdamW, BadSettings) {
  const model::ParamTable table = two_tensors();
  EXPECT_THROW((AdamW<float>(table, {1.0, 0.95, 1e-8, 0.1})), Error);
  EXPECT_THROW((AdamW<float>(table, {0.9, 0.95, 0.0, 0.1})), Error);
  EXPECT_THROW((AdamW<float>(table, {0.9, 0.95, 1e-8, -1.0})), Error);
  AdamW<float> opt(table, {});
  std::vector<float> p(static_cast<size_t>(table.size())), g(p.size());
  EXPECT_THROW(opt.step(p.data(), g.data(), std::nan("")), Error);
}

TEST(ClipGradNorm, MeasuresAndScales) {
  std::vector<double> g = {3.0, 0.0, -4.0};
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), 3, 0.0), 5.0);  // measure only
  EXPECT_EQ(g[0], 3.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), 3, 10.0), 5.0);  // below: unchanged
  EXPECT_EQ(g[2], -4.0);
  EXPECT_DOUBLE_EQ(clip_grad_norm(g.data(), 3, 1.0), 5.0);  // clip_grad_norm_: 1/(5 + 1e-6)
  EXPECT_DOUBLE_EQ(g[0], 3.0 / (5.0 + 1e-6));
  EXPECT_DOUBLE_EQ(g[2], -4.0 / (5.0 + 1e-6));
  // Many entries: blocked sums, the same result as a plain one.
  std::vector<float> big(100000, 0.5f);
  EXPECT_NEAR(clip_grad_norm(big.data(), 100000, 0.0), std::sqrt(100000 * 0.25), 1e-9);
  big[77] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(clip_grad_norm(big.data(), 100000, 1.0), Error);
}

// The pieces together: a tiny GPT must fit one batch in a few dozen steps.
TEST(Training, FitsOneBatch) {
  model::GptConfig c;
  c.n_layer = 2, c.n_head = 2, c.n_embd = 32, c.vocab_size = 20, c.block_size = 16;
  c.pos = model::Position::alibi_learned;
  model::Gpt<float> gpt(c, 1);
  AdamW<float> opt(gpt.table(), {0.9, 0.95, 1e-8, 0.1});
  const model::testing::Batch batch = model::testing::make_batch(4, 16, 20, 2);
  float first = 0.0f, last = 0.0f;
  for (int step = 0; step < 60; ++step) {
    const float loss = gpt.forward(batch.idx.data(), batch.targets.data(), 4, 16);
    if (step == 0) first = loss;
    last = loss;
    gpt.zero_grad();
    gpt.backward();
    clip_grad_norm(gpt.grads(), gpt.table().size(), 1.0);
    opt.step(gpt.params(), gpt.grads(), 1e-2);
  }
  EXPECT_NEAR(first, std::log(20.0f), 0.1f);  // nanoGPT's init: near-uniform predictions
  EXPECT_LT(last, 0.5f * first);
  // Learned slopes moved, and stayed >= 0 (at lr 1e-2 the second, 2^-8, is soon pushed down).
  const std::vector<float> press = alibi_slopes(2);
  for (int l = 0; l < 2; ++l) {
    const float* m = gpt.param("transformer.h." + std::to_string(l) + ".attn.alibi_slopes");
    EXPECT_NE(m[0], press[0]);
    EXPECT_GE(m[0], 0.0f);
    EXPECT_GE(m[1], 0.0f);
  }
}

}  // namespace
}  // namespace slope::train
