/* src/core/llm_client.c -- the batch LLM client: build -> cache lookup -> HTTP
 * engine -> parse -> cache store -> one result per request, plus accounting.
 *
 * Every request of a batch ends in exactly one result object: a normalized
 * response with ok=true, or {ok=false, kind, status, message, attempts}. Never an
 * empty or default answer: a 200 with a truncated body is retried and, if it
 * stays broken, reported as kind "parse". A final pass checks that no slot was
 * left empty, so even an internal bug surfaces as an error object.
 * A batch stops early, and says why, on failures that no retry can heal: the
 * server refused the key (HTTP 401, or 403 that is not about a capability), or
 * it could not be reached at all (connect failures after the engine's retries;
 * see http.h). The requests not sent by then end as kind "cancelled"; so does
 * every request of a batch stopped by Ctrl-C, so a caller can send them again.
 * A 2xx answer the parser rejects outright (RLAIF_EINVAL: e.g. {"choices": []})
 * is a "parse" error that is not retried, never an empty response.
 * Secrets: the key lives only in the header list handed to curl; it is never in
 * the cache key, the cache file, messages or stats (server messages are
 * scrubbed), and is wiped from memory when the client is freed.
 * Ownership: the client owns its engine, cache, header list and stats; requests
 * passed to run are borrowed; results are new objects owned by the caller. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"

typedef struct model_stats {
    char *name;
    double requests, prompt_tokens, completion_tokens;
} model_stats;

struct rlaif_llm_client {
    rlaif_llm_api api;
    char *base_url, *model, *api_key;
    struct curl_slist *headers;
    rlaif_http *http;
    rlaif_llm_cache *cache;
    /* accounting */
    double requests, attempts, retries, cache_hits, ok, duplicates;
    double errors[6];   /* by rlaif_http_kind, plus [0] = "invalid" (request could not be built) */
    model_stats *models;
    int nmodels, mcap;
    double *lat;
    size_t nlat, latcap;
};

typedef struct batch batch;

typedef struct item {
    rlaif_http_req req;   /* first member: the engine hands us &item->req */
    batch *b;
    int index;
    rlaif_llm_wire wire;
    char key[65];
    int sample;
    cJSON *parsed;
    rlaif_llm_error err;
} item;

struct batch {
    rlaif_llm_client *c;
    item *items;
    int n, done, errors, aborted;
    char stop[400];       /* why the batch stopped early ("" = it did not) */
    cJSON **results;
    rlaif_llm_result_cb on_result;
    rlaif_llm_progress_cb on_progress;
    double interval, last_progress;
    void *ud;
};

static const char *const kind_names[6] = {"invalid", "http", "transport", "parse", "capability", "cancelled"};

/* ---- client ---- */

static char *dupstr(const char *s) { return s ? strdup(s) : NULL; }

static void wipe(char *s) {
    if (s) explicit_bzero(s, strlen(s));
}

void rlaif_llm_client_free(rlaif_llm_client *c) {
    if (c == NULL) return;
    rlaif_http_free(c->http);
    rlaif_llm_cache_close(c->cache);
    for (struct curl_slist *h = c->headers; h; h = h->next) wipe(h->data);
    curl_slist_free_all(c->headers);
    wipe(c->api_key);
    free(c->api_key);
    free(c->base_url);
    free(c->model);
    for (int i = 0; i < c->nmodels; i++) free(c->models[i].name);
    free(c->models);
    free(c->lat);
    free(c);
}

static int add_header(struct curl_slist **list, const char *fmt, const char *a, const char *b) {
    size_t n = strlen(fmt) + (a ? strlen(a) : 0) + (b ? strlen(b) : 0) + 1;
    char *line = malloc(n);
    if (line == NULL) return -1;
    snprintf(line, n, fmt, a ? a : "", b ? b : "");
    struct curl_slist *l = curl_slist_append(*list, line);
    wipe(line);
    free(line);
    if (l == NULL) return -1;
    *list = l;
    return 0;
}

