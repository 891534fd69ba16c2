/* src/core/kernels.c -- forward/backward kernels of the transformer (see kernels.h).
 *
 * Dimension letters, declared once: B batch, T time, C channels, N = B*T rows,
 * OC output channels, H query heads, KV key/value heads (H % KV == 0), hd head
 * size, QD = H*hd, QKV = (H + 2*KV)*hd, F MLP width, V vocabulary.
 *
 * Every matrix product is a BLIS sgemm, always single-threaded inside our own
 * OpenMP loops: a linear layer cuts its output into one tile per thread (at
 * boundaries that depend on the shape and thread count only, so results are
 * reproducible), attention runs one sgemm per (batch, head). BLIS's own
 * threads synchronise at spin barriers (no pause, no yield) that stall for
 * whole scheduler slices whenever a core is shared, and pack the activations
 * once per GEMM anyway; one OpenMP level also means no nested or competing
 * thread pools. Element-wise kernels are OpenMP loops over rows; the heavy
 * ones (exp, tanh, AdamW, decoding GEMVs) have AVX-512 versions chosen at run
 * time, with the portable loops as the fallback.
 * SIMD convention (every vectorised kernel, present and future, follows it):
 * the SIMD body is a static <name>512 (or <name>256, ...) function, and the
 * public/static <name> dispatches with `if (rlaif_kernels_avx512()) return
 * <name>512(...)` (or a sibling predicate), falling through to the portable
 * loop. Those predicates answer 0 when RLAIF_KERNELS=scalar was set at start-up,
 * so `make test` runs the model tests once per path (the scalar one is what a
 * CPU without AVX-512 runs) and scripts/mutations.txt can plant bugs in either.
 * Never test a CPU flag directly inside a kernel.
 * Backward kernels accumulate (+=) into the gradients they are given.
 * Not here: allocation (the caller owns every buffer), error handling (shapes
 * are validated by model.c before any kernel runs). */
#include "kernels.h"

#include <blis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "rlaif.h"

#define NTH rlaif_get_threads()
/* Threads for a region of `work` elements (or multiply-adds): one below a
 * threshold, where waking a second thread costs more than it saves (and on a
 * shared machine a spin-waiting partner can cost a whole scheduler slice). */
#define PAR_MIN_ELEMS ((size_t)1 << 15)
#define PAR_MIN_MACS ((size_t)1 << 18)
#define NTH_ELEMS(work) ((size_t)(work) >= PAR_MIN_ELEMS ? NTH : 1)
#define NTH_MACS(work) ((size_t)(work) >= PAR_MIN_MACS ? NTH : 1)

/* ---- vector math (AVX-512, chosen at run time) ---- */

/* RLAIF_KERNELS, read once (rlaif_init does it at start-up): "scalar" forces
 * the portable loops, "auto" (or unset/empty) lets the CPU decide; anything
 * else is ignored with a note. */
static int kernels_env = -1;   /* 1 scalar forced, 0 not */
static char kernels_note_buf[128];

int rlaif_kernels_scalar_forced(void) {
    if (kernels_env < 0) {
        const char *e = getenv("RLAIF_KERNELS");
        int forced = e != NULL && strcmp(e, "scalar") == 0;
        if (e != NULL && *e && !forced && strcmp(e, "auto") != 0)
            snprintf(kernels_note_buf, sizeof kernels_note_buf,
                     "ignored RLAIF_KERNELS=%.40s: expected scalar or auto", e);
        kernels_env = forced;
    }
    return kernels_env;
}

const char *rlaif_kernels_name(void) { return rlaif_kernels_avx512() ? "avx512" : "scalar"; }

