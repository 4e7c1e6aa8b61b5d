// The training loop end to end on a tiny corpus: a stopped and resumed run equals one that never
// stopped (bitwise, dropout, accumulation and short training windows included); a diverged run
// stops and leaves the last checkpoint untouched; bad resumes are refused naming what to fix.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <vector>

#include "train/train_state.h"
#include "train/trainer.h"
#include "train_testing.h"

namespace slope::train::testing {
namespace {

namespace fs = std::filesystem;

// Keeps every step's loss and every eval.
struct Recorder final : TrainObserver {
  std::vector<StepReport> steps;
  std::vector<EvalReport> evals;
  void on_step(const StepReport& s) override { steps.push_back(s); }
  void on_eval(const EvalReport& e) override { evals.push_back(e); }
};

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override { prepare_names(dir_ / "data"); }
  TrainOptions options(const std::string& out) const {
    return tiny_options(dir_ / "data", dir_ / out);
  }
  TempDir dir_;
};

TEST_F(TrainerTest, ResumedRunEqualsUninterruptedRunBitwise) {
  TrainOptions o = options("straight");
  o.model.dropout = 0.1;   // the dropout counter must resume too
  o.grad_accum = 2;        // two micro-batches per step
  o.train_block_size = 8;  // windows of 8, batches of 4·16/8 = 8
  Recorder straight;
  const TrainSummary full = train_gpt(o, &straight);
  ASSERT_EQ(straight.steps.size(), 6u);
  EXPECT_EQ(full.steps, 6);

  TrainOptions first = o;
  first.out_dir = dir_ / "stopped";
  first.max_iters = 3, first.lr_decay_iters = 6;  // the same schedule, stopped halfway
  Recorder a;
  train_gpt(first, &a);
  TrainOptions second = first;
  second.max_iters = 6, second.resume = true;
  Recorder b;
  const TrainSummary resumed = train_gpt(second, &b);

  ASSERT_EQ(a.steps.size() + b.steps.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    const StepReport& s = i < 3 ? a.steps[i] : b.steps[i - 3];
    EXPECT_EQ(s.step, straight.steps[i].step);
    EXPECT_EQ(s.loss, straight.steps[i].loss) << "step " << i + 1;  // bitwise
    EXPECT_EQ(s.lr, straight.steps[i].lr) << "step " << i + 1;
    EXPECT_EQ(s.grad_norm, straight.steps[i].grad_norm) << "step " << i + 1;
  }
  EXPECT_EQ(resumed.last_eval.val_loss, full.last_eval.val_loss);
  EXPECT_EQ(resumed.last_eval.train_loss, full.last_eval.train_loss);
  EXPECT_EQ(read_bytes(dir_ / "stopped" / "model.safetensors"),
            read_bytes(dir_ / "straight" / "model.safetensors"));
  EXPECT_EQ(read_bytes(dir_ / "stopped" / io::kOptimizerFile),
            read_bytes(dir_ / "straight" / io::kOptimizerFile));

  // The resumed log: the evals of steps 0, 2 and 3 from the first run, 4 and 6 from the second.
  std::ifstream log(dir_ / "stopped" / "log.jsonl");
  std::vector<int64_t> logged;
  for (std::string line; std::getline(log, line);)
    logged.push_back(nlohmann::json::parse(line)["step"].get<int64_t>());
  EXPECT_EQ(logged, (std::vector<int64_t>{0, 2, 3, 4, 6}));
  EXPECT_TRUE(fs::exists(dir_ / "stopped" / "tokenizer" / "tokenizer.json"));
  EXPECT_TRUE(fs::exists(dir_ / "stopped" / "best" / "model.safetensors"));
  EXPECT_TRUE(fs::exists(dir_ / "stopped" / "best" / "tokenizer" / "tokenizer.json"));
}

TEST_F(TrainerTest, DivergedRunStopsAndKeepsTheLastCheckpoint) {
  TrainOptions o = options("out");
  o.max_iters = 2, o.lr_decay_iters = 6;
  train_gpt(o);  // checkpoint at step 2
  const auto before = snapshot(dir_ / "out");
  o.resume = true, o.max_iters = 6, o.lr = 1e30, o.min_lr = 1e29;
  EXPECT_ERROR_CONTAINS(train_gpt(o), "the run diverged");
  EXPECT_ERROR_CONTAINS(train_gpt(o), "checkpoint of step 2, untouched");
  EXPECT_EQ(snapshot(dir_ / "out"), before) << "a diverged run must not write anything";
  EXPECT_EQ(read_train_state(dir_ / "out").step, 2);
}

TEST_F(TrainerTest, ResumeRefusesOtherFlagsNamingThem) {
  TrainOptions o = options("out");
  o.max_iters = 2, o.lr_decay_iters = 6;
  train_gpt(o);
  const auto before = snapshot(dir_ / "out");
  TrainOptions r = o;
  r.resume = true, r.max_iters = 4;
  r.model.n_layer = 3;
  EXPECT_ERROR_CONTAINS(train_gpt(r), "--n-layer 2");
  r = o, r.resume = true, r.max_iters = 4, r.batch_size = 8;
  EXPECT_ERROR_CONTAINS(train_gpt(r), "--batch-size 4");
  r = o, r.resume = true, r.max_iters = 4, r.model.pos = model::Position::learned;
  EXPECT_ERROR_CONTAINS(train_gpt(r), "--pos alibi");
  r = o, r.resume = true, r.max_iters = 1;
  EXPECT_ERROR_CONTAINS(train_gpt(r), "beyond --max-iters 1");
  r = o;  // a fresh run into a directory with a checkpoint
  EXPECT_ERROR_CONTAINS(train_gpt(r), "pass --resume");
  EXPECT_EQ(snapshot(dir_ / "out"), before);
}

TEST_F(TrainerTest, DamagedCheckpointIsRefusedNamingTheFile) {
  TrainOptions o = options("out");
  o.max_iters = 2, o.lr_decay_iters = 6;
  train_gpt(o);
  o.resume = true, o.max_iters = 4;
  const fs::path opt = dir_ / "out" / io::kOptimizerFile;
  const std::string bytes = read_bytes(opt);
  fs::resize_file(opt, bytes.size() / 2);
  const auto before = snapshot(dir_ / "out");
  EXPECT_ERROR_CONTAINS(train_gpt(o), "optimizer.safetensors does not match");
  EXPECT_EQ(snapshot(dir_ / "out"), before);

  std::ofstream(opt, std::ios::binary) << bytes;  // restored: resumes again
  const std::string model = read_bytes(dir_ / "out" / "model.safetensors");
  std::string flipped = model;
  flipped[flipped.size() - 3] ^= 0x40;  // one flipped bit in the last weight
  std::ofstream(dir_ / "out" / "model.safetensors", std::ios::binary) << flipped;
  EXPECT_ERROR_CONTAINS(train_gpt(o), "model.safetensors does not match");
  std::ofstream(dir_ / "out" / "model.safetensors", std::ios::binary) << model;
  fs::remove(dir_ / "out" / "config.json");
  EXPECT_ERROR_CONTAINS(train_gpt(o), "config.json is missing");
}

TEST_F(TrainerTest, BadDataAndOptionsNameTheProblem) {
  fs::create_directories(dir_ / "empty");
  TrainOptions o = tiny_options(dir_ / "empty", dir_ / "out");
  EXPECT_ERROR_CONTAINS(train_gpt(o), "is not a prepared corpus");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
  o = options("out");
  o.train_block_size = 5;  // 4·16 is not a multiple of 5
  EXPECT_ERROR_CONTAINS(train_gpt(o), "--train-block-size 5");
  o = options("out");
  o.warmup_iters = 6;
  EXPECT_ERROR_CONTAINS(train_gpt(o), "--warmup-iters 6");
  o = options("out");
  o.model.block_size = 100000;  // longer than the val split
  EXPECT_ERROR_CONTAINS(train_gpt(o), "lower --block-size");
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

}  // namespace
}  // namespace slope::train::testing
