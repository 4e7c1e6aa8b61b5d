// Decoding an encoder–decoder: greedy (beam 1) and beam search over a batch of sources.
//
// Beam search keeps, per source, the `beam` best prefixes by total log-probability; a prefix
// that emits <eos> is finished. A source stops when its best finished hypothesis scores at least
// as well as its best unfinished one (log-probabilities only fall as a prefix grows, so no
// unfinished one can overtake it), or at max_len tokens, where what is left is cut and
// competes with the finished ones as it stands. No length penalty: G2P outputs are
// short and their lengths follow the source's. Beam 1 is greedy decoding exactly.
#pragma once

#include <cstdint>
#include <vector>

#include "model/encdec.h"

namespace slope::model {

struct DecodeOptions {
  int64_t beam = 1;      // 1: greedy
  int64_t max_len = 64;  // tokens per output, <eos> excluded; a longer one is cut there
  int32_t bos = 0, eos = 1;
};

struct Decoded {
  std::vector<int32_t> ids;  // without <bos> and <eos>
  double logprob = 0.0;      // of ids and the <eos> that ended them (none when cut at max_len)
};

// src (B, S) with src_lengths (B) in [1, S]: one best output per source. Runs in evaluation
// mode; throws slope::Error on bad options.
std::vector<Decoded> decode(EncDec<float>& model, const int32_t* src, const int32_t* src_lengths,
                            int64_t B, int64_t S, const DecodeOptions& options);

}  // namespace slope::model
