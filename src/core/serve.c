/* src/core/serve.c -- the HTTP transport of `rlaif serve` on libmicrohttpd (see
 * serve.h for the contract).
 *
 * Life of a request (srv_req, one per HTTP request, owned by the table below):
 *   RECEIVING  MHD has the headers; the body is read into r->body
 *   QUEUED     body complete, connection suspended, r in the FIFO queue
 *   TAKEN      handed to the consumer by rlaif_server_take
 *   ANSWERED   a full response is stored; the connection was resumed and the
 *              access handler (called again by MHD) queues it
 *   STREAMING  a callback response is queued; stream_write appends to r->sbuf,
 *              the content reader drains it and suspends the connection while
 *              it is empty (MHD allows suspending from the reader)
 * MHD's completion callback unlinks and frees r, whatever the state. The
 * consumer and the reaper find requests by id under the mutex, so a request
 * freed meanwhile is simply "gone". A state change that needs a resume is made
 * under the mutex, the resume itself after unlocking: QUEUED (and a waiting
 * reader) imply that MHD_suspend_connection already ran, so every resume pairs
 * with one suspend, and no MHD lock is ever taken while ours is held.
 * Not here: routing, JSON, the OpenAI formats (lua/rlaif/serve*.lua). */
#include "serve.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STATIC 8
#define STREAM_MAX ((size_t)256 << 20)   /* unsent stream bytes before writes fail */

typedef enum { RS_RECEIVING, RS_QUEUED, RS_TAKEN, RS_ANSWERED, RS_STREAMING } req_state;

typedef struct srv_req {
    struct srv_req *prev, *next;   /* live list                                   */
    struct srv_req *qnext;         /* FIFO queue link                              */
    struct rlaif_server *s;        /* the server (for the content reader)          */
    struct MHD_Connection *conn;   /* borrowed from MHD                            */
    uint64_t id;
    req_state state;
    char method[16];
    char *path;
    char *query; size_t query_len;         /* packed k\0v\0 pairs                 */
    char *headers; size_t headers_len;     /* packed name\0value\0 pairs          */
    char *body; size_t body_len, body_cap;
    double arrived;                /* rlaif_clock() when the headers were complete */
    double queued_at;
    int immediate;                 /* a response was queued at the first call     */
    /* the answer */
    int status;
    char *ctype, *rheaders;        /* rheaders: "Name: value\n..."                 */
    char *rbody; size_t rbody_len;
    /* a stream */
    char *sbuf; size_t slen, scap; /* unsent bytes are sbuf[spos .. slen)          */
    size_t spos;
    int ended, reader_waiting;
} srv_req;

typedef struct static_route {
    char *path, *ctype, *body;
    size_t len;
    int status, public_route;
} static_route;

struct rlaif_server {
    struct MHD_Daemon *d;
    rlaif_server_opts o;
    char *api_key;
    int port;
    pthread_mutex_t mu;
    pthread_cond_t cv;             /* the queue got a request, or stopping         */
    pthread_cond_t reaper_cv;
    pthread_t reaper;
    int reaper_on, reaper_quit;
    srv_req *live;                 /* every request MHD knows                      */
    srv_req *qhead, *qtail;
    int qlen, in_flight, n_live;
    uint64_t next_id;
    int stopping, stopped;
    static_route routes[MAX_STATIC];
    int n_routes;
    rlaif_server_stats st;
};

/* ---- small helpers ---- */

static double now(void) { return rlaif_clock(); }

