/* src/core/gguf.c -- the GGUF v3 format: value encoders, the writer, and the
 * checked reader (see gguf.h for the layout and the contract).
 *
 * The reader never trusts a count or a length: each read is bounded by the end
 * of the mapped file, counts are bounded by what the remaining bytes could hold
 * before anything is allocated, tensor shapes are checked for overflow and
 * block alignment, and every tensor's byte range must lie in the data section.
 * Not here: which keys and tensor names a model uses (gguf_model.c), the
 * tokenizer keys (bpe_gguf.c). */
#include "gguf.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- ggml types ---- */

typedef struct { uint32_t type; const char *name; int block; int bytes; } type_info;

/* Block size and bytes per block of every ggml type (gguf-py's GGML_QUANT_SIZES). */
static const type_info TYPES[] = {
    {0, "F32", 1, 4}, {1, "F16", 1, 2}, {2, "Q4_0", 32, 18}, {3, "Q4_1", 32, 20}, {6, "Q5_0", 32, 22},
    {7, "Q5_1", 32, 24}, {8, "Q8_0", 32, 34}, {9, "Q8_1", 32, 40}, {10, "Q2_K", 256, 84},
    {11, "Q3_K", 256, 110}, {12, "Q4_K", 256, 144}, {13, "Q5_K", 256, 176}, {14, "Q6_K", 256, 210},
    {15, "Q8_K", 256, 292}, {16, "IQ2_XXS", 256, 66}, {17, "IQ2_XS", 256, 74}, {18, "IQ3_XXS", 256, 98},
    {19, "IQ1_S", 256, 50}, {20, "IQ4_NL", 32, 18}, {21, "IQ3_S", 256, 110}, {22, "IQ2_S", 256, 82},
    {23, "IQ4_XS", 256, 136}, {24, "I8", 1, 1}, {25, "I16", 1, 2}, {26, "I32", 1, 4}, {27, "I64", 1, 8},
    {28, "F64", 1, 8}, {29, "IQ1_M", 256, 56}, {30, "BF16", 1, 2}, {34, "TQ1_0", 256, 54},
    {35, "TQ2_0", 256, 66}, {39, "MXFP4", 32, 17}, {40, "NVFP4", 64, 36}, {41, "Q1_0", 128, 18},
    {42, "Q2_0", 64, 18},
};

static const type_info *type_of(uint32_t t) {
    for (size_t i = 0; i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (TYPES[i].type == t) return &TYPES[i];
    return NULL;
}

const char *rlaif_ggml_type_name(uint32_t type) {
    static _Thread_local char buf[32];
    const type_info *ti = type_of(type);
    if (ti) return ti->name;
    snprintf(buf, sizeof buf, "type %u", type);
    return buf;
}

uint64_t rlaif_ggml_row_bytes(uint32_t type, int64_t n) {
    const type_info *ti = type_of(type);
    if (ti == NULL || n < 0 || n % ti->block != 0) return 0;
    return (uint64_t)(n / ti->block) * (uint64_t)ti->bytes;
}

/* ---- value encoders ---- */

uint16_t rlaif_f32_to_f16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000u, mant = x & 0x7fffffu;
    int exp = (int)((x >> 23) & 0xff);
    if (exp == 255) return (uint16_t)(sign | 0x7c00u | (mant ? 0x200u | (mant >> 13) : 0));   /* inf, nan */
    int e = exp - 127 + 15;
    if (e >= 31) return (uint16_t)(sign | 0x7c00u);   /* overflow: inf */
    if (e <= 0) {                                     /* a half subnormal (or zero) */
        if (e < -10) return (uint16_t)sign;
        uint32_t m = mant | 0x800000u;
        int shift = 14 - e;
        uint32_t r = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)e << 10) | (mant >> 13), rem = mant & 0x1fffu;
    if (rem > 0x1000u || (rem == 0x1000u && (r & 1))) r++;   /* a carry may round up to inf: correct */
    return (uint16_t)(sign | r);
}

float rlaif_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);
    } else if (man == 0) {
        bits = sign;
    } else {
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

uint16_t rlaif_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);   /* quiet nan */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* Round half away from zero, exactly as gguf-py's np_roundf and C's roundf. */
static float round_away(float v) {
    float a = fabsf(v), fl = floorf(a), b = fl + floorf(2.0f * (a - fl));
    return v < 0 ? -b : b;
}

