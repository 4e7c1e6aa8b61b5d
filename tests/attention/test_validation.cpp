// validate(): every malformed problem is refused with an Error that names what is wrong.
#include <gtest/gtest.h>

#include <cfloat>
#include <functional>
#include <utility>

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
  // A finite slope whose bias overflows float32 at the longest distance (Tq + Tk): refused,
  // either sign; just below the limit it passes.
  expect_refused([](Instance& x) { x.sl[2] = -1e38f; }, "overflow float32");
  expect_refused([](Instance& x) { x.sr[1] = 1e38f; }, "alibi_slopes_right[1]");
  {
    Instance x = base();
    const double limit = FLT_MAX / static_cast<double>(x.p.Tq + x.p.Tk);
    x.sl[0] = static_cast<float>(-0.99 * limit);
    x.sr[0] = static_cast<float>(0.99 * limit);
    EXPECT_NO_THROW(validate(x.p, x.inputs()));
  }
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

// A well-formed packed problem: 3 documents (one without keys), (total, H, D) rows.
Instance packed() {
  Case c;
  c.H = 4, c.Hkv = 2, c.D = 8, c.Dv = 8, c.bias = Bias::kLearned;
  c.docs_q = {5, 0, 3};
  c.docs_k = {4, 6, 0};
  return make_instance(c);
}

TEST(Validation, AcceptsPackedSequencesAndQueryPositions) {
  EXPECT_NO_THROW(validate(packed().p, packed().inputs()));
  Instance x = base();
  x.p.query_positions = QueryPositions::kKeyLengths;
  EXPECT_NO_THROW(validate(x.p, x.inputs()));
  x.p.query_positions = QueryPositions::kUpperLeft;
  EXPECT_NO_THROW(validate(x.p, x.inputs()));
  Instance y = packed();
  y.p.query_positions = QueryPositions::kUpperLeft;
  EXPECT_NO_THROW(validate_backward(y.p, y.inputs()));
}

TEST(Validation, RefusesBadQueryPositions) {
  {
    Instance x = base();
    x.p.key_lengths = nullptr;
    x.p.query_positions = QueryPositions::kKeyLengths;
    expect_error(x, "key_lengths is null");
  }
  {
    Instance x = base();
    x.p.query_positions = static_cast<QueryPositions>(3);
    expect_error(x, "query_positions = 3");
  }
  {
    Instance x = packed();  // packed rows have no key_lengths, so no kKeyLengths either
    x.p.query_positions = QueryPositions::kKeyLengths;
    expect_error(x, "key_lengths is null");
  }
}

TEST(Validation, RefusesBadCuSeqlens) {
  using Spoil = std::function<void(Instance&)>;
  const std::vector<std::pair<Spoil, std::string>> bad = {
      {[](Instance& x) { x.p.cu_seqlens_k = nullptr; }, "together"},
      {[](Instance& x) { x.p.cu_seqlens_q = nullptr; }, "together"},
      {[](Instance& x) { x.cu_q[0] = 1; }, "cu_seqlens_q[0] = 1"},
      {[](Instance& x) { x.cu_k[0] = -2; }, "cu_seqlens_k[0] = -2"},
      {[](Instance& x) { x.cu_q[2] = 4; }, "cu_seqlens_q[2] = 4 is less than"},
      {[](Instance& x) { x.cu_k[3] = 9; }, "cu_seqlens_k[3] = 9 is less than"},
      {[](Instance& x) { x.p.Tq = 4; }, "more than Tq=4"},
      {[](Instance& x) { x.p.Tk = 5; }, "more than Tk=5"},
      {[](Instance& x) {
         x.key_lengths = {1, 1, 0};
         x.p.key_lengths = x.key_lengths.data();
       },
       "key_lengths must be null"},
      {[](Instance& x) { x.p.q_strides.b = 100; }, "q batch stride is 100"},
      {[](Instance& x) { x.p.k_strides.b = 100; }, "k batch stride is 100"},
      {[](Instance& x) { x.p.v_strides.b = 100; }, "v batch stride is 100"},
      {[](Instance& x) { x.p.out_strides.b = 100; }, "out batch stride is 100"},
      // heads and rows of the packed output overlap
      {[](Instance& x) { x.p.out_strides.t = x.p.Dv; }, "out strides"},
  };
  for (const auto& [spoil, needle] : bad) {
    Instance x = packed();
    spoil(x);
    expect_error(x, needle);
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
