/* src/core/generate.c -- batched sampling with a KV cache (rlaif_model_generate).
 *
 * Prompts are left-padded to a common length Tp, so every row appends its new
 * token at the same column; positions count real tokens only (the same rule as
 * rlaif_model_forward), so a padded row computes what the row alone would.
 * The cache holds keys (after RoPE) and values per layer:
 *   K, V (L, B, KV, S, hd) with S = Tp + max_new_tokens.
 * One inference step runs the layers over Tn new columns per row (the prompt
 * at first, then one token) against the cache. It reuses the training kernels
 * but keeps only one layer of activations. Log-probabilities returned are those
 * of the model itself (temperature 1, no truncation) for the sampled tokens.
 * Sampling draws from one random stream for the batch, or from one stream per row
 * (rlaif_model_generate_seeded): then a row's tokens do not depend on the other
 * rows, so a prompt samples the same text in any batch, on any rank.
 * Not here: beam search, speculative decoding, per-row different lengths of
 * output buffers. */
#include <blis.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "model.h"
#include "par.h"

typedef struct gen_state {
    int B, S, Tp;
    float *K, *V;             /* (L, B, KV, S, hd)                       */
    int32_t *cmask;           /* (B, S) 1 = real column                  */
    int32_t *cpos;            /* (B, S) position of each column          */
    /* one chunk of Tn columns */
    float *x, *ln, *qkv, *atty, *fch, *fcha, *mean, *rstd, *scores, *logits, *cosb, *sinb;
    int32_t *ids, *pos, *mask;
} gen_state;

typedef struct { const rlaif_model *m; gen_state *g; int l, c0, Tn; } catt_args;

static void cached_attention_heads(void *p, int lo, int hi) {
    const catt_args *a = p;
    const rlaif_model_config *c = &a->m->cfg;
    gen_state *g = a->g;
    int l = a->l, c0 = a->c0, Tn = a->Tn;
    int S = g->S, H = c->n_head, KV = c->n_kv_head, hd = c->head_dim, rep = H / KV;
    int QD = H * hd, QKV = (H + 2 * KV) * hd, Sn = c0 + Tn, B = g->B;
    float scale = 1.0f / sqrtf((float)hd);
    rntm_t rntm;
    bli_rntm_init(&rntm);
    bli_rntm_set_num_threads(1, &rntm);
    for (int bh = lo; bh < hi; bh++) {
        int b = bh / H, h = bh % H, gk = h / rep;
        size_t kv0 = (((size_t)l * B + b) * KV + gk) * S * hd;
        const float *Kc = g->K + kv0, *Vc = g->V + kv0, *q = g->qkv + (size_t)b * Tn * QKV + h * hd;
        float *sc = g->scores + (size_t)bh * Tn * S, one = 1.0f, zero = 0.0f;
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, Tn, Sn, hd, &scale, (float *)q, QKV, 1, (float *)Kc, 1, hd,
                     &zero, sc, S, 1, NULL, &rntm);
        const int32_t *mk = g->cmask + (size_t)b * S;
        for (int i = 0; i < Tn; i++) {
            float *row = sc + (size_t)i * S, mx = -INFINITY, sum = 0;
            int lim = c0 + i;
            for (int s = 0; s <= lim; s++)
                if (mk[s] && row[s] > mx) mx = row[s];
            for (int s = 0; s < Sn; s++) {
                float e = (s <= lim && mk[s]) ? expf(row[s] - mx) : 0.0f;
                row[s] = e;
                sum += e;
            }
            float inv = sum > 0 ? 1.0f / sum : 0.0f;
            for (int s = 0; s < Sn; s++) row[s] *= inv;
        }
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, Tn, hd, Sn, &one, sc, S, 1, (float *)Vc, hd, 1, &zero,
                     g->atty + (size_t)b * Tn * QD + h * hd, QD, 1, NULL, &rntm);
    }
}

static void cached_attention(const rlaif_model *m, gen_state *g, int l, int c0, int Tn) {
    const rlaif_model_config *c = &m->cfg;
    int H = c->n_head;
    size_t work = (size_t)g->B * H * Tn * (c0 + Tn) * c->head_dim;  /* one thread for a few dot products */
    catt_args a = {m, g, l, c0, Tn};
    rlaif_par_for(g->B * H, 1, work >= ((size_t)1 << 18) ? rlaif_get_threads() : 1, cached_attention_heads, &a);
}

/* Run columns [c0, c0 + Tn) (ids/pos/mask already in g) and leave the logits of
 * the last column of each row in g->logits (B, V). */
