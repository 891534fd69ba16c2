/* src/core/ckpt.c -- Hugging Face names and checkpoints, and training state.
 *
 * Hugging Face layout (what `transformers` writes with save_pretrained):
 *   GPT-2  config.json model_type "gpt2"; tensors "transformer.wte.weight",
 *          "transformer.h.{i}.attn.c_attn.weight" (Conv1D: [in, out]), ...,
 *          "lm_head.weight" only when untied, "score.weight" [1, C] for
 *          GPT2ForSequenceClassification. Files without the "transformer."
 *          prefix (the original hub checkpoints) load too.
 *   Llama  model_type "llama" / "qwen2" / "mistral"; "model.embed_tokens.weight",
 *          "model.layers.{i}.self_attn.{q,k,v,o}_proj.weight" [out, in] (+ biases),
 *          "model.layers.{i}.mlp.{gate,up,down}_proj.weight", "model.norm.weight",
 *          "lm_head.weight" when untied, "score.weight" for the reward head.
 * Each HF tensor is a slice of one of the model's flat tensors (q/k/v are row
 * blocks of qkvw, gate/up of fcw), so views and loading need no copies beyond
 * dtype conversion. Loading maps each safetensors file with rlaif_safetensors_open,
 * which checks every tensor's dtype, shape and byte range, and converts (with the
 * transpose) straight into the flat parameter buffer, so a bad file is an error
 * naming the tensor, never an out-of-bounds read.
 * Training state: one file, int32 header (magic, version, ...) + raw float32.
 * Files are written with rlaif_write_file_atomic (temp file, fsync, rename).
 * Not here: the math (model.c), the safetensors format itself (safetensors.c). */
#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "gguf.h"
#include "model.h"

/* ---- the name table ---- */

typedef struct entry_list {
    rlaif_hf_entry *e;
    int n, cap;
} entry_list;

static int add(entry_list *l, const char *name, int pt, size_t off, int ndim, int64_t d0, int64_t d1, int tr) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        rlaif_hf_entry *e = realloc(l->e, sizeof *e * cap);
        if (e == NULL) return 0;
        l->e = e;
        l->cap = cap;
    }
    rlaif_hf_entry *x = &l->e[l->n++];
    snprintf(x->name, sizeof x->name, "%s", name);
    x->ptensor = pt;
    x->offset = off;
    x->ndim = ndim;
    x->shape[0] = d0;
    x->shape[1] = ndim > 1 ? d1 : 1;
    x->transposed = tr;
    return 1;
}