static void abs_time(struct timespec *ts, double secs) {
    clock_gettime(CLOCK_MONOTONIC, ts);
    double whole = (double)(time_t)secs;
    ts->tv_sec += (time_t)whole;
    ts->tv_nsec += (long)((secs - whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) ts->tv_sec++, ts->tv_nsec -= 1000000000L;
}

static char *dupn(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (p) {
        if (n) memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

/* Append name '\0' value '\0' to a packed buffer; 0 on out of memory. */
static int pack(char **buf, size_t *len, const char *k, size_t kl, const char *v, size_t vl, int lower) {
    char *p = realloc(*buf, *len + kl + vl + 2);
    if (p == NULL) return 0;
    for (size_t i = 0; i < kl; i++) {
        char c = k[i];
        p[*len + i] = (char)(lower && c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    p[*len + kl] = '\0';
    if (vl) memcpy(p + *len + kl + 1, v, vl);
    p[*len + kl + 1 + vl] = '\0';
    *buf = p;
    *len += kl + vl + 2;
    return 1;
}

static void req_free(srv_req *r) {
    if (r == NULL) return;
    free(r->path);
    free(r->query);
    free(r->headers);
    free(r->body);
    free(r->ctype);
    free(r->rheaders);
    free(r->rbody);
    free(r->sbuf);
    free(r);
}

/* Under the mutex. */
static srv_req *find(rlaif_server *s, uint64_t id) {
    for (srv_req *r = s->live; r; r = r->next)
        if (r->id == id) return r;
    return NULL;
}

static void queue_remove(rlaif_server *s, srv_req *r) {
    srv_req **pp = &s->qhead, *prev = NULL;
    while (*pp && *pp != r) prev = *pp, pp = &(*pp)->qnext;
    if (*pp == NULL) return;
    *pp = r->qnext;
    if (s->qtail == r) s->qtail = prev;
    r->qnext = NULL;
    s->qlen--;
}

/* ---- building MHD responses ---- */

/* OpenAI's error shape; messages here are fixed text and numbers only. */
static struct MHD_Response *error_response(const char *message, const char *type, const char *code) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":%s%s%s}}\n",
                     message, type, code ? "\"" : "", code ? code : "null", code ? "\"" : "");
    if (n < 0 || n >= (int)sizeof buf) n = (int)strlen(buf);
    struct MHD_Response *resp = MHD_create_response_from_buffer((size_t)n, buf, MHD_RESPMEM_MUST_COPY);
    if (resp) MHD_add_response_header(resp, "Content-Type", "application/json");
    return resp;
}

static enum MHD_Result queue_error(struct MHD_Connection *c, unsigned status, const char *message,
                                   const char *type, const char *code, const char *retry_after) {
    struct MHD_Response *resp = error_response(message, type, code);
    if (resp == NULL) return MHD_NO;
    if (retry_after) MHD_add_response_header(resp, "Retry-After", retry_after);
    if (status == 401) MHD_add_response_header(resp, "WWW-Authenticate", "Bearer");
    enum MHD_Result ret = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Add "Name: value\n" lines; lines without a colon are skipped. */
static void add_headers(struct MHD_Response *resp, const char *lines) {
    if (lines == NULL) return;
    const char *p = lines;
    while (*p) {
        const char *e = strchr(p, '\n');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        char line[1024];
        if (n < sizeof line) {
            memcpy(line, p, n);
            line[n] = '\0';
            char *colon = strchr(line, ':');
            if (colon) {
                *colon = '\0';
                char *v = colon + 1;
                while (*v == ' ') v++;
                MHD_add_response_header(resp, line, v);
            }
        }
        p += n + (e ? 1 : 0);
    }
}

/* ---- the MHD callbacks ---- */

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    srv_req *r = cls;
    if (strcasecmp(key, "Authorization") == 0) return MHD_YES;
    size_t vl = value ? strlen(value) : 0;
    if (!pack(&r->headers, &r->headers_len, key, strlen(key), value ? value : "", vl, 1)) return MHD_NO;
    return MHD_YES;
}

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value) {
    (void)kind;
    srv_req *r = cls;
    size_t vl = value ? strlen(value) : 0;
    if (!pack(&r->query, &r->query_len, key, strlen(key), value ? value : "", vl, 0)) return MHD_NO;
    return MHD_YES;
}

/* Constant-time comparison of the bearer token with the key. */
static int auth_ok(const rlaif_server *s, struct MHD_Connection *c) {
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0) return 0;
    const char *t = h + 7;
    while (*t == ' ') t++;
    size_t tl = strlen(t), kl = strlen(s->api_key);
    unsigned char diff = (unsigned char)(tl != kl);
    for (size_t i = 0; i < kl; i++) diff |= (unsigned char)(s->api_key[i] ^ (i < tl ? t[i] : 0));
    return diff == 0;
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max);

/* Queue the stored answer of r (MHD thread, after a resume). */
static enum MHD_Result queue_answer(rlaif_server *s, srv_req *r, struct MHD_Connection *c) {
    pthread_mutex_lock(&s->mu);
    req_state state = r->state;
    int status = r->status;
    char *body = r->rbody, *ctype = r->ctype, *hdrs = r->rheaders;
    size_t len = r->rbody_len;
    r->rbody = NULL, r->ctype = NULL, r->rheaders = NULL;
    pthread_mutex_unlock(&s->mu);
    struct MHD_Response *resp;
    if (state == RS_STREAMING) {
        resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, r, NULL);
    } else if (len == 0) {
        free(body);
        body = NULL;
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
        if (resp) body = NULL;
    }
    free(body);
    if (resp == NULL) {
        free(ctype);
        free(hdrs);
        return MHD_NO;
    }
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    if (state == RS_STREAMING) MHD_add_response_header(resp, "Cache-Control", "no-cache");
    add_headers(resp, hdrs);
    free(ctype);
    free(hdrs);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static const static_route *find_static(const rlaif_server *s, const char *method, const char *url) {
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) return NULL;
    for (int i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].path, url) == 0) return &s->routes[i];
    return NULL;
}

