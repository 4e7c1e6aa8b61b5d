// The linear layer: gradients with and without bias at awkward sizes, and a case large enough
// for OpenBLAS's blocked kernels (differences sampled there).
#include "gradcheck.h"
#include "nn/matmul.h"

namespace slope::nn::testing {
namespace {

// x = {inp (B, T, C), weight (OC, C)} or {inp, weight, bias (OC)}.
struct Matmul {
  int64_t B, T, C, OC;

  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x) const {
    std::vector<Real> out(static_cast<size_t>(B * T * OC));
    matmul_forward(out.data(), x[0].data(), x[1].data(), x.size() > 2 ? x[2].data() : nullptr, B, T,
                   C, OC);
    return out;
  }
  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>& x, const std::vector<Real>& dout) const {
    matmul_backward(dx[0].data(), dx[1].data(), dx.size() > 2 ? or_null(dx[2]) : nullptr,
                    dout.data(), x[0].data(), x[1].data(), B, T, C, OC);
  }
};

Tensors<double> matmul_inputs(const Matmul& m, bool bias, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensors<double> x{random_vector(m.B * m.T * m.C, rng), random_vector(m.OC * m.C, rng)};
  if (bias) x.push_back(random_vector(m.OC, rng));
  return x;
}

// out sums C products; dinp sums OC, dweight and dbias sum B·T.
CheckOptions matmul_tolerances(const Matmul& m) {
  return {fp32_tolerance(m.C), fp32_tolerance(std::max(m.OC, m.B * m.T)), kFdTolerance};
}

TEST(Matmul, WithBias) {
  const Matmul m{2, 3, 5, 7};
  check_layer(m, matmul_inputs(m, true, 1), {"inp", "weight", "bias"}, {true, true, true},
              matmul_tolerances(m));
}

TEST(Matmul, WithoutBias) {  // nanoGPT's bias=False, and the tied LM head
  const Matmul m{1, 1, 3, 1};
  check_layer(m, matmul_inputs(m, false, 2), {"inp", "weight"}, {true, true}, matmul_tolerances(m));
}

TEST(Matmul, BlockedSizes) {
  const Matmul m{3, 37, 70, 45};
  CheckOptions tol = matmul_tolerances(m);
  tol.fd_every = 97;
  check_layer(m, matmul_inputs(m, true, 3), {"inp", "weight", "bias"}, {true, true, true}, tol);
}

// GradWrite::overwrite: dinp = dout·weight without reading dinp (β = 0: stale NaN vanish), the
// same bits as accumulating into zeros; dweight and dbias still accumulate.
TEST(Matmul, OverwriteNeverReadsTheOldInputGradient) {
  const int64_t B = 2, T = 5, C = 7, OC = 9;
  std::mt19937_64 rng(4);
  const std::vector<float> dout = cast<float>(random_vector(B * T * OC, rng)),
                           inp = cast<float>(random_vector(B * T * C, rng)),
                           w = cast<float>(random_vector(OC * C, rng));
  std::vector<float> acc(B * T * C, 0.0f), over(acc.size(), std::nanf("")), dw1(OC * C, 0.5f),
      dw2(dw1), db1(OC, 0.25f), db2(db1);
  matmul_backward(acc.data(), dw1.data(), db1.data(), dout.data(), inp.data(), w.data(), B, T, C,
                  OC);
  matmul_backward(over.data(), dw2.data(), db2.data(), dout.data(), inp.data(), w.data(), B, T, C,
                  OC, GradWrite::overwrite);
  EXPECT_EQ(acc, over);
  EXPECT_EQ(dw1, dw2);
  EXPECT_EQ(db1, db2);
}

TEST(Matmul, RejectsBadSizes) {
  std::vector<float> buf(16);
  EXPECT_THROW(matmul_forward(buf.data(), buf.data(), buf.data(), nullptr, 1, 0, 4, 4), Error);
}

}  // namespace
}  // namespace slope::nn::testing
