// `slope bench train`: training throughput of a GPT (nanoGPT's shape) on random tokens, one full
// optimizer step at a time (forward + backward + AdamW step + zero_grad), as tokens/s and as
// model FLOP/s against a 1024³ sgemm on the linear layers' own GEMM library (nn::gemm: oneDNN,
// MKL or OpenBLAS) measured in the same run. bench/train.py runs this and
// the same model in PyTorch eager side by side, and writes docs/BENCHMARKS.md.
//
// The yardstick is timed between the steps (one 1024³ sgemm before the first timed step and one
// after each), and MFU is the step median's model FLOP/s over the median of those sgemm rates:
// on a shared machine the speed a process gets drifts by ±10% over seconds, and a yardstick
// timed only once, before the steps, carried that drift into the ratio (on a 2-core AMD EPYC,
// 2026-12-02: 141, 172 and 180 GFLOP/s in three runs a minute apart). The header's sgemm, timed
// before everything, stays as the machine line's figure.
//
// Model FLOPs per step use nanoGPT's estimate_mfu (PaLM's appendix B): per token
// 6·N + 12·L·H·Q·T, N the parameters less the position table (nanoGPT's non_embedding count;
// the tied wte stays in), Q the head size. Its attention term counts the whole T×T score matrix;
// a causal count would halve it (also printed, as `mfu_causal` in --json).
#include "cli/bench_train.h"

#include <cblas.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "attention/tile_counts.h"
#include "cli/sgemm_bench.h"
#include "cli/train.h"  // set_threads
#include "model/gpt.h"
#include "model/gpt_config.h"
#include "nn/bf16.h"  // require_bf16, bf16_native
#include "nn/gemm.h"
#include "nn/profile.h"
#include "slope/attention.h"
#include "train/adamw.h"

namespace slope::cli {

namespace {

using Clock = std::chrono::steady_clock;

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("model name", 0) == 0) {
      const size_t colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(" \t", colon + 1));
    }
  return "unknown";
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) >= 0x20) out += c;
  }
  return out;
}

struct Result {
  int64_t vocab, params, nanogpt_params;
  double step_median_s, step_min_s, tokens_per_s, flops_per_step, flops_per_step_causal;
  double model_gflops, mfu, mfu_causal, loss_first, loss_last;
  double sgemm_gflops;  // median of the sgemm rates timed between the steps: MFU's yardstick
  std::vector<nn::ProfileEntry> profile;  // --profile: totals over the timed steps
  detail::ForwardTileCounts tiles;        // ... and the attention forward's key tiles
};

// The profile's kind of work of a label: "matmul c_fc backward" → GEMM, and so on.
std::string kind_of(const std::string& label) {
  if (label.rfind("matmul", 0) == 0) return "GEMM (linear layers, lm_head)";
  if (label.find("attention") != std::string::npos) return "attention";
  if (label.rfind("layernorm", 0) == 0) return "LayerNorm";
  if (label.rfind("gelu", 0) == 0) return "GELU";
  if (label.rfind("cross-entropy", 0) == 0) return "cross-entropy";
  if (label == "AdamW step") return "AdamW";
  if (label == "zero gradient buffers" || label == "zero_grad") return "zeroing";
  if (label.rfind("residual", 0) == 0 || label.rfind("embedding", 0) == 0)
    return "residual, embedding";
  return "";
}