const char *rlaif_kernels_note(void) {
    rlaif_kernels_scalar_forced();
    return kernels_note_buf;
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#define AVX512 __attribute__((target("avx512f,avx512dq,avx512bw,avx512vl,fma")))

int rlaif_kernels_avx512(void) {
    static int have = -1;  /* benign race: every thread computes the same value */
    if (have < 0)
        have = !rlaif_kernels_scalar_forced() && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
    return have;
}

static inline __mmask16 tail_mask(int n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

/* exp(x) for 16 floats: Cephes expf (n = round(x log2 e), degree-6 polynomial
 * of the remainder, times 2^n by scalef); about 1 ulp. Clamped so that
 * exp(-inf) = 0 and large inputs stay finite; NaN propagates. */
AVX512 static inline __m512 exp512(__m512 x) {
    x = _mm512_min_ps(_mm512_set1_ps(88.3762626647949f), _mm512_max_ps(_mm512_set1_ps(-104.0f), x));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_scalef_ps(p, n);
}

/* tanh(u) = 1 - 2 / (exp(2u) + 1): absolute error ~1e-7, saturates cleanly */
AVX512 static inline __m512 tanh512(__m512 u) {
    __m512 e = exp512(_mm512_add_ps(u, u));
    return _mm512_sub_ps(_mm512_set1_ps(1.0f), _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
}

/* max and sum(exp(x - max)) of x[0..n) */
AVX512 static void max_sumexp512(const float *x, int n, float *mx, float *sum) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    int i = 0;
    for (; i + 32 <= n; i += 32) {
        m0 = _mm512_max_ps(m0, _mm512_loadu_ps(x + i));
        m1 = _mm512_max_ps(m1, _mm512_loadu_ps(x + i + 16));
    }
    for (; i < n; i += 16) m0 = _mm512_max_ps(m0, _mm512_mask_loadu_ps(m0, tail_mask(n - i), x + i));
    float m = _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
    __m512 vm = _mm512_set1_ps(m), s0 = _mm512_setzero_ps(), s1 = s0;
    for (i = 0; i + 32 <= n; i += 32) {
        s0 = _mm512_add_ps(s0, exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i), vm)));
        s1 = _mm512_add_ps(s1, exp512(_mm512_sub_ps(_mm512_loadu_ps(x + i + 16), vm)));
    }
    for (; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        s0 = _mm512_add_ps(s0, _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + i), vm))));
    }
    *mx = m;
    *sum = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* x[i] = w * exp(x[i] - l) */
AVX512 static void scaled_exp512(float *x, int n, float l, float w) {
    __m512 vl = _mm512_set1_ps(l), vw = _mm512_set1_ps(w);
    for (int i = 0; i < n; i += 16) {
        __mmask16 k = tail_mask(n - i);
        __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        _mm512_mask_storeu_ps(x + i, k, _mm512_mul_ps(vw, exp512(_mm512_sub_ps(v, vl))));
    }
}
#else
int rlaif_kernels_avx512(void) { return 0; }
#endif

static void max_sumexp(const float *x, int n, float *mx, float *sum) {
#ifdef HAVE_X86
    if (rlaif_kernels_avx512()) {
        max_sumexp512(x, n, mx, sum);
        return;
    }
#endif
    float m = -INFINITY, s = 0;
    for (int v = 0; v < n; v++) m = x[v] > m ? x[v] : m;
    for (int v = 0; v < n; v++) s += expf(x[v] - m);
    *mx = m;
    *sum = s;
}

float logsumexp_row(const float *x, int n) {
    float mx, sum;
    max_sumexp(x, n, &mx, &sum);
    return mx + logf(sum);
}

static void scaled_exp(float *x, int n, float l, float w) {
#ifdef HAVE_X86
    if (rlaif_kernels_avx512()) {
        scaled_exp512(x, n, l, w);
        return;
    }
#endif
    for (int v = 0; v < n; v++) x[v] = w * expf(x[v] - l);
}

/* ---- encoder ---- */

void encoder_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe,
                     int N, int C) {
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *e = wte + (size_t)ids[n] * C;
        float *o = out + (size_t)n * C;
        if (wpe) {
            const float *p = wpe + (size_t)pos[n] * C;
            for (int c = 0; c < C; c++) o[c] = e[c] + p[c];
        } else {
            memcpy(o, e, sizeof(float) * C);
        }
    }
}

void encoder_backward(float *dwte, float *dwpe, const float *dout, const int32_t *ids, const int32_t *pos,
                      int N, int C) {
    /* serial: rows may share a token or a position */
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C;
        float *dw = dwte + (size_t)ids[n] * C;
        for (int c = 0; c < C; c++) dw[c] += d[c];
        if (dwpe) {
            float *dp = dwpe + (size_t)pos[n] * C;
            for (int c = 0; c < C; c++) dp[c] += d[c];
        }
    }
}

/* ---- normalisation ---- */

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                       int N, int C, float eps) {
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[c] - m) * (x[c] - m);
        v /= C;
        float s = 1.0f / sqrtf(v + eps);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

