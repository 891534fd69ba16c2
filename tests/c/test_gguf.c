/* tests/c/test_gguf.c -- the GGUF format (gguf.c), the model and tokenizer
 * mappings (gguf_model.c, bpe_gguf.c) under ASan+UBSan:
 *   - tests/fixtures/gguf/ref.gguf, assembled by numpy/struct in
 *     scripts/gen_gguf_fixtures.py: every metadata type, a non-default
 *     alignment, and numpy's F16 / BF16 / Q8_0 encodings of one tensor, which
 *     rlaif's encoders must reproduce byte for byte and its reader must decode;
 *   - writer -> reader round trips of models (GPT-2, Llama with Q/K permutation,
 *     Qwen2, tied and untied, Llama 3 RoPE) and of the tokenizer;
 *   - every truncation and thousands of byte mutations of valid files: each is
 *     an error or a file whose tensors stay in bounds, never a crash. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "gguf.h"

static unsigned char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)len + 1);
    if (b && fread(b, 1, (size_t)len, f) != (size_t)len) free(b), b = NULL;
    fclose(f);
    *n = (size_t)len;
    return b;
}

/* ---- ref.gguf: an independent writer ---- */

static void test_reference(void) {
    rlaif_gguf_file *f = NULL;
    CHECK_OK(rlaif_gguf_open("tests/fixtures/gguf/ref.gguf", &f));
    if (!f) return;
    CHECK(f->version == 3 && f->alignment == 64 && f->n_tensors == 6);
    uint32_t u;
    float x;
    int b;
    const char *s;
    size_t n;
    CHECK(rlaif_gguf_get_u32(f, "t.u8", &u) && u == 200);
    CHECK(rlaif_gguf_get_u32(f, "t.u16", &u) && u == 60000);
    CHECK(rlaif_gguf_get_u32(f, "t.u32", &u) && u == 4000000000u);
    CHECK(!rlaif_gguf_get_u32(f, "t.i8", &u));      /* negative: not a u32 */
    CHECK(!rlaif_gguf_get_u32(f, "t.u64", &u));     /* too large */
    CHECK(rlaif_gguf_get_f32(f, "t.f32", &x) && x == 0.25f);
    CHECK(rlaif_gguf_get_f32(f, "t.f64", &x) && x == (float)1e-300);
    CHECK(rlaif_gguf_get_bool(f, "t.bool", &b) && b == 1);
    CHECK(rlaif_gguf_get_str(f, "t.str", &s, &n) && n == 6 && memcmp(s, "h\xc3\xa9llo", 6) == 0);
    CHECK(!rlaif_gguf_get_str(f, "t.u8", &s, &n));
    CHECK(rlaif_gguf_find(f, "nope") == NULL);
    const rlaif_gguf_kv *arr = rlaif_gguf_find(f, "t.arr_str");
    CHECK(arr && arr->type == RLAIF_GGUF_ARRAY && arr->arr_type == RLAIF_GGUF_STRING && arr->n == 3);
    if (arr) {
        const unsigned char *p = arr->data, *end = arr->data + arr->size;
        CHECK(rlaif_gguf_next_str(&p, end, &s, &n) && n == 1 && s[0] == 'a');
        CHECK(rlaif_gguf_next_str(&p, end, &s, &n) && n == 0);
        CHECK(rlaif_gguf_next_str(&p, end, &s, &n) && n == 4);
        CHECK(!rlaif_gguf_next_str(&p, end, &s, &n));
    }
    const rlaif_gguf_tensor *src = rlaif_gguf_find_tensor(f, "src");
    CHECK(src && src->ndim == 2 && src->ne[0] == 64 && src->ne[1] == 3 && src->type == RLAIF_GGML_F32);
    if (!src) {
        rlaif_gguf_close(f);
        return;
    }
    float v[192], w[192];
    CHECK_OK(rlaif_gguf_tensor_f32(f, src, v));
    CHECK(v[0] == 0.5f && v[3] == 65504.0f);
    unsigned char enc[512];
    static const struct { const char *name; rlaif_ggml_type type; } encs[] = {
        {"f16", RLAIF_GGML_F16}, {"bf16", RLAIF_GGML_BF16}, {"q8_0", RLAIF_GGML_Q8_0}};
    for (int k = 0; k < 3; k++) {
        const rlaif_gguf_tensor *t = rlaif_gguf_find_tensor(f, encs[k].name);
        CHECK(t != NULL);
        if (!t) continue;
        /* our encoder, row by row, equals numpy's bytes */
        size_t rb = (size_t)rlaif_ggml_row_bytes(encs[k].type, 64);
        CHECK(t->nbytes == 3 * rb);
        int same = 1;
        for (int r = 0; r < 3; r++) {
            for (int i = 0; i < 64; i++) {
                if (encs[k].type == RLAIF_GGML_F16) {
                    uint16_t h = rlaif_f32_to_f16(v[r * 64 + i]);
                    enc[2 * i] = (unsigned char)h, enc[2 * i + 1] = (unsigned char)(h >> 8);
                } else if (encs[k].type == RLAIF_GGML_BF16) {
                    uint16_t h = rlaif_f32_to_bf16(v[r * 64 + i]);
                    enc[2 * i] = (unsigned char)h, enc[2 * i + 1] = (unsigned char)(h >> 8);
                }
            }
            if (encs[k].type == RLAIF_GGML_Q8_0) rlaif_quantize_q8_0(v + r * 64, 64, enc);
            if (memcmp(enc, t->data + r * rb, rb) != 0) {
                same = 0;
                for (size_t i = 0; i < rb; i++)
                    if (enc[i] != t->data[r * rb + i]) {
                        fprintf(stderr, "%s row %d byte %zu: ours %u, numpy %u\n", encs[k].name, r, i, enc[i],
                                t->data[r * rb + i]);
                        break;
                    }
            }
        }
        CHECK(same);
        /* and decodes close to the source: F16/BF16 to their precision, Q8_0 to half
         * a quantization step of its block (amax/127) plus the F16 rounding of the scale */
        CHECK_OK(rlaif_gguf_tensor_f32(f, t, w));
        int bad_at = -1;
        for (int i = 0; i < 192 && bad_at < 0; i++) {
            if (isinf(w[i])) continue;   /* 70000 overflows F16 */
            double tol;
            if (encs[k].type == RLAIF_GGML_Q8_0) {
                double amax = 0;
                for (int j = i / 32 * 32; j < i / 32 * 32 + 32; j++) amax = fmax(amax, fabs(v[j]));
                tol = amax / 127 * 0.5 + amax * 1e-3 + 1e-12;
            } else {
                tol = fabs(v[i]) * (encs[k].type == RLAIF_GGML_BF16 ? 4e-3 : 5e-4) + 6e-8;
            }
            if (fabs(w[i] - v[i]) > tol) bad_at = i;
        }
        if (bad_at >= 0) fprintf(stderr, "%s[%d] = %g, source %g\n", encs[k].name, bad_at, w[bad_at], v[bad_at]);
        CHECK(bad_at < 0);
    }
    CHECK(isinf(rlaif_f16_to_f32(rlaif_f32_to_f16(70000.0f))));
    CHECK(rlaif_f16_to_f32(rlaif_f32_to_f16(6e-8f)) > 0);   /* subnormal halves */
    /* exact ties round to even, in the normal and the subnormal range; the halves are
     * numpy's: np.float32(x).astype(np.float16).view(np.uint16) */
    static const struct { float x; uint16_t h; } ties[] = {
        {1.00048828125f, 0x3c00}, {1.00146484375f, 0x3c02}, {2049.0f, 0x6800}, {2051.0f, 0x6802},
        {-2049.0f, 0xe800}, {65519.0f, 0x7bff}, {65520.0f, 0x7c00}, {8.940696716308594e-08f, 0x0002},
        {1.4901161193847656e-07f, 0x0002}, {1.0004892349243164f, 0x3c01}};
    for (size_t i = 0; i < sizeof ties / sizeof ties[0]; i++) {
        uint16_t h = rlaif_f32_to_f16(ties[i].x);
        if (h != ties[i].h) fprintf(stderr, "f16(%.9g) = 0x%04x, numpy 0x%04x\n", ties[i].x, h, ties[i].h);
        CHECK(h == ties[i].h);
    }
    const rlaif_gguf_tensor *f64 = rlaif_gguf_find_tensor(f, "f64");
    if (f64) {
        CHECK_OK(rlaif_gguf_tensor_f32(f, f64, w));
        CHECK(memcmp(v, w, sizeof v) == 0);
    }
    const rlaif_gguf_tensor *q4 = rlaif_gguf_find_tensor(f, "q4_k");
    CHECK(q4 && q4->nbytes == 144);
    if (q4) CHECK_FAIL(rlaif_gguf_tensor_f32(f, q4, w), RLAIF_EFORMAT, "type Q4_K");
    rlaif_gguf_close(f);
}