rlaif_status rlaif_llm_client_new(rlaif_llm_client **out, const rlaif_llm_config *cfg) {
    *out = NULL;
    rlaif_status st;
    if ((unsigned)cfg->api >= RLAIF_LLM_NAPIS) return rlaif_fail(RLAIF_EINVAL, "llm.client: unknown api");
    if (cfg->base_url == NULL || *cfg->base_url == '\0')
        return rlaif_fail(RLAIF_EINVAL, "llm.client: base_url is required");
    if (strncmp(cfg->base_url, "http://", 7) != 0 && strncmp(cfg->base_url, "https://", 8) != 0)
        return rlaif_fail(RLAIF_EINVAL, "llm.client: base_url must start with http:// or https://, got \"%.200s\"",
                          cfg->base_url);
    rlaif_llm_client *c = calloc(1, sizeof *c);
    if (c == NULL) return rlaif_fail(RLAIF_ENOMEM, "llm.client: out of memory");
    c->api = cfg->api;
    c->base_url = dupstr(cfg->base_url);
    c->model = dupstr(cfg->model);
    c->api_key = cfg->api_key && *cfg->api_key ? dupstr(cfg->api_key) : NULL;
    if (c->base_url == NULL) goto nomem;
    st = rlaif_http_new(&c->http, &cfg->http);
    if (st != RLAIF_OK) goto fail;
    int bad = add_header(&c->headers, "Content-Type: application/json%s%s", NULL, NULL);
    bad |= add_header(&c->headers, "User-Agent: rlaif/%s%s", RLAIF_VERSION, NULL);
    bad |= add_header(&c->headers, "Expect:%s%s", NULL, NULL);   /* no 100-continue round trip */
    if (c->api_key) {
        if (c->api == RLAIF_LLM_ANTHROPIC) bad |= add_header(&c->headers, "x-api-key: %s%s", c->api_key, NULL);
        else if (c->api == RLAIF_LLM_GEMINI) bad |= add_header(&c->headers, "x-goog-api-key: %s%s", c->api_key, NULL);
        else bad |= add_header(&c->headers, "Authorization: Bearer %s%s", c->api_key, NULL);
    }
    if (c->api == RLAIF_LLM_ANTHROPIC) bad |= add_header(&c->headers, "anthropic-version: 2023-06-01%s%s", NULL, NULL);
    for (const char *const *h = cfg->headers; h && *h; h++) {
        if (strchr(*h, ':') == NULL || strpbrk(*h, "\r\n")) {
            st = rlaif_fail(RLAIF_EINVAL, "llm.client: header '%.40s' is not 'Name: value'", *h);
            goto fail;
        }
        bad |= add_header(&c->headers, "%s%s", *h, NULL);
    }
    if (bad) goto nomem;
    if (cfg->cache_path && *cfg->cache_path) {
        st = rlaif_llm_cache_open(&c->cache, cfg->cache_path);
        if (st != RLAIF_OK) goto fail;
    }
    *out = c;
    return RLAIF_OK;
nomem:
    st = rlaif_fail(RLAIF_ENOMEM, "llm.client: out of memory");
fail:
    rlaif_llm_client_free(c);
    return st;
}

void rlaif_llm_client_set_concurrency(rlaif_llm_client *c, int n) { rlaif_http_set_concurrency(c->http, n); }

/* ---- accounting ---- */

static model_stats *model_get(rlaif_llm_client *c, const char *name) {
    for (int i = 0; i < c->nmodels; i++)
        if (!strcmp(c->models[i].name, name)) return &c->models[i];
    if (c->nmodels == c->mcap) {
        int cap = c->mcap ? c->mcap * 2 : 4;
        model_stats *m = realloc(c->models, (size_t)cap * sizeof *m);
        if (m == NULL) return NULL;
        c->models = m;
        c->mcap = cap;
    }
    model_stats *m = &c->models[c->nmodels];
    memset(m, 0, sizeof *m);
    if ((m->name = strdup(name)) == NULL) return NULL;
    c->nmodels++;
    return m;
}

static void add_latency(rlaif_llm_client *c, double s) {
    if (c->nlat == c->latcap) {
        size_t cap = c->latcap ? c->latcap * 2 : 1024;
        double *l = realloc(c->lat, cap * sizeof *l);
        if (l == NULL) return;
        c->lat = l;
        c->latcap = cap;
    }
    c->lat[c->nlat++] = s;
}

