/* src/core/http.c -- the batch HTTP engine (see http.h).
 *
 * One curl multi handle driven by curl_multi_socket_action from an epoll loop:
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when its
 * next timeout is due (CURLMOPT_TIMERFUNCTION); each wake-up hands curl only the
 * sockets that are ready, so the cost per wake-up does not grow with the number
 * of transfers in flight (curl_multi_perform + curl_multi_poll walk them all).
 * Requests wait in a FIFO (ready) or a min-heap keyed by not_before (backing
 * off). The loop: cancel check -> promote due retries -> start up to the
 * current limit -> epoll_wait -> socket_action per ready socket (and on curl's
 * timer) -> collect finished transfers.
 * Easy handles are configured once (the options common to every attempt) and
 * reused without curl_easy_reset; response buffers are recycled through a free
 * list, so a steady-state attempt allocates nothing of its own.
 * Not here: request bodies or response parsing (the classify hook does that).
 * Ownership: the engine owns easy handles and response buffers; requests,
 * urls, headers and bodies are borrowed from the caller. */
#include "http.h"

#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY (256u << 20)   /* refuse responses above 256 MiB */
#define KEEP_BUF (64u << 10)    /* recycle response buffers up to this size; free larger ones */
#define MAX_EVENTS 256          /* epoll events taken per wake-up */
#define MAX_WAIT_MS 50          /* longest sleep, so the cancel flag is seen promptly */
#define JUDGE_CHUNK 16          /* answers parsed per loop turn before the sockets are looked at again */

typedef struct resp_buf { char *p; size_t cap; } resp_buf;

struct rlaif_http {
    CURLM *multi;
    rlaif_http_opts opts;
    int max_conc;             /* user maximum */
    double limit;             /* AIMD window, 1..max_conc */
    double last_decrease;     /* rlaif_clock() of the last multiplicative decrease */
    int in_flight;
    rlaif_http_req *flight;   /* in-flight requests, doubly linked (cancel walks it) */
    rlaif_http_req *judge_head, *judge_tail;   /* finished attempts waiting for judge() (FIFO) */
    /* ready FIFO (ring buffer) */
    rlaif_http_req **ready;
    size_t ready_cap, ready_head, ready_len;
    /* backoff heap */
    rlaif_http_req **heap;
    size_t heap_len, heap_cap;
    /* idle easy handles, already configured (see easy_new) */
    CURL **pool;
    size_t pool_len, pool_cap;
    /* idle response buffers */
    resp_buf *bufs;
    size_t bufs_len, bufs_cap;
    /* the socket_action machinery */
    int epfd;                 /* epoll instance watching curl's sockets */
    uint8_t *fds;             /* per-fd FD_* flags + EV_* interest (see socket_cb), by fd */
    size_t nfds;
    double timer_at;          /* rlaif_clock() when curl wants CURL_SOCKET_TIMEOUT, < 0 = none */
    int sock_errno;           /* first failed epoll_ctl (fails the batch), 0 when none */
    struct epoll_event events[MAX_EVENTS];
    uint64_t rng;
    int reached;              /* some attempt got an HTTP answer from the server */
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

/* ---- sockets ----
 * The epoll set follows curl's interest in each socket (CURLMOPT_SOCKETFUNCTION).
 * Sockets we open ourselves (CURLOPT_OPENSOCKETFUNCTION, "owned") stay in the
 * set while their connection idles in curl's cache (curl says REMOVE at the end
 * of every transfer and wants them back at the start of the next), so a reused
 * connection costs no epoll_ctl at all; our close callback takes them out. An
 * event on such a parked socket (the server closed it) just removes it: curl
 * notices the dead connection when it next tries to reuse it. Other sockets
 * (e.g. a resolver's) follow curl's ADD/REMOVE exactly. */

enum { FD_OWNED = 1, FD_REGISTERED = 2, FD_WANTED = 4, EV_IN = 8, EV_OUT = 16 };

static uint8_t *fd_slot(rlaif_http *h, curl_socket_t s) {
    if (s < 0) return NULL;
    if ((size_t)s >= h->nfds) {
        size_t n = h->nfds ? h->nfds : 256;
        while (n <= (size_t)s) n *= 2;
        uint8_t *f = realloc(h->fds, n);
        if (f == NULL) return NULL;
        memset(f + h->nfds, 0, n - h->nfds);
        h->fds = f;
        h->nfds = n;
    }
    return &h->fds[s];
}

static void note_errno(rlaif_http *h) {
    if (h->sock_errno == 0) h->sock_errno = errno ? errno : EIO;
}

static void epoll_del(rlaif_http *h, curl_socket_t s, uint8_t *f) {
    epoll_ctl(h->epfd, EPOLL_CTL_DEL, s, NULL);   /* may already be gone: ignore errors */
    if (f) *f &= (uint8_t)~(FD_REGISTERED | FD_WANTED | EV_IN | EV_OUT);
}

static int socket_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)e;
    (void)socketp;
    rlaif_http *h = userp;
    uint8_t *f = fd_slot(h, s);
    if (f == NULL) {   /* out of memory for the table: fail the batch rather than hang */
        errno = ENOMEM;
        note_errno(h);
        return 0;
    }
    if (what == CURL_POLL_REMOVE) {
        if (*f & FD_OWNED) *f &= (uint8_t)~FD_WANTED;   /* park it, registered */
        else epoll_del(h, s, f);
        return 0;
    }
    uint8_t want = (uint8_t)((what & CURL_POLL_IN ? EV_IN : 0) |
                             (what & CURL_POLL_OUT ? EV_OUT : 0));
    uint8_t have = *f & (EV_IN | EV_OUT);
    if ((*f & (FD_OWNED | FD_REGISTERED)) == (FD_OWNED | FD_REGISTERED) && have == want) {
        *f |= FD_WANTED;   /* a parked connection back in use: nothing to tell the kernel */
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (want & EV_IN ? EPOLLIN : 0u) | (want & EV_OUT ? EPOLLOUT : 0u);
    ev.data.fd = s;
    int rc;
    if (*f & FD_REGISTERED) {
        rc = epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev);
        if (rc != 0 && errno == ENOENT) rc = epoll_ctl(h->epfd, EPOLL_CTL_ADD, s, &ev);
    } else {
        rc = epoll_ctl(h->epfd, EPOLL_CTL_ADD, s, &ev);
        if (rc != 0 && errno == EEXIST) rc = epoll_ctl(h->epfd, EPOLL_CTL_MOD, s, &ev);
    }
    if (rc != 0) {
        note_errno(h);
        *f &= (uint8_t)~(FD_REGISTERED | FD_WANTED | EV_IN | EV_OUT);
        return 0;
    }
    *f = (uint8_t)((*f & FD_OWNED) | FD_REGISTERED | FD_WANTED | want);
    return 0;
}