/* ---- crafted files ---- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    return rng_state;
}

/* Open bytes; when they parse, convert every tensor of a readable type. */
static void poke(const unsigned char *buf, size_t n, int *opened) {
    rlaif_gguf_file *f = NULL;
    if (rlaif_gguf_open_buffer(buf, n, "crafted", &f) != RLAIF_OK) {
        CHECK(f == NULL && rlaif_last_error()[0] != '\0');
        return;
    }
    (*opened)++;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const rlaif_gguf_tensor *t = &f->tensors[i];
        if (t->numel > (1 << 20)) continue;
        float *dst = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        if (dst) rlaif_gguf_tensor_f32(f, t, dst);
        free(dst);
    }
    for (int64_t i = 0; i < f->n_kv; i++) {
        const rlaif_gguf_kv *kv = &f->kv[i];
        if (kv->type == RLAIF_GGUF_ARRAY && kv->arr_type == RLAIF_GGUF_STRING) {
            const unsigned char *p = kv->data;
            const char *s;
            size_t m;
            while (rlaif_gguf_next_str(&p, kv->data + kv->size, &s, &m)) {}
        }
    }
    rlaif_bpe *b = NULL;
    if (rlaif_bpe_from_gguf(&b, f) == RLAIF_OK) rlaif_bpe_free(b);
    rlaif_gguf_close(f);
}

