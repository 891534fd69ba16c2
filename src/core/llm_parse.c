/* src/core/llm_parse.c -- every backend's answer (whole body or stream) into the
 * normalized response of llm.h, and error bodies into rlaif_llm_error.
 *
 * One accumulator per response: a non-streamed body is parsed as a single
 * chunk, a stream as many chunks (SSE events or NDJSON lines) merged in order,
 * so both paths share one merge function per format. Unknown fields are
 * ignored. A stream must reach its end marker ([DONE], a finish chunk, stop:true,
 * done:true, message_stop, TGI's final details); otherwise it "ended early" and
 * the caller retries it. Quirks handled here (llm-apis.md): legacy top_logprobs
 * objects vs chat arrays, `null` echo entries, -9999.0 / -1.2676506e30 = -inf,
 * "bytes:\xNN" legacy tokens, string errors (Ollama, TGI), llama.cpp's old
 * `probs`/`tok_str` and post-sampling `prob` formats, Gemini's omitted zero
 * logProbability, Ollama's "" finish_reason, errors after HTTP 200.
 * Ownership: the accumulator owns everything until finish hands the result
 * (a new cJSON tree) to the caller; inputs are borrowed. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llm.h"

/* ---- small cJSON helpers ---- */

static const char *jstr(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int jnum(const cJSON *o, const char *k, double *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(v)) return 0;
    *out = v->valuedouble;
    return 1;
}

static const cJSON *jget(const cJSON *o, const char *k) { return cJSON_GetObjectItemCaseSensitive(o, k); }

/* Logprob sentinels for "impossible" become -inf. */
static double lp_norm(double v) { return v <= -9999.0 ? -INFINITY : v; }

static double prob_to_lp(double p) { return p > 0 ? log(p) : -INFINITY; }

/* ---- the accumulator ---- */

typedef struct choice_acc {
    int index;
    char *text;
    size_t len, cap;
    char finish[32];
    cJSON *tokens;   /* array of token objects */
} choice_acc;

typedef struct acc {
    rlaif_llm_format fmt;
    int stream;
    choice_acc *ch;
    int nch, chcap;
    double prompt_tokens, completion_tokens;
    int has_prompt, has_completion;
    char id[128], model[128];
    int done;         /* the end marker was seen */
    int got;          /* at least one well-formed chunk */
    int bad;          /* a malformed chunk (message in badmsg) */
    char badmsg[200];
    int has_err;
    rlaif_llm_error *err;
} acc;

/* A choice's `index` from the server: an integer in [0, MAX_CHOICE] (n is at
 * most a few hundred), never 1e40 or INT_MIN cast into an int. pos is its
 * place in the array, the index when the field is absent. -1 (bad set) if not. */
#define MAX_CHOICE 1000000
static void set_bad(acc *a, const char *msg);
static int choice_index(acc *a, const cJSON *ch, int pos) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(ch, "index");
    if (v == NULL) return pos;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= MAX_CHOICE) ||
        v->valuedouble != (double)(int)v->valuedouble) {
        char msg[96];
        if (cJSON_IsNumber(v)) snprintf(msg, sizeof msg, "choice index %.15g is not an integer in [0, %d]",
                                        v->valuedouble, MAX_CHOICE);
        else snprintf(msg, sizeof msg, "choice index is not a number");
        set_bad(a, msg);
        return -1;
    }
    return (int)v->valuedouble;
}

static choice_acc *choice_get(acc *a, int index) {
    for (int i = 0; i < a->nch; i++)
        if (a->ch[i].index == index) return &a->ch[i];
    if (a->nch == a->chcap) {
        int cap = a->chcap ? a->chcap * 2 : 4;
        choice_acc *c = realloc(a->ch, (size_t)cap * sizeof *c);
        if (c == NULL) return NULL;
        a->ch = c;
        a->chcap = cap;
    }
    choice_acc *c = &a->ch[a->nch++];
    memset(c, 0, sizeof *c);
    c->index = index;
    c->tokens = cJSON_CreateArray();
    return c->tokens ? c : (a->nch--, NULL);
}

static int text_append(choice_acc *c, const char *s, size_t n) {
    if (c->len + n + 1 > c->cap) {
        size_t cap = c->cap ? c->cap : 64;
        while (cap < c->len + n + 1) cap *= 2;
        char *t = realloc(c->text, cap);
        if (t == NULL) return -1;
        c->text = t;
        c->cap = cap;
    }
    memcpy(c->text + c->len, s, n);
    c->len += n;
    c->text[c->len] = '\0';
    return 0;
}

static void text_set(choice_acc *c, const char *s) {
    c->len = 0;
    text_append(c, s, strlen(s));
}

static void set_finish(choice_acc *c, const char *f) {
    if (f == NULL || *f == '\0') return;   /* Ollama's old "" means "not yet" */
    const char *m = f;
    if (!strcasecmp(f, "STOP") || !strcmp(f, "eos_token") || !strcmp(f, "stop_sequence") ||
        !strcmp(f, "end_turn") || !strcmp(f, "eos") || !strcmp(f, "word"))
        m = "stop";
    else if (!strcasecmp(f, "MAX_TOKENS") || !strcmp(f, "max_tokens") || !strcmp(f, "limit"))
        m = "length";
    snprintf(c->finish, sizeof c->finish, "%s", m);
    for (char *p = c->finish; *p; p++) *p = (char)tolower((unsigned char)*p);
}

