/* src/core/gguf_model.c -- rlaif models <-> GGUF files llama.cpp loads.
 *
 * Architectures (llama.cpp's names, metadata keys and tensor names, as its
 * convert_hf_to_gguf.py writes them):
 *   gpt2   <-> GPT-2: token_embd, position_embd, blk.N.{attn_norm, attn_qkv,
 *          attn_output, ffn_norm, ffn_up, ffn_down}.{weight,bias}, output_norm,
 *          output (untied only); gpt2.attention.layer_norm_epsilon.
 *   llama  <-> model_type llama and mistral: blk.N.{attn_norm, attn_q, attn_k,
 *          attn_v, attn_output, ffn_norm, ffn_gate, ffn_up, ffn_down}, optional
 *          q/k/v/o biases. llama.cpp's "llama" RoPE rotates adjacent pairs while
 *          Hugging Face's rotates halves, so attn_q/attn_k rows (and biases) are
 *          permuted per head on export (convert_hf_to_gguf.py's LlamaModel.permute)
 *          and back on import. Llama 3 RoPE scaling becomes rope_freqs.weight (the
 *          per-frequency divisors) plus rlaif.rope.* keys holding the parameters.
 *   qwen2  <-> model_type qwen2 (q/k/v biases, no permutation: NeoX RoPE).
 * Every weight matrix is stored as we hold it, (out, in) row-major = ggml
 * ne {in, out}. 1-d tensors, norms, biases, positions and rope_freqs stay F32;
 * other matrices are F32, F16, BF16 or Q8_0 (Q8_0 rows that are not a multiple
 * of 32 fall back to F16), as llama.cpp's converter decides.
 * Loading accepts F32, F16, BF16, F64 and Q8_0 tensors and converts them into
 * the model's float32 buffer; every tensor the model needs must be present with
 * the right shape, and errors name the file and the tensor.
 * Not here: the byte format (gguf.c), the tokenizer keys (bpe_gguf.c). */
#include "gguf.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- names ---- */

