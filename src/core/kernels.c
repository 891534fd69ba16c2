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
#include "par.h"
#include "rlaif.h"

#define NTH rlaif_get_threads()
/* Threads for a region of `work` elements (or multiply-adds): one below a
 * threshold, where waking a second thread costs more than it saves (and on a
 * shared machine a spin-waiting partner can cost a whole scheduler slice). */
#define PAR_MIN_ELEMS ((size_t)1 << 15)
#define PAR_MIN_MACS ((size_t)1 << 18)
#define NTH_ELEMS(work) ((size_t)(work) >= PAR_MIN_ELEMS ? NTH : 1)
#define NTH_MACS(work) ((size_t)(work) >= PAR_MIN_MACS ? NTH : 1)

/* Chunk size for n independent items on nt threads: about 4 chunks per thread,
 * so a thread that is descheduled on a shared core leaves little behind. */
static int grain4(int n, int nt) {
    int g = (int)(((int64_t)n + 4 * nt - 1) / (4 * nt));
    return g < 1 ? 1 : g;
}
/* rlaif_par_for over n rows with about 4 chunks per thread */
#define PAR_ROWS(n, nt, fn, ctx) rlaif_par_for((n), grain4((n), (nt)), (nt), (fn), (ctx))

static inline float *out_row(float *base, int n, int C) { return base + (size_t)n * C; }

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

/* ---- bf16 (frozen weights) ---- */

/* bf16 -> float32 is exact: the bf16 bits are the high half of the float's. */
static inline float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

#ifdef HAVE_X86
int rlaif_kernels_avx512bf16(void) {
    static int have = -1;
    if (have < 0) have = rlaif_kernels_avx512() && __builtin_cpu_supports("avx512bf16");
    return have;
}

/* VCVTNEPS2BF16: round to nearest even, denormal inputs as zero, NaN kept quiet */
__attribute__((target("avx512f,avx512bf16,avx512bw,avx512vl"))) static void f32_to_bf16_512(uint16_t *dst,
                                                                                           const float *src,
                                                                                           size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256bh h = _mm512_cvtneps_pbh(_mm512_loadu_ps(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), (__m256i)h);
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m256bh h = _mm512_cvtneps_pbh(_mm512_maskz_loadu_ps(k, src + i));
        _mm256_mask_storeu_epi16(dst + i, k, (__m256i)h);
    }
}
#else
int rlaif_kernels_avx512bf16(void) { return 0; }
#endif

