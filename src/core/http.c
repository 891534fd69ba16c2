/* src/core/http.c -- the batch HTTP engine (see http.h).
 *
 * One curl multi handle; one easy handle per attempt in flight, taken from a
 * free list and reset between uses, CURLOPT_PRIVATE pointing at the request.
 * Requests wait in a FIFO (ready) or a min-heap keyed by not_before (backing
 * off). The loop: cancel check -> promote due retries -> start up to the
 * current limit -> curl_multi_perform -> collect finished transfers -> poll.
 * Not here: request bodies or response parsing (the classify hook does that).
 * Ownership: the engine owns easy handles and response buffers; requests,
 * urls, headers and bodies are borrowed from the caller. */
#include "http.h"

#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define MAX_BODY (256u << 20)   /* refuse responses above 256 MiB */

struct rlaif_http {
    CURLM *multi;
    rlaif_http_opts opts;
    int max_conc;             /* user maximum */
    double limit;             /* AIMD window, 1..max_conc */
    double last_decrease;     /* rlaif_clock() of the last multiplicative decrease */
    int in_flight;
    rlaif_http_req *flight;   /* in-flight requests, doubly linked (cancel walks it) */
    /* ready FIFO (ring buffer) */
    rlaif_http_req **ready;
    size_t ready_cap, ready_head, ready_len;
    /* backoff heap */
    rlaif_http_req **heap;
    size_t heap_len, heap_cap;
    /* idle easy handles */
    CURL **pool;
    size_t pool_len, pool_cap;
    uint64_t rng;
};

/* ---- global init ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;
static void init_curl(void) { curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT); }

/* ---- pure helpers ---- */

double rlaif_http_parse_retry_after(const char *ms_value, const char *value) {
    char *end;
    if (ms_value != NULL && *ms_value) {
        double v = strtod(ms_value, &end);
        while (*end == ' ' || *end == '\t') end++;
        if (end != ms_value && *end == '\0' && isfinite(v) && v >= 0) return v / 1000.0;
    }
    if (value != NULL && *value) {
        double v = strtod(value, &end);
        while (*end == ' ' || *end == '\t') end++;
        if (end != value && *end == '\0' && isfinite(v) && v >= 0) return v;
        time_t t = curl_getdate(value, NULL);   /* HTTP date */
        if (t != (time_t)-1) {
            double d = difftime(t, time(NULL));
            return d > 0 ? d : 0;
        }
    }
    return -1;
}

double rlaif_http_backoff(double base, double cap, int retry, double u) {
    if (retry < 1) retry = 1;
    double d = base * ldexp(1.0, retry > 60 ? 60 : retry - 1);
    if (d > cap) d = cap;
    return d * (1.0 - 0.25 * u);
}

int rlaif_http_status_retryable(int status) {
    return status == 408 || status == 409 || status == 424 || status == 429 || status >= 500;
}

static double rng_unit(rlaif_http *h) {   /* xorshift64*, [0,1) */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return (double)((h->rng * 2685821657736338717ull) >> 11) * 0x1.0p-53;
}

/* ---- queues ---- */

static int ready_push(rlaif_http *h, rlaif_http_req *r) {
    if (h->ready_len == h->ready_cap) {
        size_t cap = h->ready_cap ? h->ready_cap * 2 : 64;
        rlaif_http_req **q = malloc(cap * sizeof *q);
        if (q == NULL) return -1;
        for (size_t i = 0; i < h->ready_len; i++) q[i] = h->ready[(h->ready_head + i) % h->ready_cap];
        free(h->ready);
        h->ready = q;
        h->ready_cap = cap;
        h->ready_head = 0;
    }
    h->ready[(h->ready_head + h->ready_len++) % h->ready_cap] = r;
    return 0;
}

static rlaif_http_req *ready_pop(rlaif_http *h) {
    if (h->ready_len == 0) return NULL;
    rlaif_http_req *r = h->ready[h->ready_head];
    h->ready_head = (h->ready_head + 1) % h->ready_cap;
    h->ready_len--;
    return r;
}

static void heap_swap(rlaif_http *h, size_t a, size_t b) {
    rlaif_http_req *t = h->heap[a];
    h->heap[a] = h->heap[b];
    h->heap[b] = t;
}

