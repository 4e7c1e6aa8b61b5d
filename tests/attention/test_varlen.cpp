// Packed sequences (cu_seqlens) and query positions (QueryPositions), beyond the per-element
// checks of test_kernels.cpp: a packed document computes exactly what it computes alone, the
// upper-left rule equals hand-built expectations, and with kKeyLengths the length of the KV
// buffer never changes the result.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <random>
#include <utility>

#include "attention/harness.h"

namespace slope::testing {
namespace {

// The kernels' forward and backward on a problem whose inputs may point into bigger buffers:
// outputs and gradients go to buffers as big as the instance's, at the same offsets (base_q,
// base_k: the first q and k row), so they index like the instance's own; lse is (H, Tq).
Golden run_at(const AttentionProblem& p, const AttentionInputs<float>& in, const Instance& x,
              int64_t base_q, int64_t base_k, cpu::Isa isa) {
  std::vector<float> out(static_cast<size_t>(x.out_size)), lse(static_cast<size_t>(p.H * p.Tq)),
      dq(static_cast<size_t>(x.q_size)), dk(static_cast<size_t>(x.k_size)),
      dv(static_cast<size_t>(x.v_size)), dsl(static_cast<size_t>(p.H)),
      dsr(static_cast<size_t>(p.H));
  validate_backward(p, in);
  const int64_t oq = base_q * p.out_strides.t;
  cpu::forward(isa, p, in, out.data() + oq, lse.data());
  cpu::backward(isa, p, in, out.data() + oq, x.dout.data() + oq, lse.data(),
                {dq.data() + base_q * p.q_strides.t, dk.data() + base_k * p.k_strides.t,
                 dv.data() + base_k * p.v_strides.t, dsl.data(), dsr.data()});
  auto widen = [](const std::vector<float>& a) { return std::vector<double>(a.begin(), a.end()); };
  return {widen(out), widen(lse), widen(dq), widen(dk), widen(dv), widen(dsl), widen(dsr), {}};
}

// Document b of a packed instance as a problem of its own (B = 1), reading the same memory.
Golden run_document_alone(const Instance& x, int64_t b, cpu::Isa isa) {
  const detail::RowGeometry rg = detail::row_geometry(x.p, b);
  AttentionProblem p = x.p;
  p.B = 1, p.Tq = rg.Tq, p.Tk = rg.Tk_rows;
  p.cu_seqlens_q = p.cu_seqlens_k = nullptr;
  AttentionInputs<float> in = x.inputs();
  in.q += rg.q, in.k += rg.k, in.v += rg.v;
  return run_at(p, in, x, x.cu_q[static_cast<size_t>(b)], x.cu_k[static_cast<size_t>(b)], isa);
}

// Largest |a − b| / max(|b|, tiny) over the elements [0, n) at offsets base + h·sh + r·st + d.
struct Diff {
  double abs = 0.0, rel = 0.0;
  void add(double a, double b) {
    if (a == b) return;  // equal infinities included
    abs = std::max(abs, std::abs(a - b));
    rel = std::max(rel, std::abs(a - b) / std::max(std::abs(b), 1e-30));
  }
};
void diff_rows(const std::vector<double>& a, const std::vector<double>& b, int64_t base,
               int64_t heads, int64_t sh, int64_t rows, int64_t st, int64_t n, Diff* d) {
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t e = 0; e < n; ++e) {
        const size_t at = static_cast<size_t>(base + h * sh + r * st + e);
        d->add(a[at], b[at]);
      }
}

// Every document of x run alone: out, lse, dq, dk and dv of the packed run must equal them
// (returned: the worst difference; bitwise is expected, since tiles never cross a document
// boundary and nothing in a document's arithmetic depends on the others), and each slope
// gradient the sum of the documents' within the rounding of those sums.
Diff expect_packed_equals_documents_alone(const Instance& x, cpu::Isa isa) {
  const AttentionProblem& p = x.p;
  const Golden packed = run_kernel(x, isa);
  Diff d;
  std::vector<double> sum_l(static_cast<size_t>(p.H)), sum_r(sum_l), abs_l(sum_l), abs_r(sum_l);
  for (int64_t b = 0; b < p.B; ++b) {
    const detail::RowGeometry rg = detail::row_geometry(p, b);
    if (rg.Tq == 0 || rg.Tk_rows == 0) {
      // Nothing to run alone: no queries (its dk, dv stay 0) or no keys (zero rows, lse −inf).
      for (int64_t h = 0; h < p.H; ++h)
        for (int64_t i = 0; i < rg.Tq; ++i)
          EXPECT_EQ(packed.lse[static_cast<size_t>(rg.lse + h * rg.lse_h + i)], -INFINITY);
      Diff zero;
      const std::vector<double> zeros(packed.out.size() + packed.dq.size() + packed.dk.size() +
                                      packed.dv.size());
      diff_rows(packed.out, zeros, rg.out, p.H, p.out_strides.h, rg.Tq, p.out_strides.t, p.Dv,
                &zero);
      diff_rows(packed.dq, zeros, rg.q, p.H, p.q_strides.h, rg.Tq, p.q_strides.t, p.D, &zero);
      diff_rows(packed.dk, zeros, rg.k, p.Hkv, p.k_strides.h, rg.Tk_rows, p.k_strides.t, p.D,
                &zero);
      diff_rows(packed.dv, zeros, rg.v, p.Hkv, p.v_strides.h, rg.Tk_rows, p.v_strides.t, p.Dv,
                &zero);
      EXPECT_EQ(zero.abs, 0.0) << "document " << b << " should give exact zeros";
      continue;
    }
    const Golden alone = run_document_alone(x, b, isa);
    diff_rows(packed.out, alone.out, rg.out, p.H, p.out_strides.h, rg.Tq, p.out_strides.t, p.Dv,
              &d);
    for (int64_t h = 0; h < p.H; ++h)
      for (int64_t i = 0; i < rg.Tq; ++i)
        d.add(packed.lse[static_cast<size_t>(rg.lse + h * rg.lse_h + i)],
              alone.lse[static_cast<size_t>(h * rg.Tq + i)]);
    diff_rows(packed.dq, alone.dq, rg.q, p.H, p.q_strides.h, rg.Tq, p.q_strides.t, p.D, &d);
    diff_rows(packed.dk, alone.dk, rg.k, p.Hkv, p.k_strides.h, rg.Tk_rows, p.k_strides.t, p.D, &d);
    diff_rows(packed.dv, alone.dv, rg.v, p.Hkv, p.v_strides.h, rg.Tk_rows, p.v_strides.t, p.Dv, &d);
    for (size_t h = 0; h < sum_l.size(); ++h) {
      sum_l[h] += alone.dsl[h], abs_l[h] += std::abs(alone.dsl[h]);
      sum_r[h] += alone.dsr[h], abs_r[h] += std::abs(alone.dsr[h]);
    }
  }
  // Per document the kernel sums the slope terms in double and rounds once to fp32; packed, it
  // adds the documents' double sums and rounds once: they differ by the roundings only.
  const double u = 0x1p-24 * (1.0 + 1e-6);
  for (size_t h = 0; h < sum_l.size(); ++h) {
    EXPECT_LE(std::abs(packed.dsl[h] - sum_l[h]), u * (std::abs(packed.dsl[h]) + abs_l[h]))
        << "dslopes_left[" << h << "]";
    if (!x.sr.empty()) {
      EXPECT_LE(std::abs(packed.dsr[h] - sum_r[h]), u * (std::abs(packed.dsr[h]) + abs_r[h]))
          << "dslopes_right[" << h << "]";
    }
  }
  return d;
}

Case packed_case(std::string name, bool causal, Bias bias) {
  Case c;
  c.name = std::move(name);
  c.H = 6, c.Hkv = 2, c.D = 32, c.Dv = 24, c.causal = causal, c.bias = bias;
  // Awkward lengths: empty, one, a tile ± 1, several tiles; Tq_b ≠ Tk_b; a document with no
  // queries and one with no keys.
  c.docs_q = {0, 1, 63, 64, 65, 200, 3, 64};
  c.docs_k = {1, 0, 65, 63, 200, 64, 64, 200};
  return c;
}

// The target: varlen with 8 packed documents equals each document alone (fp32, 1e-6
// relative). Measured: bitwise, on every instruction set, so that is what is asserted.
TEST(Varlen, EqualsEachDocumentRunAlone) {
  Case strided = packed_case("learned_strided", false, Bias::kLearned);
  strided.strided = true;
  Case upper_left = packed_case("alibi_upper_left", true, Bias::kAlibi);
  upper_left.positions = QueryPositions::kUpperLeft;
  for (const Case& c : {packed_case("alibi_causal", true, Bias::kAlibi), strided,
                        packed_case("nonsymmetric", false, Bias::kNonsymmetric), upper_left}) {
    const Instance x = make_instance(c);
    for (cpu::Isa isa : isas()) {
      const Diff d = expect_packed_equals_documents_alone(x, isa);
      std::printf("[varlen vs alone] %s [%s]: max abs diff %.3g, max rel diff %.3g\n",
                  c.name.c_str(), cpu::isa_name(isa), d.abs, d.rel);
      EXPECT_EQ(d.abs, 0.0) << c.name << " [" << cpu::isa_name(isa) << "]: not bitwise";
      EXPECT_LE(d.rel, 1e-6) << c.name << " [" << cpu::isa_name(isa) << "]";
    }
  }
}

// max_seqlen is a bound: 2^40 for both (no workspace of that size may be made; the C interface's
// bad-input storm found the kernels sizing them by it) gives the tight bound's results bit for
// bit, on every instruction set.
TEST(Varlen, AGenerousMaxSeqlenChangesNothing) {
  const Instance x = make_instance(packed_case("alibi_causal", true, Bias::kAlibi));
  Instance loose = x;
  loose.p.cu_seqlens_q = loose.cu_q.data(), loose.p.cu_seqlens_k = loose.cu_k.data();
  loose.p.Tq = loose.p.Tk = int64_t{1} << 40;
  for (cpu::Isa isa : isas()) {
    const Golden tight = run_kernel(x, isa), wide = run_kernel(loose, isa);
    EXPECT_EQ(tight.out, wide.out) << cpu::isa_name(isa);
    EXPECT_EQ(tight.lse, wide.lse) << cpu::isa_name(isa);
    EXPECT_EQ(tight.dq, wide.dq) << cpu::isa_name(isa);
    EXPECT_EQ(tight.dk, wide.dk) << cpu::isa_name(isa);
    EXPECT_EQ(tight.dv, wide.dv) << cpu::isa_name(isa);
    EXPECT_EQ(tight.dsl, wide.dsl) << cpu::isa_name(isa);
  }
}

// ---- Query positions --------------------------------------------------------------------------

// Offset of key row j of kv head hk in batch row b (padded layouts).
int64_t key_at(const Strides& s, int64_t b, int64_t hk, int64_t j) {
  return b * s.b + hk * s.h + j * s.t;
}

// The instance with its keys in buffers of Tk slots (contiguous): row b's first key_lengths[b]
// slots hold base's keys, the others noise that differs per buffer; everything else is base's.
Instance in_buffer(const Instance& base, int64_t Tk, uint64_t seed) {
  Instance x = base;
  AttentionProblem& p = x.p;
  p.Tk = Tk;
  p.k_strides = contiguous_strides(p.Hkv, Tk, p.D);
  p.v_strides = contiguous_strides(p.Hkv, Tk, p.Dv);
  p.key_lengths = x.key_lengths.data();
  x.k_size = p.B * p.k_strides.b, x.v_size = p.B * p.v_strides.b;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 3.0f);
  x.k.resize(static_cast<size_t>(x.k_size));
  x.v.resize(static_cast<size_t>(x.v_size));
  for (float& e : x.k) e = noise(rng);
  for (float& e : x.v) e = noise(rng);
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t hk = 0; hk < p.Hkv; ++hk)
      for (int64_t j = 0; j < x.key_lengths[static_cast<size_t>(b)]; ++j) {
        std::copy_n(&base.k[static_cast<size_t>(key_at(base.p.k_strides, b, hk, j))], p.D,
                    &x.k[static_cast<size_t>(key_at(p.k_strides, b, hk, j))]);
        std::copy_n(&base.v[static_cast<size_t>(key_at(base.p.v_strides, b, hk, j))], p.Dv,
                    &x.v[static_cast<size_t>(key_at(p.v_strides, b, hk, j))]);
      }
  return x;
}