rlaif_status rlaif_model_hf_entries(const rlaif_model *m, rlaif_hf_entry **entries, int *count) {
    const rlaif_model_config *c = &m->cfg;
    int64_t V = c->vocab_size, C = c->d_model, P = c->max_seq, F = c->d_ff, H = c->n_head, KV = c->n_kv_head;
    int64_t hd = c->head_dim, QD = H * hd, QKV = (H + 2 * KV) * hd;
    entry_list l = {0};
    char nm[96];
    int ok = 1;
#define ADD(pt, off, nd, d0, d1, tr) ok = ok && add(&l, nm, pt, off, nd, d0, d1, tr)
    if (c->arch == RLAIF_ARCH_GPT2) {
        snprintf(nm, sizeof nm, "transformer.wte.weight"), ADD(P_WTE, 0, 2, V, C, 0);
        snprintf(nm, sizeof nm, "transformer.wpe.weight"), ADD(P_WPE, 0, 2, P, C, 0);
        for (int i = 0; i < c->n_layer; i++) {
#define NM(fmt) snprintf(nm, sizeof nm, "transformer.h.%d." fmt, i)
            NM("ln_1.weight"), ADD(P_LN1W, i * C, 1, C, 0, 0);
            NM("ln_1.bias"), ADD(P_LN1B, i * C, 1, C, 0, 0);
            NM("attn.c_attn.weight"), ADD(P_QKVW, i * QKV * C, 2, C, QKV, 1);
            NM("attn.c_attn.bias"), ADD(P_QKVB, i * QKV, 1, QKV, 0, 0);
            NM("attn.c_proj.weight"), ADD(P_ATTPROJW, i * C * QD, 2, QD, C, 1);
            NM("attn.c_proj.bias"), ADD(P_ATTPROJB, i * C, 1, C, 0, 0);
            NM("ln_2.weight"), ADD(P_LN2W, i * C, 1, C, 0, 0);
            NM("ln_2.bias"), ADD(P_LN2B, i * C, 1, C, 0, 0);
            NM("mlp.c_fc.weight"), ADD(P_FCW, i * F * C, 2, C, F, 1);
            NM("mlp.c_fc.bias"), ADD(P_FCB, i * F, 1, F, 0, 0);
            NM("mlp.c_proj.weight"), ADD(P_FCPROJW, i * C * F, 2, F, C, 1);
            NM("mlp.c_proj.bias"), ADD(P_FCPROJB, i * C, 1, C, 0, 0);
#undef NM
        }
        snprintf(nm, sizeof nm, "transformer.ln_f.weight"), ADD(P_LNFW, 0, 1, C, 0, 0);
        snprintf(nm, sizeof nm, "transformer.ln_f.bias"), ADD(P_LNFB, 0, 1, C, 0, 0);
    } else {
        snprintf(nm, sizeof nm, "model.embed_tokens.weight"), ADD(P_WTE, 0, 2, V, C, 0);
        for (int i = 0; i < c->n_layer; i++) {
#define NM(fmt) snprintf(nm, sizeof nm, "model.layers.%d." fmt, i)
            size_t q0 = i * QKV * C;
            NM("input_layernorm.weight"), ADD(P_LN1W, i * C, 1, C, 0, 0);
            NM("self_attn.q_proj.weight"), ADD(P_QKVW, q0, 2, QD, C, 0);
            NM("self_attn.k_proj.weight"), ADD(P_QKVW, q0 + QD * C, 2, KV * hd, C, 0);
            NM("self_attn.v_proj.weight"), ADD(P_QKVW, q0 + (QD + KV * hd) * C, 2, KV * hd, C, 0);
            if (c->qkv_bias) {
                NM("self_attn.q_proj.bias"), ADD(P_QKVB, i * QKV, 1, QD, 0, 0);
                NM("self_attn.k_proj.bias"), ADD(P_QKVB, i * QKV + QD, 1, KV * hd, 0, 0);
                NM("self_attn.v_proj.bias"), ADD(P_QKVB, i * QKV + QD + KV * hd, 1, KV * hd, 0, 0);
            }
            NM("self_attn.o_proj.weight"), ADD(P_ATTPROJW, i * C * QD, 2, C, QD, 0);
            if (c->o_bias) NM("self_attn.o_proj.bias"), ADD(P_ATTPROJB, i * C, 1, C, 0, 0);
            NM("post_attention_layernorm.weight"), ADD(P_LN2W, i * C, 1, C, 0, 0);
            NM("mlp.gate_proj.weight"), ADD(P_FCW, i * 2 * F * C, 2, F, C, 0);
            NM("mlp.up_proj.weight"), ADD(P_FCW, i * 2 * F * C + F * C, 2, F, C, 0);
            NM("mlp.down_proj.weight"), ADD(P_FCPROJW, i * C * F, 2, C, F, 0);
#undef NM
        }
        snprintf(nm, sizeof nm, "model.norm.weight"), ADD(P_LNFW, 0, 1, C, 0, 0);
    }
    if (m->param_sizes[P_LMHEAD]) snprintf(nm, sizeof nm, "lm_head.weight"), ADD(P_LMHEAD, 0, 2, V, C, 0);
    if (m->param_sizes[P_SCORE]) snprintf(nm, sizeof nm, "score.weight"), ADD(P_SCORE, 0, 2, 1, C, 0);
#undef ADD
    if (!ok) {
        free(l.e);
        return rlaif_fail(RLAIF_ENOMEM, "model: out of memory");
    }
    *entries = l.e;
    *count = l.n;
    return RLAIF_OK;
}

static float *tensor_base(rlaif_model *m, float *mem, int pt) {
    size_t off = 0;
    for (int i = 0; i < pt; i++) off += m->param_sizes[i];
    return mem + off;
}

rlaif_status rlaif_model_param_view(rlaif_model *m, const char *name, int grad, rlaif_tensor **out) {
    if (rlaif_model_need_f32(m, grad ? "model.grad" : "model.param") != RLAIF_OK) return RLAIF_EINVAL;
    rlaif_hf_entry *e = NULL;
    int n = 0;
    rlaif_status st = rlaif_model_hf_entries(m, &e, &n);
    if (st != RLAIF_OK) return st;
    int k = -1;
    for (int i = 0; i < n; i++)
        if (strcmp(e[i].name, name) == 0) k = i;
    if (k < 0) {
        free(e);
        return rlaif_fail(RLAIF_EINVAL, "no parameter named '%s'", name);
    }
    if (grad && m->grads_memory == NULL) st = rlaif_model_zero_grad(m);
    if (st == RLAIF_OK) {
        float *base = tensor_base(m, grad ? m->grads_memory : m->params_memory, e[k].ptensor) + e[k].offset;
        int64_t stride[2];
        if (e[k].ndim == 2 && e[k].transposed) stride[0] = 1, stride[1] = e[k].shape[0];
        else stride[0] = e[k].ndim == 2 ? e[k].shape[1] : 1, stride[1] = 1;
        st = rlaif_tensor_wrap(out, base, e[k].ndim, e[k].shape, stride);
    }
    free(e);
    return st;
}