static void acc_free(acc *a) {
    for (int i = 0; i < a->nch; i++) {
        free(a->ch[i].text);
        cJSON_Delete(a->ch[i].tokens);
    }
    free(a->ch);
    a->ch = NULL;
    a->nch = 0;
}

static void set_bad(acc *a, const char *msg) {
    if (!a->bad) snprintf(a->badmsg, sizeof a->badmsg, "%s", msg);
    a->bad = 1;
}

static void copy_meta(acc *a, const cJSON *o, const char *idkey, const char *modelkey) {
    const char *s;
    if ((s = jstr(o, idkey)) != NULL && *s) snprintf(a->id, sizeof a->id, "%s", s);
    if ((s = jstr(o, modelkey)) != NULL && *s) snprintf(a->model, sizeof a->model, "%s", s);
}

/* ---- tokens ---- */

/* Legacy completions encode undecodable pieces as "bytes:\xe2\x80". */
static int legacy_bytes(const char *tok, char *out, size_t cap, size_t *n) {
    if (strncmp(tok, "bytes:", 6) != 0) return 0;
    const char *p = tok + 6;
    size_t k = 0;
    while (*p) {
        unsigned v;
        if (p[0] == '\\' && p[1] == 'x' && isxdigit((unsigned char)p[2]) && isxdigit((unsigned char)p[3]) &&
            sscanf(p + 2, "%2x", &v) == 1) {
            if (k < cap) out[k++] = (char)v;
            p += 4;
        } else {
            if (k < cap) out[k++] = *p;
            p++;
        }
    }
    *n = k;
    return 1;
}

/* A token object. bytes: a JSON int array, JSON null (no bytes), or NULL
 * (absent: the token text's own bytes). */
static cJSON *mk_token(const char *tok, int has_lp, double lp, const cJSON *bytes, const cJSON *id) {
    cJSON *t = cJSON_CreateObject();
    if (t == NULL) return NULL;
    if (tok == NULL) tok = "";
    char buf[256];
    size_t nb = 0;
    if (legacy_bytes(tok, buf, sizeof buf - 1, &nb)) {
        buf[nb] = '\0';
        cJSON_AddStringToObject(t, "token", buf);
        cJSON_AddStringToObject(t, "bytes", buf);
    } else {
        cJSON_AddStringToObject(t, "token", tok);
        if (cJSON_IsArray(bytes)) {   /* only when every entry is a byte 0..255; else like null */
            int n = cJSON_GetArraySize(bytes), k = 0, ok = 1;
            char *b = malloc((size_t)n + 1);
            const cJSON *e;
            cJSON_ArrayForEach(e, bytes) {
                if (!cJSON_IsNumber(e) || !(e->valuedouble >= 0 && e->valuedouble <= 255) ||
                    e->valuedouble != (double)(int)e->valuedouble) {
                    ok = 0;
                    break;
                }
                if (b != NULL) b[k++] = (char)(unsigned char)(int)e->valuedouble;
            }
            if (b != NULL && ok) {
                b[k] = '\0';
                cJSON_AddStringToObject(t, "bytes", b);
            }
            free(b);
        } else if (bytes == NULL) {
            cJSON_AddStringToObject(t, "bytes", tok);
        }
    }
    if (has_lp) cJSON_AddNumberToObject(t, "logprob", lp_norm(lp));
    if (cJSON_IsNumber(id)) cJSON_AddNumberToObject(t, "id", id->valuedouble);
    return t;
}

static cJSON *mk_top(const char *tok, double lp) {
    cJSON *t = cJSON_CreateObject();
    if (t == NULL) return NULL;
    cJSON_AddStringToObject(t, "token", tok ? tok : "");
    cJSON_AddNumberToObject(t, "logprob", lp_norm(lp));
    return t;
}

typedef struct { cJSON *item; double lp; int pos; } top_ent;

static int top_cmp(const void *x, const void *y) {
    const top_ent *a = x, *b = y;
    if (a->lp != b->lp) return a->lp > b->lp ? -1 : 1;   /* NaN ties, then position decides */
    return (a->pos > b->pos) - (a->pos < b->pos);
}

/* Sort an array of {token, logprob} by logprob, highest first (stable). */
static void sort_top(cJSON *arr) {
    int n = cJSON_GetArraySize(arr);
    if (n < 2) return;
    top_ent *e = malloc((size_t)n * sizeof *e);
    if (e == NULL) return;
    int k = 0;
    for (cJSON *it = arr->child; it; it = it->next, k++) {
        double lp = -INFINITY;
        jnum(it, "logprob", &lp);
        e[k] = (top_ent){it, lp, k};
    }
    qsort(e, (size_t)n, sizeof *e, top_cmp);
    while (arr->child) cJSON_DetachItemViaPointer(arr, arr->child);
    for (int i = 0; i < n; i++) cJSON_AddItemToArray(arr, e[i].item);
    free(e);
}

