// ThreadComm: a Communicator whose ranks are threads of one process, for testing what the
// trainer does with a communicator without mpirun. Collectives meet at a std::barrier; sums run
// in rank order (so every rank gets the same bytes, as MPI_Allreduce promises).
#pragma once

#include <barrier>
#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "dist/communicator.h"

namespace slope::dist::testing {

struct ThreadWorld {
  explicit ThreadWorld(int n) : size(n), barrier(n), slots(static_cast<size_t>(n)) {}
  int size;
  std::barrier<> barrier;
  std::vector<std::vector<char>> slots;  // each rank's contribution to the current collective
};

class ThreadComm final : public Communicator {
 public:
  ThreadComm(ThreadWorld& world, int rank) : w_(world), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return w_.size; }
  void allreduce_sum(float* data, int64_t n) override { sum(data, n); }
  void allreduce_sum(double* data, int64_t n) override { sum(data, n); }
  void broadcast(void* data, int64_t bytes, int root) override {
    if (rank_ == root) put(data, bytes);
    w_.barrier.arrive_and_wait();
    if (rank_ != root) std::memcpy(data, w_.slots[static_cast<size_t>(root)].data(), bytes);
    w_.barrier.arrive_and_wait();
  }
  void barrier() override { w_.barrier.arrive_and_wait(); }
  std::string name() const override { return "threads"; }

 private:
  void put(const void* data, int64_t bytes) {
    auto& slot = w_.slots[static_cast<size_t>(rank_)];
    slot.resize(static_cast<size_t>(bytes));
    std::memcpy(slot.data(), data, static_cast<size_t>(bytes));
  }
  template <class T>
  void sum(T* data, int64_t n) {
    put(data, n * static_cast<int64_t>(sizeof(T)));
    w_.barrier.arrive_and_wait();
    for (int64_t i = 0; i < n; ++i) {
      T s = 0;
      for (const auto& slot : w_.slots) s += reinterpret_cast<const T*>(slot.data())[i];
      data[i] = s;
    }
    w_.barrier.arrive_and_wait();
  }
  ThreadWorld& w_;
  int rank_;
};

// Runs body(comm) on `ranks` threads, one ThreadComm each, and waits for them.
inline void run_ranks(int ranks, const std::function<void(Communicator&)>& body) {
  ThreadWorld world(ranks);
  std::vector<std::thread> threads;
  for (int r = 0; r < ranks; ++r)
    threads.emplace_back([&world, &body, r] {
      ThreadComm comm(world, r);
      body(comm);
    });
  for (std::thread& t : threads) t.join();
}

}  // namespace slope::dist::testing