/* ---- safetensors reading ---- */

static const char *base_name(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* Re-raise the last failure (from safetensors.c) as a model.load error. */
static rlaif_status load_fail(rlaif_status st) {
    char why[512];
    snprintf(why, sizeof why, "%s", rlaif_last_error());
    return rlaif_fail(st, "model.load: %s", why);
}

/* Find a tensor for HF name `want` (also without the "transformer."/"model." prefix). */
static const rlaif_safetensors_entry *find_tensor(const rlaif_safetensors_file *f, const char *want,
                                                  const char **found) {
    const rlaif_safetensors_entry *t = rlaif_safetensors_find(f, want);
    *found = want;
    if (t == NULL) {
        const char *dot = strchr(want, '.');
        if (dot && (strncmp(want, "transformer.", 12) == 0 || strncmp(want, "model.", 6) == 0)) {
            t = rlaif_safetensors_find(f, dot + 1);
            *found = dot + 1;
        }
    }
    return t;
}

/* Load every entry present in `path` into m; flags[i] = 1 for loaded entries.
 * Only the entries the model needs are checked: a file may carry others. */
static rlaif_status load_file(rlaif_model *m, const rlaif_hf_entry *e, int n, char *flags, const char *path,
                              int allow_missing) {
    const char *fname = base_name(path);
    rlaif_safetensors_file *f = NULL;
    rlaif_status st = rlaif_safetensors_open(path, &f);
    if (st != RLAIF_OK) return load_fail(st);
    for (int i = 0; i < n; i++) {
        const char *nm;
        const rlaif_safetensors_entry *t = find_tensor(f, e[i].name, &nm);
        if (t == NULL) {
            if (allow_missing) continue;
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: tensor '%s' is missing from %s", e[i].name, fname);
            break;
        }
        if (t->problem == RLAIF_ST_DTYPE) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: tensor '%s' has dtype %s, expected F32, F16, BF16 or F64",
                            fname, nm, t->dtype_name);
            break;
        }
        if (t->problem != RLAIF_ST_OK && t->problem < RLAIF_ST_OFFSETS) {   /* no usable shape */
            st = load_fail(rlaif_safetensors_check(f, t));
            break;
        }
        if (t->ndim != e[i].ndim || t->shape[0] != e[i].shape[0] || (t->ndim == 2 && t->shape[1] != e[i].shape[1])) {
            char got[64], want[64];
            rlaif_shape_str(got, sizeof got, t->ndim, t->shape);
            rlaif_shape_str(want, sizeof want, e[i].ndim, e[i].shape);
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: tensor '%s' has shape %s, expected %s", fname, nm, got,
                            want);
            break;
        }
        if (t->problem == RLAIF_ST_PAST_END) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: tensor '%s' data [%" PRIu64 ", %" PRIu64 ") extends past "
                            "the end of the file (%" PRIu64 " data bytes): truncated file", fname, nm, t->begin,
                            t->end, f->data_len);
            break;
        }
        if (t->problem != RLAIF_ST_OK) {
            st = load_fail(rlaif_safetensors_check(f, t));
            break;
        }
        float *dst = tensor_base(m, m->params_memory, e[i].ptensor) + e[i].offset;
        if (e[i].ndim == 2 && e[i].transposed) {
            int64_t r = e[i].shape[0], cc = e[i].shape[1];   /* file [r, cc] -> internal [cc, r] */
            const unsigned char *src = t->data;
            for (int64_t a = 0; a < r; a++)
                rlaif_safetensors_convert(dst + a, r, src + (size_t)(a * cc) * t->elem_size, cc, t->dtype);
        } else {
            rlaif_safetensors_convert(dst, 1, t->data, t->numel, t->dtype);
        }
        flags[i] = 1;
    }
    rlaif_safetensors_close(f);
    return st;
}

rlaif_status rlaif_model_load_safetensors(rlaif_model *m, const char *path, int allow_missing, int *loaded) {
    if (rlaif_model_need_f32(m, "model.load_safetensors") != RLAIF_OK) return RLAIF_EINVAL;
    rlaif_hf_entry *e = NULL;
    int n = 0;
    rlaif_status st = rlaif_model_hf_entries(m, &e, &n);
    if (st != RLAIF_OK) return st;
    char *flags = calloc(n ? n : 1, 1);
    if (flags == NULL) st = rlaif_fail(RLAIF_ENOMEM, "model.load: out of memory");
    if (st == RLAIF_OK) st = load_file(m, e, n, flags, path, allow_missing);
    if (loaded) {
        *loaded = 0;
        for (int i = 0; i < n && flags; i++) *loaded += flags[i];
    }
    free(flags);
    free(e);
    return st;
}

