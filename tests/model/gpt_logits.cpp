// slope_gpt_logits CKPT IDS OUT: the logits of a checkpoint on given ids, for the import and
// conversion oracles (tests/python/test_gpt2_import.py): reads CKPT/config.json and
// model.safetensors into a Gpt<float>, runs it on IDS (a safetensors file with "idx", I32
// (B, T)) and writes OUT (safetensors: "logits", F32 (B, T, V), the padding columns cut off).
#include <cstdio>
#include <exception>
#include <vector>

#include "io/checkpoint_files.h"
#include "io/gpt_checkpoint.h"
#include "io/safetensors.h"
#include "model/gpt.h"

int main(int argc, char** argv) {
  using namespace slope;
  if (argc != 4) {
    std::fprintf(stderr, "usage: slope_gpt_logits CKPT IDS.safetensors OUT.safetensors\n");
    return 2;
  }
  try {
    const std::filesystem::path ckpt = argv[1];
    const model::GptConfig config = io::read_gpt_config(ckpt / io::kConfigFile);
    model::Gpt<float> gpt(config);
    io::load_gpt(ckpt, gpt);
    const io::SafetensorsReader ids(argv[2]);
    const io::TensorInfo& info = ids.at("idx");
    if (info.shape.size() != 2) throw Error("idx must be (B, T)");
    const int64_t B = info.shape[0], T = info.shape[1], V = config.vocab_size;
    const int64_t Vp = config.padded_vocab_size();
    const std::vector<int32_t> idx = ids.read<int32_t>("idx");
    gpt.forward(idx.data(), nullptr, B, T);
    std::vector<float> logits(static_cast<size_t>(B * T * V));
    for (int64_t r = 0; r < B * T; ++r)
      std::copy_n(gpt.logits() + r * Vp, V, logits.begin() + r * V);
    const io::TensorView view{"logits", io::Dtype::F32, {B, T, V}, logits.data()};
    io::write_safetensors(argv[3], {&view, 1});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slope_gpt_logits: %s\n", e.what());
    return 1;
  }
  return 0;
}
