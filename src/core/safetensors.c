/* src/core/safetensors.c -- read and write the safetensors format (the format
 * Hugging Face uses): an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the raw little-endian data.
 *
 * Two levels. rlaif_safetensors_open maps a file read-only and checks every
 * entry's dtype, shape and byte range against the file once, recording what is
 * wrong per entry; rlaif_safetensors_check turns that into RLAIF_EFORMAT naming
 * the file and tensor. Numbers in the header are exact: every number token must
 * be a plain unsigned integer literal below 2^53 (the format only has shapes and
 * offsets; anything else, like 1e2, 4.0, -0 or 2^64, is rejected before cJSON's
 * doubles are read), so the offsets used are exactly the ones written, and
 * begin <= end <= data length and end - begin == numel * dtype size are
 * checked in integers; and rlaif_safetensors_convert widens F32/F16/BF16/F64 to
 * float32 (strided, so ckpt.c transposes while converting). A corrupt or
 * truncated file is an error, never a read out of bounds. On top of that,
 * rlaif_safetensors_load makes new float32 tensors and rlaif_safetensors_save
 * writes float32 atomically (rlaif_write_file_atomic).
 * Not here: lazy tensors, integer dtypes, model name maps (ckpt.c). */
#include "tensor_impl.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_HEADER (100u << 20)  /* the reference implementation's limit */
#define MAX_EXACT ((uint64_t)1 << 53)  /* every integer up to here is a double */

/* ---- dtypes ---- */

static int parse_dtype(const char *s, rlaif_dtype *dt, int *size) {
    if (strcmp(s, "F32") == 0) return *dt = RLAIF_DTYPE_F32, *size = 4, 1;
    if (strcmp(s, "F16") == 0) return *dt = RLAIF_DTYPE_F16, *size = 2, 1;
    if (strcmp(s, "BF16") == 0) return *dt = RLAIF_DTYPE_BF16, *size = 2, 1;
    if (strcmp(s, "F64") == 0) return *dt = RLAIF_DTYPE_F64, *size = 8, 1;
    return 0;
}

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (man << 13);           /* inf / nan */
    } else if (exp != 0) {
        bits = sign | ((exp + 112) << 23) | (man << 13);    /* normal */
    } else if (man == 0) {
        bits = sign;                                        /* zero */
    } else {                                                /* subnormal: normalise */
        int e = -1;
        do { man <<= 1; e++; } while (!(man & 0x400));
        bits = sign | ((uint32_t)(112 - e) << 23) | ((man & 0x3ff) << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void rlaif_safetensors_convert(float *dst, int64_t dst_stride, const void *src, int64_t n, rlaif_dtype dt) {
    const unsigned char *s = src;
    switch (dt) {
    case RLAIF_DTYPE_F32:
        if (dst_stride == 1) {
            memcpy(dst, s, (size_t)n * 4);
            break;
        }
        for (int64_t i = 0; i < n; i++) memcpy(&dst[i * dst_stride], s + 4 * i, 4);
        break;
    case RLAIF_DTYPE_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i * dst_stride] = (float)d;
        }
        break;
    case RLAIF_DTYPE_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i * dst_stride] = half_to_float(h);
        }
        break;
    case RLAIF_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i * dst_stride], &bits, 4);
        }
        break;
    }
}

/* ---- the checked, mapped view ---- */

/* Check that every number token of the JSON text h[0..n) (outside strings) is
 * an unsigned integer literal below 2^53, so that cJSON's double holds it
 * exactly. Tokens are delimited the way cJSON reads them. Returns 0 and fills
 * bad/at with the first offending token otherwise. */
static int numbers_exact(const char *h, size_t n, char *bad, size_t badlen, size_t *at) {
    for (size_t i = 0; i < n; i++) {
        if (h[i] == '"') {   /* skip a string, escapes included */
            for (i++; i < n && h[i] != '"'; i++)
                if (h[i] == '\\') i++;
            continue;
        }
        if (h[i] != '-' && (h[i] < '0' || h[i] > '9')) continue;
        size_t j = i;
        uint64_t v = 0;
        int ok = 1;
        while (j < n && strchr("0123456789+-.eE", h[j]) != NULL && h[j] != '\0') {
            if (h[j] < '0' || h[j] > '9') ok = 0;
            else if (ok && (v = v * 10 + (uint64_t)(h[j] - '0')) > MAX_EXACT) ok = 0;
            j++;
        }
        if (!ok) {
            snprintf(bad, badlen, "%.*s", (int)(j - i < 40 ? j - i : 40), h + i);
            *at = i;
            return 0;
        }
        i = j - 1;
    }
    return 1;
}

