/* slope — the C interface (C99) to the fused attention: a stable ABI for C, Rust, Go, Julia, Zig.
 *
 * One problem description (slope_attention_problem) covers every variant of the C++ API
 * (slope/attention.h): causal, ALiBi with left/right slopes per head or per (batch, head),
 * grouped queries, Tq != Tk with a choice of query positions, key lengths (padding), packed
 * sequences (cu_seqlens), a sliding window, softcap, an explicit bool or additive mask with
 * broadcast strides, attention dropout and far-tile skipping. Tensors are float32, passed as
 * plain pointers with the strides the problem gives; the library cannot see buffer lengths, so
 * every buffer must hold the elements its shape and strides address.
 *
 * Errors: every function returns a slope_status; SLOPE_OK is 0. On an error, slope_last_error()
 * gives a message naming what was wrong and what to do. No exception crosses this interface and
 * bad arguments (null pointers, sizes < 1, shapes that disagree, invalid strides, NaN slopes, an
 * unknown struct_size) give an error code, never a crash.
 *
 * Forward compatibility: slope_attention_problem starts with struct_size, set by
 * slope_attention_problem_init(&p, sizeof p) (or SLOPE_ATTENTION_PROBLEM_INIT(&p)). Later versions
 * only append fields; the library reads the fields the caller's struct_size covers and gives the
 * others their defaults, and refuses a larger struct whose extra bytes are not zero (fields this
 * library does not know).
 *
 * Threads: the kernels use OpenMP (OMP_NUM_THREADS); any number of threads may call the library
 * at once, each with its own error message.
 *
 *   cc example.c $(pkg-config --cflags --libs slope)     or CMake: find_package(slope),
 *                                                         target_link_libraries(app slope::slope)
 */
#ifndef SLOPE_SLOPE_H_
#define SLOPE_SLOPE_H_

#include <stddef.h>
#include <stdint.h>

#include "slope/version.h"

#if defined(_WIN32)
#if defined(SLOPE_BUILDING_LIBRARY)
#define SLOPE_API __declspec(dllexport)
#else
#define SLOPE_API __declspec(dllimport)
#endif
#else
#define SLOPE_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Status codes --------------------------------------------------------------------------- */

typedef enum slope_status {
  SLOPE_OK = 0,
  SLOPE_ERROR_NULL_POINTER = 1,     /* a required pointer (problem, q, k, v, out, lse, dout, dq,
                                       dk, dv, an output of a preset, the mask when mask_kind
                                       is set) is null */
  SLOPE_ERROR_INVALID_ARGUMENT = 2, /* sizes, strides, slopes, lengths, options out of range or
                                       disagreeing with each other */
  SLOPE_ERROR_STRUCT_SIZE = 3,      /* struct_size is smaller than the first version's, absurdly
                                       large, or covers nonzero fields this library lacks */
  SLOPE_ERROR_OUT_OF_MEMORY = 4,    /* a workspace allocation failed */
  SLOPE_ERROR_INTERNAL = 5          /* anything else (a bug: please report it) */
} slope_status;

/* The message of the last failed slope_* call on this thread ("" after a successful one). The
 * pointer stays valid until the next slope_* call on the same thread. Never null. */
SLOPE_API const char* slope_last_error(void);

/* "SLOPE_OK", "SLOPE_ERROR_NULL_POINTER", ...; "unknown" for other values. Static storage. */
SLOPE_API const char* slope_status_name(slope_status status);

/* The library's version, "MAJOR.MINOR.PATCH" (compare with SLOPE_VERSION_STRING, the version of
 * the header the caller compiled against). Static storage. */
SLOPE_API const char* slope_version(void);

/* The vector instruction set the kernels dispatch to: "avx512", "avx2" or "generic" (the best
 * this processor has, or the one the environment variable SLOPE_ISA names). Static storage. */
SLOPE_API const char* slope_cpu_isa(void);

/* ---- The attention problem ------------------------------------------------------------------ */

/* Strides of a (B, H, T, D) tensor in elements; the last dimension is contiguous (stride 1). */
typedef struct slope_strides {
  int64_t b, h, t;
} slope_strides;

