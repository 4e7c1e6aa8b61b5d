// The C interface (include/slope/slope.h) over the C++ API (slope/attention.h).
//
// Every entry point runs its body through `guarded`, which turns each C++ exception into a
// status code and a thread-local message: nothing is thrown across the boundary. The C++
// validate() does the problem's checks; this file adds what only a C caller can get wrong: null
// pointers, the struct_size handshake, enum fields out of range, and sizes or strides whose
// products overflow int64 (which the kernels' index arithmetic would wrap).
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "slope/attention.h"
#include "slope/slope.h"

namespace {

thread_local std::string g_last_error;

// An error this file raises itself, with its status code.
struct CError {
  slope_status status;
  std::string message;
};

template <class F>
slope_status guarded(F&& body) noexcept {
  try {
    body();
    g_last_error.clear();
    return SLOPE_OK;
  } catch (const CError& e) {
    g_last_error = e.message;
    return e.status;
  } catch (const slope::Error& e) {
    g_last_error = e.what();
    return SLOPE_ERROR_INVALID_ARGUMENT;
  } catch (const std::bad_alloc&) {
    g_last_error = "slope: out of memory (a workspace allocation failed)";
    return SLOPE_ERROR_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    g_last_error = std::string("slope: internal error: ") + e.what();
    return SLOPE_ERROR_INTERNAL;
  } catch (...) {
    g_last_error = "slope: internal error: an unknown exception";
    return SLOPE_ERROR_INTERNAL;
  }
}

[[noreturn]] void fail(slope_status status, std::string message) {
  throw CError{status, std::move(message)};
}

void need(const void* ptr, const char* who, const char* name) {
  if (!ptr)
    fail(SLOPE_ERROR_NULL_POINTER, std::string(who) + ": " + name + " is NULL; pass a buffer");
}

// The first version's struct, and the most a caller may claim (a guard against garbage sizes).
constexpr uint64_t kSizeV1 = SLOPE_ATTENTION_PROBLEM_SIZE_V1;
static_assert(kSizeV1 == sizeof(slope_attention_problem), "this library is the first version");
constexpr uint64_t kMaxStructSize = 65536;
static_assert(offsetof(slope_attention_problem, struct_size) == 0);

void defaults(slope_attention_problem* p) {
  std::memset(p, 0, sizeof *p);
  p->struct_size = sizeof *p;
  p->B = p->H = p->Hkv = p->Tq = p->Tk = 1;
  p->D = p->Dv = 64;
  p->window_left = p->window_right = -1;
  p->scale = NAN;
  p->skip_tolerance = 0x1p-24f;
  p->query_positions = SLOPE_QUERY_POSITIONS_LOWER_RIGHT;
  p->mask_kind = SLOPE_MASK_NONE;
}

void check_struct_size(uint64_t n, const char* who) {
  if (n < kSizeV1 || n > kMaxStructSize)
    fail(SLOPE_ERROR_STRUCT_SIZE,
         std::string(who) + ": struct_size = " + std::to_string(n) +
             " is not the size of a slope_attention_problem (this library's first version is " +
             std::to_string(kSizeV1) + " bytes, at most " + std::to_string(kMaxStructSize) +
             " are accepted); initialise the struct with slope_attention_problem_init(&p, "
             "sizeof p)");
}

// The caller's problem as this library's struct: the fields its struct_size covers, defaults for
// the rest; a larger (newer) struct must hold only zeros beyond the fields known here.
slope_attention_problem read_problem(const slope_attention_problem* user, const char* who) {
  need(user, who, "the problem");
  uint64_t n = 0;
  std::memcpy(&n, user, sizeof n);
  check_struct_size(n, who);
  const auto* bytes = reinterpret_cast<const unsigned char*>(user);
  for (uint64_t i = sizeof(slope_attention_problem); i < n; ++i)
    if (bytes[i] != 0)
      fail(SLOPE_ERROR_STRUCT_SIZE,
           std::string(who) + ": the problem's byte " + std::to_string(i) + " (struct_size = " +
               std::to_string(n) + ") sets a field this library (slope " SLOPE_VERSION_STRING ", " +
               std::to_string(sizeof(slope_attention_problem)) +
               "-byte problem) does not know; link a newer libslope or leave that field at its "
               "default");
  slope_attention_problem p;
  defaults(&p);
  std::memcpy(&p, user, n < sizeof p ? n : sizeof p);
  return p;
}

// a·b + c into r, false on int64 overflow.
bool mul_add(int64_t a, int64_t b, int64_t c, int64_t* r) {
  int64_t m = 0;
  return !__builtin_mul_overflow(a, b, &m) && !__builtin_add_overflow(m, c, r);
}

// Elements a (n0, n1, n2, n3) tensor with strides (s0, s1, s2, 1) addresses, or fail if that
// overflows int64. Sizes >= 1 and strides >= 0 (checked before).
void check_extent(const char* who, const char* name, int64_t n0, int64_t s0, int64_t n1, int64_t s1,
                  int64_t n2, int64_t s2, int64_t n3) {
  int64_t e = n3;
  if (mul_add(n0 - 1, s0, e, &e) && mul_add(n1 - 1, s1, e, &e) && mul_add(n2 - 1, s2, e, &e))
    return;
  fail(SLOPE_ERROR_INVALID_ARGUMENT,
       std::string(who) + ": " + name +
           "'s sizes and strides address more than 2^63 elements; check the sizes and strides");
}

bool strides_nonnegative(const slope_strides& s) { return s.b >= 0 && s.h >= 0 && s.t >= 0; }

// The C struct as the C++ problem, after the checks only a C caller needs; validate() follows.
slope::AttentionProblem to_cpp(const slope_attention_problem& c, const char* who) {
  const std::string w(who);
  if (c.causal != 0 && c.causal != 1)
    fail(SLOPE_ERROR_INVALID_ARGUMENT,
         w + ": causal = " + std::to_string(c.causal) + " must be 0 or 1");
  if (c.query_positions < SLOPE_QUERY_POSITIONS_LOWER_RIGHT ||
      c.query_positions > SLOPE_QUERY_POSITIONS_KEY_LENGTHS)
    fail(SLOPE_ERROR_INVALID_ARGUMENT,
         w + ": query_positions = " + std::to_string(c.query_positions) +
             " is not a slope_query_positions (LOWER_RIGHT 0, UPPER_LEFT 1, KEY_LENGTHS 2)");
  if (c.mask_kind < SLOPE_MASK_NONE || c.mask_kind > SLOPE_MASK_ADDITIVE)
    fail(SLOPE_ERROR_INVALID_ARGUMENT,
         w + ": mask_kind = " + std::to_string(c.mask_kind) +
             " is not a slope_mask_kind (NONE 0, BOOL 1, ADDITIVE 2)");
  if (c.mask_kind != SLOPE_MASK_NONE) need(c.mask, who, "mask (mask_kind is set)");
  if (c.reserved != 0)
    fail(SLOPE_ERROR_INVALID_ARGUMENT,
         w + ": reserved = " + std::to_string(c.reserved) + " must be 0");

  // Index arithmetic must not overflow: with sizes >= 1 and strides >= 0 (validate() reports
  // the others), every tensor's last element and the element counts must fit in int64.
  const bool sizes_ok =
      c.B >= 1 && c.H >= 1 && c.Hkv >= 1 && c.Tq >= 1 && c.Tk >= 1 && c.D >= 1 && c.Dv >= 1;
  if (sizes_ok && strides_nonnegative(c.q_strides) && strides_nonnegative(c.k_strides) &&
      strides_nonnegative(c.v_strides) && strides_nonnegative(c.out_strides)) {
    // Packed rows are addressed by time alone: at most B·Tq (B·Tk) of them.
    const bool packed = c.cu_seqlens_q != nullptr;
    int64_t rows_q = c.Tq, rows_k = c.Tk, Bt = c.B;
    if (packed) {
      if (!mul_add(c.B, c.Tq, 0, &rows_q) || !mul_add(c.B, c.Tk, 0, &rows_k))
        fail(SLOPE_ERROR_INVALID_ARGUMENT, w + ": B*Tq or B*Tk overflows int64");
      Bt = 1;
    }
    check_extent(who, "q", Bt, c.q_strides.b, c.H, c.q_strides.h, rows_q, c.q_strides.t, c.D);
    check_extent(who, "k", Bt, c.k_strides.b, c.Hkv, c.k_strides.h, rows_k, c.k_strides.t, c.D);
    check_extent(who, "v", Bt, c.v_strides.b, c.Hkv, c.v_strides.h, rows_k, c.v_strides.t, c.Dv);
    check_extent(who, "out", Bt, c.out_strides.b, c.H, c.out_strides.h, rows_q, c.out_strides.t,
                 c.Dv);
    // lse (B, H, Tq), and the element counts validate() and the kernels form.
    int64_t n = 0;
    const int64_t dmax = c.D > c.Dv ? c.D : c.Dv;
    if (!mul_add(c.B, c.H, 0, &n) || !mul_add(n, c.Tq, 0, &n) || !mul_add(n, dmax, 0, &n) ||
        !mul_add(c.B, c.Hkv, 0, &n) || !mul_add(n, c.Tk, 0, &n) || !mul_add(n, dmax, 0, &n) ||
        !mul_add(c.B, c.H, 0, &n) || !mul_add(n, c.Tk, 0, &n))
      fail(SLOPE_ERROR_INVALID_ARGUMENT,
           w + ": the sizes (B, H, Hkv, Tq, Tk, D, Dv) multiply past 2^63 elements");
    if (c.mask_kind != SLOPE_MASK_NONE && c.mask_stride_b >= 0 && c.mask_stride_h >= 0 &&
        c.mask_stride_t >= 0)
      check_extent(who, "mask", c.B, c.mask_stride_b, c.H, c.mask_stride_h, c.Tq, c.mask_stride_t,
                   c.Tk);
    if (c.slopes_stride_b > 0 && !mul_add(c.B - 1, c.slopes_stride_b, c.H, &n))
      fail(SLOPE_ERROR_INVALID_ARGUMENT,
           w + ": slopes_stride_b = " + std::to_string(c.slopes_stride_b) + " overflows int64");
  }

  slope::AttentionProblem p;
  p.B = c.B, p.H = c.H, p.Hkv = c.Hkv, p.Tq = c.Tq, p.Tk = c.Tk, p.D = c.D, p.Dv = c.Dv;
  const auto strides = [](const slope_strides& s) { return slope::Strides{s.b, s.h, s.t}; };
  p.q_strides = strides(c.q_strides);
  p.k_strides = strides(c.k_strides);
  p.v_strides = strides(c.v_strides);
  p.out_strides = strides(c.out_strides);
  p.scale = c.scale;
  p.causal = c.causal == 1;
  p.key_lengths = c.key_lengths;
  p.query_positions = static_cast<slope::QueryPositions>(c.query_positions);
  p.cu_seqlens_q = c.cu_seqlens_q;
  p.cu_seqlens_k = c.cu_seqlens_k;
  p.window_left = c.window_left;
  p.window_right = c.window_right;
  p.softcap = c.softcap;
  p.slopes_stride_b = c.slopes_stride_b;
  p.dropout_p = c.dropout_p;
  p.dropout_seed = c.dropout_seed;
  p.dropout_offset = c.dropout_offset;
  p.mask_kind = static_cast<slope::MaskKind>(c.mask_kind);
  p.mask = c.mask;
  p.mask_stride_b = c.mask_stride_b;
  p.mask_stride_h = c.mask_stride_h;
  p.mask_stride_t = c.mask_stride_t;
  p.skip_tolerance = c.skip_tolerance;
  return p;
}

// The problem and inputs of a call, checked (null pointers, then the C++ validate()).
struct Call {
  slope::AttentionProblem p;
  slope::AttentionInputs<float> in;
};

Call prepare(const char* who, const slope_attention_problem* cp, const float* q, const float* k,
             const float* v, const float* slopes_left, const float* slopes_right) {
  const slope_attention_problem c = read_problem(cp, who);
  need(q, who, "q");
  need(k, who, "k");
  need(v, who, "v");
  Call call{to_cpp(c, who), {}};
  call.in.q = q, call.in.k = k, call.in.v = v;
  call.in.slopes_left = slopes_left, call.in.slopes_right = slopes_right;
  slope::validate(call.p, call.in);
  // Packed: Tq and Tk only bound the documents' lengths (max_seqlen), yet the kernels size
  // per-thread workspaces and tile loops by them, so a generous bound (2^31 for "any length")
  // would allocate terabytes inside an OpenMP region (std::terminate) or loop over empty tiles.
  // Clamp them to the longest document: every row reads only its own document's lengths, so the
  // results are the same (tests/capi: PackedWithAGenerousMaxSeqlen).
  if (call.p.cu_seqlens_q) {
    int64_t max_q = 1, max_k = 1;
    for (int64_t b = 0; b < call.p.B; ++b) {
      max_q = std::max<int64_t>(max_q, call.p.cu_seqlens_q[b + 1] - call.p.cu_seqlens_q[b]);
      max_k = std::max<int64_t>(max_k, call.p.cu_seqlens_k[b + 1] - call.p.cu_seqlens_k[b]);
    }
    call.p.Tq = max_q, call.p.Tk = max_k;
  }
  return call;
}

void check_preset(const char* who, int64_t n_heads, double max_bias) {
  if (n_heads < 1)
    fail(SLOPE_ERROR_INVALID_ARGUMENT,
         std::string(who) + ": n_heads must be >= 1, got " + std::to_string(n_heads));
  if (!(max_bias > 0.0) || !std::isfinite(max_bias))
    fail(SLOPE_ERROR_INVALID_ARGUMENT, std::string(who) +
                                           ": max_bias must be a positive finite number, got " +
                                           std::to_string(max_bias));
}

void copy(const std::vector<float>& from, float* to) {
  std::memcpy(to, from.data(), from.size() * sizeof(float));
}

}  // namespace