static enum MHD_Result queue_static(rlaif_server *s, struct MHD_Connection *c, const static_route *rt) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(rt->len, rt->body, MHD_RESPMEM_PERSISTENT);
    if (resp == NULL) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", rt->ctype);
    pthread_mutex_lock(&s->mu);
    s->st.static_hits++;
    pthread_mutex_unlock(&s->mu);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)rt->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void count(rlaif_server *s, uint64_t *field) {
    pthread_mutex_lock(&s->mu);
    (*field)++;
    pthread_mutex_unlock(&s->mu);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    (void)version;
    rlaif_server *s = cls;
    srv_req *r = *con_cls;
    if (r == NULL) {
        /* headers complete: the checks that need no body */
        r = calloc(1, sizeof *r);
        if (r == NULL) return MHD_NO;
        r->conn = c;
        r->s = s;
        r->arrived = now();
        snprintf(r->method, sizeof r->method, "%s", method);
        r->path = dupn(url, strlen(url));
        if (r->path == NULL) {
            free(r);
            return MHD_NO;
        }
        pthread_mutex_lock(&s->mu);
        r->id = ++s->next_id;
        r->next = s->live;
        if (s->live) s->live->prev = r;
        s->live = r;
        s->n_live++;
        int stopping = s->stopping;
        pthread_mutex_unlock(&s->mu);
        *con_cls = r;
        const static_route *rt = find_static(s, method, url);
        if (rt && rt->public_route) return r->immediate = 1, queue_static(s, c, rt);
        if (s->api_key && !auth_ok(s, c)) {
            count(s, &s->st.unauthorized);
            r->immediate = 1;
            return queue_error(c, 401, "Incorrect or missing API key: send the header Authorization: Bearer KEY.",
                               "invalid_request_error", "invalid_api_key", NULL);
        }
        if (rt) return r->immediate = 1, queue_static(s, c, rt);
        if (stopping) {
            r->immediate = 1;
            return queue_error(c, 503, "The server is shutting down.", "server_error", "shutting_down", "1");
        }
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end = NULL;
            errno = 0;
            unsigned long long v = strtoull(cl, &end, 10);
            if (errno != 0 || end == cl || v > s->o.max_body) {
                count(s, &s->st.too_large);
                r->immediate = 1;
                char msg[128];
                snprintf(msg, sizeof msg, "The request body is larger than the limit of %zu bytes.", s->o.max_body);
                return queue_error(c, 413, msg, "invalid_request_error", "request_too_large", NULL);
            }
        }
        MHD_get_connection_values(c, MHD_HEADER_KIND, collect_header, r);
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, r);
        return MHD_YES;
    }
    if (r->immediate) return MHD_YES;   /* MHD discards the rest of the request */
    if (r->state == RS_RECEIVING) {
        if (*upload_size > 0) {
            if (r->body_len + *upload_size > s->o.max_body) {   /* chunked body over the limit */
                count(s, &s->st.too_large);
                return MHD_NO;
            }
            if (s->o.read_timeout > 0 && now() - r->arrived > s->o.read_timeout) return MHD_NO;   /* too slow */
            if (r->body_len + *upload_size + 1 > r->body_cap) {
                size_t cap = r->body_cap ? r->body_cap : 4096;
                while (cap < r->body_len + *upload_size + 1) cap *= 2;
                if (cap > s->o.max_body + 1) cap = s->o.max_body + 1;
                char *p = realloc(r->body, cap);
                if (p == NULL) return MHD_NO;
                r->body = p;
                r->body_cap = cap;
            }
            memcpy(r->body + r->body_len, upload, *upload_size);
            r->body_len += *upload_size;
            r->body[r->body_len] = '\0';
            *upload_size = 0;
            return MHD_YES;
        }
        /* the whole request is here: queue it and put the connection to sleep */
        pthread_mutex_lock(&s->mu);
        if (s->stopping) {
            pthread_mutex_unlock(&s->mu);
            r->immediate = 1;
            return queue_error(c, 503, "The server is shutting down.", "server_error", "shutting_down", "1");
        }
        if (s->qlen >= s->o.max_queue) {
            s->st.rejected_full++;
            pthread_mutex_unlock(&s->mu);
            char ra[32];
            snprintf(ra, sizeof ra, "%d", s->o.retry_after);
            r->immediate = 1;
            return queue_error(c, 429, "Too many requests are waiting; retry later.", "requests",
                               "rate_limit_exceeded", ra);
        }
        r->state = RS_QUEUED;
        r->queued_at = now();
        if (s->qtail) s->qtail->qnext = r;
        else s->qhead = r;
        s->qtail = r;
        s->qlen++;
        s->st.received++;
        MHD_suspend_connection(c);
        pthread_cond_signal(&s->cv);
        pthread_mutex_unlock(&s->mu);
        return MHD_YES;
    }
    /* resumed with an answer */
    return queue_answer(s, r, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode why) {
    (void)c;
    rlaif_server *s = cls;
    srv_req *r = *con_cls;
    if (r == NULL) return;
    pthread_mutex_lock(&s->mu);
    if (r->state == RS_QUEUED) queue_remove(s, r);
    if (r->state == RS_TAKEN) s->in_flight--;
    if (why != MHD_REQUEST_TERMINATED_COMPLETED_OK && !r->immediate) s->st.dropped++;
    if (r->prev) r->prev->next = r->next;
    else s->live = r->next;
    if (r->next) r->next->prev = r->prev;
    s->n_live--;
    pthread_cond_broadcast(&s->reaper_cv);   /* stop() waits for the table to drain */
    pthread_mutex_unlock(&s->mu);
    req_free(r);
    *con_cls = NULL;
}

