// The C interface (slope/slope.h, libslope.so) against the C++ API: the same results bit for bit
// on every variant, each class of bad input refused with its code and message, thread-local
// messages, the struct_size handshake, and a fixed-seed storm of random bad problems.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "slope/attention.h"
#include "slope/slope.h"

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// The C problem as the C++ problem, field by field (written here, independently of the
// library's own conversion, so that a field the library drops shows up as a difference).
slope::AttentionProblem to_cpp(const slope_attention_problem& c) {
  slope::AttentionProblem p;
  p.B = c.B, p.H = c.H, p.Hkv = c.Hkv, p.Tq = c.Tq, p.Tk = c.Tk, p.D = c.D, p.Dv = c.Dv;
  p.q_strides = {c.q_strides.b, c.q_strides.h, c.q_strides.t};
  p.k_strides = {c.k_strides.b, c.k_strides.h, c.k_strides.t};
  p.v_strides = {c.v_strides.b, c.v_strides.h, c.v_strides.t};
  p.out_strides = {c.out_strides.b, c.out_strides.h, c.out_strides.t};
  p.scale = c.scale;
  p.causal = c.causal != 0;
  p.key_lengths = c.key_lengths;
  p.query_positions = static_cast<slope::QueryPositions>(c.query_positions);
  p.cu_seqlens_q = c.cu_seqlens_q;
  p.cu_seqlens_k = c.cu_seqlens_k;
  p.window_left = c.window_left;
  p.window_right = c.window_right;
  p.softcap = c.softcap;
  p.slopes_stride_b = c.slopes_stride_b;
  p.dropout_p = c.dropout_p;
  p.dropout_seed = c.dropout_seed;
  p.dropout_offset = c.dropout_offset;
  p.mask_kind = static_cast<slope::MaskKind>(c.mask_kind);
  p.mask = c.mask;
  p.mask_stride_b = c.mask_stride_b;
  p.mask_stride_h = c.mask_stride_h;
  p.mask_stride_t = c.mask_stride_t;
  p.skip_tolerance = c.skip_tolerance;
  return p;
}

slope_attention_problem make_problem(int64_t B, int64_t H, int64_t Hkv, int64_t Tq, int64_t Tk,
                                     int64_t D, int64_t Dv) {
  slope_attention_problem p;
  EXPECT_EQ(SLOPE_ATTENTION_PROBLEM_INIT(&p), SLOPE_OK);
  p.B = B, p.H = H, p.Hkv = Hkv, p.Tq = Tq, p.Tk = Tk, p.D = D, p.Dv = Dv;
  EXPECT_EQ(slope_attention_contiguous_strides(&p), SLOPE_OK) << slope_last_error();
  return p;
}

// Elements a tensor of sizes (n0, n1, n2, n3) and strides (s0, s1, s2, 1) addresses.
int64_t extent(int64_t n0, int64_t s0, int64_t n1, int64_t s1, int64_t n2, int64_t s2, int64_t n3) {
  return (n0 - 1) * s0 + (n1 - 1) * s1 + (n2 - 1) * s2 + n3;
}

// The buffers of a (valid) problem, sized from its shapes and strides.
struct Sizes {
  int64_t q, k, v, out, lse, slopes, mask;
};
Sizes sizes_of(const slope_attention_problem& p) {
  const bool packed = p.cu_seqlens_q != nullptr;
  const int64_t Bt = packed ? 1 : p.B;
  const int64_t rq = packed ? p.cu_seqlens_q[p.B] : p.Tq, rk = packed ? p.cu_seqlens_k[p.B] : p.Tk;
  Sizes s{};
  s.q = extent(Bt, p.q_strides.b, p.H, p.q_strides.h, rq, p.q_strides.t, p.D);
  s.k = extent(Bt, p.k_strides.b, p.Hkv, p.k_strides.h, rk, p.k_strides.t, p.D);
  s.v = extent(Bt, p.v_strides.b, p.Hkv, p.v_strides.h, rk, p.v_strides.t, p.Dv);
  s.out = extent(Bt, p.out_strides.b, p.H, p.out_strides.h, rq, p.out_strides.t, p.Dv);
  s.lse = packed ? p.H * rq : p.B * p.H * p.Tq;
  s.slopes = p.slopes_stride_b ? (p.B - 1) * p.slopes_stride_b + p.H : p.H;
  s.mask = p.mask_kind == SLOPE_MASK_NONE
               ? 0
               : extent(p.B, p.mask_stride_b, p.H, p.mask_stride_h, p.Tq, p.mask_stride_t, p.Tk);
  return s;
}

std::vector<float> random_vector(int64_t n, std::mt19937& rng, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& e : x) e = u(rng);
  return x;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

enum class Slopes { kNone, kShared, kLeftRight };