void rlaif_quantize_q8_0(const float *x, int64_t n, uint8_t *out) {
    for (int64_t b = 0; b < n / 32; b++) {
        const float *xb = x + b * 32;
        float amax = 0;
        for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xb[j]));
        float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
        uint8_t *o = out + b * 34;
        uint16_t hd = rlaif_f32_to_f16(d);
        o[0] = (uint8_t)(hd & 0xff), o[1] = (uint8_t)(hd >> 8);
        for (int j = 0; j < 32; j++) o[2 + j] = (uint8_t)(int8_t)round_away(xb[j] * id);
    }
}

/* ---- writer ---- */

typedef struct wkv {
    char *key;
    uint32_t type;
    unsigned char *val;   /* the value's encoding after its type field */
    size_t len;
} wkv;

typedef struct wtensor {
    char name[RLAIF_GGUF_MAX_NAME];
    int ndim;
    int64_t ne[4];
    rlaif_ggml_type type;
    float *data;          /* (numel) float32 */
    int owned;
    uint64_t nbytes, offset;
} wtensor;

struct rlaif_gguf_writer {
    wkv *kv;
    size_t n_kv, cap_kv;
    wtensor *t;
    size_t n_t, cap_t;
};

rlaif_status rlaif_gguf_writer_new(rlaif_gguf_writer **out) {
    *out = calloc(1, sizeof **out);
    return *out ? RLAIF_OK : rlaif_fail(RLAIF_ENOMEM, "gguf: out of memory");
}

void rlaif_gguf_writer_free(rlaif_gguf_writer *w) {
    if (w == NULL) return;
    for (size_t i = 0; i < w->n_kv; i++) free(w->kv[i].key), free(w->kv[i].val);
    for (size_t i = 0; i < w->n_t; i++)
        if (w->t[i].owned) free(w->t[i].data);
    free(w->kv);
    free(w->t);
    free(w);
}

/* Store key -> (type, val); takes ownership of val. */
static rlaif_status put(rlaif_gguf_writer *w, const char *key, uint32_t type, unsigned char *val, size_t len) {
    if (val == NULL) return rlaif_fail(RLAIF_ENOMEM, "gguf: out of memory");
    for (size_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->kv[i].key, key) == 0) {
            free(w->kv[i].val);
            w->kv[i].type = type, w->kv[i].val = val, w->kv[i].len = len;
            return RLAIF_OK;
        }
    if (w->n_kv == w->cap_kv) {
        size_t cap = w->cap_kv ? 2 * w->cap_kv : 32;
        wkv *p = realloc(w->kv, cap * sizeof *p);
        if (p == NULL) {
            free(val);
            return rlaif_fail(RLAIF_ENOMEM, "gguf: out of memory");
        }
        w->kv = p, w->cap_kv = cap;
    }
    char *k = strdup(key);
    if (k == NULL) {
        free(val);
        return rlaif_fail(RLAIF_ENOMEM, "gguf: out of memory");
    }
    w->kv[w->n_kv++] = (wkv){k, type, val, len};
    return RLAIF_OK;
}

static unsigned char *bytes_of(const void *p, size_t n) {
    unsigned char *v = malloc(n ? n : 1);
    if (v && n) memcpy(v, p, n);
    return v;
}

static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

rlaif_status rlaif_gguf_set_str(rlaif_gguf_writer *w, const char *key, const char *value) {
    size_t n = strlen(value);
    unsigned char *v = malloc(8 + n);
    if (v) put_u64(v, n), memcpy(v + 8, value, n);
    return put(w, key, RLAIF_GGUF_STRING, v, 8 + n);
}

rlaif_status rlaif_gguf_set_u32(rlaif_gguf_writer *w, const char *key, uint32_t value) {
    unsigned char b[4];
    put_u32(b, value);
    return put(w, key, RLAIF_GGUF_U32, bytes_of(b, 4), 4);
}

rlaif_status rlaif_gguf_set_i32(rlaif_gguf_writer *w, const char *key, int32_t value) {
    unsigned char b[4];
    put_u32(b, (uint32_t)value);
    return put(w, key, RLAIF_GGUF_I32, bytes_of(b, 4), 4);
}