/* Truncations and mutations of the file at path, within its first `span` bytes. */
static void test_crafted(const char *path, size_t span, int mutations) {
    size_t n = 0;
    unsigned char *orig = slurp(path, &n);
    CHECK(orig != NULL);
    if (!orig) return;
    unsigned char *buf = malloc(n);
    int opened = 0;
    poke(orig, n, &opened);
    CHECK(opened == 1);   /* the file itself is fine */
    if (span > n) span = n;
    /* every truncation of the first span bytes, and a sample of the rest */
    for (size_t len = 0; len < n; len += len < span ? 1 : 997) {
        memcpy(buf, orig, len);
        poke(buf, len, &opened);
    }
    /* mutations: a few random bytes, or a count/length field set to something huge */
    for (int k = 0; k < mutations; k++) {
        memcpy(buf, orig, n);
        int edits = 1 + (int)(rnd() % 4);
        for (int e = 0; e < edits; e++) {
            size_t at = (size_t)(rnd() % span);
            if (rnd() % 4 == 0 && at + 8 <= n) {
                uint64_t big = rnd() % 2 ? UINT64_MAX - rnd() % 16 : (uint64_t)1 << (rnd() % 64);
                memcpy(buf + at, &big, 8);
            } else {
                buf[at] = (unsigned char)rnd();
            }
        }
        poke(buf, n, &opened);
    }
    free(buf);
    free(orig);
}

/* ---- layout rules, one at a time: general.alignment, tensor offsets ---- */

typedef struct { unsigned char b[256]; size_t n; } gbuf;
static void g_bytes(gbuf *g, const void *p, size_t n) { memcpy(g->b + g->n, p, n), g->n += n; }
static void g_u32(gbuf *g, uint32_t v) { g_bytes(g, &v, 4); }   /* little-endian host (x86-64) */
static void g_u64(gbuf *g, uint64_t v) { g_bytes(g, &v, 8); }
static void g_str(gbuf *g, const char *s) { g_u64(g, strlen(s)), g_bytes(g, s, strlen(s)); }

