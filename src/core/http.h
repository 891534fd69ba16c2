/* src/core/http.h -- a batch HTTP engine on the libcurl multi interface.
 *
 * What it is: a queue of POST requests driven by one curl multi handle (through
 * curl_multi_socket_action and epoll, so a wake-up costs the same with 10 or
 * 10,000 transfers in flight), with a
 * bounded and adjustable number in flight (1 to thousands), connection reuse and
 * HTTP/2 multiplexing when the server offers it, connect/total timeouts, stall
 * detection, retries with exponential backoff + jitter that honour retry-after-ms,
 * retry-after (seconds or HTTP date) and x-should-retry, AIMD concurrency control
 * on 429s, and the process-wide cancel flag (rlaif_cancelled, set by Ctrl-C).
 *
 * What it is not: it knows nothing about LLMs. The caller decides through the
 * `classify` hook whether a completed response is good, worth retrying, or final
 * (llm_client.c parses bodies there). Every submitted request ends exactly once
 * in `on_finish`, as accepted or with an error kind; nothing is dropped.
 *
 * Ownership: the engine borrows every rlaif_http_req until its on_finish hook
 * ran; the caller owns the struct, url, headers and body. The response body
 * buffer (req->resp) is owned by the engine and only lent to the request: it is
 * valid in on_data, classify and on_finish, and taken back (for reuse by later
 * attempts) as soon as on_finish returns. Copy what must outlive the hook; never
 * free it. Linux only (epoll). */
#ifndef RLAIF_HTTP_H
#define RLAIF_HTTP_H

#include <stddef.h>

#include "rlaif.h"

struct curl_slist;

typedef struct rlaif_http rlaif_http;
typedef struct rlaif_http_req rlaif_http_req;

/* How a request ended (or why its last attempt failed). */
typedef enum rlaif_http_kind {
    RLAIF_HTTP_OK = 0,
    RLAIF_HTTP_EHTTP,        /* the server answered with an error (status in req->status) */
    RLAIF_HTTP_ETRANSPORT,   /* connect/read/timeout/stall/dropped connection */
    RLAIF_HTTP_EPARSE,       /* 2xx, but the body was truncated or not the expected JSON */
    RLAIF_HTTP_ECAPABILITY,  /* the server/model cannot do what was asked (not retried) */
    RLAIF_HTTP_ECANCELLED,   /* Ctrl-C (rlaif_cancelled) or aborted by a hook */
} rlaif_http_kind;

/* A classify hook's answer for one completed attempt. */
typedef enum rlaif_http_verdict {
    RLAIF_HTTP_ACCEPT,   /* done: success */
    RLAIF_HTTP_RETRY,    /* retry (subject to max_retries); req->kind/message say why */
    RLAIF_HTTP_REJECT,   /* done: failure; req->kind/message say why */
} rlaif_http_verdict;

typedef struct rlaif_http_opts {
    int    concurrency;      /* max requests in flight, 1..65536 (default 64) */
    int    max_retries;      /* retries after the first attempt (default 5) */
    double connect_timeout;  /* seconds (default 10) */
    double timeout;          /* seconds per attempt, 0 = none (default 600) */
    double stall_timeout;    /* seconds without a byte aborts an attempt, 0 = off (default 60) */
    double backoff_base;     /* first retry delay in seconds (default 0.5) */
    double backoff_cap;      /* longest backoff delay (default 8) */
    double retry_after_cap;  /* longest server-requested delay honoured (default 120) */
    int    aimd;             /* halve concurrency on 429, grow it back on success (default 1) */
    const char *ca_file;     /* CA bundle for TLS (NULL = system); verification is always on */
} rlaif_http_opts;

