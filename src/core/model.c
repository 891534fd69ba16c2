/* src/core/model.c -- GPT-2 and Llama-family transformers: configuration, flat
 * buffers, forward, loss heads, backward and AdamW (see model.h).
 *
 * One code path serves both families; the differences are a handful of
 * branches: LayerNorm vs RMSNorm, learned positions vs RoPE, GELU vs SwiGLU,
 * which biases exist. Shapes are validated here, before any kernel runs, so
 * the kernels (kernels.c) never see bad input. Errors go through rlaif_fail.
 * Not here: file formats (ckpt.c), sampling (generate.c). */
#include "model.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "par.h"

/* ---- configuration ---- */

/* Every size a config or a batch implies is computed with overflow checks and
 * refused beyond these limits, with a message naming the fields: a crafted
 * config.json whose fields each pass could otherwise overflow size_t, allocate
 * a small buffer and have the initialiser write far past it. */
#define MAX_DIM (1 << 24)                 /* any one dimension, and QKV        */
#define MAX_FLOATS ((size_t)1 << 40)      /* one buffer family (4 TB)           */

/* a * b * c into *out; 0 when it overflows */
static int mul3(size_t a, size_t b, size_t c, size_t *out) {
    size_t ab;
    return !__builtin_mul_overflow(a, b, &ab) && !__builtin_mul_overflow(ab, c, out);
}

static rlaif_status param_sizes(const rlaif_model_config *c, size_t *s);

void rlaif_model_config_defaults(rlaif_model_config *cfg, rlaif_arch arch) {
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = arch;
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", arch == RLAIF_ARCH_GPT2 ? "gpt2" : "llama");
    cfg->norm_eps = arch == RLAIF_ARCH_GPT2 ? 1e-5f : 1e-6f;
    cfg->rope_theta = 10000.0f;
    cfg->rope_type = RLAIF_ROPE_DEFAULT;
    cfg->rope_factor = 1.0f;
    cfg->rope_low_freq_factor = 1.0f;
    cfg->rope_high_freq_factor = 4.0f;
    cfg->rope_orig_max = 8192;
    cfg->tie_embeddings = 1;
    cfg->qkv_bias = arch == RLAIF_ARCH_GPT2;
    cfg->o_bias = arch == RLAIF_ARCH_GPT2;
    cfg->bos_id = cfg->eos_id = cfg->pad_id = -1;
}

rlaif_status rlaif_model_config_check(rlaif_model_config *c) {
    if (c->arch != RLAIF_ARCH_GPT2 && c->arch != RLAIF_ARCH_LLAMA)
        return rlaif_fail(RLAIF_EINVAL, "model config: unknown arch %d", (int)c->arch);
#define POS(f)                                                                           \
    if (c->f <= 0 || c->f > MAX_DIM)                                                     \
        return rlaif_fail(RLAIF_EINVAL, "model config: " #f " must be positive (got %d)", c->f)
    POS(vocab_size);
    POS(n_layer);
    POS(n_head);
    POS(d_model);
    if (c->n_kv_head == 0) c->n_kv_head = c->n_head;
    POS(n_kv_head);
    if (c->head_dim == 0) {
        if (c->d_model % c->n_head != 0)
            return rlaif_fail(RLAIF_EINVAL, "model config: d_model %d is not a multiple of n_head %d", c->d_model,
                              c->n_head);
        c->head_dim = c->d_model / c->n_head;
    }
    POS(head_dim);
    if (c->d_ff == 0) c->d_ff = 4 * c->d_model;
    POS(d_ff);
    if (c->max_seq == 0) c->max_seq = 1024;
    POS(max_seq);
#undef POS
    /* derived widths the kernels hold in an int */
    int64_t qd = (int64_t)c->n_head * c->head_dim, qkv = ((int64_t)c->n_head + 2 * (int64_t)c->n_kv_head) * c->head_dim;
    if (qkv > MAX_DIM)
        return rlaif_fail(RLAIF_EINVAL, "model config: (n_head %d + 2 n_kv_head %d) x head_dim %d = %lld is too large "
                          "(at most %d)", c->n_head, c->n_kv_head, c->head_dim, (long long)qkv, MAX_DIM);
    if (c->n_head % c->n_kv_head != 0)
        return rlaif_fail(RLAIF_EINVAL, "model config: n_head %d is not a multiple of n_kv_head %d", c->n_head,
                          c->n_kv_head);
    if (c->arch == RLAIF_ARCH_GPT2) {
        if (c->n_kv_head != c->n_head)
            return rlaif_fail(RLAIF_EINVAL, "model config: gpt2 has no grouped-query attention (n_kv_head %d != n_head %d)",
                              c->n_kv_head, c->n_head);
        if (qd != c->d_model)
            return rlaif_fail(RLAIF_EINVAL, "model config: gpt2 needs head_dim * n_head == d_model");
        c->qkv_bias = c->o_bias = 1;
    } else if (c->head_dim % 2 != 0) {
        return rlaif_fail(RLAIF_EINVAL, "model config: RoPE needs an even head_dim (got %d)", c->head_dim);
    }
    if (!(c->norm_eps > 0) || !isfinite(c->norm_eps))
        return rlaif_fail(RLAIF_EINVAL, "model config: norm_eps must be positive and finite");
    if (!(c->rope_theta > 0) || !isfinite(c->rope_theta))
        return rlaif_fail(RLAIF_EINVAL, "model config: rope_theta must be positive and finite");
    if (!(c->rope_factor > 0) || !isfinite(c->rope_factor))
        return rlaif_fail(RLAIF_EINVAL, "model config: rope scaling factor must be positive and finite");
    size_t sizes[NUM_PARAMETER_TENSORS];
    return param_sizes(c, sizes);
}

/* ---- sizes and pointer structs ---- */

/* Floats per parameter tensor (0 = absent); RLAIF_ENOMEM naming the fields when
 * a size or the total overflows or exceeds MAX_FLOATS. Needs checked fields. */
static rlaif_status param_sizes(const rlaif_model_config *c, size_t *s) {
    size_t V = c->vocab_size, C = c->d_model, L = c->n_layer, P = c->max_seq, F = c->d_ff;
    size_t QD = (size_t)c->n_head * c->head_dim, QKV = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim;
    int gpt2 = c->arch == RLAIF_ARCH_GPT2;
    size_t FF = gpt2 ? F : 2 * F, big = 0, total = 0;
    /* dims are <= 2^24, so products of two cannot overflow; three can */
    s[P_WTE] = V * C;
    s[P_WPE] = gpt2 ? P * C : 0;
    s[P_LN1W] = L * C;
    s[P_LN1B] = gpt2 ? L * C : 0;
    if (!mul3(L, QKV, C, &s[P_QKVW])) big = 1;
    s[P_QKVB] = c->qkv_bias ? L * QKV : 0;
    if (!mul3(L, C, QD, &s[P_ATTPROJW])) big = 1;
    s[P_ATTPROJB] = c->o_bias ? L * C : 0;
    s[P_LN2W] = L * C;
    s[P_LN2B] = gpt2 ? L * C : 0;
    if (!mul3(L, FF, C, &s[P_FCW])) big = 1;
    s[P_FCB] = gpt2 ? L * FF : 0;
    if (!mul3(L, C, F, &s[P_FCPROJW])) big = 1;
    s[P_FCPROJB] = gpt2 ? L * C : 0;
    s[P_LNFW] = C;
    s[P_LNFB] = gpt2 ? C : 0;
    s[P_LMHEAD] = (!c->tie_embeddings && c->head == RLAIF_HEAD_LM) ? V * C : 0;
    s[P_SCORE] = c->head == RLAIF_HEAD_REWARD ? C : 0;
    for (int i = 0; i < NUM_PARAMETER_TENSORS && !big; i++)
        if (__builtin_add_overflow(total, s[i], &total) || total > MAX_FLOATS) big = 1;
    if (big)
        return rlaif_fail(RLAIF_ENOMEM, "model config: vocab_size %d, d_model %d, n_layer %d, n_head %d, n_kv_head "
                          "%d, head_dim %d, d_ff %d, max_seq %d%s make more than 2^40 parameters", c->vocab_size,
                          c->d_model, c->n_layer, c->n_head, c->n_kv_head, c->head_dim, c->d_ff, c->max_seq,
                          c->tie_embeddings ? "" : " (untied)");
    return RLAIF_OK;
}

static void point_params(rlaif_params *p, float *mem, const size_t *sizes) {
    float **ptrs[NUM_PARAMETER_TENSORS] = {
        &p->wte, &p->wpe, &p->ln1w, &p->ln1b, &p->qkvw, &p->qkvb, &p->attprojw, &p->attprojb, &p->ln2w,
        &p->ln2b, &p->fcw, &p->fcb, &p->fcprojw, &p->fcprojb, &p->lnfw, &p->lnfb, &p->lm_head, &p->score,
    };
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        *ptrs[i] = sizes[i] ? mem : NULL;
        mem += sizes[i];
    }
}

