/* src/core/llm_cache.c -- the LLM response cache on SQLite, and SHA-256 keys.
 *
 * One table, llm_cache(key PRIMARY KEY, model, format, stream, request, raw,
 * parsed, created). WAL journal + a busy timeout make one file safe for several
 * processes (readers never block the writer); the first writer of a key wins.
 * The key hashes format, URL, body and the sample index -- never headers, so
 * never the API key. `raw` is the server's body as received (SSE included) and
 * is what a hit is re-parsed from (re-parsing keeps -inf logprobs exact, which
 * JSON text cannot carry); `parsed` is the normalized response, stored for
 * inspection with SQL.
 * Ownership: a cache owns its sqlite3 handle and prepared statements. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "llm.h"

/* ---- SHA-256 (FIPS 180-4) ---- */

typedef struct { uint32_t h[8]; uint64_t len; unsigned char buf[64]; size_t n; } sha256_ctx;

static const uint32_t K256[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const unsigned char *p) {
    uint32_t w[64], a, b, cc, d, e, f, g, h;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K256[i] + w[i];
        uint32_t t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
    }
    c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
    c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void sha256_init(sha256_ctx *c) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->n = 0;
}

static void sha256_update(sha256_ctx *c, const void *data, size_t len) {
    const unsigned char *p = data;
    c->len += len;
    while (len > 0) {
        size_t k = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->buf + c->n, p, k);
        c->n += k, p += k, len -= k;
        if (c->n == 64) sha256_block(c, c->buf), c->n = 0;
    }
}

static void sha256_hex(sha256_ctx *c, char out[65]) {
    uint64_t bits = c->len * 8;
    unsigned char pad = 0x80, zero = 0, lenb[8];
    sha256_update(c, &pad, 1);
    while (c->n != 56) sha256_update(c, &zero, 1);
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)(bits >> (56 - 8 * i));
    sha256_update(c, lenb, 8);
    for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", c->h[i]);
}

void rlaif_sha256_hex(const void *data, size_t len, char out[65]) {
    sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, data, len);
    sha256_hex(&c, out);
}

void rlaif_llm_cache_key(const rlaif_llm_wire *w, int sample, char out[65]) {
    sha256_ctx c;
    char tag[64];
    sha256_init(&c);
    const char *fmt = rlaif_llm_format_name(w->format);
    sha256_update(&c, "rlaif-llm-cache-v1", 19);
    sha256_update(&c, fmt, strlen(fmt) + 1);
    sha256_update(&c, w->url, strlen(w->url) + 1);
    sha256_update(&c, w->body, w->body_len + 1);
    int k = snprintf(tag, sizeof tag, "sample=%d", w->sampled ? sample : -1);
    sha256_update(&c, tag, (size_t)k);
    sha256_hex(&c, out);
}

/* ---- the cache ---- */