/* Where the queries sit among the keys: query i of batch row b is at position i + offset_b. */
typedef enum slope_query_positions {
  SLOPE_QUERY_POSITIONS_LOWER_RIGHT = 0, /* offset Tk_b - Tq_b: the last query is the last key
                                            (flash-attn >= 2.1; the row's own lengths, the
                                            document's when packed; key_lengths do not move it) */
  SLOPE_QUERY_POSITIONS_UPPER_LEFT = 1,  /* offset 0 (torch SDPA's is_causal) */
  SLOPE_QUERY_POSITIONS_KEY_LENGTHS = 2  /* offset key_lengths[b] - Tq: the queries end where row
                                            b's keys end (a KV cache); needs key_lengths */
} slope_query_positions;

/* The explicit mask's element type. */
typedef enum slope_mask_kind {
  SLOPE_MASK_NONE = 0,
  SLOPE_MASK_BOOL = 1,    /* const uint8_t*: nonzero = the key may be attended */
  SLOPE_MASK_ADDITIVE = 2 /* const float*: added to the score (-INFINITY masks) */
} slope_mask_kind;

/* The default max_bias of the ALiBi presets (Press et al.'s slopes). */
#define SLOPE_DEFAULT_MAX_BIAS 8.0

/* The attention problem (DESIGN.md, and slope/attention.h's AttentionProblem, field for field):
 *
 *   score(i, j) = cap(scale * q_i.k_j) + bias_bh(i, j) + mask(i, j), query i at position
 *   p_i = i + offset_b (query_positions), cap(x) = softcap*tanh(x/softcap) (x when softcap is 0),
 *   bias_bh(i, j) = -m_left[b,h]*(p_i - j) for j <= p_i, -m_right[b,h]*(j - p_i) for j > p_i.
 *   out_i = sum_j softmax_j(score(i, .)) v_j; lse_i = log sum_j exp(score(i, j)) (natural log).
 *
 * A slope is any finite real or +INFINITY (masks that side; the diagonal is never masked).
 * causal masks j > p_i; the window masks j < p_i - window_left and j > p_i + window_right; keys
 * j >= key_lengths[b] are masked. A row with no visible key gives out 0 and lse -INFINITY (never
 * NaN), and zero gradients.
 *
 * Initialise with slope_attention_problem_init(&p, sizeof p) (defaults below), then set the
 * sizes and call slope_attention_contiguous_strides(&p) or set the strides by hand. A
 * zero-filled struct (struct_size 0) is refused, so defaults are never silently missing.
 * Pointers in the struct (key_lengths, cu_seqlens, mask) are borrowed for the call only. */
