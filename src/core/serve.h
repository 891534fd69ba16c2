/* src/core/serve.h -- an HTTP server on libmicrohttpd that hands whole requests
 * to one consumer thread and sends back what it answers (rlaif serve).
 *
 * What it is: the transport half of `rlaif serve`. libmicrohttpd's own thread
 * parses HTTP (this file never does), reads each request body (at most
 * max_body bytes), checks the bearer key and puts the request in a bounded
 * queue while its connection sleeps (MHD suspend). One consumer -- the Lua
 * state, which is single-threaded -- takes batches of queued requests with
 * rlaif_server_take and answers each with rlaif_server_respond, or streams it
 * with rlaif_server_stream_*; the answer wakes the connection (MHD resume).
 * Requests that arrive while the consumer works on a batch wait in the queue
 * and form the next batch.
 * Answered here, without the consumer: 401 (bad or missing key), 413 (body
 * larger than max_body), 429 + retry-after (queue full), 503 (stopping), 504
 * (no answer started within `timeout` seconds of arrival), and registered
 * static routes (GET /v1/models, /health). Error bodies have OpenAI's shape
 * {"error": {"message", "type", "param", "code"}}. A body that outgrows
 * max_body without a Content-Length, or that arrives slower than read_timeout
 * allows, closes the connection; idle connections close after read_timeout.
 * What it is not: a router or a JSON layer (lua/rlaif/serve.lua), TLS (bind
 * to loopback, the default, or put a proxy in front).
 *
 * Threads: libmicrohttpd's polling thread, a reaper thread (timeouts), and the
 * consumer; one mutex guards the request table, and no MHD function is called
 * with it held except MHD_suspend_connection from inside MHD's own callbacks.
 *
 * Ownership: rlaif_server_start returns a new server; rlaif_server_free stops
 * it (answering what is still pending with 503) and frees it. Requests taken
 * are copies the caller owns (rlaif_server_requests_free). Every pointer
 * argument is borrowed; bodies given to respond/stream are copied. */
#ifndef RLAIF_SERVE_H
#define RLAIF_SERVE_H

#include "rlaif.h"

typedef struct rlaif_server rlaif_server;

typedef struct rlaif_server_opts {
    const char *host;         /* numeric IPv4 or IPv6 address; NULL = "127.0.0.1"   */
    int port;                 /* 0 = any free port (see rlaif_server_port)         */
    int max_queue;            /* requests waiting for the consumer; more -> 429    */
    size_t max_body;          /* request body bytes; more -> 413                   */
    double timeout;           /* s from arrival to the start of the answer; 0 = off */
    double read_timeout;      /* s to receive a request; idle connection timeout   */
    int max_connections;      /* open connections; more are refused                */
    int retry_after;          /* seconds in the retry-after header of a 429        */
    const char *api_key;      /* required bearer token, NULL = none; copied        */
} rlaif_server_opts;

/* One request handed to the consumer. Header names are lower case; the
 * Authorization header is never included. */
typedef struct rlaif_server_request {
    uint64_t id;              /* names the request in respond / stream calls      */
    char method[16];
    char *path;               /* the URL path, without the query string           */
    char *query;              /* "k=v&..." as decoded pairs, '\0'-separated, or NULL */
    size_t query_len;
    char *headers;            /* name '\0' value '\0' ... (headers_len bytes)     */
    size_t headers_len;
    char *body;               /* (body_len) bytes, NUL-terminated                 */
    size_t body_len;
    double waited;            /* seconds spent in the queue                       */
} rlaif_server_request;

typedef struct rlaif_server_stats {
    uint64_t received;        /* requests handed to the queue                     */
    uint64_t answered;        /* answers started by the consumer                  */
    uint64_t rejected_full;   /* 429                                              */
    uint64_t too_large;       /* 413 (and closed over-long chunked bodies)        */
    uint64_t unauthorized;    /* 401                                              */
    uint64_t timed_out;       /* 504                                              */
    uint64_t static_hits;     /* static routes                                    */
    uint64_t dropped;         /* connections closed before their answer was sent  */
    int queued;               /* waiting now                                      */
    int in_flight;            /* taken, not yet answered                          */
} rlaif_server_stats;

/* Defaults: 127.0.0.1, port 0, queue 256, body 8 MiB, timeout 600 s, read
 * timeout 30 s, 1024 connections, retry-after 1 s, no key. */
void rlaif_server_opts_defaults(rlaif_server_opts *o);

/* Bind and start serving. RLAIF_EINVAL for bad options, RLAIF_EIO when the
 * address cannot be bound (the message names host, port and the reason). */
rlaif_status rlaif_server_start(rlaif_server **out, const rlaif_server_opts *o);
int rlaif_server_port(const rlaif_server *s);   /* the bound port */

/* Answer GET `path` (exact match, query ignored) with a fixed response without
 * involving the consumer. public = 1: no key needed (health checks). */
rlaif_status rlaif_server_static(rlaif_server *s, const char *path, int status, const char *content_type,
                                 const char *body, size_t len, int public_route);

/* Wait up to `wait` seconds for at least one queued request, then up to
 * `gather` more seconds (from the first one's arrival) for up to max; take at
 * most max. *reqs (count *n, possibly 0) is a NEW array the caller frees with
 * rlaif_server_requests_free. RLAIF_EINTR when rlaif_cancelled() (Ctrl-C,
 * SIGTERM with rlaif_server_catch_sigterm). */
rlaif_status rlaif_server_take(rlaif_server *s, int max, double wait, double gather, rlaif_server_request **reqs,
                               int *n);
void rlaif_server_requests_free(rlaif_server_request *reqs, int n);

/* Answer request `id` (status 100..599). headers: "Name: value" lines
 * separated by '\n' (may be NULL). RLAIF_EINVAL when the request is no longer
 * waiting for an answer (timed out, client gone, already answered). */
rlaif_status rlaif_server_respond(rlaif_server *s, uint64_t id, int status, const char *content_type,
                                  const char *headers, const char *body, size_t len);

/* Start a streamed answer (chunked transfer encoding), append data (sent as it
 * comes), end it. The same RLAIF_EINVAL as respond when the client is gone. */
rlaif_status rlaif_server_stream_start(rlaif_server *s, uint64_t id, int status, const char *content_type,
                                       const char *headers);
rlaif_status rlaif_server_stream_write(rlaif_server *s, uint64_t id, const char *data, size_t len);
rlaif_status rlaif_server_stream_end(rlaif_server *s, uint64_t id);

void rlaif_server_get_stats(rlaif_server *s, rlaif_server_stats *out);

/* Stop accepting, answer queued and unanswered requests with 503, end open
 * streams, give clients up to `drain` seconds to receive what was sent, stop.
 * Idempotent; rlaif_server_free calls it with drain = 1. */
void rlaif_server_stop(rlaif_server *s, double drain);
void rlaif_server_free(rlaif_server *s);   /* NULL-safe */

/* install = 1: SIGTERM requests cancellation (rlaif_cancel_request) and is
 * remembered; install = 0 restores the previous handler and, when a SIGTERM
 * was handled, clears the cancellation it requested. */
void rlaif_server_catch_sigterm(int install);
int  rlaif_server_sigterm_seen(void);

#endif