int rlaif_model_param_decays(int i) {
    return i == P_WTE || i == P_WPE || i == P_QKVW || i == P_ATTPROJW || i == P_FCW || i == P_FCPROJW ||
           i == P_LMHEAD || i == P_SCORE;
}

/* Floats per activation tensor for a (B, T) forward with NL logits rows (0 = no LM
 * head in this forward; rows: the head runs on selected rows). RLAIF_ENOMEM naming B
 * and T when a size overflows, the total exceeds MAX_FLOATS, or a count the kernels
 * keep in an int (B*T, B*H, B*T*F, the LM head's scratch) would not fit. */
static rlaif_status act_sizes(const rlaif_model *m, int B, int T, int NL, int rows, size_t *s) {
    const rlaif_model_config *c = &m->cfg;
    size_t N = (size_t)B * T, C = c->d_model, L = c->n_layer, H = c->n_head, F = c->d_ff, V = c->vocab_size;
    size_t QD = H * c->head_dim, QKV = (size_t)(c->n_head + 2 * c->n_kv_head) * c->head_dim;
    size_t FF = c->arch == RLAIF_ARCH_GPT2 ? F : 2 * F, ATT = 0, LATT = 0, total = 0;
    size_t rope = c->arch == RLAIF_ARCH_LLAMA ? (size_t)T * c->head_dim / 2 : 0;
    size_t nch = (V + LM_CHUNK - 1) / LM_CHUNK, scratch = 2 * (size_t)NL * nch;   /* NL <= N < 2^31, nch < 2^15 */
    int lm = c->head == RLAIF_HEAD_LM && NL > 0;
    int ok = N <= INT_MAX && (size_t)NL <= N && (size_t)B * H <= INT_MAX && N * F <= (size_t)INT_MAX - 4096 &&
             scratch <= INT_MAX && mul3((size_t)B * H, T, T, &ATT) && !__builtin_mul_overflow(ATT, L, &LATT);
    /* N < 2^31 and every width < 2^25: N * width fits; L * N * width is checked */
    size_t v[NUM_ACTIVATION_TENSORS] = {0};
    if (ok) {
        size_t w[NUM_ACTIVATION_TENSORS] = {
            [A_ENCODED] = N * C, [A_LN1_MEAN] = L * N, [A_LN1_RSTD] = L * N,
            [A_ATT] = LATT, [A_LN2_MEAN] = L * N, [A_LN2_RSTD] = L * N,
            [A_LNF] = N * C, [A_LNF_MEAN] = N, [A_LNF_RSTD] = N,
            [A_LSE] = NL, [A_ROPE_COS] = rope, [A_ROPE_SIN] = rope,
            [A_LM_SCRATCH] = lm ? scratch : 0,
            [A_DRES] = N * C, [A_DLN] = N * C, [A_DQKV] = N * QKV, [A_DATTY] = N * QD, [A_DATT] = ATT,
            [A_DFCH] = N * FF, [A_DFCH_ACT] = N * F, [A_LNF_ROWS] = rows ? 2 * (size_t)NL * C : 0,
        };
        memcpy(v, w, sizeof w);
        ok = mul3(L, N, C, &v[A_LN1]) && mul3(L, N, QKV, &v[A_QKV]) && mul3(L, N, QD, &v[A_ATTY]) &&
             mul3(L, N, C, &v[A_RES2]) && mul3(L, N, C, &v[A_LN2]) && mul3(L, N, FF, &v[A_FCH]) &&
             mul3(L, N, F, &v[A_FCH_ACT]) && mul3(L, N, C, &v[A_RES3]) &&
             mul3(c->head == RLAIF_HEAD_LM, NL, V, &v[A_LOGITS]);
        for (int i = 0; i < NUM_ACTIVATION_TENSORS && ok; i++)
            ok = !__builtin_add_overflow(total, v[i], &total) && total <= MAX_FLOATS;
    }
    if (!ok)
        return rlaif_fail(RLAIF_ENOMEM, "model.forward: a batch of B=%d x T=%d is too large for this model "
                          "(activations beyond 2^40 floats or the kernels' int range)", B, T);
    memcpy(s, v, sizeof v);
    return RLAIF_OK;
}

static void point_acts(rlaif_acts *a, float *mem, const size_t *sizes) {
    float **ptrs[NUM_ACTIVATION_TENSORS] = {
        &a->encoded, &a->ln1, &a->ln1_mean, &a->ln1_rstd, &a->qkv, &a->att, &a->atty, &a->res2, &a->ln2,
        &a->ln2_mean, &a->ln2_rstd, &a->fch, &a->fch_act, &a->res3, &a->lnf, &a->lnf_mean, &a->lnf_rstd,
        &a->logits, &a->lse, &a->rope_cos, &a->rope_sin, &a->lm_scratch, &a->dres, &a->dln, &a->dqkv, &a->datty, &a->datt,
        &a->dfch, &a->dfch_act, &a->lnf_rows,
    };
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) {
        *ptrs[i] = sizes[i] ? mem : NULL;
        mem += sizes[i];
    }
}

/* ---- lifetime ---- */

static float randn(rlaif_rng *rng) {
    /* Box-Muller on two uniforms in (0, 1] */
    float u1 = 1.0f - rlaif_rng_uniform(rng), u2 = rlaif_rng_uniform(rng);
    return sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
}

/* ---- memory accounting: buffers count against an embedding scope's limit (scope.c) ---- */

static rlaif_status charge(rlaif_model *m, size_t bytes, const char *what) {
    rlaif_meter *who;
    rlaif_status st = rlaif_mem_charge(bytes, what, &who);
    if (st != RLAIF_OK || who == NULL) return st;
    if (m->meter == NULL) m->meter = who;       /* keeps the reference */
    else if (who == m->meter) rlaif_meter_release(who);
    else {                                      /* another scope: not ours to count */
        rlaif_mem_uncharge(who, bytes);
        return RLAIF_OK;
    }
    m->charged += bytes;
    return RLAIF_OK;
}