/* Parse one header entry into x, recording the first thing wrong with it in
 * x->problem (the order of the checks decides which message a bad entry gets). */
static void parse_entry(const cJSON *e, const unsigned char *data, uint64_t data_len,
                        rlaif_safetensors_entry *x) {
    const cJSON *jdt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *jshape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *joff = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    x->name = e->string;
    x->dtype_name = cJSON_IsString(jdt) ? jdt->valuestring : "?";
    if (!cJSON_IsObject(e) || !cJSON_IsString(jdt) || !cJSON_IsArray(jshape) || !cJSON_IsArray(joff) ||
        cJSON_GetArraySize(joff) != 2) {
        x->problem = RLAIF_ST_FIELDS;
        return;
    }
    if (!parse_dtype(jdt->valuestring, &x->dtype, &x->elem_size)) {
        x->problem = RLAIF_ST_DTYPE;
        return;
    }
    x->ndim = cJSON_GetArraySize(jshape);
    if (x->ndim > RLAIF_MAX_DIMS) {
        x->problem = RLAIF_ST_NDIM;
        return;
    }
    uint64_t numel = 1;
    for (int i = 0; i < x->ndim; i++) {
        const cJSON *d = cJSON_GetArrayItem(jshape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e15 ||
            d->valuedouble != (double)(int64_t)d->valuedouble) {
            x->problem = RLAIF_ST_SHAPE, x->bad_dim = i + 1;
            return;
        }
        x->shape[i] = (int64_t)d->valuedouble;
        if (x->shape[i] > 0 && numel > (UINT64_MAX / 16) / (uint64_t)x->shape[i]) {
            x->problem = RLAIF_ST_SHAPE, x->bad_dim = 0;
            return;
        }
        numel *= (uint64_t)x->shape[i];
    }
    x->numel = (int64_t)numel;
    /* numbers_exact has made every number an integer in [0, 2^53]; check anyway */
    const cJSON *jb = cJSON_GetArrayItem(joff, 0), *je = cJSON_GetArrayItem(joff, 1);
    if (!cJSON_IsNumber(jb) || !cJSON_IsNumber(je) || !(jb->valuedouble >= 0) ||
        !(je->valuedouble <= (double)MAX_EXACT) || jb->valuedouble != (double)(uint64_t)jb->valuedouble ||
        je->valuedouble != (double)(uint64_t)je->valuedouble) {
        x->problem = RLAIF_ST_OFFSETS;
        return;
    }
    x->begin = (uint64_t)jb->valuedouble, x->end = (uint64_t)je->valuedouble;
    if (x->end < x->begin) {
        x->problem = RLAIF_ST_OFFSETS;
        return;
    }
    x->nbytes = x->end - x->begin;
    if (x->end > data_len) {
        x->problem = RLAIF_ST_PAST_END;
        return;
    }
    if (numel > UINT64_MAX / (uint64_t)x->elem_size || x->nbytes != numel * (uint64_t)x->elem_size) {
        x->problem = RLAIF_ST_SIZE;
        return;
    }
    x->data = data + x->begin;
}