/* ---- config.json ---- */

static char *read_text(const char *path, size_t *len) {
    char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
    if (rlaif_path_gate(&path, gate, RLAIF_PATH_READ, "model.load") != RLAIF_OK) {
        errno = EACCES;
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = '\0';
                if (len) *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

/* The first config.json field that is not a number of the expected kind, so
 * the load fails naming it instead of casting 1e40 or 2.5 into an int. */
typedef struct cfg_err {
    const char *key;
    char value[48];
    const char *why;
} cfg_err;

static void cfg_bad(cfg_err *ce, const char *k, const cJSON *x, const char *why) {
    if (ce->key) return;
    ce->key = k, ce->why = why;
    if (cJSON_IsNumber(x)) snprintf(ce->value, sizeof ce->value, "%.15g", x->valuedouble);
    else snprintf(ce->value, sizeof ce->value, "a %s", cJSON_IsString(x) ? "string" : cJSON_IsBool(x) ? "boolean" :
                  cJSON_IsNull(x) ? "null" : cJSON_IsArray(x) ? "array" : "object");
}

static int jint(cfg_err *ce, const cJSON *o, const char *k, int def) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (cJSON_IsArray(x)) x = cJSON_GetArrayItem(x, 0);   /* eos_token_id may be a list */
    if (x == NULL || cJSON_IsNull(x)) return def;
    if (!cJSON_IsNumber(x) || !(x->valuedouble >= INT32_MIN && x->valuedouble <= INT32_MAX) ||
        x->valuedouble != (double)(int)x->valuedouble) {
        cfg_bad(ce, k, x, "is not an integer in the 32-bit range");
        return def;
    }
    return (int)x->valuedouble;
}
static double jnum(cfg_err *ce, const cJSON *o, const char *k, double def) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    if (x == NULL || cJSON_IsNull(x)) return def;
    if (!cJSON_IsNumber(x) || !(fabs(x->valuedouble) <= 3e38)) {   /* finite as a float */
        cfg_bad(ce, k, x, "is not a number in the float range");
        return def;
    }
    return x->valuedouble;
}
static int jbool(const cJSON *o, const char *k, int def) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsBool(x) ? cJSON_IsTrue(x) : def;
}
static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static rlaif_status parse_config(const char *path, rlaif_model_config *c) {
    char *text = read_text(path, NULL);
    if (text == NULL) return rlaif_fail(RLAIF_EIO, "model.load: cannot read %s: %s", path, strerror(errno));
    cJSON *j = cJSON_Parse(text);
    free(text);
    rlaif_status st = RLAIF_OK;
    cfg_err ce = {0};
    if (j == NULL || !cJSON_IsObject(j)) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s is not a JSON object", path);
        goto done;
    }
    const char *mt = jstr(j, "model_type");
    if (mt == NULL) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s has no model_type", path);
        goto done;
    }
    if (strcmp(mt, "gpt2") == 0) {
        rlaif_model_config_defaults(c, RLAIF_ARCH_GPT2);
        c->vocab_size = jint(&ce, j, "vocab_size", 50257);
        c->max_seq = jint(&ce, j, "n_positions", jint(&ce, j, "n_ctx", 1024));
        c->d_model = jint(&ce, j, "n_embd", 768);
        c->n_layer = jint(&ce, j, "n_layer", 12);
        c->n_head = jint(&ce, j, "n_head", 12);
        c->d_ff = jint(&ce, j, "n_inner", 0);   /* 0: 4 * n_embd, derived once n_embd is checked */
        c->norm_eps = (float)jnum(&ce, j, "layer_norm_epsilon", 1e-5);
        const char *act = jstr(j, "activation_function");
        if (act && strcmp(act, "gelu_new") != 0 && strcmp(act, "gelu_pytorch_tanh") != 0 &&
            strcmp(act, "gelu_fast") != 0) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: activation_function '%s' is not supported (tanh GELU only)", act);
            goto done;
        }
        c->tie_embeddings = jbool(j, "tie_word_embeddings", 1);
    } else if (strcmp(mt, "llama") == 0 || strcmp(mt, "qwen2") == 0 || strcmp(mt, "mistral") == 0) {
        rlaif_model_config_defaults(c, RLAIF_ARCH_LLAMA);
        snprintf(c->model_type, sizeof c->model_type, "%s", mt);
        c->vocab_size = jint(&ce, j, "vocab_size", 32000);
        c->d_model = jint(&ce, j, "hidden_size", 4096);
        c->d_ff = jint(&ce, j, "intermediate_size", 11008);
        c->n_layer = jint(&ce, j, "num_hidden_layers", 32);
        c->n_head = jint(&ce, j, "num_attention_heads", 32);
        c->n_kv_head = jint(&ce, j, "num_key_value_heads", c->n_head);
        c->head_dim = jint(&ce, j, "head_dim", 0);
        c->max_seq = jint(&ce, j, "max_position_embeddings", 2048);
        c->norm_eps = (float)jnum(&ce, j, "rms_norm_eps", 1e-6);
        c->rope_theta = (float)jnum(&ce, j, "rope_theta", 10000.0);
        c->tie_embeddings = jbool(j, "tie_word_embeddings", 0);
        int qwen2 = strcmp(mt, "qwen2") == 0;
        int ab = jbool(j, "attention_bias", 0);
        c->qkv_bias = qwen2 || ab;
        c->o_bias = !qwen2 && ab;
        if (jbool(j, "mlp_bias", 0)) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: mlp_bias = true is not supported");
            goto done;
        }
        const char *act = jstr(j, "hidden_act");
        if (act && strcmp(act, "silu") != 0) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: hidden_act '%s' is not supported (silu only)", act);
            goto done;
        }
        const cJSON *rs = cJSON_GetObjectItemCaseSensitive(j, "rope_scaling");
        if (cJSON_IsObject(rs)) {
            const char *rt = jstr(rs, "rope_type");
            if (rt == NULL) rt = jstr(rs, "type");
            if (rt == NULL || strcmp(rt, "default") == 0) c->rope_type = RLAIF_ROPE_DEFAULT;
            else if (strcmp(rt, "linear") == 0) c->rope_type = RLAIF_ROPE_LINEAR;
            else if (strcmp(rt, "llama3") == 0) c->rope_type = RLAIF_ROPE_LLAMA3;
            else {
                st = rlaif_fail(RLAIF_EFORMAT, "model.load: rope_scaling type '%s' is not supported "
                                "(default, linear, llama3)", rt);
                goto done;
            }
            c->rope_factor = (float)jnum(&ce, rs, "factor", 1.0);
            c->rope_low_freq_factor = (float)jnum(&ce, rs, "low_freq_factor", 1.0);
            c->rope_high_freq_factor = (float)jnum(&ce, rs, "high_freq_factor", 4.0);
            c->rope_orig_max = jint(&ce, rs, "original_max_position_embeddings", 8192);
        }
    } else {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: model_type '%s' is not supported (gpt2, llama, qwen2, mistral)", mt);
        goto done;
    }
    c->bos_id = jint(&ce, j, "bos_token_id", -1);
    c->eos_id = jint(&ce, j, "eos_token_id", -1);
    c->pad_id = jint(&ce, j, "pad_token_id", -1);
    if (ce.key)
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: %s = %s %s", path, ce.key, ce.value, ce.why);
done:
    cJSON_Delete(j);
    return st;
}