/* Attach `top` (sorted) to token t and append t to the choice. */
static void push_token(choice_acc *c, cJSON *t, cJSON *top) {
    if (t == NULL) {
        cJSON_Delete(top);
        return;
    }
    if (top == NULL) top = cJSON_CreateArray();
    sort_top(top);
    cJSON_AddItemToObject(t, "top", top);
    cJSON_AddItemToArray(c->tokens, t);
}

/* One chat-style logprobs entry: {token, logprob, bytes, id?, top_logprobs: [...]}.
 * Also llama.cpp native (top_logprobs, or top_probs with prob) and Ollama. */
static void merge_chat_entry(choice_acc *c, const cJSON *e) {
    if (!cJSON_IsObject(e)) return;
    double lp = 0;
    int has = jnum(e, "logprob", &lp);
    if (!has && jnum(e, "prob", &lp)) has = 1, lp = prob_to_lp(lp);
    cJSON *t = mk_token(jstr(e, "token"), has, lp, jget(e, "bytes"), jget(e, "id"));
    cJSON *top = cJSON_CreateArray();
    const cJSON *tl = jget(e, "top_logprobs");
    int is_prob = 0;
    if (!cJSON_IsArray(tl)) tl = jget(e, "top_probs"), is_prob = 1;
    const cJSON *x;
    cJSON_ArrayForEach(x, tl) {
        double v;
        if (jnum(x, "logprob", &v)) cJSON_AddItemToArray(top, mk_top(jstr(x, "token"), v));
        else if (is_prob && jnum(x, "prob", &v)) cJSON_AddItemToArray(top, mk_top(jstr(x, "token"), prob_to_lp(v)));
    }
    push_token(c, t, top);
}

static void merge_chat_logprobs(choice_acc *c, const cJSON *content) {
    const cJSON *e;
    cJSON_ArrayForEach(e, content) merge_chat_entry(c, e);
}

/* Legacy completions logprobs: parallel arrays, top_logprobs[j] an object keyed
 * by token string (or null with echo). */
static void merge_legacy_logprobs(choice_acc *c, const cJSON *lp) {
    const cJSON *toks = jget(lp, "tokens"), *tlp = jget(lp, "token_logprobs"), *top = jget(lp, "top_logprobs");
    int n = cJSON_GetArraySize(toks);
    const cJSON *lpi = cJSON_IsArray(tlp) ? tlp->child : NULL;
    const cJSON *topi = cJSON_IsArray(top) ? top->child : NULL;
    const cJSON *ti = toks->child;
    for (int j = 0; j < n && ti; j++, ti = ti->next) {
        int has = cJSON_IsNumber(lpi);
        cJSON *t = mk_token(cJSON_IsString(ti) ? ti->valuestring : "", has, has ? lpi->valuedouble : 0, NULL, NULL);
        cJSON *arr = cJSON_CreateArray();
        if (cJSON_IsObject(topi)) {
            const cJSON *kv;
            cJSON_ArrayForEach(kv, topi) if (cJSON_IsNumber(kv)) {
                char buf[256];
                size_t nb;
                const char *key = kv->string;
                if (legacy_bytes(key, buf, sizeof buf - 1, &nb)) buf[nb] = '\0', key = buf;
                cJSON_AddItemToArray(arr, mk_top(key, kv->valuedouble));
            }
        }
        push_token(c, t, arr);
        if (lpi) lpi = lpi->next;
        if (topi) topi = topi->next;
    }
}

/* ---- errors ---- */

static int contains_ci(const char *hay, const char *needle) { return hay && strcasestr(hay, needle) != NULL; }

/* Fill err from a parsed error document (any server's shape). */
static void error_from_json(const cJSON *root, int http_status, const char *raw, rlaif_llm_error *err) {
    const cJSON *e = jget(root, "error");
    const char *msg = NULL, *type = NULL, *status_s = NULL;
    const cJSON *code = NULL;
    if (cJSON_IsObject(e)) {
        msg = jstr(e, "message");
        type = jstr(e, "type");
        code = jget(e, "code");
        status_s = jstr(e, "status");
    } else if (cJSON_IsString(e)) {
        msg = e->valuestring;
        type = jstr(root, "error_type");
    } else {
        msg = jstr(root, "message");
        type = jstr(root, "type");
        code = jget(root, "code");
        const char *detail = jstr(root, "detail");
        if (msg == NULL && detail) msg = detail;
    }
    char codebuf[64] = "";
    if (cJSON_IsString(code)) snprintf(codebuf, sizeof codebuf, "%s", code->valuestring);
    if (err->status == 0 || err->status == 200) {
        if (cJSON_IsNumber(code) && code->valuedouble >= 100 && code->valuedouble < 600)
            err->status = (int)code->valuedouble;
    }
    int st = err->status;
    if (msg == NULL || *msg == '\0') msg = raw && *raw ? raw : "(no message)";
    const char *tag = codebuf[0] ? codebuf : type ? type : status_s;
    if (tag)
        snprintf(err->message, sizeof err->message, "%.300s [%s]", msg, tag);
    else
        snprintf(err->message, sizeof err->message, "%.380s", msg);

    /* quota / spend limits: a 429 that waiting will not fix */
    if (contains_ci(raw, "insufficient_quota") || contains_ci(raw, "spend_limit") ||
        contains_ci(raw, "billing_hard_limit") || contains_ci(raw, "PerDay") ||
        contains_ci(raw, "per day") || contains_ci(raw, "daily"))
        err->quota = 1;
    /* capability: logprobs refused (OpenAI reasoning models, Gemini, vLLM limits) */
    if ((st == 400 || st == 403 || st == 404 || st == 422 || st == 501) && contains_ci(msg, "logprob"))
        err->capability = 1;
    if (st == 501) err->capability = 1;
    if (st == 0 || st == 200) err->retryable = 1;   /* an error inside a stream without a code */
    else err->retryable = rlaif_http_status_retryable(st);
    if (err->quota || err->capability) err->retryable = 0;
    (void)http_status;

    /* Gemini: details[] RetryInfo {retryDelay: "36s"} */
    const cJSON *details = cJSON_IsObject(e) ? jget(e, "details") : NULL;
    const cJSON *d;
    cJSON_ArrayForEach(d, details) {
        const char *t = jstr(d, "@type");
        const char *delay = jstr(d, "retryDelay");
        if (t && strstr(t, "RetryInfo") && delay) {
            char *end;
            double v = strtod(delay, &end);
            if (end != delay && v >= 0) err->retry_after = v;
        }
    }
}