static int dcmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

cJSON *rlaif_llm_client_stats(const rlaif_llm_client *c) {
    cJSON *s = cJSON_CreateObject();
    if (s == NULL) return NULL;
    cJSON_AddNumberToObject(s, "requests", c->requests);
    cJSON_AddNumberToObject(s, "attempts", c->attempts);
    cJSON_AddNumberToObject(s, "retries", c->retries);
    cJSON_AddNumberToObject(s, "cache_hits", c->cache_hits);
    cJSON_AddNumberToObject(s, "ok", c->ok);
    cJSON_AddNumberToObject(s, "duplicates", c->duplicates);
    cJSON_AddNumberToObject(s, "concurrency", rlaif_http_concurrency(c->http));
    cJSON *e = cJSON_AddObjectToObject(s, "errors");
    double total = 0;
    for (int k = 0; k < 6; k++) {
        if (c->errors[k] > 0) cJSON_AddNumberToObject(e, kind_names[k], c->errors[k]);
        total += c->errors[k];
    }
    cJSON_AddNumberToObject(s, "failed", total);
    cJSON *m = cJSON_AddObjectToObject(s, "models");
    for (int i = 0; i < c->nmodels; i++) {
        cJSON *o = cJSON_AddObjectToObject(m, c->models[i].name);
        cJSON_AddNumberToObject(o, "requests", c->models[i].requests);
        cJSON_AddNumberToObject(o, "prompt_tokens", c->models[i].prompt_tokens);
        cJSON_AddNumberToObject(o, "completion_tokens", c->models[i].completion_tokens);
    }
    cJSON *l = cJSON_AddObjectToObject(s, "latency");
    cJSON_AddNumberToObject(l, "n", (double)c->nlat);
    if (c->nlat > 0) {
        double *v = malloc(c->nlat * sizeof *v);
        if (v != NULL) {
            memcpy(v, c->lat, c->nlat * sizeof *v);
            qsort(v, c->nlat, sizeof *v, dcmp);
            double sum = 0;
            for (size_t i = 0; i < c->nlat; i++) sum += v[i];
            cJSON_AddNumberToObject(l, "mean", sum / (double)c->nlat);
            cJSON_AddNumberToObject(l, "p50", v[(size_t)(0.50 * (double)(c->nlat - 1) + 0.5)]);
            cJSON_AddNumberToObject(l, "p90", v[(size_t)(0.90 * (double)(c->nlat - 1) + 0.5)]);
            cJSON_AddNumberToObject(l, "p99", v[(size_t)(0.99 * (double)(c->nlat - 1) + 0.5)]);
            cJSON_AddNumberToObject(l, "max", v[c->nlat - 1]);
            free(v);
        }
    }
    return s;
}

void rlaif_llm_client_reset_stats(rlaif_llm_client *c) {
    c->requests = c->attempts = c->retries = c->cache_hits = c->ok = c->duplicates = 0;
    memset(c->errors, 0, sizeof c->errors);
    for (int i = 0; i < c->nmodels; i++) free(c->models[i].name);
    c->nmodels = 0;
    c->nlat = 0;
}

/* ---- results ---- */

static cJSON *error_result(const char *kind, int status, const char *message, int attempts) {
    cJSON *r = cJSON_CreateObject();
    if (r == NULL) return NULL;
    cJSON_AddFalseToObject(r, "ok");
    cJSON_AddStringToObject(r, "kind", kind);
    if (status > 0) cJSON_AddNumberToObject(r, "status", status);
    cJSON_AddStringToObject(r, "message", message);
    cJSON_AddNumberToObject(r, "attempts", attempts);
    return r;
}

/* Decorate a normalized response into a result: ok, text, latency, ... */
static void ok_fields(cJSON *r, double latency, int attempts, int cached, const char *request_id) {
    cJSON_AddTrueToObject(r, "ok");
    const cJSON *ch = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(r, "choices"), 0);
    const char *text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ch, "text"));
    cJSON_AddStringToObject(r, "text", text ? text : "");
    cJSON_AddNumberToObject(r, "latency", latency);
    cJSON_AddNumberToObject(r, "attempts", attempts);
    cJSON_AddBoolToObject(r, "cached", cached);
    if (request_id && *request_id) cJSON_AddStringToObject(r, "request_id", request_id);
}