typedef struct text_body {
    const char *text;
    size_t len;
} text_body;

static rlaif_status write_text(FILE *f, void *ud) {
    const text_body *b = ud;
    fwrite(b->text, 1, b->len, f);
    return RLAIF_OK;
}

static rlaif_status write_config(const rlaif_model *m, const char *path) {
    const rlaif_model_config *c = &m->cfg;
    cJSON *j = cJSON_CreateObject(), *arch = cJSON_CreateArray();
    int reward = c->head == RLAIF_HEAD_REWARD;
    if (j == NULL || arch == NULL) {
        cJSON_Delete(j);
        cJSON_Delete(arch);
        return rlaif_fail(RLAIF_ENOMEM, "model.save: out of memory");
    }
    const char *an;
    if (c->arch == RLAIF_ARCH_GPT2) an = reward ? "GPT2ForSequenceClassification" : "GPT2LMHeadModel";
    else if (strcmp(c->model_type, "qwen2") == 0) an = reward ? "Qwen2ForSequenceClassification" : "Qwen2ForCausalLM";
    else if (strcmp(c->model_type, "mistral") == 0) an = reward ? "MistralForSequenceClassification" : "MistralForCausalLM";
    else an = reward ? "LlamaForSequenceClassification" : "LlamaForCausalLM";
    cJSON_AddItemToArray(arch, cJSON_CreateString(an));
    cJSON_AddItemToObject(j, "architectures", arch);
    cJSON_AddStringToObject(j, "model_type", c->model_type);
    cJSON_AddNumberToObject(j, "vocab_size", c->vocab_size);
    if (c->arch == RLAIF_ARCH_GPT2) {
        cJSON_AddNumberToObject(j, "n_positions", c->max_seq);
        cJSON_AddNumberToObject(j, "n_ctx", c->max_seq);
        cJSON_AddNumberToObject(j, "n_embd", c->d_model);
        cJSON_AddNumberToObject(j, "n_layer", c->n_layer);
        cJSON_AddNumberToObject(j, "n_head", c->n_head);
        cJSON_AddNumberToObject(j, "n_inner", c->d_ff);
        cJSON_AddNumberToObject(j, "layer_norm_epsilon", c->norm_eps);
        cJSON_AddStringToObject(j, "activation_function", "gelu_new");
    } else {
        cJSON_AddNumberToObject(j, "hidden_size", c->d_model);
        cJSON_AddNumberToObject(j, "intermediate_size", c->d_ff);
        cJSON_AddNumberToObject(j, "num_hidden_layers", c->n_layer);
        cJSON_AddNumberToObject(j, "num_attention_heads", c->n_head);
        cJSON_AddNumberToObject(j, "num_key_value_heads", c->n_kv_head);
        cJSON_AddNumberToObject(j, "head_dim", c->head_dim);
        cJSON_AddNumberToObject(j, "max_position_embeddings", c->max_seq);
        cJSON_AddNumberToObject(j, "rms_norm_eps", c->norm_eps);
        cJSON_AddNumberToObject(j, "rope_theta", c->rope_theta);
        cJSON_AddStringToObject(j, "hidden_act", "silu");
        if (strcmp(c->model_type, "qwen2") != 0) cJSON_AddBoolToObject(j, "attention_bias", c->qkv_bias);
        if (c->rope_type != RLAIF_ROPE_DEFAULT) {
            cJSON *rs = cJSON_AddObjectToObject(j, "rope_scaling");
            cJSON_AddStringToObject(rs, "rope_type", c->rope_type == RLAIF_ROPE_LINEAR ? "linear" : "llama3");
            cJSON_AddNumberToObject(rs, "factor", c->rope_factor);
            if (c->rope_type == RLAIF_ROPE_LLAMA3) {
                cJSON_AddNumberToObject(rs, "low_freq_factor", c->rope_low_freq_factor);
                cJSON_AddNumberToObject(rs, "high_freq_factor", c->rope_high_freq_factor);
                cJSON_AddNumberToObject(rs, "original_max_position_embeddings", c->rope_orig_max);
            }
        }
    }
    cJSON_AddBoolToObject(j, "tie_word_embeddings", c->tie_embeddings);
    if (c->bos_id >= 0) cJSON_AddNumberToObject(j, "bos_token_id", c->bos_id);
    if (c->eos_id >= 0) cJSON_AddNumberToObject(j, "eos_token_id", c->eos_id);
    if (c->pad_id >= 0) cJSON_AddNumberToObject(j, "pad_token_id", c->pad_id);
    if (reward) {
        cJSON *i2l = cJSON_AddObjectToObject(j, "id2label"), *l2i = cJSON_AddObjectToObject(j, "label2id");
        cJSON_AddStringToObject(i2l, "0", "LABEL_0");
        cJSON_AddNumberToObject(l2i, "LABEL_0", 0);
    }
    cJSON_AddStringToObject(j, "torch_dtype", "float32");
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    if (text == NULL) return rlaif_fail(RLAIF_ENOMEM, "model.save: out of memory");
    text_body body = {text, strlen(text)};
    rlaif_status st = rlaif_write_file_atomic(path, "model.save: cannot write", 0666, write_text, &body);
    cJSON_free(text);
    return st;
}