static int heap_push(rlaif_http *h, rlaif_http_req *r) {
    if (h->heap_len == h->heap_cap) {
        size_t cap = h->heap_cap ? h->heap_cap * 2 : 64;
        rlaif_http_req **q = realloc(h->heap, cap * sizeof *q);
        if (q == NULL) return -1;
        h->heap = q;
        h->heap_cap = cap;
    }
    size_t i = h->heap_len++;
    h->heap[i] = r;
    while (i > 0 && h->heap[(i - 1) / 2]->not_before > h->heap[i]->not_before) {
        heap_swap(h, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
    return 0;
}

static rlaif_http_req *heap_pop(rlaif_http *h) {
    if (h->heap_len == 0) return NULL;
    rlaif_http_req *top = h->heap[0];
    h->heap[0] = h->heap[--h->heap_len];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < h->heap_len && h->heap[l]->not_before < h->heap[m]->not_before) m = l;
        if (r < h->heap_len && h->heap[r]->not_before < h->heap[m]->not_before) m = r;
        if (m == i) break;
        heap_swap(h, i, m);
        i = m;
    }
    return top;
}

/* ---- engine ---- */

void rlaif_http_opts_default(rlaif_http_opts *o) {
    memset(o, 0, sizeof *o);
    o->concurrency = 64;
    o->max_retries = 5;
    o->connect_timeout = 10;
    o->timeout = 600;
    o->stall_timeout = 60;
    o->backoff_base = 0.5;
    o->backoff_cap = 8;
    o->retry_after_cap = 120;
    o->aimd = 1;
}

rlaif_status rlaif_http_new(rlaif_http **out, const rlaif_http_opts *opts) {
    *out = NULL;
    pthread_once(&curl_once, init_curl);
    if (curl_init_rc != CURLE_OK)
        return rlaif_fail(RLAIF_EIO, "http: curl_global_init: %s", curl_easy_strerror(curl_init_rc));
    if (opts->concurrency < 1 || opts->concurrency > 65536)
        return rlaif_fail(RLAIF_EINVAL, "http: concurrency %d out of 1..65536", opts->concurrency);
    if (opts->max_retries < 0 || opts->max_retries > 100)
        return rlaif_fail(RLAIF_EINVAL, "http: max_retries %d out of 0..100", opts->max_retries);
    rlaif_http *h = calloc(1, sizeof *h);
    if (h == NULL) return rlaif_fail(RLAIF_ENOMEM, "http: out of memory");
    h->opts = *opts;
    h->opts.ca_file = NULL;   /* copied below */
    if (opts->ca_file != NULL && (h->opts.ca_file = strdup(opts->ca_file)) == NULL) goto nomem;
    h->multi = curl_multi_init();
    if (h->multi == NULL) goto nomem;
    h->max_conc = opts->concurrency;
    h->limit = opts->concurrency;
    h->rng = (uint64_t)(rlaif_clock() * 1e9) ^ (uint64_t)(uintptr_t)h ^ 0x9E3779B97F4A7C15ull;
    if (h->rng == 0) h->rng = 1;
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)(opts->concurrency + 16));
    *out = h;
    return RLAIF_OK;
nomem:
    free((char *)h->opts.ca_file);
    free(h);
    return rlaif_fail(RLAIF_ENOMEM, "http: out of memory");
}

void rlaif_http_free(rlaif_http *h) {
    if (h == NULL) return;
    for (size_t i = 0; i < h->pool_len; i++) curl_easy_cleanup(h->pool[i]);
    free(h->pool);
    free(h->ready);
    free(h->heap);
    if (h->multi) curl_multi_cleanup(h->multi);
    free((char *)h->opts.ca_file);
    free(h);
}

int rlaif_http_concurrency(const rlaif_http *h) { return (int)h->limit; }
int rlaif_http_in_flight(const rlaif_http *h) { return h->in_flight; }

void rlaif_http_set_concurrency(rlaif_http *h, int n) {
    if (n < 1) n = 1;
    if (n > 65536) n = 65536;
    h->max_conc = n;
    if (h->limit > n) h->limit = n;
    if (!h->opts.aimd) h->limit = n;
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)(n + 16));
}

void rlaif_http_req_clear(rlaif_http_req *r) {
    free(r->resp);
    r->resp = NULL;
    r->resp_len = r->resp_cap = 0;
}

rlaif_status rlaif_http_submit(rlaif_http *h, rlaif_http_req *r) {
    if (r->url == NULL || r->classify == NULL || r->on_finish == NULL)
        return rlaif_fail(RLAIF_EINVAL, "http.submit: url, classify and on_finish are required");
    r->status = 0;
    r->attempts = 0;
    r->kind = RLAIF_HTTP_OK;
    r->message[0] = '\0';
    r->t_first = 0;
    r->easy = NULL;
    if (ready_push(h, r) != 0) return rlaif_fail(RLAIF_ENOMEM, "http.submit: out of memory");
    return RLAIF_OK;
}

