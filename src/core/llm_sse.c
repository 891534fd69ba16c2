/* src/core/llm_sse.c -- Server-Sent Events exactly as the WHATWG HTML spec
 * ("Interpreting an event stream"), plus NDJSON line splitting for Ollama.
 *
 * The SSE parser is incremental: bytes may arrive in any chunking (a "\r\n"
 * may straddle two chunks). Lines end in CRLF, LF or CR; a leading BOM is
 * dropped; `:` lines are comments; one space after the colon is stripped;
 * `data` lines are joined with '\n'; a blank line dispatches; `id`/`retry` and
 * unknown fields are ignored, except the non-standard `error:` field that
 * llama.cpp sent before Sept 2025, which becomes an "error" event. Unlike
 * browsers, rlaif_sse_finish dispatches a last event that lacks its blank line
 * (llama-server can end with "data: [DONE]" and EOF).
 * Ownership: the parser owns its line/data buffers; rlaif_sse_free frees them. */
#include <stdlib.h>
#include <string.h>

#include "llm.h"

void rlaif_sse_init(rlaif_sse *s, rlaif_sse_cb cb, void *ud) {
    memset(s, 0, sizeof *s);
    s->cb = cb;
    s->ud = ud;
}

void rlaif_sse_free(rlaif_sse *s) {
    free(s->line);
    free(s->data);
    s->line = s->data = NULL;
    s->line_len = s->line_cap = s->data_len = s->data_cap = 0;
}

static int grow(char **buf, size_t *cap, size_t need) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < need) c *= 2;
    char *b = realloc(*buf, c);
    if (b == NULL) return -1;
    *buf = b;
    *cap = c;
    return 0;
}

static int dispatch(rlaif_sse *s) {
    int rc = 0;
    if (s->has_data) {
        if (s->data_len > 0 && s->data[s->data_len - 1] == '\n') s->data_len--;   /* trailing LF */
        if (grow(&s->data, &s->data_cap, s->data_len + 1) != 0) return -1;
        s->data[s->data_len] = '\0';
        s->events++;
        rc = s->cb(s->ud, s->event[0] ? s->event : "message", s->data, s->data_len);
        if (rc) s->stopped = 1;
    }
    s->has_data = 0;
    s->data_len = 0;
    s->event[0] = '\0';
    return rc;
}

static int append_data(rlaif_sse *s, const char *v, size_t n) {
    if (grow(&s->data, &s->data_cap, s->data_len + n + 2) != 0) return -1;
    memcpy(s->data + s->data_len, v, n);
    s->data_len += n;
    s->data[s->data_len++] = '\n';
    s->has_data = 1;
    return 0;
}

/* One complete line (without its terminator). */
static int process_line(rlaif_sse *s, const char *p, size_t n) {
    if (n == 0) return dispatch(s);
    if (p[0] == ':') return 0;   /* comment / keep-alive */
    const char *colon = memchr(p, ':', n);
    size_t flen = colon ? (size_t)(colon - p) : n;
    const char *v = colon ? colon + 1 : p + n;
    size_t vlen = colon ? n - flen - 1 : 0;
    if (vlen > 0 && *v == ' ') v++, vlen--;
    if (flen == 4 && memcmp(p, "data", 4) == 0) return append_data(s, v, vlen);
    if (flen == 5 && memcmp(p, "event", 5) == 0) {
        size_t k = vlen < sizeof s->event - 1 ? vlen : sizeof s->event - 1;
        memcpy(s->event, v, k);
        s->event[k] = '\0';
        return 0;
    }
    if (flen == 5 && memcmp(p, "error", 5) == 0) {   /* legacy llama.cpp */
        memcpy(s->event, "error", 6);
        return append_data(s, v, vlen);
    }
    return 0;   /* id, retry, unknown fields */
}

static int feed_body(rlaif_sse *s, const char *p, size_t n) {
    size_t i = 0;
    if (s->last_cr && n > 0 && p[0] == '\n') i = 1;   /* the LF of a split CRLF */
    if (n > 0) s->last_cr = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && p[j] != '\n' && p[j] != '\r') j++;
        if (j == n) {   /* partial line: keep it */
            if (grow(&s->line, &s->line_cap, s->line_len + (n - i) + 1) != 0) return -1;
            memcpy(s->line + s->line_len, p + i, n - i);
            s->line_len += n - i;
            break;
        }
        int rc;
        if (s->line_len) {
            if (grow(&s->line, &s->line_cap, s->line_len + (j - i) + 1) != 0) return -1;
            memcpy(s->line + s->line_len, p + i, j - i);
            s->line_len += j - i;
            rc = process_line(s, s->line, s->line_len);
            s->line_len = 0;
        } else {
            rc = process_line(s, p + i, j - i);
        }
        if (rc) return 1;
        if (p[j] == '\r') {
            if (j + 1 < n) {
                if (p[j + 1] == '\n') j++;
            } else {
                s->last_cr = 1;
            }
        }
        i = j + 1;
    }
    return 0;
}

static const char BOM[3] = {'\xEF', '\xBB', '\xBF'};

int rlaif_sse_feed(rlaif_sse *s, const char *p, size_t n) {
    if (s->stopped) return 1;
    if (!s->started) {   /* drop one leading BOM, which may itself arrive split */
        while (n > 0 && s->bom_len < 3 && p[0] == BOM[s->bom_len]) s->bom_len++, p++, n--;
        if (s->bom_len < 3 && n == 0) return 0;
        s->started = 1;
        if (s->bom_len < 3 && s->bom_len > 0 && feed_body(s, BOM, s->bom_len) != 0) return 1;
    }
    return feed_body(s, p, n) != 0;
}

int rlaif_sse_finish(rlaif_sse *s) {
    if (s->stopped) return 1;
    if (!s->started) {   /* a stream of 1-2 bytes that looked like a BOM prefix */
        s->started = 1;
        if (s->bom_len < 3 && s->bom_len > 0 && feed_body(s, BOM, s->bom_len) != 0) return 1;
    }
    if (s->line_len) {
        int rc = process_line(s, s->line, s->line_len);
        s->line_len = 0;
        if (rc) return 1;
    }
    return dispatch(s) != 0;
}

int rlaif_ndjson_each(const char *p, size_t n, rlaif_sse_cb cb, void *ud) {
    size_t i = 0;
    while (i < n) {
        const char *nl = memchr(p + i, '\n', n - i);
        size_t end = nl ? (size_t)(nl - p) : n;
        size_t e = end;
        if (e > i && p[e - 1] == '\r') e--;
        size_t b = i;
        while (b < e && (p[b] == ' ' || p[b] == '\t')) b++;
        if (e > b) {
            char *line = malloc(e - b + 1);
            if (line == NULL) return -1;
            memcpy(line, p + b, e - b);
            line[e - b] = '\0';
            int rc = cb(ud, "message", line, e - b);
            free(line);
            if (rc) return rc;
        }
        i = end + 1;
    }
    return 0;
}
