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

TEST(Validation, RefusesMalformedProblems) {
  { Instance x = base(); x.p.Hkv = 3; expect_error(x, "Hkv"); }
  { Instance x = base(); x.p.Tq = 0; expect_error(x, "size"); }
  { Instance x = base(); x.key_lengths[1] = -1; expect_error(x, "key_lengths[1]"); }
  { Instance x = base(); x.key_lengths[1] = 12; expect_error(x, "key_lengths[1]"); }
  { Instance x = base(); x.sl[2] = NAN; expect_error(x, "alibi_slopes[2]"); }
  { Instance x = base(); x.sr[0] = -0.5f; expect_error(x, "alibi_slopes_right[0]"); }
  { Instance x = base(); x.p.q_strides.t = 4; expect_error(x, "q time stride"); }
  { Instance x = base(); x.p.scale = INFINITY; expect_error(x, "scale"); }
  { Instance x = base(); x.p.skip_tolerance = 1.5f; expect_error(x, "skip_tolerance"); }
  { Instance x = base(); x.p.mask_kind = MaskKind::kBool; expect_error(x, "mask"); }
  for (const float p : {-0.1f, 1.0f, 1.5f, NAN, INFINITY}) {
    Instance x = base();
    x.p.dropout_p = p;
    expect_error(x, "dropout_p");
  }
}

TEST(Validation, AcceptsDropoutBelowOne) {
  for (const float p : {0.0f, 0x1p-30f, 0.5f, 0.999f}) {
    Instance x = base();
    x.p.dropout_p = p;
    EXPECT_NO_THROW(validate(x.p, x.inputs())) << p;
  }
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