typedef struct slope_attention_problem {
  uint64_t struct_size; /* sizeof(slope_attention_problem) as the caller compiled it */

  int64_t B;   /* batch (with packed sequences: the number of documents)         default 1 */
  int64_t H;   /* query heads                                                     default 1 */
  int64_t Hkv; /* key/value heads; H % Hkv == 0 (grouped queries)                 default 1 */
  int64_t Tq;  /* query length (packed: max_seqlen_q, a bound on every document's
                  length; any larger bound gives the same results at no cost)   default 1 */
  int64_t Tk;  /* key length (packed: max_seqlen_k, likewise)                    default 1 */
  int64_t D;   /* head dim of q and k                                             default 64 */
  int64_t Dv;  /* head dim of v and the output                                    default 64 */

  slope_strides q_strides;   /* q (B, H, Tq, D); dq the same. Packed: (total_q, H, D), b = 0 */
  slope_strides k_strides;   /* k (B, Hkv, Tk, D); dk the same */
  slope_strides v_strides;   /* v (B, Hkv, Tk, Dv); dv the same */
  slope_strides out_strides; /* out (B, H, Tq, Dv); dout the same. lse is contiguous (B, H, Tq),
                                or (H, total_q) when packed                  default all 0 */

  const int32_t* key_lengths; /* (B): keys j >= key_lengths[b] are masked, 0 <= len <= Tk; or
                                 NULL: every key visible                     default NULL */
  /* Packed sequences (flash-attn's varlen): document b's queries are rows [cu_seqlens_q[b],
   * cu_seqlens_q[b+1]) of q/out (row r at r*q_strides.t + h*q_strides.h), its keys rows
   * [cu_seqlens_k[b], cu_seqlens_k[b+1]) of k/v. Both or neither; key_lengths must be NULL and
   * every batch stride 0. Positions, causality and ALiBi restart in each document. */
  const int32_t* cu_seqlens_q; /* (B + 1), from 0, non-decreasing, or NULL   default NULL */
  const int32_t* cu_seqlens_k; /* (B + 1), from 0, non-decreasing, or NULL   default NULL */

  int64_t window_left;     /* sliding window: -1 unbounded, else >= 0      default -1 */
  int64_t window_right;    /*                                               default -1 */
  int64_t slopes_stride_b; /* 0: slopes are (H), shared by the batch; >= H: (B, H) with this
                              batch stride (per-batch slopes)               default 0 */

  uint64_t dropout_seed;   /* attention dropout's Philox key (see dropout_p) default 0 */
  uint64_t dropout_offset; /* advance it (e.g. by 1) per call for a fresh mask   default 0 */

  const void* mask;      /* (Bm, Hm, Tq, Tk), Bm in {1, B}, Hm in {1, H}, columns contiguous;
                            element type by mask_kind; packed: indexed by each document's own
                            (i, j)                                          default NULL */
  int64_t mask_stride_b; /* 0 broadcasts over B                             default 0 */
  int64_t mask_stride_h; /* 0 broadcasts over H                             default 0 */
  int64_t mask_stride_t; /* row stride, >= Tk                               default 0 */

  float scale;             /* score scale; NAN: 1/sqrt(D)                      default NAN */
  float softcap;           /* 0: off; else cap(x) = softcap*tanh(x/softcap)    default 0 */
  float dropout_p;         /* in [0, 1): probability of dropping a key; the keep mask
                              is a pure function of (seed, offset, b, h, i, j), regenerated by
                              the backward (Philox4x32-10; the mapping is spelled out beside
                              attention_dropout_mask in the sources' include/slope/attention.h);
                              lse is unchanged by dropout                  default 0 */
  float skip_tolerance;    /* far-tile skipping (ALiBi): each row loses at most this much of its
                              softmax mass; 0 switches it off; in [0, 1)       default 2^-24 */
  int32_t causal;          /* 0 or 1                                        default 0 */
  int32_t query_positions; /* a slope_query_positions                       default LOWER_RIGHT */
  int32_t mask_kind;       /* a slope_mask_kind                             default NONE */
  int32_t reserved;        /* must be 0                                     default 0 */
} slope_attention_problem;

/* The size of the first version's struct (its last field is `reserved`): the smallest struct_size
 * accepted. Later versions append fields after `reserved`, so this value never changes. */
#define SLOPE_ATTENTION_PROBLEM_SIZE_V1 \
  ((uint64_t)(offsetof(slope_attention_problem, reserved) + sizeof(int32_t)))

/* Sets the defaults above in the first struct_size bytes of *p (the caller's sizeof), including
 * struct_size itself. Errors: NULL_POINTER; STRUCT_SIZE if struct_size is smaller than
 * SLOPE_ATTENTION_PROBLEM_SIZE_V1 or larger than 65536 (bytes this library does not know are
 * zeroed). */
SLOPE_API slope_status slope_attention_problem_init(slope_attention_problem* p, size_t struct_size);
#define SLOPE_ATTENTION_PROBLEM_INIT(p) slope_attention_problem_init((p), sizeof *(p))

/* Sets the four stride triples for contiguous tensors from the sizes: (B, H, T, D) row-major, or,
 * when cu_seqlens_q is set, the packed (total, H, D) layout with batch stride 0. Errors:
 * NULL_POINTER, STRUCT_SIZE, INVALID_ARGUMENT (a size < 1, or strides beyond 2^63). */
SLOPE_API slope_status slope_attention_contiguous_strides(slope_attention_problem* p);