extern "C" {

const char* slope_last_error(void) { return g_last_error.c_str(); }

const char* slope_status_name(slope_status status) {
  switch (status) {
    case SLOPE_OK:
      return "SLOPE_OK";
    case SLOPE_ERROR_NULL_POINTER:
      return "SLOPE_ERROR_NULL_POINTER";
    case SLOPE_ERROR_INVALID_ARGUMENT:
      return "SLOPE_ERROR_INVALID_ARGUMENT";
    case SLOPE_ERROR_STRUCT_SIZE:
      return "SLOPE_ERROR_STRUCT_SIZE";
    case SLOPE_ERROR_OUT_OF_MEMORY:
      return "SLOPE_ERROR_OUT_OF_MEMORY";
    case SLOPE_ERROR_INTERNAL:
      return "SLOPE_ERROR_INTERNAL";
  }
  return "unknown";
}

const char* slope_version(void) { return SLOPE_VERSION_STRING; }

const char* slope_cpu_isa(void) {
  const char* isa = "generic";
  // attention_cpu_isa() may throw on a bad SLOPE_ISA; the message stays in slope_last_error().
  guarded([&] { isa = slope::attention_cpu_isa(); });
  return isa;
}

slope_status slope_attention_problem_init(slope_attention_problem* p, size_t struct_size) {
  return guarded([&] {
    const char* who = "slope_attention_problem_init";
    need(p, who, "the problem");
    check_struct_size(struct_size, who);
    slope_attention_problem d;
    defaults(&d);
    d.struct_size = struct_size;
    const size_t known = sizeof d;
    std::memcpy(p, &d, struct_size < known ? struct_size : known);
    if (struct_size > known)
      std::memset(reinterpret_cast<unsigned char*>(p) + known, 0, struct_size - known);
  });
}

slope_status slope_attention_contiguous_strides(slope_attention_problem* p) {
  return guarded([&] {
    const char* who = "slope_attention_contiguous_strides";
    const slope_attention_problem c = read_problem(p, who);
    if (c.B < 1 || c.H < 1 || c.Hkv < 1 || c.Tq < 1 || c.Tk < 1 || c.D < 1 || c.Dv < 1)
      fail(SLOPE_ERROR_INVALID_ARGUMENT,
           std::string(who) + ": every size must be >= 1 (B=" + std::to_string(c.B) +
               " H=" + std::to_string(c.H) + " Hkv=" + std::to_string(c.Hkv) +
               " Tq=" + std::to_string(c.Tq) + " Tk=" + std::to_string(c.Tk) +
               " D=" + std::to_string(c.D) + " Dv=" + std::to_string(c.Dv) + ")");
    const bool packed = c.cu_seqlens_q != nullptr;
    // (B, H, T, X) row-major, or packed (total, H, X): row stride H·X, head stride X.
    const auto layout = [&](int64_t heads, int64_t T, int64_t X, slope_strides* s) {
      int64_t ht = 0, bs = 0;
      if (packed) {
        if (!mul_add(heads, X, 0, &ht))
          fail(SLOPE_ERROR_INVALID_ARGUMENT, std::string(who) + ": strides overflow int64");
        *s = slope_strides{0, X, ht};
        return;
      }
      if (!mul_add(T, X, 0, &ht) || !mul_add(heads, ht, 0, &bs))
        fail(SLOPE_ERROR_INVALID_ARGUMENT, std::string(who) + ": strides overflow int64");
      *s = slope_strides{bs, ht, X};
    };
    slope_strides q{}, k{}, v{}, out{};
    layout(c.H, c.Tq, c.D, &q);
    layout(c.Hkv, c.Tk, c.D, &k);
    layout(c.Hkv, c.Tk, c.Dv, &v);
    layout(c.H, c.Tq, c.Dv, &out);
    p->q_strides = q, p->k_strides = k, p->v_strides = v, p->out_strides = out;
  });
}

slope_status slope_attention_check(const slope_attention_problem* p, const float* q, const float* k,
                                   const float* v, const float* slopes_left,
                                   const float* slopes_right) {
  return guarded([&] { prepare("slope_attention_check", p, q, k, v, slopes_left, slopes_right); });
}

slope_status slope_attention_forward(const slope_attention_problem* p, const float* q,
                                     const float* k, const float* v, const float* slopes_left,
                                     const float* slopes_right, float* out, float* lse) {
  return guarded([&] {
    const char* who = "slope_attention_forward";
    const Call c = prepare(who, p, q, k, v, slopes_left, slopes_right);
    need(out, who, "out");
    need(lse, who, "lse");
    slope::attention_forward(c.p, c.in, out, lse);
  });
}

slope_status slope_attention_backward(const slope_attention_problem* p, const float* q,
                                      const float* k, const float* v, const float* slopes_left,
                                      const float* slopes_right, const float* out,
                                      const float* dout, const float* lse, float* dq, float* dk,
                                      float* dv, float* dslopes_left, float* dslopes_right) {
  return guarded([&] {
    const char* who = "slope_attention_backward";
    const Call c = prepare(who, p, q, k, v, slopes_left, slopes_right);
    need(out, who, "out");
    need(dout, who, "dout");
    need(lse, who, "lse");
    need(dq, who, "dq");
    need(dk, who, "dk");
    need(dv, who, "dv");
    slope::validate_backward(c.p, c.in);
    slope::attention_backward(c.p, c.in, out, dout, lse,
                              {.dq = dq,
                               .dk = dk,
                               .dv = dv,
                               .dslopes_left = dslopes_left,
                               .dslopes_right = dslopes_right});
  });
}

slope_status slope_alibi_slopes(int64_t n_heads, double max_bias, float* slopes) {
  return guarded([&] {
    const char* who = "slope_alibi_slopes";
    need(slopes, who, "slopes");
    check_preset(who, n_heads, max_bias);
    copy(slope::alibi_slopes(n_heads, max_bias), slopes);
  });
}

slope_status slope_alibi_slopes_geometric(int64_t n_heads, double max_bias, float* slopes) {
  return guarded([&] {
    const char* who = "slope_alibi_slopes_geometric";
    need(slopes, who, "slopes");
    check_preset(who, n_heads, max_bias);
    copy(slope::alibi_slopes_geometric(n_heads, max_bias), slopes);
  });
}

slope_status slope_alibi_slopes_nonsymmetric(int64_t n_heads, double max_bias, float* left,
                                             float* right) {
  return guarded([&] {
    const char* who = "slope_alibi_slopes_nonsymmetric";
    need(left, who, "left");
    need(right, who, "right");
    check_preset(who, n_heads, max_bias);
    if (n_heads % 2 != 0)
      fail(SLOPE_ERROR_INVALID_ARGUMENT,
           std::string(who) + ": n_heads must be even (half look left, half right), got " +
               std::to_string(n_heads));
    const slope::SlopePair s = slope::alibi_slopes_nonsymmetric(n_heads, max_bias);
    copy(s.left, left);
    copy(s.right, right);
  });
}

}  // extern "C"