rlaif_status rlaif_gguf_set_f32(rlaif_gguf_writer *w, const char *key, float value) {
    uint32_t x;
    memcpy(&x, &value, 4);
    unsigned char b[4];
    put_u32(b, x);
    return put(w, key, RLAIF_GGUF_F32, bytes_of(b, 4), 4);
}

rlaif_status rlaif_gguf_set_bool(rlaif_gguf_writer *w, const char *key, int value) {
    unsigned char b = value ? 1 : 0;
    return put(w, key, RLAIF_GGUF_BOOL, bytes_of(&b, 1), 1);
}

rlaif_status rlaif_gguf_set_strs(rlaif_gguf_writer *w, const char *key, const char *const *values,
                                 const size_t *lens, size_t n) {
    size_t total = 12;
    for (size_t i = 0; i < n; i++) total += 8 + lens[i];
    unsigned char *v = malloc(total), *p = v;
    if (v) {
        put_u32(p, RLAIF_GGUF_STRING), put_u64(p + 4, n), p += 12;
        for (size_t i = 0; i < n; i++) {
            put_u64(p, lens[i]);
            if (lens[i]) memcpy(p + 8, values[i], lens[i]);
            p += 8 + lens[i];
        }
    }
    return put(w, key, RLAIF_GGUF_ARRAY, v, total);
}

rlaif_status rlaif_gguf_set_i32s(rlaif_gguf_writer *w, const char *key, const int32_t *values, size_t n) {
    unsigned char *v = malloc(12 + 4 * n);
    if (v) {
        put_u32(v, RLAIF_GGUF_I32), put_u64(v + 4, n);
        for (size_t i = 0; i < n; i++) put_u32(v + 12 + 4 * i, (uint32_t)values[i]);
    }
    return put(w, key, RLAIF_GGUF_ARRAY, v, 12 + 4 * n);
}

rlaif_status rlaif_gguf_add_tensor(rlaif_gguf_writer *w, const char *name, rlaif_ggml_type type, int ndim,
                                   const int64_t *ne, float *data, int owned) {
    rlaif_status st = RLAIF_OK;
    if (strlen(name) >= RLAIF_GGUF_MAX_NAME) st = rlaif_fail(RLAIF_EINVAL, "gguf: tensor name '%s' is too long", name);
    else if (ndim < 1 || ndim > 4) st = rlaif_fail(RLAIF_EINVAL, "gguf: tensor '%s' has %d dims", name, ndim);
    else if (type != RLAIF_GGML_F32 && type != RLAIF_GGML_F16 && type != RLAIF_GGML_BF16 && type != RLAIF_GGML_Q8_0)
        st = rlaif_fail(RLAIF_EINVAL, "gguf: tensor '%s': rlaif writes F32, F16, BF16 and Q8_0, not %s", name,
                        rlaif_ggml_type_name(type));
    for (size_t i = 0; st == RLAIF_OK && i < w->n_t; i++)
        if (strcmp(w->t[i].name, name) == 0) st = rlaif_fail(RLAIF_EINVAL, "gguf: duplicate tensor '%s'", name);
    wtensor t = {{0}, ndim, {1, 1, 1, 1}, type, data, owned, 0, 0};
    int64_t numel = 1;
    for (int d = 0; st == RLAIF_OK && d < ndim; d++) {
        if (ne[d] < 1 || ne[d] > ((int64_t)1 << 40) || numel > ((int64_t)1 << 40) / ne[d])
            st = rlaif_fail(RLAIF_EINVAL, "gguf: tensor '%s': bad dimension %" PRId64, name, ne[d]);
        else t.ne[d] = ne[d], numel *= ne[d];
    }
    if (st == RLAIF_OK && type == RLAIF_GGML_Q8_0 && t.ne[0] % 32 != 0)
        st = rlaif_fail(RLAIF_EINVAL, "gguf: tensor '%s': Q8_0 needs rows of a multiple of 32 (has %" PRId64 ")",
                        name, t.ne[0]);
    if (st == RLAIF_OK && w->n_t == w->cap_t) {
        size_t cap = w->cap_t ? 2 * w->cap_t : 64;
        wtensor *p = realloc(w->t, cap * sizeof *p);
        if (p == NULL) st = rlaif_fail(RLAIF_ENOMEM, "gguf: out of memory");
        else w->t = p, w->cap_t = cap;
    }
    if (st != RLAIF_OK) {
        if (owned) free(data);
        return st;
    }
    snprintf(t.name, sizeof t.name, "%s", name);
    t.nbytes = rlaif_ggml_row_bytes(type, t.ne[0]) * (uint64_t)(numel / t.ne[0]);
    w->t[w->n_t++] = t;
    return RLAIF_OK;
}