/* The content reader of a streamed answer (MHD thread). */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max) {
    (void)pos;
    srv_req *r = cls;
    rlaif_server *s = r->s;
    ssize_t n;
    pthread_mutex_lock(&s->mu);
    if (r->spos < r->slen) {
        size_t k = r->slen - r->spos;
        if (k > max) k = max;
        memcpy(buf, r->sbuf + r->spos, k);
        r->spos += k;
        if (r->spos == r->slen) r->spos = r->slen = 0;
        n = (ssize_t)k;
    } else if (r->ended) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        r->reader_waiting = 1;
        MHD_suspend_connection(r->conn);   /* resumed by stream_write / stream_end */
        n = 0;
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- the reaper: answers requests whose time is up ---- */

/* Set a stored answer on r and report whether its connection needs a resume.
 * Under the mutex; r is QUEUED or TAKEN. Takes ownership of body. */
static int set_answer(rlaif_server *s, srv_req *r, int status, char *ctype, char *hdrs, char *body, size_t len) {
    if (r->state == RS_QUEUED) queue_remove(s, r);
    if (r->state == RS_TAKEN) s->in_flight--;
    r->state = RS_ANSWERED;
    r->status = status;
    free(r->ctype), free(r->rheaders), free(r->rbody);
    r->ctype = ctype, r->rheaders = hdrs, r->rbody = body, r->rbody_len = len;
    return 1;
}

static char *error_body(const char *message, const char *type, const char *code, size_t *len) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":\"%s\"}}\n",
                     message, type, code);
    if (n < 0 || n >= (int)sizeof buf) n = (int)strlen(buf);
    *len = (size_t)n;
    return dupn(buf, (size_t)n);
}

/* Answer every QUEUED/TAKEN request matching `pred` with an error; resume them. */
static void answer_all(rlaif_server *s, int only_expired, int status, const char *message, const char *type,
                       const char *code, const char *hdrs) {
    struct MHD_Connection *wake[64];
    for (;;) {
        int n = 0;
        pthread_mutex_lock(&s->mu);
        double t = now();
        for (srv_req *r = s->live; r && n < 64; r = r->next) {
            if (r->state != RS_QUEUED && r->state != RS_TAKEN) continue;
            if (only_expired && !(s->o.timeout > 0 && t - r->arrived > s->o.timeout)) continue;
            size_t len = 0;
            char *body = error_body(message, type, code, &len);
            set_answer(s, r, status, dupn("application/json", 16), hdrs ? dupn(hdrs, strlen(hdrs)) : NULL, body,
                       body ? len : 0);
            if (only_expired) s->st.timed_out++;
            wake[n++] = r->conn;
        }
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < n; i++) MHD_resume_connection(wake[i]);
        if (n < 64) break;
    }
}

