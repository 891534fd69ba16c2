/* src/core/kernels.c -- forward/backward kernels of the transformer (see kernels.h).
 *
 * Dimension letters, declared once: B batch, T time, C channels, N = B*T rows,
 * OC output channels, H query heads, KV key/value heads (H % KV == 0), hd head
 * size, QD = H*hd, QKV = (H + 2*KV)*hd, F MLP width, V vocabulary.
 *
 * Every matrix product is a BLIS sgemm: the linear layers use the global,
 * multi-threaded BLIS; attention runs one single-threaded sgemm per (batch,
 * head) inside an OpenMP loop. Element-wise kernels are OpenMP loops over rows.
 * Backward kernels accumulate (+=) into the gradients they are given.
 * Not here: allocation (the caller owns every buffer), error handling (shapes
 * are validated by model.c before any kernel runs). */
#include "kernels.h"

#include <blis.h>
#include <math.h>
#include <string.h>

#include "model.h"
#include "rlaif.h"

#define NTH rlaif_get_threads()

/* ---- encoder ---- */

void encoder_forward(float *out, const int32_t *ids, const int32_t *pos, const float *wte, const float *wpe,
                     int N, int C) {
#pragma omp parallel for num_threads(NTH)
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
#pragma omp parallel for num_threads(NTH)
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
#pragma omp parallel for num_threads(NTH)
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
#pragma omp parallel for num_threads(NTH)
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
#pragma omp parallel for num_threads(NTH)
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
#pragma omp parallel for num_threads(NTH)
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *x = inp + (size_t)n * C;
        float s = rstd[n], dot = 0;
        for (int c = 0; c < C; c++) dot += w[c] * d[c] * x[c];
        float k = s * s * s * dot / C;
        float *di = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) di[c] += s * w[c] * d[c] - k * x[c];
    }
#pragma omp parallel for num_threads(NTH)
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

/* Rows at or below this count (decoding) use matrix-vector products: a GEMM
 * would pack the whole weight matrix for a handful of rows. */
#define GEMV_MAX_ROWS 4
#define GEMV_BLOCK 64

/* out[n, o] (+)= W[o, :] . x[n] + bias[o] for a few rows: one pass over W, the
 * rows' dot products done while a W row is in cache. */
static void gemv_rows(float *out, const float *inp, const float *w, const float *bias, int N, int C, int OC,
                      int accumulate) {
#pragma omp parallel for num_threads(NTH) schedule(static)
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
    float one = 1.0f, beta = accumulate ? 1.0f : 0.0f;
    if (N <= GEMV_MAX_ROWS) {
        gemv_rows(out, inp, w, bias, N, C, OC, accumulate);
        return;
    }
    /* out (N x OC) = inp (N x C, rs C) * w^T (C x OC: rs 1, cs C) */
    bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, N, OC, C, &one, (float *)inp, C, 1, (float *)w, 1, C, &beta,
              out, OC, 1);
    if (bias) {
#pragma omp parallel for num_threads(NTH)
        for (int n = 0; n < N; n++) {
            float *o = out + (size_t)n * OC;
            for (int c = 0; c < OC; c++) o[c] += bias[c];
        }
    }
}

void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout, const float *inp, const float *w,
                     int N, int C, int OC) {
    float one = 1.0f;
    /* dinp (N x C) += dout (N x OC) * w (OC x C) */
    if (dinp)
        bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, N, C, OC, &one, (float *)dout, OC, 1, (float *)w, C, 1,
                  &one, dinp, C, 1);
    /* dw (OC x C) += dout^T (OC x N: rs 1, cs OC) * inp (N x C) */
    if (dw)
        bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, OC, C, N, &one, (float *)dout, 1, OC, (float *)inp, C, 1,
                  &one, dw, C, 1);
    if (dbias) {
#pragma omp parallel for num_threads(NTH)
        for (int o0 = 0; o0 < OC; o0 += COLBLOCK) {
            int o1 = o0 + COLBLOCK < OC ? o0 + COLBLOCK : OC;
            for (int n = 0; n < N; n++) {
                const float *d = dout + (size_t)n * OC;
                for (int o = o0; o < o1; o++) dbias[o] += d[o];
            }
        }
    }
}

/* ---- attention ---- */

/* one-thread sgemm: c (m x n) = alpha a (m x k) b (k x n) + beta c, general strides */
static void gemm1(rntm_t *r, dim_t m, dim_t n, dim_t k, float alpha, const float *a, inc_t rsa, inc_t csa,
                  const float *b, inc_t rsb, inc_t csb, float beta, float *c, inc_t rsc, inc_t csc) {
    bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m, n, k, &alpha, (float *)a, rsa, csa, (float *)b, rsb,
                 csb, &beta, c, rsc, csc, NULL, r);
}