void rlaif_llm_error_from_body(int status, const char *body, size_t len, rlaif_llm_error *err) {
    memset(err, 0, sizeof *err);
    err->status = status;
    err->retry_after = -1;
    char raw[300];
    size_t n = len < sizeof raw - 1 ? len : sizeof raw - 1;
    for (size_t i = 0; i < n; i++) raw[i] = (body[i] == '\n' || body[i] == '\r') ? ' ' : body[i];
    raw[n] = '\0';
    cJSON *root = body && len ? cJSON_ParseWithLength(body, len) : NULL;
    if (cJSON_IsArray(root) && cJSON_GetArraySize(root) > 0) {   /* Gemini streams: [ {error} ] */
        cJSON *first = cJSON_DetachItemFromArray(root, 0);
        cJSON_Delete(root);
        root = first;
    }
    if (cJSON_IsObject(root)) {
        /* search the full body for quota markers, not just the first 300 bytes */
        char *full = malloc(len + 1);
        if (full) {
            memcpy(full, body, len);
            full[len] = '\0';
        }
        error_from_json(root, status, full ? full : raw, err);
        free(full);
        /* when the message came from the raw fallback keep it short */
    } else {
        snprintf(err->message, sizeof err->message, "HTTP %d%s%s", status, n ? ": " : "", raw);
        err->retryable = rlaif_http_status_retryable(status);
    }
    if (err->message[0] == '\0') snprintf(err->message, sizeof err->message, "HTTP %d", status);
    cJSON_Delete(root);
}

void rlaif_llm_scrub(char *s, const char *secret) {
    if (s == NULL || secret == NULL || strlen(secret) < 4) return;
    size_t k = strlen(secret);
    char *p;
    while ((p = strstr(s, secret)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + k, strlen(p + k) + 1);
    }
}

/* Mark the response failed and return its cleared error record (no retry-after). */
static rlaif_llm_error *err_begin(acc *a) {
    a->has_err = 1;
    memset(a->err, 0, sizeof *a->err);
    a->err->retry_after = -1;
    return a->err;
}

/* A server error found inside a 2xx body (mid-stream error, Ollama string error). */
static void body_error(acc *a, const cJSON *o) {
    if (a->has_err) return;
    err_begin(a);
    char *raw = cJSON_PrintUnformatted(o);
    error_from_json(o, 200, raw, a->err);
    free(raw);
}

static int is_error_doc(const cJSON *o) {
    const cJSON *e = jget(o, "error");
    if (cJSON_IsObject(e) || cJSON_IsString(e)) return 1;
    const char *t = jstr(o, "type");
    if (t && !strcmp(t, "error")) return 1;
    const char *obj = jstr(o, "object");
    return obj && !strcmp(obj, "error");
}

/* When o is an error document, record it as the response's error and return 1;
 * every merge_* starts with it. */
static int take_error_doc(acc *a, const cJSON *o) {
    if (!is_error_doc(o)) return 0;
    body_error(a, o);
    return 1;
}

static void read_usage_openai(acc *a, const cJSON *u) {
    double v;
    if (!cJSON_IsObject(u)) return;
    if (jnum(u, "prompt_tokens", &v)) a->prompt_tokens = v, a->has_prompt = 1;
    if (jnum(u, "completion_tokens", &v)) a->completion_tokens = v, a->has_completion = 1;
}

/* ---- per-format merges: one JSON document (whole body or one chunk) ---- */