static void uncharge(rlaif_model *m, size_t bytes) {
    if (m->meter == NULL || bytes > m->charged) return;
    rlaif_meter_sub(m->meter, bytes);
    m->charged -= bytes;
}

static void uncharge_all(rlaif_model *m) {
    uncharge(m, m->charged);
    rlaif_meter_release(m->meter);
    m->meter = NULL;
}

rlaif_status rlaif_model_new(rlaif_model **out, const rlaif_model_config *cfg, uint64_t seed) {
    *out = NULL;
    rlaif_init();
    rlaif_model *m = calloc(1, sizeof *m);
    if (m == NULL) return rlaif_fail(RLAIF_ENOMEM, "model.new: out of memory");
    m->cfg = *cfg;
    rlaif_status st = rlaif_model_config_check(&m->cfg);
    if (st != RLAIF_OK) {
        free(m);
        return st;
    }
    if ((st = param_sizes(&m->cfg, m->param_sizes)) != RLAIF_OK) {
        free(m);
        return st;
    }
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) m->num_params += m->param_sizes[i];
    if ((st = charge(m, m->num_params * sizeof(float), "model.new")) != RLAIF_OK) {
        free(m);
        return st;
    }
    m->params_memory = malloc(m->num_params * sizeof(float));
    if (m->params_memory == NULL) {
        size_t n = m->num_params;
        uncharge_all(m);
        free(m);
        return rlaif_fail(RLAIF_ENOMEM, "model.new: cannot allocate %zu parameters", n);
    }
    point_params(&m->params, m->params_memory, m->param_sizes);
    /* GPT-2 initialisation: N(0, 0.02); residual projections / sqrt(2L); norms 1; biases 0 */
    rlaif_rng rng;
    rlaif_rng_seed(&rng, seed);
    float *p = m->params_memory;
    float resid = 0.02f / sqrtf(2.0f * m->cfg.n_layer);
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        size_t n = m->param_sizes[i];
        int is_norm = i == P_LN1W || i == P_LN2W || i == P_LNFW;
        float std = (i == P_ATTPROJW || i == P_FCPROJW) ? resid : 0.02f;
        for (size_t k = 0; k < n; k++)
            p[k] = is_norm ? 1.0f : rlaif_model_param_decays(i) ? std * randn(&rng) : 0.0f;
        p += n;
    }
    *out = m;
    return RLAIF_OK;
}

void rlaif_model_free(rlaif_model *m) {
    if (m == NULL) return;
    free(m->params_memory);
    free(m->bf16_memory);
    free(m->grads_memory);
    free(m->m_memory);
    free(m->v_memory);
    free(m->acts_memory);
    free(m->ids);
    uncharge_all(m);
    free(m);
}

rlaif_status rlaif_model_clone(rlaif_model **out, const rlaif_model *m, rlaif_head head) {
    *out = NULL;
    rlaif_status fst = rlaif_model_need_f32(m, "model.clone");
    if (fst != RLAIF_OK) return fst;
    rlaif_model_config cfg = m->cfg;
    cfg.head = head;
    rlaif_model *c = calloc(1, sizeof *c);
    if (c == NULL) return rlaif_fail(RLAIF_ENOMEM, "model.clone: out of memory");
    c->cfg = cfg;
    param_sizes(&c->cfg, c->param_sizes);
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) c->num_params += c->param_sizes[i];
    c->params_memory = malloc(c->num_params * sizeof(float));
    if (c->params_memory == NULL) {
        free(c);
        return rlaif_fail(RLAIF_ENOMEM, "model.clone: cannot allocate %zu parameters", m->num_params);
    }
    point_params(&c->params, c->params_memory, c->param_sizes);
    const float *src = m->params_memory;
    float *dst = c->params_memory;
    for (int i = 0; i < NUM_PARAMETER_TENSORS; i++) {
        size_t n = c->param_sizes[i];
        if (n == m->param_sizes[i]) memcpy(dst, src, n * sizeof(float));
        else memset(dst, 0, n * sizeof(float));   /* a fresh value head */
        src += m->param_sizes[i];
        dst += n;
    }
    *out = c;
    return RLAIF_OK;
}

/* ---- frozen bf16 weights ---- */

/* the tensors a bf16 model keeps in bf16: every matrix a linear layer reads */
static int is_matrix(int t) {
    return t == P_WTE || t == P_QKVW || t == P_ATTPROJW || t == P_FCW || t == P_FCPROJW || t == P_LMHEAD;
}

static const float *param_f32(const rlaif_params *p, int t) {
    switch (t) {
    case P_WTE: return p->wte;
    case P_QKVW: return p->qkvw;
    case P_ATTPROJW: return p->attprojw;
    case P_FCW: return p->fcw;
    case P_FCPROJW: return p->fcprojw;
    case P_LMHEAD: return p->lm_head;
    default: return NULL;
    }
}

int rlaif_model_is_bf16(const rlaif_model *m) { return m->bf16_memory != NULL; }

rlaif_status rlaif_model_need_f32(const rlaif_model *m, const char *op) {
    if (m->bf16_memory == NULL) return RLAIF_OK;
    return rlaif_fail(RLAIF_EINVAL, "%s: the model holds bf16 weights (frozen: forward and generate only); "
                      "load it with dtype float32 to train, save or copy it", op);
}

size_t rlaif_model_param_bytes(const rlaif_model *m) {
    size_t f = 0, h = 0;
    for (int t = 0; t < NUM_PARAMETER_TENSORS; t++) {
        if (m->w16[t]) h += m->param_sizes[t];
        else f += m->param_sizes[t];
    }
    return f * sizeof(float) + h * sizeof(uint16_t);
}

rlaif_status rlaif_model_to_bf16(rlaif_model *m) {
    if (m->bf16_memory) return RLAIF_OK;
    size_t nh = 0;   /* <= num_params, which was allocated: no overflow */
    for (int t = 0; t < NUM_PARAMETER_TENSORS; t++)
        if (is_matrix(t)) nh += m->param_sizes[t];
    size_t nf = m->num_params - nh, bytes = nh * sizeof(uint16_t) + nf * sizeof(float);
    rlaif_status st = charge(m, bytes, "model.to_bf16");
    if (st != RLAIF_OK) return st;
    uint16_t *h = malloc(nh ? nh * sizeof(uint16_t) : 1);
    float *f = malloc(nf ? nf * sizeof(float) : 1);
    if (h == NULL || f == NULL) {
        free(h);
        free(f);
        uncharge(m, bytes);
        return rlaif_fail(RLAIF_ENOMEM, "model.to_bf16: cannot allocate %zu bf16 weights", nh);
    }
    /* convert the matrices, copy the rest, then point the float32 tensors at their new home */
    float **ptrs[NUM_PARAMETER_TENSORS] = {
        &m->params.wte, &m->params.wpe, &m->params.ln1w, &m->params.ln1b, &m->params.qkvw, &m->params.qkvb,
        &m->params.attprojw, &m->params.attprojb, &m->params.ln2w, &m->params.ln2b, &m->params.fcw,
        &m->params.fcb, &m->params.fcprojw, &m->params.fcprojb, &m->params.lnfw, &m->params.lnfb,
        &m->params.lm_head, &m->params.score,
    };
    const float *src = m->params_memory;
    uint16_t *hp = h;
    float *fp = f;
    for (int t = 0; t < NUM_PARAMETER_TENSORS; t++) {
        size_t n = m->param_sizes[t];
        if (n == 0) {
            *ptrs[t] = NULL;
        } else if (is_matrix(t)) {
            f32_to_bf16(hp, src, n);
            m->w16[t] = hp;
            *ptrs[t] = NULL;
            hp += n;
        } else {
            memcpy(fp, src, n * sizeof(float));
            *ptrs[t] = fp;
            fp += n;
        }
        src += n;
    }
    size_t old = m->num_params * sizeof(float) * (1 + (m->grads_memory != NULL) + (m->m_memory != NULL) +
                                                  (m->v_memory != NULL));
    free(m->params_memory);
    free(m->grads_memory);
    free(m->m_memory);
    free(m->v_memory);
    m->params_memory = f;
    m->grads_memory = m->m_memory = m->v_memory = NULL;
    memset(&m->grads, 0, sizeof m->grads);
    m->bf16_memory = h;
    uncharge(m, old);
    return RLAIF_OK;
}