// The --profile report: each label's wall time per step and its share of the median step,
// then the same by kind of work, the rest of the step as "other".
void print_profile(const Result& r, int steps, bool json) {
  const double step_s = r.step_median_s, n = static_cast<double>(steps);
  std::vector<std::pair<std::string, double>> kinds;
  double covered = 0.0;
  for (const nn::ProfileEntry& e : r.profile) {
    if (e.label.find("(all)") != std::string::npos) continue;
    const std::string k = kind_of(e.label);
    auto it = std::find_if(kinds.begin(), kinds.end(), [&](const auto& x) { return x.first == k; });
    if (it == kinds.end())
      kinds.emplace_back(k, e.seconds / n);
    else
      it->second += e.seconds / n;
    covered += e.seconds / n;
  }
  // "other": the mean step less every labelled piece (slopes, dropout, copies between layers,
  // the step's own bookkeeping); relative to the mean, as the pieces are means.
  double mean_step = 0.0;  // the four top-level scopes of a step
  for (const nn::ProfileEntry& e : r.profile)
    if (e.label.find("(all)") != std::string::npos || e.label == "AdamW step" ||
        e.label == "zero_grad")
      mean_step += e.seconds / n;
  kinds.emplace_back("other", std::max(0.0, mean_step - covered));
  if (json) {
    std::printf(
        "{\"kind\":\"profile\",\"vocab\":%lld,\"mean_step_ms\":%.3f,\"median_step_ms\":%.3f,"
        "\"labels\":[",
        static_cast<long long>(r.vocab), mean_step * 1e3, step_s * 1e3);
    for (size_t i = 0; i < r.profile.size(); ++i)
      std::printf("%s{\"label\":\"%s\",\"ms_per_step\":%.4f,\"calls_per_step\":%.2f}", i ? "," : "",
                  json_escape(r.profile[i].label).c_str(), r.profile[i].seconds / n * 1e3,
                  static_cast<double>(r.profile[i].calls) / n);
    std::printf("],\"kinds\":[");
    for (size_t i = 0; i < kinds.size(); ++i)
      std::printf("%s{\"kind\":\"%s\",\"ms_per_step\":%.4f,\"share\":%.4f}", i ? "," : "",
                  kinds[i].first.c_str(), kinds[i].second * 1e3, kinds[i].second / mean_step);
    std::printf(
        "],\"attention_tiles_computed_per_step\":%.1f,\"attention_tiles_skipped_per_step\":%.1f}\n",
        static_cast<double>(r.tiles.computed) / n, static_cast<double>(r.tiles.skipped) / n);
    return;
  }
  std::printf(
      "# profile, vocab %lld: wall time per step over the %d timed steps (mean step %.1f ms)\n",
      static_cast<long long>(r.vocab), steps, mean_step * 1e3);
  std::printf("  %-34s %10s %8s %7s\n", "work", "ms/step", "share", "calls");
  for (const nn::ProfileEntry& e : r.profile)
    std::printf("  %-34s %10.2f %7.1f%% %7.1f\n", e.label.c_str(), e.seconds / n * 1e3,
                100.0 * e.seconds / n / mean_step, static_cast<double>(e.calls) / n);
  std::printf("  by kind of work:\n");
  for (const auto& [k, sec] : kinds)
    std::printf("  %-34s %10.2f %7.1f%%\n", k.c_str(), sec * 1e3, 100.0 * sec / mean_step);
  const int64_t all = r.tiles.computed + r.tiles.skipped;
  std::printf(
      "  attention forward, (query tile, key tile) pairs per step: %.0f computed, %.0f skipped "
      "by far-tile skipping (%.1f%%)\n",
      static_cast<double>(r.tiles.computed) / n, static_cast<double>(r.tiles.skipped) / n,
      all > 0 ? 100.0 * static_cast<double>(r.tiles.skipped) / static_cast<double>(all) : 0.0);
}

Result run_one(const BenchTrainOptions& o, int64_t vocab) {
  model::GptConfig c;
  c.block_size = o.T;
  c.vocab_size = vocab;
  c.n_layer = o.n_layer;
  c.n_head = o.n_head;
  c.n_embd = o.n_embd;
  c.dropout = 0.0;
  c.pos = model::parse_position(o.pos);
  model::Gpt<float> gpt(c);
  gpt.set_training(true);
  train::AdamW<float> adamw(gpt.table(), train::AdamWConfig{});

  // Random tokens, next-token targets, one fixed batch (the data pipeline is not timed).
  std::mt19937 rng(1);
  std::uniform_int_distribution<int32_t> tok(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> seq(static_cast<size_t>(o.B * (o.T + 1)));
  for (int32_t& t : seq) t = tok(rng);
  std::vector<int32_t> idx(static_cast<size_t>(o.B * o.T)), targets(idx.size());
  for (int64_t b = 0; b < o.B; ++b)
    for (int64_t t = 0; t < o.T; ++t) {
      idx[static_cast<size_t>(b * o.T + t)] = seq[static_cast<size_t>(b * (o.T + 1) + t)];
      targets[static_cast<size_t>(b * o.T + t)] = seq[static_cast<size_t>(b * (o.T + 1) + t + 1)];
    }

  std::vector<double> losses;
  auto step = [&] {
    {
      const nn::ProfileScope prof("forward (all)");
      losses.push_back(gpt.forward(idx.data(), targets.data(), o.B, o.T));
    }
    {
      const nn::ProfileScope prof("backward (all)");
      gpt.backward();
    }
    {
      const nn::ProfileScope prof("AdamW step");
      adamw.step(gpt.params(), gpt.grads(), 6e-4);
    }
    const nn::ProfileScope prof("zero_grad");
    gpt.zero_grad();
  };
  step();  // warm up: arenas, thread pools
  SgemmYardstick sgemm;
  std::vector<double> sgemm_rates{sgemm.gflops()};
  nn::profile_enable(o.profile);
  detail::reset_forward_tile_counts();
  std::vector<double> ts;
  for (int i = 0; i < o.steps; ++i) {
    const auto t0 = Clock::now();
    step();
    ts.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
    sgemm_rates.push_back(sgemm.gflops());  // no profile scope: not in the step's profile
  }
  const double median = median_of(ts);
  const double gflops_sgemm = median_of(sgemm_rates);

  Result r{};
  r.vocab = vocab;
  r.params = gpt.num_params();
  r.nanogpt_params = r.params - (c.pos == model::Position::learned ? c.block_size * c.n_embd : 0);
  r.step_median_s = median;
  r.step_min_s = *std::min_element(ts.begin(), ts.end());
  const double tokens = static_cast<double>(o.B * o.T);
  r.tokens_per_s = tokens / median;
  const double attn = 12.0 * static_cast<double>(o.n_layer * o.n_embd) * static_cast<double>(o.T);
  r.flops_per_step = (6.0 * static_cast<double>(r.nanogpt_params) + attn) * tokens;
  r.flops_per_step_causal = (6.0 * static_cast<double>(r.nanogpt_params) + attn / 2) * tokens;
  r.model_gflops = r.flops_per_step / median * 1e-9;
  r.sgemm_gflops = gflops_sgemm;
  r.mfu = r.model_gflops / gflops_sgemm;
  r.mfu_causal = r.flops_per_step_causal / median * 1e-9 / gflops_sgemm;
  r.loss_first = losses.front();
  r.loss_last = losses.back();
  r.profile = nn::profile_entries();
  r.tiles = detail::forward_tile_counts();
  nn::profile_enable(false);
  return r;
}

}  // namespace