static void account_ok(rlaif_llm_client *c, const char *model, const cJSON *r) {
    c->ok++;
    model_stats *m = model_get(c, model && *model ? model : "(default)");
    if (m == NULL) return;
    m->requests++;
    const cJSON *u = cJSON_GetObjectItemCaseSensitive(r, "usage");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(u, "prompt_tokens");
    const cJSON *q = cJSON_GetObjectItemCaseSensitive(u, "completion_tokens");
    if (cJSON_IsNumber(p)) m->prompt_tokens += p->valuedouble;
    if (cJSON_IsNumber(q)) m->completion_tokens += q->valuedouble;
}

static void deliver(batch *b, int index, cJSON *result) {
    rlaif_llm_client *c = b->c;
    if (result == NULL) result = error_result("transport", 0, "out of memory building the result", 0);
    if (b->results[index] != NULL) {   /* must never happen; counted, not delivered twice */
        c->duplicates++;
        cJSON_Delete(result);
        return;
    }
    b->results[index] = result;
    b->done++;
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(result, "ok"))) b->errors++;
    if (b->on_result && !b->aborted && b->on_result(b->ud, index, result) != 0) b->aborted = 1;
}

/* ---- engine hooks ---- */

static rlaif_http_verdict classify(rlaif_http_req *r) {
    item *it = (item *)r;
    rlaif_llm_client *c = it->b->c;
    cJSON_Delete(it->parsed);
    it->parsed = NULL;
    if (r->status >= 200 && r->status < 300) {
        rlaif_status st = rlaif_llm_parse(it->wire.format, it->wire.stream, r->resp ? r->resp : "", r->resp_len,
                                          &it->parsed, &it->err);
        if (st == RLAIF_OK) return RLAIF_HTTP_ACCEPT;
        if (st == RLAIF_EIO) {   /* a server error inside a 200 (mid-stream) */
            rlaif_llm_scrub(it->err.message, c->api_key);
            r->kind = it->err.capability ? RLAIF_HTTP_ECAPABILITY : RLAIF_HTTP_EHTTP;
            snprintf(r->message, sizeof r->message, "error after HTTP %d: %s", r->status, it->err.message);
            if (it->err.retry_after >= 0 && r->retry_after < 0) r->retry_after = it->err.retry_after;
            return it->err.retryable ? RLAIF_HTTP_RETRY : RLAIF_HTTP_REJECT;
        }
        r->kind = RLAIF_HTTP_EPARSE;
        snprintf(r->message, sizeof r->message, "%s", rlaif_last_error());
        return st == RLAIF_EFORMAT ? RLAIF_HTTP_RETRY : RLAIF_HTTP_REJECT;
    }
    rlaif_llm_error_from_body(r->status, r->resp ? r->resp : "", r->resp_len, &it->err);
    rlaif_llm_scrub(it->err.message, c->api_key);
    r->kind = it->err.capability ? RLAIF_HTTP_ECAPABILITY : RLAIF_HTTP_EHTTP;
    snprintf(r->message, sizeof r->message, "HTTP %d: %s%s", r->status, it->err.message,
             it->err.quota ? " (quota exhausted: not retried)" : "");
    if (it->err.quota) r->should_retry = 0;   /* no header may turn a quota error into a retry */
    if (it->err.retry_after >= 0 && r->retry_after < 0) r->retry_after = it->err.retry_after;
    return it->err.retryable ? RLAIF_HTTP_RETRY : RLAIF_HTTP_REJECT;
}

