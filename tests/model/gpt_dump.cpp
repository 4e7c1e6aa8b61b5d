// slope_gpt_dump DIR POSITION [--no-bias]: the input of the PyTorch oracle
// (tests/python/test_gpt_reference.py).
//
// Builds a small GPT (L=2, H=3: Press's slopes for a non-power-of-two head count, C=48, V=37
// padded to 64, block_size 16) with the given position scheme, spreads its parameters
// (gpt_testing.h) and writes, into DIR:
//   config.json, model.safetensors   the checkpoint (save_gpt), as PyTorch will load it
//   batch.safetensors                idx, targets (B, T) I32; T = 16, or 24 (beyond block_size)
//                                    when the scheme allows it; one target is -1
//   out_f32.safetensors              Gpt<float> on the batch: logits (B, T, Vp), loss (), and
//                                    grad.NAME for every parameter (the state dict's shapes)
//   out_f64.safetensors              the same from Gpt<double> loaded from the checkpoint
// The head dim is 16 because the attention problem holds its scale as a float: 1/√D is exact
// for D = 16, so the float64 model can agree with PyTorch's float64 to ~1e-12.
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "gpt_testing.h"
#include "io/gpt_checkpoint.h"
#include "io/safetensors.h"
#include "model/gpt.h"

namespace {

namespace fs = std::filesystem;
using namespace slope;

constexpr int64_t kB = 2;

template <class Real>
void dump(const fs::path& path, model::Gpt<Real>& gpt, const model::testing::Batch& batch) {
  const Real loss = gpt.forward(batch.idx.data(), batch.targets.data(), batch.B, batch.T);
  gpt.zero_grad();
  gpt.backward();
  const io::Dtype dtype = std::is_same_v<Real, float> ? io::Dtype::F32 : io::Dtype::F64;
  std::vector<io::TensorView> views = {
      {"logits", dtype, {batch.B, batch.T, gpt.config().padded_vocab_size()}, gpt.logits()},
      {"loss", dtype, {}, &loss}};
  for (const model::ParamSpec& s : gpt.table().specs())
    views.push_back({"grad." + s.name, dtype, s.shape, gpt.grads() + s.offset});
  io::write_safetensors(path, views);
}

int run(const fs::path& dir, const std::string& pos, bool bias) {
  model::GptConfig c;
  c.n_layer = 2, c.n_head = 3, c.n_embd = 48, c.vocab_size = 37, c.block_size = 16;
  c.pos = model::parse_position(pos), c.bias = bias;
  const int64_t T = c.pos == model::Position::learned ? c.block_size : c.block_size + 8;

  model::Gpt<float> f(c, 11);
  model::testing::randomize_params(f, 12);
  io::save_gpt(dir, f);
  const model::testing::Batch batch = model::testing::make_batch(kB, T, c.vocab_size, 13);
  io::write_safetensors(
      dir / "batch.safetensors",
      std::vector<io::TensorView>{{"idx", io::Dtype::I32, {kB, T}, batch.idx.data()},
                                  {"targets", io::Dtype::I32, {kB, T}, batch.targets.data()}});
  dump(dir / "out_f32.safetensors", f, batch);
  model::Gpt<double> d(c, 0);
  io::load_gpt(dir, d);
  dump(dir / "out_f64.safetensors", d, batch);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4 || (argc == 4 && std::strcmp(argv[3], "--no-bias") != 0)) {
    std::fprintf(stderr, "usage: %s DIR POSITION [--no-bias]\n", argv[0]);
    return 2;
  }
  try {
    return run(argv[1], argv[2], argc == 3);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slope_gpt_dump: %s\n", e.what());
    return 1;
  }
}