void f32_to_bf16(uint16_t *dst, const float *src, size_t n) {
#ifdef HAVE_X86
    if (rlaif_kernels_avx512bf16()) {
        f32_to_bf16_512(dst, src, n);
        return;
    }
#endif
    /* the same rounding as the instruction, bit for bit */
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        if ((u & 0x7f800000u) == 0) u &= 0x80000000u;                       /* denormal -> signed zero */
        if ((u & 0x7fffffffu) > 0x7f800000u) dst[i] = (uint16_t)((u >> 16) | 0x40); /* NaN stays quiet */
        else dst[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
}

void bf16_to_f32_row(float *dst, const uint16_t *src, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

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

typedef struct { float *out; const int32_t *ids, *pos; const float *wte, *wpe; const uint16_t *wte16; int C; } enc_args;

static void encoder_rows(void *p, int lo, int hi) {
    const enc_args *a = p;
    int C = a->C;
    for (int n = lo; n < hi; n++) {
        float *o = out_row(a->out, n, C);
        if (a->wte16) bf16_to_f32_row(o, a->wte16 + (size_t)a->ids[n] * C, C);
        else memcpy(o, a->wte + (size_t)a->ids[n] * C, sizeof(float) * C);
        if (a->wpe) {
            const float *q = a->wpe + (size_t)a->pos[n] * C;
            for (int c = 0; c < C; c++) o[c] += q[c];
        }
    }
}

void encoder_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe,
                     int N, int C) {
    enc_args a = {out, ids, pos, wte, wpe, NULL, C};
    int nt = NTH_ELEMS((size_t)N * C);
    PAR_ROWS(N, nt, encoder_rows, &a);
}

void encoder_forward_bf16(float *out, const int32_t *ids, const int32_t *pos, const uint16_t *wte,
                          const float *wpe, int N, int C) {
    enc_args a = {out, ids, pos, NULL, wpe, wte, C};
    int nt = NTH_ELEMS((size_t)N * C);
    PAR_ROWS(N, nt, encoder_rows, &a);
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

/* the arguments of the normalisation kernels */
typedef struct {
    float *out, *mean, *rstd, *dw, *db;
    const float *inp, *w, *b, *dout, *cmean, *crstd;
    int N, C;
    float eps;
} norm_args;

static void layernorm_fwd_rows(void *p, int lo, int hi) {
    const norm_args *a = p;
    float *out = a->out, *mean = a->mean, *rstd = a->rstd, eps = a->eps;
    const float *inp = a->inp, *w = a->w, *b = a->b;
    int C = a->C;
    for (int n = lo; n < hi; n++) {
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

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *w, const float *b,
                       int N, int C, float eps) {
    norm_args a = {.out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b, .N = N, .C = C, .eps = eps};
    int nt = NTH_ELEMS((size_t)N * C);
    PAR_ROWS(N, nt, layernorm_fwd_rows, &a);
}

/* dw/db: column blocks in parallel, rows in order inside a block (deterministic). */
#define COLBLOCK 64

static void layernorm_bwd_rows(void *p, int lo, int hi) {
    const norm_args *a = p;
    float *dinp = a->out;
    const float *dout = a->dout, *inp = a->inp, *w = a->w, *mean = a->cmean, *rstd = a->crstd;
    int C = a->C;
    for (int n = lo; n < hi; n++) {
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
}

static void layernorm_bwd_cols(void *p, int blo, int bhi) {
    const norm_args *a = p;
    float *dw = a->dw, *db = a->db;
    const float *dout = a->dout, *inp = a->inp, *mean = a->cmean, *rstd = a->crstd;
    int N = a->N, C = a->C;
    for (int c0 = blo * COLBLOCK; c0 < bhi * COLBLOCK && c0 < C; c0 += COLBLOCK) {
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

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                        const float *mean, const float *rstd, int N, int C) {
    norm_args a = {.out = dinp, .dw = dw, .db = db, .inp = inp, .w = w, .dout = dout, .cmean = mean, .crstd = rstd,
                   .N = N, .C = C};
    int nt = NTH_ELEMS((size_t)N * C), nblk = (C + COLBLOCK - 1) / COLBLOCK;
    PAR_ROWS(N, nt, layernorm_bwd_rows, &a);
    rlaif_par_for(nblk, 1, nt, layernorm_bwd_cols, &a);
}

static void rmsnorm_fwd_rows(void *p, int lo, int hi) {
    const norm_args *a = p;
    float *out = a->out, *rstd = a->rstd, eps = a->eps;
    const float *inp = a->inp, *w = a->w;
    int C = a->C;
    for (int n = lo; n < hi; n++) {
        const float *x = inp + (size_t)n * C;
        float ss = 0;
        for (int c = 0; c < C; c++) ss += x[c] * x[c];
        float s = 1.0f / sqrtf(ss / C + eps);
        float *o = out + (size_t)n * C;
        for (int c = 0; c < C; c++) o[c] = x[c] * s * w[c];
        rstd[n] = s;
    }
}

void rmsnorm_forward(float *out, float *rstd, const float *inp, const float *w, int N, int C, float eps) {
    norm_args a = {.out = out, .rstd = rstd, .inp = inp, .w = w, .N = N, .C = C, .eps = eps};
    int nt = NTH_ELEMS((size_t)N * C);
    PAR_ROWS(N, nt, rmsnorm_fwd_rows, &a);
}

static void rmsnorm_bwd_rows(void *p, int lo, int hi) {
    const norm_args *a = p;
    float *dinp = a->out;
    const float *dout = a->dout, *inp = a->inp, *w = a->w, *rstd = a->crstd;
    int C = a->C;
    for (int n = lo; n < hi; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float s = rstd[n], dot = 0;
        for (int c = 0; c < C; c++) dot += w[c] * d[c] * x[c];
        float k = s * s * s * dot / C;
        float *di = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) di[c] += s * w[c] * d[c] - k * x[c];
    }
}

static void rmsnorm_bwd_cols(void *p, int blo, int bhi) {
    const norm_args *a = p;
    float *dw = a->dw;
    const float *dout = a->dout, *inp = a->inp, *rstd = a->crstd;
    int N = a->N, C = a->C;
    for (int c0 = blo * COLBLOCK; c0 < bhi * COLBLOCK && c0 < C; c0 += COLBLOCK) {
        int c1 = c0 + COLBLOCK < C ? c0 + COLBLOCK : C;
        for (int n = 0; n < N; n++) {
            const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
            float s = rstd[n];
            for (int c = c0; c < c1; c++) dw[c] += x[c] * s * d[c];
        }
    }
}

void rmsnorm_backward(float *dinp, float *dw, const float *dout, const float *inp, const float *w,
                      const float *rstd, int N, int C) {
    norm_args a = {.out = dinp, .dw = dw, .inp = inp, .w = w, .dout = dout, .crstd = rstd, .N = N, .C = C};
    int nt = NTH_ELEMS((size_t)N * C), nblk = (C + COLBLOCK - 1) / COLBLOCK;
    PAR_ROWS(N, nt, rmsnorm_bwd_rows, &a);
    rlaif_par_for(nblk, 1, nt, rmsnorm_bwd_cols, &a);
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

/* Tiles to cut a product with N rows and inner size C into on nt threads: one
 * per thread, or two per thread when the activations are small enough to pack
 * again (so a thread descheduled on a shared core leaves half as much behind). */
static int tiles_for(int N, int C, int nt) {
    return nt > 1 && (size_t)N * C <= ((size_t)1 << 17) ? 2 * nt : nt;
}

/* Rows at or below this count (decoding) use the kernels below, which read
 * each weight once from memory and do the rows' dot products while it is in
 * cache; a BLIS GEMM would pack the whole weight matrix for a handful of rows. */
#define GEMV_MAX_ROWS 16
#define GEMV_BLOCK 64

#ifdef HAVE_X86
/* [sum(a), sum(b), sum(c), sum(d)]: a transpose-and-add of four accumulators */
AVX512 static inline __m128 hsum4_512(__m512 a, __m512 b, __m512 c, __m512 d) {
    __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
    __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
    __m512 s = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(1, 0, 1, 0)),
                             _mm512_shuffle_ps(ab, cd, _MM_SHUFFLE(3, 2, 3, 2)));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(s), _mm512_extractf32x8_ps(s, 1));
    return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

/* 16 weights as floats: float32 as is, bf16 widened exactly (a shift) */
#define LDW_F32(p) _mm512_loadu_ps(p)
#define LDWM_F32(k, p) _mm512_maskz_loadu_ps(k, p)
#define LDW_BF16(p) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define LDWM_BF16(k, p) \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(k, p)), 16))

/* one step of the 4 x 4 tile at column c: weights v0..v3, input rows x0..x3 */
#define LDX_TAIL(p) _mm512_maskz_loadu_ps(k, p)
#define TILE4X4(W0, W1, W2, W3, LDX, c)                                                                  \
    do {                                                                                                 \
        __m512 v0 = W0, v1 = W1, v2 = W2, v3 = W3, x = LDX(x0 + c);                                      \
        a00 = _mm512_fmadd_ps(v0, x, a00), a10 = _mm512_fmadd_ps(v1, x, a10);                            \
        a20 = _mm512_fmadd_ps(v2, x, a20), a30 = _mm512_fmadd_ps(v3, x, a30);                            \
        x = LDX(x1 + c);                                                                                 \
        a01 = _mm512_fmadd_ps(v0, x, a01), a11 = _mm512_fmadd_ps(v1, x, a11);                            \
        a21 = _mm512_fmadd_ps(v2, x, a21), a31 = _mm512_fmadd_ps(v3, x, a31);                            \
        x = LDX(x2 + c);                                                                                 \
        a02 = _mm512_fmadd_ps(v0, x, a02), a12 = _mm512_fmadd_ps(v1, x, a12);                            \
        a22 = _mm512_fmadd_ps(v2, x, a22), a32 = _mm512_fmadd_ps(v3, x, a32);                            \
        x = LDX(x3 + c);                                                                                 \
        a03 = _mm512_fmadd_ps(v0, x, a03), a13 = _mm512_fmadd_ps(v1, x, a13);                            \
        a23 = _mm512_fmadd_ps(v2, x, a23), a33 = _mm512_fmadd_ps(v3, x, a33);                            \
    } while (0)

/* out[n, o0..o1) (+)= W[o0..o1, :] . x[n] (+ bias) for every row n: 4 weight
 * rows x 4 input rows per tile, 16 named accumulators (an array of them would
 * be spilled to the stack), C in steps of 16 with a masked tail. */
#define GEMV_BODY(WT, LDW, LDWM)                                                                         \
    int o = o0;                                                                                          \
    for (; o + 4 <= o1; o += 4) {                                                                        \
        const WT *w0 = w + (size_t)o * C, *w1 = w0 + C, *w2 = w1 + C, *w3 = w2 + C;                      \
        __m128 bv = bias ? _mm_loadu_ps(bias + o) : _mm_setzero_ps();                                    \
        int n = 0;                                                                                       \
        for (; n + 4 <= N; n += 4) {                                                                     \
            const float *x0 = inp + (size_t)n * C, *x1 = x0 + C, *x2 = x1 + C, *x3 = x2 + C;             \
            __m512 a00 = _mm512_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00,     \
                   a12 = a00, a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00,          \
                   a31 = a00, a32 = a00, a33 = a00;                                                      \
            int c = 0;                                                                                   \
            for (; c + 16 <= C; c += 16)                                                                 \
                TILE4X4(LDW(w0 + c), LDW(w1 + c), LDW(w2 + c), LDW(w3 + c), _mm512_loadu_ps, c);        \
            if (c < C) {                                                                                 \
                __mmask16 k = tail_mask(C - c);                                                          \
                TILE4X4(LDWM(k, w0 + c), LDWM(k, w1 + c), LDWM(k, w2 + c), LDWM(k, w3 + c), LDX_TAIL, c); \
            }                                                                                            \
            __m128 s[4] = {hsum4_512(a00, a10, a20, a30), hsum4_512(a01, a11, a21, a31),                 \
                           hsum4_512(a02, a12, a22, a32), hsum4_512(a03, a13, a23, a33)};                \
            for (int r = 0; r < 4; r++) {                                                                \
                float *dst = out + (size_t)(n + r) * OC + o;                                             \
                __m128 v = _mm_add_ps(s[r], bv);                                                         \
                _mm_storeu_ps(dst, accumulate ? _mm_add_ps(_mm_loadu_ps(dst), v) : v);                   \
            }                                                                                            \
        }                                                                                                \
        for (; n < N; n++) {                                                                             \
            const float *x0 = inp + (size_t)n * C;                                                       \
            __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;                                  \
            int c = 0;                                                                                   \
            for (; c + 16 <= C; c += 16) {                                                               \
                __m512 x = _mm512_loadu_ps(x0 + c);                                                      \
                a0 = _mm512_fmadd_ps(LDW(w0 + c), x, a0), a1 = _mm512_fmadd_ps(LDW(w1 + c), x, a1);      \
                a2 = _mm512_fmadd_ps(LDW(w2 + c), x, a2), a3 = _mm512_fmadd_ps(LDW(w3 + c), x, a3);      \
            }                                                                                            \
            if (c < C) {                                                                                 \
                __mmask16 k = tail_mask(C - c);                                                          \
                __m512 x = _mm512_maskz_loadu_ps(k, x0 + c);                                             \
                a0 = _mm512_fmadd_ps(LDWM(k, w0 + c), x, a0), a1 = _mm512_fmadd_ps(LDWM(k, w1 + c), x, a1); \
                a2 = _mm512_fmadd_ps(LDWM(k, w2 + c), x, a2), a3 = _mm512_fmadd_ps(LDWM(k, w3 + c), x, a3); \
            }                                                                                            \
            float *dst = out + (size_t)n * OC + o;                                                       \
            __m128 v = _mm_add_ps(hsum4_512(a0, a1, a2, a3), bv);                                        \
            _mm_storeu_ps(dst, accumulate ? _mm_add_ps(_mm_loadu_ps(dst), v) : v);                       \
        }                                                                                                \
    }                                                                                                    \
    for (; o < o1; o++) { /* ragged end: one weight row at a time */                                     \
        const WT *wo = w + (size_t)o * C;                                                                \
        for (int n = 0; n < N; n++) {                                                                    \
            __m512 acc = _mm512_setzero_ps();                                                            \
            for (int c = 0; c < C; c += 16) {                                                            \
                __mmask16 k = tail_mask(C - c);                                                          \
                acc = _mm512_fmadd_ps(LDWM(k, wo + c), _mm512_maskz_loadu_ps(k, inp + (size_t)n * C + c), acc); \
            }                                                                                            \
            float *dst = out + (size_t)n * OC + o;                                                       \
            float sum = _mm512_reduce_add_ps(acc) + (bias ? bias[o] : 0.0f);                             \
            *dst = accumulate ? *dst + sum : sum;                                                        \
        }                                                                                                \
    }

AVX512 static void gemv_block512(float *out, const float *inp, const float *w, const float *bias, int N, int C,
                                 int OC, int accumulate, int o0, int o1) {
    GEMV_BODY(float, LDW_F32, LDWM_F32)
}

AVX512 static void gemv_block512_bf16(float *out, const float *inp, const uint16_t *w, const float *bias, int N,
                                      int C, int OC, int accumulate, int o0, int o1) {
    GEMV_BODY(uint16_t, LDW_BF16, LDWM_BF16)
}
#undef GEMV_BODY
#undef TILE4X4
#undef LDX_TAIL
#endif

/* out[n, o0..o1) (+)= W[o0..o1, :] . x[n] + bias for every row n; W is float32
 * (w) or bf16 (wh, the other one NULL). */
static void gemv_block(float *out, const float *inp, const float *w, const uint16_t *wh, const float *bias, int N,
                       int C, int OC, int accumulate, int o0, int o1) {
#ifdef HAVE_X86
    if (rlaif_kernels_avx512()) {
        if (wh) gemv_block512_bf16(out, inp, wh, bias, N, C, OC, accumulate, o0, o1);
        else gemv_block512(out, inp, w, bias, N, C, OC, accumulate, o0, o1);
        return;
    }
#endif
    for (int o = o0; o < o1; o++) {
        const float *wr = w ? w + (size_t)o * C : NULL;
        const uint16_t *hr = wh ? wh + (size_t)o * C : NULL;
        for (int n = 0; n < N; n++) {
            const float *x = inp + (size_t)n * C;
            float sum = 0.0f;
            if (wr) {
#pragma omp simd reduction(+ : sum)
                for (int c = 0; c < C; c++) sum += wr[c] * x[c];
            } else {
#pragma omp simd reduction(+ : sum)
                for (int c = 0; c < C; c++) sum += bf16_to_f32(hr[c]) * x[c];
            }
            float *dst = out + (size_t)n * OC + o;
            *dst = (accumulate ? *dst : 0.0f) + sum + (bias ? bias[o] : 0.0f);
        }
    }
}

/* the arguments of a linear layer (matmul_*, gemv_*, lmhead_*) */
typedef struct {
    float *out, *dinp, *dw, *dbias, *lse, *scratch, *logits;
    const float *inp, *w, *bias, *dout, *clse, *wt;
    const uint16_t *wh;
    const int32_t *targets;
    int N, C, OC, accumulate, tw, tc, nc;   /* tile widths (OC, C), dinp tiles */
} lin_args;

static void gemv_chunk(void *p, int blo, int bhi) {
    const lin_args *a = p;
    int o0 = blo * GEMV_BLOCK, o1 = bhi * GEMV_BLOCK < a->OC ? bhi * GEMV_BLOCK : a->OC;
    gemv_block(a->out, a->inp, a->w, a->wh, a->bias, a->N, a->C, a->OC, a->accumulate, o0, o1);
}

/* Blocks of GEMV_BLOCK weight rows claimed by the threads: each output is
 * computed by one thread in a fixed order, whatever the count. */
static void gemv_rows(float *out, const float *inp, const float *w, const uint16_t *wh, const float *bias, int N,
                      int C, int OC, int accumulate) {
    lin_args a = {.out = out, .inp = inp, .w = w, .wh = wh, .bias = bias, .N = N, .C = C, .OC = OC,
                  .accumulate = accumulate};
    int nb = (OC + GEMV_BLOCK - 1) / GEMV_BLOCK;
    rlaif_par_for(nb, 1, NTH_MACS((size_t)N * C * OC), gemv_chunk, &a);
}

/* A per-thread buffer of at least n floats for widened bf16 weights, kept for
 * the thread's next call (pool threads live as long as the process); NULL when
 * it cannot be had. */
static _Thread_local float *bf_buf;
static _Thread_local size_t bf_cap;
static float *bf16_scratch(size_t n) {
    if (n > bf_cap) {
        free(bf_buf);
        bf_buf = malloc(n * sizeof(float));
        bf_cap = bf_buf ? n : 0;
    }
    return bf_buf;
}

/* out[:, o0..o1) (+)= inp (N x C) @ W[o0..o1)^T for bf16 W (OC, C): pieces of
 * weight rows widened into the thread's buffer, then a one-thread sgemm (the
 * GEMV kernel when no buffer can be had). */
static void gemm_bf16_cols(float *out, const float *inp, const uint16_t *w, int N, int C, int OC, int accumulate,
                           int o0, int o1) {
    int rows = (1 << 20) / C;
    rows = rows < 96 ? 96 : rows > 1024 ? 1024 : rows;
    float *buf = bf16_scratch((size_t)rows * C);
    if (buf == NULL) {
        gemv_block(out, inp, NULL, w, NULL, N, C, OC, accumulate, o0, o1);
        return;
    }
    for (int r0 = o0; r0 < o1; r0 += rows) {
        int rw = o1 - r0 < rows ? o1 - r0 : rows;
        bf16_to_f32_row(buf, w + (size_t)r0 * C, (size_t)rw * C);
        gemm1(N, rw, C, 1.0f, inp, C, 1, buf, 1, C, accumulate ? 1.0f : 0.0f, out + r0, OC, 1);
    }
}

static void matmul_fwd_tile(void *p, int tlo, int thi) {
    const lin_args *a = p;
    int N = a->N, C = a->C, OC = a->OC, tw = a->tw;
    for (int t = tlo; t < thi; t++) {
        int o0 = t * tw, ow = o0 + tw < OC ? tw : OC - o0;
        /* out[:, o0:] (N x ow) = inp (N x C) * w[o0:]^T (C x ow: rs 1, cs C) */
        if (a->wh) gemm_bf16_cols(a->out, a->inp, a->wh, N, C, OC, a->accumulate, o0, o0 + ow);
        else gemm1(N, ow, C, 1.0f, a->inp, C, 1, a->w + (size_t)o0 * C, 1, C, a->accumulate ? 1.0f : 0.0f,
                   a->out + o0, OC, 1);
        if (a->bias)
            for (int n = 0; n < N; n++) {
                float *o = a->out + (size_t)n * OC + o0;
                const float *bb = a->bias + o0;
#pragma omp simd
                for (int c = 0; c < ow; c++) o[c] += bb[c];
            }
    }
}

void matmul_forward(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                    int accumulate) {
    if (N <= GEMV_MAX_ROWS) {
        gemv_rows(out, inp, w, NULL, bias, N, C, OC, accumulate);
        return;
    }
    /* tiles of output columns (= weight rows), claimed by the threads; the
     * bias is added while the tile is in cache */
    int nt = NTH_MACS((size_t)N * C * OC), tw = tile_width(OC, tiles_for(N, C, nt));
    lin_args a = {.out = out, .inp = inp, .w = w, .bias = bias, .N = N, .C = C, .OC = OC, .accumulate = accumulate,
                  .tw = tw};
    rlaif_par_for((OC + tw - 1) / tw, 1, nt, matmul_fwd_tile, &a);
}

void matmul_forward_bf16(float *out, const float *inp, const uint16_t *w, const float *bias, int N, int C, int OC,
                         int accumulate) {
    if (N <= GEMV_MAX_ROWS) {
        gemv_rows(out, inp, NULL, w, bias, N, C, OC, accumulate);
        return;
    }
    int nt = NTH_MACS((size_t)N * C * OC), tw = tile_width(OC, tiles_for(N, C, nt));
    lin_args a = {.out = out, .inp = inp, .wh = w, .bias = bias, .N = N, .C = C, .OC = OC, .accumulate = accumulate,
                  .tw = tw};
    rlaif_par_for((OC + tw - 1) / tw, 1, nt, matmul_fwd_tile, &a);
}

/* tasks: tiles of dinp columns, then tiles of dw rows (with their dbias) */
static void matmul_bwd_task(void *p, int tlo, int thi) {
    const lin_args *a = p;
    int N = a->N, C = a->C, OC = a->OC, nc = a->nc, tc = a->tc, to = a->tw;
    const float *dout = a->dout;
    for (int t = tlo; t < thi; t++) {
        if (t < nc) {
            /* dinp[:, c0:] (N x cw) += dout (N x OC) * w[:, c0:] (OC x cw) */
            int c0 = t * tc, cw = c0 + tc < C ? tc : C - c0;
            gemm1(N, cw, OC, 1.0f, dout, OC, 1, a->w + c0, C, 1, 1.0f, a->dinp + c0, C, 1);
            continue;
        }
        int o0 = (t - nc) * to, ow = o0 + to < OC ? to : OC - o0;
        /* dw[o0:] (ow x C) += dout[:, o0:]^T (ow x N: rs 1, cs OC) * inp (N x C) */
        if (a->dw) gemm1(ow, C, N, 1.0f, dout + o0, 1, OC, a->inp, C, 1, 1.0f, a->dw + (size_t)o0 * C, C, 1);
        if (a->dbias)
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC + o0;
                float *db = a->dbias + o0;
#pragma omp simd
                for (int o = 0; o < ow; o++) db[o] += d[o];
            }
    }
}

void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                     int N, int C, int OC) {
    int nt = NTH_MACS((size_t)N * C * OC), tc = tile_width(C, nt), nc = dinp ? (C + tc - 1) / tc : 0;
    int to = tile_width(OC, nt), no = (dw || dbias) ? (OC + to - 1) / to : 0;
    lin_args a = {.dinp = dinp, .dw = dw, .dbias = dbias, .dout = dout, .inp = inp, .w = w, .N = N, .C = C,
                  .OC = OC, .tw = to, .tc = tc, .nc = nc};
    rlaif_par_for(nc + no, 1, nt, matmul_bwd_task, &a);
}

/* ---- LM head with the log-sum-exp fused in ---- */

int lmhead_scratch_floats(int N, int V) { return 2 * N * ((V + LM_CHUNK - 1) / LM_CHUNK); }

static void lmhead_fwd_chunk(void *p, int lo, int hi) {
    const lin_args *a = p;
    int N = a->N, C = a->C, V = a->OC, nch = (V + LM_CHUNK - 1) / LM_CHUNK;
    float *pmax = a->scratch, *psum = a->scratch + (size_t)N * nch;   /* (nch, N) each */
    for (int ch = lo; ch < hi; ch++) {
        int v0 = ch * LM_CHUNK, vw = v0 + LM_CHUNK < V ? LM_CHUNK : V - v0;
        if (N <= GEMV_MAX_ROWS) gemv_block(a->logits, a->inp, a->w, a->wh, NULL, N, C, V, 0, v0, v0 + vw);
        else if (a->wh) gemm_bf16_cols(a->logits, a->inp, a->wh, N, C, V, 0, v0, v0 + vw);
        else gemm1(N, vw, C, 1.0f, a->inp, C, 1, a->w + (size_t)v0 * C, 1, C, 0.0f, a->logits + v0, V, 1);
        for (int n = 0; n < N; n++)   /* the chunk is still in L2 */
            max_sumexp(a->logits + (size_t)n * V + v0, vw, pmax + (size_t)ch * N + n, psum + (size_t)ch * N + n);
    }
}

static void lmhead_run(float *logits, float *lse, float *scratch, const float *inp, const float *w,
                       const uint16_t *wh, int N, int C, int V) {
    int nch = (V + LM_CHUNK - 1) / LM_CHUNK;
    float *pmax = scratch, *psum = scratch + (size_t)N * nch;   /* (nch, N) each */
    lin_args a = {.logits = logits, .scratch = scratch, .inp = inp, .w = w, .wh = wh, .N = N, .C = C, .OC = V};
    rlaif_par_for(nch, 1, NTH_MACS((size_t)N * C * V), lmhead_fwd_chunk, &a);
    /* combine the chunks in a fixed order: deterministic for any schedule */
    for (int n = 0; n < N; n++) {
        float mx = -INFINITY;
        for (int ch = 0; ch < nch; ch++) mx = pmax[(size_t)ch * N + n] > mx ? pmax[(size_t)ch * N + n] : mx;
        double s = 0;
        for (int ch = 0; ch < nch; ch++) s += psum[(size_t)ch * N + n] * exp((double)pmax[(size_t)ch * N + n] - mx);
        lse[n] = mx + (float)log(s);
    }
}

void lmhead_forward(float *logits, float *lse, float *scratch, const float *inp, const float *w, int N, int C,
                    int V) {
    lmhead_run(logits, lse, scratch, inp, w, NULL, N, C, V);
}

void lmhead_forward_bf16(float *logits, float *lse, float *scratch, const float *inp, const uint16_t *w, int N,
                         int C, int V) {
    lmhead_run(logits, lse, scratch, inp, NULL, w, N, C, V);
}

static void lmhead_bwd_chunk(void *p, int lo, int hi) {
    const lin_args *a = p;
    int N = a->N, C = a->C, V = a->OC;
    float *logits = a->logits;
    const float *lse = a->clse, *wt = a->wt;
    const int32_t *targets = a->targets;
    for (int ch = lo; ch < hi; ch++) {
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
        gemm1(vw, C, N, 1.0f, logits + v0, 1, V, a->inp, C, 1, 1.0f, a->dw + (size_t)v0 * C, C, 1);
    }
}

static void lmhead_bwd_dinp(void *p, int lo, int hi) {
    const lin_args *a = p;
    int N = a->N, C = a->C, V = a->OC, tc = a->tc;
    for (int t = lo; t < hi; t++) {
        int c0 = t * tc, cw = c0 + tc < C ? tc : C - c0;
        gemm1(N, cw, V, 1.0f, a->logits, V, 1, a->w + c0, C, 1, 1.0f, a->dinp + c0, C, 1);
    }
}

void lmhead_backward(float *dinp, float *dw, float *logits, const float *lse, const int32_t *targets,
                     const float *wt, const float *inp, const float *w, int N, int C, int V) {
    int nch = (V + LM_CHUNK - 1) / LM_CHUNK, nt = NTH, tc = tile_width(C, nt), nc = (C + tc - 1) / tc;
    lin_args a = {.dinp = dinp, .dw = dw, .logits = logits, .clse = lse, .targets = targets, .wt = wt, .inp = inp,
                  .w = w, .N = N, .C = C, .OC = V, .tc = tc};
    /* dlogits chunk by chunk, and dw of the chunk's rows while it is in L2 */
    rlaif_par_for(nch, 1, nt, lmhead_bwd_chunk, &a);
    /* dinp (N x C) += dlogits (N x V) * w (V x C), tiles of columns */
    rlaif_par_for(nc, 1, nt, lmhead_bwd_dinp, &a);
}

/* ---- attention ---- */

typedef struct {
    float *out, *att, *dqkv, *datt;
    const float *qkv, *cout, *catt;
    const int32_t *mask;
    int B, T, H, KV, hd;
} att_args;

static void attention_fwd_heads(void *p, int lo, int hi) {
    const att_args *a = p;
    int T = a->T, H = a->H, KV = a->KV, hd = a->hd, QKV = (H + 2 * KV) * hd, QD = H * hd, rep = H / KV;
    float scale = 1.0f / sqrtf((float)hd), *out = a->out, *att = a->att;
    const float *qkv = a->qkv;
    const int32_t *mask = a->mask;
    for (int bh = lo; bh < hi; bh++) {
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

void attention_forward(float *out, float *att, const float *qkv, const int32_t *mask, int B, int T, int H,
                       int KV, int hd) {
    att_args a = {.out = out, .att = att, .qkv = qkv, .mask = mask, .B = B, .T = T, .H = H, .KV = KV, .hd = hd};
    rlaif_par_for(B * H, 1, NTH_MACS((size_t)B * H * T * T * hd), attention_fwd_heads, &a);
}

/* one task per (b, kv head): the query heads of a group share dk, dv */
static void attention_bwd_groups(void *p, int lo, int hi) {
    const att_args *g0 = p;
    int T = g0->T, H = g0->H, KV = g0->KV, hd = g0->hd, QKV = (H + 2 * KV) * hd, QD = H * hd, rep = H / KV;
    float scale = 1.0f / sqrtf((float)hd), *dqkv = g0->dqkv, *datt = g0->datt;
    const float *qkv = g0->qkv, *dout = g0->cout, *att = g0->catt;
    for (int bg = lo; bg < hi; bg++) {
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

void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                        int B, int T, int H, int KV, int hd) {
    att_args a = {.dqkv = dqkv, .datt = datt, .cout = dout, .qkv = qkv, .catt = att, .B = B, .T = T, .H = H,
                  .KV = KV, .hd = hd};
    rlaif_par_for(B * KV, 1, NTH_MACS((size_t)B * H * T * T * hd), attention_bwd_groups, &a);
}

/* ---- rotary embeddings ---- */

typedef struct { float *qkv; const float *cosb, *sinb; const int32_t *pos; int H, KV, hd; float sign; } rope_args;

static void rope_rows(void *p, int lo, int hi) {
    const rope_args *a = p;
    int H = a->H, KV = a->KV, hd = a->hd, QKV = (H + 2 * KV) * hd, half = hd / 2;
    const float *cosb = a->cosb, *sinb = a->sinb;
    const int32_t *pos = a->pos;
    float *qkv = a->qkv, sign = a->sign;
    for (int n = lo; n < hi; n++) {
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

static void rope_rotate(float *qkv, const float *cosb, const float *sinb, const int32_t *pos, int B, int T,
                        int H, int KV, int hd, float sign) {
    rope_args a = {qkv, cosb, sinb, pos, H, KV, hd, sign};
    int nt = NTH_ELEMS((size_t)B * T * (H + KV) * hd);
    PAR_ROWS(B * T, nt, rope_rows, &a);
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

/* element-wise kernels run over ranges of ELEM_GRAIN elements (or rows) */
#define ELEM_GRAIN 4096
typedef struct { float *out; const float *inp, *in2, *cw, *clse; const int32_t *targets; float *lse; int n, F, V; } elem_args;

#ifdef HAVE_X86
AVX512 static void gelu_forward512(float *out, const float *inp, int n) {
    const __m512 k = _mm512_set1_ps(GELU_K), a = _mm512_set1_ps(0.044715f), half = _mm512_set1_ps(0.5f),
                 one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
        __m512 x = _mm512_maskz_loadu_ps(m, inp + i);
        __m512 u = _mm512_mul_ps(k, _mm512_fmadd_ps(_mm512_mul_ps(a, x), _mm512_mul_ps(x, x), x));
        __m512 y = _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, tanh512(u)));
        _mm512_mask_storeu_ps(out + i, m, y);
    }
}

AVX512 static void gelu_backward512(float *dinp, const float *inp, const float *dout, int n) {
    const __m512 k = _mm512_set1_ps(GELU_K), a = _mm512_set1_ps(0.044715f), a3 = _mm512_set1_ps(3.0f * 0.044715f),
                 half = _mm512_set1_ps(0.5f), one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = tail_mask(n - i);
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
#endif

static void gelu_fwd_range(void *p, int lo, int hi) {
    const elem_args *e = p;
    float *out = e->out;
    const float *inp = e->inp;
#ifdef HAVE_X86
    if (rlaif_kernels_avx512()) {
        gelu_forward512(out + lo, inp + lo, hi - lo);
        return;
    }
#endif
    for (int i = lo; i < hi; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void gelu_forward(float *out, const float *inp, int n) {
    elem_args e = {.out = out, .inp = inp};
    rlaif_par_for(n, ELEM_GRAIN, NTH_ELEMS(n), gelu_fwd_range, &e);
}

static void gelu_bwd_range(void *p, int lo, int hi) {
    const elem_args *e = p;
    float *dinp = e->out;
    const float *inp = e->inp, *dout = e->in2;
#ifdef HAVE_X86
    if (rlaif_kernels_avx512()) {
        gelu_backward512(dinp + lo, inp + lo, dout + lo, hi - lo);
        return;
    }
#endif
    for (int i = lo; i < hi; i++) {
        float x = inp[i], u = GELU_K * (x + 0.044715f * x * x * x), th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += g * dout[i];
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, int n) {
    elem_args e = {.out = dinp, .inp = inp, .in2 = dout};
    rlaif_par_for(n, ELEM_GRAIN, NTH_ELEMS(n), gelu_bwd_range, &e);
}

static void swiglu_fwd_rows(void *p, int lo, int hi) {
    const elem_args *e = p;
    int F = e->F;
    for (int n = lo; n < hi; n++) {
        const float *g = e->inp + (size_t)n * 2 * F, *u = g + F;
        float *o = e->out + (size_t)n * F;
        for (int i = 0; i < F; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

void swiglu_forward(float *out, const float *inp, int N, int F) {
    elem_args e = {.out = out, .inp = inp, .F = F};
    int nt = NTH_ELEMS((size_t)N * F);
    PAR_ROWS(N, nt, swiglu_fwd_rows, &e);
}

static void swiglu_bwd_rows(void *p, int lo, int hi) {
    const elem_args *e = p;
    int F = e->F;
    for (int n = lo; n < hi; n++) {
        const float *g = e->inp + (size_t)n * 2 * F, *u = g + F, *d = e->in2 + (size_t)n * F;
        float *dg = e->out + (size_t)n * 2 * F, *du = dg + F;
        for (int i = 0; i < F; i++) {
            float s = 1.0f / (1.0f + expf(-g[i]));
            dg[i] += d[i] * u[i] * s * (1.0f + g[i] * (1.0f - s));
            du[i] += d[i] * g[i] * s;
        }
    }
}

void swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F) {
    elem_args e = {.out = dinp, .inp = inp, .in2 = dout, .F = F};
    int nt = NTH_ELEMS((size_t)N * F);
    PAR_ROWS(N, nt, swiglu_bwd_rows, &e);
}

static void residual_range(void *p, int lo, int hi) {
    const elem_args *e = p;
    for (int i = lo; i < hi; i++) e->out[i] = e->inp[i] + e->in2[i];
}

void residual_forward(float *out, const float *a, const float *b, int n) {
    elem_args e = {.out = out, .inp = a, .in2 = b};
    rlaif_par_for(n, ELEM_GRAIN, NTH_ELEMS(n), residual_range, &e);
}

/* ---- loss ---- */

static void ce_fwd_rows(void *p, int lo, int hi) {
    const elem_args *e = p;
    int V = e->V;
    for (int n = lo; n < hi; n++) {
        const float *x = e->inp + (size_t)n * V;
        float mx, sum;
        max_sumexp(x, V, &mx, &sum);
        e->lse[n] = mx + logf(sum);
        if (e->out) e->out[n] = e->targets[n] >= 0 ? e->lse[n] - x[e->targets[n]] : 0.0f;
    }
}

void crossentropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int N, int V) {
    elem_args e = {.out = losses, .lse = lse, .inp = logits, .targets = targets, .V = V};
    int nt = NTH_ELEMS((size_t)N * V);
    PAR_ROWS(N, nt, ce_fwd_rows, &e);
}

static void ce_bwd_rows(void *p, int lo, int hi) {
    const elem_args *e = p;
    int V = e->V;
    const int32_t *targets = e->targets;
    const float *w = e->cw, *lse = e->clse;
    for (int n = lo; n < hi; n++) {
        float *x = e->out + (size_t)n * V;
        if (targets[n] < 0 || w[n] == 0.0f) {
            memset(x, 0, sizeof(float) * V);
            continue;
        }
        scaled_exp(x, V, lse[n], w[n]);
        x[targets[n]] -= w[n];
    }
}

void crossentropy_backward(float *logits, const float *lse, const int32_t *targets, const float *w, int N, int V) {
    elem_args e = {.out = logits, .clse = lse, .targets = targets, .cw = w, .V = V};
    int nt = NTH_ELEMS((size_t)N * V);
    PAR_ROWS(N, nt, ce_bwd_rows, &e);
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
