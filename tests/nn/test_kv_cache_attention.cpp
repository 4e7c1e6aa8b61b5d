// Causal self-attention over a KV cache (kv_cache_attention_forward, decoding): a sequence fed in
// chunks, each against the cache of the ones before, gives the outputs and logsumexps of one
// causal self_attention_forward over the whole sequence, in float64 and (within the attention
// tolerance) in float32; the cache holds every key and value; bad sizes are refused.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "attention_testing.h"
#include "nn/self_attention.h"
#include "slope/attention.h"

namespace slope::nn::testing {
namespace {

struct Case {
  int64_t B, C, H;
  std::vector<int64_t> chunks;  // new positions per call; T = their sum
  bool alibi;
};

// The whole sequence at once: out (B, T, C) and lse (B, H, T).
void full_forward(std::vector<double>* out, std::vector<double>* lse,
                  const std::vector<double>& qkv, const std::vector<double>& slopes, int64_t B,
                  int64_t T, int64_t C, int64_t H) {
  out->assign(static_cast<size_t>(B * T * C), 0.0);
  lse->assign(static_cast<size_t>(B * H * T), 0.0);
  const AttentionBias<double> bias{.causal = true,
                                   .slopes_left = slopes.empty() ? nullptr : slopes.data()};
  self_attention_forward(out->data(), lse->data(), qkv.data(), bias, B, T, C, H);
}

// The same sequence in chunks through a cache of `capacity` rows, gathered back into (B, T, C)
// and (B, H, T). *k_cache receives the cache's keys.
template <class Real>
void chunked_forward(std::vector<double>* out, std::vector<double>* lse, std::vector<Real>* k_cache,
                     const std::vector<double>& qkv64, const std::vector<double>& slopes64,
                     const Case& c, int64_t capacity) {
  const int64_t B = c.B, C = c.C, H = c.H;
  int64_t T = 0;
  for (int64_t n : c.chunks) T += n;
  const std::vector<Real> qkv(qkv64.begin(), qkv64.end()), slopes(slopes64.begin(), slopes64.end());
  k_cache->assign(static_cast<size_t>(B * capacity * C), Real(0));
  std::vector<Real> v_cache(k_cache->size());
  out->assign(static_cast<size_t>(B * T * C), 0.0);
  lse->assign(static_cast<size_t>(B * H * T), 0.0);
  int64_t P = 0;
  for (int64_t Tn : c.chunks) {
    std::vector<Real> chunk(static_cast<size_t>(B * Tn * 3 * C));  // rows P .. P+Tn−1 of qkv
    for (int64_t b = 0; b < B; ++b)
      std::copy_n(qkv.data() + (b * T + P) * 3 * C, Tn * 3 * C, chunk.data() + b * Tn * 3 * C);
    std::vector<Real> o(static_cast<size_t>(B * Tn * C)), l(static_cast<size_t>(B * H * Tn));
    kv_cache_attention_forward(o.data(), l.data(), k_cache->data(), v_cache.data(), chunk.data(),
                               slopes.empty() ? nullptr : slopes.data(), B, Tn, P, capacity, C, H);
    for (int64_t b = 0; b < B; ++b) {
      std::copy_n(o.data() + b * Tn * C, Tn * C, out->data() + (b * T + P) * C);
      for (int64_t h = 0; h < H; ++h)
        std::copy_n(l.data() + (b * H + h) * Tn, Tn, lse->data() + (b * H + h) * T + P);
    }
    P += Tn;
  }
}

class KvCacheAttention : public ::testing::TestWithParam<Case> {};

TEST_P(KvCacheAttention, ChunksEqualTheWholeSequence) {
  const Case c = GetParam();
  int64_t T = 0;
  for (int64_t n : c.chunks) T += n;
  const int64_t capacity = T + 3;  // spare rows: the cache's stride is not T
  std::mt19937_64 rng(7);
  const std::vector<double> qkv = random_vector(c.B * T * 3 * c.C, rng, -2.0, 2.0);
  std::vector<double> slopes;
  if (c.alibi) {
    const std::vector<float> m = alibi_slopes(c.H);
    slopes.assign(m.begin(), m.end());
  }
  std::vector<double> out, lse, out64, lse64, out32, lse32;
  full_forward(&out, &lse, qkv, slopes, c.B, T, c.C, c.H);

  std::vector<double> k64;
  chunked_forward(&out64, &lse64, &k64, qkv, slopes, c, capacity);
  // The float64 reference sums each query's keys in the same order either way.
  EXPECT_LE(rel_error(out64, out), 1e-13);
  EXPECT_LE(rel_error(lse64, lse), 1e-13);
  for (int64_t b = 0; b < c.B; ++b)  // the cache holds k of every position, spare rows zero
    for (int64_t t = 0; t < capacity; ++t)
      for (int64_t i = 0; i < c.C; ++i)
        EXPECT_EQ(k64[static_cast<size_t>((b * capacity + t) * c.C + i)],
                  t < T ? qkv[static_cast<size_t>((b * T + t) * 3 * c.C + c.C + i)] : 0.0);

  std::vector<float> k32;
  chunked_forward(&out32, &lse32, &k32, qkv, slopes, c, capacity);
  const CheckOptions tol = attention_tolerances(T, c.C / c.H);
  EXPECT_LE(rel_error(out32, out), tol.fp32_out);
  EXPECT_LE(rel_error(lse32, lse), tol.fp32_out);
}

// T = 1; single new tokens after a prompt; a prompt that crosses a kernel tile; odd head dims,
// three heads.
INSTANTIATE_TEST_SUITE_P(Chunks, KvCacheAttention,
                         ::testing::Values(Case{1, 12, 3, {1}, true},
                                           Case{2, 12, 3, {3, 1, 1, 2}, true},
                                           Case{2, 12, 3, {3, 1, 1, 2}, false},
                                           Case{2, 15, 3, {70, 1, 4}, true},
                                           Case{1, 8, 2, {1, 1, 1, 1, 1}, true}));

TEST(KvCacheAttention, RejectsBadArguments) {
  const int64_t B = 1, C = 12, H = 3, capacity = 4;
  std::vector<float> qkv(static_cast<size_t>(3 * 3 * C)), out(static_cast<size_t>(3 * C)),
      lse(static_cast<size_t>(H * 3)), k(static_cast<size_t>(capacity * C)), v(k.size());
  // 3 new positions after 2 cached ones exceed 4 rows.
  EXPECT_THROW(kv_cache_attention_forward(out.data(), lse.data(), k.data(), v.data(), qkv.data(),
                                          nullptr, B, 3, 2, capacity, C, H),
               Error);
  EXPECT_THROW(kv_cache_attention_forward(out.data(), lse.data(), k.data(), v.data(), qkv.data(),
                                          nullptr, B, 3, 0, capacity, C, 5),
               Error);                                         // C not a multiple of H
  const std::vector<float> minus_inf{0.5f, -INFINITY, 0.25f};  // a slope of −inf means nothing
  EXPECT_THROW(kv_cache_attention_forward(out.data(), lse.data(), k.data(), v.data(), qkv.data(),
                                          minus_inf.data(), B, 3, 0, capacity, C, H),
               Error);
  kv_cache_attention_forward(out.data(), lse.data(), k.data(), v.data(), qkv.data(), nullptr, B, 3,
                             1, capacity, C, H);  // fits exactly
}

}  // namespace
}  // namespace slope::nn::testing