// Runs the forward and backward through the C interface and through the C++ API on the same
// random inputs, and expects every output equal bit for bit. `slopes` may hold preset values
// (size from sizes_of); otherwise random positive ones are drawn.
void expect_same_as_cpp(const slope_attention_problem& c, Slopes kind, std::vector<float> left = {},
                        std::vector<float> right = {}) {
  std::mt19937 rng(1234);
  const Sizes n = sizes_of(c);
  const std::vector<float> q = random_vector(n.q, rng), k = random_vector(n.k, rng),
                           v = random_vector(n.v, rng), dout = random_vector(n.out, rng);
  if (kind != Slopes::kNone && left.empty()) left = random_vector(n.slopes, rng, 0.05f, 0.9f);
  if (kind == Slopes::kLeftRight && right.empty()) right = random_vector(n.slopes, rng, 0.0f, 0.5f);
  const float* sl = kind == Slopes::kNone ? nullptr : left.data();
  const float* sr = kind == Slopes::kLeftRight ? right.data() : nullptr;

  // Outputs start as NaN in both runs, so elements neither run writes compare equal too.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  struct Out {
    std::vector<float> out, lse, dq, dk, dv, dsl, dsr;
  };
  const auto fresh = [&] {
    const int64_t ns = kind == Slopes::kNone ? 1 : n.slopes;
    return Out{std::vector<float>(n.out, nan), std::vector<float>(n.lse, nan),
               std::vector<float>(n.q, nan),   std::vector<float>(n.k, nan),
               std::vector<float>(n.v, nan),   std::vector<float>(ns, nan),
               std::vector<float>(ns, nan)};
  };
  Out a = fresh(), b = fresh();
  float* dsl = kind == Slopes::kNone ? nullptr : a.dsl.data();
  float* dsr = kind == Slopes::kNone ? nullptr : a.dsr.data();

  ASSERT_EQ(
      slope_attention_forward(&c, q.data(), k.data(), v.data(), sl, sr, a.out.data(), a.lse.data()),
      SLOPE_OK)
      << slope_last_error();
  EXPECT_STREQ(slope_last_error(), "");
  ASSERT_EQ(
      slope_attention_backward(&c, q.data(), k.data(), v.data(), sl, sr, a.out.data(), dout.data(),
                               a.lse.data(), a.dq.data(), a.dk.data(), a.dv.data(), dsl, dsr),
      SLOPE_OK)
      << slope_last_error();

  const slope::AttentionProblem p = to_cpp(c);
  const slope::AttentionInputs<float> in{q.data(), k.data(), v.data(), sl, sr};
  slope::attention_forward(p, in, b.out.data(), b.lse.data());
  slope::attention_backward(
      p, in, b.out.data(), dout.data(), b.lse.data(),
      {b.dq.data(), b.dk.data(), b.dv.data(), kind == Slopes::kNone ? nullptr : b.dsl.data(),
       kind == Slopes::kNone ? nullptr : b.dsr.data()});

  EXPECT_TRUE(same_bits(a.out, b.out)) << "out";
  EXPECT_TRUE(same_bits(a.lse, b.lse)) << "lse";
  EXPECT_TRUE(same_bits(a.dq, b.dq)) << "dq";
  EXPECT_TRUE(same_bits(a.dk, b.dk)) << "dk";
  EXPECT_TRUE(same_bits(a.dv, b.dv)) << "dv";
  EXPECT_TRUE(same_bits(a.dsl, b.dsl)) << "dslopes_left";
  EXPECT_TRUE(same_bits(a.dsr, b.dsr)) << "dslopes_right";
  // The run computed something: out is not left at its NaN fill.
  EXPECT_FALSE(std::isnan(a.out[0]));
}

// ---- bit for bit with the C++ API ----------------------------------------------------------

TEST(CApi, CausalAlibiMatchesCpp) {
  slope_attention_problem p = make_problem(2, 4, 4, 33, 33, 16, 16);
  p.causal = 1;
  std::vector<float> s(4);
  ASSERT_EQ(slope_alibi_slopes(4, SLOPE_DEFAULT_MAX_BIAS, s.data()), SLOPE_OK);
  expect_same_as_cpp(p, Slopes::kShared, s);
}

TEST(CApi, NoBiasNonCausalMatchesCpp) {
  slope_attention_problem p = make_problem(1, 3, 1, 17, 40, 8, 12);
  p.scale = 0.3f;
  expect_same_as_cpp(p, Slopes::kNone);
}

TEST(CApi, GroupedQueriesKeyLengthsKvCacheMatchesCpp) {
  // Decoding 3 new queries against a 20-slot KV buffer, rows filled to different lengths.
  slope_attention_problem p = make_problem(3, 6, 2, 3, 20, 8, 8);
  const int32_t lengths[3] = {20, 7, 3};
  p.key_lengths = lengths;
  p.query_positions = SLOPE_QUERY_POSITIONS_KEY_LENGTHS;
  p.causal = 1;
  expect_same_as_cpp(p, Slopes::kShared);
}

TEST(CApi, PaddedUpperLeftWindowSoftcapMatchesCpp) {
  slope_attention_problem p = make_problem(2, 2, 2, 12, 9, 5, 7);
  const int32_t lengths[2] = {9, 0};  // row 1 fully masked: out 0, lse -inf
  p.key_lengths = lengths;
  p.query_positions = SLOPE_QUERY_POSITIONS_UPPER_LEFT;
  p.window_left = 3;
  p.window_right = 1;
  p.softcap = 2.5f;
  expect_same_as_cpp(p, Slopes::kLeftRight);
}

TEST(CApi, PackedSequencesMatchCpp) {
  slope_attention_problem p;
  ASSERT_EQ(SLOPE_ATTENTION_PROBLEM_INIT(&p), SLOPE_OK);
  const int32_t cu_q[4] = {0, 5, 5, 14}, cu_k[4] = {0, 7, 9, 18};
  p.B = 3, p.H = 4, p.Hkv = 2, p.Tq = 9, p.Tk = 9, p.D = 8, p.Dv = 8;
  p.cu_seqlens_q = cu_q;
  p.cu_seqlens_k = cu_k;
  p.causal = 1;
  ASSERT_EQ(slope_attention_contiguous_strides(&p), SLOPE_OK) << slope_last_error();
  EXPECT_EQ(p.q_strides.b, 0);
  EXPECT_EQ(p.q_strides.t, 4 * 8);
  EXPECT_EQ(p.k_strides.t, 2 * 8);
  expect_same_as_cpp(p, Slopes::kShared);
}