// err / bound, 0 where both are 0 (inf where only the bound is).
double ratio(double err, double bound) { return err == 0.0 ? 0.0 : err / bound; }

// dk (or dv) of the first rows[b] keys of every (b, kv head) in two layouts: their worst
// |difference|, or, given bound (laid out like b's), the worst difference / bound.
double worst_key_rows(const std::vector<double>& a, const Strides& sa, const std::vector<double>& b,
                      const Strides& sb, const AttentionProblem& p,
                      const std::vector<int64_t>& rows, int64_t n,
                      const std::vector<double>* bound = nullptr) {
  double worst = 0.0;
  for (int64_t bb = 0; bb < p.B; ++bb)
    for (int64_t hk = 0; hk < p.Hkv; ++hk)
      for (int64_t j = 0; j < rows[static_cast<size_t>(bb)]; ++j)
        for (int64_t d = 0; d < n; ++d) {
          const size_t ia = static_cast<size_t>(key_at(sa, bb, hk, j) + d);
          const size_t ib = static_cast<size_t>(key_at(sb, bb, hk, j) + d);
          const double e = std::abs(a[ia] - b[ib]);
          worst = std::max(worst, bound ? ratio(e, (*bound)[ib]) : e);
        }
  return worst;
}

std::vector<int64_t> key_rows(const Instance& x) {
  return std::vector<int64_t>(x.key_lengths.begin(), x.key_lengths.end());
}