/* CURLOPT_OPENSOCKETFUNCTION: curl's own default, plus close-on-exec and the
 * FD_OWNED mark (we will see this socket's close). */
static curl_socket_t open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a) {
    (void)purpose;
    rlaif_http *h = clientp;
    curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (s == CURL_SOCKET_BAD) return s;
    uint8_t *f = fd_slot(h, s);
    if (f != NULL) *f = FD_OWNED;   /* without a slot it is simply handled as not owned */
    return s;
}

/* CURLOPT_CLOSESOCKETFUNCTION: out of the epoll set first (a forked child may
 * hold a copy of the fd, which would keep the registration alive), then close. */
static int close_cb(void *clientp, curl_socket_t s) {
    rlaif_http *h = clientp;
    if (s >= 0 && (size_t)s < h->nfds) {
        uint8_t *f = &h->fds[s];
        if (*f & FD_REGISTERED) epoll_del(h, s, f);
        *f = 0;
    }
    return close(s);
}

/* CURLMOPT_TIMERFUNCTION: curl's next deadline; -1 deletes it. */
static int timer_cb(CURLM *m, long timeout_ms, void *userp) {
    (void)m;
    rlaif_http *h = userp;
    h->timer_at = timeout_ms < 0 ? -1 : rlaif_clock() + (double)timeout_ms / 1000.0;
    return 0;
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
    const char *ca_file = opts->ca_file;
    char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
    if (ca_file != NULL) {
        rlaif_status gst = rlaif_path_gate(&ca_file, gate, RLAIF_PATH_READ, "http: ca_file");
        if (gst != RLAIF_OK) return gst;
    }
    rlaif_http *h = calloc(1, sizeof *h);
    if (h == NULL) return rlaif_fail(RLAIF_ENOMEM, "http: out of memory");
    h->epfd = -1;
    h->timer_at = -1;
    h->opts = *opts;
    h->opts.ca_file = NULL;   /* copied below */
    if (ca_file != NULL && (h->opts.ca_file = strdup(ca_file)) == NULL) goto nomem;
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (h->epfd < 0) {
        int err = errno;
        rlaif_http_free(h);
        return rlaif_fail(RLAIF_EIO, "http: epoll_create1: %s", strerror(err));
    }
    h->multi = curl_multi_init();
    if (h->multi == NULL) goto nomem;
    h->max_conc = opts->concurrency;
    h->limit = opts->concurrency;
    h->rng = (uint64_t)(rlaif_clock() * 1e9) ^ (uint64_t)(uintptr_t)h ^ 0x9E3779B97F4A7C15ull;
    if (h->rng == 0) h->rng = 1;
    CURLMcode mc = curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    if (mc == CURLM_OK) mc = curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, (void *)h);
    if (mc == CURLM_OK) mc = curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    if (mc == CURLM_OK) mc = curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, (void *)h);
    if (mc != CURLM_OK) {
        rlaif_http_free(h);
        return rlaif_fail(RLAIF_EIO, "http: curl_multi_setopt: %s", curl_multi_strerror(mc));
    }
    /* tuning, not correctness: failures here are harmless */
    curl_multi_setopt(h->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)(opts->concurrency + 16));
    *out = h;
    return RLAIF_OK;