static rlaif_status step(const rlaif_model *m, gen_state *g, int c0, int Tn) {
    const rlaif_model_config *c = &m->cfg;
    const rlaif_params *w = &m->params;
    int B = g->B, N = B * Tn, C = c->d_model, H = c->n_head, KV = c->n_kv_head, hd = c->head_dim;
    int QD = H * hd, QKV = (H + 2 * KV) * hd, F = c->d_ff, gpt2 = c->arch == RLAIF_ARCH_GPT2, FF = gpt2 ? F : 2 * F;
    float eps = c->norm_eps;
    rlaif_model_embed(m, g->x, g->ids, g->pos, N);
    for (int l = 0; l < c->n_layer; l++) {
        if (rlaif_cancelled()) return rlaif_fail(RLAIF_EINTR, "model.generate: interrupted");
        if (gpt2) layernorm_forward(g->ln, g->mean, g->rstd, g->x, w->ln1w + l * C, w->ln1b + l * C, N, C, eps);
        else rmsnorm_forward(g->ln, g->rstd, g->x, w->ln1w + l * C, N, C, eps);
        rlaif_model_linear(m, P_QKVW, l, g->qkv, g->ln, w->qkvb ? w->qkvb + (size_t)l * QKV : NULL, N, C, QKV, 0);
        if (!gpt2) rope_forward(g->qkv, g->cosb, g->sinb, g->pos, B, Tn, H, KV, hd);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < Tn; i++)
                for (int k = 0; k < KV; k++) {
                    size_t dst = ((((size_t)l * B + b) * KV + k) * g->S + c0 + i) * hd;
                    const float *row = g->qkv + ((size_t)b * Tn + i) * QKV;
                    memcpy(g->K + dst, row + QD + k * hd, sizeof(float) * hd);
                    memcpy(g->V + dst, row + QD + KV * hd + k * hd, sizeof(float) * hd);
                }
        cached_attention(m, g, l, c0, Tn);
        rlaif_model_linear(m, P_ATTPROJW, l, g->x, g->atty, w->attprojb ? w->attprojb + l * C : NULL, N, QD, C, 1);
        if (gpt2) layernorm_forward(g->ln, g->mean, g->rstd, g->x, w->ln2w + l * C, w->ln2b + l * C, N, C, eps);
        else rmsnorm_forward(g->ln, g->rstd, g->x, w->ln2w + l * C, N, C, eps);
        rlaif_model_linear(m, P_FCW, l, g->fch, g->ln, gpt2 ? w->fcb + (size_t)l * FF : NULL, N, C, FF, 0);
        if (gpt2) gelu_forward(g->fcha, g->fch, N * F);
        else swiglu_forward(g->fcha, g->fch, N, F);
        rlaif_model_linear(m, P_FCPROJW, l, g->x, g->fcha, gpt2 ? w->fcprojb + l * C : NULL, N, F, C, 1);
    }
    /* final norm and LM head on the last column of each row only */
    for (int b = 0; b < B; b++) memmove(g->ln + (size_t)b * C, g->x + ((size_t)b * Tn + Tn - 1) * C, sizeof(float) * C);
    if (gpt2) layernorm_forward(g->x, g->mean, g->rstd, g->ln, w->lnfw, w->lnfb, B, C, eps);
    else rmsnorm_forward(g->x, g->rstd, g->ln, w->lnfw, B, C, eps);
    rlaif_model_linear(m, m->param_sizes[P_LMHEAD] ? P_LMHEAD : P_WTE, 0, g->logits, g->x, NULL, B, C, c->vocab_size, 0);
    return RLAIF_OK;
}

/* ---- sampling ---- */

typedef struct { float v; int i; } cand;
static int cand_desc(const void *a, const void *b) {
    float x = ((const cand *)a)->v, y = ((const cand *)b)->v;
    return x < y ? 1 : x > y ? -1 : ((const cand *)a)->i - ((const cand *)b)->i;
}

/* Returns the token; *lp = its log-probability under softmax(logits). */
static int sample(const float *logits, int V, const rlaif_gen_opts *o, rlaif_rng *rng, cand *buf, float *lp) {
    float mx = -INFINITY;
    int arg = 0;
    for (int v = 0; v < V; v++)
        if (logits[v] > mx) mx = logits[v], arg = v;
    double lse = logsumexp_row(logits, V);
    int tok = arg;
    if (o->temperature > 0) {
        int n = V;
        for (int v = 0; v < V; v++) buf[v].v = logits[v] / o->temperature, buf[v].i = v;
        int truncate = (o->top_k > 0 && o->top_k < V) || o->top_p < 1.0f;
        if (truncate) qsort(buf, V, sizeof *buf, cand_desc);
        if (o->top_k > 0 && o->top_k < n) n = o->top_k;
        float m2 = -INFINITY;
        for (int k = 0; k < n; k++) m2 = buf[k].v > m2 ? buf[k].v : m2;
        double total = 0;
        for (int k = 0; k < n; k++) total += exp((double)buf[k].v - m2);
        if (o->top_p < 1.0f) {
            double acc = 0;
            int keep = n;
            for (int k = 0; k < n; k++) {
                acc += exp((double)buf[k].v - m2) / total;
                if (acc >= o->top_p) {
                    keep = k + 1;
                    break;
                }
            }
            n = keep;
            total = 0;
            for (int k = 0; k < n; k++) total += exp((double)buf[k].v - m2);
        }
        double u = rlaif_rng_uniform(rng) * total, acc = 0;
        tok = buf[n - 1].i;
        for (int k = 0; k < n; k++) {
            acc += exp((double)buf[k].v - m2);
            if (u < acc) {
                tok = buf[k].i;
                break;
            }
        }
    }
    *lp = (float)(logits[tok] - lse);
    return tok;
}