/* dw/db: column blocks in parallel, rows in order inside a block (deterministic). */
#define COLBLOCK 64

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        const float *mean, const float *rstd, int N, int C) {
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float m = mean[n], s = rstd[n], dmean = 0, dnm = 0;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s, dn = w[c] * d[c];
            dmean += dn;
            dnm += dn * norm;
        }
        dmean /= C;
        dnm /= C;
        float *di = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            float norm = (x[c] - m) * s, dn = w[c] * d[c];
            di[c] += (dn - dmean - norm * dnm) * s;
        }
    }
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * C))
    for (int c0 = 0; c0 < C; c0 += COLBLOCK) {
        int c1 = c0 + COLBLOCK < C ? c0 + COLBLOCK : C;
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
            float m = mean[n], s = rstd[n];
            for (int c = c0; c < c1; c++) {
                db[c] += d[c];
                dw[c] += (x[c] - m) * s * d[c];
            }
        }
    }
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float ss = 0;
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float s = 1.0f / sqrtf(ss / C + eps);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = x[c] * s * w[c];
        rstd[n] = s;
    }
}

void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, int N, int C) {
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * C))
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float s = rstd[n], dot = 0;
        for (int c = 0; c < C; c++) dot += w[c] * d[c] * x[c];
        float k = s * s * s * dot / C;
        float *di = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) di[c] += s * w[c] * d[c] - k * x[c];
    }
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * C))
    for (int c0 = 0; c0 < C; c0 += COLBLOCK) {
        int c1 = c0 + COLBLOCK < C ? c0 + COLBLOCK : C;
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
            float s = rstd[n];
            for (int c = c0; c < c1; c++) dw[c] += x[c] * s * d[c];
        }
    }
}

/* ---- linear layers ---- */

/* one-thread sgemm: c (m x n) = alpha a (m x k) b (k x n) + beta c; each operand
 * (pointer, row stride, column stride) with one unit stride */
static void gemm1(dim_t m, dim_t n, dim_t k, float alpha, const float *a, inc_t rsa, inc_t csa,
                  const float *b, inc_t rsb, inc_t csb, float beta, float *c, inc_t rsc, inc_t csc) {
    rntm_t r;
    bli_rntm_init(&r);
    bli_rntm_set_num_threads(1, &r);
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, (float *)a, rsa, csa, (float *)b, rsb,
                 csb, &beta, c, rsc, csc, NULL, &r);
}

/* Tiles of a dimension of `len` for `nt` threads: multiples of 96 (a common
 * multiple of the skx micro-tile sides 32 and 12) so only the last tile has
 * ragged micro-tiles. */
static int tile_width(int len, int nt) {
    int w = (len + nt - 1) / nt;
    w = (w + 95) / 96 * 96;
    return w < len ? w : len;
}

/* Rows at or below this count (decoding) use matrix-vector products: a GEMM
 * would pack the whole weight matrix for a handful of rows. */
#define GEMV_MAX_ROWS 16
#define GEMV_BLOCK 64

#ifdef HAVE_X86
/* out[n, o0..o0+4) (+)= W[o0..o0+4, :] . x[n] (+ bias) for NR rows at a time;
 * 4 x NR accumulators keep the FMA unit busy with 8 loads per 16 FMAs. */
#define GEMV_TILE(NR)                                                                                   \
    do {                                                                                                \
        __m512 acc[4][NR];                                                                              \
        for (int j = 0; j < 4; j++)                                                                     \
            for (int r = 0; r < NR; r++) acc[j][r] = _mm512_setzero_ps();                               \
        for (int c = 0; c < C; c += 16) {                                                               \
            __mmask16 k = tail_mask(C - c);                                                             \
            __m512 wv[4], xv;                                                                           \
            for (int j = 0; j < 4; j++) wv[j] = _mm512_maskz_loadu_ps(k, wr[j] + c);                    \
            for (int r = 0; r < NR; r++) {                                                              \
                xv = _mm512_maskz_loadu_ps(k, inp + (size_t)(n + r) * C + c);                           \
                for (int j = 0; j < 4; j++) acc[j][r] = _mm512_fmadd_ps(wv[j], xv, acc[j][r]);          \
            }                                                                                           \
        }                                                                                               \
        for (int r = 0; r < NR; r++)                                                                    \
            for (int j = 0; j < 4; j++) {                                                               \
                float *dst = out + (size_t)(n + r) * OC + o + j;                                        \
                float sum = _mm512_reduce_add_ps(acc[j][r]) + (bias ? bias[o + j] : 0.0f);              \
                *dst = accumulate ? *dst + sum : sum;                                                   \
            }                                                                                           \
    } while (0)