nomem:
    rlaif_http_free(h);
    return rlaif_fail(RLAIF_ENOMEM, "http: out of memory");
}

void rlaif_http_free(rlaif_http *h) {
    if (h == NULL) return;
    for (size_t i = 0; i < h->pool_len; i++) curl_easy_cleanup(h->pool[i]);
    free(h->pool);
    for (size_t i = 0; i < h->bufs_len; i++) free(h->bufs[i].p);
    free(h->bufs);
    free(h->ready);
    free(h->heap);
    /* closing cached connections still calls socket_cb/close_cb: epfd and fds live until here */
    if (h->multi) curl_multi_cleanup(h->multi);
    if (h->epfd >= 0) close(h->epfd);
    free(h->fds);
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

rlaif_status rlaif_http_submit(rlaif_http *h, rlaif_http_req *r) {
    if (r->url == NULL || r->classify == NULL || r->on_finish == NULL)
        return rlaif_fail(RLAIF_EINVAL, "http.submit: url, classify and on_finish are required");
    r->status = 0;
    r->attempts = 0;
    r->kind = RLAIF_HTTP_OK;
    r->message[0] = '\0';
    r->t_first = 0;
    r->easy = NULL;
    r->resp = NULL;
    r->resp_len = r->resp_cap = 0;
    if (ready_push(h, r) != 0) return rlaif_fail(RLAIF_ENOMEM, "http.submit: out of memory");
    return RLAIF_OK;
}

/* ---- response buffers ---- */

/* Lend a recycled buffer to r for its next attempt (write_cb grows it). */
static void buf_lend(rlaif_http *h, rlaif_http_req *r) {
    if (r->resp == NULL && h->bufs_len > 0) {
        resp_buf b = h->bufs[--h->bufs_len];
        r->resp = b.p;
        r->resp_cap = b.cap;
    }
    r->resp_len = 0;
    if (r->resp) r->resp[0] = '\0';
}

/* Take a buffer back (p may be NULL). Large ones are freed, not hoarded. */
static void buf_return(rlaif_http *h, char *p, size_t cap) {
    if (p == NULL) return;
    if (cap > KEEP_BUF) {
        free(p);
        return;
    }
    if (h->bufs_len == h->bufs_cap) {
        size_t ncap = h->bufs_cap ? h->bufs_cap * 2 : 64;
        resp_buf *b = realloc(h->bufs, ncap * sizeof *b);
        if (b == NULL) {
            free(p);
            return;
        }
        h->bufs = b;
        h->bufs_cap = ncap;
    }
    h->bufs[h->bufs_len].p = p;
    h->bufs[h->bufs_len].cap = cap;
    h->bufs_len++;
}

/* Detach r's buffer (between attempts, while r waits to retry). */
static void buf_reclaim(rlaif_http *h, rlaif_http_req *r) {
    buf_return(h, r->resp, r->resp_cap);
    r->resp = NULL;
    r->resp_len = r->resp_cap = 0;
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

/* A new easy handle with every option that is the same for all attempts of
 * this engine; start() then sets only the per-attempt ones. */
static CURL *easy_new(rlaif_http *h) {
    CURL *e = curl_easy_init();
    if (e == NULL) return NULL;
    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_NOSIGNAL, 1L);
    SET(CURLOPT_OPENSOCKETFUNCTION, open_cb);
    SET(CURLOPT_OPENSOCKETDATA, (void *)h);
    SET(CURLOPT_CLOSESOCKETFUNCTION, close_cb);
    SET(CURLOPT_CLOSESOCKETDATA, (void *)h);
    SET(CURLOPT_PROTOCOLS_STR, "http,https");   /* never file://, ftp://, ... from a base_url */
    SET(CURLOPT_POST, 1L);
    SET(CURLOPT_WRITEFUNCTION, write_cb);
    SET(CURLOPT_HEADERFUNCTION, header_cb);
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
    if (h->opts.ca_file) SET(CURLOPT_CAINFO, h->opts.ca_file);   /* gated: in rlaif_http_new */
#undef SET
    if (rc != CURLE_OK) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

static CURL *get_easy(rlaif_http *h) {
    if (h->pool_len > 0) return h->pool[--h->pool_len];
    return easy_new(h);
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

/* End r: its hook runs with r->resp still lent; afterwards the engine takes the
 * buffer back without touching r (on_finish may reuse or free it). */
static void finish(rlaif_http *h, rlaif_http_req *r, double now) {
    char *buf = r->resp;
    size_t cap = r->resp_cap;
    r->elapsed = r->t_first > 0 ? now - r->t_first : 0;
    r->on_finish(r);
    buf_return(h, buf, cap);
}

static void fail_now(rlaif_http *h, rlaif_http_req *r, rlaif_http_kind kind, const char *msg) {
    r->kind = kind;
    snprintf(r->message, sizeof r->message, "%s", msg);
    finish(h, r, rlaif_clock());
}

/* Start one attempt; on a local failure the request ends as a transport error. */
static void start(rlaif_http *h, rlaif_http_req *r, double now) {
    CURL *e = get_easy(h);
    if (e == NULL) {
        fail_now(h, r, RLAIF_HTTP_ETRANSPORT, "curl_easy_init failed");
        return;
    }
    r->attempts++;
    r->status = 0;
    buf_lend(h, r);
    r->request_id[0] = r->content_type[0] = '\0';
    r->retry_after = -1;
    r->should_retry = -1;
    r->connect_failed = 0;
    r->t_start = now;
    if (r->t_first == 0) r->t_first = r->t_start;
    if (r->on_attempt) r->on_attempt(r);

    CURLcode rc = CURLE_OK;
#define SET(opt, val) \
    if (rc == CURLE_OK) rc = curl_easy_setopt(e, opt, val)
    SET(CURLOPT_URL, r->url);
    SET(CURLOPT_PRIVATE, (void *)r);
    SET(CURLOPT_POSTFIELDS, r->body ? r->body : "");
    SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
    SET(CURLOPT_HTTPHEADER, (struct curl_slist *)r->headers);
    SET(CURLOPT_WRITEDATA, (void *)r);
    SET(CURLOPT_HEADERDATA, (void *)r);
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
static void retry_or_finish(rlaif_http *h, rlaif_http_req *r, int retry, double now) {
    if (!retry || r->attempts > h->opts.max_retries) {
        if (retry) {
            size_t l = strlen(r->message);
            snprintf(r->message + l, sizeof r->message - l, " (gave up after %d attempts)", r->attempts);
        }
        finish(h, r, now);
        return;
    }
    double delay;
    if (r->retry_after >= 0) {
        if (r->retry_after > h->opts.retry_after_cap) {
            size_t l = strlen(r->message);
            snprintf(r->message + l, sizeof r->message - l,
                     " (server asked to retry after %.0f s, over the %.0f s cap)", r->retry_after,
                     h->opts.retry_after_cap);
            finish(h, r, now);
            return;
        }
        delay = r->retry_after;
    } else {
        delay = rlaif_http_backoff(h->opts.backoff_base, h->opts.backoff_cap, r->attempts, rng_unit(h));
    }
    r->not_before = now + delay;
    if (heap_push(h, r) != 0) {
        finish(h, r, now);
        return;
    }
    buf_reclaim(h, r);   /* the next attempt borrows a buffer again */
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

/* Take a finished transfer away from curl (cheap): the easy handle goes back
 * to the pool, r keeps the outcome until judge() looks at it. */
static rlaif_http_req *detach(rlaif_http *h, CURL *e, CURLcode res, double now) {
    rlaif_http_req *r = NULL;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t pre = 0;   /* 0: the request never went out (no connection) */
    if (curl_easy_getinfo(e, CURLINFO_PRETRANSFER_TIME_T, &pre) != CURLE_OK) pre = 1;
    r->no_request_sent = pre == 0;
    curl_multi_remove_handle(h->multi, e);
    put_easy(h, e);
    flight_unlink(h, r);
    h->in_flight--;
    r->easy = NULL;
    r->latency = now - r->t_start;
    r->status = (int)status;
    r->curl_result = (int)res;
    return r;
}

/* curl errors of an attempt that never reached the server. */
static int connect_failure(CURLcode c, int no_request_sent) {
    return c == CURLE_COULDNT_CONNECT || c == CURLE_COULDNT_RESOLVE_HOST || c == CURLE_COULDNT_RESOLVE_PROXY ||
           (c == CURLE_OPERATION_TIMEDOUT && no_request_sent);
}

/* Decide a detached attempt: accept, retry later or give up. */
static void judge(rlaif_http *h, rlaif_http_req *r, double now) {
    CURLcode res = (CURLcode)r->curl_result;
    if (r->status > 0) h->reached = 1;
    if (res != CURLE_OK) {
        char msg[sizeof r->message];
        const char *extra = res == CURLE_WRITE_ERROR && r->message[0] ? r->message : "";
        r->connect_failed = connect_failure(res, r->no_request_sent);
        /* a server never reached in this engine's life is not waited for */
        int never = r->connect_failed && !h->reached;
        snprintf(msg, sizeof msg, "transport: %s%s%.200s%s", curl_easy_strerror(res), *extra ? ": " : "", extra,
                 never ? " (the server has not answered yet: not retried)" : "");
        r->kind = RLAIF_HTTP_ETRANSPORT;
        memcpy(r->message, msg, sizeof msg);
        retry_or_finish(h, r, !transport_fatal(res) && !never, now);
        return;
    }
    h->reached = 1;
    r->kind = RLAIF_HTTP_OK;
    r->message[0] = '\0';
    rlaif_http_verdict v = r->classify(r);
    if (v == RLAIF_HTTP_ACCEPT) {
        r->kind = RLAIF_HTTP_OK;
        aimd_on_success(h);
        finish(h, r, now);
        return;
    }
    if (r->kind == RLAIF_HTTP_OK) r->kind = RLAIF_HTTP_EHTTP;
    int retry = v == RLAIF_HTTP_RETRY;
    /* x-should-retry overrides the status-based decision, never a capability error */
    if (r->status >= 300 && r->should_retry >= 0 && r->kind != RLAIF_HTTP_ECAPABILITY) retry = r->should_retry;
    if (r->status == 429 && retry) aimd_on_429(h);
    retry_or_finish(h, r, retry, now);
}

static void judge_push(rlaif_http *h, rlaif_http_req *r) {
    r->next = NULL;
    if (h->judge_tail) h->judge_tail->next = r;
    else h->judge_head = r;
    h->judge_tail = r;
}

static rlaif_http_req *judge_pop(rlaif_http *h) {
    rlaif_http_req *r = h->judge_head;
    if (r == NULL) return NULL;
    h->judge_head = r->next;
    if (h->judge_head == NULL) h->judge_tail = NULL;
    r->next = NULL;
    return r;
}

/* Judge up to k waiting answers. */
static void judge_some(rlaif_http *h, int k) {
    if (h->judge_head == NULL) return;
    double now = rlaif_clock();
    rlaif_http_req *r;
    while (k-- > 0 && (r = judge_pop(h)) != NULL) judge(h, r, now);
}

/* End every request still queued, backing off or in flight as cancelled.
 * Attempts that already finished are judged first: their answers count. */
static void cancel_all(rlaif_http *h, const char *why) {
    rlaif_http_req *r;
    while ((r = judge_pop(h)) != NULL) judge(h, r, rlaif_clock());
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
    h->timer_at = -1;
}

/* Run curl's timeout work when it is due. Returns a CURLMcode. */
static CURLMcode fire_timer(rlaif_http *h, double now) {
    if (h->timer_at < 0 || h->timer_at > now) return CURLM_OK;
    h->timer_at = -1;   /* curl re-arms it through timer_cb */
    int running;
    return curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
}

/* Start queued requests up to the current limit and get them on the wire. */
static CURLMcode refill(rlaif_http *h, double now) {
    int lim = (int)h->limit;
    if (lim < 1) lim = 1;
    int started = 0;
    while (h->in_flight < lim && h->ready_len && !rlaif_cancelled()) {
        start(h, ready_pop(h), now);
        started++;
    }
    /* new transfers set curl's timer to "now": running it sends them */
    return started ? fire_timer(h, now) : CURLM_OK;
}

/* Finished transfers: detach them all and send their replacements at once;
 * parsing and judging the answers comes after, JUDGE_CHUNK per loop turn, so
 * that neither the next requests nor the sockets that became ready meanwhile
 * wait for the parsing of a whole wave of responses. Returns how many
 * finished; *mc receives a curl failure from sending the replacements. */
static int collect(rlaif_http *h, CURLMcode *mc) {
    CURLMsg *m;
    int left, finished = 0;
    double now = -1;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE) continue;
        if (now < 0) now = rlaif_clock();
        judge_push(h, detach(h, m->easy_handle, m->data.result, now));
        finished++;
    }
    if (finished > 0) {
        CURLMcode rc = refill(h, now);
        if (rc != CURLM_OK && *mc == CURLM_OK) *mc = rc;
    }
    judge_some(h, JUDGE_CHUNK);
    return finished;
}

/* Milliseconds to sleep: until curl's timer, the next retry or MAX_WAIT_MS. */
static int wait_ms(const rlaif_http *h, double now) {
    if (h->judge_head != NULL || (h->ready_len && h->in_flight < (int)h->limit)) return 0;
    double d = MAX_WAIT_MS / 1000.0;
    if (h->timer_at >= 0 && h->timer_at - now < d) d = h->timer_at - now;
    if (h->heap_len && h->heap[0]->not_before - now < d) d = h->heap[0]->not_before - now;
    return d <= 0 ? 0 : (int)ceil(d * 1000);
}

rlaif_status rlaif_http_run(rlaif_http *h, int (*tick)(void *ud), void *ud) {
    rlaif_status st = RLAIF_OK;
    const char *failed = NULL;   /* the curl/epoll call that broke the loop */
    CURLMcode mc = CURLM_OK;
    while (h->ready_len || h->heap_len || h->in_flight || h->judge_head) {
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
        if ((mc = refill(h, now)) != CURLM_OK || (mc = fire_timer(h, now)) != CURLM_OK) {
            failed = "curl_multi_socket_action";
            break;
        }
        int finished = collect(h, &mc);
        if (finished && mc == CURLM_OK && h->ready_len && h->in_flight < (int)h->limit) continue;
        if (mc != CURLM_OK) {
            failed = "curl_multi_socket_action";
            break;
        }
        if (!h->ready_len && !h->heap_len && !h->in_flight && !h->judge_head) break;

        int n = epoll_wait(h->epfd, h->events, MAX_EVENTS, wait_ms(h, rlaif_clock()));
        if (n < 0 && errno != EINTR) {
            h->sock_errno = errno;
        }
        for (int i = 0; i < n && mc == CURLM_OK; i++) {
            uint32_t ev = h->events[i].events;
            curl_socket_t fd = h->events[i].data.fd;
            uint8_t *f = (size_t)fd < h->nfds ? &h->fds[fd] : NULL;
            if (f != NULL && (*f & (FD_REGISTERED | FD_WANTED)) == FD_REGISTERED) {
                epoll_del(h, fd, f);   /* a parked connection closed by the server */
                continue;
            }
            int mask = 0;
            if (ev & (EPOLLIN | EPOLLHUP | EPOLLERR)) mask |= CURL_CSELECT_IN;
            if (ev & (EPOLLOUT | EPOLLERR)) mask |= CURL_CSELECT_OUT;
            int running;
            mc = curl_multi_socket_action(h->multi, fd, mask, &running);
        }
        if (mc == CURLM_OK) mc = fire_timer(h, rlaif_clock());
        if (mc != CURLM_OK) {
            failed = "curl_multi_socket_action";
            break;
        }
        if (h->sock_errno != 0) {
            failed = "epoll";
            break;
        }
        collect(h, &mc);
        if (mc != CURLM_OK) {
            failed = "curl_multi_socket_action";
            break;
        }
    }
    if (failed != NULL) {
        char why[160];
        if (mc != CURLM_OK) snprintf(why, sizeof why, "%s: %s", failed, curl_multi_strerror(mc));
        else snprintf(why, sizeof why, "%s: %s", failed, strerror(h->sock_errno));
        h->sock_errno = 0;
        cancel_all(h, why);
        st = rlaif_fail(RLAIF_EIO, "http: %s", why);
    }
    return st;
}