static void *reaper_main(void *arg) {
    rlaif_server *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->reaper_quit) {
        struct timespec ts;
        abs_time(&ts, 0.05);
        pthread_cond_timedwait(&s->reaper_cv, &s->mu, &ts);
        if (s->reaper_quit || s->o.timeout <= 0) continue;
        int due = 0;
        double t = now();
        for (srv_req *r = s->live; r && !due; r = r->next)
            due = (r->state == RS_QUEUED || r->state == RS_TAKEN) && t - r->arrived > s->o.timeout;
        if (!due) continue;
        pthread_mutex_unlock(&s->mu);
        char msg[128];
        snprintf(msg, sizeof msg, "The request was not answered within %g s (the server is busy).", s->o.timeout);
        answer_all(s, 1, 504, msg, "server_error", "timeout", NULL);
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* ---- lifetime ---- */

void rlaif_server_opts_defaults(rlaif_server_opts *o) {
    memset(o, 0, sizeof *o);
    o->host = "127.0.0.1";
    o->max_queue = 256;
    o->max_body = (size_t)8 << 20;
    o->timeout = 600;
    o->read_timeout = 30;
    o->max_connections = 1024;
    o->retry_after = 1;
}

static void server_free_memory(rlaif_server *s) {
    for (int i = 0; i < s->n_routes; i++) {
        free(s->routes[i].path);
        free(s->routes[i].ctype);
        free(s->routes[i].body);
    }
    free(s->api_key);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->reaper_cv);
    free(s);
}

rlaif_status rlaif_server_start(rlaif_server **out, const rlaif_server_opts *o) {
    *out = NULL;
    const char *host = o->host ? o->host : "127.0.0.1";
    if (o->port < 0 || o->port > 65535) return rlaif_fail(RLAIF_EINVAL, "serve: port %d is not in [0, 65535]", o->port);
    if (o->max_queue < 1) return rlaif_fail(RLAIF_EINVAL, "serve: max_queue must be >= 1 (got %d)", o->max_queue);
    if (o->max_body < 1) return rlaif_fail(RLAIF_EINVAL, "serve: max_body must be >= 1");
    if (o->max_connections < 1) return rlaif_fail(RLAIF_EINVAL, "serve: max_connections must be >= 1");
    if (!(o->timeout >= 0) || !(o->read_timeout >= 0))
        return rlaif_fail(RLAIF_EINVAL, "serve: timeouts must be >= 0");
    struct sockaddr_in a4;
    struct sockaddr_in6 a6;
    struct sockaddr *addr;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ITC;
    memset(&a4, 0, sizeof a4);
    memset(&a6, 0, sizeof a6);
    if (inet_pton(AF_INET, host, &a4.sin_addr) == 1) {
        a4.sin_family = AF_INET;
        a4.sin_port = htons((uint16_t)o->port);
        addr = (struct sockaddr *)&a4;
    } else if (inet_pton(AF_INET6, host, &a6.sin6_addr) == 1) {
        a6.sin6_family = AF_INET6;
        a6.sin6_port = htons((uint16_t)o->port);
        addr = (struct sockaddr *)&a6;
        flags |= MHD_USE_IPv6;
    } else {
        return rlaif_fail(RLAIF_EINVAL, "serve: host '%s' is not a numeric IPv4 or IPv6 address", host);
    }
    rlaif_server *s = calloc(1, sizeof *s);
    if (s == NULL) return rlaif_fail(RLAIF_ENOMEM, "serve: out of memory");
    s->o = *o;
    s->o.host = NULL;
    s->o.api_key = NULL;
    if (o->api_key && o->api_key[0] && (s->api_key = dupn(o->api_key, strlen(o->api_key))) == NULL) {
        free(s);
        return rlaif_fail(RLAIF_ENOMEM, "serve: out of memory");
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, &ca);
    pthread_cond_init(&s->reaper_cv, &ca);
    pthread_condattr_destroy(&ca);
    unsigned idle = o->read_timeout > 0 ? (unsigned)(o->read_timeout + 0.999) : 0;
    errno = 0;
    s->d = MHD_start_daemon(flags, (uint16_t)o->port, NULL, NULL, on_request, s,
                            MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, idle,
                            MHD_OPTION_CONNECTION_LIMIT, (unsigned)o->max_connections,
                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)64 * 1024,
                            MHD_OPTION_END);
    if (s->d == NULL) {
        int e = errno;
        server_free_memory(s);
        return rlaif_fail(RLAIF_EIO, "serve: cannot listen on %s port %d: %s", host, o->port,
                          e ? strerror(e) : "libmicrohttpd refused the configuration");
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) == 0) s->reaper_on = 1;
    *out = s;
    return RLAIF_OK;
}

int rlaif_server_port(const rlaif_server *s) { return s->port; }