/* ---- driver ---- */

rlaif_status rlaif_model_generate(rlaif_model *m, const int32_t *prompts, const int *lens, int B,
                                  const rlaif_gen_opts *o, int32_t *out_tokens, float *out_logprobs, int *out_len) {
    return rlaif_model_generate_seeded(m, prompts, lens, B, o, NULL, out_tokens, out_logprobs, out_len);
}

rlaif_status rlaif_model_generate_seeded(rlaif_model *m, const int32_t *prompts, const int *lens, int B,
                                         const rlaif_gen_opts *o, const uint64_t *row_seeds, int32_t *out_tokens,
                                         float *out_logprobs, int *out_len) {
    const rlaif_model_config *c = &m->cfg;
    if (c->head != RLAIF_HEAD_LM) return rlaif_fail(RLAIF_EINVAL, "model.generate: a reward model cannot generate");
    if (B <= 0 || o->max_new_tokens <= 0) return rlaif_fail(RLAIF_EINVAL, "model.generate: nothing to do");
    int Tp = 0;
    size_t total = 0;
    for (int b = 0; b < B; b++) {
        if (lens[b] <= 0) return rlaif_fail(RLAIF_EINVAL, "model.generate: prompt %d is empty", b + 1);
        Tp = lens[b] > Tp ? lens[b] : Tp;
        total += (size_t)lens[b];
    }
    /* every size below is checked: B rows of S = Tp + max_new_tokens columns */
    if ((int64_t)Tp + o->max_new_tokens > (1 << 24))
        return rlaif_fail(RLAIF_EINVAL, "model.generate: prompt length %d + max_new_tokens %d is too long", Tp,
                          o->max_new_tokens);
    for (size_t k = 0; k < total; k++)
        if (prompts[k] < 0 || prompts[k] >= c->vocab_size)
            return rlaif_fail(RLAIF_EINVAL, "model.generate: token id %d is outside [0, %d)", prompts[k], c->vocab_size);
    int S = Tp + o->max_new_tokens, maxlen = 0;
    for (int b = 0; b < B; b++) maxlen = lens[b] + o->max_new_tokens > maxlen ? lens[b] + o->max_new_tokens : maxlen;
    if (maxlen > c->max_seq)
        return rlaif_fail(RLAIF_EINVAL, "model.generate: prompt + max_new_tokens = %d exceeds max_seq %d", maxlen,
                          c->max_seq);
    int C = c->d_model, H = c->n_head, KV = c->n_kv_head, hd = c->head_dim, V = c->vocab_size;
    size_t QKV = (size_t)(H + 2 * KV) * hd, FF = c->arch == RLAIF_ARCH_GPT2 ? c->d_ff : 2 * (size_t)c->d_ff;
    size_t NP = (size_t)B * Tp, cache, floats, att, t1, t2;
    gen_state g = {0};
    g.B = B, g.S = S, g.Tp = Tp;
    /* floats = 2 cache + NP (2C + QKV + QD + FF + F + 2) + B H Tp S + B V + S hd, with cache = L B KV S hd */
    int big = __builtin_mul_overflow((size_t)c->n_layer * KV * hd, (size_t)B * S, &cache) ||
              __builtin_mul_overflow(NP, 2 * (size_t)C + QKV + (size_t)H * hd + FF + c->d_ff + 2, &t1) ||
              __builtin_mul_overflow((size_t)B * H, (size_t)Tp * S, &att) ||
              cache > SIZE_MAX / 2 || __builtin_add_overflow(2 * cache, t1, &t2) ||
              __builtin_add_overflow(t2, att, &t2) ||
              __builtin_add_overflow(t2, (size_t)B * V + (size_t)S * hd, &floats) ||
              floats > ((size_t)1 << 40) || (size_t)B * H > INT_MAX || NP > INT_MAX;
    if (big)
        return rlaif_fail(RLAIF_ENOMEM, "model.generate: %d prompts of up to %d tokens + %d new tokens are too "
                          "large for this model's KV cache", B, Tp, o->max_new_tokens);
    rlaif_meter *meter;   /* the KV cache counts against an embedding scope's limit (scope.c) */
    rlaif_status st = rlaif_mem_charge(floats * sizeof(float), "model.generate: KV cache", &meter);
    if (st != RLAIF_OK) return st;
    float *mem = malloc(floats * sizeof(float));
    int32_t *imem = malloc(sizeof(int32_t) * ((size_t)B * S * 2 + NP * 3));
    cand *buf = malloc(sizeof(cand) * V);
    if (mem == NULL || imem == NULL || buf == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "model.generate: cannot allocate the KV cache (%zu MB)", floats * 4 >> 20);
        goto done;
    }
    float *p = mem;
    g.K = p, p += cache;
    g.V = p, p += cache;
    g.x = p, p += NP * C;
    g.ln = p, p += NP * C;
    g.qkv = p, p += NP * QKV;
    g.atty = p, p += NP * H * hd;
    g.fch = p, p += NP * FF;
    g.fcha = p, p += NP * c->d_ff;
    g.mean = p, p += NP;
    g.rstd = p, p += NP;
    g.scores = p, p += (size_t)B * H * Tp * S;
    g.logits = p, p += (size_t)B * V;
    g.cosb = p, p += (size_t)S * hd / 2;
    g.sinb = p;
    g.cmask = imem;
    g.cpos = imem + (size_t)B * S;
    g.ids = g.cpos + (size_t)B * S;
    g.pos = g.ids + NP;
    g.mask = g.pos + NP;
    if (c->arch == RLAIF_ARCH_LLAMA) rlaif_model_rope_tables(c, S, g.cosb, g.sinb);
    /* prefill: left-padded prompts */
    for (int b = 0, k = 0; b < B; b++) {
        int pad = Tp - lens[b];
        for (int t = 0; t < Tp; t++) {
            size_t i = (size_t)b * Tp + t;
            int real = t >= pad;
            g.ids[i] = real ? prompts[k++] : 0;
            g.mask[i] = real;
            g.pos[i] = real ? t - pad : 0;
            g.cmask[(size_t)b * S + t] = real;
            g.cpos[(size_t)b * S + t] = g.pos[i];
        }
    }
    if ((st = step(m, &g, 0, Tp)) != RLAIF_OK) goto done;
    rlaif_rng rng, *rngs = NULL;   /* one stream for the batch, or one per row */
    rlaif_rng_seed(&rng, o->seed);
    int alive = B;
    int *fin = calloc(B, sizeof(int));
    if (row_seeds && (rngs = malloc(sizeof *rngs * (size_t)B)) != NULL)
        for (int b = 0; b < B; b++) rlaif_rng_seed(&rngs[b], row_seeds[b]);
    if (fin == NULL || (row_seeds && rngs == NULL)) {
        free(fin);
        free(rngs);
        st = rlaif_fail(RLAIF_ENOMEM, "model.generate: out of memory");
        goto done;
    }
    for (int b = 0; b < B; b++) out_len[b] = 0;
    for (int t = 0; t < o->max_new_tokens && alive > 0; t++) {
        for (int b = 0; b < B; b++) {
            size_t oi = (size_t)b * o->max_new_tokens + t;
            float lp = 0;
            int tok = sample(g.logits + (size_t)b * V, V, o, rngs ? &rngs[b] : &rng, buf, &lp);
            if (fin[b]) {
                out_tokens[oi] = -1, out_logprobs[oi] = 0;
            } else {
                out_tokens[oi] = tok, out_logprobs[oi] = lp;
                out_len[b]++;
                for (int s = 0; s < o->n_stop; s++)
                    if (tok == o->stop[s]) fin[b] = 1, alive--;
            }
            /* next input column */
            int col = Tp + t;
            g.ids[b] = tok;
            g.pos[b] = lens[b] + t;
            g.mask[b] = 1;
            g.cmask[(size_t)b * S + col] = 1;
            g.cpos[(size_t)b * S + col] = g.pos[b];
        }
        if (alive == 0 || t + 1 == o->max_new_tokens) {
            for (int b = 0; b < B; b++)   /* fill the rest of finished rows */
                for (int k = t + 1; k < o->max_new_tokens; k++)
                    out_tokens[(size_t)b * o->max_new_tokens + k] = -1,
                    out_logprobs[(size_t)b * o->max_new_tokens + k] = 0;
            break;
        }
        if ((st = step(m, &g, Tp + t, 1)) != RLAIF_OK) break;
    }
    free(fin);
    free(rngs);
done:
    free(mem);
    free(imem);
    free(buf);
    rlaif_mem_uncharge(meter, floats * sizeof(float));
    return st;
}