/* The GGUF name of a Hugging Face tensor name, or 0 when it has none. */
static int gguf_name(const char *hf, char *out, size_t cap) {
    static const struct { const char *hf, *gg; } fixed[] = {
        {"transformer.wte.weight", "token_embd.weight"}, {"transformer.wpe.weight", "position_embd.weight"},
        {"transformer.ln_f.weight", "output_norm.weight"}, {"transformer.ln_f.bias", "output_norm.bias"},
        {"model.embed_tokens.weight", "token_embd.weight"}, {"model.norm.weight", "output_norm.weight"},
        {"lm_head.weight", "output.weight"},
    };
    static const struct { const char *hf, *gg; } layer[] = {
        {"ln_1.", "attn_norm."}, {"attn.c_attn.", "attn_qkv."}, {"attn.c_proj.", "attn_output."},
        {"ln_2.", "ffn_norm."}, {"mlp.c_fc.", "ffn_up."}, {"mlp.c_proj.", "ffn_down."},
        {"input_layernorm.", "attn_norm."}, {"self_attn.q_proj.", "attn_q."}, {"self_attn.k_proj.", "attn_k."},
        {"self_attn.v_proj.", "attn_v."}, {"self_attn.o_proj.", "attn_output."},
        {"post_attention_layernorm.", "ffn_norm."}, {"mlp.gate_proj.", "ffn_gate."}, {"mlp.up_proj.", "ffn_up."},
        {"mlp.down_proj.", "ffn_down."},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(hf, fixed[i].hf) == 0) return snprintf(out, cap, "%s", fixed[i].gg), 1;
    int l, n = 0;
    if (sscanf(hf, "transformer.h.%d.%n", &l, &n) != 1 && sscanf(hf, "model.layers.%d.%n", &l, &n) != 1) return 0;
    if (n == 0) return 0;
    const char *rest = hf + n;
    for (size_t i = 0; i < sizeof layer / sizeof layer[0]; i++) {
        size_t k = strlen(layer[i].hf);
        if (strncmp(rest, layer[i].hf, k) == 0) return snprintf(out, cap, "blk.%d.%s%s", l, layer[i].gg, rest + k), 1;
    }
    return 0;
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* llama.cpp's "llama" RoPE pairs adjacent rows: row h*hd + 2i + j of the GGUF
 * tensor is row h*hd + j*hd/2 + i of ours (heads of hd rows, `cols` floats each). */
static void permute_rows(float *dst, const float *src, int heads, int hd, int64_t cols, int to_gguf) {
    for (int h = 0; h < heads; h++)
        for (int i = 0; i < hd / 2; i++)
            for (int j = 0; j < 2; j++) {
                size_t g = (size_t)h * hd + 2 * i + j, o = (size_t)h * hd + (size_t)j * (hd / 2) + i;
                size_t d = to_gguf ? g : o, s = to_gguf ? o : g;
                memcpy(dst + d * cols, src + s * cols, sizeof(float) * (size_t)cols);
            }
}

static float *tensor_base(rlaif_model *m, int pt) {
    size_t off = 0;
    for (int i = 0; i < pt; i++) off += m->param_sizes[i];
    return m->params_memory + off;
}

/* Rows and columns of an entry as held internally ((out, in) row-major). */
static void entry_dims(const rlaif_hf_entry *e, int64_t *rows, int64_t *cols) {
    if (e->ndim == 1) *rows = 1, *cols = e->shape[0];
    else if (e->transposed) *rows = e->shape[1], *cols = e->shape[0];
    else *rows = e->shape[0], *cols = e->shape[1];
}

/* Which permutation an entry needs (llama arch q/k): heads, else 0. */
static int permute_heads(const rlaif_model_config *c, int llama_arch, const char *gg) {
    if (!llama_arch) return 0;
    if (strstr(gg, ".attn_q.")) return c->n_head;
    if (strstr(gg, ".attn_k.")) return c->n_kv_head;
    return 0;
}

/* The divisors llama.cpp applies to each RoPE frequency for Llama 3 scaling
 * (convert_hf_to_gguf.py's LlamaModel.generate_extra_tensors). */
static void llama3_factors(const rlaif_model_config *c, float *out) {
    int half = c->head_dim / 2;
    double lo_wave = c->rope_orig_max / c->rope_low_freq_factor, hi_wave = c->rope_orig_max / c->rope_high_freq_factor;
    for (int i = 0; i < half; i++) {
        float freq = (float)(1.0 / pow((double)c->rope_theta, (double)(2 * i) / c->head_dim));
        double wavelen = 2 * M_PI / freq;
        if (wavelen < hi_wave) out[i] = 1.0f;
        else if (wavelen > lo_wave) out[i] = c->rope_factor;
        else {
            double smooth = (c->rope_orig_max / wavelen - c->rope_low_freq_factor) /
                            (c->rope_high_freq_factor - c->rope_low_freq_factor);
            out[i] = (float)(1 / ((1 - smooth) / c->rope_factor + smooth));
        }
    }
}

/* ---- save ---- */

rlaif_status rlaif_model_save_gguf(rlaif_model *m, const char *path, const rlaif_bpe *tok,
                                   const rlaif_gguf_save_opts *o) {
    if (rlaif_model_need_f32(m, "model.save_gguf") != RLAIF_OK) return RLAIF_EINVAL;
    rlaif_gguf_save_opts dflt = {RLAIF_GGML_F32, NULL, NULL};
    if (o == NULL) o = &dflt;
    const rlaif_model_config *c = &m->cfg;
    if (c->head != RLAIF_HEAD_LM)
        return rlaif_fail(RLAIF_EINVAL, "model.save_gguf: a reward model (score head) has no llama.cpp architecture");
    if (tok == NULL) return rlaif_fail(RLAIF_EINVAL, "model.save_gguf: a tokenizer is required (llama.cpp needs one)");
    if (o->type != RLAIF_GGML_F32 && o->type != RLAIF_GGML_F16 && o->type != RLAIF_GGML_BF16 &&
        o->type != RLAIF_GGML_Q8_0)
        return rlaif_fail(RLAIF_EINVAL, "model.save_gguf: type %s is not one of F32, F16, BF16, Q8_0",
                          rlaif_ggml_type_name(o->type));
    int gpt2 = c->arch == RLAIF_ARCH_GPT2, qwen2 = strcmp(c->model_type, "qwen2") == 0;
    const char *arch = gpt2 ? "gpt2" : qwen2 ? "qwen2" : "llama";
    int llama_arch = !gpt2 && !qwen2;
    if (qwen2 && (c->n_head * c->head_dim != c->d_model || c->o_bias))
        return rlaif_fail(RLAIF_EINVAL, "model.save_gguf: llama.cpp's qwen2 needs n_head * head_dim == d_model and "
                          "no o_proj bias");
    if (c->rope_type == RLAIF_ROPE_LLAMA3 && !llama_arch)
        return rlaif_fail(RLAIF_EINVAL, "model.save_gguf: Llama 3 RoPE scaling is only written for the llama family");
    rlaif_gguf_writer *w = NULL;
    rlaif_hf_entry *e = NULL;
    int n = 0;
    char key[128], gg[96];
    rlaif_status st = rlaif_gguf_writer_new(&w);
    if (st != RLAIF_OK) return st;
    uint32_t ftype = o->type == RLAIF_GGML_F16 ? 1 : o->type == RLAIF_GGML_Q8_0 ? 7 : o->type == RLAIF_GGML_BF16 ? 32 : 0;
#define KEY(fmt) (snprintf(key, sizeof key, "%s." fmt, arch), key)
#define TRY(call) do { if ((st = (call)) != RLAIF_OK) goto done; } while (0)
    TRY(rlaif_gguf_set_str(w, "general.architecture", arch));
    TRY(rlaif_gguf_set_str(w, "general.name", o->name ? o->name : c->model_type));
    TRY(rlaif_gguf_set_u32(w, "general.file_type", ftype));
    TRY(rlaif_gguf_set_u32(w, "general.quantization_version", 2));
    TRY(rlaif_gguf_set_u32(w, KEY("vocab_size"), (uint32_t)c->vocab_size));
    TRY(rlaif_gguf_set_u32(w, KEY("context_length"), (uint32_t)c->max_seq));
    TRY(rlaif_gguf_set_u32(w, KEY("embedding_length"), (uint32_t)c->d_model));
    TRY(rlaif_gguf_set_u32(w, KEY("block_count"), (uint32_t)c->n_layer));
    TRY(rlaif_gguf_set_u32(w, KEY("feed_forward_length"), (uint32_t)c->d_ff));
    TRY(rlaif_gguf_set_u32(w, KEY("attention.head_count"), (uint32_t)c->n_head));
    TRY(rlaif_gguf_set_u32(w, KEY("attention.head_count_kv"), (uint32_t)c->n_kv_head));
    if (gpt2) {
        TRY(rlaif_gguf_set_f32(w, KEY("attention.layer_norm_epsilon"), c->norm_eps));
    } else {
        TRY(rlaif_gguf_set_f32(w, KEY("attention.layer_norm_rms_epsilon"), c->norm_eps));
        TRY(rlaif_gguf_set_f32(w, KEY("rope.freq_base"), c->rope_theta));
        TRY(rlaif_gguf_set_u32(w, KEY("rope.dimension_count"), (uint32_t)c->head_dim));
        if (c->head_dim * c->n_head != c->d_model) {
            TRY(rlaif_gguf_set_u32(w, KEY("attention.key_length"), (uint32_t)c->head_dim));
            TRY(rlaif_gguf_set_u32(w, KEY("attention.value_length"), (uint32_t)c->head_dim));
        }
        if (c->rope_type == RLAIF_ROPE_LINEAR) {
            TRY(rlaif_gguf_set_str(w, KEY("rope.scaling.type"), "linear"));
            TRY(rlaif_gguf_set_f32(w, KEY("rope.scaling.factor"), c->rope_factor));
        } else if (c->rope_type == RLAIF_ROPE_LLAMA3) {
            TRY(rlaif_gguf_set_f32(w, "rlaif.rope.llama3.factor", c->rope_factor));
            TRY(rlaif_gguf_set_f32(w, "rlaif.rope.llama3.low_freq_factor", c->rope_low_freq_factor));
            TRY(rlaif_gguf_set_f32(w, "rlaif.rope.llama3.high_freq_factor", c->rope_high_freq_factor));
            TRY(rlaif_gguf_set_u32(w, "rlaif.rope.llama3.original_context_length", (uint32_t)c->rope_orig_max));
        }
    }
    TRY(rlaif_bpe_gguf_put(tok, w, c->vocab_size, o->pre, c->bos_id, c->eos_id, c->pad_id));
    TRY(rlaif_model_hf_entries(m, &e, &n));
    for (int i = 0; i < n; i++) {
        if (!gguf_name(e[i].name, gg, sizeof gg)) {
            st = rlaif_fail(RLAIF_EINVAL, "model.save_gguf: tensor '%s' has no GGUF name", e[i].name);
            goto done;
        }
        int64_t rows, cols;
        entry_dims(&e[i], &rows, &cols);
        float *src = tensor_base(m, e[i].ptensor) + e[i].offset;
        int heads = permute_heads(c, llama_arch, gg), owned = 0;
        if (heads) {
            float *p = malloc(sizeof(float) * (size_t)(rows * cols));
            if (p == NULL) {
                st = rlaif_fail(RLAIF_ENOMEM, "model.save_gguf: out of memory");
                goto done;
            }
            if (e[i].ndim == 1) permute_rows(p, src, heads, c->head_dim, 1, 1);
            else permute_rows(p, src, heads, c->head_dim, cols, 1);
            src = p, owned = 1;
        }
        rlaif_ggml_type t = o->type;
        if (e[i].ndim == 1 || ends_with(gg, "_norm.weight") || !ends_with(gg, ".weight") ||
            strcmp(gg, "position_embd.weight") == 0)
            t = RLAIF_GGML_F32;
        if (t == RLAIF_GGML_Q8_0 && cols % 32 != 0) t = RLAIF_GGML_F16;
        int64_t ne[2] = {cols, rows};
        TRY(rlaif_gguf_add_tensor(w, gg, t, e[i].ndim, ne, src, owned));
    }
    if (c->rope_type == RLAIF_ROPE_LLAMA3) {
        float *ff = malloc(sizeof(float) * (size_t)(c->head_dim / 2));
        if (ff == NULL) {
            st = rlaif_fail(RLAIF_ENOMEM, "model.save_gguf: out of memory");
            goto done;
        }
        llama3_factors(c, ff);
        int64_t ne[1] = {c->head_dim / 2};
        TRY(rlaif_gguf_add_tensor(w, "rope_freqs.weight", RLAIF_GGML_F32, 1, ne, ff, 1));
    }
    st = rlaif_gguf_write(w, path);
#undef TRY
#undef KEY
done:
    if (st != RLAIF_OK && strncmp(rlaif_last_error(), "model.", 6) != 0) {
        char why[400];
        snprintf(why, sizeof why, "%s", rlaif_last_error());
        rlaif_fail(st, "model.save_gguf: %s", why);
    }
    free(e);
    rlaif_gguf_writer_free(w);
    return st;
}

/* ---- load ---- */

/* Recover Llama 3 RoPE scaling parameters from rope_freqs: the factor is the
 * largest divisor; the ramp between 1 and factor fixes the rest (low_freq_factor
 * taken as 1). 1 when the parameters reproduce every divisor. */
static int fit_llama3(rlaif_model_config *c, const float *ff, int half) {
    float fmax = 1;
    for (int i = 0; i < half; i++) fmax = fmaxf(fmax, ff[i]);
    c->rope_factor = fmax;
    if (fmax > 1) {
        /* 1/ff = (1-s)/factor + s with s = A/wavelen - B on the ramp */
        double x0 = 0, s0 = 0, x1 = 0, s1 = 0;
        int k = 0;
        for (int i = 0; i < half; i++) {
            if (!(ff[i] > 1.0001f && ff[i] < fmax * 0.9999f)) continue;
            double freq = 1.0 / pow((double)c->rope_theta, (double)(2 * i) / c->head_dim);
            double x = freq / (2 * M_PI), s = (1.0 / ff[i] - 1.0 / fmax) / (1.0 - 1.0 / fmax);
            if (k == 0) x0 = x, s0 = s;
            x1 = x, s1 = s, k++;
        }
        if (k >= 2 && x1 != x0) {
            double A = (s1 - s0) / (x1 - x0), B = A * x0 - s0;
            if (A > 0 && B > 0) {
                c->rope_low_freq_factor = 1.0f;
                c->rope_high_freq_factor = (float)(1 + 1 / B);
                c->rope_orig_max = (int)lround(A / B);
            }
        }
    }
    float *chk = malloc(sizeof(float) * (size_t)half);
    if (chk == NULL) return 0;
    llama3_factors(c, chk);
    int ok = 1;
    for (int i = 0; i < half; i++)
        if (fabsf(chk[i] - ff[i]) > 1e-4f * fmaxf(1.0f, ff[i])) ok = 0;
    free(chk);
    return ok;
}

static rlaif_status need_u32(const rlaif_gguf_file *f, const char *arch, const char *k, int *out) {
    char key[128];
    uint32_t v;
    snprintf(key, sizeof key, "%s.%s", arch, k);
    if (!rlaif_gguf_get_u32(f, key, &v) || v > (1u << 30))
        return rlaif_fail(RLAIF_EFORMAT, "model.load: %s: %s is missing or not a (per-model) integer", f->path, key);
    *out = (int)v;
    return RLAIF_OK;
}

rlaif_status rlaif_model_load_gguf(rlaif_model **out, const char *path, rlaif_head head) {
    *out = NULL;
    rlaif_gguf_file *f = NULL;
    rlaif_model *m = NULL;
    rlaif_hf_entry *e = NULL;
    float *tmp = NULL;
    int n = 0;
    char key[128], gg[96];
    rlaif_status st = rlaif_gguf_open(path, &f);
    if (st != RLAIF_OK) {
        char why[400];
        snprintf(why, sizeof why, "%s", rlaif_last_error());
        return rlaif_fail(st, "model.load: %s", why);
    }
    const char *a;
    size_t al;
    char arch[16];
    if (!rlaif_gguf_get_str(f, "general.architecture", &a, &al) || al == 0 || al >= sizeof arch) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s has no general.architecture", path);
        goto done;
    }
    memcpy(arch, a, al);
    arch[al] = '\0';
    rlaif_model_config c;
    int gpt2 = strcmp(arch, "gpt2") == 0, qwen2 = strcmp(arch, "qwen2") == 0, llama = strcmp(arch, "llama") == 0;
    if (!gpt2 && !qwen2 && !llama) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: architecture '%s' is not supported (gpt2, llama, qwen2)", path,
                        arch);
        goto done;
    }
    rlaif_model_config_defaults(&c, gpt2 ? RLAIF_ARCH_GPT2 : RLAIF_ARCH_LLAMA);
    if (!gpt2) snprintf(c.model_type, sizeof c.model_type, "%s", arch);