/* ---- curl callbacks ---- */

static size_t write_cb(char *p, size_t size, size_t n, void *ud) {
    rlaif_http_req *r = ud;
    size_t len = size * n;
    if (r->resp_len + len + 1 > r->resp_cap) {
        size_t cap = r->resp_cap ? r->resp_cap : 1024;
        while (cap < r->resp_len + len + 1) cap *= 2;
        if (cap > MAX_BODY) {
            snprintf(r->message, sizeof r->message, "response larger than %u bytes", MAX_BODY);
            return 0;
        }
        char *b = realloc(r->resp, cap);
        if (b == NULL) return 0;
        r->resp = b;
        r->resp_cap = cap;
    }
    memcpy(r->resp + r->resp_len, p, len);
    r->resp_len += len;
    r->resp[r->resp_len] = '\0';
    if (r->on_data != NULL && r->on_data(r, p, len) != 0) return 0;
    return len;
}

static void copy_trimmed(char *dst, size_t cap, const char *v, size_t n) {
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' ')) n--;
    if (n >= cap) n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t header_cb(char *p, size_t size, size_t n, void *ud) {
    rlaif_http_req *r = ud;
    size_t len = size * n;
    if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {   /* a new response (1xx, redirect) */
        r->request_id[0] = r->content_type[0] = '\0';
        r->should_retry = -1;
        r->retry_after = -1;
        return len;
    }
    const char *colon = memchr(p, ':', len);
    if (colon == NULL) return len;
    size_t nlen = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vlen = len - nlen - 1;
    while (vlen > 0 && (*v == ' ' || *v == '\t')) v++, vlen--;
    char val[128];
    copy_trimmed(val, sizeof val, v, vlen);
#define IS(name) (nlen == sizeof(name) - 1 && strncasecmp(p, name, nlen) == 0)
    if (IS("x-request-id") || IS("request-id")) {
        copy_trimmed(r->request_id, sizeof r->request_id, v, vlen);
    } else if (IS("content-type")) {
        copy_trimmed(r->content_type, sizeof r->content_type, v, vlen);
    } else if (IS("x-should-retry")) {
        r->should_retry = strcasecmp(val, "true") == 0 ? 1 : strcasecmp(val, "false") == 0 ? 0 : -1;
    } else if (IS("retry-after-ms")) {
        double d = rlaif_http_parse_retry_after(val, NULL);
        if (d >= 0) r->retry_after = d;   /* preferred over retry-after */
    } else if (IS("retry-after")) {
        double d = rlaif_http_parse_retry_after(NULL, val);
        if (d >= 0 && r->retry_after < 0) r->retry_after = d;
    }
#undef IS
    return len;
}

/* ---- attempts ---- */

static CURL *get_easy(rlaif_http *h) {
    if (h->pool_len > 0) {
        CURL *e = h->pool[--h->pool_len];
        curl_easy_reset(e);
        return e;
    }
    return curl_easy_init();
}

static void put_easy(rlaif_http *h, CURL *e) {
    if (h->pool_len == h->pool_cap) {
        size_t cap = h->pool_cap ? h->pool_cap * 2 : 64;
        CURL **p = realloc(h->pool, cap * sizeof *p);
        if (p == NULL) {
            curl_easy_cleanup(e);
            return;
        }
        h->pool = p;
        h->pool_cap = cap;
    }
    h->pool[h->pool_len++] = e;
}

static void flight_link(rlaif_http *h, rlaif_http_req *r) {
    r->prev = NULL;
    r->next = h->flight;
    if (h->flight) h->flight->prev = r;
    h->flight = r;
}