AVX512 static void gemv_rows512(float *out, const float *inp, const float *w, const float *bias, int N, int C,
                                int OC, int accumulate) {
#pragma omp parallel for num_threads(NTH_MACS((size_t)N * C * OC)) schedule(static)
    for (int o0 = 0; o0 < OC; o0 += GEMV_BLOCK) {
        int o1 = o0 + GEMV_BLOCK < OC ? o0 + GEMV_BLOCK : OC;
        int o = o0;
        for (; o + 4 <= o1; o += 4) {
            const float *wr[4] = {w + (size_t)o * C, w + (size_t)(o + 1) * C, w + (size_t)(o + 2) * C,
                                  w + (size_t)(o + 3) * C};
            int n = 0;
            for (; n + 4 <= N; n += 4) GEMV_TILE(4);
            for (; n < N; n++) GEMV_TILE(1);
        }
        for (; o < o1; o++) {   /* ragged end: one weight row at a time */
            const float *wo = w + (size_t)o * C;
            for (int n = 0; n < N; n++) {
                __m512 acc = _mm512_setzero_ps();
                for (int c = 0; c < C; c += 16) {
                    __mmask16 k = tail_mask(C - c);
                    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(k, wo + c),
                                          _mm512_maskz_loadu_ps(k, inp + (size_t)n * C + c), acc);
                }
                float *dst = out + (size_t)n * OC + o;
                float sum = _mm512_reduce_add_ps(acc) + (bias ? bias[o] : 0.0f);
                *dst = accumulate ? *dst + sum : sum;
            }
        }
    }
}
#undef GEMV_TILE
#endif

/* out[n, o] (+)= W[o, :] . x[n] + bias[o] for a few rows: one pass over W, the
 * rows' dot products done while a W row is in cache. */
static void gemv_rows(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                      int accumulate) {
#ifdef HAVE_X86
    if (rlaif_kernels_avx512()) {
        gemv_rows512(out, inp, w, bias, N, C, OC, accumulate);
        return;
    }
#endif
#pragma omp parallel for num_threads(NTH_MACS((size_t)N * C * OC)) schedule(static)
    for (int o0 = 0; o0 < OC; o0 += GEMV_BLOCK) {
        int o1 = o0 + GEMV_BLOCK < OC ? o0 + GEMV_BLOCK : OC;
        for (int o = o0; o < o1; o++) {
            const float *wr = w + (size_t)o * C;
            for (int n = 0; n < N; n++) {
                const float *x = inp + (size_t)n * C;
                float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
                for (int c = 0; c < C; c++) sum += wr[c] * x[c];
                float *dst = out + (size_t)n * OC + o;
                *dst = (accumulate ? *dst : 0.0f) + sum + (bias ? bias[o] : 0.0f);
            }
        }
    }
}

void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                    int accumulate) {
    if (N <= GEMV_MAX_ROWS) {
        gemv_rows(out, inp, w, bias, N, C, OC, accumulate);
        return;
    }
    /* one tile of output columns (= weight rows) per thread; the bias is added
     * while the tile is in cache */
    int nt = NTH_MACS((size_t)N * C * OC), tw = tile_width(OC, nt), ntiles = (OC + tw - 1) / tw;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int t = 0; t < ntiles; t++) {
        int o0 = t * tw, ow = o0 + tw < OC ? tw : OC - o0;
        /* out[:, o0:] (N x ow) = inp (N x C) * w[o0:]^T (C x ow: rs 1, cs C) */
        gemm1(N, ow, C, 1.0f, inp, C, 1, w + (size_t)o0 * C, 1, C, accumulate ? 1.0f : 0.0f, out + o0, OC, 1);
        if (bias)
            for (int n = 0; n < N; n++) {
                float *o = out + (size_t)n * OC + o0;
                const float *bb = bias + o0;
#pragma omp simd
                for (int c = 0; c < ow; c++) o[c] += bb[c];
            }
    }
}

