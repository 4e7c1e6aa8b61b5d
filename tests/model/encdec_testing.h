// What the encoder / seq2seq tests and their oracle dump share: spread parameters and padded
// batches (random ids in the padding, -1 targets there).
#pragma once

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "gpt_testing.h"  // uniform_float, PrintTo(Position)
#include "model/encdec.h"

namespace slope::model::testing {

// Every position scheme an encoder or encoder–decoder takes.
constexpr Position kEncoderPositions[] = {
    Position::learned,         Position::sinusoidal,         Position::none,
    Position::alibi_symmetric, Position::alibi_nonsymmetric, Position::alibi_learned};

// A small model of either arch (the padding, inference, error and checkpoint tests).
inline EncDecConfig small_encdec(Arch arch, Position pos) {
  EncDecConfig c;
  c.arch = arch;
  c.n_layer = 2, c.n_dec_layer = 2, c.n_head = 4, c.n_embd = 32, c.block_size = 16;
  c.vocab_size = 11, c.tgt_vocab_size = arch == Arch::seq2seq ? 13 : 0;
  c.pos = pos;
  return c;
}

// The model's parameters, copied out.
template <class Real>
std::vector<Real> params_of(const EncDec<Real>& m) {
  return std::vector<Real>(m.params(), m.params() + m.table().size());
}

// As randomize_params for a Gpt: weights in ±0.5, LayerNorm weights 1 ± 0.5; learned slopes
// θ ∈ (−3, 0), so sigmoid(θ) ∈ (0.05, 0.5): slopes that neither vanish nor mask.
template <class Real>
void randomize_params(EncDec<Real>& m, uint64_t seed) {
  std::mt19937_64 rng(seed);
  for (const ParamSpec& s : m.table().specs()) {
    Real* p = m.params() + s.offset;
    const bool theta = s.name.find("alibi_theta") != std::string::npos;
    const bool ln_weight = s.name.find(".ln_") != std::string::npos && s.name.ends_with(".weight");
    for (int64_t i = 0; i < s.numel(); ++i)
      p[i] = static_cast<Real>(theta       ? uniform_float(rng, -3.0, 0.0)
                               : ln_weight ? uniform_float(rng, 0.5, 1.5)
                                           : uniform_float(rng, -0.5, 0.5));
  }
}

inline int32_t random_id(std::mt19937_64& rng, int64_t V) {
  return static_cast<int32_t>(rng() % static_cast<uint64_t>(V));
}

// A masked-LM batch: idx (B, S) with random ids everywhere (padding included: they must not
// matter), targets at about half of each row's real positions (at least one), -1 elsewhere.
struct MlmBatch {
  int64_t B = 0, S = 0;
  std::vector<int32_t> idx, lengths, targets;
};

inline MlmBatch make_mlm_batch(const std::vector<int32_t>& lengths, int64_t S, int64_t V,
                               uint64_t seed) {
  std::mt19937_64 rng(seed);
  MlmBatch b{static_cast<int64_t>(lengths.size()), S, {}, lengths, {}};
  for (int64_t r = 0; r < b.B; ++r)
    for (int64_t t = 0; t < S; ++t) {
      b.idx.push_back(random_id(rng, V));
      const bool counted = t < lengths[static_cast<size_t>(r)] && (t == 0 || rng() % 2 == 0);
      b.targets.push_back(counted ? random_id(rng, V) : -1);
    }
  return b;
}

// A seq2seq batch: src (B, S) padded after src_lengths with random ids; tgt (B, T) the decoder's
// input, targets (B, T) -1 from tgt_lengths on (the decoder's padding), random ids in both.
struct Seq2SeqBatch {
  int64_t B = 0, S = 0, T = 0;
  std::vector<int32_t> src, src_lengths, tgt, targets, tgt_lengths;
};

inline Seq2SeqBatch make_seq2seq_batch(const std::vector<int32_t>& src_lengths, int64_t S,
                                       const std::vector<int32_t>& tgt_lengths, int64_t T,
                                       int64_t V_src, int64_t V_tgt, uint64_t seed) {
  std::mt19937_64 rng(seed);
  Seq2SeqBatch b{
      static_cast<int64_t>(src_lengths.size()), S, T, {}, src_lengths, {}, {}, tgt_lengths};
  for (int64_t i = 0; i < b.B * S; ++i) b.src.push_back(random_id(rng, V_src));
  for (int64_t r = 0; r < b.B; ++r)
    for (int64_t t = 0; t < T; ++t) {
      b.tgt.push_back(random_id(rng, V_tgt));
      b.targets.push_back(t < tgt_lengths[static_cast<size_t>(r)] ? random_id(rng, V_tgt) : -1);
    }
  return b;
}

}  // namespace slope::model::testing