// flash-attn callers often pass a generous max_seqlen. The kernels size workspaces by Tq and
// Tk, so the C interface clamps them to the longest document: the same results, bit for bit, as
// the exact bounds, where the C++ API given Tq = Tk = 2^40 would try to allocate terabytes.
TEST(CApi, PackedWithAGenerousMaxSeqlen) {
  slope_attention_problem exact;
  ASSERT_EQ(SLOPE_ATTENTION_PROBLEM_INIT(&exact), SLOPE_OK);
  const int32_t cu_q[3] = {0, 6, 9}, cu_k[3] = {0, 6, 15};
  exact.B = 2, exact.H = 2, exact.Hkv = 2, exact.Tq = 6, exact.Tk = 9, exact.D = 8, exact.Dv = 8;
  exact.cu_seqlens_q = cu_q;
  exact.cu_seqlens_k = cu_k;
  exact.causal = 1;
  ASSERT_EQ(slope_attention_contiguous_strides(&exact), SLOPE_OK);
  expect_same_as_cpp(exact, Slopes::kShared);  // the exact bounds against the C++ API

  slope_attention_problem generous = exact;
  generous.Tq = generous.Tk = int64_t{1} << 40;
  std::mt19937 rng(8);
  const Sizes n = sizes_of(exact);
  const std::vector<float> q = random_vector(n.q, rng), k = random_vector(n.k, rng),
                           v = random_vector(n.v, rng), dout = random_vector(n.out, rng),
                           s = random_vector(n.slopes, rng, 0.1f, 1.0f);
  std::vector<float> out[2], lse[2], dq[2], dk[2], dv[2], ds[2];
  const slope_attention_problem* problems[2] = {&exact, &generous};
  for (int r = 0; r < 2; ++r) {
    out[r].resize(n.out), lse[r].resize(n.lse), ds[r].resize(n.slopes);
    dq[r].resize(n.q), dk[r].resize(n.k), dv[r].resize(n.v);
    ASSERT_EQ(slope_attention_forward(problems[r], q.data(), k.data(), v.data(), s.data(), nullptr,
                                      out[r].data(), lse[r].data()),
              SLOPE_OK)
        << slope_last_error();
    ASSERT_EQ(slope_attention_backward(problems[r], q.data(), k.data(), v.data(), s.data(), nullptr,
                                       out[r].data(), dout.data(), lse[r].data(), dq[r].data(),
                                       dk[r].data(), dv[r].data(), ds[r].data(), nullptr),
              SLOPE_OK)
        << slope_last_error();
  }
  EXPECT_TRUE(same_bits(out[0], out[1]));
  EXPECT_TRUE(same_bits(lse[0], lse[1]));
  EXPECT_TRUE(same_bits(dq[0], dq[1]));
  EXPECT_TRUE(same_bits(dk[0], dk[1]));
  EXPECT_TRUE(same_bits(dv[0], dv[1]));
  EXPECT_TRUE(same_bits(ds[0], ds[1]));
}

TEST(CApi, PerBatchSlopesBoolMaskBroadcastOverHeadsMatchesCpp) {
  slope_attention_problem p = make_problem(2, 3, 3, 10, 14, 8, 8);
  std::vector<uint8_t> mask(2 * 10 * 14);
  for (size_t n = 0; n < mask.size(); ++n) mask[n] = (n * 7 + n / 5) % 3 != 0;
  p.mask_kind = SLOPE_MASK_BOOL;
  p.mask = mask.data();
  p.mask_stride_b = 10 * 14, p.mask_stride_h = 0, p.mask_stride_t = 14;
  p.slopes_stride_b = 4;  // (B, H) slopes with a padded batch stride
  expect_same_as_cpp(p, Slopes::kLeftRight);
}

TEST(CApi, AdditiveMaskBroadcastOverBatchNonsymmetricMatchesCpp) {
  slope_attention_problem p = make_problem(2, 4, 4, 9, 9, 8, 8);
  std::mt19937 rng(5);
  std::vector<float> mask = random_vector(4 * 9 * 9, rng, -3.0f, 1.0f);
  mask[3] = -kInf;
  p.mask_kind = SLOPE_MASK_ADDITIVE;
  p.mask = mask.data();
  p.mask_stride_b = 0, p.mask_stride_h = 81, p.mask_stride_t = 9;
  std::vector<float> left(4), right(4);
  ASSERT_EQ(slope_alibi_slopes_nonsymmetric(4, SLOPE_DEFAULT_MAX_BIAS, left.data(), right.data()),
            SLOPE_OK);
  expect_same_as_cpp(p, Slopes::kLeftRight, left, right);
}

TEST(CApi, DropoutAndNoSkipMatchCpp) {
  slope_attention_problem p = make_problem(2, 2, 1, 11, 11, 8, 8);
  p.causal = 1;
  p.dropout_p = 0.25f;
  p.dropout_seed = 42;
  p.dropout_offset = 3;
  p.skip_tolerance = 0.0f;
  expect_same_as_cpp(p, Slopes::kShared);
}

TEST(CApi, NonContiguousStridesMatchCpp) {
  // (B, T, H, D) storage, as a fused QKV projection leaves it, described by strides.
  slope_attention_problem p = make_problem(2, 2, 2, 6, 6, 4, 4);
  p.q_strides = {6 * 2 * 4, 4, 2 * 4};
  p.k_strides = p.q_strides;
  p.v_strides = p.q_strides;
  p.out_strides = p.q_strides;
  p.causal = 1;
  expect_same_as_cpp(p, Slopes::kShared);
}

// ---- presets, version --------------------------------------------------------------------

TEST(CApi, PresetsEqualCpp) {
  for (int64_t H : {1, 5, 8, 12}) {
    std::vector<float> a(static_cast<size_t>(H)), g(a.size());
    ASSERT_EQ(slope_alibi_slopes(H, 8.0, a.data()), SLOPE_OK);
    ASSERT_EQ(slope_alibi_slopes_geometric(H, 4.0, g.data()), SLOPE_OK);
    EXPECT_TRUE(same_bits(a, slope::alibi_slopes(H, 8.0))) << H;
    EXPECT_TRUE(same_bits(g, slope::alibi_slopes_geometric(H, 4.0))) << H;
  }
  std::vector<float> l(6), r(6);
  ASSERT_EQ(slope_alibi_slopes_nonsymmetric(6, 8.0, l.data(), r.data()), SLOPE_OK);
  const slope::SlopePair s = slope::alibi_slopes_nonsymmetric(6, 8.0);
  EXPECT_TRUE(same_bits(l, s.left));
  EXPECT_TRUE(same_bits(r, s.right));
  EXPECT_EQ(r[0], kInf);
}

