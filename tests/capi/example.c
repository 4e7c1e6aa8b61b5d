/* A decoder block's attention from C: causal ALiBi over a padded batch, forward and backward.
 * This file is the code of docs/c-and-rust.md; the tests build it in the tree and against an
 * installed prefix (pkg-config and find_package) and run it: it exits 0 only if slope's output
 * matches the naive float64 attention below and a bad call is refused with a message.
 *
 *   cc -std=c99 example.c $(pkg-config --cflags --libs slope) -lm && ./a.out
 */
#include <math.h>
#include <slope/slope.h>
#include <stdio.h>
#include <stdlib.h>

enum { B = 2, H = 4, T = 7, D = 16 }; /* batch, heads, tokens, head dim */

/* The check: out[b,h,i] = softmax_j(q_i.k_j/sqrt(D) - m_h*(i - j)) v_j over j <= i, j < len_b. */
static double max_error(const float* q, const float* k, const float* v, const float* slopes,
                        const int32_t* key_lengths, const float* out) {
  double worst = 0.0;
  for (int b = 0; b < B; ++b)
    for (int h = 0; h < H; ++h)
      for (int i = 0; i < T; ++i) {
        const long row = ((long)(b * H + h) * T + i) * D;
        double s[T], mx = -INFINITY, sum = 0.0;
        for (int j = 0; j < T; ++j) {
          s[j] = -INFINITY;
          if (j > i || j >= key_lengths[b]) continue; /* causal mask, padding */
          const long col = ((long)(b * H + h) * T + j) * D;
          double dot = 0.0;
          for (int d = 0; d < D; ++d) dot += (double)q[row + d] * k[col + d];
          s[j] = dot / sqrt((double)D) - slopes[h] * (double)(i - j);
          if (s[j] > mx) mx = s[j];
        }
        for (int j = 0; j < T; ++j) sum += s[j] == -INFINITY ? 0.0 : exp(s[j] - mx);
        for (int d = 0; d < D; ++d) {
          double o = 0.0; /* a row with no visible key: slope gives 0 */
          for (int j = 0; j < T && sum > 0.0; ++j)
            if (s[j] != -INFINITY)
              o += exp(s[j] - mx) / sum * v[((long)(b * H + h) * T + j) * D + d];
          const double e = fabs(o - out[row + d]);
          if (e > worst) worst = e;
        }
      }
  return worst;
}

int main(void) {
  static float q[B * H * T * D], k[B * H * T * D], v[B * H * T * D], out[B * H * T * D];
  static float dout[B * H * T * D], dq[B * H * T * D], dk[B * H * T * D], dv[B * H * T * D];
  static float lse[B * H * T];
  float slopes[H], dslopes[H];
  const int32_t key_lengths[B] = {T, 4}; /* row 1: 4 real tokens, then padding */
  slope_attention_problem p;
  slope_status st;

  srand(7); /* q, k, v as a block's projections would give them */
  for (int n = 0; n < B * H * T * D; ++n) {
    q[n] = (float)rand() / RAND_MAX - 0.5f;
    k[n] = (float)rand() / RAND_MAX - 0.5f;
    v[n] = (float)rand() / RAND_MAX - 0.5f;
    dout[n] = (float)rand() / RAND_MAX - 0.5f;
  }

  /* ALiBi: Press et al.'s slopes for H heads. */
  if (slope_alibi_slopes(H, SLOPE_DEFAULT_MAX_BIAS, slopes) != SLOPE_OK) return 1;

  /* The problem: sizes, contiguous (B, H, T, D) strides, causal, padding. */
  SLOPE_ATTENTION_PROBLEM_INIT(&p);
  p.B = B, p.H = H, p.Hkv = H, p.Tq = T, p.Tk = T, p.D = D, p.Dv = D;
  p.causal = 1;
  p.key_lengths = key_lengths;
  if (slope_attention_contiguous_strides(&p) != SLOPE_OK) return 1;

  /* Forward: out (B, H, T, D), lse (B, H, T). slopes_right NULL: symmetric slopes, of which a
   * causal problem uses the left side. */
  st = slope_attention_forward(&p, q, k, v, slopes, NULL, out, lse);
  if (st != SLOPE_OK) {
    fprintf(stderr, "forward: %s: %s\n", slope_status_name(st), slope_last_error());
    return 1;
  }
  /* Backward: dq, dk, dv, and the slopes' gradient (learned slopes). */
  st = slope_attention_backward(&p, q, k, v, slopes, NULL, out, dout, lse, dq, dk, dv, dslopes,
                                NULL);
  if (st != SLOPE_OK) {
    fprintf(stderr, "backward: %s: %s\n", slope_status_name(st), slope_last_error());
    return 1;
  }

  const double err = max_error(q, k, v, slopes, key_lengths, out);
  printf("slope %s (%s): max |out - reference| = %.2e, dslopes[0] = %.5f\n", slope_version(),
         slope_cpu_isa(), err, dslopes[0]);

  /* Bad input is an error code and a message, never a crash. */
  p.Hkv = 3; /* 4 query heads do not split into 3 groups */
  st = slope_attention_forward(&p, q, k, v, slopes, NULL, out, lse);
  printf("Hkv = 3: %s: %s\n", slope_status_name(st), slope_last_error());

  return err < 1e-5 && isfinite(dslopes[0]) && st == SLOPE_ERROR_INVALID_ARGUMENT ? 0 : 1;
}
