// slope_encdec_dump DIR ARCH POSITION [--no-bias]: the input of the PyTorch oracle
// (tests/python/test_encdec_reference.py), as slope_gpt_dump is the GPT's.
//
// Builds a small encoder (ARCH encoder: masked LM) or encoder–decoder (seq2seq): L=2 per stack,
// H=6 (nonsymmetric ALiBi gives each side 3 heads: Press's slopes for a non-power-of-two count),
// C=96 (head dim 16: 1/√D is exact, see gpt_dump.cpp), V=37 and 29 for the decoder, padded to
// 64, block_size 16, with the given position scheme; spreads its parameters (encdec_testing.h)
// and writes, into DIR:
//   config.json, model.safetensors   the checkpoint (save_encdec), as PyTorch will load it
//   batch.safetensors                encoder: idx, targets (B, S), lengths (B);
//                                    seq2seq: src (B, S), src_lengths (B), tgt, targets (B, T),
//                                    all I32. Ragged lengths, random ids in the padding, -1
//                                    targets there; S, T beyond block_size where the scheme
//                                    allows it
//   out_f32.safetensors              EncDec<float> on the batch: logits (B, S or T, Vp), loss (),
//                                    and grad.NAME for every parameter (the state dict's shapes)
//   out_f64.safetensors              the same from EncDec<double> loaded from the checkpoint
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <string>
#include <type_traits>
#include <vector>

#include "encdec_testing.h"
#include "io/encdec_checkpoint.h"
#include "io/safetensors.h"
#include "model/encdec.h"

namespace {

namespace fs = std::filesystem;
using namespace slope;
using model::testing::MlmBatch;
using model::testing::Seq2SeqBatch;

struct Batch {
  MlmBatch mlm;
  Seq2SeqBatch s2s;
};

template <class Real>
void dump(const fs::path& path, model::EncDec<Real>& m, const Batch& batch) {
  const bool encoder = m.config().arch == model::Arch::encoder;
  const Real loss = encoder ? m.forward_mlm(batch.mlm.idx.data(), batch.mlm.lengths.data(),
                                            batch.mlm.targets.data(), batch.mlm.B, batch.mlm.S)
                            : m.forward_seq2seq(batch.s2s.src.data(), batch.s2s.src_lengths.data(),
                                                batch.s2s.tgt.data(), batch.s2s.targets.data(),
                                                batch.s2s.B, batch.s2s.S, batch.s2s.T);
  m.zero_grad();
  m.backward();
  const io::Dtype dtype = std::is_same_v<Real, float> ? io::Dtype::F32 : io::Dtype::F64;
  const int64_t B = encoder ? batch.mlm.B : batch.s2s.B;
  const int64_t T = encoder ? batch.mlm.S : batch.s2s.T;
  const int64_t Vp = encoder ? m.config().padded_vocab_size() : m.config().padded_tgt_vocab_size();
  std::vector<io::TensorView> views = {{"logits", dtype, {B, T, Vp}, m.logits()},
                                       {"loss", dtype, {}, &loss}};
  for (const model::ParamSpec& s : m.table().specs())
    views.push_back({"grad." + s.name, dtype, s.shape, m.grads() + s.offset});
  io::write_safetensors(path, views);
}

int run(const fs::path& dir, const std::string& arch, const std::string& pos, bool bias) {
  model::EncDecConfig c;
  c.arch = model::parse_arch(arch);
  c.n_layer = 2, c.n_dec_layer = 2, c.n_head = 6, c.n_embd = 96, c.block_size = 16;
  c.vocab_size = 37, c.tgt_vocab_size = c.arch == model::Arch::seq2seq ? 29 : 0;
  c.pos = model::parse_position(pos), c.bias = bias;
  const bool learned = c.pos == model::Position::learned;
  const int64_t S = learned ? c.block_size : c.block_size + 8;
  const int64_t T = learned ? c.block_size : c.block_size + 4;

  model::EncDec<float> f(c, 11);
  model::testing::randomize_params(f, 12);
  io::save_encdec(dir, f);
  Batch batch;
  const std::vector<int32_t> src_lengths = {static_cast<int32_t>(S), 7,
                                            static_cast<int32_t>(S - 3)};
  const int64_t B = static_cast<int64_t>(src_lengths.size());
  std::vector<io::TensorView> views;
  if (c.arch == model::Arch::encoder) {
    batch.mlm = model::testing::make_mlm_batch(src_lengths, S, c.vocab_size, 13);
    views = {{"idx", io::Dtype::I32, {B, S}, batch.mlm.idx.data()},
             {"lengths", io::Dtype::I32, {B}, batch.mlm.lengths.data()},
             {"targets", io::Dtype::I32, {B, S}, batch.mlm.targets.data()}};
  } else {
    const std::vector<int32_t> tgt_lengths = {static_cast<int32_t>(T), 5,
                                              static_cast<int32_t>(T - 4)};
    batch.s2s = model::testing::make_seq2seq_batch(src_lengths, S, tgt_lengths, T, c.vocab_size,
                                                   c.tgt_vocab_size, 13);
    views = {{"src", io::Dtype::I32, {B, S}, batch.s2s.src.data()},
             {"src_lengths", io::Dtype::I32, {B}, batch.s2s.src_lengths.data()},
             {"tgt", io::Dtype::I32, {B, T}, batch.s2s.tgt.data()},
             {"targets", io::Dtype::I32, {B, T}, batch.s2s.targets.data()}};
  }
  io::write_safetensors(dir / "batch.safetensors", views);
  dump(dir / "out_f32.safetensors", f, batch);
  model::EncDec<double> d(c, 0);
  io::load_encdec(dir, d);
  dump(dir / "out_f64.safetensors", d, batch);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4 || argc > 5 || (argc == 5 && std::strcmp(argv[4], "--no-bias") != 0)) {
    std::fprintf(stderr, "usage: %s DIR ARCH POSITION [--no-bias]\n", argv[0]);
    return 2;
  }
  try {
    return run(argv[1], argv[2], argv[3], argc == 4);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "slope_encdec_dump: %s\n", e.what());
    return 1;
  }
}