TEST(CApi, VersionAndIsa) {
  EXPECT_STREQ(slope_version(), SLOPE_VERSION_STRING);
  EXPECT_EQ(std::string(slope_version()), std::to_string(SLOPE_VERSION_MAJOR) + "." +
                                              std::to_string(SLOPE_VERSION_MINOR) + "." +
                                              std::to_string(SLOPE_VERSION_PATCH));
  EXPECT_STREQ(slope_cpu_isa(), slope::attention_cpu_isa());
  EXPECT_STREQ(slope_status_name(SLOPE_ERROR_STRUCT_SIZE), "SLOPE_ERROR_STRUCT_SIZE");
  EXPECT_STREQ(slope_status_name(static_cast<slope_status>(99)), "unknown");
}

// ---- bad input: each class, its code and its message ---------------------------------------

// A small valid problem with its buffers, for breaking one thing at a time.
struct Fixture {
  slope_attention_problem p = make_problem(2, 4, 2, 5, 6, 8, 8);
  std::vector<float> q = std::vector<float>(2 * 4 * 5 * 8, 0.5f);
  std::vector<float> k = std::vector<float>(2 * 2 * 6 * 8, 0.25f);
  std::vector<float> v = std::vector<float>(2 * 2 * 6 * 8, 1.0f);
  std::vector<float> out = std::vector<float>(2 * 4 * 5 * 8, 7.0f);
  std::vector<float> lse = std::vector<float>(2 * 4 * 5, 7.0f);
  std::vector<float> dq = q, dk = k, dv = v, dout = out;
  std::vector<float> slopes = std::vector<float>(4, 0.5f);

  slope_status forward() {
    return slope_attention_forward(&p, q.data(), k.data(), v.data(), slopes.data(), nullptr,
                                   out.data(), lse.data());
  }
  slope_status backward() {
    return slope_attention_backward(&p, q.data(), k.data(), v.data(), slopes.data(), nullptr,
                                    out.data(), dout.data(), lse.data(), dq.data(), dk.data(),
                                    dv.data(), nullptr, nullptr);
  }
};

// The status and that the message contains `what`; the outputs stay untouched on an error.
void expect_error(Fixture& f, slope_status want, const std::string& what) {
  const std::vector<float> out0 = f.out, lse0 = f.lse;
  EXPECT_EQ(f.forward(), want) << slope_last_error();
  EXPECT_NE(std::string(slope_last_error()).find(what), std::string::npos)
      << "message: " << slope_last_error() << "\nexpected to contain: " << what;
  EXPECT_TRUE(same_bits(f.out, out0) && same_bits(f.lse, lse0)) << "an error wrote the output";
  EXPECT_EQ(f.backward(), want) << slope_last_error();
  EXPECT_NE(std::string(slope_last_error()).find(what), std::string::npos) << slope_last_error();
}

TEST(CApiErrors, TheFixtureIsValid) {
  Fixture f;
  EXPECT_EQ(f.forward(), SLOPE_OK) << slope_last_error();
  EXPECT_EQ(f.backward(), SLOPE_OK) << slope_last_error();
  EXPECT_STREQ(slope_last_error(), "");
}

TEST(CApiErrors, NullPointers) {
  Fixture f;
  const float* q = f.q.data();
  EXPECT_EQ(slope_attention_forward(nullptr, q, q, q, nullptr, nullptr, f.out.data(), f.lse.data()),
            SLOPE_ERROR_NULL_POINTER);
  EXPECT_NE(std::string(slope_last_error()).find("the problem is NULL"), std::string::npos);
  struct Case {
    const char* name;
    const float *q, *k, *v;
    float *out, *lse;
  };
  const Case cases[] = {{"q is NULL", nullptr, f.k.data(), f.v.data(), f.out.data(), f.lse.data()},
                        {"k is NULL", q, nullptr, f.v.data(), f.out.data(), f.lse.data()},
                        {"v is NULL", q, f.k.data(), nullptr, f.out.data(), f.lse.data()},
                        {"out is NULL", q, f.k.data(), f.v.data(), nullptr, f.lse.data()},
                        {"lse is NULL", q, f.k.data(), f.v.data(), f.out.data(), nullptr}};
  for (const Case& c : cases) {
    EXPECT_EQ(slope_attention_forward(&f.p, c.q, c.k, c.v, nullptr, nullptr, c.out, c.lse),
              SLOPE_ERROR_NULL_POINTER)
        << c.name;
    EXPECT_NE(std::string(slope_last_error()).find(c.name), std::string::npos)
        << slope_last_error();
  }
  const char* grads[] = {"dout is NULL", "dq is NULL", "dk is NULL", "dv is NULL"};
  for (int g = 0; g < 4; ++g) {
    EXPECT_EQ(slope_attention_backward(
                  &f.p, q, f.k.data(), f.v.data(), nullptr, nullptr, f.out.data(),
                  g == 0 ? nullptr : f.dout.data(), f.lse.data(), g == 1 ? nullptr : f.dq.data(),
                  g == 2 ? nullptr : f.dk.data(), g == 3 ? nullptr : f.dv.data(), nullptr, nullptr),
              SLOPE_ERROR_NULL_POINTER);
    EXPECT_NE(std::string(slope_last_error()).find(grads[g]), std::string::npos)
        << slope_last_error();
  }
  f.p.mask_kind = SLOPE_MASK_BOOL;
  expect_error(f, SLOPE_ERROR_NULL_POINTER, "mask (mask_kind is set) is NULL");
  EXPECT_EQ(slope_alibi_slopes(4, 8.0, nullptr), SLOPE_ERROR_NULL_POINTER);
  EXPECT_EQ(slope_alibi_slopes_nonsymmetric(4, 8.0, f.slopes.data(), nullptr),
            SLOPE_ERROR_NULL_POINTER);
  EXPECT_EQ(slope_attention_problem_init(nullptr, sizeof f.p), SLOPE_ERROR_NULL_POINTER);
  EXPECT_EQ(slope_attention_contiguous_strides(nullptr), SLOPE_ERROR_NULL_POINTER);
}

