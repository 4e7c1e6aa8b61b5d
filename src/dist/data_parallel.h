// What a data-parallel trainer does with a Communicator (communicator.h), beyond the raw calls:
//
//   average_gradients   the gradient arena ← Σ_r share_r · grad_r, in buckets
//   run_agreed          run a piece of work on every rank; if any rank threw, every rank throws
//                       the same AgreedError (the lowest failing rank's message), so that rank 0
//                       alone reports it and no rank is left waiting in a collective
//   check_same_weights  every rank must hold rank 0's weights bit for bit
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "dist/communicator.h"
#include "slope/error.h"

namespace slope::dist {

// Gradients go out in buckets of this many floats (4 MiB): bounded pieces for MPI's int
// counts and a granularity at which a later overlap with the backward pass could start
// sending. Measured here (docs/distributed.md): on localhost the allreduce of the L6 C384 GPT's
// 42 MB arena is a few percent of a step, so the buckets are sent after backward, not during.
constexpr int64_t kBucketFloats = int64_t{1} << 20;

// grads (n) ← Σ over ranks of share · grads, where `share` is this rank's part of the step's
// loss (its predicted tokens / the step's, 1/N when every rank predicts as many). The scaling
// is done before the sum so that the result is the gradient of the step's whole loss. The sum
// runs bucket by bucket; every rank gets the same bytes (MPI_Allreduce's contract).
void average_gradients(Communicator& comm, float* grads, int64_t n, double share);

// An error every rank raised together: rank 0 prints it, the others keep quiet (cli/main.cpp).
class AgreedError : public Error {
 public:
  using Error::Error;
};

// Runs work() on every rank, then agrees: when it threw on any rank, every rank throws an
// AgreedError with the message of the lowest failing rank ("rank R: " before it when R > 0).
// A collective: every rank must call it at the same point. With one rank, work()'s exception
// passes unchanged.
void run_agreed(Communicator& comm, const std::function<void()>& work);

// Throws AgreedError on every rank when some rank's weights differ from rank 0's (a
// non-deterministic reduction or a corrupted rank): the run would silently train N models.
void check_same_weights(Communicator& comm, const float* params, int64_t n, int64_t step);

}  // namespace slope::dist