void add_bench_train_options(CLI::App& app, BenchTrainOptions& o) {
  app.add_option("--vocab", o.vocab, "vocabulary sizes, comma separated (one model each)")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 24))
      ->capture_default_str();
  app.add_option("--pos", o.pos, "position scheme")
      ->check(CLI::IsMember({"learned", "sinusoidal", "none", "alibi", "alibi-learned",
                             "kerple-log", "kerple-power", "t5", "fire"}))
      ->capture_default_str();
  app.add_option("--B", o.B, "batch")
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--T", o.T, "sequence length")
      ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
      ->capture_default_str();
  app.add_option("--n-layer", o.n_layer, "transformer blocks")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--n-head", o.n_head, "attention heads")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--n-embd", o.n_embd, "channels")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--steps", o.steps, "timed steps after one warm-up step (median reported)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  app.add_option("--threads", o.threads, "OpenMP and OpenBLAS threads (0: the defaults)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  app.add_option("--dtype", o.dtype,
                 "the linear layers' GEMM inputs, as `slope train --dtype` (bf16 needs "
                 "AVX512_BF16 or AMX; SLOPE_BF16_EMULATE=1 for testing only). MFU stays "
                 "against the fp32 sgemm")
      ->check(CLI::IsMember({"fp32", "bf16"}))
      ->capture_default_str();
  app.add_flag("--json", o.json, "one JSON object per line instead of a table");
  app.add_flag("--profile", o.profile,
               "also report the wall time per step of each layer call (every GEMM, attention, "
               "LayerNorm, GELU, cross-entropy, AdamW, zeroing) and its share of the step, and "
               "how many of the attention forward's (query tile, key tile) pairs far-tile "
               "skipping left out");
}

