// Temperature and top-k sampling (see sampling.h).
#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "slope/attention.h"  // slope::Error

namespace slope::model {

void validate(const SamplingConfig& c) {
  if (!(c.temperature >= 0.0) || !std::isfinite(c.temperature))
    throw Error("--temperature must be finite and >= 0 (0: always the most likely token), got " +
                std::to_string(c.temperature));
  if (c.top_k < 0)
    throw Error("--top-k must be >= 0 (0: no limit), got " + std::to_string(c.top_k));
}

template <class Real>
int32_t sample_token(const Real* logits, int64_t V, const SamplingConfig& c, std::mt19937_64& rng) {
  validate(c);
  for (int64_t v = 0; v < V; ++v)
    if (!std::isfinite(logits[v]))
      throw Error("the model's logits are not finite: the checkpoint's weights are broken");
  if (c.temperature == 0.0) {  // the most likely token, ties towards the lower id: no sort
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (logits[v] > logits[best]) best = v;
    return static_cast<int32_t>(best);
  }
  // Ids by decreasing logit, ties towards the lower id; only the first k need to be in order.
  std::vector<int32_t> ids(static_cast<size_t>(V));
  std::iota(ids.begin(), ids.end(), 0);
  const int64_t k = c.top_k > 0 ? std::min(c.top_k, V) : V;
  const auto by_logit = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), by_logit);

  const double top = static_cast<double>(logits[ids[0]]);
  std::vector<double> weight(static_cast<size_t>(k));
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    weight[i] = std::exp((static_cast<double>(logits[ids[i]]) - top) / c.temperature);
    sum += weight[i];
  }
  double u = uniform01(rng) * sum;
  for (int64_t i = 0; i < k; ++i) {
    u -= weight[i];
    if (u < 0.0) return ids[i];
  }
  return ids[static_cast<size_t>(k - 1)];  // u was within rounding of sum
}

template int32_t sample_token<float>(const float*, int64_t, const SamplingConfig&,
                                     std::mt19937_64&);
template int32_t sample_token<double>(const double*, int64_t, const SamplingConfig&,
                                      std::mt19937_64&);

}  // namespace slope::model