struct rlaif_llm_cache {
    sqlite3 *db;
    sqlite3_stmt *get, *put;
};

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS llm_cache ("
    " key TEXT PRIMARY KEY, model TEXT, format TEXT, stream INTEGER, request TEXT,"
    " raw BLOB, parsed TEXT, created REAL)";

rlaif_status rlaif_llm_cache_open(rlaif_llm_cache **out, const char *path) {
    *out = NULL;
    char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
    rlaif_status st = rlaif_path_gate(&path, gate, RLAIF_PATH_WRITE, "llm.cache");
    if (st != RLAIF_OK) return st;
    rlaif_llm_cache *c = calloc(1, sizeof *c);
    if (c == NULL) return rlaif_fail(RLAIF_ENOMEM, "llm.cache: out of memory");
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        st = rlaif_fail(RLAIF_EIO, "llm.cache: cannot open %s: %s", path,
                        c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 30000);
    char *err = NULL;
    /* journal_mode=WAL needs a lock on first switch; the busy timeout covers races */
    if (sqlite3_exec(c->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, &err) != SQLITE_OK ||
        sqlite3_exec(c->db, SCHEMA, NULL, NULL, &err) != SQLITE_OK) {
        st = rlaif_fail(RLAIF_EIO, "llm.cache: %s: %s", path, err ? err : sqlite3_errmsg(c->db));
        sqlite3_free(err);
        goto fail;
    }
    if (sqlite3_prepare_v2(c->db, "SELECT raw, format, stream FROM llm_cache WHERE key = ?1", -1, &c->get, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v2(c->db,
                           "INSERT OR IGNORE INTO llm_cache (key, model, format, stream, request, raw, parsed, created)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           -1, &c->put, NULL) != SQLITE_OK) {
        st = rlaif_fail(RLAIF_EIO, "llm.cache: %s: %s", path, sqlite3_errmsg(c->db));
        goto fail;
    }
    *out = c;
    return RLAIF_OK;
fail:
    rlaif_llm_cache_close(c);
    return st;
}

void rlaif_llm_cache_close(rlaif_llm_cache *c) {
    if (c == NULL) return;
    sqlite3_finalize(c->get);
    sqlite3_finalize(c->put);
    sqlite3_close(c->db);
    free(c);
}

rlaif_status rlaif_llm_cache_get(rlaif_llm_cache *c, const char *key, int *found, char **raw, size_t *raw_len,
                                 int *format, int *stream) {
    *found = 0;
    *raw = NULL;
    *raw_len = 0;
    rlaif_status st = RLAIF_OK;
    sqlite3_bind_text(c->get, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(c->get);
    if (rc == SQLITE_ROW) {
        const void *b = sqlite3_column_blob(c->get, 0);
        int n = sqlite3_column_bytes(c->get, 0);
        const char *fmt = (const char *)sqlite3_column_text(c->get, 1);
        rlaif_llm_format f;
        if (fmt == NULL || rlaif_llm_format_parse(fmt, &f) != RLAIF_OK) {
            st = rlaif_fail(RLAIF_EFORMAT, "llm.cache: entry with unknown format");
            goto done;
        }
        char *copy = malloc((size_t)n + 1);
        if (copy == NULL) {
            st = rlaif_fail(RLAIF_ENOMEM, "llm.cache: out of memory");
            goto done;
        }
        if (n) memcpy(copy, b, (size_t)n);
        copy[n] = '\0';
        *raw = copy;
        *raw_len = (size_t)n;
        *format = (int)f;
        *stream = sqlite3_column_int(c->get, 2);
        *found = 1;
    } else if (rc != SQLITE_DONE) {
        st = rlaif_fail(RLAIF_EIO, "llm.cache: lookup: %s", sqlite3_errmsg(c->db));
    }
done:
    sqlite3_reset(c->get);
    sqlite3_clear_bindings(c->get);
    return st;
}

rlaif_status rlaif_llm_cache_put(rlaif_llm_cache *c, const char *key, const char *model, int format, int stream,
                                 const char *request, const char *raw, size_t raw_len, const char *parsed) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    sqlite3_bind_text(c->put, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(c->put, 2, model ? model : "", -1, SQLITE_STATIC);
    sqlite3_bind_text(c->put, 3, rlaif_llm_format_name((rlaif_llm_format)format), -1, SQLITE_STATIC);
    sqlite3_bind_int(c->put, 4, stream);
    sqlite3_bind_text(c->put, 5, request, -1, SQLITE_STATIC);
    sqlite3_bind_blob(c->put, 6, raw, (int)raw_len, SQLITE_STATIC);
    sqlite3_bind_text(c->put, 7, parsed, -1, SQLITE_STATIC);
    sqlite3_bind_double(c->put, 8, (double)ts.tv_sec + ts.tv_nsec * 1e-9);
    int rc = sqlite3_step(c->put);
    rlaif_status st = RLAIF_OK;
    if (rc != SQLITE_DONE) st = rlaif_fail(RLAIF_EIO, "llm.cache: store: %s", sqlite3_errmsg(c->db));
    sqlite3_reset(c->put);
    sqlite3_clear_bindings(c->put);
    return st;
}