static uint64_t pad_to(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

static void w_str(FILE *f, const char *s, size_t n) {
    unsigned char b[8];
    put_u64(b, n);
    fwrite(b, 1, 8, f);
    fwrite(s, 1, n, f);
}

/* Encode one row of n floats as `type` into buf. */
static size_t encode_row(const float *x, int64_t n, rlaif_ggml_type type, unsigned char *buf) {
    switch (type) {
    case RLAIF_GGML_F32:
        memcpy(buf, x, (size_t)n * 4);   /* little-endian hosts only (as llama.cpp) */
        return (size_t)n * 4;
    case RLAIF_GGML_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = rlaif_f32_to_f16(x[i]);
            buf[2 * i] = (unsigned char)h, buf[2 * i + 1] = (unsigned char)(h >> 8);
        }
        return (size_t)n * 2;
    case RLAIF_GGML_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h = rlaif_f32_to_bf16(x[i]);
            buf[2 * i] = (unsigned char)h, buf[2 * i + 1] = (unsigned char)(h >> 8);
        }
        return (size_t)n * 2;
    case RLAIF_GGML_Q8_0:
        rlaif_quantize_q8_0(x, n, buf);
        return (size_t)(n / 32) * 34;
    default:
        return 0;
    }
}

static rlaif_status write_body(FILE *f, void *ud) {
    rlaif_gguf_writer *w = ud;
    unsigned char b[8];
    put_u32(b, RLAIF_GGUF_MAGIC), fwrite(b, 1, 4, f);
    put_u32(b, 3), fwrite(b, 1, 4, f);
    put_u64(b, w->n_t), fwrite(b, 1, 8, f);
    put_u64(b, w->n_kv), fwrite(b, 1, 8, f);
    uint64_t pos = 24;
    for (size_t i = 0; i < w->n_kv; i++) {
        size_t kl = strlen(w->kv[i].key);
        w_str(f, w->kv[i].key, kl);
        put_u32(b, w->kv[i].type), fwrite(b, 1, 4, f);
        fwrite(w->kv[i].val, 1, w->kv[i].len, f);
        pos += 8 + kl + 4 + w->kv[i].len;
    }
    uint64_t off = 0;
    for (size_t i = 0; i < w->n_t; i++) {
        wtensor *t = &w->t[i];
        size_t nl = strlen(t->name);
        w_str(f, t->name, nl);
        put_u32(b, (uint32_t)t->ndim), fwrite(b, 1, 4, f);
        for (int d = 0; d < t->ndim; d++) put_u64(b, (uint64_t)t->ne[d]), fwrite(b, 1, 8, f);
        put_u32(b, (uint32_t)t->type), fwrite(b, 1, 4, f);
        t->offset = off;
        put_u64(b, off), fwrite(b, 1, 8, f);
        off += pad_to(t->nbytes, RLAIF_GGUF_ALIGNMENT);
        pos += 8 + nl + 4 + 8 * (uint64_t)t->ndim + 4 + 8;
    }
    static const unsigned char zeros[RLAIF_GGUF_ALIGNMENT];
    fwrite(zeros, 1, (size_t)(pad_to(pos, RLAIF_GGUF_ALIGNMENT) - pos), f);
    unsigned char *row = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < w->n_t && !ferror(f); i++) {
        wtensor *t = &w->t[i];
        int64_t n = t->ne[0], rows = t->ne[1] * t->ne[2] * t->ne[3];
        size_t need = (size_t)n * 4;
        if (need > cap) {
            unsigned char *p = realloc(row, need);
            if (p == NULL) {
                free(row);
                return rlaif_fail(RLAIF_ENOMEM, "gguf: out of memory");
            }
            row = p, cap = need;
        }
        for (int64_t r = 0; r < rows; r++) fwrite(row, 1, encode_row(t->data + r * n, n, t->type, row), f);
        fwrite(zeros, 1, (size_t)(pad_to(t->nbytes, RLAIF_GGUF_ALIGNMENT) - t->nbytes), f);
    }
    free(row);
    return RLAIF_OK;
}