rlaif_status rlaif_safetensors_check(const rlaif_safetensors_file *f, const rlaif_safetensors_entry *e) {
    const char *path = f->path, *name = e->name;
    char s[64];
    switch (e->problem) {
    case RLAIF_ST_OK: return RLAIF_OK;
    case RLAIF_ST_FIELDS:
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': entry needs dtype, shape and data_offsets [begin, end]",
                          path, name);
    case RLAIF_ST_DTYPE:
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16, F64)",
                          path, name, e->dtype_name);
    case RLAIF_ST_NDIM:
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s' has %d dims, at most %d supported", path, name, e->ndim,
                          RLAIF_MAX_DIMS);
    case RLAIF_ST_SHAPE:
        if (e->bad_dim == 0) return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': shape is too large", path, name);
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': shape entry %d is not a non-negative integer",
                          path, name, e->bad_dim);
    case RLAIF_ST_OFFSETS:
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': bad data_offsets (need integers 0 <= begin <= end)",
                          path, name);
    case RLAIF_ST_PAST_END:
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': data ends at byte %" PRIu64 " but the file holds "
                          "%" PRIu64 " data bytes (truncated?)", path, name, e->end, f->data_len);
    case RLAIF_ST_SIZE:
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': %" PRIu64 " bytes for shape %s of %s (expected %"
                          PRIu64 ")", path, name, e->nbytes, rlaif_shape_str(s, sizeof s, e->ndim, e->shape),
                          e->dtype_name, (uint64_t)e->numel * (uint64_t)e->elem_size);
    }
    return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': bad entry", path, name);
}

const rlaif_safetensors_entry *rlaif_safetensors_find(const rlaif_safetensors_file *f, const char *name) {
    for (int i = 0; i < f->count; i++)
        if (strcmp(f->entries[i].name, name) == 0) return &f->entries[i];
    return NULL;
}

void rlaif_safetensors_close(rlaif_safetensors_file *f) {
    if (f == NULL) return;
    cJSON_Delete(f->header_);
    rlaif_unmap_file(f->map_, f->map_size_);
    free(f->entries);
    free(f->path);
    free(f);
}

rlaif_status rlaif_safetensors_open(const char *path, rlaif_safetensors_file **out) {
    *out = NULL;
    void *mapped;
    size_t msize;
    rlaif_status st = rlaif_map_file(path, "safetensors", 8, &mapped, &msize);
    if (st != RLAIF_OK) return st;
    rlaif_safetensors_file *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = strdup(path)) == NULL) {
        free(f);
        rlaif_unmap_file(mapped, msize);
        return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", path);
    }
    unsigned char *map = mapped;
    uint64_t size = msize, hlen = 0;
    f->map_ = map, f->map_size_ = msize;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | map[i];
    if (hlen > MAX_HEADER || hlen > size - 8) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: header length %" PRIu64 " is larger than the file (%" PRIu64
                        " bytes); not a safetensors file or truncated", path, hlen, size);
        goto done;
    }
    const char *parse_end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts((const char *)map + 8, (size_t)hlen, &parse_end, 0);
    f->header_ = root;
    if (!cJSON_IsObject(root)) {
        size_t at = parse_end ? (size_t)(parse_end - (const char *)map - 8) : 0;
        st = rlaif_fail(RLAIF_EFORMAT, "%s: header is not a JSON object (error near byte %zu of %" PRIu64 ")",
                        path, at, hlen);
        goto done;
    }
    char bad[48];
    size_t at = 0;
    if (!numbers_exact((const char *)map + 8, (size_t)(parse_end - (const char *)map - 8), bad, sizeof bad, &at)) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: header number '%s' at byte %zu is not an unsigned integer below 2^53 "
                        "(shape and data_offsets entries must be)", path, bad, at + 8);
        goto done;
    }
    f->data_len = size - 8 - hlen;
    f->entries = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *f->entries);
    if (f->entries == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        parse_entry(e, map + 8 + hlen, f->data_len, &f->entries[f->count++]);
    }
done:
    if (st != RLAIF_OK) rlaif_safetensors_close(f);
    else *out = f;
    return st;
}

/* ---- loading into tensors ---- */

void rlaif_safetensors_free(rlaif_named_tensor *items, int count) {
    if (items == NULL) return;
    for (int i = 0; i < count; i++) {
        free(items[i].name);
        rlaif_tensor_release(items[i].tensor);
    }
    free(items);
}