static void merge_openai(acc *a, const cJSON *o) {
    if (take_error_doc(a, o)) return;
    const cJSON *choices = jget(o, "choices");
    if (!cJSON_IsArray(choices)) {
        if (!a->stream || !cJSON_IsObject(jget(o, "usage"))) {
            set_bad(a, "response has no `choices` array");
            return;
        }
    }
    a->got = 1;
    copy_meta(a, o, "id", "model");
    read_usage_openai(a, jget(o, "usage"));
    const cJSON *ch;
    int pos = 0;
    cJSON_ArrayForEach(ch, choices) {
        int idx = choice_index(a, ch, pos++);
        choice_acc *c = idx < 0 ? NULL : choice_get(a, idx);
        if (c == NULL) return;
        const char *text = jstr(ch, "text");
        if (text == NULL) {
            const cJSON *m = jget(ch, "message");
            if (!cJSON_IsObject(m)) m = jget(ch, "delta");
            text = jstr(m, "content");
        }
        if (text) {
            if (a->stream) text_append(c, text, strlen(text));
            else text_set(c, text);
        }
        const cJSON *lp = jget(ch, "logprobs");
        if (cJSON_IsObject(lp)) {
            const cJSON *content = jget(lp, "content");
            if (cJSON_IsArray(content)) merge_chat_logprobs(c, content);
            else if (cJSON_IsArray(jget(lp, "tokens"))) merge_legacy_logprobs(c, lp);
        }
        set_finish(c, jstr(ch, "finish_reason"));
    }
    if (!a->stream) a->done = 1;
}

static void merge_llamacpp(acc *a, const cJSON *o) {
    if (take_error_doc(a, o)) return;
    const char *content = jstr(o, "content");
    const cJSON *probs = jget(o, "completion_probabilities");
    if (content == NULL && !cJSON_IsArray(probs)) {
        set_bad(a, "response has no `content`");
        return;
    }
    a->got = 1;
    choice_acc *c = choice_get(a, 0);
    if (c == NULL) return;
    const char *model = jstr(o, "model");
    if (model) snprintf(a->model, sizeof a->model, "%s", model);
    if (content) text_append(c, content, strlen(content));
    const cJSON *e;
    cJSON_ArrayForEach(e, probs) {
        const cJSON *old = jget(e, "probs");
        if (cJSON_IsArray(old)) {   /* pre-Dec-2024: {content, probs: [{tok_str, prob}]} */
            const char *tok = jstr(e, "content");
            cJSON *top = cJSON_CreateArray();
            int has = 0;
            double lp = 0;
            const cJSON *x;
            cJSON_ArrayForEach(x, old) {
                double p;
                const char *ts = jstr(x, "tok_str");
                if (!jnum(x, "prob", &p)) continue;
                cJSON_AddItemToArray(top, mk_top(ts, prob_to_lp(p)));
                if (!has && tok && ts && !strcmp(ts, tok)) has = 1, lp = prob_to_lp(p);
            }
            push_token(c, mk_token(tok, has, lp, NULL, NULL), top);
        } else {
            merge_chat_entry(c, e);
        }
    }
    double v;
    if (jnum(o, "tokens_evaluated", &v)) a->prompt_tokens = v, a->has_prompt = 1;
    if (jnum(o, "tokens_predicted", &v)) a->completion_tokens = v, a->has_completion = 1;
    const cJSON *tm = jget(o, "timings");
    if (cJSON_IsObject(tm)) {
        if (jnum(tm, "prompt_n", &v) && !a->has_prompt) a->prompt_tokens = v, a->has_prompt = 1;
        if (jnum(tm, "predicted_n", &v) && !a->has_completion) a->completion_tokens = v, a->has_completion = 1;
    }
    const cJSON *stop = jget(o, "stop");
    if (!a->stream || cJSON_IsTrue(stop)) {
        a->done = 1;
        const char *st = jstr(o, "stop_type");
        if (st && strcmp(st, "none") != 0) set_finish(c, st);
        else if (cJSON_IsTrue(jget(o, "stopped_eos")) || cJSON_IsTrue(jget(o, "stopped_word"))) set_finish(c, "stop");
        else if (cJSON_IsTrue(jget(o, "stopped_limit"))) set_finish(c, "length");
    }
}

static void merge_ollama(acc *a, const cJSON *o) {
    if (take_error_doc(a, o)) return;
    const char *text = jstr(o, "response");
    const cJSON *msg = jget(o, "message");
    if (text == NULL && cJSON_IsObject(msg)) text = jstr(msg, "content");
    if (text == NULL && !cJSON_IsBool(jget(o, "done"))) {
        set_bad(a, "response has neither `response`, `message` nor `done`");
        return;
    }
    a->got = 1;
    choice_acc *c = choice_get(a, 0);
    if (c == NULL) return;
    const char *model = jstr(o, "model");
    if (model) snprintf(a->model, sizeof a->model, "%s", model);
    if (text) text_append(c, text, strlen(text));
    const cJSON *lp = jget(o, "logprobs");
    if (cJSON_IsArray(lp)) merge_chat_logprobs(c, lp);
    double v;
    if (jnum(o, "prompt_eval_count", &v)) a->prompt_tokens = v, a->has_prompt = 1;
    if (jnum(o, "eval_count", &v)) a->completion_tokens = v, a->has_completion = 1;
    if (cJSON_IsTrue(jget(o, "done"))) {
        a->done = 1;
        set_finish(c, jstr(o, "done_reason"));
    }
    if (!a->stream && !cJSON_IsFalse(jget(o, "done"))) a->done = 1;
}

