// `slope bench attention` (and bench/attention): slope's fused CPU attention, every variant side
// by side, against OpenBLAS sgemm measured in the same run, plus peak extra memory versus T.
// Peers in PyTorch are measured by bench/attention.py, which runs this too and writes
// docs/BENCHMARKS.md.
#include <omp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/bench_attention.h"
#include "cli/sgemm_bench.h"
#include "slope/attention.h"

namespace slope::cli {

namespace {

// ALiBi variants use fixed Press slopes (no slope gradient) unless `learned`, which also asks
// the backward for both slope gradients. `rel`: a learned relative bias (issue 19) at its
// training start (relative_bias_init, FIRE's L = T), its parameter gradient asked for.
struct Variant {
  const char* name;
  bool causal, alibi, learned;
  float skip;
  slope::RelativeBiasKind rel = slope::RelativeBiasKind::kNone;
};
const Variant kVariants[] = {
    {"none", false, false, false, 0.0f},
    {"causal", true, false, false, 0.0f},
    {"alibi_causal_noskip", true, true, false, 0.0f},
    {"alibi_causal_skip", true, true, false, 0x1p-24f},
    {"alibi_learned_causal_noskip", true, true, true, 0.0f},
    {"alibi_symmetric_skip", false, true, false, 0x1p-24f},
    {"kerple_log_causal_skip", true, false, false, 0x1p-24f, slope::RelativeBiasKind::kKerpleLog},
    {"kerple_power_causal_skip", true, false, false, 0x1p-24f,
     slope::RelativeBiasKind::kKerplePower},
    {"t5_causal_skip", true, false, false, 0x1p-24f, slope::RelativeBiasKind::kT5},
    {"fire_causal", true, false, false, 0x1p-24f, slope::RelativeBiasKind::kFire},
};

// The inputs of variant v (its relative bias's parameters in rel, its gradient in drel).
slope::AttentionInputs<float> inputs_of(const Variant& v, int64_t H, int64_t T,
                                        std::vector<float>& q, std::vector<float>& k,
                                        std::vector<float>& val, std::vector<float>& slopes,
                                        std::vector<float>& rel, std::vector<float>& drel) {
  slope::AttentionInputs<float> in{q.data(), k.data(), val.data(),
                                   v.alibi ? slopes.data() : nullptr,
                                   v.learned ? slopes.data() : nullptr};
  if (v.rel == slope::RelativeBiasKind::kNone) return in;
  in.rel.kind = v.rel;
  in.rel.bidirectional = !v.causal;
  rel = slope::relative_bias_init(in.rel, H, static_cast<double>(T), 1);
  drel.assign(rel.size(), 0.0f);
  in.rel.params = rel.data();
  return in;
}

struct Tensors {
  std::vector<float> q, k, v, out, lse, dout, dq, dk, dv, slopes, dsl, dsr, rel, drel;
  Tensors(int64_t B, int64_t H, int64_t T, int64_t D) {
    const size_t n = static_cast<size_t>(B * H * T * D);
    std::mt19937 rng(1);
    std::normal_distribution<float> N(0.0f, 1.0f);
    for (auto* t : {&q, &k, &v, &dout}) {
      t->resize(n);
      for (float& e : *t) e = N(rng);
    }
    for (auto* t : {&out, &dq, &dk, &dv}) t->assign(n, 0.0f);
    lse.assign(static_cast<size_t>(B * H * T), 0.0f);
    slopes = slope::alibi_slopes(H);
    dsl.assign(static_cast<size_t>(H), 0.0f);
    dsr.assign(static_cast<size_t>(H), 0.0f);
  }
};

slope::AttentionProblem problem(const BenchAttentionOptions& o, int64_t B, int64_t T, const Variant& v) {
  slope::AttentionProblem p;
  p.B = B, p.H = o.H, p.Hkv = o.H, p.Tq = T, p.Tk = T, p.D = o.D, p.Dv = o.D;
  p.q_strides = p.k_strides = p.v_strides = p.out_strides = slope::contiguous_strides(o.H, T, o.D);
  p.causal = v.causal;
  p.skip_tolerance = v.skip;
  return p;
}

template <class F>
double time_it(const BenchAttentionOptions& o, F&& f) {
  return median_seconds(std::forward<F>(f), o.reps);  // median after a warm-up
}

long max_rss_kib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

// Peak memory beyond inputs and outputs, in a fresh child so high-water marks do not mix.
double extra_memory_mib(const BenchAttentionOptions& o, int64_t T, const Variant& v, bool backward) {
  int fds[2];
  if (pipe(fds) != 0) return -1;
  const pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    Tensors t(1, o.H, T, o.D);
    std::fill(t.out.begin(), t.out.end(), 1.0f);  // touch every page before the baseline
    for (auto* x : {&t.dq, &t.dk, &t.dv, &t.lse}) std::fill(x->begin(), x->end(), 1.0f);
    const slope::AttentionProblem p = problem(o, 1, T, v);
    slope::AttentionInputs<float> in{t.q.data(), t.k.data(), t.v.data(),
                                     v.alibi ? t.slopes.data() : nullptr,
                                     v.learned ? t.slopes.data() : nullptr};
    const long before = max_rss_kib();
    slope::attention_forward(p, in, t.out.data(), t.lse.data());
    if (backward)
      slope::attention_backward(p, in, t.out.data(), t.dout.data(), t.lse.data(),
                                {t.dq.data(), t.dk.data(), t.dv.data(),
                                 v.learned ? t.dsl.data() : nullptr,
                                 v.learned ? t.dsr.data() : nullptr});
    const double mib = static_cast<double>(max_rss_kib() - before) / 1024.0;
    if (write(fds[1], &mib, sizeof mib) != sizeof mib) _exit(1);
    _exit(0);
  }
  close(fds[1]);
  double mib = -1;
  if (read(fds[0], &mib, sizeof mib) != sizeof mib) mib = -1;
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return mib;
}

}  // namespace