void rlaif_model_linear(const rlaif_model *m, int t, int l, float *out, const float *inp, const float *bias, int N,
                        int C, int OC, int accumulate) {
    size_t off = (size_t)l * OC * C;
    if (m->w16[t]) matmul_forward_bf16(out, inp, m->w16[t] + off, bias, N, C, OC, accumulate);
    else matmul_forward(out, inp, param_f32(&m->params, t) + off, bias, N, C, OC, accumulate);
}

void rlaif_model_embed(const rlaif_model *m, float *out, const int32_t *ids, const int32_t *pos, int N) {
    const float *wpe = m->cfg.arch == RLAIF_ARCH_GPT2 ? m->params.wpe : NULL;
    if (m->w16[P_WTE]) encoder_forward_bf16(out, ids, pos, m->w16[P_WTE], wpe, N, m->cfg.d_model);
    else encoder_forward(out, ids, pos, m->params.wte, wpe, N, m->cfg.d_model);
}

void rlaif_model_free_acts(rlaif_model *m) {
    free(m->acts_memory);
    free(m->ids);
    m->acts_memory = NULL;
    m->ids = m->pos = m->mask = m->last = m->lrows = m->ltargets = NULL;
    m->NL = m->rows_selected = 0;
    m->act_capacity = m->int_capacity = 0;
    memset(&m->acts, 0, sizeof m->acts);
    m->B = m->T = 0;
    m->have_logits = m->logits_are_grads = 0;
}

static rlaif_status ensure_grads(rlaif_model *m) {
    if (m->grads_memory) return RLAIF_OK;
    rlaif_status fst = rlaif_model_need_f32(m, "model: gradients");
    if (fst != RLAIF_OK) return fst;
    rlaif_status st = charge(m, m->num_params * sizeof(float), "model: gradients");
    if (st != RLAIF_OK) return st;
    m->grads_memory = calloc(m->num_params, sizeof(float));
    if (m->grads_memory == NULL) {
        uncharge(m, m->num_params * sizeof(float));
        return rlaif_fail(RLAIF_ENOMEM, "model: cannot allocate gradients (%zu floats)", m->num_params);
    }
    point_params(&m->grads, m->grads_memory, m->param_sizes);
    return RLAIF_OK;
}

static rlaif_status ensure_acts(rlaif_model *m, int B, int T, int NL, int rows) {
    size_t sizes[NUM_ACTIVATION_TENSORS], total = 0;
    rlaif_status st = act_sizes(m, B, T, NL, rows, sizes);
    if (st != RLAIF_OK) return st;
    for (int i = 0; i < NUM_ACTIVATION_TENSORS; i++) total += sizes[i];
    if (total > m->act_capacity) {
        free(m->acts_memory);
        m->acts_memory = NULL;
        uncharge(m, m->act_capacity * sizeof(float));
        m->act_capacity = 0;
        st = charge(m, total * sizeof(float), "model.forward: activations");
        if (st != RLAIF_OK) return st;
        m->acts_memory = malloc(total * sizeof(float));
        if (m->acts_memory == NULL) uncharge(m, total * sizeof(float));
        if (m->acts_memory == NULL)
            return rlaif_fail(RLAIF_ENOMEM, "model.forward: cannot allocate activations for B=%d T=%d (%zu MB)", B,
                              T, total * 4 >> 20);
        m->act_capacity = total;
    }
    size_t ints = (size_t)B * T * 3 + B + 2 * (size_t)NL;
    if (ints > m->int_capacity) {
        free(m->ids);
        m->ids = NULL;
        uncharge(m, m->int_capacity * sizeof(int32_t));
        m->int_capacity = 0;
        st = charge(m, ints * sizeof(int32_t), "model.forward");
        if (st != RLAIF_OK) return st;
        m->ids = malloc(ints * sizeof(int32_t));
        if (m->ids == NULL) {
            uncharge(m, ints * sizeof(int32_t));
            return rlaif_fail(RLAIF_ENOMEM, "model.forward: out of memory");
        }
        m->int_capacity = ints;
    }
    m->pos = m->ids + (size_t)B * T;
    m->mask = m->pos + (size_t)B * T;
    m->last = m->mask + (size_t)B * T;
    m->lrows = m->last + B;
    m->ltargets = m->lrows + NL;
    memcpy(m->act_sizes, sizes, sizeof sizes);
    point_acts(&m->acts, m->acts_memory, sizes);
    return RLAIF_OK;
}

/* ---- RoPE tables ---- */

void rlaif_model_rope_tables(const rlaif_model_config *c, int T, float *cosb, float *sinb) {
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        float inv = (float)(1.0 / pow((double)c->rope_theta, (double)(2 * i) / c->head_dim));
        if (c->rope_type == RLAIF_ROPE_LLAMA3) {
            double wavelen = 2 * M_PI / inv, old = c->rope_orig_max;
            double lo = old / c->rope_low_freq_factor, hi = old / c->rope_high_freq_factor;
            double f = inv;
            if (wavelen > lo) f = inv / c->rope_factor;
            if (!(wavelen < hi) && !(wavelen > lo)) {
                double smooth = (old / wavelen - c->rope_low_freq_factor) /
                                (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (1 - smooth) * f / c->rope_factor + smooth * f;
            }
            inv = (float)f;
        }
        for (int t = 0; t < T; t++) {
            float pos = (float)t;
            if (c->rope_type == RLAIF_ROPE_LINEAR) pos = pos / c->rope_factor;
            float ang = pos * inv;  /* float32 product, as PyTorch computes it */
            cosb[(size_t)t * half + i] = (float)cos((double)ang);
            sinb[(size_t)t * half + i] = (float)sin((double)ang);
        }
    }
}

/* ---- forward ---- */

#define LAYER(ptr, l, n) ((ptr) + (size_t)(l) * (n))

static void norm_forward(const rlaif_model *m, float *out, float *mean, float *rstd, const float *inp,
                         const float *w, const float *b, int N) {
    int C = m->cfg.d_model;
    if (m->cfg.arch == RLAIF_ARCH_GPT2) layernorm_forward(out, mean, rstd, inp, w, b, N, C, m->cfg.norm_eps);
    else rmsnorm_forward(out, rstd, inp, w, N, C, m->cfg.norm_eps);
}