static void tgi_token(choice_acc *c, const cJSON *tok, const cJSON *tops) {
    double lp = 0;
    int has = jnum(tok, "logprob", &lp);
    cJSON *top = cJSON_CreateArray();
    const cJSON *x;
    cJSON_ArrayForEach(x, tops) {
        double v;
        if (jnum(x, "logprob", &v)) cJSON_AddItemToArray(top, mk_top(jstr(x, "text"), v));
    }
    push_token(c, mk_token(jstr(tok, "text"), has, lp, NULL, jget(tok, "id")), top);
}

static void tgi_details(acc *a, choice_acc *c, const cJSON *d, int with_tokens) {
    if (!cJSON_IsObject(d)) return;
    set_finish(c, jstr(d, "finish_reason"));
    double v;
    if (jnum(d, "generated_tokens", &v)) a->completion_tokens = v, a->has_completion = 1;
    const cJSON *prefill = jget(d, "prefill");
    if (cJSON_IsArray(prefill) && cJSON_GetArraySize(prefill) > 0)
        a->prompt_tokens = cJSON_GetArraySize(prefill), a->has_prompt = 1;
    if (!with_tokens) return;
    const cJSON *toks = jget(d, "tokens"), *tops = jget(d, "top_tokens");
    const cJSON *ti, *topi = cJSON_IsArray(tops) ? tops->child : NULL;
    cJSON_ArrayForEach(ti, toks) {
        tgi_token(c, ti, topi);
        if (topi) topi = topi->next;
    }
}

static void merge_tgi(acc *a, const cJSON *o) {
    if (cJSON_IsArray(o)) o = o->child;   /* the `/` route answers [ {...} ] */
    if (!cJSON_IsObject(o)) {
        set_bad(a, "response is not a JSON object");
        return;
    }
    if (take_error_doc(a, o)) return;
    const cJSON *gen = jget(o, "generated_text");
    const cJSON *tok = jget(o, "token");
    /* a stream event carries a token (the last one the text too); a whole body needs the text */
    if (!cJSON_IsString(gen) && (!a->stream || !cJSON_IsObject(tok))) {
        set_bad(a, "response has no `generated_text`");
        return;
    }
    a->got = 1;
    choice_acc *c = choice_get(a, 0);
    if (c == NULL) return;
    if (a->stream) {
        if (cJSON_IsObject(tok)) {
            if (!cJSON_IsTrue(jget(tok, "special"))) {
                const char *t = jstr(tok, "text");
                if (t) text_append(c, t, strlen(t));
            }
            tgi_token(c, tok, jget(o, "top_tokens"));
        }
        if (cJSON_IsString(gen)) {   /* the last event */
            text_set(c, gen->valuestring);
            tgi_details(a, c, jget(o, "details"), 0);
            a->done = 1;
        }
    } else {
        text_set(c, gen->valuestring);
        tgi_details(a, c, jget(o, "details"), 1);
        a->done = 1;
    }
}

static void merge_gemini(acc *a, const cJSON *o) {
    if (cJSON_IsArray(o)) {   /* non-SSE streaming returns an array of responses */
        const cJSON *x;
        cJSON_ArrayForEach(x, o) merge_gemini(a, x);
        return;
    }
    if (take_error_doc(a, o)) return;
    const cJSON *cands = jget(o, "candidates");
    if (!cJSON_IsArray(cands)) {
        const cJSON *pf = jget(o, "promptFeedback");
        const char *reason = jstr(pf, "blockReason");
        if (reason) {
            rlaif_llm_error *err = err_begin(a);
            snprintf(err->message, sizeof err->message, "prompt blocked: %s", reason);
            return;
        }
        if (!a->stream || !cJSON_IsObject(jget(o, "usageMetadata"))) {
            set_bad(a, "response has no `candidates` array");
            return;
        }
    }
    a->got = 1;
    copy_meta(a, o, "responseId", "modelVersion");
    const cJSON *u = jget(o, "usageMetadata");
    double v;
    if (jnum(u, "promptTokenCount", &v)) a->prompt_tokens = v, a->has_prompt = 1;
    if (jnum(u, "candidatesTokenCount", &v)) a->completion_tokens = v, a->has_completion = 1;
    const cJSON *cand;
    int pos = 0;
    cJSON_ArrayForEach(cand, cands) {
        int idx = choice_index(a, cand, pos++);
        choice_acc *c = idx < 0 ? NULL : choice_get(a, idx);
        if (c == NULL) return;
        const cJSON *part;
        cJSON_ArrayForEach(part, jget(jget(cand, "content"), "parts")) {
            const char *t = jstr(part, "text");
            if (t && !cJSON_IsTrue(jget(part, "thought"))) text_append(c, t, strlen(t));
        }
        const cJSON *lr = jget(cand, "logprobsResult");
        const cJSON *chosen = jget(lr, "chosenCandidates"), *tops = jget(lr, "topCandidates");
        const cJSON *ci, *topi = cJSON_IsArray(tops) ? tops->child : NULL;
        cJSON_ArrayForEach(ci, chosen) {
            double lp = 0;   /* proto3 JSON omits a zero logProbability */
            jnum(ci, "logProbability", &lp);
            cJSON *top = cJSON_CreateArray();
            const cJSON *x;
            cJSON_ArrayForEach(x, jget(topi, "candidates")) {
                double tv = 0;
                jnum(x, "logProbability", &tv);
                cJSON_AddItemToArray(top, mk_top(jstr(x, "token"), tv));
            }
            push_token(c, mk_token(jstr(ci, "token"), 1, lp, NULL, jget(ci, "tokenId")), top);
            if (topi) topi = topi->next;
        }
        const char *fr = jstr(cand, "finishReason");
        if (fr && strcmp(fr, "FINISH_REASON_UNSPECIFIED") != 0) {
            set_finish(c, fr);
            a->done = 1;
        }
    }
    if (!a->stream) a->done = 1;
}

