// `--dtype bf16` through the trainer (nn/bf16.h): a few steps of the tiny GPT with bf16 GEMM
// inputs start at fp32's loss within a first-order bound and train like it; the train state
// records the dtype, and a bf16 run resumes in fp32 (the checkpoints are float32). Needs a bf16
// matmul from oneDNN (native, or emulated on AVX-512 with SLOPE_BF16_EMULATE=1, set here);
// skips on AVX2-only machines.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "files/json_file.h"
#include "nn/bf16.h"
#include "train/trainer.h"
#include "train_testing.h"

namespace slope::train::testing {
namespace {

struct Losses final : TrainObserver {
  std::vector<double> steps;
  void on_step(const StepReport& s) override { steps.push_back(s.loss); }
};

class Bf16TrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!nn::bf16_matmul_available())
      GTEST_SKIP() << "oneDNN cannot make a bf16 matmul on this CPU (it needs AVX512_CORE)";
    if (!nn::bf16_native()) setenv("SLOPE_BF16_EMULATE", "1", 1);
    prepare_names(dir_ / "data");
  }
  TrainOptions options(const std::string& out, nn::GemmDtype dtype) const {
    TrainOptions o = tiny_options(dir_ / "data", dir_ / out);
    o.max_iters = 8, o.eval_interval = 8, o.lr = 3e-3, o.dtype = dtype;
    return o;
  }
  TempDir dir_;
};

TEST_F(Bf16TrainingTest, StartsAtFp32sLossAndTrainsLikeIt) {
  Losses fp32, bf16;
  train_gpt(options("fp32", nn::GemmDtype::fp32), &fp32);
  train_gpt(options("bf16", nn::GemmDtype::bf16), &bf16);
  EXPECT_EQ(nn::gemm_dtype(), nn::GemmDtype::fp32);  // the run's dtype ends with the run
  std::printf("step losses fp32 %.6f .. %.6f, bf16 %.6f .. %.6f\n", fp32.steps.front(),
              fp32.steps.back(), bf16.steps.front(), bf16.steps.back());
  ASSERT_EQ(bf16.steps.size(), 8u);
  for (double loss : bf16.steps) ASSERT_TRUE(std::isfinite(loss));
  // Step 1's loss comes from the same initial weights and batch, so only the rounding differs.
  // Cross-entropy moves by at most 2·max|Δlogit| (its gradient in the logits, p − onehot, has
  // L1 norm ≤ 2). Rounding both operands of a GEMM moves its output by ≤ 2·2^-9 (bf16's unit
  // roundoff, twice) of Σ|a·b|, which is ≤ 1 here: LayerNorm outputs of unit RMS against init
  // weights of std 0.02 give Σ ≈ 0.02·fan-in ≤ 0.02·4C = 2.6 at most, under 1 for all but the
  // MLP's projection, whose weights are scaled down by 1/√(2L). To first order the 4L + 1 = 9
  // GEMMs on the path to the logits add up: |ΔL| ≤ 2 · 9 · 2^-8 ≈ 0.07. A first-order estimate
  // with a wide margin (worst-case signs; the measured difference is 3e-5), so this is a check
  // of the wiring, not of the GEMM: a planted wrong transpose of the weights moved step 1 by
  // only 3e-3 and still trained. The GEMM's own accuracy is tests/nn/test_bf16.cpp's, to γ_k.
  const double bound = 2.0 * 9 * std::ldexp(1.0, -8);
  EXPECT_LE(std::fabs(bf16.steps[0] - fp32.steps[0]), bound)
      << "fp32 " << fp32.steps[0] << " bf16 " << bf16.steps[0];
  // And it learns: by step 8 bf16 has gone at least half as far down as fp32 (no NaN, no
  // divergence from garbage in C where β = 0).
  const double fp32_drop = fp32.steps.front() - fp32.steps.back();
  ASSERT_GT(fp32_drop, 0.1);
  EXPECT_LT(bf16.steps.back(), bf16.steps.front() - 0.5 * fp32_drop)
      << "fp32 " << fp32.steps.front() << " → " << fp32.steps.back() << ", bf16 "
      << bf16.steps.front() << " → " << bf16.steps.back();
}

TEST_F(Bf16TrainingTest, TheTrainStateRecordsTheDtypeAndFp32ResumesIt) {
  TrainOptions o = options("run", nn::GemmDtype::bf16);
  o.max_iters = 2, o.lr_decay_iters = 4;
  train_gpt(o, nullptr);
  const nlohmann::json state = files::read_json_file(o.out_dir / io::kTrainStateFile);
  EXPECT_EQ(state.at("options").at("dtype"), "bf16");
  o.max_iters = 4, o.resume = true, o.dtype = nn::GemmDtype::fp32;
  Losses resumed;
  train_gpt(o, &resumed);
  EXPECT_EQ(resumed.steps.size(), 2u);
  const nlohmann::json after = files::read_json_file(o.out_dir / io::kTrainStateFile);
  EXPECT_EQ(after.at("options").at("dtype"), "fp32");
}

}  // namespace
}  // namespace slope::train::testing
