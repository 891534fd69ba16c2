/* tests/c/test_serve.c -- the HTTP transport of `rlaif serve` (serve.c) under
 * ASan+UBSan: a consumer loop in this thread against libcurl clients in helper
 * threads, on loopback. Static routes, take/respond with headers, streaming,
 * 401, 413, 429 with retry-after, 504 after the timeout, answers to requests
 * that are gone, 503 for what is pending at stop, cancellation, bad options. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "serve.h"

/* ---- a client request in its own thread ---- */

typedef struct call {
    pthread_t th;
    char url[256];
    const char *body;        /* NULL = GET */
    long body_size;          /* -1 = strlen(body) */
    const char *auth;        /* bearer token or NULL */
    long status;
    char resp[8192];
    size_t len;
    char hdrs[4096];
    size_t hlen;
} call;

static size_t on_body(char *p, size_t sz, size_t n, void *ud) {
    call *c = ud;
    size_t k = sz * n;
    if (c->len + k < sizeof c->resp) memcpy(c->resp + c->len, p, k), c->len += k, c->resp[c->len] = '\0';
    return k;
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud) {
    call *c = ud;
    size_t k = sz * n;
    if (c->hlen + k < sizeof c->hdrs) memcpy(c->hdrs + c->hlen, p, k), c->hlen += k, c->hdrs[c->hlen] = '\0';
    return k;
}

static void *run_call(void *arg) {
    call *c = arg;
    CURL *h = curl_easy_init();
    struct curl_slist *hl = NULL;
    char auth[128];
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    if (c->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, c->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, c->body_size >= 0 ? c->body_size : (long)strlen(c->body));
    }
    if (c->auth) {
        snprintf(auth, sizeof auth, "Authorization: Bearer %s", c->auth);
        hl = curl_slist_append(hl, auth);
    }
    hl = curl_slist_append(hl, "X-Test: yes");
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &c->status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return NULL;
}

static void launch(call *c, int port, const char *path, const char *body) {
    memset(c, 0, sizeof *c);
    snprintf(c->url, sizeof c->url, "http://127.0.0.1:%d%s", port, path);
    c->body = body;
    c->body_size = -1;
    pthread_create(&c->th, NULL, run_call, c);
}

/* Take exactly one request (waiting up to 5 s). */
static rlaif_server_request *take_one(rlaif_server *s, int *n) {
    rlaif_server_request *r = NULL;
    CHECK_OK(rlaif_server_take(s, 1, 5.0, 0, &r, n));
    return r;
}

/* The value of a packed header, or NULL. */
static const char *header(const rlaif_server_request *r, const char *name) {
    size_t i = 0;
    while (i < r->headers_len) {
        const char *k = r->headers + i, *v = k + strlen(k) + 1;
        if (strcmp(k, name) == 0) return v;
        i += strlen(k) + strlen(v) + 2;
    }
    return NULL;
}