static void flight_unlink(rlaif_http *h, rlaif_http_req *r) {
    if (r->prev) r->prev->next = r->next;
    else h->flight = r->next;
    if (r->next) r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void finish(rlaif_http *h, rlaif_http_req *r) {
    r->elapsed = rlaif_clock() - (r->t_first > 0 ? r->t_first : rlaif_clock());
    r->on_finish(r);
}

static void fail_now(rlaif_http *h, rlaif_http_req *r, rlaif_http_kind kind, const char *msg) {
    r->kind = kind;
    snprintf(r->message, sizeof r->message, "%s", msg);
    finish(h, r);
}

/* Start one attempt; on a local failure the request ends as a transport error. */
static void start(rlaif_http *h, rlaif_http_req *r) {
    CURL *e = get_easy(h);
    if (e == NULL) {
        fail_now(h, r, RLAIF_HTTP_ETRANSPORT, "curl_easy_init failed");
        return;
    }
    r->attempts++;
    r->status = 0;
    r->resp_len = 0;
    if (r->resp) r->resp[0] = '\0';
    r->request_id[0] = r->content_type[0] = '\0';
    r->retry_after = -1;
    r->should_retry = -1;
    r->t_start = rlaif_clock();
    if (r->t_first == 0) r->t_first = r->t_start;
    if (r->on_attempt) r->on_attempt(r);

    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    SET(CURLOPT_HTTPHEADER, (struct curl_slist *)r->headers);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
    SET(CURLOPT_HEADERDATA, (void *)r);
    SET(CURLOPT_ACCEPT_ENCODING, "");   /* gzip/br/zstd when offered */
    SET(CURLOPT_PIPEWAIT, 1L);          /* prefer multiplexing over new connections */
    SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    SET(CURLOPT_SSL_VERIFYPEER, 1L);
    SET(CURLOPT_SSL_VERIFYHOST, 2L);
    SET(CURLOPT_TCP_KEEPALIVE, 1L);
    SET(CURLOPT_CONNECTTIMEOUT_MS, (long)(h->opts.connect_timeout * 1000));
    if (h->opts.timeout > 0) SET(CURLOPT_TIMEOUT_MS, (long)(h->opts.timeout * 1000));
    if (h->opts.stall_timeout > 0) {
        SET(CURLOPT_LOW_SPEED_LIMIT, 1L);
        SET(CURLOPT_LOW_SPEED_TIME, (long)ceil(h->opts.stall_timeout));
    }
    if (h->opts.ca_file) SET(CURLOPT_CAINFO, h->opts.ca_file);
#undef SET
    if (rc != CURLE_OK) {
        curl_easy_cleanup(e);
        fail_now(h, r, RLAIF_HTTP_ETRANSPORT, curl_easy_strerror(rc));
        return;
    }
    CURLMcode mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        curl_easy_cleanup(e);
        fail_now(h, r, RLAIF_HTTP_ETRANSPORT, curl_multi_strerror(mc));
        return;
    }
    r->easy = e;
    flight_link(h, r);
    h->in_flight++;
}

/* curl errors that no retry can fix. */
static int transport_fatal(CURLcode c) {
    switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_FILESIZE_EXCEEDED:
        return 1;
    default:
        return 0;
    }
}

/* Schedule another attempt after `delay` seconds, or end the request. */
static void retry_or_finish(rlaif_http *h, rlaif_http_req *r, int retry) {
    if (!retry || r->attempts > h->opts.max_retries) {
        if (retry) {
            size_t l = strlen(r->message);
            snprintf(r->message + l, sizeof r->message - l, " (gave up after %d attempts)", r->attempts);
        }
        finish(h, r);
        return;
    }
    double delay;
    if (r->retry_after >= 0) {
        if (r->retry_after > h->opts.retry_after_cap) {
            size_t l = strlen(r->message);
            snprintf(r->message + l, sizeof r->message - l,
                     " (server asked to retry after %.0f s, over the %.0f s cap)", r->retry_after,
                     h->opts.retry_after_cap);
            finish(h, r);
            return;
        }
        delay = r->retry_after;
    } else {
        delay = rlaif_http_backoff(h->opts.backoff_base, h->opts.backoff_cap, r->attempts, rng_unit(h));
    }
    r->not_before = rlaif_clock() + delay;
    if (heap_push(h, r) != 0) finish(h, r);
}

static void aimd_on_429(rlaif_http *h) {
    if (!h->opts.aimd) return;
    double now = rlaif_clock();
    if (now - h->last_decrease < 0.5) return;   /* one decrease per burst */
    h->last_decrease = now;
    h->limit = h->limit / 2 < 1 ? 1 : h->limit / 2;
}

static void aimd_on_success(rlaif_http *h) {
    if (h->limit < h->max_conc) {
        h->limit += 1.0 / h->limit;
        if (h->limit > h->max_conc) h->limit = h->max_conc;
    }
}