static void norm_backward(const rlaif_model *m, float *dinp, float *dw, float *db, const float *dout,
                          const float *inp, const float *w, const float *mean, const float *rstd, int N) {
    int C = m->cfg.d_model;
    if (m->cfg.arch == RLAIF_ARCH_GPT2) layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
    else rmsnorm_backward(dinp, dw, dout, inp, w, rstd, N, C);
}

static rlaif_status forward_impl(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                 int want_logits, const int32_t *rows, int n) {
    const rlaif_model_config *c = &m->cfg;
    if (B <= 0 || T <= 0) return rlaif_fail(RLAIF_EINVAL, "model.forward: empty batch (B=%d, T=%d)", B, T);
    if ((int64_t)B * T > INT32_MAX / 4)
        return rlaif_fail(RLAIF_ENOMEM, "model.forward: batch B=%d x T=%d is too large", B, T);
    if (T > c->max_seq)   /* every family: positions (GPT-2) or trained context (RoPE) */
        return rlaif_fail(RLAIF_EINVAL, "model.forward: sequence length %d exceeds max_seq %d", T, c->max_seq);
    if (want_logits && c->head != RLAIF_HEAD_LM)
        return rlaif_fail(RLAIF_EINVAL, "model.forward: a reward model has no LM head (no logits)");
    int NL = want_logits ? (rows ? n : B * T) : 0;   /* B * T < 2^29 from here on */
    if (rows) {
        if (n < 0 || n > B * T)
            return rlaif_fail(RLAIF_EINVAL, "model.forward: %d logits rows for a batch of %d positions", n, B * T);
        for (int j = 0; j < n; j++)
            if (rows[j] < 0 || rows[j] >= B * T)
                return rlaif_fail(RLAIF_EINVAL, "model.forward: logits row %d is outside [0, %d)", rows[j], B * T);
    }
    size_t sizes[NUM_ACTIVATION_TENSORS];
    rlaif_status st = act_sizes(m, B, T, NL, rows != NULL, sizes);
    if (st != RLAIF_OK) return st;
    for (int i = 0; i < B * T; i++)
        if (ids[i] < 0 || ids[i] >= c->vocab_size)
            return rlaif_fail(RLAIF_EINVAL, "model.forward: token id %d at row %d, position %d is outside [0, %d)",
                              ids[i], i / T + 1, i % T + 1, c->vocab_size);
    st = ensure_acts(m, B, T, NL, rows != NULL);
    if (st != RLAIF_OK) return st;
    m->B = B;
    m->T = T;
    m->NL = NL;
    m->rows_selected = rows != NULL;
    for (int j = 0; j < NL; j++) m->lrows[j] = rows ? rows[j] : j;
    m->have_logits = 0;
    m->logits_are_grads = 0;
    m->logit_temp = 1.0f;
    int N = B * T, C = c->d_model, L = c->n_layer, H = c->n_head, KV = c->n_kv_head, hd = c->head_dim;
    int QD = H * hd, QKV = (H + 2 * KV) * hd, F = c->d_ff, gpt2 = c->arch == RLAIF_ARCH_GPT2;
    int FF = gpt2 ? F : 2 * F;
    memcpy(m->ids, ids, sizeof(int32_t) * N);
    for (int b = 0; b < B; b++) {
        int p = 0;
        m->last[b] = -1;
        for (int t = 0; t < T; t++) {
            int i = b * T + t, real = mask == NULL || mask[i] != 0;
            m->mask[i] = real;
            m->pos[i] = real ? p++ : 0;
            if (real) m->last[b] = t;
        }
    }
    rlaif_params *w = &m->params;
    rlaif_acts *a = &m->acts;
    rlaif_model_embed(m, a->encoded, m->ids, m->pos, N);
    if (!gpt2) rlaif_model_rope_tables(c, T, a->rope_cos, a->rope_sin);
    for (int l = 0; l < L; l++) {
        if (rlaif_cancelled()) return rlaif_fail(RLAIF_EINTR, "model.forward: interrupted");
        const float *res = l == 0 ? a->encoded : LAYER(a->res3, l - 1, (size_t)N * C);
        float *ln1 = LAYER(a->ln1, l, (size_t)N * C), *qkv = LAYER(a->qkv, l, (size_t)N * QKV);
        float *atty = LAYER(a->atty, l, (size_t)N * QD), *res2 = LAYER(a->res2, l, (size_t)N * C);
        float *ln2 = LAYER(a->ln2, l, (size_t)N * C), *fch = LAYER(a->fch, l, (size_t)N * FF);
        float *fcha = LAYER(a->fch_act, l, (size_t)N * F), *res3 = LAYER(a->res3, l, (size_t)N * C);
        norm_forward(m, ln1, LAYER(a->ln1_mean, l, N), LAYER(a->ln1_rstd, l, N), res, LAYER(w->ln1w, l, C),
                     gpt2 ? LAYER(w->ln1b, l, C) : NULL, N);
        rlaif_model_linear(m, P_QKVW, l, qkv, ln1, w->qkvb ? LAYER(w->qkvb, l, QKV) : NULL, N, C, QKV, 0);
        if (!gpt2) rope_forward(qkv, a->rope_cos, a->rope_sin, m->pos, B, T, H, KV, hd);
        attention_forward(atty, LAYER(a->att, l, (size_t)B * H * T * T), qkv, m->mask, B, T, H, KV, hd);
        memcpy(res2, res, sizeof(float) * N * C);
        rlaif_model_linear(m, P_ATTPROJW, l, res2, atty, w->attprojb ? LAYER(w->attprojb, l, C) : NULL, N, QD, C, 1);
        norm_forward(m, ln2, LAYER(a->ln2_mean, l, N), LAYER(a->ln2_rstd, l, N), res2, LAYER(w->ln2w, l, C),
                     gpt2 ? LAYER(w->ln2b, l, C) : NULL, N);
        rlaif_model_linear(m, P_FCW, l, fch, ln2, gpt2 ? LAYER(w->fcb, l, FF) : NULL, N, C, FF, 0);
        if (gpt2) gelu_forward(fcha, fch, N * F);
        else swiglu_forward(fcha, fch, N, F);
        memcpy(res3, res2, sizeof(float) * N * C);
        rlaif_model_linear(m, P_FCPROJW, l, res3, fcha, gpt2 ? LAYER(w->fcprojb, l, C) : NULL, N, F, C, 1);
    }
    norm_forward(m, a->lnf, a->lnf_mean, a->lnf_rstd, LAYER(a->res3, L - 1, (size_t)N * C), w->lnfw, w->lnfb, N);
    if (want_logits) {
        const float *head = w->lm_head ? w->lm_head : w->wte, *inp = a->lnf;
        if (rows) {   /* gather the selected rows */
            for (int j = 0; j < NL; j++)
                memcpy(a->lnf_rows + (size_t)j * C, a->lnf + (size_t)rows[j] * C, sizeof(float) * C);
            inp = a->lnf_rows;
        }
        const uint16_t *head16 = m->w16[P_LMHEAD] ? m->w16[P_LMHEAD] : m->w16[P_WTE];
        if (head16) lmhead_forward_bf16(a->logits, a->lse, a->lm_scratch, inp, head16, NL, C, c->vocab_size);
        else lmhead_forward(a->logits, a->lse, a->lm_scratch, inp, head, NL, C, c->vocab_size);
        m->have_logits = 1;
    }
    return RLAIF_OK;
}