void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                     int N, int C, int OC) {
    /* tasks: tiles of dinp columns, then tiles of dw rows (with their dbias) */
    int nt = NTH_MACS((size_t)N * C * OC), tc = tile_width(C, nt), nc = dinp ? (C + tc - 1) / tc : 0;
    int to = tile_width(OC, nt), no = (dw || dbias) ? (OC + to - 1) / to : 0;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int t = 0; t < nc + no; t++) {
        if (t < nc) {
            /* dinp[:, c0:] (N x cw) += dout (N x OC) * w[:, c0:] (OC x cw) */
            int c0 = t * tc, cw = c0 + tc < C ? tc : C - c0;
            gemm1(N, cw, OC, 1.0f, dout, OC, 1, w + c0, C, 1, 1.0f, dinp + c0, C, 1);
            continue;
        }
        int o0 = (t - nc) * to, ow = o0 + to < OC ? to : OC - o0;
        /* dw[o0:] (ow x C) += dout[:, o0:]^T (ow x N: rs 1, cs OC) * inp (N x C) */
        if (dw) gemm1(ow, C, N, 1.0f, dout + o0, 1, OC, inp, C, 1, 1.0f, dw + (size_t)o0 * C, C, 1);
        if (dbias)
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC + o0;
                float *db = dbias + o0;
#pragma omp simd
                for (int o = 0; o < ow; o++) db[o] += d[o];
            }
    }
}

/* ---- LM head with the log-sum-exp fused in ---- */

int lmhead_scratch_floats(int N, int V) { return 2 * N * ((V + LM_CHUNK - 1) / LM_CHUNK); }

void lmhead_forward(float *logits, float *lse, float *scratch, const float *inp, const float *w, int N, int C,
                    int V) {
    int nch = (V + LM_CHUNK - 1) / LM_CHUNK;
    float *pmax = scratch, *psum = scratch + (size_t)N * nch;   /* (nch, N) each */
#pragma omp parallel for num_threads(NTH) schedule(dynamic, 1)
    for (int ch = 0; ch < nch; ch++) {
        int v0 = ch * LM_CHUNK, vw = v0 + LM_CHUNK < V ? LM_CHUNK : V - v0;
        gemm1(N, vw, C, 1.0f, inp, C, 1, w + (size_t)v0 * C, 1, C, 0.0f, logits + v0, V, 1);
        for (int n = 0; n < N; n++)   /* the chunk is still in L2 */
            max_sumexp(logits + (size_t)n * V + v0, vw, pmax + (size_t)ch * N + n, psum + (size_t)ch * N + n);
    }
    /* combine the chunks in a fixed order: deterministic for any schedule */
    for (int n = 0; n < N; n++) {
        float mx = -INFINITY;
        for (int ch = 0; ch < nch; ch++) mx = pmax[(size_t)ch * N + n] > mx ? pmax[(size_t)ch * N + n] : mx;
        double s = 0;
        for (int ch = 0; ch < nch; ch++) s += psum[(size_t)ch * N + n] * exp((double)pmax[(size_t)ch * N + n] - mx);
        lse[n] = mx + (float)log(s);
    }
}

void lmhead_backward(float *dinp, float *dw, float *logits, const float *lse, const int32_t *targets,
                     const float *wt, const float *inp, const float *w, int N, int C, int V) {
    int nch = (V + LM_CHUNK - 1) / LM_CHUNK;
    /* dlogits chunk by chunk, and dw of the chunk's rows while it is in L2 */
#pragma omp parallel for num_threads(NTH) schedule(dynamic, 1)
    for (int ch = 0; ch < nch; ch++) {
        int v0 = ch * LM_CHUNK, vw = v0 + LM_CHUNK < V ? LM_CHUNK : V - v0;
        for (int n = 0; n < N; n++) {
            float *x = logits + (size_t)n * V + v0;
            int tg = targets[n];
            if (tg < 0 || wt[n] == 0.0f) {
                memset(x, 0, sizeof(float) * vw);
                continue;
            }
            scaled_exp(x, vw, lse[n], wt[n]);
            if (tg >= v0 && tg < v0 + vw) x[tg - v0] -= wt[n];
        }
        /* dw[v0:] (vw x C) += dlogits[:, v0:]^T (vw x N: rs 1, cs V) * inp (N x C) */
        gemm1(vw, C, N, 1.0f, logits + v0, 1, V, inp, C, 1, 1.0f, dw + (size_t)v0 * C, C, 1);
    }
    /* dinp (N x C) += dlogits (N x V) * w (V x C), a tile of columns per thread */
    int nt = NTH, tc = tile_width(C, nt), nc = (C + tc - 1) / tc;
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
    for (int t = 0; t < nc; t++) {
        int c0 = t * tc, cw = c0 + tc < C ? tc : C - c0;
        gemm1(N, cw, V, 1.0f, logits, V, 1, w + c0, C, 1, 1.0f, dinp + c0, C, 1);
    }
}

/* ---- attention ---- */