static void on_finish(rlaif_http_req *r) {
    item *it = (item *)r;
    batch *b = it->b;
    rlaif_llm_client *c = b->c;
    c->attempts += r->attempts;
    if (r->attempts > 1) c->retries += r->attempts - 1;
    cJSON *res;
    if (r->kind == RLAIF_HTTP_OK && it->parsed != NULL) {
        res = it->parsed;
        it->parsed = NULL;
        if (c->cache) {
            char *parsed = cJSON_PrintUnformatted(res);
            int leak = c->api_key && r->resp && strstr(r->resp, c->api_key) != NULL;
            if (parsed && !leak)
                rlaif_llm_cache_put(c->cache, it->key, it->wire.model, it->wire.format, it->wire.stream,
                                    it->wire.body, r->resp ? r->resp : "", r->resp_len, parsed);
            free(parsed);
        }
        ok_fields(res, r->latency, r->attempts, 0, r->request_id);
        add_latency(c, r->latency);
        account_ok(c, it->wire.model, res);
    } else {
        int k = r->kind == RLAIF_HTTP_OK ? RLAIF_HTTP_EPARSE : r->kind;
        int status = r->status;
        if (k == RLAIF_HTTP_ETRANSPORT || k == RLAIF_HTTP_ECANCELLED) status = status >= 300 ? status : 0;
        if (it->err.status && status >= 200 && status < 300 && k == RLAIF_HTTP_EHTTP) status = it->err.status;
        rlaif_llm_scrub(r->message, c->api_key);
        res = error_result(kind_names[k], status, r->message, r->attempts);
        if (res && r->request_id[0]) cJSON_AddStringToObject(res, "request_id", r->request_id);
        c->errors[k]++;
        /* failures that every other request would meet too: stop sending */
        if (b->stop[0] == '\0' && k == RLAIF_HTTP_EHTTP && (status == 401 || status == 403))
            snprintf(b->stop, sizeof b->stop, "%s rejected the request with HTTP %d (%.200s): check the API key",
                     c->base_url, status, r->message);
        else if (b->stop[0] == '\0' && k == RLAIF_HTTP_ETRANSPORT && r->connect_failed)
            snprintf(b->stop, sizeof b->stop, "cannot connect to %s (%.200s)", c->base_url, r->message);
        if (b->stop[0]) b->aborted = 1;
        cJSON_Delete(it->parsed);
        it->parsed = NULL;
    }
    deliver(b, it->index, res);   /* r->resp goes back to the engine when we return */
}

static int tick(void *ud) {
    batch *b = ud;
    if (b->on_progress) {
        double now = rlaif_clock();
        if (now - b->last_progress >= b->interval) {
            b->last_progress = now;
            if (b->on_progress(b->ud, b->done, b->n, b->errors) != 0) b->aborted = 1;
        }
    }
    return b->aborted;
}

/* ---- run ---- */

typedef struct { char key[65]; int index; } keyed;

static int keyed_cmp(const void *x, const void *y) {
    const keyed *a = x, *b = y;
    int c = strcmp(a->key, b->key);
    return c ? c : a->index - b->index;
}

/* Cache keys: sampled requests without an explicit `sample` get the number of
 * identical earlier requests in this batch as their sample index. */
static rlaif_status assign_keys(batch *b) {
    keyed *k = malloc((size_t)b->n * sizeof *k);
    if (k == NULL) return rlaif_fail(RLAIF_ENOMEM, "llm: out of memory");
    int m = 0;
    for (int i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->wire.url == NULL) continue;
        if (it->wire.sampled && it->wire.sample < 0) {
            rlaif_llm_cache_key(&it->wire, -2, k[m].key);
            k[m++].index = i;
        } else {
            it->sample = it->wire.sample < 0 ? 0 : it->wire.sample;
            rlaif_llm_cache_key(&it->wire, it->sample, it->key);
        }
    }
    qsort(k, (size_t)m, sizeof *k, keyed_cmp);
    for (int j = 0, occ = 0; j < m; j++) {
        occ = (j > 0 && !strcmp(k[j].key, k[j - 1].key)) ? occ + 1 : 0;
        item *it = &b->items[k[j].index];
        it->sample = occ;
        rlaif_llm_cache_key(&it->wire, occ, it->key);
    }
    free(k);
    return RLAIF_OK;
}