void attention_forward(float *out, float *att, const float *qkv, const int32_t *mask, int B, int T, int H,
                       int KV, int hd) {
    int QKV = (H + 2 * KV) * hd, QD = H * hd, rep = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(1, &rntm);
#pragma omp parallel for num_threads(NTH) schedule(dynamic)
    for (int bh = 0; bh < B * H; bh++) {
        int b = bh / H, h = bh % H, g = h / rep;
        const float *base = qkv + (size_t)b * T * QKV;
        const float *q = base + h * hd, *k = base + QD + g * hd, *v = base + QD + KV * hd + g * hd;
        float *A = att + (size_t)bh * T * T;
        const int32_t *mk = mask + (size_t)b * T;
        /* A = scale * q k^T */
        gemm1(&rntm, T, T, hd, scale, q, QKV, 1, k, 1, QKV, 0.0f, A, T, 1);
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
        gemm1(&rntm, T, hd, T, 1.0f, A, T, 1, v, QKV, 1, 0.0f, out + (size_t)b * T * QD + h * hd, QD, 1);
    }
}

void attention_backward(float *dqkv, float *datt, const float *dout, const float *qkv, const float *att,
                        int B, int T, int H, int KV, int hd) {
    int QKV = (H + 2 * KV) * hd, QD = H * hd, rep = H / KV;
    float scale = 1.0f / sqrtf((float)hd);
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(1, &rntm);
    /* one task per (b, kv head): the query heads of a group share dk, dv */
#pragma omp parallel for num_threads(NTH) schedule(dynamic)
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
            gemm1(&rntm, T, T, hd, 1.0f, dO, QD, 1, v, 1, QKV, 0.0f, dA, T, 1);   /* dA = dO v^T   */
            gemm1(&rntm, T, hd, T, 1.0f, A, 1, T, dO, QD, 1, 1.0f, dv, QKV, 1);   /* dv += A^T dO  */
            for (int t = 0; t < T; t++) {
                const float *a = A + (size_t)t * T;
                float *d = dA + (size_t)t * T, dot = 0;
                for (int s = 0; s <= t; s++) dot += a[s] * d[s];
                for (int s = 0; s < T; s++) d[s] = s <= t ? a[s] * (d[s] - dot) * scale : 0.0f;
            }
            gemm1(&rntm, T, hd, T, 1.0f, dA, T, 1, k, QKV, 1, 1.0f, dq, QKV, 1);  /* dq += dS k    */
            gemm1(&rntm, T, hd, T, 1.0f, dA, 1, T, q, QKV, 1, 1.0f, dk, QKV, 1);  /* dk += dS^T q  */
        }
    }
}

/* ---- rotary embeddings ---- */

static void rope_rotate(float *qkv, const float *cosb, const float *sinb, const int32_t *pos, int B, int T,
                        int H, int KV, int hd, float sign) {
    int QKV = (H + 2 * KV) * hd, half = hd / 2;
#pragma omp parallel for num_threads(NTH)
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

void gelu_forward(float *out, const float *inp, int n) {
#pragma omp parallel for num_threads(NTH)
    for (int i = 0; i < n; i++) {
        float x = inp[i];
        out[i] = 0.5f * x * (1.0f + tanhf(GELU_K * (x + 0.044715f * x * x * x)));
    }
}

void gelu_backward(float *dinp, const float *inp, const float *dout, int n) {
#pragma omp parallel for num_threads(NTH)
    for (int i = 0; i < n; i++) {
        float x = inp[i], u = GELU_K * (x + 0.044715f * x * x * x), th = tanhf(u);
        float sech2 = 1.0f - th * th;
        float g = 0.5f * (1.0f + th) + 0.5f * x * sech2 * GELU_K * (1.0f + 3.0f * 0.044715f * x * x);
        dinp[i] += g * dout[i];
    }
}

void swiglu_forward(float *out, const float *inp, int N, int F) {
#pragma omp parallel for num_threads(NTH)
    for (int n = 0; n < N; n++) {
        const float *g = inp + (size_t)n * 2 * F, *u = g + F;
        float *o = out + (size_t)n * F;
        for (int i = 0; i < F; i++) o[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
    }
}

void swiglu_backward(float *dinp, const float *inp, const float *dout, int N, int F) {
#pragma omp parallel for num_threads(NTH)
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
#pragma omp parallel for num_threads(NTH)
    for (int i = 0; i < n; i++) out[i] = a[i] + b[i];
}

/* ---- loss ---- */

void crossentropy_forward(float *losses, float *lse, const float *logits, const int32_t *targets, int N, int V) {
#pragma omp parallel for num_threads(NTH)
    for (int n = 0; n < N; n++) {
        const float *x = logits + (size_t)n * V;
        float mx = -INFINITY;
        for (int v = 0; v < V; v++) mx = x[v] > mx ? x[v] : mx;
        float sum = 0;
        for (int v = 0; v < V; v++) sum += expf(x[v] - mx);
        lse[n] = mx + logf(sum);
        if (losses) losses[n] = targets[n] >= 0 ? lse[n] - x[targets[n]] : 0.0f;
    }
}

void crossentropy_backward(float *logits, const float *lse, const int32_t *targets, const float *w, int N, int V) {
#pragma omp parallel for num_threads(NTH)
    for (int n = 0; n < N; n++) {
        float *x = logits + (size_t)n * V;
        if (targets[n] < 0 || w[n] == 0.0f) {
            memset(x, 0, sizeof(float) * V);
            continue;
        }
        float l = lse[n], wn = w[n];
        for (int v = 0; v < V; v++) x[v] = wn * expf(x[v] - l);
        x[targets[n]] -= wn;
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