void attention_forward(float *out, float *att, const float *qkv, const int32_t *mask, int B, int T, int H,
                       int KV, int hd) {
    int QKV = (H + 2 * KV) * hd, QD = H * hd, rep = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
#pragma omp parallel for num_threads(NTH_MACS((size_t)B * H * T * T * hd)) schedule(dynamic)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / rep;
        const float *base = qkv + (size_t)b * T * QKV;
        const float *q = base + h * hd, *k = base + QD + g * hd, *v = base + QD + KV * hd + g * hd;
        float *A = att + (size_t)bh * T * T;
        const int32_t *mk = mask + (size_t)b * T;
        /* A = scale * q k^T */
        gemm1(T, T, hd, scale, q, QKV, 1, k, 1, QKV, 0.0f, A, T, 1);
        for (int t = 0; t < T; t++) {
            float *row = A + (size_t)t * T, mx = -INFINITY, sum = 0;
            for (int s = 0; s <= t; s++)
                if (mk[s] && row[s] > mx) mx = row[s];
            for (int s = 0; s < T; s++) {
                float e = (s <= t && mk[s]) ? expf(row[s] - mx) : 0.0f;
                row[s] = e;
                sum += e;
            }
            float inv = sum > 0 ? 1.0f / sum : 0.0f;
            for (int s = 0; s <= t; s++) row[s] *= inv;
        }
        /* out_h = A v */
        gemm1(T, hd, T, 1.0f, A, T, 1, v, QKV, 1, 0.0f, out + (size_t)b * T * QD + h * hd, QD, 1);
    }
}

void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                        int B, int T, int H, int KV, int hd) {
    int QKV = (H + 2 * KV) * hd, QD = H * hd, rep = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
    /* one task per (b, kv head): the query heads of a group share dk, dv */
#pragma omp parallel for num_threads(NTH_MACS((size_t)B * H * T * T * hd)) schedule(dynamic)
    for (int bg = 0; bg < B * KV; bg++) {
        int b = bg / KV, g = bg % KV;
        const float *base = qkv + (size_t)b * T * QKV;
        float *dbase = dqkv + (size_t)b * T * QKV;
        const float *k = base + QD + g * hd, *v = base + QD + KV * hd + g * hd;
        float *dk = dbase + QD + g * hd, *dv = dbase + QD + KV * hd + g * hd;
        for (int h = g * rep; h < (g + 1) * rep; h++) {
            const float *q = base + h * hd, *A = att + ((size_t)b * H + h) * T * T;
            const float *dO = dout + (size_t)b * T * QD + h * hd;
            float *dq = dbase + h * hd, *dA = datt + ((size_t)b * H + h) * T * T;
            gemm1(T, T, hd, 1.0f, dO, QD, 1, v, 1, QKV, 0.0f, dA, T, 1);   /* dA = dO v^T   */
            gemm1(T, hd, T, 1.0f, A, 1, T, dO, QD, 1, 1.0f, dv, QKV, 1);   /* dv += A^T dO  */
            for (int t = 0; t < T; t++) {
                const float *a = A + (size_t)t * T;
                float *d = dA + (size_t)t * T, dot = 0;
                for (int s = 0; s <= t; s++) dot += a[s] * d[s];
                for (int s = 0; s < T; s++) d[s] = s <= t ? a[s] * (d[s] - dot) * scale : 0.0f;
            }
            gemm1(T, hd, T, 1.0f, dA, T, 1, k, QKV, 1, 1.0f, dq, QKV, 1);  /* dq += dS k    */
            gemm1(T, hd, T, 1.0f, dA, 1, T, q, QKV, 1, 1.0f, dk, QKV, 1);  /* dk += dS^T q  */
        }
    }
}

/* ---- rotary embeddings ---- */

static void rope_rotate(float *qkv, const float *cosb, const float *sinb, const int32_t *pos, int B, int T,
                        int H, int KV, int hd, float sign) {
    int QKV = (H + 2 * KV) * hd, half = hd / 2;
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)B * T * (H + KV) * hd))
    for (int n = 0; n < B * T; n++) {
        const float *cs = cosb + (size_t)pos[n] * half, *sn = sinb + (size_t)pos[n] * half;
        float *row = qkv + (size_t)n * QKV;
        for (int h = 0; h < H + KV; h++) {
            float *x = row + h * hd;
            for (int i = 0; i < half; i++) {
                float c = cs[i], s = sign * sn[i], x1 = x[i], x2 = x[i + half];
                x[i] = x1 * c - x2 * s;
                x[i + half] = x2 * c + x1 * s;
            }
        }
    }
}