/* One logical request (all its attempts). Zero it, fill the "in" fields, submit. */
struct rlaif_http_req {
    /* ---- in (borrowed by the engine until on_finish) ---- */
    const char *url;
    const struct curl_slist *headers;   /* shared by many requests is fine */
    const char *body;                   /* POST body */
    size_t body_len;
    void *user;
    /* Called before every attempt (reset per-attempt parser state). Optional. */
    void (*on_attempt)(rlaif_http_req *r);
    /* Called with each chunk of the body as it arrives (after it was appended to
     * resp); returns 0 to go on, nonzero to fail the attempt. Optional. */
    int (*on_data)(rlaif_http_req *r, const char *p, size_t n);
    /* Called once per completed attempt that got an HTTP response. Must set
     * kind/message when it does not accept. Required. */
    rlaif_http_verdict (*classify)(rlaif_http_req *r);
    /* Called exactly once when the request is done (accepted or failed). Required. */
    void (*on_finish)(rlaif_http_req *r);

    /* ---- out (valid in classify/on_finish) ---- */
    int    status;          /* HTTP status of the last attempt, 0 when none */
    int    attempts;        /* attempts made */
    rlaif_http_kind kind;   /* RLAIF_HTTP_OK when accepted */
    char   message[512];    /* error message of the last failed attempt */
    char  *resp;            /* body of the last attempt, NUL-terminated (lent by the engine
                               until on_finish returns; may be NULL when empty) */
    size_t resp_len;
    size_t resp_cap;
    char   request_id[96];  /* x-request-id / request-id header */
    char   content_type[64];
    double retry_after;     /* seconds from retry-after-ms/retry-after, < 0 when absent */
    int    should_retry;    /* x-should-retry: 1 true, 0 false, -1 absent */
    int    connect_failed;  /* the last attempt never reached the server (refused, no such
                               host, connect timeout); see rlaif_http_run on retries */
    double t_start;         /* rlaif_clock() when the last attempt started */
    double latency;         /* duration of the last attempt in seconds */
    double elapsed;         /* from the first attempt to the end */

    /* ---- engine-private ---- */
    double t_first, not_before;
    int    curl_result;     /* CURLcode of the last attempt, between detach and judge */
    int    no_request_sent; /* the last attempt ended before its request went out */
    void  *easy;
    rlaif_http_req *prev, *next;
};

/* Fill opts with the defaults above. */
void rlaif_http_opts_default(rlaif_http_opts *opts);

/* A new engine (calls curl_global_init once per process). Free with rlaif_http_free. */
rlaif_status rlaif_http_new(rlaif_http **out, const rlaif_http_opts *opts);
void         rlaif_http_free(rlaif_http *h);   /* NULL-safe; nothing may be in flight */

/* Queue a request. Borrowed until its on_finish hook ran. */
rlaif_status rlaif_http_submit(rlaif_http *h, rlaif_http_req *r);

/* Drive every queued request to its end. `tick` (optional) runs on every loop
 * turn; it returns nonzero to abort the batch. Returns RLAIF_OK when all ended,
 * RLAIF_EINTR when cancelled or aborted (the rest ended as ECANCELLED).
 * A failure to connect is not retried while this engine has never had an answer
 * from its server (a wrong URL or a server that is not up fails in one attempt
 * instead of a whole backoff schedule); once the server has answered, connect
 * failures are retried like any transport error. */
rlaif_status rlaif_http_run(rlaif_http *h, int (*tick)(void *ud), void *ud);

/* Current and maximum concurrency; set_concurrency changes the maximum. */
int  rlaif_http_concurrency(const rlaif_http *h);
void rlaif_http_set_concurrency(rlaif_http *h, int n);
int  rlaif_http_in_flight(const rlaif_http *h);

/* ---- pure helpers (exposed for tests) ---- */

/* Seconds to wait from retry-after-ms / retry-after header values (either may be
 * NULL); retry-after may be seconds or an HTTP date. < 0 when absent/invalid. */
double rlaif_http_parse_retry_after(const char *ms_value, const char *value);
/* Backoff before retry number `retry` (1-based): min(base*2^(retry-1), cap)
 * scaled by (1 - 0.25*u) with u in [0,1). */
double rlaif_http_backoff(double base, double cap, int retry, double u);
/* Whether an HTTP status is retried by default (408, 409, 424, 429, 5xx incl. 529). */
int    rlaif_http_status_retryable(int status);

#endif