// Every result of `got` (keys in a buffer) equals `want` (the same keys in base's buffer)
// bitwise, and the gradients of the buffer's slots past each row's keys are 0.
void expect_same_results(const Golden& got, const Instance& buf, const Golden& want,
                         const Instance& base, const std::string& where) {
  EXPECT_EQ(got.out, want.out) << where;
  EXPECT_EQ(got.lse, want.lse) << where;
  EXPECT_EQ(got.dq, want.dq) << where;
  EXPECT_EQ(got.dsl, want.dsl) << where;
  EXPECT_EQ(got.dsr, want.dsr) << where;
  const AttentionProblem& p = buf.p;
  EXPECT_EQ(worst_key_rows(got.dk, p.k_strides, want.dk, base.p.k_strides, p, key_rows(base), p.D),
            0.0)
      << where << " dk";
  EXPECT_EQ(worst_key_rows(got.dv, p.v_strides, want.dv, base.p.v_strides, p, key_rows(base), p.Dv),
            0.0)
      << where << " dv";
  double past = 0.0;  // slots no query sees
  for (int64_t b = 0; b < p.B; ++b)
    for (int64_t hk = 0; hk < p.Hkv; ++hk)
      for (int64_t j = buf.key_lengths[static_cast<size_t>(b)]; j < p.Tk; ++j)
        for (int64_t d = 0; d < p.D; ++d)
          past = std::max(past,
                          std::abs(got.dk[static_cast<size_t>(key_at(p.k_strides, b, hk, j) + d)]));
  EXPECT_EQ(past, 0.0) << where << ": dk of slots past the keys";
}