/* GGUF v3: one u32 general.alignment (when align > 0) and F32 tensor "w" [4] at
 * `offset` in the data section, its values 1..4 there; `pad` aligns the section. */
static gbuf layout(uint32_t align, uint64_t offset, uint64_t pad) {
    gbuf g = {{0}, 0};
    g_bytes(&g, "GGUF", 4), g_u32(&g, 3), g_u64(&g, 1), g_u64(&g, align ? 1 : 0);
    if (align) g_str(&g, "general.alignment"), g_u32(&g, 4 /* u32 */), g_u32(&g, align);
    g_str(&g, "w"), g_u32(&g, 1), g_u64(&g, 4), g_u32(&g, 0 /* F32 */), g_u64(&g, offset);
    size_t data = (g.n + pad - 1) / pad * pad;
    memset(g.b + g.n, 0, data + offset - g.n), g.n = data + offset;
    const float v[4] = {1, 2, 3, 4};
    g_bytes(&g, v, sizeof v);
    return g;
}

static void test_layout(void) {
    rlaif_gguf_file *f = NULL;
    gbuf g = layout(64, 64, 64);   /* the data section and the tensor on 64-byte boundaries */
    CHECK_OK(rlaif_gguf_open_buffer(g.b, g.n, "layout", &f));
    if (f) {
        float w[4];
        CHECK(f->alignment == 64 && f->data_offset % 64 == 0 && f->tensors[0].offset == 64);
        CHECK_OK(rlaif_gguf_tensor_f32(f, &f->tensors[0], w));
        CHECK(w[0] == 1 && w[3] == 4);
        rlaif_gguf_close(f), f = NULL;
    }
    g = layout(0, 32, 32);         /* no key: the default 32 */
    CHECK_OK(rlaif_gguf_open_buffer(g.b, g.n, "layout", &f));
    rlaif_gguf_close(f), f = NULL;
    g = layout(48, 48, 48);
    CHECK_FAIL(rlaif_gguf_open_buffer(g.b, g.n, "layout", &f), RLAIF_EFORMAT, "general.alignment 48 is not a power of 2");
    g = layout(64, 4, 64);
    CHECK_FAIL(rlaif_gguf_open_buffer(g.b, g.n, "layout", &f), RLAIF_EFORMAT, "tensor 'w': offset 4 is not aligned to 64");
    g = layout(0, 16, 32);
    CHECK_FAIL(rlaif_gguf_open_buffer(g.b, g.n, "layout", &f), RLAIF_EFORMAT, "tensor 'w': offset 16 is not aligned to 32");
    CHECK(f == NULL);
}

/* ---- models ---- */

static rlaif_model *tiny(const char *arch, int tie, int seed) {
    rlaif_model_config c;
    rlaif_model_config_defaults(&c, strcmp(arch, "gpt2") == 0 ? RLAIF_ARCH_GPT2 : RLAIF_ARCH_LLAMA);
    if (strcmp(arch, "gpt2") != 0) snprintf(c.model_type, sizeof c.model_type, "%s", arch);
    c.vocab_size = 1000, c.n_layer = 2, c.n_head = 4, c.n_kv_head = strcmp(arch, "gpt2") ? 2 : 4;
    c.d_model = 32, c.d_ff = 64, c.max_seq = 64, c.tie_embeddings = tie, c.eos_id = 998;
    c.qkv_bias = strcmp(arch, "qwen2") == 0;
    rlaif_model *m = NULL;
    if (rlaif_model_config_check(&c) != RLAIF_OK || rlaif_model_new(&m, &c, (uint64_t)seed) != RLAIF_OK) return NULL;
    /* nonzero biases/norms so a misplaced tensor shows */
    for (size_t i = 0; i < m->num_params; i++) m->params_memory[i] += 0.001f * (float)(i % 7);
    return m;
}