rlaif_status rlaif_server_static(rlaif_server *s, const char *path, int status, const char *content_type,
                                 const char *body, size_t len, int public_route) {
    if (status < 100 || status > 599) return rlaif_fail(RLAIF_EINVAL, "serve.static: status %d is not in [100, 599]", status);
    pthread_mutex_lock(&s->mu);
    int i;
    for (i = 0; i < s->n_routes; i++)
        if (strcmp(s->routes[i].path, path) == 0) break;
    if (i == MAX_STATIC) {
        pthread_mutex_unlock(&s->mu);
        return rlaif_fail(RLAIF_EINVAL, "serve.static: at most %d static routes", MAX_STATIC);
    }
    /* routes are only added before requests arrive in practice; replacing one
     * while MHD reads it would race, so an existing path is refused */
    if (i < s->n_routes) {
        pthread_mutex_unlock(&s->mu);
        return rlaif_fail(RLAIF_EINVAL, "serve.static: route %s already exists", path);
    }
    static_route *rt = &s->routes[i];
    rt->path = dupn(path, strlen(path));
    rt->ctype = dupn(content_type ? content_type : "application/json", strlen(content_type ? content_type : "application/json"));
    rt->body = dupn(body ? body : "", body ? len : 0);
    rt->len = body ? len : 0;
    rt->status = status;
    rt->public_route = public_route;
    rlaif_status st = RLAIF_OK;
    if (!rt->path || !rt->ctype || !rt->body) {
        free(rt->path), free(rt->ctype), free(rt->body);
        memset(rt, 0, sizeof *rt);
        st = rlaif_fail(RLAIF_ENOMEM, "serve.static: out of memory");
    } else {
        s->n_routes++;
    }
    pthread_mutex_unlock(&s->mu);
    return st;
}

/* ---- the consumer side ---- */

void rlaif_server_requests_free(rlaif_server_request *reqs, int n) {
    if (reqs == NULL) return;
    for (int i = 0; i < n; i++) {
        free(reqs[i].path);
        free(reqs[i].query);
        free(reqs[i].headers);
        free(reqs[i].body);
    }
    free(reqs);
}

