/* src/core/safetensors.c -- read and write the safetensors format (the format
 * Hugging Face uses): an 8-byte little-endian header length, a JSON header
 * {"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}},
 * then the raw little-endian data.
 *
 * Loading maps the file read-only and converts F32/F16/BF16/F64 to new float32
 * tensors, checking every offset and size against the file first: a corrupt or
 * truncated file gives RLAIF_EFORMAT naming the file and tensor, never a read
 * out of bounds. Saving writes float32 atomically (temp file, fsync, rename).
 * Not here: lazy/mmapped tensors, integer dtypes. */
#include "tensor_impl.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER (100u << 20)  /* the reference implementation's limit */

typedef enum { DT_F32, DT_F16, DT_BF16, DT_F64 } dtype;

static int parse_dtype(const char *s, dtype *dt, int *size) {
    if (strcmp(s, "F32") == 0) return *dt = DT_F32, *size = 4, 1;
    if (strcmp(s, "F16") == 0) return *dt = DT_F16, *size = 2, 1;
    if (strcmp(s, "BF16") == 0) return *dt = DT_BF16, *size = 2, 1;
    if (strcmp(s, "F64") == 0) return *dt = DT_F64, *size = 8, 1;
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

static void convert(float *dst, const unsigned char *src, int64_t n, dtype dt) {
    for (int64_t i = 0; i < n; i++) {
        switch (dt) {
        case DT_F32: memcpy(&dst[i], src + 4 * i, 4); break;
        case DT_F64: { double d; memcpy(&d, src + 8 * i, 8); dst[i] = (float)d; break; }
        case DT_F16: { uint16_t h; memcpy(&h, src + 2 * i, 2); dst[i] = half_to_float(h); break; }
        case DT_BF16: {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&dst[i], &bits, 4);
            break;
        }
        }
    }
}

void rlaif_safetensors_free(rlaif_named_tensor *items, int count) {
    if (items == NULL) return;
    for (int i = 0; i < count; i++) {
        free(items[i].name);
        rlaif_tensor_release(items[i].tensor);
    }
    free(items);
}

/* Parse one header entry into a tensor; data bounds checked against data_len. */
static rlaif_status load_entry(const char *path, const cJSON *e, const unsigned char *data, uint64_t data_len,
                               rlaif_tensor **out) {
    const char *name = e->string;
    const cJSON *jdt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *jshape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *joff = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    dtype dt;
    int size;
    if (!cJSON_IsObject(e) || !cJSON_IsString(jdt) || !cJSON_IsArray(jshape) || !cJSON_IsArray(joff) ||
        cJSON_GetArraySize(joff) != 2)
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': entry needs dtype, shape and data_offsets [begin, end]",
                          path, name);
    if (!parse_dtype(jdt->valuestring, &dt, &size))
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': dtype %s is not supported (F32, F16, BF16, F64)",
                          path, name, jdt->valuestring);
    int ndim = cJSON_GetArraySize(jshape);
    if (ndim > RLAIF_MAX_DIMS)
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s' has %d dims, at most %d supported", path, name, ndim,
                          RLAIF_MAX_DIMS);
    int64_t shape[RLAIF_MAX_DIMS];
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        const cJSON *d = cJSON_GetArrayItem(jshape, i);
        if (!cJSON_IsNumber(d) || d->valuedouble < 0 || d->valuedouble > 1e15 ||
            d->valuedouble != (double)(int64_t)d->valuedouble)
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': shape entry %d is not a non-negative integer",
                              path, name, i + 1);
        shape[i] = (int64_t)d->valuedouble;
        if (shape[i] > 0 && numel > (UINT64_MAX / 16) / (uint64_t)shape[i])
            return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': shape is too large", path, name);
        numel *= (uint64_t)shape[i];
    }
    const cJSON *jb = cJSON_GetArrayItem(joff, 0), *je = cJSON_GetArrayItem(joff, 1);
    if (!cJSON_IsNumber(jb) || !cJSON_IsNumber(je) || jb->valuedouble < 0 || je->valuedouble < jb->valuedouble)
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': bad data_offsets", path, name);
    uint64_t begin = (uint64_t)jb->valuedouble, end = (uint64_t)je->valuedouble;
    if (end > data_len)
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': data ends at byte %" PRIu64 " but the file holds "
                          "%" PRIu64 " data bytes (truncated?)", path, name, end, data_len);
    if (end - begin != numel * (uint64_t)size) {
        char s[64];
        return rlaif_fail(RLAIF_EFORMAT, "%s: tensor '%s': %" PRIu64 " bytes for shape %s of %s (expected %"
                          PRIu64 ")", path, name, end - begin, rlaif_shape_str(s, sizeof s, ndim, shape),
                          jdt->valuestring, numel * (uint64_t)size);
    }
    rlaif_status st = rlaif_tensor_empty(out, ndim, shape);
    if (st != RLAIF_OK) return rlaif_fail(st, "%s: tensor '%s': %s", path, name, rlaif_last_error());
    convert((*out)->data, data + begin, (int64_t)numel, dt);
    return RLAIF_OK;
}

