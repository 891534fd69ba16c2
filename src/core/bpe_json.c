/* src/core/bpe_json.c -- a small, fast JSON reader for tokenizer files.
 *
 * tokenizer.json files hold 150k-280k vocabulary entries and merges; cJSON needs
 * ~140 ms for Qwen3's 11 MB, more than the whole load budget. This reader parses
 * into one flat array of nodes and unescapes strings in place inside its own copy
 * of the text, so a load is a handful of allocations.
 *
 * It is not a general JSON library: numbers are doubles, depth is limited to 64,
 * and errors name the byte offset and line ("tokenizer.json: line 3: ...").
 * Ownership: bpe_json owns its node array and text copy; bpe_json_free releases both. */
#include <stdlib.h>
#include <string.h>

#include "bpe_impl.h"

typedef struct jp {
    bpe_json   *j;
    char       *s;     /* cursor */
    char       *end;
    const char *name;
    int         depth;
} jp;

static rlaif_status jp_fail(jp *p, const char *what) {
    if (p->s >= p->end)
        return rlaif_fail(RLAIF_EFORMAT, "%s: unexpected end of file (truncated JSON?) while reading %s",
                          p->name, what);
    size_t line = 1;
    for (const char *c = p->j->buf; c < p->s; c++) line += *c == '\n';
    return rlaif_fail(RLAIF_EFORMAT, "%s: line %zu: invalid JSON at byte %zu (%s)", p->name, line,
                      (size_t)(p->s - p->j->buf), what);
}

static uint32_t new_node(jp *p, uint8_t type) {
    bpe_json *j = p->j;
    if (j->count == j->cap) {
        size_t cap = j->cap * 2;
        bpe_jnode *n = realloc(j->n, cap * sizeof *n);
        if (!n) return 0;
        j->n = n;
        j->cap = cap;
    }
    bpe_jnode *n = &j->n[j->count];
    memset(n, 0, sizeof *n);
    n->type = type;
    return (uint32_t)j->count++;
}

static inline void skip_ws(jp *p) {
    while (p->s < p->end && (*p->s == ' ' || *p->s == '\n' || *p->s == '\r' || *p->s == '\t')) p->s++;
}