static void merge_anthropic(acc *a, const cJSON *o) {
    if (take_error_doc(a, o)) return;
    const char *type = jstr(o, "type");
    if (type == NULL) {
        set_bad(a, "response has no `type`");
        return;
    }
    choice_acc *c = choice_get(a, 0);
    if (c == NULL) return;
    double v;
    if (!strcmp(type, "message")) {   /* the whole non-streamed message */
        const cJSON *blk;
        if (!cJSON_IsArray(jget(o, "content"))) {
            set_bad(a, "message has no `content` array");
            return;
        }
        a->got = 1;
        copy_meta(a, o, "id", "model");
        c->len = 0;
        cJSON_ArrayForEach(blk, jget(o, "content")) {
            const char *t = jstr(blk, "text");
            const char *bt = jstr(blk, "type");
            if (t && bt && !strcmp(bt, "text")) text_append(c, t, strlen(t));
        }
        set_finish(c, jstr(o, "stop_reason"));
        const cJSON *u = jget(o, "usage");
        if (jnum(u, "input_tokens", &v)) a->prompt_tokens = v, a->has_prompt = 1;
        if (jnum(u, "output_tokens", &v)) a->completion_tokens = v, a->has_completion = 1;
        a->done = 1;
        return;
    }
    a->got = 1;
    if (!strcmp(type, "message_start")) {
        const cJSON *m = jget(o, "message");
        copy_meta(a, m, "id", "model");
        const cJSON *u = jget(m, "usage");
        if (jnum(u, "input_tokens", &v)) a->prompt_tokens = v, a->has_prompt = 1;
    } else if (!strcmp(type, "content_block_delta")) {
        const cJSON *d = jget(o, "delta");
        const char *t = jstr(d, "text");
        if (t) text_append(c, t, strlen(t));
    } else if (!strcmp(type, "message_delta")) {
        set_finish(c, jstr(jget(o, "delta"), "stop_reason"));
        if (jnum(jget(o, "usage"), "output_tokens", &v)) a->completion_tokens = v, a->has_completion = 1;
    } else if (!strcmp(type, "message_stop")) {
        a->done = 1;
    }
}

static void merge(acc *a, const cJSON *o) {
    switch (a->fmt) {
    case RLAIF_LLM_FMT_OPENAI_CHAT:
    case RLAIF_LLM_FMT_OPENAI_COMPLETIONS: merge_openai(a, o); break;
    case RLAIF_LLM_FMT_LLAMACPP: merge_llamacpp(a, o); break;
    case RLAIF_LLM_FMT_OLLAMA: merge_ollama(a, o); break;
    case RLAIF_LLM_FMT_TGI: merge_tgi(a, o); break;
    case RLAIF_LLM_FMT_GEMINI: merge_gemini(a, o); break;
    case RLAIF_LLM_FMT_ANTHROPIC: merge_anthropic(a, o); break;
    default: set_bad(a, "unknown format"); break;
    }
}

/* One SSE event or NDJSON line. */
static int on_event(void *ud, const char *event, const char *data, size_t len) {
    acc *a = ud;
    if (a->has_err || a->bad) return 1;
    while (len > 0 && isspace((unsigned char)*data)) data++, len--;
    if (len == 0) return 0;
    if (strncmp(data, "[DONE]", 6) == 0) {
        a->done = 1;
        return 0;
    }
    if (a->done && a->fmt != RLAIF_LLM_FMT_OPENAI_CHAT && a->fmt != RLAIF_LLM_FMT_OPENAI_COMPLETIONS)
        return 0;   /* trailing events after the end marker */
    cJSON *o = cJSON_ParseWithLength(data, len);
    if (o == NULL) {
        if (!strcmp(event, "error")) {   /* an error event with a plain-text payload */
            rlaif_llm_error *err = err_begin(a);
            err->retryable = 1;
            snprintf(err->message, sizeof err->message, "stream error: %.*s", (int)(len < 300 ? len : 300), data);
            return 1;
        }
        set_bad(a, "stream event is not valid JSON");
        return 1;
    }
    if (!strcmp(event, "error") && !is_error_doc(o)) {   /* legacy llama.cpp `error: {code,...}` */
        error_from_json(o, 200, data, err_begin(a));
    } else {
        merge(a, o);
    }
    cJSON_Delete(o);
    return a->has_err || a->bad;
}

/* ---- finishing ---- */

static int choice_cmp(const void *x, const void *y) {
    int a = ((const choice_acc *)x)->index, b = ((const choice_acc *)y)->index;
    return (a > b) - (a < b);
}