#define TRY(call) do { if ((st = (call)) != RLAIF_OK) goto done; } while (0)
    TRY(need_u32(f, arch, "block_count", &c.n_layer));
    TRY(need_u32(f, arch, "embedding_length", &c.d_model));
    TRY(need_u32(f, arch, "feed_forward_length", &c.d_ff));
    TRY(need_u32(f, arch, "attention.head_count", &c.n_head));
    TRY(need_u32(f, arch, "context_length", &c.max_seq));
    uint32_t v;
    snprintf(key, sizeof key, "%s.attention.head_count_kv", arch);
    c.n_kv_head = rlaif_gguf_get_u32(f, key, &v) && v <= (1u << 20) ? (int)v : c.n_head;
    snprintf(key, sizeof key, "%s.attention.key_length", arch);
    c.head_dim = rlaif_gguf_get_u32(f, key, &v) && v <= (1u << 20) ? (int)v : 0;
    snprintf(key, sizeof key, gpt2 ? "%s.attention.layer_norm_epsilon" : "%s.attention.layer_norm_rms_epsilon", arch);
    if (!rlaif_gguf_get_f32(f, key, &c.norm_eps) || !(c.norm_eps > 0 && c.norm_eps < 1)) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: %s is missing or out of range", path, key);
        goto done;
    }
    if (!gpt2) {
        snprintf(key, sizeof key, "%s.rope.freq_base", arch);
        if (!rlaif_gguf_get_f32(f, key, &c.rope_theta)) c.rope_theta = 10000.0f;
        const char *rt;
        size_t rl;
        snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
        if (rlaif_gguf_get_str(f, key, &rt, &rl) && !(rl == 4 && memcmp(rt, "none", 4) == 0)) {
            if (!(rl == 6 && memcmp(rt, "linear", 6) == 0)) {
                st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: rope scaling '%.*s' is not supported (linear, Llama 3)",
                                path, (int)(rl > 32 ? 32 : rl), rt);
                goto done;
            }
            c.rope_type = RLAIF_ROPE_LINEAR;
            snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
            if (!rlaif_gguf_get_f32(f, key, &c.rope_factor)) c.rope_factor = 1.0f;
        }
        uint32_t rd;
        snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
        int hd = c.head_dim ? c.head_dim : (c.n_head ? c.d_model / c.n_head : 0);
        if (rlaif_gguf_get_u32(f, key, &rd) && (int)rd != hd) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: partial RoPE (%u of %d dims) is not supported", path, rd, hd);
            goto done;
        }
    }
    const rlaif_gguf_tensor *emb = rlaif_gguf_find_tensor(f, "token_embd.weight");
    if (emb == NULL || emb->ndim != 2 || emb->ne[0] != c.d_model || emb->ne[1] < 1 || emb->ne[1] > (1 << 24)) {
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: token_embd.weight is missing or not [%d, vocab]", path, c.d_model);
        goto done;
    }
    c.vocab_size = (int)emb->ne[1];
    c.tie_embeddings = rlaif_gguf_find_tensor(f, "output.weight") == NULL;
    if (gpt2) c.qkv_bias = c.o_bias = 1;
    else if (qwen2) c.qkv_bias = 1, c.o_bias = 0;
    else {
        c.qkv_bias = rlaif_gguf_find_tensor(f, "blk.0.attn_q.bias") != NULL;
        c.o_bias = rlaif_gguf_find_tensor(f, "blk.0.attn_output.bias") != NULL;
    }
    c.bos_id = rlaif_gguf_get_u32(f, "tokenizer.ggml.bos_token_id", &v) && v < (uint32_t)c.vocab_size ? (int)v : -1;
    c.eos_id = rlaif_gguf_get_u32(f, "tokenizer.ggml.eos_token_id", &v) && v < (uint32_t)c.vocab_size ? (int)v : -1;
    c.pad_id = rlaif_gguf_get_u32(f, "tokenizer.ggml.padding_token_id", &v) && v < (uint32_t)c.vocab_size ? (int)v : -1;
    c.head = head;
    const rlaif_gguf_tensor *rf = rlaif_gguf_find_tensor(f, "rope_freqs.weight");
    if (rf) {
        if (!llama) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: rope_freqs.weight is only supported for llama", path);
            goto done;
        }
        c.rope_type = RLAIF_ROPE_LLAMA3;
    }
    if ((st = rlaif_model_config_check(&c)) != RLAIF_OK) {
        char why[300];
        snprintf(why, sizeof why, "%s", rlaif_last_error());
        st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: %s", path, why);
        goto done;
    }
    if (rf) {
        int half = c.head_dim / 2;
        if (rf->numel != half) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: rope_freqs.weight has %" PRId64 " values, expected %d", path,
                            rf->numel, half);
            goto done;
        }
        float ff[4096];
        if (half > 4096 || rlaif_gguf_tensor_f32(f, rf, ff) != RLAIF_OK) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: rope_freqs.weight cannot be read", path);
            goto done;
        }
        float fa, lo, hi;
        if (rlaif_gguf_get_f32(f, "rlaif.rope.llama3.factor", &fa) &&
            rlaif_gguf_get_f32(f, "rlaif.rope.llama3.low_freq_factor", &lo) &&
            rlaif_gguf_get_f32(f, "rlaif.rope.llama3.high_freq_factor", &hi) &&
            rlaif_gguf_get_u32(f, "rlaif.rope.llama3.original_context_length", &v) && v < (1u << 30)) {
            c.rope_factor = fa, c.rope_low_freq_factor = lo, c.rope_high_freq_factor = hi, c.rope_orig_max = (int)v;
        } else if (!fit_llama3(&c, ff, half)) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: rope_freqs.weight is not Llama 3 RoPE scaling", path);
            goto done;
        }
    }
    TRY(rlaif_model_new(&m, &c, 0));
    TRY(rlaif_model_hf_entries(m, &e, &n));
    for (int i = 0; i < n; i++) {
        float *dst = tensor_base(m, e[i].ptensor) + e[i].offset;
        if (e[i].ptensor == P_SCORE) {   /* a fresh reward head on a language model */
            memset(dst, 0, sizeof(float) * (size_t)c.d_model);
            continue;
        }
        if (!gguf_name(e[i].name, gg, sizeof gg)) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: tensor '%s' has no GGUF name", e[i].name);
            goto done;
        }
        const rlaif_gguf_tensor *t = rlaif_gguf_find_tensor(f, gg);
        int64_t rows, cols;
        entry_dims(&e[i], &rows, &cols);
        if (t == NULL) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: tensor '%s' is missing", path, gg);
            goto done;
        }
        if ((e[i].ndim == 1 && (t->ndim != 1 || t->ne[0] != cols)) ||
            (e[i].ndim == 2 && (t->ndim != 2 || t->ne[0] != cols || t->ne[1] != rows))) {
            st = rlaif_fail(RLAIF_EFORMAT, "model.load: %s: tensor '%s' has shape [%" PRId64 ", %" PRId64 "], "
                            "expected [%" PRId64 ", %" PRId64 "]", path, gg, t->ne[0], t->ne[1], cols,
                            e[i].ndim == 1 ? (int64_t)1 : rows);
            goto done;
        }
        int heads = permute_heads(&c, llama, gg);
        if (heads) {
            float *p = realloc(tmp, sizeof(float) * (size_t)(rows * cols));
            if (p == NULL) {
                st = rlaif_fail(RLAIF_ENOMEM, "model.load: out of memory");
                goto done;
            }
            tmp = p;
            TRY(rlaif_gguf_tensor_f32(f, t, tmp));
            permute_rows(dst, tmp, heads, c.head_dim, e[i].ndim == 1 ? 1 : cols, 0);
        } else {
            TRY(rlaif_gguf_tensor_f32(f, t, dst));
        }
    }
#undef TRY
done:
    if (st != RLAIF_OK && strncmp(rlaif_last_error(), "model.", 6) != 0) {
        char why[400];
        snprintf(why, sizeof why, "%s", rlaif_last_error());
        rlaif_fail(st, "model.load: %s", why);
    }
    free(tmp);
    free(e);
    rlaif_gguf_close(f);
    if (st != RLAIF_OK) rlaif_model_free(m);
    else *out = m;
    return st;
}
