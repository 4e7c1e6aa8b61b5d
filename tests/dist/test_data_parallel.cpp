// dist/data_parallel.h on ranks that are threads (thread_comm.h): the averaged gradient is the
// share-weighted sum, the same on every rank; an error on some ranks reaches all of them as the
// lowest failing rank's; a rank whose weights differ is named. With one process everything is a
// pass-through.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "common/temp_files.h"  // EXPECT_ERROR_CONTAINS
#include "dist/data_parallel.h"
#include "thread_comm.h"

namespace slope::dist {
namespace {

using testing::run_ranks;

TEST(DataParallel, AverageGradientsIsTheShareWeightedSum) {
  // More than one bucket, and a last one that is not full.
  const int64_t n = kBucketFloats + 1000;
  const int ranks = 3;
  const double shares[ranks] = {0.5, 0.25, 0.25};  // e.g. 20, 10 and 10 predicted tokens
  std::vector<std::vector<float>> out(ranks);
  run_ranks(ranks, [&](Communicator& comm) {
    const int r = comm.rank();
    std::vector<float> g(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      g[static_cast<size_t>(i)] = static_cast<float>((r + 1) * (i % 7));
    average_gradients(comm, g.data(), n, shares[r]);
    out[static_cast<size_t>(r)] = std::move(g);
  });
  for (int64_t i = 0; i < n; i += 997) {
    // Σ share_r · (r+1)·(i mod 7): exact in float (dyadic shares, small integers).
    const float want = static_cast<float>((0.5 * 1 + 0.25 * 2 + 0.25 * 3) * (i % 7));
    EXPECT_EQ(out[0][static_cast<size_t>(i)], want) << i;
  }
  EXPECT_EQ(out[0], out[1]);  // the same bytes on every rank
  EXPECT_EQ(out[0], out[2]);
}

TEST(DataParallel, OneProcessIsAPassThrough) {
  SingleProcess one;
  std::vector<float> g = {1.0f, -2.0f, 3.5f};
  average_gradients(one, g.data(), 3, 0.5);  // one rank: nothing to average, nothing scaled
  EXPECT_EQ(g, (std::vector<float>{1.0f, -2.0f, 3.5f}));
  // The work's own exception, not an AgreedError.
  try {
    run_agreed(one, [] { throw Error("disk full"); });
    FAIL() << "no exception";
  } catch (const AgreedError&) {
    FAIL() << "one process turned its error into an AgreedError";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "disk full");
  }
  check_same_weights(one, g.data(), 3, 0);
}

TEST(DataParallel, AnErrorOnSomeRanksReachesAllAsTheLowestFailingRanks) {
  std::mutex mutex;
  std::vector<std::string> seen(4);
  std::atomic<int> ran{0};
  run_ranks(4, [&](Communicator& comm) {
    try {
      run_agreed(comm, [&] {
        ++ran;
        if (comm.rank() == 2) throw Error("cannot read shard");
        if (comm.rank() == 3) throw Error("out of memory");
      });
    } catch (const AgreedError& e) {
      const std::lock_guard<std::mutex> lock(mutex);
      seen[static_cast<size_t>(comm.rank())] = e.what();
    }
    // And when no rank fails, nobody throws.
    run_agreed(comm, [] {});
  });
  EXPECT_EQ(ran, 4);
  for (const std::string& s : seen) EXPECT_EQ(s, "rank 2: cannot read shard");
  // Rank 0's own error carries no rank prefix.
  run_ranks(2, [&](Communicator& comm) {
    EXPECT_ERROR_CONTAINS(run_agreed(comm,
                                     [&] {
                                       if (comm.rank() == 0) throw Error("--lr must be positive");
                                     }),
                          "--lr must be positive");
  });
}

TEST(DataParallel, DifferentWeightsAreNamed) {
  run_ranks(3, [&](Communicator& comm) {
    std::vector<float> w(100, 1.0f);
    check_same_weights(comm, w.data(), 100, 7);                // all equal: fine
    if (comm.rank() == 2) w[42] = std::nextafter(1.0f, 2.0f);  // one ulp
    EXPECT_ERROR_CONTAINS(check_same_weights(comm, w.data(), 100, 7),
                          "at step 7 the weights of rank 2 differ from rank 0's");
  });
}

}  // namespace
}  // namespace slope::dist