static void roundtrip(rlaif_model *m, const rlaif_bpe *tok, rlaif_ggml_type type, double tol, const char *what) {
    char path[] = "/tmp/rlaif_test_gguf_XXXXXX.gguf";
    int fd = mkstemps(path, 5);
    if (fd >= 0) close(fd);
    rlaif_gguf_save_opts o = {type, "t", NULL};
    CHECK_OK(rlaif_model_save_gguf(m, path, tok, &o));
    rlaif_model *b = NULL;
    CHECK_OK(rlaif_model_load_gguf(&b, path, RLAIF_HEAD_LM));
    if (b) {
        CHECK(b->num_params == m->num_params);
        CHECK(b->cfg.tie_embeddings == m->cfg.tie_embeddings && b->cfg.n_kv_head == m->cfg.n_kv_head);
        CHECK(b->cfg.rope_type == m->cfg.rope_type && b->cfg.eos_id == m->cfg.eos_id);
        double worst = 0;
        for (size_t i = 0; i < m->num_params && b->num_params == m->num_params; i++) {
            double d = fabs(b->params_memory[i] - m->params_memory[i]);
            if (d > worst) worst = d;
        }
        if (worst > tol) fprintf(stderr, "%s: max difference %g\n", what, worst);
        CHECK(worst <= tol);
        if (m->cfg.rope_type == RLAIF_ROPE_LLAMA3)
            CHECK(b->cfg.rope_orig_max == m->cfg.rope_orig_max && fabsf(b->cfg.rope_factor - m->cfg.rope_factor) < 1e-6f);
        /* the same logits */
        int32_t ids[6] = {5, 17, 300, 2, 999, 41};
        if (rlaif_model_forward(m, ids, NULL, 1, 6, 1) == RLAIF_OK && rlaif_model_forward(b, ids, NULL, 1, 6, 1) == RLAIF_OK &&
            tol == 0) {
            CHECK(memcmp(m->acts.logits, b->acts.logits, sizeof(float) * 6 * 1000) == 0);
        }
    }
    rlaif_model_free(b);
    /* a loader that reads the file through the generic entry point */
    CHECK_OK(rlaif_model_load(&b, path, RLAIF_HEAD_REWARD));
    if (b) CHECK(b->cfg.head == RLAIF_HEAD_REWARD && b->params.score[0] == 0.0f);
    rlaif_model_free(b);
    if (type == RLAIF_GGML_Q8_0) test_crafted(path, 1500, 600);   /* the header and the first tensors */
    unlink(path);
}

static void test_models(void) {
    rlaif_bpe *tok = NULL;
    CHECK_OK(rlaif_bpe_load(&tok, "tests/fixtures/tokenizer/trained.json", NULL));
    if (!tok) return;
    rlaif_model *m = tiny("llama", 0, 1);
    roundtrip(m, tok, RLAIF_GGML_F32, 0, "llama f32");
    roundtrip(m, tok, RLAIF_GGML_F16, 1e-3, "llama f16");
    roundtrip(m, tok, RLAIF_GGML_BF16, 1e-2, "llama bf16");
    roundtrip(m, tok, RLAIF_GGML_Q8_0, 2e-3, "llama q8_0");
    m->cfg.rope_type = RLAIF_ROPE_LLAMA3;
    m->cfg.rope_factor = 8, m->cfg.rope_low_freq_factor = 1, m->cfg.rope_high_freq_factor = 4, m->cfg.rope_orig_max = 16;
    roundtrip(m, tok, RLAIF_GGML_F32, 0, "llama3 rope");
    rlaif_model_free(m);
    m = tiny("gpt2", 1, 2);
    roundtrip(m, tok, RLAIF_GGML_F32, 0, "gpt2");
    rlaif_model_free(m);
    m = tiny("qwen2", 1, 3);
    roundtrip(m, tok, RLAIF_GGML_F32, 0, "qwen2");
    /* what cannot be written */
    CHECK_FAIL(rlaif_model_save_gguf(m, "/tmp/x.gguf", NULL, NULL), RLAIF_EINVAL, "tokenizer is required");
    m->cfg.vocab_size = 500;   /* (only the check reads it) */
    CHECK_FAIL(rlaif_model_save_gguf(m, "/tmp/x.gguf", tok, NULL), RLAIF_EINVAL, "the tokenizer has 1000 tokens");
    rlaif_model_free(m);
    m = tiny("llama", 0, 4);
    m->cfg.head = RLAIF_HEAD_REWARD;
    CHECK_FAIL(rlaif_model_save_gguf(m, "/tmp/x.gguf", tok, NULL), RLAIF_EINVAL, "reward model");
    rlaif_model_free(m);
    CHECK(access("/tmp/x.gguf", F_OK) != 0);
    /* not a GGUF, a missing file */
    rlaif_model *b = NULL;
    CHECK_FAIL(rlaif_model_load(&b, "tests/fixtures/gguf/ref.gguf", RLAIF_HEAD_LM), RLAIF_EFORMAT,
               "architecture 'test' is not supported");
    CHECK_FAIL(rlaif_model_load(&b, "/nonexistent/m.gguf", RLAIF_HEAD_LM), RLAIF_EIO, "m.gguf");
    rlaif_bpe_free(tok);
}