void rope_forward(float *qkv, const float *cosb, const float *sinb, const int32_t *pos, int B, int T, int H,
                  int KV, int hd) {
    rope_rotate(qkv, cosb, sinb, pos, B, T, H, KV, hd, 1.0f);
}

/* the transpose of a rotation is the rotation by the opposite angle */
void rope_backward(float *dqkv, const float *cosb, const float *sinb, const int32_t *pos, int B, int T, int H,
                   int KV, int hd) {
    rope_rotate(dqkv, cosb, sinb, pos, B, T, H, KV, hd, -1.0f);
}

/* ---- activations ---- */

#define GELU_K 0.7978845608028654f  /* sqrt(2/pi) */

#ifdef HAVE_X86
AVX512 static void gelu_forward512(float *out, const float *inp, int n) {
    const __m512 k = _mm512_set1_ps(GELU_K), a = _mm512_set1_ps(0.044715f), half = _mm512_set1_ps(0.5f),
                 one = _mm512_set1_ps(1.0f);
#pragma omp parallel for num_threads(NTH_ELEMS(n)) schedule(static)
    for (int i0 = 0; i0 < n; i0 += 4096) {
        int i1 = i0 + 4096 < n ? i0 + 4096 : n;
        for (int i = i0; i < i1; i += 16) {
            __mmask16 m = tail_mask(i1 - i);
            __m512 x = _mm512_maskz_loadu_ps(m, inp + i);
            __m512 u = _mm512_mul_ps(k, _mm512_fmadd_ps(_mm512_mul_ps(a, x), _mm512_mul_ps(x, x), x));
            __m512 y = _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, tanh512(u)));
            _mm512_mask_storeu_ps(out + i, m, y);
        }
    }
}

AVX512 static void gelu_backward512(float *dinp, const float *inp, const float *dout, int n) {
    const __m512 k = _mm512_set1_ps(GELU_K), a = _mm512_set1_ps(0.044715f), a3 = _mm512_set1_ps(3.0f * 0.044715f),
                 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
#pragma omp parallel for num_threads(NTH_ELEMS(n)) schedule(static)
    for (int i0 = 0; i0 < n; i0 += 4096) {
        int i1 = i0 + 4096 < n ? i0 + 4096 : n;
        for (int i = i0; i < i1; i += 16) {
            __mmask16 m = tail_mask(i1 - i);
            __m512 x = _mm512_maskz_loadu_ps(m, inp + i), x2 = _mm512_mul_ps(x, x);
            __m512 th = tanh512(_mm512_mul_ps(k, _mm512_fmadd_ps(_mm512_mul_ps(a, x), x2, x)));
            __m512 sech2 = _mm512_fnmadd_ps(th, th, one);
            /* g = 0.5 (1 + th) + 0.5 x sech2 k (1 + 3a x^2) */
            __m512 g = _mm512_mul_ps(half, _mm512_add_ps(one, th));
            __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_mul_ps(half, x), sech2),
                                     _mm512_mul_ps(k, _mm512_fmadd_ps(a3, x2, one)));
            g = _mm512_add_ps(g, t);
            __m512 d = _mm512_maskz_loadu_ps(m, dinp + i);
            _mm512_mask_storeu_ps(dinp + i, m, _mm512_fmadd_ps(g, _mm512_maskz_loadu_ps(m, dout + i), d));
        }
    }
}
#endif

void gelu_forward(float *out, const float *inp, int n) {
#ifdef HAVE_X86
    if (rlaif_kernels_avx512()) {
        gelu_forward512(out, inp, n);
        return;
    }
#endif
#pragma omp parallel for num_threads(NTH_ELEMS(n))
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, int n) {
#ifdef HAVE_X86
    if (rlaif_kernels_avx512()) {
        gelu_backward512(dinp, inp, dout, n);
        return;
    }
#endif
#pragma omp parallel for num_threads(NTH_ELEMS(n))
    for (int i = 0; i < n; i++) {
        float x = inp[i], u = GELU_K * (x + 0.044715f * x * x * x), th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += g * dout[i];
    }
}

void swiglu_forward(float *out, const float *inp, int N, int F) {
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * F))
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * F, *u = g + F;
        float *o = out + (size_t)n * F;
        for (int i = 0; i < F; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

void swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F) {
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * F))
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * F, *u = g + F, *d = dout + (size_t)n * F;
        float *dg = dinp + (size_t)n * 2 * F, *du = dg + F;
        for (int i = 0; i < F; i++) {
            float s = 1.0f / (1.0f + expf(-g[i]));
            dg[i] += d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] += d[i] * g[i] * s;
        }
    }
}