TEST(CApiErrors, NegativeAndZeroSizes) {
  for (int64_t bad : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    Fixture f;
    f.p.Tq = bad;
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "every size must be >= 1");
    Fixture g;
    g.p.B = bad;
    expect_error(g, SLOPE_ERROR_INVALID_ARGUMENT, "every size must be >= 1");
    EXPECT_EQ(slope_attention_contiguous_strides(&g.p), SLOPE_ERROR_INVALID_ARGUMENT);
  }
}

TEST(CApiErrors, ShapesThatDisagree) {
  {
    Fixture f;
    f.p.Hkv = 3;
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "H=4 is not a multiple of Hkv=3");
  }
  {
    Fixture f;
    f.p.q_strides.t = 4;  // less than D = 8: rows overlap
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "q time stride 4 is smaller than its head dim");
  }
  {
    Fixture f;
    f.p.k_strides.h = -8;
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "k has a negative stride");
  }
  {
    Fixture f;
    f.p.out_strides.h = 0;  // heads would write one another's output
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "make different positions share memory");
  }
  {
    Fixture f;
    const int32_t lengths[2] = {6, -1};
    f.p.key_lengths = lengths;
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "key_lengths[1] = -1 is outside [0, Tk=6]");
  }
  {
    Fixture f;
    const int32_t cu_q[3] = {0, 4, 3}, cu_k[3] = {0, 6, 12};
    f.p.cu_seqlens_q = cu_q;
    f.p.cu_seqlens_k = cu_k;
    f.p.q_strides.b = f.p.k_strides.b = f.p.v_strides.b = f.p.out_strides.b = 0;
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "must be non-decreasing");
    f.p.cu_seqlens_k = nullptr;
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "must be given together");
  }
  {
    Fixture f;
    f.p.Tq = int64_t{1} << 62;  // the index arithmetic would overflow
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "2^63");
  }
  {
    Fixture f;
    f.p.mask_kind = SLOPE_MASK_ADDITIVE;
    f.p.mask = f.q.data();
    f.p.mask_stride_t = 3;  // < Tk
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "attn_mask strides are invalid");
  }
  {
    Fixture f;
    f.p.slopes_stride_b = 2;  // per-batch slopes need a stride >= H
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, "slopes_stride_b = 2");
  }
}

TEST(CApiErrors, ValuesOutOfRange) {
  const auto check = [](auto&& set, const std::string& what) {
    Fixture f;
    set(f);
    expect_error(f, SLOPE_ERROR_INVALID_ARGUMENT, what);
  };
  check([](Fixture& f) { f.slopes[2] = std::nanf(""); }, "alibi_slopes[2] (slopes_left[2])");
  check([](Fixture& f) { f.slopes[0] = -kInf; }, "is NaN or -inf");
  check([](Fixture& f) { f.p.causal = 2; }, "causal = 2 must be 0 or 1");
  check([](Fixture& f) { f.p.query_positions = 7; }, "query_positions = 7");
  check([](Fixture& f) { f.p.query_positions = SLOPE_QUERY_POSITIONS_KEY_LENGTHS; },
        "key_lengths is null");
  check([](Fixture& f) { f.p.mask_kind = -1; }, "mask_kind = -1");
  check([](Fixture& f) { f.p.reserved = 1; }, "reserved = 1 must be 0");
  check([](Fixture& f) { f.p.scale = kInf; }, "scale must be finite");
  check([](Fixture& f) { f.p.softcap = -1.0f; }, "softcap must be finite and >= 0");
  check([](Fixture& f) { f.p.dropout_p = 1.0f; }, "dropout_p must be in [0, 1)");
  check([](Fixture& f) { f.p.skip_tolerance = std::nanf(""); }, "skip_tolerance");
  check([](Fixture& f) { f.p.window_left = -2; }, "window_size");
}