/* ---- tokenizers ---- */

static void test_tokenizer(void) {
    rlaif_bpe *a = NULL, *b = NULL;
    CHECK_OK(rlaif_bpe_load(&a, "tests/fixtures/tokenizer/trained.json", NULL));
    if (!a) return;
    char path[] = "/tmp/rlaif_test_tok_XXXXXX.gguf";
    int fd = mkstemps(path, 5);
    if (fd >= 0) close(fd);
    CHECK_OK(rlaif_bpe_save_gguf(a, path, NULL));
    CHECK_OK(rlaif_bpe_load_gguf(&b, path));
    static const char *texts[] = {"Hello world! It's 5 o'clock somewhere, isn't it?", "  two  spaces\n\n\ttab",
                                  "<|endoftext|> and caf\xc3\xa9 \xe2\x9c\x93 1234567", ""};
    rlaif_bpe_encode_opts all = {RLAIF_BPE_ALLOW_ALL_SPECIAL, NULL, 0};
    for (int i = 0; b && i < 4; i++) {
        for (int sp = 0; sp < 2; sp++) {
            rlaif_bpe_ids x = {0}, y = {0};
            CHECK_OK(rlaif_bpe_encode(a, texts[i], strlen(texts[i]), sp ? &all : NULL, &x));
            CHECK_OK(rlaif_bpe_encode(b, texts[i], strlen(texts[i]), sp ? &all : NULL, &y));
            CHECK(x.n == y.n && (x.n == 0 || memcmp(x.ids, y.ids, x.n * sizeof *x.ids) == 0));
            rlaif_bpe_ids_free(&x);
            rlaif_bpe_ids_free(&y);
        }
    }
    if (b) CHECK(rlaif_bpe_vocab_size(b) == rlaif_bpe_vocab_size(a) && rlaif_bpe_is_special(b, 998));
    rlaif_gguf_file *f = NULL;
    CHECK_OK(rlaif_gguf_open(path, &f));
    if (f) {
        const char *s;
        size_t n;
        CHECK(rlaif_gguf_get_str(f, "tokenizer.ggml.pre", &s, &n) && n == 4 && memcmp(s, "dbrx", 4) == 0);
        const rlaif_gguf_kv *tk = rlaif_gguf_find(f, "tokenizer.ggml.tokens");
        CHECK(tk && tk->n == 1000);
        rlaif_gguf_close(f);
    }
    test_crafted(path, 600, 400);   /* the tokenizer parser on mutated vocabularies */
    rlaif_bpe_free(b);
    unlink(path);
    rlaif_bpe_free(a);
}

int main(void) {
    test_reference();
    test_layout();
    test_crafted("tests/fixtures/gguf/ref.gguf", 4352, 3000);
    test_models();
    test_tokenizer();
    return check_report("test_gguf");
}