void residual_forward(float *out, const float *a, const float *b, int n) {
#pragma omp parallel for num_threads(NTH_ELEMS(n))
    for (int i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ---- loss ---- */

void crossentropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int N, int V) {
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * V))
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float mx, sum;
        max_sumexp(x, V, &mx, &sum);
        lse[n] = mx + logf(sum);
        if (losses) losses[n] = targets[n] >= 0 ? lse[n] - x[targets[n]] : 0.0f;
    }
}

void crossentropy_backward(float *logits, const float *lse, const int32_t *targets, const float *w, int N, int V) {
#pragma omp parallel for num_threads(NTH_ELEMS((size_t)N * V))
    for (int n = 0; n < N; n++) {
        float *x = logits + (size_t)n * V;
        if (targets[n] < 0 || w[n] == 0.0f) {
            memset(x, 0, sizeof(float) * V);
            continue;
        }
        scaled_exp(x, V, lse[n], w[n]);
        x[targets[n]] -= w[n];
    }
}

/* ---- AdamW ---- */

#ifdef HAVE_X86
AVX512 static void adamw_update512(float *p, const float *g, float *m, float *v, size_t n, float decay,
                                   float beta1, float beta2, float step_size, float bc2_sqrt, float eps) {
    const __m512 vd = _mm512_set1_ps(decay), b1 = _mm512_set1_ps(beta1), b2 = _mm512_set1_ps(beta2),
                 c1 = _mm512_set1_ps(1.0f - beta1), c2 = _mm512_set1_ps(1.0f - beta2),
                 ss = _mm512_set1_ps(step_size), bc = _mm512_set1_ps(bc2_sqrt), ve = _mm512_set1_ps(eps);
    for (size_t i = 0; i < n; i += 16) {
        __mmask16 k = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1);
        __m512 pp = _mm512_mul_ps(_mm512_maskz_loadu_ps(k, p + i), vd), gg = _mm512_maskz_loadu_ps(k, g + i);
        /* no FMA contraction: the same roundings as the scalar loop */
        __m512 mm = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, m + i), b1), _mm512_mul_ps(c1, gg));
        __m512 vv = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, v + i), b2),
                                  _mm512_mul_ps(_mm512_mul_ps(c2, gg), gg));
        __m512 den = _mm512_add_ps(_mm512_div_ps(_mm512_sqrt_ps(vv), bc), ve);
        pp = _mm512_sub_ps(pp, _mm512_div_ps(_mm512_mul_ps(ss, mm), den));
        _mm512_mask_storeu_ps(m + i, k, mm);
        _mm512_mask_storeu_ps(v + i, k, vv);
        _mm512_mask_storeu_ps(p + i, k, pp);
    }
}
#endif

void adamw_update(float *restrict p, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                  float decay, float beta1, float beta2, float step_size, float bc2_sqrt, float eps) {
#ifdef HAVE_X86
    if (rlaif_kernels_avx512()) {
        adamw_update512(p, g, m, v, n, decay, beta1, beta2, step_size, bc2_sqrt, eps);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) {
        p[i] *= decay;
        m[i] = m[i] * beta1 + (1.0f - beta1) * g[i];
        v[i] = v[i] * beta2 + (1.0f - beta2) * g[i] * g[i];
        float denom = sqrtf(v[i]) / bc2_sqrt + eps;
        p[i] -= step_size * m[i] / denom;
    }
}

/* ---- reward pair loss ---- */

static double log_sigmoid(double x) { return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x)); }

float rlaif_reward_pair_loss(const float *r1, const float *r2, const float *p, int P, float margin,
                             float center, float *dr1, float *dr2) {
    double total = 0;
    for (int i = 0; i < P; i++) {
        double d = (double)r1[i] - r2[i] - margin, sum = (double)r1[i] + r2[i];
        total += -(p[i] * log_sigmoid(d) + (1 - p[i]) * log_sigmoid(-d)) + center * sum * sum;
        double sig = 1.0 / (1.0 + exp(-d));
        double g = (sig - p[i]) / P, gc = 2.0 * center * sum / P;
        if (dr1) dr1[i] = (float)(g + gc);
        if (dr2) dr2[i] = (float)(-g + gc);
    }
    return P > 0 ? (float)(total / P) : 0.0f;
}