// With kKeyLengths the buffer's length never changes the result: the same keys in buffers of
// several lengths give bitwise the same outputs and gradients, on every instruction set.
TEST(KeyLengths, BufferLengthNeverChangesTheResult) {
  Case decode;
  decode.name = "alibi_causal_gqa";
  decode.B = 3, decode.H = 6, decode.Hkv = 2, decode.Tq = 5, decode.Tk = 70, decode.D = 32;
  decode.Dv = 32, decode.causal = true, decode.bias = Bias::kAlibi;
  decode.key_lengths = {13, 0, 70};
  Case chunk = decode;  // a chunk of 40 queries, both sides visible, learned slopes
  chunk.name = "learned_noncausal";
  chunk.B = 2, chunk.Tq = 40, chunk.Tk = 100, chunk.causal = false, chunk.bias = Bias::kLearned;
  chunk.key_lengths = {100, 7};
  for (Case c : {decode, chunk}) {
    c.positions = QueryPositions::kKeyLengths;
    const Instance base = make_instance(c);
    for (int64_t Tk : {c.Tk + 1, int64_t{128}, int64_t{129}, int64_t{1000}}) {
      const Instance buf = in_buffer(base, Tk, static_cast<uint64_t>(Tk));
      for (cpu::Isa isa : isas())
        expect_same_results(run_kernel(buf, isa), buf, run_kernel(base, isa), base,
                            c.name + " Tk=" + std::to_string(Tk) + " [" + cpu::isa_name(isa) + "]");
    }
  }
}