rlaif_status rlaif_model_forward(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                 int want_logits) {
    return forward_impl(m, ids, mask, B, T, want_logits, NULL, 0);
}

rlaif_status rlaif_model_forward_rows(rlaif_model *m, const int32_t *ids, const int32_t *mask, int B, int T,
                                      const int32_t *rows, int n) {
    if (n <= 0) return rlaif_fail(RLAIF_EINVAL, "model.forward: no logits rows selected");
    return forward_impl(m, ids, mask, B, T, 1, rows, n);
}

/* ---- backward through the trunk, from acts.dln = dL/dlnf ---- */

static rlaif_status backward_trunk(rlaif_model *m) {
    const rlaif_model_config *c = &m->cfg;
    int B = m->B, T = m->T, N = B * T, C = c->d_model, L = c->n_layer, H = c->n_head, KV = c->n_kv_head;
    int hd = c->head_dim, QD = H * hd, QKV = (H + 2 * KV) * hd, F = c->d_ff, gpt2 = c->arch == RLAIF_ARCH_GPT2;
    int FF = gpt2 ? F : 2 * F;
    rlaif_params *w = &m->params, *g = &m->grads;
    rlaif_acts *a = &m->acts;
    memset(a->dres, 0, sizeof(float) * N * C);
    norm_backward(m, a->dres, g->lnfw, g->lnfb, a->dln, LAYER(a->res3, L - 1, (size_t)N * C), w->lnfw, a->lnf_mean,
                  a->lnf_rstd, N);
    for (int l = L - 1; l >= 0; l--) {
        if (rlaif_cancelled()) return rlaif_fail(RLAIF_EINTR, "model.backward: interrupted");
        const float *res = l == 0 ? a->encoded : LAYER(a->res3, l - 1, (size_t)N * C);
        float *ln1 = LAYER(a->ln1, l, (size_t)N * C), *qkv = LAYER(a->qkv, l, (size_t)N * QKV);
        float *atty = LAYER(a->atty, l, (size_t)N * QD), *res2 = LAYER(a->res2, l, (size_t)N * C);
        float *ln2 = LAYER(a->ln2, l, (size_t)N * C), *fch = LAYER(a->fch, l, (size_t)N * FF);
        float *fcha = LAYER(a->fch_act, l, (size_t)N * F);
        /* MLP: res3 = res2 + fcproj(act(fc(ln2(res2)))) ; a->dres holds d res3 */
        memset(a->dfch_act, 0, sizeof(float) * N * F);
        matmul_backward(a->dfch_act, LAYER(g->fcprojw, l, (size_t)C * F), gpt2 ? LAYER(g->fcprojb, l, C) : NULL,
                        a->dres, fcha, LAYER(w->fcprojw, l, (size_t)C * F), N, F, C);
        memset(a->dfch, 0, sizeof(float) * N * FF);
        if (gpt2) gelu_backward(a->dfch, fch, a->dfch_act, N * F);
        else swiglu_backward(a->dfch, fch, a->dfch_act, N, F);
        memset(a->dln, 0, sizeof(float) * N * C);
        matmul_backward(a->dln, LAYER(g->fcw, l, (size_t)FF * C), gpt2 ? LAYER(g->fcb, l, FF) : NULL, a->dfch, ln2,
                        LAYER(w->fcw, l, (size_t)FF * C), N, C, FF);
        norm_backward(m, a->dres, LAYER(g->ln2w, l, C), gpt2 ? LAYER(g->ln2b, l, C) : NULL, a->dln, res2,
                      LAYER(w->ln2w, l, C), LAYER(a->ln2_mean, l, N), LAYER(a->ln2_rstd, l, N), N);
        /* attention: res2 = res + attproj(attn(qkv(ln1(res)))) ; a->dres holds d res2 */
        memset(a->datty, 0, sizeof(float) * N * QD);
        matmul_backward(a->datty, LAYER(g->attprojw, l, (size_t)C * QD), g->attprojb ? LAYER(g->attprojb, l, C) : NULL,
                        a->dres, atty, LAYER(w->attprojw, l, (size_t)C * QD), N, QD, C);
        memset(a->dqkv, 0, sizeof(float) * N * QKV);
        attention_backward(a->dqkv, a->datt, a->datty, qkv, LAYER(a->att, l, (size_t)B * H * T * T), B, T, H, KV,
                           hd);
        if (!gpt2) rope_backward(a->dqkv, a->rope_cos, a->rope_sin, m->pos, B, T, H, KV, hd);
        memset(a->dln, 0, sizeof(float) * N * C);
        matmul_backward(a->dln, LAYER(g->qkvw, l, (size_t)QKV * C), g->qkvb ? LAYER(g->qkvb, l, QKV) : NULL, a->dqkv,
                        ln1, LAYER(w->qkvw, l, (size_t)QKV * C), N, C, QKV);
        norm_backward(m, a->dres, LAYER(g->ln1w, l, C), gpt2 ? LAYER(g->ln1b, l, C) : NULL, a->dln, res,
                      LAYER(w->ln1w, l, C), LAYER(a->ln1_mean, l, N), LAYER(a->ln1_rstd, l, N), N);
    }
    encoder_backward(g->wte, gpt2 ? g->wpe : NULL, a->dres, m->ids, m->pos, N, C);
    return RLAIF_OK;
}

/* ---- heads ---- */

static rlaif_status need_logits(const rlaif_model *m, const char *op) {
    if (!m->have_logits) return rlaif_fail(RLAIF_EINVAL, "%s: needs a forward with logits first", op);
    if (m->logits_are_grads)
        return rlaif_fail(RLAIF_EINVAL, "%s: the logits were consumed by a backward; run forward again", op);
    return RLAIF_OK;
}

static rlaif_status check_targets(const rlaif_model *m, const int32_t *targets, const char *op) {
    for (int i = 0; i < m->B * m->T; i++)
        if (targets[i] >= m->cfg.vocab_size)
            return rlaif_fail(RLAIF_EINVAL, "%s: target %d at row %d, position %d is outside [0, %d)", op, targets[i],
                              i / m->T + 1, i % m->T + 1, m->cfg.vocab_size);
    return RLAIF_OK;
}

rlaif_status rlaif_model_lm_loss(rlaif_model *m, const int32_t *targets, float *loss, float *losses, int *count) {
    rlaif_status st = need_logits(m, "model.lm_loss");
    if (st == RLAIF_OK) st = check_targets(m, targets, "model.lm_loss");
    if (st != RLAIF_OK) return st;
    int N = m->B * m->T, V = m->cfg.vocab_size, n = 0;
    double sum = 0;
    if (losses) memset(losses, 0, sizeof(float) * N);
    for (int j = 0; j < m->NL; j++) {
        int i = m->lrows[j];
        if (targets[i] < 0) continue;
        float li = m->acts.lse[j] - m->acts.logits[(size_t)j * V + targets[i]];
        if (losses) losses[i] = li;
        sum += li;
        n++;
    }
    *loss = n ? (float)(sum / n) : NAN;
    if (count) *count = n;
    return RLAIF_OK;
}

