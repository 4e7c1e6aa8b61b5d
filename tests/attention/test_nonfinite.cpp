// Hostile numbers: a key or value a row cannot see never changes that row, and a query row or
// dO row a key cannot be seen from never changes that key's gradients, in the forward and the
// backward — even when they hold NaN or ±inf (0·NaN = NaN would otherwise leak them through a
// tile that crosses the mask). Invisible means masked by causality, a masked ALiBi side, the
// window, the key length, the explicit mask or another document; the Scorer of the reference
// (scorer.h) says which pairs are visible. Compared exactly (==, so ±0 agree) with the same
// problem on finite inputs: leaving a 0-weight term out and adding it as 0·x round alike.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "attention/harness.h"
#include "attention/kernel_cases.h"
#include "attention/scorer.h"

namespace slope::testing {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<Case> cases() {
  std::vector<Case> cs;
  auto add = [&](Case c, auto&& set) {
    set(c);
    cs.push_back(std::move(c));
  };
  auto none = [](Case&) {};
  // The first example: causal, one 8-key tile; rows 0–6 cannot see key 7.
  add(mk("causal_T8", 1, 1, 1, 8, 8, 16, 16, true, Bias::kNone), none);
  // The second: a bool mask per head, grouped queries, T = 130 (three key tiles).
  add(mk("bool_mask_gqa", 2, 4, 2, 130, 130, 16, 16, false, Bias::kNone),
      [](Case& c) { c.mask = MaskKind::kBool; });
  add(mk("additive_mask_alibi", 2, 2, 2, 70, 97, 16, 16, false, Bias::kAlibi),
      [](Case& c) { c.mask = MaskKind::kAdditive; });
  add(mk("causal_alibi_ragged_softcap", 3, 4, 1, 33, 97, 20, 12, true, Bias::kAlibi),
      [](Case& c) { c.ragged = true, c.softcap = 5.0f; });
  add(mk("window_symmetric", 1, 2, 2, 90, 90, 16, 16, false, Bias::kSymmetric),
      [](Case& c) { c.window_left = 5, c.window_right = 3; });
  add(mk("nonsymmetric", 1, 4, 4, 80, 80, 16, 16, false, Bias::kNonsymmetric), none);
  add(mk("packed_causal_learned", 1, 2, 2, 1, 1, 16, 16, true, Bias::kLearned), [](Case& c) {
    c.docs_q = {5, 40, 0, 77};
    c.docs_k = {9, 40, 3, 77};
  });
  return cs;
}

// Visibility of (b, h, i, j) by the reference's definition.
bool visible(const Instance& x, int64_t b, int64_t h, int64_t i, int64_t j) {
  const AttentionInputs<float> in = x.inputs();
  const detail::Scorer<float> sc{x.p, in};
  float s = 0.0f;
  return sc.visible(detail::row_geometry(x.p, b), b, h, i, j, &s);
}

// The key (or query row) poisoned in trial t of a batch row with n of them: the last (past the
// key length if any), the first, the middle, and the two sides of the first tile boundary; −1
// where n is too short for that trial.
constexpr int kTrials = 5;
int64_t poisoned_index(int t, int64_t n) {
  const int64_t at[kTrials] = {n - 1, 0, n / 2, 63, 64};
  return at[t] < n ? at[t] : -1;
}

// Whether got and want agree on elements [at, at + n); the first difference is reported with
// where() (built only then: the tests compare every row of every trial).
template <class Where>
bool equal_rows(const std::vector<double>& got, const std::vector<double>& want, int64_t at,
                int64_t n, const char* what, Where&& where) {
  for (int64_t d = 0; d < n; ++d) {
    const double g = got[static_cast<size_t>(at + d)], w = want[static_cast<size_t>(at + d)];
    if (g != w) {
      ADD_FAILURE() << where() << " " << what << " element " << d << ": " << g << " != " << w;
      return false;
    }
  }
  return true;
}

class NonFinite : public ::testing::TestWithParam<Case> {};

std::string describe(const Case& c, cpu::Isa isa, const char* which, float bad, int t) {
  return c.name + " " + cpu::isa_name(isa) + " " + which + "=" + std::to_string(bad) + " trial " +
         std::to_string(t);
}

// NaN or ±inf in one key or value row per (batch row, kv head): every row that cannot see it
// keeps its out, lse and dq.
TEST_P(NonFinite, InvisibleKeysAndValuesNeverReachARow) {
  int64_t checked = 0;
  for (cpu::Isa isa : isas())
    for (const char* which : {"v", "k"})
      for (float bad : {kNaN, -kInf})
        for (int t = 0; t < kTrials; ++t) {
          Case c = GetParam();
          // A non-finite key norm may change which far tiles the skip bound drops (within its
          // tolerance, not a leak): compare with skipping off when keys are poisoned.
          if (which[0] == 'k') c.skip_tolerance = 0.0f;
          const Instance clean = make_instance(c);
          Instance x = make_instance(c);
          const AttentionProblem& p = x.p;
          const bool on_v = which[0] == 'v';
          for (int64_t b = 0; b < p.B; ++b) {
            const detail::RowGeometry rg = detail::row_geometry(p, b);
            const int64_t j = poisoned_index(t, rg.Tk_rows);
            for (int64_t hk = 0; hk < p.Hkv && j >= 0; ++hk) {
              float* row =
                  on_v ? &x.v[static_cast<size_t>(rg.v + hk * p.v_strides.h + j * p.v_strides.t)]
                       : &x.k[static_cast<size_t>(rg.k + hk * p.k_strides.h + j * p.k_strides.t)];
              row[(j * 7) % (on_v ? p.Dv : p.D)] = bad;
            }
          }
          const Golden want = run_kernel(clean, isa), got = run_kernel(x, isa);
          for (int64_t b = 0; b < p.B; ++b) {
            const detail::RowGeometry rg = detail::row_geometry(p, b);
            const int64_t j = poisoned_index(t, rg.Tk_rows);
            for (int64_t h = 0; h < p.H; ++h)
              for (int64_t i = 0; i < rg.Tq; ++i) {
                if (j >= 0 && visible(x, b, h, i, j)) continue;
                auto where = [&] {
                  return describe(c, isa, which, bad, t) + " b" + std::to_string(b) + " h" +
                         std::to_string(h) + " i" + std::to_string(i);
                };
                if (!equal_rows(got.out, want.out,
                                rg.out + h * p.out_strides.h + i * p.out_strides.t, p.Dv, "out",
                                where))
                  return;
                if (!equal_rows(got.lse, want.lse, rg.lse + h * rg.lse_h + i, 1, "lse", where))
                  return;
                if (!equal_rows(got.dq, want.dq, rg.q + h * p.q_strides.h + i * p.q_strides.t, p.D,
                                "dq", where))
                  return;
                checked += j >= 0;
              }
          }
        }
  EXPECT_GT(checked, 0) << GetParam().name << ": no row is blind to a poisoned key";
}

// NaN or ±inf in one query row or dO row per batch row (head 0): every key it cannot see keeps
// its dk and dv, and every other row keeps its out, lse and dq.
TEST_P(NonFinite, InvisibleQueriesAndOutputGradientsNeverReachAKey) {
  int64_t checked = 0;
  for (cpu::Isa isa : isas())
    for (const char* which : {"dout", "q"})
      for (float bad : {kNaN, kInf})
        for (int t = 0; t < kTrials; ++t) {
          Case c = GetParam();
          if (which[0] == 'q') c.skip_tolerance = 0.0f;  // a non-finite query norm: as above
          const Instance clean = make_instance(c);
          Instance x = make_instance(c);
          const AttentionProblem& p = x.p;
          const bool on_q = which[0] == 'q';
          for (int64_t b = 0; b < p.B; ++b) {
            const detail::RowGeometry rg = detail::row_geometry(p, b);
            const int64_t i = poisoned_index(t, rg.Tq);
            if (i < 0) continue;
            float* row = on_q ? &x.q[static_cast<size_t>(rg.q + i * p.q_strides.t)]
                              : &x.dout[static_cast<size_t>(rg.out + i * p.out_strides.t)];
            row[(i * 5) % (on_q ? p.D : p.Dv)] = bad;
          }
          const Golden want = run_kernel(clean, isa), got = run_kernel(x, isa);
          for (int64_t b = 0; b < p.B; ++b) {
            const detail::RowGeometry rg = detail::row_geometry(p, b);
            const int64_t i_bad = poisoned_index(t, rg.Tq);
            auto at = [&] { return describe(c, isa, which, bad, t) + " b" + std::to_string(b); };
            for (int64_t j = 0; j < rg.Tk_rows; ++j) {
              if (i_bad >= 0 && visible(x, b, 0, i_bad, j)) continue;
              auto where = [&] { return at() + " j" + std::to_string(j); };
              for (int64_t hk = 0; hk < p.Hkv; ++hk) {
                if (!equal_rows(got.dk, want.dk, rg.k + hk * p.k_strides.h + j * p.k_strides.t, p.D,
                                "dk", where))
                  return;
                if (!equal_rows(got.dv, want.dv, rg.v + hk * p.v_strides.h + j * p.v_strides.t,
                                p.Dv, "dv", where))
                  return;
              }
              checked += i_bad >= 0;
            }
            for (int64_t h = 0; h < p.H; ++h)
              for (int64_t i = 0; i < rg.Tq; ++i) {
                if (h == 0 && i == i_bad) continue;
                auto where = [&] {
                  return at() + " h" + std::to_string(h) + " i" + std::to_string(i);
                };
                if (!equal_rows(got.out, want.out,
                                rg.out + h * p.out_strides.h + i * p.out_strides.t, p.Dv, "out",
                                where))
                  return;
                if (!equal_rows(got.lse, want.lse, rg.lse + h * rg.lse_h + i, 1, "lse", where))
                  return;
                // A row's dq reads its own dO and q only (with k, v and its own lse).
                if (!equal_rows(got.dq, want.dq, rg.q + h * p.q_strides.h + i * p.q_strides.t, p.D,
                                "dq", where))
                  return;
              }
          }
        }
  EXPECT_GT(checked, 0) << GetParam().name << ": every key is seen by the poisoned row";
}

INSTANTIATE_TEST_SUITE_P(Attention, NonFinite, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Case>& i) { return i.param.name; });

}  // namespace
}  // namespace slope::testing