TEST(CApiErrors, PresetArguments) {
  std::vector<float> s(8), r(8);
  EXPECT_EQ(slope_alibi_slopes(0, 8.0, s.data()), SLOPE_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(slope_last_error()).find("n_heads must be >= 1, got 0"), std::string::npos);
  EXPECT_EQ(slope_alibi_slopes_geometric(-5, 8.0, s.data()), SLOPE_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(slope_alibi_slopes(4, std::nan(""), s.data()), SLOPE_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(slope_last_error()).find("max_bias"), std::string::npos);
  EXPECT_EQ(slope_alibi_slopes(4, -1.0, s.data()), SLOPE_ERROR_INVALID_ARGUMENT);
  EXPECT_EQ(slope_alibi_slopes_nonsymmetric(5, 8.0, s.data(), r.data()),
            SLOPE_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(slope_last_error()).find("must be even"), std::string::npos);
}

TEST(CApiErrors, BackwardRefusesBroadcastInputs) {
  Fixture f;
  f.p.k_strides.b = 0;  // fine for the forward, but dk would be written over itself
  EXPECT_EQ(f.forward(), SLOPE_OK) << slope_last_error();
  EXPECT_EQ(f.backward(), SLOPE_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(slope_last_error()).find("pass a contiguous copy"), std::string::npos)
      << slope_last_error();
}

// ---- struct_size: the forward-compatibility handshake --------------------------------------

TEST(CApiStructSize, ZeroFilledStructIsRefused) {
  Fixture f;
  std::memset(&f.p, 0, sizeof f.p);
  expect_error(f, SLOPE_ERROR_STRUCT_SIZE, "slope_attention_problem_init(&p, sizeof p)");
  f.p.struct_size = uint64_t{1} << 40;
  expect_error(f, SLOPE_ERROR_STRUCT_SIZE, "is not the size of a slope_attention_problem");
  slope_attention_problem p;
  EXPECT_EQ(slope_attention_problem_init(&p, sizeof p - 8), SLOPE_ERROR_STRUCT_SIZE);
  EXPECT_EQ(slope_attention_problem_init(&p, 70000), SLOPE_ERROR_STRUCT_SIZE);
}

TEST(CApiStructSize, InitGivesTheDocumentedDefaults) {
  slope_attention_problem p;
  std::memset(&p, 0xab, sizeof p);
  ASSERT_EQ(slope_attention_problem_init(&p, sizeof p), SLOPE_OK);
  EXPECT_EQ(p.struct_size, sizeof p);
  EXPECT_EQ(p.B, 1);
  EXPECT_EQ(p.D, 64);
  EXPECT_EQ(p.Dv, 64);
  EXPECT_TRUE(std::isnan(p.scale));
  EXPECT_EQ(p.skip_tolerance, 0x1p-24f);
  EXPECT_EQ(p.window_left, -1);
  EXPECT_EQ(p.window_right, -1);
  EXPECT_EQ(p.key_lengths, nullptr);
  EXPECT_EQ(p.mask, nullptr);
  EXPECT_EQ(p.causal, 0);
  EXPECT_EQ(p.reserved, 0);
  // The C++ defaults, which the C ones mirror.
  const slope::AttentionProblem cpp;
  EXPECT_EQ(p.skip_tolerance, cpp.skip_tolerance);
  EXPECT_EQ(p.window_left, cpp.window_left);
  EXPECT_EQ(p.D, cpp.D);
}

// A caller compiled against a newer header passes a larger struct: zeros beyond the known
// fields are accepted (defaults), anything else is refused; init zeroes those bytes.
TEST(CApiStructSize, NewerCallersLargerStruct) {
  struct Newer {
    slope_attention_problem known;
    int64_t future_field;
  };
  Newer n;
  std::memset(&n, 0x5a, sizeof n);
  ASSERT_EQ(slope_attention_problem_init(&n.known, sizeof n), SLOPE_OK);
  EXPECT_EQ(n.known.struct_size, sizeof n);
  EXPECT_EQ(n.future_field, 0);
  n.known.B = 2, n.known.H = 4, n.known.Hkv = 2, n.known.Tq = 5, n.known.Tk = 6;
  n.known.D = n.known.Dv = 8;
  ASSERT_EQ(slope_attention_contiguous_strides(&n.known), SLOPE_OK);
  Fixture f;
  f.p = n.known;  // the same problem at the current size, for comparison
  f.p.struct_size = sizeof f.p;
  ASSERT_EQ(f.forward(), SLOPE_OK);
  std::vector<float> out(f.out.size()), lse(f.lse.size());
  ASSERT_EQ(slope_attention_forward(&n.known, f.q.data(), f.k.data(), f.v.data(), f.slopes.data(),
                                    nullptr, out.data(), lse.data()),
            SLOPE_OK)
      << slope_last_error();
  EXPECT_TRUE(same_bits(out, f.out));
  EXPECT_TRUE(same_bits(lse, f.lse));
  n.future_field = 1;
  EXPECT_EQ(slope_attention_forward(&n.known, f.q.data(), f.k.data(), f.v.data(), f.slopes.data(),
                                    nullptr, out.data(), lse.data()),
            SLOPE_ERROR_STRUCT_SIZE);
  EXPECT_NE(std::string(slope_last_error()).find("does not know"), std::string::npos)
      << slope_last_error();
}

// The first version's layout on LP64 targets, frozen: the Rust crate (and any other binding)
// declares the same fields at the same offsets, and later versions only append.
TEST(CApiStructSize, LayoutIsFrozen) {
  if (sizeof(void*) != 8) GTEST_SKIP() << "offsets pinned for 64-bit targets";
  EXPECT_EQ(offsetof(slope_attention_problem, struct_size), 0u);
  EXPECT_EQ(offsetof(slope_attention_problem, B), 8u);
  EXPECT_EQ(offsetof(slope_attention_problem, Dv), 56u);
  EXPECT_EQ(offsetof(slope_attention_problem, q_strides), 64u);
  EXPECT_EQ(offsetof(slope_attention_problem, out_strides), 136u);
  EXPECT_EQ(offsetof(slope_attention_problem, key_lengths), 160u);
  EXPECT_EQ(offsetof(slope_attention_problem, window_left), 184u);
  EXPECT_EQ(offsetof(slope_attention_problem, dropout_seed), 208u);
  EXPECT_EQ(offsetof(slope_attention_problem, mask), 224u);
  EXPECT_EQ(offsetof(slope_attention_problem, mask_stride_t), 248u);
  EXPECT_EQ(offsetof(slope_attention_problem, scale), 256u);
  EXPECT_EQ(offsetof(slope_attention_problem, skip_tolerance), 268u);
  EXPECT_EQ(offsetof(slope_attention_problem, causal), 272u);
  EXPECT_EQ(offsetof(slope_attention_problem, reserved), 284u);
  EXPECT_EQ(sizeof(slope_attention_problem), 288u);
  EXPECT_EQ(SLOPE_ATTENTION_PROBLEM_SIZE_V1, 288u);
}

// ---- messages are per thread ---------------------------------------------------------------

TEST(CApiErrors, MessagesArePerThread) {
  Fixture f;
  f.p.Hkv = 3;
  ASSERT_EQ(f.forward(), SLOPE_ERROR_INVALID_ARGUMENT);
  const std::string mine = slope_last_error();
  std::string theirs = "unset";
  std::thread t([&] {
    Fixture g;
    EXPECT_EQ(g.forward(), SLOPE_OK);
    theirs = slope_last_error();
  });
  t.join();
  EXPECT_EQ(theirs, "");
  EXPECT_EQ(std::string(slope_last_error()), mine);
  EXPECT_NE(mine.find("Hkv=3"), std::string::npos);
}

// Calls from several threads at once (each with its own OpenMP team) give the single-threaded
// results, bit for bit, and each thread its own messages.
TEST(CApi, ConcurrentCallsAgree) {
  slope_attention_problem p = make_problem(2, 4, 2, 40, 40, 16, 16);
  p.causal = 1;
  std::mt19937 rng(11);
  const Sizes n = sizes_of(p);
  const std::vector<float> q = random_vector(n.q, rng), k = random_vector(n.k, rng),
                           v = random_vector(n.v, rng), s = random_vector(n.slopes, rng, 0.1f, 1);
  std::vector<float> want(n.out), want_lse(n.lse);
  ASSERT_EQ(slope_attention_forward(&p, q.data(), k.data(), v.data(), s.data(), nullptr,
                                    want.data(), want_lse.data()),
            SLOPE_OK);
  constexpr int kThreads = 4;
  std::vector<std::vector<float>> got(kThreads, std::vector<float>(n.out));
  std::vector<int> same_message(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      std::vector<float> lse(n.lse);
      slope_attention_problem bad = p;
      bad.Hkv = 5 + 2 * t;  // H = 4 is no multiple of it: each thread's own error
      for (int rep = 0; rep < 5; ++rep) {
        slope_attention_forward(&bad, q.data(), k.data(), v.data(), s.data(), nullptr,
                                got[t].data(), lse.data());
        const std::string mine = slope_last_error();
        slope_attention_forward(&p, q.data(), k.data(), v.data(), s.data(), nullptr, got[t].data(),
                                lse.data());
        same_message[t] += mine.find("Hkv=" + std::to_string(5 + 2 * t)) != std::string::npos;
      }
    });
  for (std::thread& t : threads) t.join();
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_TRUE(same_bits(got[t], want)) << "thread " << t;
    EXPECT_EQ(same_message[t], 5) << "thread " << t;
  }
}