rlaif_status rlaif_gguf_write(rlaif_gguf_writer *w, const char *path) {
    return rlaif_write_file_atomic(path, "gguf: cannot write", 0666, write_body, w);
}

/* ---- reader ---- */

static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t get_u32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int scalar_size(uint32_t t) {
    switch (t) {
    case RLAIF_GGUF_U8: case RLAIF_GGUF_I8: case RLAIF_GGUF_BOOL: return 1;
    case RLAIF_GGUF_U16: case RLAIF_GGUF_I16: return 2;
    case RLAIF_GGUF_U32: case RLAIF_GGUF_I32: case RLAIF_GGUF_F32: return 4;
    case RLAIF_GGUF_U64: case RLAIF_GGUF_I64: case RLAIF_GGUF_F64: return 8;
    default: return 0;
    }
}

/* A bounded cursor. */
typedef struct cur { const unsigned char *p, *end; } cur;

static int rd_u32(cur *c, uint32_t *v) {
    if (c->end - c->p < 4) return 0;
    *v = get_u32(c->p), c->p += 4;
    return 1;
}
static int rd_u64(cur *c, uint64_t *v) {
    if (c->end - c->p < 8) return 0;
    *v = get_u64(c->p), c->p += 8;
    return 1;
}
static int rd_str(cur *c, const char **s, uint64_t *n) {
    if (!rd_u64(c, n) || *n > (uint64_t)(c->end - c->p)) return 0;
    *s = (const char *)c->p, c->p += *n;
    return 1;
}

int rlaif_gguf_next_str(const unsigned char **p, const unsigned char *end, const char **s, size_t *len) {
    cur c = {*p, end};
    uint64_t n;
    if (!rd_str(&c, s, &n)) return 0;
    *len = (size_t)n, *p = c.p;
    return 1;
}

void rlaif_gguf_close(rlaif_gguf_file *f) {
    if (f == NULL) return;
    rlaif_unmap_file(f->map_, f->map_size_);
    free(f->kv);
    free(f->tensors);
    free(f->path);
    free(f);
}