int run_bench_train(const BenchTrainOptions& o) {
  const nn::GemmDtype dtype = nn::parse_gemm_dtype(o.dtype);
  if (dtype == nn::GemmDtype::bf16) nn::require_bf16();  // refused before the sgemm is timed
  set_threads(o.threads);
  const std::string cpu = cpu_model();
  const unsigned cores = std::thread::hardware_concurrency();
  const int threads = omp_get_max_threads();
  const double gflops_sgemm = linear_gemm_gflops();  // fp32, before the steps: the header's figure
  const nn::GemmDtypeScope gemm_dtype(dtype);
  if (o.json) {
    std::printf(
        "{\"kind\":\"machine\",\"cpu\":\"%s\",\"cores\":%u,\"threads\":%d,"
        "\"openblas_threads\":%d,\"isa\":\"%s\",\"openblas\":\"%s\",\"gemm\":\"%s\","
        "\"gemm_library\":\"%s\",\"dtype\":\"%s\",\"bf16_native\":%s}\n",
        json_escape(cpu).c_str(), cores, threads, openblas_get_num_threads(),
        slope::attention_cpu_isa(), json_escape(openblas_get_config()).c_str(),
        nn::gemm_backend_name(nn::gemm_backend()),
        json_escape(nn::gemm_backend_version(nn::gemm_backend())).c_str(),
        nn::gemm_dtype_name(dtype), nn::bf16_native() ? "true" : "false");
    std::printf("{\"kind\":\"sgemm\",\"gflops\":%.3f,\"threads\":%d}\n", gflops_sgemm, threads);
  } else {
    std::printf("# slope bench train: %s, %u cores; threads %d (OpenBLAS %d); isa %s\n",
                cpu.c_str(), cores, threads, openblas_get_num_threads(),
                slope::attention_cpu_isa());
    std::printf("# %s; linear layers' GEMM: %s (%s); its sgemm (1024^3): %.1f GFLOP/s\n",
                openblas_get_config(), nn::gemm_backend_name(nn::gemm_backend()),
                nn::gemm_backend_version(nn::gemm_backend()).c_str(), gflops_sgemm);
    std::printf(
        "# GPT n_layer=%lld n_head=%lld n_embd=%lld pos=%s dropout=0, B=%lld T=%lld, "
        "GEMM inputs %s%s; AdamW; 1 warm-up + %d timed steps (fwd+bwd+AdamW+zero_grad), median\n",
        static_cast<long long>(o.n_layer), static_cast<long long>(o.n_head),
        static_cast<long long>(o.n_embd), o.pos.c_str(), static_cast<long long>(o.B),
        static_cast<long long>(o.T), nn::gemm_dtype_name(dtype),
        dtype == nn::GemmDtype::fp32 ? ""
        : nn::bf16_native()          ? " (native)"
                                     : " (oneDNN's emulation: not native speed)",
        o.steps);
    std::printf(
        "# model FLOPs: nanoGPT's estimate_mfu, (6N + 12*L*C*T) per token, N without the "
        "position table\n");
    std::printf(
        "# MFU/sgemm: the step median's model FLOP/s over the median sgemm (1024^3, fp32) timed "
        "between the steps (sgemm_GF/s)\n");
    std::printf("%7s %10s %10s %10s %10s %11s %9s %11s %10s\n", "vocab", "params", "step_ms",
                "min_ms", "tokens/s", "GFLOP/step", "GFLOP/s", "sgemm_GF/s", "MFU/sgemm");
  }
  std::fflush(stdout);
  for (int64_t vocab : o.vocab) {
    const Result r = run_one(o, vocab);
    if (o.json)
      std::printf(
          "{\"kind\":\"train\",\"vocab\":%lld,\"pos\":\"%s\",\"B\":%lld,\"T\":%lld,"
          "\"n_layer\":%lld,\"n_head\":%lld,\"n_embd\":%lld,\"params\":%lld,"
          "\"nanogpt_params\":%lld,\"steps\":%d,\"step_ms\":%.3f,\"step_min_ms\":%.3f,"
          "\"tokens_per_s\":%.2f,\"flops_per_step\":%.6g,\"flops_per_step_causal\":%.6g,"
          "\"model_gflops\":%.3f,\"sgemm_gflops\":%.3f,\"mfu\":%.4f,\"mfu_causal\":%.4f,"
          "\"loss_first\":%.5f,\"loss_last\":%.5f}\n",
          static_cast<long long>(vocab), o.pos.c_str(), static_cast<long long>(o.B),
          static_cast<long long>(o.T), static_cast<long long>(o.n_layer),
          static_cast<long long>(o.n_head), static_cast<long long>(o.n_embd),
          static_cast<long long>(r.params), static_cast<long long>(r.nanogpt_params), o.steps,
          r.step_median_s * 1e3, r.step_min_s * 1e3, r.tokens_per_s, r.flops_per_step,
          r.flops_per_step_causal, r.model_gflops, r.sgemm_gflops, r.mfu, r.mfu_causal,
          r.loss_first, r.loss_last);
    else
      std::printf("%7lld %10lld %10.1f %10.1f %10.0f %11.1f %9.1f %11.1f %10.2f\n",
                  static_cast<long long>(vocab), static_cast<long long>(r.params),
                  r.step_median_s * 1e3, r.step_min_s * 1e3, r.tokens_per_s,
                  r.flops_per_step * 1e-9, r.model_gflops, r.sgemm_gflops, r.mfu);
    if (o.profile) print_profile(r, o.steps, o.json);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace slope::cli
