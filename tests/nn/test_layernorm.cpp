// LayerNorm: gradients with and without bias, an offset input, the saved statistics.
#include <cmath>

#include "gradcheck.h"
#include "nn/layernorm.h"

namespace slope::nn::testing {
namespace {

// x = {inp (B, T, C), weight (C)} or {inp, weight, bias (C)}.
struct LayerNorm {
  int64_t B, T, C;

  template <class Real>
  std::vector<Real> forward(const Tensors<Real>& x, std::vector<Real>* mean = nullptr,
                            std::vector<Real>* rstd = nullptr) const {
    std::vector<Real> out(static_cast<size_t>(B * T * C)), m(static_cast<size_t>(B * T)),
        s(static_cast<size_t>(B * T));
    layernorm_forward(out.data(), m.data(), s.data(), x[0].data(), x[1].data(),
                      x.size() > 2 ? x[2].data() : nullptr, B, T, C);
    if (mean) *mean = m;
    if (rstd) *rstd = s;
    return out;
  }
  template <class Real>
  void backward(Tensors<Real>& dx, const Tensors<Real>& x, const std::vector<Real>& dout) const {
    std::vector<Real> mean, rstd;
    forward(x, &mean, &rstd);
    layernorm_backward(dx[0].data(), dx[1].data(), dx.size() > 2 ? or_null(dx[2]) : nullptr,
                       dout.data(), x[0].data(), mean.data(), rstd.data(), x[1].data(), B, T, C);
  }
};

// A row of C terms is summed two or three times over; dweight sums B·T rows.
CheckOptions layernorm_tolerances(const LayerNorm& l) {
  return {fp32_tolerance(l.C), fp32_tolerance(l.C * l.B * l.T), kFdTolerance};
}

Tensors<double> layernorm_inputs(const LayerNorm& l, bool bias, double offset, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Tensors<double> x{random_vector(l.B * l.T * l.C, rng, offset - 1.0, offset + 1.0),
                    random_vector(l.C, rng, 0.5, 1.5)};
  if (bias) x.push_back(random_vector(l.C, rng));
  return x;
}

TEST(LayerNorm, WithBias) {
  const LayerNorm l{2, 3, 7};
  check_layer(l, layernorm_inputs(l, true, 0.0, 1), {"inp", "weight", "bias"}, {true, true, true},
              layernorm_tolerances(l));
}

TEST(LayerNorm, WithoutBias) {  // nanoGPT's bias=False
  const LayerNorm l{1, 4, 5};
  check_layer(l, layernorm_inputs(l, false, 0.0, 2), {"inp", "weight"}, {true, true},
              layernorm_tolerances(l));
}

TEST(LayerNorm, OffsetInput) {
  // Rows centred at 4: the two-pass variance loses nothing to the offset; float32 loses
  // eps·|x| ≈ 4 eps per input entry, relative to the row's spread of ~0.6.
  const LayerNorm l{2, 2, 33};
  CheckOptions tol = layernorm_tolerances(l);
  tol.fp32_out *= 8;
  tol.fp32_grad *= 8;
  check_layer(l, layernorm_inputs(l, true, 4.0, 3), {"inp", "weight", "bias"}, {true, true, true},
              tol);
}

TEST(LayerNorm, SavesMeanAndReciprocalStd) {
  const LayerNorm l{1, 2, 4};
  const Tensors<double> x{{1, 2, 3, 4, -1, -1, -1, -1}, {1, 1, 1, 1}};
  std::vector<double> mean, rstd;
  const std::vector<double> out = l.forward(x, &mean, &rstd);
  EXPECT_DOUBLE_EQ(mean[0], 2.5);
  EXPECT_DOUBLE_EQ(rstd[0], 1.0 / std::sqrt(1.25 + 1e-5));
  EXPECT_DOUBLE_EQ(mean[1], -1.0);
  EXPECT_DOUBLE_EQ(rstd[1], 1.0 / std::sqrt(1e-5));  // a constant row: eps keeps it finite
  for (int i = 4; i < 8; ++i) EXPECT_EQ(out[i], 0.0);
}

TEST(LayerNorm, RejectsMissingWeight) {
  std::vector<float> buf(8);
  EXPECT_THROW(layernorm_forward(buf.data(), buf.data(), buf.data(), buf.data(),
                                 static_cast<const float*>(nullptr), nullptr, 1, 2, 4),
               Error);
}

}  // namespace
}  // namespace slope::nn::testing
