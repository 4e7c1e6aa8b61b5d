// bench/gemm_step: whole training steps of `slope bench train`'s GPT with the linear layers on
// each GEMM backend in turn, in one process (issue 18). Separate processes per backend meet
// different load on a shared machine; here one step on each backend (OpenBLAS, oneDNN, MKL,
// those this process can run) alternates with the others (the first backend rotating every
// round) on the same model, and the medians are compared. Where bf16 GEMMs run natively
// (AVX512_BF16 or AMX; or SLOPE_BF16_EMULATE=1, for testing), `slope train --dtype bf16`'s
// linear layers (oneDNN's bf16 matmul, nn/bf16.h) alternate with them as one more entry.
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "model/gpt.h"
#include "nn/bf16.h"
#include "nn/gemm.h"
#include "train/adamw.h"

namespace {

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string one, five, fifteen;
  f >> one >> five >> fifteen;
  return one + " " + five + " " + fifteen;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "bench/gemm_step: GPT training steps with the linear layers on each GEMM backend this "
      "process can run (OpenBLAS, oneDNN, MKL), alternating in one process"};
  int64_t B = 8, T = 256, n_layer = 6, n_head = 6, n_embd = 384, vocab = 65;
  int rounds = 10, threads = 1;
  app.add_option("--B", B, "batch")->capture_default_str();
  app.add_option("--T", T, "sequence length")->capture_default_str();
  app.add_option("--n-layer", n_layer, "blocks")->capture_default_str();
  app.add_option("--n-head", n_head, "heads")->capture_default_str();
  app.add_option("--n-embd", n_embd, "channels")->capture_default_str();
  app.add_option("--vocab", vocab, "vocabulary")->capture_default_str();
  app.add_option("--rounds", rounds, "steps per backend")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  app.add_option("--threads", threads, "OpenMP threads")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  using slope::nn::GemmBackend;
  using slope::nn::GemmDtype;
  struct Entry {
    std::string name;
    GemmBackend backend;
    GemmDtype dtype;
  };
  std::vector<Entry> backends;
  for (GemmBackend b : {GemmBackend::openblas, GemmBackend::onednn, GemmBackend::mkl})
    if (slope::nn::gemm_backend_available(b))
      backends.push_back({slope::nn::gemm_backend_name(b), b, GemmDtype::fp32});
  const char* emulate = std::getenv("SLOPE_BF16_EMULATE");
  if (slope::nn::bf16_native() ||
      (emulate && std::string(emulate) == "1" && slope::nn::bf16_matmul_available()))
    backends.push_back({slope::nn::bf16_native() ? "bf16" : "bf16-emul", GemmBackend::onednn,
                        GemmDtype::bf16});
  auto use = [](const Entry& e) {
    slope::nn::set_gemm_backend(e.backend);
    slope::nn::set_gemm_dtype(e.dtype);
  };
  try {
    omp_set_num_threads(threads);
    slope::model::GptConfig c;
    c.block_size = T;
    c.vocab_size = vocab;
    c.n_layer = n_layer;
    c.n_head = n_head;
    c.n_embd = n_embd;
    c.pos = slope::model::Position::alibi;
    slope::model::Gpt<float> gpt(c);
    gpt.set_training(true);
    slope::train::AdamW<float> adamw(gpt.table(), slope::train::AdamWConfig{});
    std::mt19937 rng(1);
    std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab - 1));
    std::vector<int32_t> idx(static_cast<size_t>(B * T)), targets(idx.size());
    for (int32_t& t : idx) t = tok(rng);
    for (int32_t& t : targets) t = tok(rng);
    auto step = [&] {
      const auto t0 = std::chrono::steady_clock::now();
      gpt.forward(idx.data(), targets.data(), B, T);
      gpt.backward();
      adamw.step(gpt.params(), gpt.grads(), 6e-4);
      gpt.zero_grad();
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    std::printf("# GPT L%ld H%ld C%ld vocab %ld, B %ld T %ld, %d thread(s), %d rounds; load %s\n",
                long(n_layer), long(n_head), long(n_embd), long(vocab), long(B), long(T), threads,
                rounds, loadavg().c_str());
    for (const Entry& e : backends) {  // warm up each: arenas, thread pools, oneDNN's JIT
      use(e);
      step();
    }
    std::vector<std::vector<double>> ts(backends.size());
    for (int r = 0; r < rounds; ++r)
      for (size_t i = 0; i < backends.size(); ++i) {
        const size_t k = (r + i) % backends.size();
        use(backends[k]);
        ts[k].push_back(step());
      }
    std::vector<double> med;
    for (size_t k = 0; k < backends.size(); ++k) {
      std::sort(ts[k].begin(), ts[k].end());
      med.push_back(ts[k][ts[k].size() / 2]);
      std::printf("%-9s median step %.1f ms, min %.1f ms, %.0f tokens/s, median vs openblas %.3f\n",
                  backends[k].name.c_str(), med[k] * 1e3, ts[k].front() * 1e3,
                  double(B * T) / med[k], med[0] / med[k]);
    }
    std::printf("# load at the end %s\n", loadavg().c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gemm_step: %s\n", e.what());
    return 1;
  }
}
