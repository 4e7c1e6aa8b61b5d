// Packed sequences (cu_seqlens) and query positions (QueryPositions), beyond the per-element
// checks of test_kernels.cpp: a packed document computes exactly what it computes alone, the
// upper-left rule equals hand-built expectations, and with kKeyLengths the length of the KV
// buffer never changes the result.
#include <gtest/gtest.h>

#include <cstdio>

#include "attention/harness.h"

namespace slope::testing {
namespace {

std::vector<cpu::Isa> isas() {
  std::vector<cpu::Isa> r;
  for (cpu::Isa i : {cpu::Isa::kGeneric, cpu::Isa::kAvx2, cpu::Isa::kAvx512})
    if (cpu::isa_supported(i)) r.push_back(i);
  return r;
}

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
  return {widen(out), widen(lse), widen(dq), widen(dk), widen(dv), widen(dsl), widen(dsr)};
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
    diff_rows(packed.dv, alone.dv, rg.v, p.Hkv, p.v_strides.h, rg.Tk_rows, p.v_strides.t, p.Dv,
              &d);
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

}  // namespace
}  // namespace slope::testing