// The case: 3 new queries in a 64-slot buffer holding 13 keys, causal. With
// kKeyLengths they see only their own past, as on the buffer sliced to 13 keys; the buffer-end
// rule (kLowerRight) put them at positions 61..63, where each saw all 13 keys.
TEST(KeyLengths, NewQueriesEndWhereTheirKeysEnd) {
  Case c;
  c.name = "decode_3_of_13";
  c.B = 1, c.H = 4, c.Hkv = 4, c.Tq = 3, c.Tk = 13, c.D = 16, c.Dv = 16, c.causal = true;
  c.bias = Bias::kAlibi;
  c.key_lengths = {13};
  const Instance sliced = make_instance(c);  // kLowerRight on exactly the 13 keys
  Instance buf = in_buffer(sliced, 64, 7);
  buf.p.query_positions = QueryPositions::kKeyLengths;
  Instance old_rule = buf;
  old_rule.p.key_lengths = old_rule.key_lengths.data();
  old_rule.p.query_positions = QueryPositions::kLowerRight;
  for (cpu::Isa isa : isas()) {
    const Golden want = run_kernel(sliced, isa);
    expect_same_results(run_kernel(buf, isa), buf, want, sliced,
                        std::string("kKeyLengths [") + cpu::isa_name(isa) + "]");
    int64_t mism = 0;
    const double off = max_abs_diff(run_kernel(old_rule, isa).out, want.out, &mism);
    std::printf("[key lengths] buffer-end rule is off by %.3g [%s]\n", off, cpu::isa_name(isa));
    EXPECT_GT(off, 0.05) << "the buffer-end rule should differ here (queries see the future)";
  }
}