rlaif_status rlaif_model_token_logprobs(rlaif_model *m, const int32_t *targets, float *out) {
    rlaif_status st = need_logits(m, "model.logprobs");
    if (st == RLAIF_OK) st = check_targets(m, targets, "model.logprobs");
    if (st != RLAIF_OK) return st;
    int N = m->B * m->T, V = m->cfg.vocab_size;
    memset(out, 0, sizeof(float) * N);
    for (int j = 0; j < m->NL; j++) {
        int i = m->lrows[j];
        if (targets[i] >= 0) out[i] = m->acts.logits[(size_t)j * V + targets[i]] - m->acts.lse[j];
    }
    return RLAIF_OK;
}

rlaif_status rlaif_model_backward_ce(rlaif_model *m, const int32_t *targets, const float *weights, float scale) {
    rlaif_status st = rlaif_model_need_f32(m, "model.backward");
    if (st == RLAIF_OK) st = need_logits(m, "model.backward");
    if (st == RLAIF_OK) st = check_targets(m, targets, "model.backward");
    if (st == RLAIF_OK) st = ensure_grads(m);
    if (st != RLAIF_OK) return st;
    int N = m->B * m->T, C = m->cfg.d_model, V = m->cfg.vocab_size;
    rlaif_acts *a = &m->acts;
    /* per-row weights and targets of the logits rows: dres is an (NL) scratch;
     * tempered logits z / tau pass 1/tau on to z */
    int NL = m->NL;
    float *w = a->dres, inv_tau = 1.0f / m->logit_temp;
    for (int j = 0; j < NL; j++) {
        int i = m->lrows[j];
        w[j] = (weights ? weights[i] : scale) * inv_tau;
        m->ltargets[j] = targets[i];
    }
    m->logits_are_grads = 1;
    memset(a->dln, 0, sizeof(float) * N * C);
    int tied = m->params.lm_head == NULL;
    float *dw = tied ? m->grads.wte : m->grads.lm_head;
    const float *W = tied ? m->params.wte : m->params.lm_head;
    if (m->rows_selected) {   /* through the gathered rows, then scattered back */
        float *x = a->lnf_rows, *dx = a->lnf_rows + (size_t)NL * C;
        memset(dx, 0, sizeof(float) * NL * C);
        lmhead_backward(dx, dw, a->logits, a->lse, m->ltargets, w, x, W, NL, C, V);
        for (int j = 0; j < NL; j++) {
            float *d = a->dln + (size_t)m->lrows[j] * C;
            const float *g = dx + (size_t)j * C;
            for (int k = 0; k < C; k++) d[k] += g[k];
        }
    } else {
        lmhead_backward(a->dln, dw, a->logits, a->lse, m->ltargets, w, a->lnf, W, NL, C, V);
    }
    return backward_trunk(m);
}

typedef struct { rlaif_model *m; float tau; } temper_args;

static void temper_rows(void *p, int lo, int hi) {
    const temper_args *a = p;
    int V = a->m->cfg.vocab_size;
    float tau = a->tau;
    for (int i = lo; i < hi; i++) {
        float *x = a->m->acts.logits + (size_t)i * V;
        for (int v = 0; v < V; v++) x[v] /= tau;   /* the same float32 division as logits / tau */
        a->m->acts.lse[i] = logsumexp_row(x, V);
    }
}

rlaif_status rlaif_model_temper(rlaif_model *m, float tau) {
    rlaif_status st = need_logits(m, "model.temper");
    if (st != RLAIF_OK) return st;
    if (!(tau > 0) || !isfinite(tau))
        return rlaif_fail(RLAIF_EINVAL, "model.temper: temperature must be > 0 (got %g)", (double)tau);
    if (m->logit_temp != 1.0f)
        return rlaif_fail(RLAIF_EINVAL, "model.temper: the logits are already tempered; run forward again");
    if (tau == 1.0f) return RLAIF_OK;
    int NL = m->NL, V = m->cfg.vocab_size;
    temper_args a = {m, tau};
    rlaif_par_for(NL, 1, NL * (size_t)V >= (1 << 18) ? rlaif_get_threads() : 1, temper_rows, &a);
    m->logit_temp = tau;
    return RLAIF_OK;
}

typedef struct { const rlaif_model *m; const int32_t *targets; float *out; } entropy_args;

static void entropy_rows(void *p, int lo, int hi) {
    const entropy_args *a = p;
    const rlaif_model *m = a->m;
    int V = m->cfg.vocab_size;
    const float *lg = m->acts.logits, *lse = m->acts.lse;
    for (int j = lo; j < hi; j++) {
        int i = m->lrows[j];
        if (a->targets[i] < 0) continue;
        const float *x = lg + (size_t)j * V;
        double s = 0;   /* H = lse - sum p z */
        for (int v = 0; v < V; v++) s += exp((double)x[v] - lse[j]) * x[v];
        a->out[i] = (float)(lse[j] - s);
    }
}

rlaif_status rlaif_model_entropy(rlaif_model *m, const int32_t *targets, float *out) {
    rlaif_status st = need_logits(m, "model.entropy");
    if (st != RLAIF_OK) return st;
    int N = m->B * m->T, NL = m->NL, V = m->cfg.vocab_size;
    memset(out, 0, sizeof(float) * N);
    entropy_args a = {m, targets, out};
    rlaif_par_for(NL, 1, NL * (size_t)V >= (1 << 18) ? rlaif_get_threads() : 1, entropy_rows, &a);
    return RLAIF_OK;
}

rlaif_status rlaif_model_reward(rlaif_model *m, float *out) {
    if (m->cfg.head != RLAIF_HEAD_REWARD)
        return rlaif_fail(RLAIF_EINVAL, "model.reward: the model has no reward head (load or create it with head = \"reward\")");
    if (m->B == 0) return rlaif_fail(RLAIF_EINVAL, "model.reward: needs a forward first");
    int C = m->cfg.d_model;
    for (int b = 0; b < m->B; b++) {
        if (m->last[b] < 0) return rlaif_fail(RLAIF_EINVAL, "model.reward: row %d has no real tokens", b + 1);
        const float *x = m->acts.lnf + ((size_t)b * m->T + m->last[b]) * C;
        float s = 0;
        for (int i = 0; i < C; i++) s += x[i] * m->params.score[i];
        out[b] = s;
    }
    return RLAIF_OK;
}

rlaif_status rlaif_model_backward_reward(rlaif_model *m, const float *dr) {
    if (rlaif_model_need_f32(m, "model.backward_reward") != RLAIF_OK) return RLAIF_EINVAL;
    if (m->cfg.head != RLAIF_HEAD_REWARD)
        return rlaif_fail(RLAIF_EINVAL, "model.backward_reward: the model has no reward head");
    if (m->B == 0) return rlaif_fail(RLAIF_EINVAL, "model.backward_reward: needs a forward first");
    for (int b = 0; b < m->B; b++)
        if (m->last[b] < 0) return rlaif_fail(RLAIF_EINVAL, "model.backward_reward: row %d has no real tokens", b + 1);
    rlaif_status st = ensure_grads(m);
    if (st != RLAIF_OK) return st;
    int C = m->cfg.d_model, N = m->B * m->T;
    memset(m->acts.dln, 0, sizeof(float) * N * C);
    for (int b = 0; b < m->B; b++) {
        size_t row = ((size_t)b * m->T + m->last[b]) * C;
        const float *x = m->acts.lnf + row;
        float *d = m->acts.dln + row;
        for (int i = 0; i < C; i++) {
            d[i] = dr[b] * m->params.score[i];
            m->grads.score[i] += dr[b] * x[i];
        }
    }
    return backward_trunk(m);
}

