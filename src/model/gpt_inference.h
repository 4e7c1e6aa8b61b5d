// Incremental decoding of a trained Gpt with a KV cache: the keys and values of every position
// seen so far are kept per layer, so each new token costs one row of every layer instead of a
// forward over the whole context.
//
//   forward(idx (B, Tn)) at positions P .. P+Tn−1, P = length():
//     x = wte[idx] + pos[P + t]                       (learned: wpe rows, sinusoidal: the table)
//     per block: qkv = c_attn(ln_1(x)); append k, v to the cache; attention of the Tn queries
//                over all P+Tn cached keys, causal and bottom-right aligned (query t sits at
//                position P + t, DESIGN.md), ALiBi bias by distance as in training
//     logits = ln_f(x) · wteᵀ                          (B, Tn, Vp)
//
// The results equal a full Gpt::forward over the whole context (the test checks it), up to the
// float rounding of the attention kernel's different tiling. Dropout is never applied.
// The cache grows as needed; a model with learned positions cannot go past block_size (wpe has
// no rows beyond it): the caller crops the context and starts again (reset() + forward of the
// last block_size tokens), as `slope sample` does.
#pragma once

#include <cstdint>
#include <vector>

#include "model/gpt.h"

namespace slope::model {

template <class Real>
class GptInference {
 public:
  // Reads gpt's parameters (gpt must outlive this and not change while a context is cached).
  // B sequences are decoded side by side, all of the same length.
  GptInference(const Gpt<Real>& gpt, int64_t batch_size);

  int64_t batch_size() const { return B_; }
  int64_t length() const { return len_; }  // positions in the cache, P
  // The most positions this model can hold: block_size for learned positions, else unlimited
  // (-1).
  int64_t max_length() const;
  void reset() { len_ = 0; }  // forget the context; the memory stays

  // Runs Tn >= 1 new tokens idx (B, Tn) against the cache and appends them to it. Returns their
  // logits (B, Tn, Vp), valid until the next call. Throws slope::Error for a token outside the
  // vocabulary or (learned positions) a length beyond block_size, leaving the cache as it was.
  const Real* forward(const int32_t* idx, int64_t Tn);

 private:
  void reserve(int64_t capacity);  // cache rows per sequence, keeping the cached ones

  const Gpt<Real>* gpt_;
  int64_t B_;
  int64_t len_ = 0;
  int64_t capacity_ = 0;
  std::vector<std::vector<Real>> k_cache_, v_cache_;  // (L) of (B, capacity, C) each
  std::vector<Real> pos_table_;                       // (rows, C) `sinusoidal`
  std::vector<Real> acts_;                            // one forward's activations
};

extern template class GptInference<float>;
extern template class GptInference<double>;

}  // namespace slope::model