/* ---- load / save a directory ---- */

static int file_exists(const char *p) {
    struct stat sb;
    char gate[RLAIF_PATH_MAX];   /* a probe: outside a sandbox's root nothing exists */
    if (rlaif_path_gate(&p, gate, RLAIF_PATH_READ, "model.load") != RLAIF_OK) return 0;
    return stat(p, &sb) == 0;
}

rlaif_status rlaif_model_load(rlaif_model **out, const char *dir, rlaif_head head) {
    *out = NULL;
    char gate[RLAIF_PATH_MAX];
    rlaif_status gst = rlaif_path_gate(&dir, gate, RLAIF_PATH_READ, "model.load");
    if (gst != RLAIF_OK) return gst;
    size_t dl = strlen(dir);
    if (dl > 5 && strcmp(dir + dl - 5, ".gguf") == 0) return rlaif_model_load_gguf(out, dir, head);   /* gguf_model.c */
    char path[4096];
    rlaif_model_config cfg;
    snprintf(path, sizeof path, "%s/config.json", dir);
    rlaif_status st = parse_config(path, &cfg);
    if (st != RLAIF_OK) return st;
    cfg.head = head;
    rlaif_model *m = NULL;
    rlaif_hf_entry *e = NULL;
    char *flags = NULL, *index_text = NULL;
    cJSON *index = NULL;
    int n = 0;
    if ((st = rlaif_model_new(&m, &cfg, 0)) != RLAIF_OK) {
        char why[512];   /* name the file: the config's fields made the model invalid */
        snprintf(why, sizeof why, "%s", rlaif_last_error());
        st = rlaif_fail(st, "model.load: %s: %s", path, why);
        goto done;
    }
    if ((st = rlaif_model_hf_entries(m, &e, &n)) != RLAIF_OK) goto done;
    flags = calloc(n, 1);
    if (flags == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "model.load: out of memory");
        goto done;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (file_exists(path)) {
        if ((st = load_file(m, e, n, flags, path, 1)) != RLAIF_OK) goto done;
    } else {
        snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
        index_text = read_text(path, NULL);
        if (index_text == NULL) {
            st = rlaif_fail(RLAIF_EIO, "model.load: %s has neither model.safetensors nor model.safetensors.index.json",
                            dir);
            goto done;
        }
        index = cJSON_Parse(index_text);
        cJSON *wm = cJSON_GetObjectItemCaseSensitive(index, "weight_map");
        if (!cJSON_IsObject(wm)) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s has no weight_map object", path);
            goto done;
        }
        /* each shard once, in order of first mention */
        for (cJSON *x = wm->child; x; x = x->next) {
            if (!cJSON_IsString(x) || strchr(x->valuestring, '/') != NULL) {
                st = rlaif_fail(RLAIF_EFORMAT, "model.load: weight_map entry '%s' is not a file name", x->string);
                goto done;
            }
            int seen = 0;
            for (cJSON *y = wm->child; y != x; y = y->next)
                if (strcmp(y->valuestring, x->valuestring) == 0) seen = 1;
            if (seen) continue;
            snprintf(path, sizeof path, "%s/%s", dir, x->valuestring);
            if ((st = load_file(m, e, n, flags, path, 1)) != RLAIF_OK) goto done;
        }
    }
    for (int i = 0; i < n; i++) {
        if (flags[i]) continue;
        if (e[i].ptensor == P_SCORE) {   /* a fresh reward head on a language model */
            memset(m->params.score, 0, sizeof(float) * cfg.d_model);
            continue;
        }
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: tensor '%s' is missing from %s", e[i].name, dir);
        goto done;
    }
