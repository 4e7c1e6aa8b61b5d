// The slopes' one owner (model/stack_slopes.h): which scheme each stack and position gets, the
// parameters each scheme adds to a stack's table, and what StackSlopes hands a layer (fixed
// values, raw parameters read in place, sigmoid(θ) with its chain rule).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "model/stack_params.h"
#include "model/stack_slopes.h"
#include "slope/attention.h"

namespace slope::model::testing {
namespace {

TEST(SlopeScheme, EachStackAndPosition) {
  auto is = [](SlopeScheme s, SlopeKind kind, bool two_sided) {
    return s.kind == kind && s.two_sided == two_sided;
  };
  EXPECT_TRUE(is(slope_scheme(StackRole::gpt, Position::alibi), SlopeKind::fixed, false));
  EXPECT_TRUE(is(slope_scheme(StackRole::gpt, Position::alibi_learned), SlopeKind::raw, false));
  EXPECT_TRUE(is(slope_scheme(StackRole::gpt, Position::learned), SlopeKind::none, false));
  EXPECT_TRUE(
      is(slope_scheme(StackRole::encoder, Position::alibi_symmetric), SlopeKind::fixed, false));
  EXPECT_TRUE(
      is(slope_scheme(StackRole::encoder, Position::alibi_nonsymmetric), SlopeKind::fixed, true));
  EXPECT_TRUE(
      is(slope_scheme(StackRole::encoder, Position::alibi_learned), SlopeKind::sigmoid, true));
  EXPECT_TRUE(is(slope_scheme(StackRole::encoder, Position::sinusoidal), SlopeKind::none, false));
  EXPECT_TRUE(
      is(slope_scheme(StackRole::decoder, Position::alibi_learned), SlopeKind::sigmoid, false));
  for (Position pos : {Position::learned, Position::none, Position::alibi_symmetric})
    EXPECT_TRUE(is(slope_scheme(StackRole::decoder, pos), SlopeKind::fixed, false));
}

// A one-block stack of C = 4, H = 2 with the given slopes.
StackOffsets one_block(ParamLayout& p, SlopeScheme slopes) {
  return add_stack(p, {.prefix = "s.",
                       .V = 3,
                       .Vp = 3,
                       .L = 1,
                       .C = 4,
                       .H = 2,
                       .wpe_rows = 0,
                       .bias = false,
                       .cross = false,
                       .slopes = slopes});
}

TEST(StackSlopes, FixedSchemesHaveNoParameters) {
  ParamLayout p;
  const StackOffsets so = one_block(p, {SlopeKind::fixed, true});
  EXPECT_EQ(p.table.find("s.h.0.attn.alibi_slopes"), nullptr);
  const StackSlopes<double> m({SlopeKind::fixed, true}, so, 2, 8.0);
  const double *left, *right;
  m.of(0, nullptr, &left, &right);
  const SlopePair pair = alibi_slopes_nonsymmetric(2);
  ASSERT_TRUE(left && right);
  EXPECT_EQ(left[0], pair.left[0]);
  EXPECT_EQ(right[1], pair.right[1]);
  const StackSlopes<double> none;
  none.of(0, nullptr, &left, &right);
  EXPECT_EQ(left, nullptr);
  EXPECT_EQ(right, nullptr);
}

TEST(StackSlopes, RawSlopesAreTheParameters) {
  ParamLayout p;
  const StackOffsets so = one_block(p, {SlopeKind::raw, false});
  const ParamSpec& spec = p.table.at("s.h.0.attn.alibi_slopes");
  EXPECT_EQ(spec.lower_bound, 0.0);  // the optimizer keeps them >= 0
  std::vector<double> P(static_cast<size_t>(p.table.size())), G(P.size());
  StackSlopes<double> m({SlopeKind::raw, false}, so, 2, 8.0);
  const double *left, *right;
  m.of(0, P.data(), &left, &right);
  EXPECT_EQ(left, P.data() + spec.offset);
  EXPECT_EQ(right, nullptr);
  double *dleft, *dright;
  m.grads_of(0, G.data(), &dleft, &dright);
  EXPECT_EQ(dleft, G.data() + spec.offset);
  EXPECT_EQ(dright, nullptr);
}

TEST(StackSlopes, SigmoidSlopesAndTheirChainRule) {
  ParamLayout p;
  const StackOffsets so = one_block(p, {SlopeKind::sigmoid, true});
  const ParamSpec& tl = p.table.at("s.h.0.attn.alibi_theta_left");
  const ParamSpec& tr = p.table.at("s.h.0.attn.alibi_theta_right");
  EXPECT_EQ(p.init[&tl - p.table.specs().data()], ParamInit::alibi_theta);
  std::vector<double> P(static_cast<size_t>(p.table.size())), G(P.size(), 0.5);
  const double theta[4] = {-2.0, 0.5, 1.0, -0.25};  // left (2), right (2)
  for (int h = 0; h < 2; ++h) P[tl.offset + h] = theta[h], P[tr.offset + h] = theta[2 + h];
  StackSlopes<double> m({SlopeKind::sigmoid, true}, so, 2, 8.0);
  m.refresh(P.data());
  const double *left, *right;
  m.of(0, P.data(), &left, &right);
  ASSERT_TRUE(left && right);
  auto sigmoid = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  for (int h = 0; h < 2; ++h) {
    EXPECT_DOUBLE_EQ(left[h], sigmoid(theta[h]));
    EXPECT_DOUBLE_EQ(right[h], sigmoid(theta[2 + h]));
  }
  m.begin_backward();
  double *dleft, *dright;
  m.grads_of(0, G.data(), &dleft, &dright);
  ASSERT_TRUE(dleft && dright);
  for (int h = 0; h < 2; ++h) dleft[h] = 1.0 + h, dright[h] = -3.0;  // d(loss)/dm
  m.end_backward(G.data());
  for (int h = 0; h < 2; ++h) {  // θ's gradient is added to what G held (0.5)
    const double ml = sigmoid(theta[h]), mr = sigmoid(theta[2 + h]);
    EXPECT_DOUBLE_EQ(G[tl.offset + h], 0.5 + (1.0 + h) * ml * (1 - ml));
    EXPECT_DOUBLE_EQ(G[tr.offset + h], 0.5 - 3.0 * mr * (1 - mr));
  }
}

}  // namespace
}  // namespace slope::model::testing