rlaif_status rlaif_model_values(rlaif_model *m, float *out) {
    if (m->cfg.head != RLAIF_HEAD_REWARD)
        return rlaif_fail(RLAIF_EINVAL, "model.values: the model has no value head (load or create it with head = \"reward\")");
    if (m->B == 0) return rlaif_fail(RLAIF_EINVAL, "model.values: needs a forward first");
    int C = m->cfg.d_model, N = m->B * m->T;
    for (int i = 0; i < N; i++) {
        const float *x = m->acts.lnf + (size_t)i * C;
        float s = 0;
        for (int k = 0; k < C; k++) s += x[k] * m->params.score[k];
        out[i] = m->mask[i] ? s : 0.0f;
    }
    return RLAIF_OK;
}

rlaif_status rlaif_model_backward_values(rlaif_model *m, const float *dv) {
    if (rlaif_model_need_f32(m, "model.backward_values") != RLAIF_OK) return RLAIF_EINVAL;
    if (m->cfg.head != RLAIF_HEAD_REWARD)
        return rlaif_fail(RLAIF_EINVAL, "model.backward_values: the model has no value head");
    if (m->B == 0) return rlaif_fail(RLAIF_EINVAL, "model.backward_values: needs a forward first");
    rlaif_status st = ensure_grads(m);
    if (st != RLAIF_OK) return st;
    int C = m->cfg.d_model, N = m->B * m->T;
    const float *sc = m->params.score;
    float *gs = m->grads.score;
    for (int i = 0; i < N; i++) {
        float g = m->mask[i] ? dv[i] : 0.0f, *d = m->acts.dln + (size_t)i * C;
        const float *x = m->acts.lnf + (size_t)i * C;
        for (int k = 0; k < C; k++) d[k] = g * sc[k];
        if (g != 0.0f)
            for (int k = 0; k < C; k++) gs[k] += g * x[k];
    }
    return backward_trunk(m);
}

/* ---- gradients and AdamW ---- */

/* Passes over the flat buffers in FLAT_CHUNKS fixed ranges (multiples of 16
 * floats), claimed by the pool's threads; per-range partial sums are added in
 * range order, so a norm is the same for any thread count. AdamW walks the
 * parameter tensors that intersect its range (decay differs per tensor). */
#define FLAT_CHUNKS 64
enum { FLAT_ZERO, FLAT_SUMSQ, FLAT_SCALE, FLAT_ADAMW };
typedef struct {
    rlaif_model *m;
    int op;
    float scale;
    const rlaif_adamw *o;
    float step_size, bc2_sqrt;
    double partial[FLAT_CHUNKS];
} flat_args;

static int flat_chunks(size_t n) { return n < ((size_t)1 << 16) ? 1 : FLAT_CHUNKS; }

static void flat_range(void *p, int klo, int khi) {
    flat_args *a = p;
    rlaif_model *m = a->m;
    size_t n = m->num_params;
    int nk = flat_chunks(n);
    size_t per = ((n + 15) / 16 + nk - 1) / nk * 16;
    for (int k = klo; k < khi; k++) {
        size_t lo = k * per < n ? k * per : n, hi = lo + per < n ? lo + per : n;
        float *g = m->grads_memory;
        if (a->op == FLAT_ZERO) {
            memset(g + lo, 0, (hi - lo) * sizeof(float));
        } else if (a->op == FLAT_SUMSQ) {
            double s = 0;
            for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
            a->partial[k] = s;
        } else if (a->op == FLAT_SCALE) {
            for (size_t i = lo; i < hi; i++) g[i] *= a->scale;
        } else {
            const rlaif_adamw *o = a->o;
            size_t off = 0;
            for (int t = 0; t < NUM_PARAMETER_TENSORS; t++) {
                size_t x = off > lo ? off : lo, y = off + m->param_sizes[t] < hi ? off + m->param_sizes[t] : hi;
                off += m->param_sizes[t];
                if (x >= y) continue;
                float decay = rlaif_model_param_decays(t) ? 1.0f - o->lr * o->weight_decay : 1.0f;
                adamw_update(m->params_memory + x, g + x, m->m_memory + x, m->v_memory + x, y - x, decay, o->beta1,
                             o->beta2, a->step_size, a->bc2_sqrt, o->eps);
            }
        }
    }
}

static void flat_run(flat_args *a) {
    int nk = flat_chunks(a->m->num_params);
    rlaif_par_for(nk, 1, nk > 1 ? rlaif_get_threads() : 1, flat_range, a);
}

rlaif_status rlaif_model_zero_grad(rlaif_model *m) {
    if (rlaif_model_need_f32(m, "model.zero_grad") != RLAIF_OK) return RLAIF_EINVAL;
    if (m->grads_memory == NULL) return ensure_grads(m);
    flat_args a = {.m = m, .op = FLAT_ZERO};
    flat_run(&a);
    return RLAIF_OK;
}

double rlaif_model_grad_norm(rlaif_model *m) {
    if (m->grads_memory == NULL) return 0.0;
    flat_args a = {.m = m, .op = FLAT_SUMSQ};
    flat_run(&a);
    double s = 0;
    for (int k = 0; k < flat_chunks(m->num_params); k++) s += a.partial[k];   /* a fixed order */
    return sqrt(s);
}

void rlaif_model_scale_grads(rlaif_model *m, float s) {
    if (m->grads_memory == NULL) return;
    flat_args a = {.m = m, .op = FLAT_SCALE, .scale = s};
    flat_run(&a);
}

rlaif_status rlaif_model_adamw_step(rlaif_model *m, const rlaif_adamw *o) {
    if (rlaif_model_need_f32(m, "model.adamw_step") != RLAIF_OK) return RLAIF_EINVAL;
    rlaif_status st = ensure_grads(m);
    if (st != RLAIF_OK) return st;
    if (m->m_memory == NULL) {
        if ((st = charge(m, 2 * m->num_params * sizeof(float), "model.step: AdamW state")) != RLAIF_OK) return st;
        m->m_memory = calloc(m->num_params, sizeof(float));
        m->v_memory = calloc(m->num_params, sizeof(float));
        if (m->m_memory == NULL || m->v_memory == NULL) {
            free(m->m_memory);
            free(m->v_memory);
            m->m_memory = m->v_memory = NULL;
            uncharge(m, 2 * m->num_params * sizeof(float));
            return rlaif_fail(RLAIF_ENOMEM, "model.step: cannot allocate AdamW state (%zu floats)", 2 * m->num_params);
        }
    }
    m->opt_step++;
    /* the same float32 operation order as torch.optim.AdamW (single-tensor path) */
    float bc1 = 1.0f - powf(o->beta1, (float)m->opt_step), bc2 = 1.0f - powf(o->beta2, (float)m->opt_step);
    float step_size = o->lr / bc1, bc2_sqrt = sqrtf(bc2);
    /* one pass over the flat buffers (AdamW is element-wise: any cut gives the same bits) */
    flat_args a = {.m = m, .op = FLAT_ADAMW, .o = o, .step_size = step_size, .bc2_sqrt = bc2_sqrt};
    flat_run(&a);
    return RLAIF_OK;
}
