// validate(): every malformed problem is refused with an Error that names what is wrong.
#include <gtest/gtest.h>

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