static cJSON *acc_result(acc *a) {
    cJSON *r = cJSON_CreateObject();
    if (r == NULL) return NULL;
    if (a->id[0]) cJSON_AddStringToObject(r, "id", a->id);
    if (a->model[0]) cJSON_AddStringToObject(r, "model", a->model);
    cJSON *u = cJSON_AddObjectToObject(r, "usage");
    if (a->has_prompt) cJSON_AddNumberToObject(u, "prompt_tokens", a->prompt_tokens);
    if (a->has_completion) cJSON_AddNumberToObject(u, "completion_tokens", a->completion_tokens);
    cJSON *chs = cJSON_AddArrayToObject(r, "choices");
    if (a->nch > 1) qsort(a->ch, (size_t)a->nch, sizeof *a->ch, choice_cmp);   /* a->ch is NULL with none */
    for (int i = 0; i < a->nch; i++) {
        choice_acc *c = &a->ch[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", c->index);
        cJSON_AddStringToObject(o, "text", c->text ? c->text : "");
        if (c->finish[0]) cJSON_AddStringToObject(o, "finish_reason", c->finish);
        cJSON_AddItemToObject(o, "tokens", c->tokens);
        c->tokens = NULL;
        cJSON_AddItemToArray(chs, o);
    }
    if (a->nch == 0) {   /* e.g. TGI without details: still one (empty) choice */
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "index", 0);
        cJSON_AddStringToObject(o, "text", "");
        cJSON_AddArrayToObject(o, "tokens");
        cJSON_AddItemToArray(chs, o);
    }
    return r;
}

rlaif_status rlaif_llm_parse(rlaif_llm_format fmt, int stream, const char *body, size_t len, cJSON **out,
                             rlaif_llm_error *err) {
    *out = NULL;
    rlaif_llm_error scratch;
    if (err == NULL) err = &scratch;
    memset(err, 0, sizeof *err);
    err->retry_after = -1;
    acc a;
    memset(&a, 0, sizeof a);
    a.fmt = fmt;
    a.stream = stream;
    a.err = err;
    rlaif_status st = RLAIF_OK;
    if (fmt < 0 || fmt >= RLAIF_LLM_NFORMATS) {
        st = rlaif_fail(RLAIF_EINVAL, "llm.parse: unknown format %d", (int)fmt);
        goto done;
    }
    if (!stream) {
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithLengthOpts(body, len, &end, 0);
        if (o == NULL) {
            size_t off = end ? (size_t)(end - body) : 0;
            st = rlaif_fail(RLAIF_EFORMAT, "llm.parse: %s body is truncated or not JSON (at byte %zu of %zu)",
                            rlaif_llm_format_name(fmt), off, len);
            goto done;
        }
        merge(&a, o);
        cJSON_Delete(o);
    } else if (fmt == RLAIF_LLM_FMT_OLLAMA) {
        if (rlaif_ndjson_each(body, len, on_event, &a) < 0) {
            st = rlaif_fail(RLAIF_ENOMEM, "llm.parse: out of memory");
            goto done;
        }
    } else {
        rlaif_sse sse;
        rlaif_sse_init(&sse, on_event, &a);
        int rc = rlaif_sse_feed(&sse, body, len);
        if (rc == 0) rc = rlaif_sse_finish(&sse);
        int oom = rc < 0;
        rlaif_sse_free(&sse);
        if (oom) {
            st = rlaif_fail(RLAIF_ENOMEM, "llm.parse: out of memory");
            goto done;
        }
    }
    if (a.has_err) {
        st = rlaif_fail(RLAIF_EIO, "llm.parse: server error: %s", err->message);
        goto done;
    }
    if (a.bad) {
        st = rlaif_fail(RLAIF_EFORMAT, "llm.parse: %s: %s", rlaif_llm_format_name(fmt), a.badmsg);
        goto done;
    }
    if (!a.got) {
        st = rlaif_fail(RLAIF_EFORMAT, "llm.parse: %s: empty %s", rlaif_llm_format_name(fmt),
                        stream ? "stream" : "body");
        goto done;
    }
    if (a.nch == 0 && (fmt == RLAIF_LLM_FMT_OPENAI_CHAT || fmt == RLAIF_LLM_FMT_OPENAI_COMPLETIONS)) {
        /* {"choices": []} (a filtered prompt, a broken proxy): an answer with nothing in it.
         * RLAIF_EINVAL: the client reports it as a parse error and does not retry it. */
        st = rlaif_fail(RLAIF_EINVAL, "llm.parse: %s: the answer has no choices", rlaif_llm_format_name(fmt));
        goto done;
    }
    if (stream && !a.done) {
        /* lenient for servers that omit [DONE]: every choice finished */
        int all = a.nch > 0;
        for (int i = 0; i < a.nch; i++) all = all && a.ch[i].finish[0];
        if (!all) {
            st = rlaif_fail(RLAIF_EFORMAT, "llm.parse: %s stream ended early (no end marker)",
                            rlaif_llm_format_name(fmt));
            goto done;
        }
    }
    *out = acc_result(&a);
    if (*out == NULL) st = rlaif_fail(RLAIF_ENOMEM, "llm.parse: out of memory");
done:
    acc_free(&a);
    return st;
}