rlaif_status rlaif_llm_client_run(rlaif_llm_client *c, const cJSON *const *reqs, int n, cJSON **results,
                                  rlaif_llm_result_cb on_result, rlaif_llm_progress_cb on_progress, double interval,
                                  void *ud) {
    rlaif_status st = RLAIF_OK;
    batch b;
    memset(&b, 0, sizeof b);
    b.c = c;
    b.n = n;
    b.results = results;
    b.on_result = on_result;
    b.on_progress = on_progress;
    b.interval = interval > 0 ? interval : 0.1;
    b.last_progress = rlaif_clock();
    b.ud = ud;
    for (int i = 0; i < n; i++) results[i] = NULL;
    if (n <= 0) return RLAIF_OK;
    b.items = calloc((size_t)n, sizeof *b.items);
    if (b.items == NULL) return rlaif_fail(RLAIF_ENOMEM, "llm.run: out of memory");
    c->requests += n;

    /* 1. build every request; requests that cannot be built end right here */
    for (int i = 0; i < n; i++) {
        item *it = &b.items[i];
        it->b = &b;
        it->index = i;
        if (rlaif_llm_build(c->api, c->base_url, c->model, reqs[i], &it->wire) != RLAIF_OK) {
            int cap = strstr(rlaif_last_error(), "does not support") != NULL;
            c->errors[cap ? RLAIF_HTTP_ECAPABILITY : 0]++;
            deliver(&b, i, error_result(cap ? "capability" : "invalid", 0, rlaif_last_error(), 0));
        }
    }
    /* 2. cache lookups */
    if (c->cache) {
        st = assign_keys(&b);
        if (st != RLAIF_OK) goto done;
        for (int i = 0; i < n && !b.aborted; i++) {
            item *it = &b.items[i];
            if (it->wire.url == NULL || results[i] != NULL) continue;
            int found = 0, fmt = 0, stream = 0;
            char *raw = NULL;
            size_t len = 0;
            if (rlaif_llm_cache_get(c->cache, it->key, &found, &raw, &len, &fmt, &stream) == RLAIF_OK && found) {
                cJSON *r = NULL;
                if (rlaif_llm_parse((rlaif_llm_format)fmt, stream, raw, len, &r, NULL) == RLAIF_OK) {
                    ok_fields(r, 0, 0, 1, NULL);
                    c->cache_hits++;
                    account_ok(c, it->wire.model, r);
                    deliver(&b, i, r);
                }
            }
            free(raw);
        }
    }
    /* 3. the network */
    for (int i = 0; i < n; i++) {
        item *it = &b.items[i];
        if (results[i] != NULL) continue;
        if (b.aborted) {
            c->errors[RLAIF_HTTP_ECANCELLED]++;
            deliver(&b, i, error_result("cancelled", 0, "cancelled (batch aborted)", 0));
            continue;
        }
        it->req.url = it->wire.url;
        it->req.headers = c->headers;
        it->req.body = it->wire.body;
        it->req.body_len = it->wire.body_len;
        it->req.classify = classify;
        it->req.on_finish = on_finish;
        if (rlaif_http_submit(c->http, &it->req) != RLAIF_OK) {
            c->errors[RLAIF_HTTP_ETRANSPORT]++;
            deliver(&b, i, error_result("transport", 0, rlaif_last_error(), 0));
        }
    }
    st = rlaif_http_run(c->http, tick, &b);
    if (b.stop[0] && !rlaif_cancelled())
        st = rlaif_fail(RLAIF_EIO, "llm.run: stopped: %s", b.stop);
    else if (st == RLAIF_OK && (b.aborted || rlaif_cancelled()))
        st = rlaif_fail(RLAIF_EINTR, "llm.run: %s", b.aborted ? "batch aborted" : "interrupted");
    if (b.on_progress) b.on_progress(b.ud, b.done, b.n, b.errors);
done:
    /* 4. no request without an outcome */
    for (int i = 0; i < n; i++) {
        if (results[i] == NULL) {
            c->errors[RLAIF_HTTP_ECANCELLED]++;
            results[i] = error_result("cancelled", 0, "request never completed (batch stopped)", 0);
        }
        cJSON_Delete(b.items[i].parsed);
        rlaif_llm_wire_clear(&b.items[i].wire);
    }
    free(b.items);
    return st;
}