static rlaif_status parse(rlaif_gguf_file *f, const unsigned char *base, size_t size) {
    const char *name = f->path;
    cur c = {base, base + size};
    uint32_t magic = 0;
    uint64_t nt = 0, nkv = 0;
    if (size < 24 || !rd_u32(&c, &magic) || magic != RLAIF_GGUF_MAGIC)
        return rlaif_fail(RLAIF_EFORMAT, "%s: not a GGUF file (no \"GGUF\" magic)", name);
    rd_u32(&c, &f->version);
    if (f->version != 2 && f->version != 3)
        return rlaif_fail(RLAIF_EFORMAT, "%s: GGUF version %u is not supported (2 and 3 are)", name, f->version);
    rd_u64(&c, &nt);
    rd_u64(&c, &nkv);
    /* a key/value takes at least 13 bytes and a tensor info 24: bound the counts by the file */
    if (nkv > (size - 24) / 13)
        return rlaif_fail(RLAIF_EFORMAT, "%s: the header claims %" PRIu64 " key/values, which cannot fit in %zu bytes",
                          name, nkv, size);
    if (nt > (size - 24) / 24)
        return rlaif_fail(RLAIF_EFORMAT, "%s: the header claims %" PRIu64 " tensors, which cannot fit in %zu bytes",
                          name, nt, size);
    f->n_kv = (int64_t)nkv, f->n_tensors = (int64_t)nt;
    f->kv = calloc(nkv ? nkv : 1, sizeof *f->kv);
    f->tensors = calloc(nt ? nt : 1, sizeof *f->tensors);
    if (!f->kv || !f->tensors) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", name);
    f->alignment = RLAIF_GGUF_ALIGNMENT;
    for (uint64_t i = 0; i < nkv; i++) {
        rlaif_gguf_kv *kv = &f->kv[i];
        uint64_t kl;
        if (!rd_str(&c, &kv->key, &kl))
            return rlaif_fail(RLAIF_EFORMAT, "%s: key/value %" PRIu64 " is cut off (truncated file?)", name, i);
        kv->key_len = (size_t)kl;
        if (!rd_u32(&c, &kv->type) || kv->type >= RLAIF_GGUF_NTYPES)
            return rlaif_fail(RLAIF_EFORMAT, "%s: key '%.*s' has a bad value type", name, (int)(kl > 64 ? 64 : kl),
                              kv->key);
        const unsigned char *start = c.p;
        kv->n = 1;
        if (kv->type == RLAIF_GGUF_STRING) {
            const char *s;
            uint64_t n;
            if (!rd_str(&c, &s, &n)) goto cut;
        } else if (kv->type == RLAIF_GGUF_ARRAY) {
            uint64_t n;
            if (!rd_u32(&c, &kv->arr_type) || !rd_u64(&c, &n)) goto cut;
            kv->n = n;
            start = c.p;
            if (kv->arr_type == RLAIF_GGUF_STRING) {
                if (n > (uint64_t)(c.end - c.p) / 8) goto cut;
                for (uint64_t k = 0; k < n; k++) {
                    const char *s;
                    uint64_t m;
                    if (!rd_str(&c, &s, &m)) goto cut;
                }
            } else {
                int es = scalar_size(kv->arr_type);
                if (es == 0)
                    return rlaif_fail(RLAIF_EFORMAT, "%s: key '%.*s': arrays of type %u are not supported", name,
                                      (int)(kl > 64 ? 64 : kl), kv->key, kv->arr_type);
                if (n > (uint64_t)(c.end - c.p) / (uint64_t)es) goto cut;
                c.p += n * (uint64_t)es;
            }
        } else {
            int es = scalar_size(kv->type);
            if ((size_t)(c.end - c.p) < (size_t)es) goto cut;
            c.p += es;
        }
        kv->data = start;
        kv->size = (uint64_t)(c.p - start);
        for (uint64_t k = 0; k < i; k++)
            if (f->kv[k].key_len == kv->key_len && memcmp(f->kv[k].key, kv->key, kv->key_len) == 0)
                return rlaif_fail(RLAIF_EFORMAT, "%s: duplicate key '%.*s'", name, (int)(kl > 64 ? 64 : kl), kv->key);
        continue;
    cut:
        return rlaif_fail(RLAIF_EFORMAT, "%s: the value of key '%.*s' runs past the end of the file (truncated?)",
                          name, (int)(kl > 64 ? 64 : kl), kv->key);
    }
    const rlaif_gguf_kv *al = rlaif_gguf_find(f, "general.alignment");
    if (al) {
        if (al->type != RLAIF_GGUF_U32) return rlaif_fail(RLAIF_EFORMAT, "%s: general.alignment must be a u32", name);
        f->alignment = get_u32(al->data);
        if (f->alignment == 0 || (f->alignment & (f->alignment - 1)) != 0)
            return rlaif_fail(RLAIF_EFORMAT, "%s: general.alignment %" PRIu64 " is not a power of 2", name, f->alignment);
    }
    for (uint64_t i = 0; i < nt; i++) {
        rlaif_gguf_tensor *t = &f->tensors[i];
        const char *s;
        uint64_t n, nd;
        uint32_t ndim;
        if (!rd_str(&c, &s, &n))
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor info %" PRIu64 " is cut off (truncated file?)", name, i);
        if (n >= RLAIF_GGUF_MAX_NAME)
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor %" PRIu64 " has a name of %" PRIu64 " bytes (at most 63)",
                              name, i, n);
        memcpy(t->name, s, n);
        t->name[n] = '\0';
        if (memchr(t->name, '\0', n))
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor %" PRIu64 " has a NUL byte in its name", name, i);
        if (!rd_u32(&c, &ndim) || ndim < 1 || ndim > 4)
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s' has a bad number of dimensions", name, t->name);
        t->ndim = (int)ndim;
        t->ne[0] = t->ne[1] = t->ne[2] = t->ne[3] = 1;
        t->numel = 1;
        for (uint32_t d = 0; d < ndim; d++) {
            if (!rd_u64(&c, &nd) || nd > ((uint64_t)1 << 50))
                return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s' has a bad dimension", name, t->name);
            t->ne[d] = (int64_t)nd;
            if (nd > 0 && (uint64_t)t->numel > ((uint64_t)1 << 50) / nd)
                return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s' is too large", name, t->name);
            t->numel *= (int64_t)nd;
        }
        uint64_t off;
        if (!rd_u32(&c, &t->type) || !rd_u64(&c, &off))
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': the info is cut off", name, t->name);
        const type_info *ti = type_of(t->type);
        if (ti == NULL) return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s' has unknown ggml type %u", name, t->name, t->type);
        if (t->ne[0] % ti->block != 0)
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': %" PRId64 " elements per row is not a multiple of "
                              "the %s block size %d", name, t->name, t->ne[0], ti->name, ti->block);
        t->nbytes = rlaif_ggml_row_bytes(t->type, t->ne[0]) * (uint64_t)(t->ne[0] ? t->numel / t->ne[0] : 0);
        t->offset = off;
        if (off % f->alignment != 0)
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': offset %" PRIu64 " is not aligned to %" PRIu64, name,
                              t->name, off, f->alignment);
        for (uint64_t k = 0; k < i; k++)
            if (strcmp(f->tensors[k].name, t->name) == 0)
                return rlaif_fail(RLAIF_EFORMAT, "%s: duplicate tensor '%s'", name, t->name);
    }
    uint64_t pos = (uint64_t)(c.p - base);
    f->data_offset = pos + (f->alignment - pos % f->alignment) % f->alignment;
    if (f->data_offset > size) {
        if (nt > 0) return rlaif_fail(RLAIF_EFORMAT, "%s: the file ends before its data section", name);
        f->data_offset = size;
    }
    f->data_size = size - f->data_offset;
    for (uint64_t i = 0; i < nt; i++) {
        rlaif_gguf_tensor *t = &f->tensors[i];
        if (t->offset > f->data_size || t->nbytes > f->data_size - t->offset)
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s' data [%" PRIu64 ", +%" PRIu64 ") extends past the end "
                              "of the file (%" PRIu64 " data bytes): truncated file", name, t->name, t->offset,
                              t->nbytes, f->data_size);
        t->data = base + f->data_offset + t->offset;
    }
    return RLAIF_OK;
}