void add_bench_attention_options(CLI::App& app, BenchAttentionOptions& o) {
  app.add_option("--T", o.T, "sequence lengths, comma separated")
      ->delimiter(',')
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 24))
      ->capture_default_str();
  app.add_option("--B", o.B, "batch")->check(CLI::Range(int64_t{1}, int64_t{1} << 24))->capture_default_str();
  app.add_option("--H", o.H, "heads")->check(CLI::Range(int64_t{1}, int64_t{1} << 24))->capture_default_str();
  app.add_option("--D", o.D, "head dim")->check(CLI::Range(int64_t{1}, int64_t{1} << 24))->capture_default_str();
  app.add_option("--reps", o.reps, "timed repetitions (0: adaptive, >= 3 and >= 0.5 s)")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  app.add_flag("--memory", o.memory, "also measure peak extra memory vs T at B=1 (child processes)");
  app.add_flag("--json", o.json, "one JSON object per line instead of a table");
}

int run_bench_attention(const BenchAttentionOptions& o) {
  // Memory is measured first, in forked children, before this process starts any OpenMP or
  // OpenBLAS thread pool (libgomp's pool does not survive fork); printed at the end.
  struct MemoryRow {
    const Variant* v;
    int64_t T;
    double mib;
  };
  std::vector<MemoryRow> memory;
  if (o.memory)
    for (const Variant* v : {&kVariants[3], &kVariants[4]})
      for (int64_t T : {1024, 4096, 16384}) memory.push_back({v, T, extra_memory_mib(o, T, *v, true)});
  auto print_memory = [&] {
    if (memory.empty()) return;
    if (!o.json)
      std::printf("# peak extra memory, B=1 H=%lld D=%lld (MiB, forward+backward)\n",
                  static_cast<long long>(o.H), static_cast<long long>(o.D));
    for (const MemoryRow& m : memory) {
      if (o.json)
        std::printf("{\"kind\":\"memory\",\"variant\":\"%s\",\"T\":%lld,\"extra_mib\":%.2f}\n",
                    m.v->name, static_cast<long long>(m.T), m.mib);
      else
        std::printf("memory %-28s T=%-6lld %8.2f MiB\n", m.v->name, static_cast<long long>(m.T),
                    m.mib);
    }
  };
  const double gflops_sgemm = sgemm_gflops(o.reps);
  if (!o.json) {
    std::printf("# slope bench attention: isa=%s threads=%d B=%lld H=%lld D=%lld\n",
                slope::attention_cpu_isa(), omp_get_max_threads(), static_cast<long long>(o.B),
                static_cast<long long>(o.H), static_cast<long long>(o.D));
    std::printf("# OpenBLAS sgemm (1024^3): %.1f GFLOP/s\n", gflops_sgemm);
    std::printf("%-28s %6s %10s %10s %9s %10s\n", "variant", "T", "fwd_ms", "fwdbwd_ms",
                "fwd_GF/s", "fwd/sgemm");
  } else {
    std::printf("{\"kind\":\"sgemm\",\"gflops\":%.3f,\"isa\":\"%s\",\"threads\":%d}\n", gflops_sgemm,
                slope::attention_cpu_isa(), omp_get_max_threads());
  }
  for (int64_t T : o.T) {
    Tensors t(o.B, o.H, T, o.D);
    for (const Variant& v : kVariants) {
      const slope::AttentionProblem p = problem(o, o.B, T, v);
      const slope::AttentionInputs<float> in =
          inputs_of(v, o.H, T, t.q, t.k, t.v, t.slopes, t.rel, t.drel);
      const double fwd = time_it(o, [&] { slope::attention_forward(p, in, t.out.data(), t.lse.data()); });
      const double fb = time_it(o, [&] {
        slope::attention_forward(p, in, t.out.data(), t.lse.data());
        slope::attention_backward(p, in, t.out.data(), t.dout.data(), t.lse.data(),
                                  {t.dq.data(), t.dk.data(), t.dv.data(),
                                   v.learned ? t.dsl.data() : nullptr,
                                   v.learned ? t.dsr.data() : nullptr,
                                   t.drel.empty() ? nullptr : t.drel.data()});
      });
      // Forward FLOPs 4·B·H·T²·D, halved when causal (skipped tiles still count: same work asked).
      const double flops = 4.0 * o.B * o.H * static_cast<double>(T) * T * o.D * (v.causal ? 0.5 : 1.0);
      const double gf = flops / fwd * 1e-9;
      if (o.json)
        std::printf("{\"kind\":\"slope\",\"variant\":\"%s\",\"T\":%lld,\"fwd_ms\":%.4f,\"fwdbwd_ms\":%.4f,"
                    "\"fwd_gflops\":%.3f}\n", v.name, static_cast<long long>(T), fwd * 1e3, fb * 1e3, gf);
      else
        std::printf("%-28s %6lld %10.3f %10.3f %9.1f %10.2f\n", v.name, static_cast<long long>(T),
                    fwd * 1e3, fb * 1e3, gf, gf / gflops_sgemm);
      std::fflush(stdout);
    }
  }
  print_memory();
  return 0;
}

}  // namespace slope::cli