// ---- a storm of random bad problems --------------------------------------------------------

// Starting from a valid problem whose buffers are much larger than it needs, mutates 1–4 fields
// to values drawn from a pool of edge cases (negative, zero, huge, NaN, unknown enums, dangling
// lengths) and calls check, forward and backward. Each call must return a known status with a
// message exactly when it fails; check, forward and backward must agree; an error writes
// nothing; a problem that passes is run when its buffers fit, and gives finite outputs.
// Buffers the checks read (key lengths, cu_seqlens, slopes) end in invalid guard values, so a
// size that runs past them is refused before anything reads beyond them.
TEST(CApiFuzz, RandomBadProblemsGiveCodesNeverCrashes) {
  constexpr int64_t kBuf = 1 << 14;  // elements of every tensor buffer
  std::mt19937_64 rng(20261130);
  std::vector<float> q(kBuf), k(kBuf), v(kBuf), dout(kBuf);
  {
    std::mt19937 r32(3);
    q = random_vector(kBuf, r32), k = random_vector(kBuf, r32), v = random_vector(kBuf, r32);
    dout = random_vector(kBuf, r32);
  }
  std::vector<float> out(kBuf), lse(kBuf), dq(kBuf), dk(kBuf), dv(kBuf), dsl(kBuf), dsr(kBuf);
  std::vector<float> slopes(256, std::nanf("")), mask_f(kBuf, 0.0f);
  for (int h = 0; h < 16; ++h) slopes[static_cast<size_t>(h)] = 0.25f;  // (B <= 2, H <= 8)
  std::vector<uint8_t> mask_b(kBuf, 1);
  const int32_t lengths[8] = {6, 3, -1, -1, -1, -1, -1, -1};
  const int32_t cu_q[8] = {0, 3, 5, -1, -1, -1, -1, -1}, cu_k[8] = {0, 6, 6, -1, -1, -1, -1, -1};

  const int64_t ints[] = {std::numeric_limits<int64_t>::min(),
                          -2,
                          -1,
                          0,
                          1,
                          2,
                          3,
                          7,
                          64,
                          int64_t{1} << 31,
                          int64_t{1} << 62,
                          std::numeric_limits<int64_t>::max()};
  const float floats[] = {0.0f, -1.0f, 0.5f, 1.0f, 2.0f, kInf, -kInf, std::nanf("")};
  std::uniform_int_distribution<int> pick_int(0, std::size(ints) - 1);
  std::uniform_int_distribution<int> pick_float(0, std::size(floats) - 1);

  int n_ok = 0, n_run = 0, n_err[6] = {};
  for (int iter = 0; iter < 3000; ++iter) {
    slope_attention_problem p = make_problem(2, 4, 2, 5, 6, 8, 8);
    p.causal = 1;
    const float* sl = slopes.data();
    const float *qp = q.data(), *kp = k.data(), *vp = v.data();
    float *outp = out.data(), *lsep = lse.data();
    const int n_mut = 1 + static_cast<int>(rng() % 4);
    for (int m = 0; m < n_mut; ++m) {
      const int64_t x = ints[pick_int(rng)];
      const float f = floats[pick_float(rng)];
      switch (rng() % 28) {
        case 0:
          p.B = x;
          break;
        case 1:
          p.H = x;
          break;
        case 2:
          p.Hkv = x;
          break;
        case 3:
          p.Tq = x;
          break;
        case 4:
          p.Tk = x;
          break;
        case 5:
          p.D = x;
          break;
        case 6:
          p.Dv = x;
          break;
        case 7:
          (rng() % 2 ? p.q_strides.t : p.q_strides.h) = x;
          break;
        case 8:
          (rng() % 2 ? p.k_strides.b : p.v_strides.t) = x;
          break;
        case 9:
          (rng() % 2 ? p.out_strides.h : p.out_strides.b) = x;
          break;
        case 10:
          p.key_lengths = rng() % 2 ? lengths : nullptr;
          break;
        case 11:
          p.cu_seqlens_q = cu_q;
          p.cu_seqlens_k = rng() % 3 ? cu_k : nullptr;
          if (rng() % 2) p.q_strides.b = p.k_strides.b = p.v_strides.b = p.out_strides.b = 0;
          break;
        case 12:
          (rng() % 2 ? p.window_left : p.window_right) = x;
          break;
        case 13: {  // strides that stay inside the slopes buffer (it cannot be checked)
          const int64_t strides[] = {-1, 0, 1, 2, 3, 4, 7, 64, 100};
          p.slopes_stride_b = strides[rng() % std::size(strides)];
          break;
        }
        case 14:
          p.mask_kind = static_cast<int32_t>(rng() % 4) - (rng() % 5 == 0 ? 7 : 0);
          p.mask = rng() % 4 ? static_cast<const void*>(mask_b.data()) : nullptr;
          if (p.mask_kind == SLOPE_MASK_ADDITIVE && p.mask) p.mask = mask_f.data();
          p.mask_stride_t = 6;
          break;
        case 15:
          (rng() % 2 ? p.mask_stride_t : p.mask_stride_b) = x;
          break;
        case 16:
          p.scale = f;
          break;
        case 17:
          p.softcap = f;
          break;
        case 18:
          p.dropout_p = f;
          break;
        case 19:
          p.skip_tolerance = f;
          break;
        case 20:
          p.causal = static_cast<int32_t>(x);
          break;
        case 21:
          p.query_positions = static_cast<int32_t>(x);
          break;
        case 22:
          p.reserved = static_cast<int32_t>(rng() % 2);
          break;
        case 23:
          p.struct_size = static_cast<uint64_t>(x);
          break;
        case 24:
          sl = rng() % 2 ? nullptr : slopes.data() + 14;
          break;  // NaN from the 17th
        case 25:
          (rng() % 3 == 0 ? qp : rng() % 2 ? kp : vp) = nullptr;
          break;
        case 26:
          (rng() % 2 ? outp : lsep) = nullptr;
          break;
        default:
          p.query_positions = SLOPE_QUERY_POSITIONS_KEY_LENGTHS;
          break;
      }
    }
    const slope_status st = slope_attention_check(&p, qp, kp, vp, sl, nullptr);
    ASSERT_GE(st, SLOPE_OK);
    ASSERT_LE(st, SLOPE_ERROR_INTERNAL);
    ASSERT_NE(st, SLOPE_ERROR_INTERNAL) << slope_last_error();
    ASSERT_EQ(st == SLOPE_OK, std::string(slope_last_error()).empty())
        << "iteration " << iter << ": " << slope_last_error();
    if (st != SLOPE_OK) {
      ++n_err[st];
      if (outp && lsep) {
        out[0] = lse[0] = 123.0f;
        ASSERT_EQ(slope_attention_forward(&p, qp, kp, vp, sl, nullptr, outp, lsep), st);
        ASSERT_EQ(out[0], 123.0f);
        ASSERT_EQ(lse[0], 123.0f);
        ASSERT_EQ(slope_attention_backward(&p, qp, kp, vp, sl, nullptr, outp, dout.data(), lsep,
                                           dq.data(), dk.data(), dv.data(), dsl.data(), dsr.data()),
                  st);
      }
      continue;
    }
    ++n_ok;
    if (!outp || !lsep) {
      ASSERT_EQ(slope_attention_forward(&p, qp, kp, vp, sl, nullptr, outp, lsep),
                SLOPE_ERROR_NULL_POINTER);
      continue;
    }
    const Sizes n = sizes_of(p);
    const int64_t mask_room = p.mask_kind == SLOPE_MASK_NONE ? 0 : kBuf;
    if (n.q > kBuf || n.k > kBuf || n.v > kBuf || n.out > kBuf || n.lse > kBuf ||
        (sl && n.slopes > 16) || n.mask > mask_room)
      continue;  // valid, but larger than the buffers: not ours to run
    ++n_run;
    ASSERT_EQ(slope_attention_forward(&p, qp, kp, vp, sl, nullptr, outp, lsep), SLOPE_OK)
        << slope_last_error();
    for (int64_t e = 0; e < n.lse; ++e) ASSERT_FALSE(std::isnan(lse[static_cast<size_t>(e)]));
    const slope_status sb =
        slope_attention_backward(&p, qp, kp, vp, sl, nullptr, outp, dout.data(), lsep, dq.data(),
                                 dk.data(), dv.data(), dsl.data(), dsr.data());
    // Broadcast (overlapping) q, k or v are valid for the forward only.
    ASSERT_TRUE(sb == SLOPE_OK || sb == SLOPE_ERROR_INVALID_ARGUMENT) << slope_last_error();
  }
  std::printf("[ storm    ] %d valid (%d run); refused: %d invalid, %d null, %d struct_size\n",
              n_ok, n_run, n_err[SLOPE_ERROR_INVALID_ARGUMENT], n_err[SLOPE_ERROR_NULL_POINTER],
              n_err[SLOPE_ERROR_STRUCT_SIZE]);
  // The storm reached every path: each kind of refusal, valid problems, and runs.
  EXPECT_GT(n_err[SLOPE_ERROR_INVALID_ARGUMENT], 500);
  EXPECT_GT(n_err[SLOPE_ERROR_NULL_POINTER], 50);
  EXPECT_GT(n_err[SLOPE_ERROR_STRUCT_SIZE], 20);
  EXPECT_GT(n_ok, 100);
  EXPECT_GT(n_run, 100);
}

}  // namespace