rlaif_status rlaif_gguf_open_buffer(const void *data, size_t size, const char *name, rlaif_gguf_file **out) {
    *out = NULL;
    rlaif_gguf_file *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = strdup(name ? name : "(buffer)")) == NULL) {
        free(f);
        return rlaif_fail(RLAIF_ENOMEM, "gguf: out of memory");
    }
    rlaif_status st = parse(f, data, size);
    if (st != RLAIF_OK) rlaif_gguf_close(f);
    else *out = f;
    return st;
}

rlaif_status rlaif_gguf_open(const char *path, rlaif_gguf_file **out) {
    *out = NULL;
    void *map;
    size_t size;
    rlaif_status st = rlaif_map_file(path, "GGUF", 24, &map, &size);
    if (st != RLAIF_OK) return st;
    rlaif_gguf_file *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = strdup(path)) == NULL) {
        free(f);
        rlaif_unmap_file(map, size);
        return rlaif_fail(RLAIF_ENOMEM, "gguf: out of memory");
    }
    f->map_ = map, f->map_size_ = size;
    st = parse(f, map, size);
    if (st != RLAIF_OK) rlaif_gguf_close(f);
    else *out = f;
    return st;
}

const rlaif_gguf_kv *rlaif_gguf_find(const rlaif_gguf_file *f, const char *key) {
    size_t n = strlen(key);
    for (int64_t i = 0; i < f->n_kv; i++)
        if (f->kv[i].key_len == n && memcmp(f->kv[i].key, key, n) == 0) return &f->kv[i];
    return NULL;
}