rlaif_status rlaif_server_take(rlaif_server *s, int max, double wait, double gather, rlaif_server_request **reqs,
                               int *n) {
    *reqs = NULL;
    *n = 0;
    if (max < 1) return rlaif_fail(RLAIF_EINVAL, "serve.take: max must be >= 1");
    double t0 = now();
    pthread_mutex_lock(&s->mu);
    /* wait for one, in short slices so that cancellation is seen */
    while (s->qlen == 0 && !s->stopping && !rlaif_cancelled() && now() - t0 < wait) {
        struct timespec ts;
        double left = wait - (now() - t0);
        abs_time(&ts, left < 0.05 ? left : 0.05);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    /* then let the batch fill for up to `gather` seconds after the first arrival */
    while (s->qlen > 0 && s->qlen < max && gather > 0 && !s->stopping && !rlaif_cancelled()) {
        double left = s->qhead->queued_at + gather - now();
        if (left <= 0) break;
        struct timespec ts;
        abs_time(&ts, left < 0.05 ? left : 0.05);
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
    if (rlaif_cancelled()) {
        pthread_mutex_unlock(&s->mu);
        return rlaif_fail(RLAIF_EINTR, "serve: interrupted");
    }
    int k = s->qlen < max ? s->qlen : max;
    rlaif_server_request *out = k ? calloc((size_t)k, sizeof *out) : NULL;
    if (k && out == NULL) {
        pthread_mutex_unlock(&s->mu);
        return rlaif_fail(RLAIF_ENOMEM, "serve.take: out of memory");
    }
    double t = now();
    for (int i = 0; i < k; i++) {
        srv_req *r = s->qhead;
        queue_remove(s, r);
        r->state = RS_TAKEN;
        s->in_flight++;
        rlaif_server_request *q = &out[i];
        q->id = r->id;
        memcpy(q->method, r->method, sizeof q->method);
        q->path = r->path, r->path = NULL;
        q->query = r->query, q->query_len = r->query_len, r->query = NULL;
        q->headers = r->headers, q->headers_len = r->headers_len, r->headers = NULL;
        q->body = r->body ? r->body : dupn("", 0), r->body = NULL;
        q->body_len = r->body_len;
        q->waited = t - r->queued_at;
    }
    pthread_mutex_unlock(&s->mu);
    for (int i = 0; i < k; i++) {
        if (out[i].body == NULL || out[i].path == NULL) {   /* dupn of "" failed or a path went missing */
            rlaif_server_requests_free(out, k);
            return rlaif_fail(RLAIF_ENOMEM, "serve.take: out of memory");
        }
    }
    *reqs = out;
    *n = k;
    return RLAIF_OK;
}

static rlaif_status gone(uint64_t id) {
    return rlaif_fail(RLAIF_EINVAL, "serve: request %" PRIu64 " is no longer waiting for an answer", id);
}

static int bad_header_text(const char *h) {
    for (const char *p = h; p && *p; p++)
        if (*p == '\r' || (*p == '\n' && (p[1] == ' ' || p[1] == '\t'))) return 1;
    return 0;
}

rlaif_status rlaif_server_respond(rlaif_server *s, uint64_t id, int status, const char *content_type,
                                  const char *headers, const char *body, size_t len) {
    if (status < 100 || status > 599) return rlaif_fail(RLAIF_EINVAL, "serve.respond: status %d is not in [100, 599]", status);
    if (bad_header_text(headers) || bad_header_text(content_type) || (content_type && strchr(content_type, '\n')))
        return rlaif_fail(RLAIF_EINVAL, "serve.respond: header text contains a carriage return or continuation line");
    char *b = dupn(body ? body : "", body ? len : 0);
    char *ct = content_type ? dupn(content_type, strlen(content_type)) : NULL;
    char *h = headers ? dupn(headers, strlen(headers)) : NULL;
    if (!b || (content_type && !ct) || (headers && !h)) {
        free(b), free(ct), free(h);
        return rlaif_fail(RLAIF_ENOMEM, "serve.respond: out of memory");
    }
    pthread_mutex_lock(&s->mu);
    srv_req *r = find(s, id);
    if (r == NULL || r->state != RS_TAKEN) {
        pthread_mutex_unlock(&s->mu);
        free(b), free(ct), free(h);
        return gone(id);
    }
    set_answer(s, r, status, ct, h, b, body ? len : 0);
    s->st.answered++;
    struct MHD_Connection *c = r->conn;
    pthread_mutex_unlock(&s->mu);
    MHD_resume_connection(c);
    return RLAIF_OK;
}

rlaif_status rlaif_server_stream_start(rlaif_server *s, uint64_t id, int status, const char *content_type,
                                       const char *headers) {
    if (status < 100 || status > 599) return rlaif_fail(RLAIF_EINVAL, "serve.stream: status %d is not in [100, 599]", status);
    if (bad_header_text(headers) || bad_header_text(content_type) || (content_type && strchr(content_type, '\n')))
        return rlaif_fail(RLAIF_EINVAL, "serve.stream: header text contains a carriage return or continuation line");
    char *ct = content_type ? dupn(content_type, strlen(content_type)) : NULL;
    char *h = headers ? dupn(headers, strlen(headers)) : NULL;
    if ((content_type && !ct) || (headers && !h)) {
        free(ct), free(h);
        return rlaif_fail(RLAIF_ENOMEM, "serve.stream: out of memory");
    }
    pthread_mutex_lock(&s->mu);
    srv_req *r = find(s, id);
    if (r == NULL || r->state != RS_TAKEN) {
        pthread_mutex_unlock(&s->mu);
        free(ct), free(h);
        return gone(id);
    }
    s->in_flight--;
    s->st.answered++;
    r->state = RS_STREAMING;
    r->status = status;
    free(r->ctype), free(r->rheaders);
    r->ctype = ct, r->rheaders = h;
    struct MHD_Connection *c = r->conn;
    pthread_mutex_unlock(&s->mu);
    MHD_resume_connection(c);
    return RLAIF_OK;
}

rlaif_status rlaif_server_stream_write(rlaif_server *s, uint64_t id, const char *data, size_t len) {
    pthread_mutex_lock(&s->mu);
    srv_req *r = find(s, id);
    if (r == NULL || r->state != RS_STREAMING || r->ended) {
        pthread_mutex_unlock(&s->mu);
        return gone(id);
    }
    if (r->slen + len > STREAM_MAX) {
        pthread_mutex_unlock(&s->mu);
        return rlaif_fail(RLAIF_ENOMEM, "serve.stream: more than %zu unsent bytes (the client does not read)",
                          STREAM_MAX);
    }
    if (r->slen + len > r->scap) {
        size_t cap = r->scap ? r->scap : 4096;
        while (cap < r->slen + len) cap *= 2;
        char *p = realloc(r->sbuf, cap);
        if (p == NULL) {
            pthread_mutex_unlock(&s->mu);
            return rlaif_fail(RLAIF_ENOMEM, "serve.stream: out of memory");
        }
        r->sbuf = p, r->scap = cap;
    }
    if (len) memcpy(r->sbuf + r->slen, data, len);
    r->slen += len;
    int wake = r->reader_waiting && len > 0;
    if (wake) r->reader_waiting = 0;
    struct MHD_Connection *c = r->conn;
    pthread_mutex_unlock(&s->mu);
    if (wake) MHD_resume_connection(c);
    return RLAIF_OK;
}

rlaif_status rlaif_server_stream_end(rlaif_server *s, uint64_t id) {
    pthread_mutex_lock(&s->mu);
    srv_req *r = find(s, id);
    if (r == NULL || r->state != RS_STREAMING || r->ended) {
        pthread_mutex_unlock(&s->mu);
        return gone(id);
    }
    r->ended = 1;
    int wake = r->reader_waiting;
    r->reader_waiting = 0;
    struct MHD_Connection *c = r->conn;
    pthread_mutex_unlock(&s->mu);
    if (wake) MHD_resume_connection(c);
    return RLAIF_OK;
}

void rlaif_server_get_stats(rlaif_server *s, rlaif_server_stats *out) {
    pthread_mutex_lock(&s->mu);
    *out = s->st;
    out->queued = s->qlen;
    out->in_flight = s->in_flight;
    pthread_mutex_unlock(&s->mu);
}

void rlaif_server_stop(rlaif_server *s, double drain) {
    if (s == NULL) return;
    pthread_mutex_lock(&s->mu);
    if (s->stopped) {
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->stopping = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    MHD_socket lsock = MHD_quiesce_daemon(s->d);   /* no new connections */
    if (lsock != MHD_INVALID_SOCKET) close(lsock);
    answer_all(s, 0, 503, "The server is shutting down.", "server_error", "shutting_down", "Retry-After: 1");
    /* end open streams, and wake readers that wait for data */
    struct MHD_Connection *wake[256];
    int n;
    do {
        n = 0;
        pthread_mutex_lock(&s->mu);
        for (srv_req *r = s->live; r && n < 256; r = r->next) {
            if (r->state != RS_STREAMING) continue;
            if (!r->ended) r->ended = 1;
            if (r->reader_waiting) {
                r->reader_waiting = 0;
                wake[n++] = r->conn;
            }
        }
        pthread_mutex_unlock(&s->mu);
        for (int i = 0; i < n; i++) MHD_resume_connection(wake[i]);
    } while (n == 256);
    /* let MHD send the answers; connections still receiving are cut at stop */
    double t0 = now();
    pthread_mutex_lock(&s->mu);
    for (;;) {
        int busy = 0;
        for (srv_req *r = s->live; r; r = r->next)
            if (r->state != RS_RECEIVING) busy = 1;
        if (!busy || now() - t0 >= drain) break;
        struct timespec ts;
        abs_time(&ts, 0.02);
        pthread_cond_timedwait(&s->reaper_cv, &s->mu, &ts);
    }
    s->reaper_quit = 1;
    pthread_cond_broadcast(&s->reaper_cv);
    pthread_mutex_unlock(&s->mu);
    if (s->reaper_on) pthread_join(s->reaper, NULL);
    s->reaper_on = 0;
    /* MHD forbids stopping with suspended connections: every QUEUED/TAKEN one
     * was answered and resumed above, and readers were woken */
    MHD_stop_daemon(s->d);
    s->d = NULL;
    pthread_mutex_lock(&s->mu);
    s->stopped = 1;
    pthread_mutex_unlock(&s->mu);
}

void rlaif_server_free(rlaif_server *s) {
    if (s == NULL) return;
    rlaif_server_stop(s, 1.0);
    server_free_memory(s);
}

/* ---- SIGTERM ---- */

static volatile sig_atomic_t sigterm_seen;
static struct sigaction old_term;
static int term_installed;

static void on_sigterm(int sig) {
    (void)sig;
    sigterm_seen = 1;
    rlaif_cancel_request();
}

void rlaif_server_catch_sigterm(int install) {
    if (install && !term_installed) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigterm;
        sigemptyset(&sa.sa_mask);
        sigterm_seen = 0;
        if (sigaction(SIGTERM, &sa, &old_term) == 0) term_installed = 1;
    } else if (!install && term_installed) {
        sigaction(SIGTERM, &old_term, NULL);
        term_installed = 0;
        if (sigterm_seen) rlaif_cancel_reset();   /* a handled SIGTERM does not cancel what follows */
    }
}

int rlaif_server_sigterm_seen(void) { return sigterm_seen != 0; }
