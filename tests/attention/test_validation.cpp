// validate(): every malformed problem is refused with an Error that names what is wrong.
#include <gtest/gtest.h>

#include "attention/harness.h"

namespace slope::testing {
namespace {

void expect_error(const Instance& x, const std::string& needle) {
  try {
    validate(x.p, x.inputs());
    ADD_FAILURE() << "no error; expected one mentioning '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
}

Instance base() {
  Case c;
  c.B = 2, c.H = 4, c.Hkv = 2, c.Tq = 9, c.Tk = 11, c.D = 8, c.Dv = 8, c.bias = Bias::kLearned;
  c.ragged = true;
  return make_instance(c);
}

TEST(Validation, AcceptsAWellFormedProblem) {
  const Instance x = base();
  EXPECT_NO_THROW(validate(x.p, x.inputs()));
}

// base(), changed by `edit`, must be refused with an Error mentioning `needle`.
template <class Edit>
void expect_refused(Edit edit, const std::string& needle) {
  Instance x = base();
  edit(x);
  expect_error(x, needle);
}

TEST(Validation, RefusesMalformedProblems) {
  expect_refused([](Instance& x) { x.p.Hkv = 3; }, "Hkv");
  expect_refused([](Instance& x) { x.p.Tq = 0; }, "size");
  expect_refused([](Instance& x) { x.key_lengths[1] = -1; }, "key_lengths[1]");
  expect_refused([](Instance& x) { x.key_lengths[1] = 12; }, "key_lengths[1]");
  expect_refused([](Instance& x) { x.sl[2] = NAN; }, "alibi_slopes[2]");
  expect_refused([](Instance& x) { x.sr[0] = -INFINITY; }, "alibi_slopes_right[0]");
  expect_refused([](Instance& x) { x.p.q_strides.t = 4; }, "q time stride");
  expect_refused([](Instance& x) { x.p.scale = INFINITY; }, "scale");
  expect_refused([](Instance& x) { x.p.skip_tolerance = 1.5f; }, "skip_tolerance");
  expect_refused([](Instance& x) { x.p.mask_kind = MaskKind::kBool; }, "mask");
}

// Issue 12's window, softcap and slopes: the values flash-attn accepts pass, the rest are
// refused by name.
TEST(Validation, WindowSoftcapAndSlopes) {
  {
    Instance x = base();
    x.sl[1] = -0.5f;  // a negative slope is valid (far keys heavier), as in flash-attn
    x.sr[0] = -3.0f;
    x.p.window_left = 0, x.p.window_right = 5, x.p.softcap = 30.0f;
    EXPECT_NO_THROW(validate(x.p, x.inputs()));
  }
  expect_refused([](Instance& x) { x.sl[3] = -INFINITY; }, "alibi_slopes[3] (slopes_left[3])");
  expect_refused([](Instance& x) { x.p.window_left = -2; }, "window_size");
  expect_refused([](Instance& x) { x.p.window_right = -7; }, "window_size");
  expect_refused([](Instance& x) { x.p.softcap = -1.0f; }, "softcap");
  expect_refused([](Instance& x) { x.p.softcap = NAN; }, "softcap");
  expect_refused([](Instance& x) { x.p.softcap = INFINITY; }, "softcap");
  expect_refused([](Instance& x) { x.p.slopes_stride_b = 3; }, "slopes_stride_b");  // < H
  expect_refused([](Instance& x) { x.p.slopes_stride_b = -4; }, "slopes_stride_b");
  expect_refused(  // a batch stride for slopes that are not there
      [](Instance& x) { x.sl.clear(), x.sr.clear(), x.p.slopes_stride_b = 4; }, "slopes_stride_b");
  Case c;
  c.B = 3, c.H = 4, c.Hkv = 2, c.Tq = 5, c.Tk = 5, c.bias = Bias::kLearned;
  c.per_batch_slopes = true;  // (B, H) with stride H + 2, NaN in the gaps (never read)
  Instance x = make_instance(c);
  EXPECT_NO_THROW(validate(x.p, x.inputs()));
  x.sl[static_cast<size_t>(2 * x.p.slopes_stride_b + 1)] = NAN;
  expect_error(x, "alibi_slopes[2, 1] (slopes_left[13])");
}

TEST(Validation, RefusesOverlappingOutputsAndBroadcastInputsToTheBackward) {
  {
    Instance x = base();
    x.p.out_strides.h = 0;  // every head would write the same rows
    expect_error(x, "out strides");
  }
  Instance x = base();
  x.p.k_strides.b = 0;  // k broadcast over the batch: fine for the forward ...
  EXPECT_NO_THROW(validate(x.p, x.inputs()));
  try {  // ... but its gradient would be overwritten per batch row instead of summed
    validate_backward(x.p, x.inputs());
    ADD_FAILURE() << "validate_backward accepted a broadcast k";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("k strides"), std::string::npos) << e.what();
  }
}

TEST(Validation, PublicEntryPointsValidate) {
  Instance x = base();
  x.p.Hkv = 3;
  std::vector<float> out(1000), lse(1000);
  EXPECT_THROW(attention_forward(x.p, x.inputs(), out.data(), lse.data()), Error);
}

}  // namespace
}  // namespace slope::testing
