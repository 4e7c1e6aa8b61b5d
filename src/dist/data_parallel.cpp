// Gradient averaging, agreed errors and the weight check (see data_parallel.h).
#include "dist/data_parallel.h"

#include <algorithm>
#include <exception>
#include <vector>

#include "files/read_file.h"  // fnv1a64

namespace slope::dist {

void average_gradients(Communicator& comm, float* grads, int64_t n, double share) {
  if (comm.size() == 1) return;
  const auto s = static_cast<float>(share);
  for (int64_t first = 0; first < n; first += kBucketFloats) {
    const int64_t count = std::min(kBucketFloats, n - first);
    float* bucket = grads + first;
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < count; ++i) bucket[i] *= s;
    comm.allreduce_sum(bucket, count);
  }
}

void run_agreed(Communicator& comm, const std::function<void()>& work) {
  if (comm.size() == 1) {
    work();
    return;
  }
  std::string message;
  bool failed = false;
  try {
    work();
  } catch (const std::exception& e) {
    failed = true, message = e.what();
  }
  // failed[r] for every rank r, summed: everyone learns who failed.
  std::vector<double> flags(static_cast<size_t>(comm.size()), 0.0);
  flags[static_cast<size_t>(comm.rank())] = failed ? 1.0 : 0.0;
  comm.allreduce_sum(flags.data(), static_cast<int64_t>(flags.size()));
  const auto first = std::find(flags.begin(), flags.end(), 1.0);
  if (first == flags.end()) return;
  const int root = static_cast<int>(first - flags.begin());
  int64_t length = static_cast<int64_t>(message.size());
  comm.broadcast(&length, sizeof length, root);
  message.resize(static_cast<size_t>(length));
  comm.broadcast(message.data(), length, root);
  throw AgreedError(root == 0 ? message : "rank " + std::to_string(root) + ": " + message);
}

void check_same_weights(Communicator& comm, const float* params, int64_t n, int64_t step) {
  if (comm.size() == 1) return;
  const uint64_t ours = files::fnv1a64(params, static_cast<size_t>(n) * sizeof(float));
  uint64_t rank0 = ours;
  comm.broadcast(&rank0, sizeof rank0, 0);
  std::vector<double> differs(static_cast<size_t>(comm.size()), 0.0);
  differs[static_cast<size_t>(comm.rank())] = ours != rank0 ? 1.0 : 0.0;
  comm.allreduce_sum(differs.data(), static_cast<int64_t>(differs.size()));
  const auto first = std::find(differs.begin(), differs.end(), 1.0);
  if (first == differs.end()) return;
  throw AgreedError("at step " + std::to_string(step) + " the weights of rank " +
                    std::to_string(first - differs.begin()) +
                    " differ from rank 0's: the ranks no longer train one model (a "
                    "non-deterministic allreduce, or a damaged rank); resume from the last "
                    "checkpoint with --resume");
}

}  // namespace slope::dist