int rlaif_gguf_get_u32(const rlaif_gguf_file *f, const char *key, uint32_t *v) {
    const rlaif_gguf_kv *kv = rlaif_gguf_find(f, key);
    if (kv == NULL) return 0;
    const unsigned char *p = kv->data;
    int64_t x;
    switch (kv->type) {
    case RLAIF_GGUF_U8: x = p[0]; break;
    case RLAIF_GGUF_I8: x = (int8_t)p[0]; break;
    case RLAIF_GGUF_U16: x = p[0] | p[1] << 8; break;
    case RLAIF_GGUF_I16: x = (int16_t)(p[0] | p[1] << 8); break;
    case RLAIF_GGUF_U32: x = get_u32(p); break;
    case RLAIF_GGUF_I32: x = (int32_t)get_u32(p); break;
    case RLAIF_GGUF_U64: x = get_u64(p) > UINT32_MAX ? -1 : (int64_t)get_u64(p); break;
    case RLAIF_GGUF_I64: x = (int64_t)get_u64(p); break;
    default: return 0;
    }
    if (x < 0 || x > UINT32_MAX) return 0;
    *v = (uint32_t)x;
    return 1;
}

int rlaif_gguf_get_f32(const rlaif_gguf_file *f, const char *key, float *v) {
    const rlaif_gguf_kv *kv = rlaif_gguf_find(f, key);
    if (kv == NULL) return 0;
    if (kv->type == RLAIF_GGUF_F32) {
        uint32_t x = get_u32(kv->data);
        memcpy(v, &x, 4);
        return 1;
    }
    if (kv->type == RLAIF_GGUF_F64) {
        uint64_t x = get_u64(kv->data);
        double d;
        memcpy(&d, &x, 8);
        *v = (float)d;
        return 1;
    }
    return 0;
}

int rlaif_gguf_get_bool(const rlaif_gguf_file *f, const char *key, int *v) {
    const rlaif_gguf_kv *kv = rlaif_gguf_find(f, key);
    if (kv == NULL || kv->type != RLAIF_GGUF_BOOL) return 0;
    *v = kv->data[0] != 0;
    return 1;
}

int rlaif_gguf_get_str(const rlaif_gguf_file *f, const char *key, const char **s, size_t *len) {
    const rlaif_gguf_kv *kv = rlaif_gguf_find(f, key);
    if (kv == NULL || kv->type != RLAIF_GGUF_STRING) return 0;
    *len = (size_t)get_u64(kv->data);
    *s = (const char *)kv->data + 8;
    return 1;
}

const rlaif_gguf_tensor *rlaif_gguf_find_tensor(const rlaif_gguf_file *f, const char *name) {
    for (int64_t i = 0; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i].name, name) == 0) return &f->tensors[i];
    return NULL;
}

rlaif_status rlaif_gguf_tensor_f32(const rlaif_gguf_file *f, const rlaif_gguf_tensor *t, float *dst) {
    const unsigned char *p = t->data;
    int64_t n = t->numel;
    switch (t->type) {
    case RLAIF_GGML_F32:
        memcpy(dst, p, (size_t)n * 4);
        return RLAIF_OK;
    case RLAIF_GGML_F16:
        for (int64_t i = 0; i < n; i++) dst[i] = rlaif_f16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8));
        return RLAIF_OK;
    case RLAIF_GGML_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | p[2 * i + 1] << 8) << 16;
            memcpy(&dst[i], &bits, 4);
        }
        return RLAIF_OK;
    case RLAIF_GGML_F64:
        for (int64_t i = 0; i < n; i++) {
            uint64_t x = get_u64(p + 8 * i);
            double d;
            memcpy(&d, &x, 8);
            dst[i] = (float)d;
        }
        return RLAIF_OK;
    case RLAIF_GGML_Q8_0:
        for (int64_t b = 0; b < n / 32; b++) {
            const unsigned char *blk = p + b * 34;
            float d = rlaif_f16_to_f32((uint16_t)(blk[0] | blk[1] << 8));
            for (int j = 0; j < 32; j++) dst[b * 32 + j] = (float)(int8_t)blk[2 + j] * d;
        }
        return RLAIF_OK;
    default:
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s' has type %s; rlaif reads F32, F16, BF16, F64 and Q8_0 "
                          "(re-quantize with llama-quantize --allow-requantize ... Q8_0)", f->path, t->name,
                          rlaif_ggml_type_name(t->type));
    }
}