rlaif_status rlaif_safetensors_load(const char *path, rlaif_named_tensor **items, int *count) {
    rlaif_status st = RLAIF_OK;
    unsigned char *map = MAP_FAILED;
    struct stat sb;
    cJSON *root = NULL;
    rlaif_named_tensor *list = NULL;
    int n = 0;
    *items = NULL;
    *count = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rlaif_fail(RLAIF_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = rlaif_fail(RLAIF_EIO, "%s: not a regular file", path);
        goto done;
    }
    uint64_t size = (uint64_t)sb.st_size, hlen = 0;
    if (size < 8) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: %" PRIu64 " bytes is too short for a safetensors file", path, size);
        goto done;
    }
    map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        st = rlaif_fail(RLAIF_EIO, "%s: mmap: %s", path, strerror(errno));
        goto done;
    }
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | map[i];
    if (hlen > MAX_HEADER || hlen > size - 8) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: header length %" PRIu64 " is larger than the file (%" PRIu64
                        " bytes); not a safetensors file or truncated", path, hlen, size);
        goto done;
    }
    const char *parse_end = NULL;
    root = cJSON_ParseWithLengthOpts((const char *)map + 8, (size_t)hlen, &parse_end, 0);
    if (!cJSON_IsObject(root)) {
        size_t at = parse_end ? (size_t)(parse_end - (const char *)map - 8) : 0;
        st = rlaif_fail(RLAIF_EFORMAT, "%s: header is not a JSON object (error near byte %zu of %" PRIu64 ")",
                        path, at, hlen);
        goto done;
    }
    list = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof *list);
    if (list == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", path);
        goto done;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) continue;
        rlaif_tensor *t = NULL;
        if ((st = load_entry(path, e, map + 8 + hlen, size - 8 - hlen, &t)) != RLAIF_OK) goto done;
        list[n].tensor = t;
        list[n].name = strdup(e->string);
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
    cJSON_Delete(root);
    if (map != MAP_FAILED) munmap(map, size);
    close(fd);
    *items = list;
    *count = n;
    return st;
}

/* ---- saving ---- */

static int write_all(FILE *f, const void *p, size_t n) { return fwrite(p, 1, n, f) == n; }

rlaif_status rlaif_safetensors_save(const char *path, const rlaif_named_tensor *items, int count) {
    rlaif_status st = RLAIF_OK;
    cJSON *root = cJSON_CreateObject(), *meta = cJSON_CreateObject();
    char *header = NULL, *tmp = NULL, *dirbuf = NULL;
    FILE *f = NULL;
    int fd = -1;
    if (root == NULL || meta == NULL) goto nomem;
    cJSON_AddItemToObject(root, "__metadata__", meta);
    if (cJSON_AddStringToObject(meta, "format", "pt") == NULL) goto nomem;
    uint64_t offset = 0;
    for (int i = 0; i < count; i++) {
        const rlaif_tensor *t = items[i].tensor;
        if (items[i].name == NULL || items[i].name[0] == '\0' || strcmp(items[i].name, "__metadata__") == 0) {
            st = rlaif_fail(RLAIF_EINVAL, "save %s: tensor %d has an empty or reserved name", path, i + 1);
            goto done;
        }
        if (cJSON_GetObjectItemCaseSensitive(root, items[i].name) != NULL) {
            st = rlaif_fail(RLAIF_EINVAL, "save %s: duplicate tensor name '%s'", path, items[i].name);
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
    size_t hlen = strlen(header), padded = (hlen + 7) & ~(size_t)7;
    /* Temp file in the target's directory, so rename is atomic. */
    if ((tmp = malloc(strlen(path) + 16)) == NULL || (dirbuf = strdup(path)) == NULL) goto nomem;
    sprintf(tmp, "%s.tmp.XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0 || (f = fdopen(fd, "wb")) == NULL) {
        st = rlaif_fail(RLAIF_EIO, "save %s: %s", path, strerror(errno));
        goto done;
    }
    fd = -1;  /* owned by f now */
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = write_all(f, len8, 8) && write_all(f, header, hlen) &&
             write_all(f, "        ", padded - hlen);
    for (int i = 0; ok && i < count; i++) {
        rlaif_tensor *c = NULL;
        if ((st = rlaif_tensor_contiguous(&c, items[i].tensor)) != RLAIF_OK) goto done;
        ok = write_all(f, c->data, rlaif_tensor_nbytes(c));
        rlaif_tensor_release(c);
    }
    if (!ok || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        st = rlaif_fail(RLAIF_EIO, "save %s: write failed: %s", path, strerror(errno));
        goto done;
    }
    if (fclose(f) != 0) {
        f = NULL;
        st = rlaif_fail(RLAIF_EIO, "save %s: close failed: %s", path, strerror(errno));
        goto done;
    }
    f = NULL;
    if (rename(tmp, path) != 0) {
        st = rlaif_fail(RLAIF_EIO, "save %s: rename failed: %s", path, strerror(errno));
        goto done;
    }
    free(tmp);
    tmp = NULL;
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    goto done;
nomem:
    st = rlaif_fail(RLAIF_ENOMEM, "save %s: out of memory", path);
done:
    if (f) fclose(f);
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(dirbuf);
    free(header);
    cJSON_Delete(root);
    return st;
}