static int hex4(const char *s, unsigned *v) {
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        unsigned d;
        if (c >= '0' && c <= '9') d = (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') d = (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') d = (unsigned)(c - 'A' + 10);
        else return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

static char *put_utf8(char *d, unsigned cp) {
    if (cp < 0x80) *d++ = (char)cp;
    else if (cp < 0x800) {
        *d++ = (char)(0xC0 | cp >> 6);
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *d++ = (char)(0xE0 | cp >> 12);
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    } else {
        *d++ = (char)(0xF0 | cp >> 18);
        *d++ = (char)(0x80 | ((cp >> 12) & 0x3F));
        *d++ = (char)(0x80 | ((cp >> 6) & 0x3F));
        *d++ = (char)(0x80 | (cp & 0x3F));
    }
    return d;
}

/* p->s is at the opening quote; unescape in place. */
static rlaif_status parse_string(jp *p, uint32_t node) {
    char *s = ++p->s, *d = s;
    for (;;) {
        char *q = s;
        while (q < p->end && *q != '"' && *q != '\\') q++; /* fast run */
        if (d != s) memmove(d, s, (size_t)(q - s));
        d += q - s;
        s = q;
        if (s >= p->end) {
            p->s = s;
            return jp_fail(p, "string");
        }
        if (*s == '"') break;
        if (s + 1 >= p->end) {
            p->s = s + 1;
            return jp_fail(p, "string escape");
        }
        char e = s[1];
        s += 2;
        switch (e) {
        case '"': *d++ = '"'; break;
        case '\\': *d++ = '\\'; break;
        case '/': *d++ = '/'; break;
        case 'b': *d++ = '\b'; break;
        case 'f': *d++ = '\f'; break;
        case 'n': *d++ = '\n'; break;
        case 'r': *d++ = '\r'; break;
        case 't': *d++ = '\t'; break;
        case 'u': {
            unsigned cp, lo;
            if (p->end - s < 4 || hex4(s, &cp)) {
                p->s = s;
                return jp_fail(p, "bad \\u escape");
            }
            s += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && p->end - s >= 6 && s[0] == '\\' && s[1] == 'u' &&
                !hex4(s + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                s += 6;
            } else if (cp >= 0xD800 && cp <= 0xDFFF) {
                cp = 0xFFFD; /* lone surrogate, as JavaScript's TextEncoder does */
            }
            d = put_utf8(d, cp);
            break;
        }
        default:
            p->s = s - 1;
            return jp_fail(p, "unknown escape");
        }
    }
    *d = 0;
    p->j->n[node].str = p->s;
    p->j->n[node].len = (uint32_t)(d - p->s);
    p->s = s + 1;
    return RLAIF_OK;
}

static rlaif_status parse_value(jp *p, uint32_t *out);

static rlaif_status parse_container(jp *p, uint32_t node, int obj) {
    char close = obj ? '}' : ']';
    p->s++;
    if (++p->depth > 64) return jp_fail(p, "nesting deeper than 64");
    skip_ws(p);
    if (p->s < p->end && *p->s == close) {
        p->s++;
        p->depth--;
        return RLAIF_OK;
    }
    uint32_t prev = 0, count = 0;
    for (;;) {
        uint32_t child;
        rlaif_status st;
        skip_ws(p);
        if (obj) {
            if (p->s >= p->end || *p->s != '"') return jp_fail(p, "expected an object key");
            child = new_node(p, J_STR);
            if (!child) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", p->name);
            if ((st = parse_string(p, child))) return st;
            skip_ws(p);
            if (p->s >= p->end || *p->s != ':') return jp_fail(p, "expected ':'");
            p->s++;
            uint32_t v;
            if ((st = parse_value(p, &v))) return st;
            p->j->n[child].val = v;
        } else {
            if ((st = parse_value(p, &child))) return st;
        }
        if (prev) p->j->n[prev].next = child;
        else p->j->n[node].first = child;
        prev = child;
        count++;
        skip_ws(p);
        if (p->s < p->end && *p->s == ',') {
            p->s++;
            continue;
        }
        if (p->s < p->end && *p->s == close) {
            p->s++;
            break;
        }
        return jp_fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
    p->j->n[node].len = count;
    p->depth--;
    return RLAIF_OK;
}

static rlaif_status parse_value(jp *p, uint32_t *out) {
    skip_ws(p);
    if (p->s >= p->end) return jp_fail(p, "a value");
    char c = *p->s;
    uint32_t node;
    switch (c) {
    case '{':
    case '[':
        node = new_node(p, c == '{' ? J_OBJ : J_ARR);
        if (!node) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", p->name);
        *out = node;
        return parse_container(p, node, c == '{');
    case '"':
        node = new_node(p, J_STR);
        if (!node) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", p->name);
        *out = node;
        return parse_string(p, node);
    case 't': case 'f': case 'n': {
        const char *word = c == 't' ? "true" : c == 'f' ? "false" : "null";
        size_t l = strlen(word);
        if ((size_t)(p->end - p->s) < l || memcmp(p->s, word, l) != 0) return jp_fail(p, "a literal");
        node = new_node(p, c == 't' ? J_TRUE : c == 'f' ? J_FALSE : J_NULL);
        if (!node) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", p->name);
        p->s += l;
        *out = node;
        return RLAIF_OK;
    }
    default: {
        if (c != '-' && (c < '0' || c > '9')) return jp_fail(p, "a value");
        char *e = p->s;
        double v;
        uint64_t u = 0;
        while (e < p->end && *e >= '0' && *e <= '9' && e - p->s < 15) u = u * 10 + (uint64_t)(*e++ - '0');
        if (e > p->s && (e == p->end || (*e != '.' && *e != 'e' && *e != 'E' && (*e < '0' || *e > '9'))) &&
            !(*p->s == '0' && e - p->s > 1)) {
            v = (double)u; /* a plain integer (vocabulary ids): exact, no strtod */
        } else {
            v = strtod(p->s, &e); /* the buffer is NUL-terminated */
            if (e == p->s || e > p->end) return jp_fail(p, "a number");
        }
        node = new_node(p, J_NUM);
        if (!node) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", p->name);
        p->j->n[node].num = v;
        p->s = e;
        *out = node;
        return RLAIF_OK;
    }
    }
}

rlaif_status bpe_json_parse_owned(bpe_json *j, char *text, size_t len, const char *name) {
    memset(j, 0, sizeof *j);
    j->buf = text;
    /* about one node per 14 bytes in tokenizer files; pages never touched cost nothing */
    j->cap = len / 12 + 64;
    j->n = malloc(j->cap * sizeof *j->n);
    jp p = {j, j->buf, j->buf + len, name, 0};
    rlaif_status st;
    if (j->n) new_node(&p, J_NULL); /* node 0 means "none"; its index is 0 even on success */
    if (j->count != 1) {
        st = rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", name);
        goto done;
    }
    uint32_t root;
    if ((st = parse_value(&p, &root))) goto done;
    skip_ws(&p);
    if (p.s != p.end) st = jp_fail(&p, "trailing characters after the top-level value");
done:
    if (st) bpe_json_free(j);
    return st;
}

rlaif_status bpe_json_parse(bpe_json *j, const char *text, size_t len, const char *name) {
    memset(j, 0, sizeof *j);
    char *buf = malloc(len + 1);
    if (!buf) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", name);
    memcpy(buf, text, len);
    buf[len] = 0;
    return bpe_json_parse_owned(j, buf, len, name);
}

void bpe_json_free(bpe_json *j) {
    free(j->n);
    free(j->buf);
    memset(j, 0, sizeof *j);
}

uint32_t bpe_json_get(const bpe_json *j, uint32_t o, const char *key) {
    if (!o || j->n[o].type != J_OBJ) return 0;
    size_t kl = strlen(key);
    for (uint32_t k = j->n[o].first; k; k = j->n[k].next)
        if (j->n[k].len == kl && memcmp(j->n[k].str, key, kl) == 0) return j->n[k].val;
    return 0;
}