/* Checks a problem and its inputs as the forward does, without computing anything: sizes,
 * strides, key lengths and cu_seqlens (read), slopes (read: NaN and -INFINITY are refused).
 * q, k, v: (B, H, Tq, D), (B, Hkv, Tk, D), (B, Hkv, Tk, Dv) with the problem's strides (only
 * checked for null). slopes_left: (H), or (B, H) at b*slopes_stride_b + h; NULL: no position
 * bias. slopes_right: the same layout, or NULL: the same as slopes_left. */
SLOPE_API slope_status slope_attention_check(const slope_attention_problem* p, const float* q,
                                             const float* k, const float* v,
                                             const float* slopes_left, const float* slopes_right);

/* Forward: writes out (B, H, Tq, Dv) with out_strides and lse, contiguous (B, H, Tq) or
 * (H, total_q) packed, natural log. Inputs as in slope_attention_check. Deterministic.
 * Errors: NULL_POINTER (p, q, k, v, out, lse, or the mask when mask_kind is set),
 * STRUCT_SIZE, INVALID_ARGUMENT, OUT_OF_MEMORY, INTERNAL. On an error nothing is written. */
SLOPE_API slope_status slope_attention_forward(const slope_attention_problem* p, const float* q,
                                               const float* k, const float* v,
                                               const float* slopes_left, const float* slopes_right,
                                               float* out, float* lse);

/* Backward (flash-attention 2): from the forward's out and lse and the output gradient dout
 * (out's shape and strides), overwrites dq (q's strides), dk (k's), dv (v's) — q, k and v must
 * not overlap or broadcast, since their gradients are written with the same strides.
 * dslopes_left / dslopes_right: the slopes' layout, or NULL (not wanted; both NULL skips the
 * slope-gradient work). Shared slopes (H) get the sum over the batch in a fixed order
 * (deterministic). When slopes_right is NULL (one shared vector), dslopes_left gets the whole
 * gradient and dslopes_right is left untouched. Errors as the forward (dout, dq, dk, dv are
 * required). On an error nothing is written. */
SLOPE_API slope_status slope_attention_backward(const slope_attention_problem* p, const float* q,
                                                const float* k, const float* v,
                                                const float* slopes_left, const float* slopes_right,
                                                const float* out, const float* dout,
                                                const float* lse, float* dq, float* dk, float* dv,
                                                float* dslopes_left, float* dslopes_right);

/* ---- ALiBi slope presets -------------------------------------------------------------------- */

/* Press et al.'s closed form generalised by max_bias (MPT, BLOOM, llama.cpp): for H a power of
 * two m_h = 2^(-max_bias*h/H), h = 1..H; otherwise the 2^floor(log2 H) slopes of that power plus
 * every other slope of the next power of two. max_bias SLOPE_DEFAULT_MAX_BIAS gives Press's
 * get_slopes. Writes slopes (n_heads). Errors: NULL_POINTER; INVALID_ARGUMENT if n_heads < 1 or
 * max_bias is not positive and finite. */
SLOPE_API slope_status slope_alibi_slopes(int64_t n_heads, double max_bias, float* slopes);

/* The plain geometric 2^(-max_bias*h/H), h = 1..H, of many hand-written ports (equal to
 * slope_alibi_slopes when H is a power of two). Writes slopes (n_heads). Errors as above. */
SLOPE_API slope_status slope_alibi_slopes_geometric(int64_t n_heads, double max_bias,
                                                    float* slopes);

/* The ALiBi authors' "nonsymmetric" encoder: both halves of the heads get the slopes of H/2
 * heads; the first half looks left (right slope +INFINITY), the second half right. Writes left
 * (n_heads) and right (n_heads), to be passed as slopes_left and slopes_right. Errors as above,
 * and INVALID_ARGUMENT if n_heads is odd. */
SLOPE_API slope_status slope_alibi_slopes_nonsymmetric(int64_t n_heads, double max_bias,
                                                       float* left, float* right);

#ifdef __cplusplus
}
#endif

#endif /* SLOPE_SLOPE_H_ */