// One query against a 32,768-slot buffer holding 300 keys (H = 12 standard slopes, D = 16):
// with kKeyLengths its distances are those of the 300 keys, so the result is that of the
// sliced buffer bitwise and within the error bound of the float64 reference. (The buffer-end
// rule made every distance ~32,000 too long; its error is printed for comparison.)
TEST(KeyLengths, OneQueryAgainstA32768SlotBuffer) {
  Case c;
  c.name = "decode_1_of_300";
  c.B = 1, c.H = 12, c.Hkv = 12, c.Tq = 1, c.Tk = 300, c.D = 16, c.Dv = 16, c.causal = true;
  c.bias = Bias::kAlibi;
  c.key_lengths = {300};
  c.positions = QueryPositions::kKeyLengths;
  const Instance sliced = make_instance(c);
  const Golden gold = run_reference<double>(sliced);
  const AttentionErrorBounds bound =
      attention_error_bounds(sliced.p, sliced.inputs(), sliced.dout.data());
  const Instance buf = in_buffer(sliced, 32768, 11);
  Instance old_rule = buf;
  old_rule.p.key_lengths = old_rule.key_lengths.data();
  old_rule.p.query_positions = QueryPositions::kLowerRight;
  for (cpu::Isa isa : isas()) {
    const std::string where = std::string("[") + cpu::isa_name(isa) + "]";
    const Golden got = run_kernel(buf, isa);
    expect_same_results(got, buf, run_kernel(sliced, isa), sliced, where);
    double worst = 0.0, err = 0.0;
    for (size_t i = 0; i < got.out.size(); ++i) {
      err = std::max(err, std::abs(got.out[i] - gold.out[i]));
      worst = std::max(worst, ratio(std::abs(got.out[i] - gold.out[i]), bound.out[i]));
      worst = std::max(worst, ratio(std::abs(got.dq[i] - gold.dq[i]), bound.dq[i]));
    }
    for (size_t i = 0; i < got.lse.size(); ++i)
      worst = std::max(worst, ratio(std::abs(got.lse[i] - gold.lse[i]), bound.lse[i]));
    const std::vector<int64_t> rows = key_rows(sliced);
    worst = std::max(worst, worst_key_rows(got.dk, buf.p.k_strides, gold.dk, sliced.p.k_strides,
                                           buf.p, rows, c.D, &bound.dk));
    worst = std::max(worst, worst_key_rows(got.dv, buf.p.v_strides, gold.dv, sliced.p.v_strides,
                                           buf.p, rows, c.Dv, &bound.dv));
    for (size_t h = 0; h < got.dsl.size(); ++h)
      worst = std::max({worst, ratio(std::abs(got.dsl[h] - gold.dsl[h]), bound.dslopes_left[h]),
                        ratio(std::abs(got.dsr[h] - gold.dsr[h]), bound.dslopes_right[h])});
    EXPECT_LE(worst, 1.0) << where << ": worst error / bound";
    const Golden old = run_kernel(old_rule, isa);
    double old_err = 0.0;  // the same function (one query sees every key), fp32 distances ~32k
    for (size_t i = 0; i < old.out.size(); ++i)
      old_err = std::max(old_err, std::abs(old.out[i] - gold.out[i]));
    std::printf(
        "[key lengths] 1 query, 32768-slot buffer, 300 keys %s: out error %.3g "
        "(kKeyLengths) vs %.3g (buffer-end rule); worst error/bound %.3g\n",
        where.c_str(), err, old_err, worst);
  }
}

// kUpperLeft, causal: query i sees keys j <= i, so it equals kLowerRight on the first Tq keys.
TEST(UpperLeft, CausalEqualsLowerRightOnTheFirstTqKeys) {
  Case c;
  c.name = "upper_left_causal";
  c.B = 2, c.H = 4, c.Hkv = 2, c.Tq = 70, c.Tk = 200, c.D = 32, c.Dv = 32, c.causal = true;
  c.bias = Bias::kAlibi;
  c.positions = QueryPositions::kUpperLeft;
  Instance x = make_instance(c);
  x.key_lengths.assign(static_cast<size_t>(c.B), static_cast<int32_t>(c.Tq));
  Instance sliced = in_buffer(x, c.Tq, 3);  // the first Tq keys of each row, no noise slots
  sliced.p.key_lengths = nullptr;
  sliced.p.query_positions = QueryPositions::kLowerRight;
  x.key_lengths.clear();
  const Golden want = run_reference<double>(sliced);
  const Golden gold = run_reference<double>(x);
  const AttentionErrorBounds bound = attention_error_bounds(x.p, x.inputs(), x.dout.data());
  const std::vector<int64_t> rows(static_cast<size_t>(c.B), c.Tq);
  int64_t mism = 0;
  EXPECT_LE(max_abs_diff(gold.out, want.out, &mism), 1e-12);
  EXPECT_LE(max_abs_diff(gold.lse, want.lse, &mism), 1e-12);
  EXPECT_LE(max_abs_diff(gold.dq, want.dq, &mism), 1e-12);
  EXPECT_LE(max_abs_diff(gold.dsl, want.dsl, &mism), 1e-10);
  EXPECT_EQ(mism, 0);
  EXPECT_LE(worst_key_rows(gold.dk, x.p.k_strides, want.dk, sliced.p.k_strides, x.p, rows, c.D),
            1e-12);
  EXPECT_LE(
      max_abs(std::vector<double>(gold.dk.begin() + c.Tq * c.D, gold.dk.begin() + c.Tk * c.D)), 0.0)
      << "keys past the last query are never seen";
  for (cpu::Isa isa : isas()) {  // the kernels, against the hand-built expectation
    const Golden got = run_kernel(x, isa);
    double worst = 0.0;
    for (size_t i = 0; i < got.out.size(); ++i)
      worst = std::max({worst, ratio(std::abs(got.out[i] - want.out[i]), bound.out[i]),
                        ratio(std::abs(got.dq[i] - want.dq[i]), bound.dq[i])});
    for (size_t i = 0; i < got.lse.size(); ++i)
      worst = std::max(worst, ratio(std::abs(got.lse[i] - want.lse[i]), bound.lse[i]));
    // bound.dk and .dv are laid out like x (got): got goes second.
    worst = std::max(worst, worst_key_rows(want.dk, sliced.p.k_strides, got.dk, x.p.k_strides, x.p,
                                           rows, c.D, &bound.dk));
    worst = std::max(worst, worst_key_rows(want.dv, sliced.p.v_strides, got.dv, x.p.v_strides, x.p,
                                           rows, c.Dv, &bound.dv));
    for (size_t h = 0; h < got.dsl.size(); ++h)
      worst = std::max(worst, ratio(std::abs(got.dsl[h] - want.dsl[h]), bound.dslopes_left[h]));
    EXPECT_LE(worst, 1.0) << cpu::isa_name(isa);
  }
}