int main(void) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rlaif_server_opts o;
    rlaif_server_opts_defaults(&o);
    o.max_queue = 2;
    o.max_body = 1000;
    o.timeout = 1;
    rlaif_server *s = NULL;
    CHECK_OK(rlaif_server_start(&s, &o));
    if (s == NULL) return check_report("test_serve");
    int port = rlaif_server_port(s);
    CHECK(port > 0);
    CHECK_OK(rlaif_server_static(s, "/v1/models", 200, "application/json", "{\"data\":[]}", 11, 0));
    CHECK_FAIL(rlaif_server_static(s, "/v1/models", 200, NULL, "", 0, 0), RLAIF_EINVAL, "already exists");

    /* a static route needs no consumer */
    call a, b, c, d, e;
    launch(&a, port, "/v1/models", NULL);
    pthread_join(a.th, NULL);
    CHECK(a.status == 200 && strcmp(a.resp, "{\"data\":[]}") == 0);

    /* take, look at the request, respond with a header */
    launch(&a, port, "/v1/x?k=v&z=1", "{\"prompt\":\"hi\"}");
    int n = 0;
    rlaif_server_request *r = take_one(s, &n);
    CHECK(n == 1);
    if (n == 1) {
        CHECK(strcmp(r->method, "POST") == 0);
        CHECK(strcmp(r->path, "/v1/x") == 0);
        CHECK(r->body_len == 15 && strcmp(r->body, "{\"prompt\":\"hi\"}") == 0);
        CHECK(header(r, "x-test") && strcmp(header(r, "x-test"), "yes") == 0);
        CHECK(r->query && strcmp(r->query, "k") == 0 && strcmp(r->query + 2, "v") == 0);
        CHECK_OK(rlaif_server_respond(s, r->id, 201, "application/json", "X-One: 1\nX-Two: two", "{\"ok\":1}", 8));
        /* answering twice: the request is no longer waiting */
        CHECK_FAIL(rlaif_server_respond(s, r->id, 200, NULL, NULL, "", 0), RLAIF_EINVAL, "no longer waiting");
        CHECK_FAIL(rlaif_server_respond(s, r->id + 1000, 200, NULL, NULL, "", 0), RLAIF_EINVAL, "no longer waiting");
        CHECK_FAIL(rlaif_server_respond(s, r->id, 99, NULL, NULL, "", 0), RLAIF_EINVAL, "status 99");
    }
    rlaif_server_requests_free(r, n);
    pthread_join(a.th, NULL);
    CHECK(a.status == 201 && strcmp(a.resp, "{\"ok\":1}") == 0);
    CHECK(strstr(a.hdrs, "X-Two: two") != NULL && strstr(a.hdrs, "Content-Type: application/json") != NULL);

    /* header injection is refused */
    launch(&a, port, "/inj", "x");
    r = take_one(s, &n);
    if (n == 1) {
        CHECK_FAIL(rlaif_server_respond(s, r->id, 200, NULL, "A: b\r\nEvil: 1", "", 0), RLAIF_EINVAL, "carriage return");
        CHECK_OK(rlaif_server_respond(s, r->id, 200, "text/plain", NULL, "fine", 4));
    }
    rlaif_server_requests_free(r, n);
    pthread_join(a.th, NULL);
    CHECK(a.status == 200 && strcmp(a.resp, "fine") == 0);

    /* a stream, written while the client reads */
    launch(&a, port, "/stream", "{}");
    r = take_one(s, &n);
    if (n == 1) {
        CHECK_OK(rlaif_server_stream_start(s, r->id, 200, "text/event-stream", NULL));
        for (int i = 0; i < 50; i++) {
            char ev[32];
            int k = snprintf(ev, sizeof ev, "data: %d\n\n", i);
            CHECK_OK(rlaif_server_stream_write(s, r->id, ev, (size_t)k));
            if (i % 10 == 0) usleep(2000);
        }
        CHECK_OK(rlaif_server_stream_end(s, r->id));
        CHECK_FAIL(rlaif_server_stream_write(s, r->id, "x", 1), RLAIF_EINVAL, "no longer waiting");
    }
    rlaif_server_requests_free(r, n);
    pthread_join(a.th, NULL);
    CHECK(a.status == 200 && strncmp(a.resp, "data: 0\n\ndata: 1\n\n", 18) == 0);
    CHECK(strstr(a.resp, "data: 49\n\n") != NULL && a.len == 10 * 9 + 40 * 10);

    /* 413 from the Content-Length, before the body is read */
    static char big[4000];
    memset(big, 'a', sizeof big);
    memset(&a, 0, sizeof a);
    snprintf(a.url, sizeof a.url, "http://127.0.0.1:%d/big", port);
    a.body = big, a.body_size = sizeof big;
    pthread_create(&a.th, NULL, run_call, &a);
    pthread_join(a.th, NULL);
    CHECK(a.status == 413 && strstr(a.resp, "request_too_large") != NULL);

    /* a queue of 2: the third and fourth requests get 429 + retry-after */
    launch(&a, port, "/q1", "1");
    launch(&b, port, "/q2", "2");
    usleep(300000);
    launch(&c, port, "/q3", "3");
    launch(&d, port, "/q4", "4");
    pthread_join(c.th, NULL);
    pthread_join(d.th, NULL);
    CHECK(c.status == 429 && d.status == 429);
    CHECK(strstr(c.hdrs, "Retry-After: 1") != NULL && strstr(c.resp, "rate_limit_exceeded") != NULL);
    rlaif_server_stats st;
    rlaif_server_get_stats(s, &st);
    CHECK(st.queued == 2 && st.rejected_full == 2);
    rlaif_server_request *two = NULL;
    CHECK_OK(rlaif_server_take(s, 8, 1.0, 0, &two, &n));
    CHECK(n == 2);
    for (int i = 0; i < n; i++) CHECK_OK(rlaif_server_respond(s, two[i].id, 200, NULL, NULL, two[i].body, 1));
    rlaif_server_requests_free(two, n);
    pthread_join(a.th, NULL);
    pthread_join(b.th, NULL);
    CHECK(a.status == 200 && strcmp(a.resp, "1") == 0 && b.status == 200 && strcmp(b.resp, "2") == 0);

    /* 504: taken but not answered within the timeout (1 s); a late answer finds nobody */
    launch(&e, port, "/late", "x");
    r = take_one(s, &n);
    pthread_join(e.th, NULL);
    CHECK(e.status == 504 && strstr(e.resp, "\"timeout\"") != NULL);
    if (n == 1) CHECK_FAIL(rlaif_server_respond(s, r->id, 200, NULL, NULL, "", 0), RLAIF_EINVAL, "no longer");
    rlaif_server_requests_free(r, n);
    rlaif_server_get_stats(s, &st);
    CHECK(st.timed_out == 1 && st.in_flight == 0);

    /* cancellation stops a waiting take */
    rlaif_cancel_request();
    CHECK_FAIL(rlaif_server_take(s, 1, 5.0, 0, &r, &n), RLAIF_EINTR, "interrupted");
    rlaif_cancel_reset();

    /* stop answers what is pending with 503 */
    launch(&a, port, "/pending", "x");
    usleep(300000);
    rlaif_server_stop(s, 1.0);
    pthread_join(a.th, NULL);
    CHECK(a.status == 503 && strstr(a.resp, "shutting_down") != NULL);
    rlaif_server_free(s);

    /* a bearer key: 401 without it, the header never reaches the consumer */
    o.api_key = "sk-secret";
    CHECK_OK(rlaif_server_start(&s, &o));
    port = rlaif_server_port(s);
    launch(&a, port, "/k", "x");
    pthread_join(a.th, NULL);
    CHECK(a.status == 401 && strstr(a.resp, "invalid_api_key") != NULL);
    memset(&a, 0, sizeof a);
    snprintf(a.url, sizeof a.url, "http://127.0.0.1:%d/k", port);
    a.body = "x", a.body_size = 1, a.auth = "sk-secret";
    pthread_create(&a.th, NULL, run_call, &a);
    r = take_one(s, &n);
    if (n == 1) {
        CHECK(header(r, "authorization") == NULL);
        CHECK_OK(rlaif_server_respond(s, r->id, 200, NULL, NULL, "ok", 2));
    }
    rlaif_server_requests_free(r, n);
    pthread_join(a.th, NULL);
    CHECK(a.status == 200);
    rlaif_server_free(s);

    /* bad options and a port in use */
    rlaif_server_opts bad = o;
    bad.host = "localhost";
    CHECK_FAIL(rlaif_server_start(&s, &bad), RLAIF_EINVAL, "not a numeric");
    bad = o, bad.port = 70000;
    CHECK_FAIL(rlaif_server_start(&s, &bad), RLAIF_EINVAL, "port 70000");
    bad = o, bad.max_queue = 0;
    CHECK_FAIL(rlaif_server_start(&s, &bad), RLAIF_EINVAL, "max_queue");
    rlaif_server *s1 = NULL;
    CHECK_OK(rlaif_server_start(&s1, &o));
    if (s1) {
        bad = o, bad.port = rlaif_server_port(s1);
        CHECK_FAIL(rlaif_server_start(&s, &bad), RLAIF_EIO, "cannot listen");
    }
    rlaif_server_free(s1);
    bad = o, bad.host = "::1";
    if (rlaif_server_start(&s, &bad) == RLAIF_OK) rlaif_server_free(s);   /* IPv6 where available */
    curl_global_cleanup();
    return check_report("test_serve");
}