done:
    cJSON_Delete(index);
    free(index_text);
    free(flags);
    free(e);
    if (st != RLAIF_OK) rlaif_model_free(m);
    else *out = m;
    return st;
}

rlaif_status rlaif_model_save(rlaif_model *m, const char *dir) {
    if (rlaif_model_need_f32(m, "model.save") != RLAIF_OK) return RLAIF_EINVAL;
    char gate[RLAIF_PATH_MAX];
    rlaif_status gst = rlaif_path_gate(&dir, gate, RLAIF_PATH_WRITE, "model.save");
    if (gst != RLAIF_OK) return gst;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return rlaif_fail(RLAIF_EIO, "model.save: cannot create %s: %s", dir, strerror(errno));
    rlaif_hf_entry *e = NULL;
    int n = 0;
    rlaif_status st = rlaif_model_hf_entries(m, &e, &n);
    if (st != RLAIF_OK) return st;
    rlaif_named_tensor *items = calloc(n, sizeof *items);
    char path[4096];
    if (items == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "model.save: out of memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        items[i].name = e[i].name;
        if ((st = rlaif_model_param_view(m, e[i].name, 0, &items[i].tensor)) != RLAIF_OK) goto done;
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if ((st = rlaif_safetensors_save(path, items, n)) != RLAIF_OK) goto done;
    snprintf(path, sizeof path, "%s/config.json", dir);
    st = write_config(m, path);
done:
    for (int i = 0; items && i < n; i++) rlaif_tensor_release(items[i].tensor);
    free(items);
    free(e);
    return st;
}

/* ---- training state ---- */

#define STATE_MAGIC 0x52534c54   /* "TLSR" */
#define STATE_VERSION 1

/* header: int32 magic, version, arch, n_layer, d_model, vocab_size, has_moments, 0;
 * int64 num_params, opt_step, blob_len; then params, [m, v], blob. */
typedef struct state_body {
    const rlaif_model *m;   /* borrowed */
    const void *blob;       /* (blob_len) bytes, borrowed */
    size_t blob_len;
} state_body;

static rlaif_status write_state(FILE *f, void *ud) {
    const state_body *s = ud;
    const rlaif_model *m = s->m;
    int32_t h[8] = {STATE_MAGIC, STATE_VERSION, (int32_t)m->cfg.arch, m->cfg.n_layer, m->cfg.d_model,
                    m->cfg.vocab_size, m->m_memory != NULL, 0};
    int64_t h2[3] = {(int64_t)m->num_params, m->opt_step, (int64_t)s->blob_len};
    fwrite(h, sizeof h, 1, f);
    fwrite(h2, sizeof h2, 1, f);
    fwrite(m->params_memory, sizeof(float), m->num_params, f);
    if (m->m_memory) {
        fwrite(m->m_memory, sizeof(float), m->num_params, f);
        fwrite(m->v_memory, sizeof(float), m->num_params, f);
    }
    if (s->blob_len) fwrite(s->blob, 1, s->blob_len, f);
    return RLAIF_OK;
}

rlaif_status rlaif_model_save_state(rlaif_model *m, const char *path, const void *blob, size_t blob_len) {
    if (rlaif_model_need_f32(m, "model.save_state") != RLAIF_OK) return RLAIF_EINVAL;
    state_body body = {m, blob, blob_len};
    return rlaif_write_file_atomic(path, "model.save_state: cannot write", 0666, write_state, &body);
}

rlaif_status rlaif_model_load_state(rlaif_model *m, const char *path, void **blob, size_t *blob_len) {
    if (blob) *blob = NULL;
    if (blob_len) *blob_len = 0;
    if (rlaif_model_need_f32(m, "model.load_state") != RLAIF_OK) return RLAIF_EINVAL;
    char gate[RLAIF_PATH_MAX];
    rlaif_status gst = rlaif_path_gate(&path, gate, RLAIF_PATH_READ, "model.load_state");
    if (gst != RLAIF_OK) return gst;
    FILE *f = fopen(path, "rb");
    if (f == NULL) return rlaif_fail(RLAIF_EIO, "model.load_state: cannot open %s: %s", path, strerror(errno));
    rlaif_status st = RLAIF_OK;
    int32_t h[8];
    int64_t h2[3];
    float *mm = NULL, *vv = NULL, *pp = NULL;
    char *b = NULL;
    if (fread(h, sizeof h, 1, f) != 1 || fread(h2, sizeof h2, 1, f) != 1 || h[0] != STATE_MAGIC) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load_state: %s is not an rlaif training state", path);
        goto done;
    }
    if (h[1] != STATE_VERSION) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load_state: %s has version %d, this build reads %d "
                        "(re-save it with the matching rlaif)", path, h[1], STATE_VERSION);
        goto done;
    }
    if (h2[0] != (int64_t)m->num_params || h[2] != (int32_t)m->cfg.arch || h[3] != m->cfg.n_layer ||
        h[4] != m->cfg.d_model || h[5] != m->cfg.vocab_size) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load_state: %s is for a different model (%" PRId64 " parameters, "
                        "this one has %zu)", path, h2[0], m->num_params);
        goto done;
    }
    size_t np = m->num_params;
    pp = malloc(np * sizeof(float));
    if (h[6]) mm = malloc(np * sizeof(float)), vv = malloc(np * sizeof(float));
    if (h2[2] < 0 || h2[2] > (1 << 30)) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load_state: %s: bad blob length", path);
        goto done;
    }
    b = malloc((size_t)h2[2] + 1);
    if (pp == NULL || b == NULL || (h[6] && (mm == NULL || vv == NULL))) {
        st = rlaif_fail(RLAIF_ENOMEM, "model.load_state: out of memory");
        goto done;
    }
    int ok = fread(pp, sizeof(float), np, f) == np;
    if (h[6]) ok = ok && fread(mm, sizeof(float), np, f) == np && fread(vv, sizeof(float), np, f) == np;
    ok = ok && fread(b, 1, (size_t)h2[2], f) == (size_t)h2[2];
    if (!ok) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load_state: %s is truncated", path);
        goto done;
    }
    memcpy(m->params_memory, pp, np * sizeof(float));
    free(m->m_memory);
    free(m->v_memory);
    m->m_memory = mm;
    m->v_memory = vv;
    mm = vv = NULL;
    m->opt_step = h2[1];
    if (m->grads_memory) memset(m->grads_memory, 0, np * sizeof(float));
    if (blob) {
        b[h2[2]] = '\0';
        *blob = b;
        b = NULL;
    }
    if (blob_len) *blob_len = (size_t)h2[2];
done:
    free(pp);
    free(mm);
    free(vv);
    free(b);
    fclose(f);
    return st;
}