// kUpperLeft without causality: the ALiBi bias measured from position i, written out as an
// additive mask −m_left·(i − j) / −m_right·(j − i) (−inf for a masked side) on a problem with
// no slopes, gives the same float64 results (Tq > Tk: the rule matters on both sides).
TEST(UpperLeft, EqualsItsBiasAsAnAdditiveMask) {
  Case c;
  c.name = "upper_left_learned";
  c.B = 2, c.H = 3, c.Hkv = 3, c.Tq = 9, c.Tk = 5, c.D = 4, c.Dv = 3, c.bias = Bias::kLearned;
  c.positions = QueryPositions::kUpperLeft;
  Instance x = make_instance(c);
  // Slopes with few bits, so that the fp32 mask holds −m·d exactly.
  x.sl = {0.5f, 0.25f, 0.125f};
  x.sr = {0.375f, 0.0625f, INFINITY};
  Instance y = x;
  y.p.query_positions = QueryPositions::kLowerRight;
  y.sl.clear(), y.sr.clear();
  y.mask_f.resize(static_cast<size_t>(c.H * c.Tq * c.Tk));
  for (int64_t h = 0; h < c.H; ++h)
    for (int64_t i = 0; i < c.Tq; ++i)
      for (int64_t j = 0; j < c.Tk; ++j) {
        const float m = j <= i ? x.sl[static_cast<size_t>(h)] : x.sr[static_cast<size_t>(h)];
        const float d = static_cast<float>(j <= i ? i - j : j - i);
        y.mask_f[static_cast<size_t>((h * c.Tq + i) * c.Tk + j)] =
            std::isinf(m) && d > 0 ? -INFINITY : -m * d;
      }
  y.p.mask_kind = MaskKind::kAdditive;
  y.p.mask = y.mask_f.data();
  y.p.mask_stride_b = 0, y.p.mask_stride_h = c.Tq * c.Tk, y.p.mask_stride_t = c.Tk;
  const Golden a = run_reference<double>(x), b = run_reference<double>(y);
  int64_t mism = 0;
  for (auto [got, want] :
       {std::pair{&a.out, &b.out}, std::pair{&a.lse, &b.lse}, std::pair{&a.dq, &b.dq},
        std::pair{&a.dk, &b.dk}, std::pair{&a.dv, &b.dv}})
    EXPECT_LE(max_abs_diff(*got, *want, &mism), 1e-12);
  EXPECT_EQ(mism, 0);
}

}  // namespace
}  // namespace slope::testing