rlaif_status rlaif_safetensors_load(const char *path, rlaif_named_tensor **items, int *count) {
    rlaif_safetensors_file *f = NULL;
    rlaif_named_tensor *list = NULL;
    int n = 0;
    *items = NULL;
    *count = 0;
    rlaif_status st = rlaif_safetensors_open(path, &f);
    if (st != RLAIF_OK) return st;
    if ((list = calloc((size_t)f->count + 1, sizeof *list)) == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    for (int i = 0; i < f->count; i++) {
        const rlaif_safetensors_entry *e = &f->entries[i];
        rlaif_tensor *t = NULL;
        if ((st = rlaif_safetensors_check(f, e)) != RLAIF_OK) goto done;
        if ((st = rlaif_tensor_empty(&t, e->ndim, e->shape)) != RLAIF_OK) {
            char why[256];  /* rlaif_fail writes the buffer rlaif_last_error returns */
            snprintf(why, sizeof why, "%s", rlaif_last_error());
            st = rlaif_fail(st, "%s: tensor '%s': %s", path, e->name, why);
            goto done;
        }
        rlaif_safetensors_convert(t->data, 1, e->data, e->numel, e->dtype);
        list[n].tensor = t;
        list[n].name = strdup(e->name);
        n++;
        if (list[n - 1].name == NULL) {
            st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", path);
            goto done;
        }
    }
done:
    if (st != RLAIF_OK) {
        rlaif_safetensors_free(list, n);
        list = NULL, n = 0;
    }
    rlaif_safetensors_close(f);
    *items = list;
    *count = n;
    return st;
}

/* ---- saving ---- */

typedef struct save_body {
    const char *header;               /* JSON, hlen bytes, space-padded to `padded` */
    size_t hlen, padded;
    const rlaif_named_tensor *items;  /* (count), borrowed */
    int count;
} save_body;

/* Write errors are left for rlaif_write_file_atomic to find through ferror. */
static rlaif_status write_body(FILE *f, void *ud) {
    const save_body *b = ud;
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)b->padded >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(b->header, 1, b->hlen, f);
    fwrite("        ", 1, b->padded - b->hlen, f);
    for (int i = 0; i < b->count && !ferror(f); i++) {
        rlaif_tensor *c = NULL;
        rlaif_status st = rlaif_tensor_contiguous(&c, b->items[i].tensor);
        if (st != RLAIF_OK) return st;
        fwrite(c->data, 1, rlaif_tensor_nbytes(c), f);
        rlaif_tensor_release(c);
    }
    return RLAIF_OK;
}

rlaif_status rlaif_safetensors_save(const char *path, const rlaif_named_tensor *items, int count) {
    rlaif_status st = RLAIF_OK;
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    char *header = NULL;
    if (root == NULL || meta == NULL) goto nomem;
    cJSON_AddItemToObject(root, "__metadata__", meta);
    if (cJSON_AddStringToObject(meta, "format", "pt") == NULL) goto nomem;
    uint64_t offset = 0;
    for (int i = 0; i < count; i++) {
        const rlaif_tensor *t = items[i].tensor;
        if (items[i].name == NULL || items[i].name[0] == '\0' || strcmp(items[i].name, "__metadata__") == 0) {
            st = rlaif_fail(RLAIF_EINVAL, "%s: tensor %d has an empty or reserved name", path, i + 1);
            goto done;
        }
        if (cJSON_GetObjectItemCaseSensitive(root, items[i].name) != NULL) {
            st = rlaif_fail(RLAIF_EINVAL, "%s: duplicate tensor name '%s'", path, items[i].name);
            goto done;
        }
        cJSON *e = cJSON_CreateObject(), *shape = cJSON_CreateArray(), *off = cJSON_CreateArray();
        if (e == NULL || shape == NULL || off == NULL) {
            cJSON_Delete(e), cJSON_Delete(shape), cJSON_Delete(off);
            goto nomem;
        }
        cJSON_AddItemToObject(root, items[i].name, e);
        cJSON_AddStringToObject(e, "dtype", "F32");
        for (int d = 0; d < t->ndim; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddItemToObject(e, "shape", shape);
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)offset));
        offset += rlaif_tensor_nbytes(t);
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)offset));
        cJSON_AddItemToObject(e, "data_offsets", off);
    }
    if ((header = cJSON_PrintUnformatted(root)) == NULL) goto nomem;
    save_body body = {header, strlen(header), 0, items, count};
    body.padded = (body.hlen + 7) & ~(size_t)7;
    /* 0600: the mode these files have always had (mkstemp's) */
    st = rlaif_write_file_atomic(path, "cannot write", 0666, write_body, &body);
    goto done;
nomem:
    st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", path);
done:
    free(header);
    cJSON_Delete(root);
    return st;
}