static void done_attempt(rlaif_http *h, CURL *e, CURLcode res) {
    rlaif_http_req *r = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_multi_remove_handle(h->multi, e);
    put_easy(h, e);
    flight_unlink(h, r);
    h->in_flight--;
    r->easy = NULL;
    r->latency = rlaif_clock() - r->t_start;
    r->status = (int)status;

    if (res != CURLE_OK) {
        char msg[sizeof r->message];
        const char *extra = res == CURLE_WRITE_ERROR && r->message[0] ? r->message : "";
        snprintf(msg, sizeof msg, "transport: %s%s%.200s", curl_easy_strerror(res), *extra ? ": " : "", extra);
        r->kind = RLAIF_HTTP_ETRANSPORT;
        memcpy(r->message, msg, sizeof msg);
        retry_or_finish(h, r, !transport_fatal(res));
        return;
    }
    r->kind = RLAIF_HTTP_OK;
    r->message[0] = '\0';
    rlaif_http_verdict v = r->classify(r);
    if (v == RLAIF_HTTP_ACCEPT) {
        r->kind = RLAIF_HTTP_OK;
        aimd_on_success(h);
        finish(h, r);
        return;
    }
    if (r->kind == RLAIF_HTTP_OK) r->kind = RLAIF_HTTP_EHTTP;
    int retry = v == RLAIF_HTTP_RETRY;
    /* x-should-retry overrides the status-based decision, never a capability error */
    if (r->status >= 300 && r->should_retry >= 0 && r->kind != RLAIF_HTTP_ECAPABILITY) retry = r->should_retry;
    if (r->status == 429 && retry) aimd_on_429(h);
    retry_or_finish(h, r, retry);
}

/* End every request still queued, backing off or in flight as cancelled. */
static void cancel_all(rlaif_http *h, const char *why) {
    rlaif_http_req *r;
    while ((r = h->flight) != NULL) {
        CURL *e = r->easy;
        flight_unlink(h, r);
        curl_multi_remove_handle(h->multi, e);
        put_easy(h, e);
        h->in_flight--;
        r->easy = NULL;
        fail_now(h, r, RLAIF_HTTP_ECANCELLED, why);
    }
    while ((r = ready_pop(h)) != NULL) fail_now(h, r, RLAIF_HTTP_ECANCELLED, why);
    while ((r = heap_pop(h)) != NULL) fail_now(h, r, RLAIF_HTTP_ECANCELLED, why);
}

rlaif_status rlaif_http_run(rlaif_http *h, int (*tick)(void *ud), void *ud) {
    rlaif_status st = RLAIF_OK;
    while (h->ready_len || h->heap_len || h->in_flight) {
        int abort_batch = rlaif_cancelled() || (tick != NULL && tick(ud) != 0);
        if (abort_batch) {
            const char *why = rlaif_cancelled() ? "cancelled (interrupted)" : "cancelled (batch aborted)";
            cancel_all(h, why);
            st = rlaif_fail(RLAIF_EINTR, "http: %s", why);
            break;
        }
        double now = rlaif_clock();
        while (h->heap_len && h->heap[0]->not_before <= now) {
            rlaif_http_req *r = heap_pop(h);
            if (ready_push(h, r) != 0) fail_now(h, r, RLAIF_HTTP_ETRANSPORT, "out of memory");
        }
        int lim = (int)h->limit;
        if (lim < 1) lim = 1;
        while (h->in_flight < lim && h->ready_len) start(h, ready_pop(h));

        int running = 0;
        CURLMcode mc = curl_multi_perform(h->multi, &running);
        if (mc != CURLM_OK) {
            cancel_all(h, curl_multi_strerror(mc));
            st = rlaif_fail(RLAIF_EIO, "http: curl_multi_perform: %s", curl_multi_strerror(mc));
            break;
        }
        CURLMsg *m;
        int left;
        int finished = 0;
        while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
            if (m->msg != CURLMSG_DONE) continue;
            done_attempt(h, m->easy_handle, m->data.result);
            finished++;
        }
        if (finished && h->ready_len && h->in_flight < (int)h->limit) continue;   /* refill now */
        if (!h->ready_len && !h->heap_len && !h->in_flight) break;

        long wait_ms = 50;   /* bounded so the cancel flag is seen promptly */
        if (h->heap_len && !h->in_flight && !h->ready_len) {
            double d = (h->heap[0]->not_before - rlaif_clock()) * 1000;
            if (d < wait_ms) wait_ms = d < 0 ? 0 : (long)ceil(d);
        } else if (h->heap_len) {
            double d = (h->heap[0]->not_before - rlaif_clock()) * 1000;
            if (d < wait_ms) wait_ms = d < 0 ? 0 : (long)ceil(d);
        }
        if (h->ready_len && h->in_flight < (int)h->limit) wait_ms = 0;
        if (wait_ms > 0) {
            mc = curl_multi_poll(h->multi, NULL, 0, (int)wait_ms, NULL);
            if (mc != CURLM_OK) {
                cancel_all(h, curl_multi_strerror(mc));
                st = rlaif_fail(RLAIF_EIO, "http: curl_multi_poll: %s", curl_multi_strerror(mc));
                break;
            }
        }
    }
    return st;
}
