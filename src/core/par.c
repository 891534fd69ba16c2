/* src/core/par.c -- the thread pool of the model kernels (see par.h).
 *
 * Why not OpenMP: libgomp's workers spin for about 300,000 iterations after
 * every parallel region and every region ends in a barrier that waits for all
 * of its threads, started or not. On cores shared with other processes a
 * descheduled worker then stalls every region for a scheduler slice, and the
 * spinning threads take the slices that would have run it: generation fell to
 * a few tokens/s beside two busy loops. Here a loop is a shared chunk counter
 * (epoch << 32 | next chunk) that threads claim with a compare-and-swap, and
 * the caller waits only for chunks that were claimed. The spin is short and
 * then workers sleep, so a woken worker gets the scheduler's wake-up credit.
 *
 * One loop runs at a time (the submit mutex); another thread that finds the
 * pool busy, and any call from inside a chunk, runs its loop alone. Workers
 * are created on first use, up to the largest count asked for, and live until
 * the process exits; a forked child starts with none.
 * Not here: which loops are parallel and how big their chunks are (kernels.c,
 * generate.c, model.c decide, with the work-size thresholds). */
#include "par.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define MAX_WORKERS 255

static pthread_mutex_t submit_mu = PTHREAD_MUTEX_INITIALIZER;  /* one loop at a time          */
static pthread_mutex_t sleep_mu = PTHREAD_MUTEX_INITIALIZER;   /* guards the two conditions    */
static pthread_cond_t wake_cv = PTHREAD_COND_INITIALIZER;      /* workers: a new epoch          */
static pthread_cond_t done_cv = PTHREAD_COND_INITIALIZER;      /* caller: the last chunk ended */
static int n_workers;                                          /* started (under submit_mu)    */
static _Atomic uint32_t epoch;                                 /* the current loop's number    */
static _Atomic uint64_t claim;                                 /* epoch << 32 | next chunk     */
static _Atomic int finished;                                   /* chunks done in this loop     */
static _Atomic int sleepers;                                   /* workers on wake_cv           */
static _Atomic int caller_waiting;                             /* the caller is on done_cv     */
/* the current loop; written before its epoch is published */
static _Atomic(rlaif_par_fn) job_fn;
static _Atomic(void *) job_ctx;
static _Atomic int job_n, job_grain, job_chunks, job_workers;
static _Thread_local int in_chunk;                             /* nested calls run alone       */

static int spin_us = -1;

int rlaif_par_spin_us(void) {
    if (spin_us < 0) {
        const char *e = getenv("RLAIF_SPIN_US");
        char *end;
        long v = e && *e ? strtol(e, &end, 10) : -1;
        spin_us = (e && *e && *end == '\0' && v >= 0 && v <= 1000000) ? (int)v : 50;
    }
    return spin_us;
}

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec * 1e-3;
}

/* Claim and run chunks of loop e until none is left or the loop is over. */
static void run_chunks(uint32_t e) {
    for (;;) {
        uint64_t v = atomic_load(&claim);
        if ((uint32_t)(v >> 32) != e) return;
        int i = (int)(uint32_t)v, chunks = atomic_load(&job_chunks);
        if (i >= chunks) return;
        /* a failed exchange means another claim or a new loop: look again */
        if (!atomic_compare_exchange_weak(&claim, &v, v + 1)) continue;
        /* the loop cannot end before this chunk does: its fields are stable */
        int n = atomic_load(&job_n), grain = atomic_load(&job_grain);
        int lo = i * grain, hi = n - lo > grain ? lo + grain : n;
        in_chunk = 1;
        atomic_load(&job_fn)(atomic_load(&job_ctx), lo, hi);
        in_chunk = 0;
        if (atomic_fetch_add(&finished, 1) + 1 == chunks && atomic_load(&caller_waiting)) {
            pthread_mutex_lock(&sleep_mu);
            pthread_cond_signal(&done_cv);
            pthread_mutex_unlock(&sleep_mu);
        }
    }
}

static void *worker_main(void *arg) {
    int id = (int)(intptr_t)arg;
    uint32_t seen = atomic_load(&epoch);
    for (;;) {
        uint32_t e;
        double t0 = -1;
        int spins = 0;
        while ((e = atomic_load(&epoch)) == seen) {
            cpu_relax();
            if (++spins % 64) continue;
            double t = now_us();
            if (t0 < 0) t0 = t;
            if (t - t0 < rlaif_par_spin_us()) continue;
            /* sleep: the caller reads `sleepers` after publishing its epoch */
            pthread_mutex_lock(&sleep_mu);
            atomic_fetch_add(&sleepers, 1);
            while (atomic_load(&epoch) == seen) pthread_cond_wait(&wake_cv, &sleep_mu);
            atomic_fetch_sub(&sleepers, 1);
            pthread_mutex_unlock(&sleep_mu);
        }
        seen = e;
        if (id < atomic_load(&job_workers)) run_chunks(e);
    }
    return NULL;
}

static void reset_after_fork(void) {
    /* the child has none of the parent's workers */
    n_workers = 0;
    atomic_store(&sleepers, 0);
    atomic_store(&caller_waiting, 0);
    pthread_mutex_init(&submit_mu, NULL);
    pthread_mutex_init(&sleep_mu, NULL);
    pthread_cond_init(&wake_cv, NULL);
    pthread_cond_init(&done_cv, NULL);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void install_atfork(void) { pthread_atfork(NULL, NULL, reset_after_fork); }

/* Start workers up to `want` (under submit_mu); returns how many exist. */
static int ensure_workers(int want) {
    if (want > MAX_WORKERS) want = MAX_WORKERS;
    while (n_workers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker_main, (void *)(intptr_t)n_workers);
        pthread_attr_destroy(&attr);
        if (rc != 0) break;   /* fewer threads: the caller does more */
        n_workers++;
    }
    return n_workers;
}

void rlaif_par_for(int n, int grain, int threads, rlaif_par_fn fn, void *ctx) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    int chunks = (int)(((int64_t)n + grain - 1) / grain);
    if (threads <= 1 || chunks <= 1 || in_chunk || pthread_mutex_trylock(&submit_mu) != 0) {
        fn(ctx, 0, n);
        return;
    }
    pthread_once(&atfork_once, install_atfork);
    int workers = ensure_workers(threads - 1);
    if (workers > threads - 1) workers = threads - 1;
    atomic_store(&job_fn, fn);
    atomic_store(&job_ctx, ctx);
    atomic_store(&job_n, n);
    atomic_store(&job_grain, grain);
    atomic_store(&job_chunks, chunks);
    atomic_store(&job_workers, workers);
    atomic_store(&finished, 0);
    uint32_t e = atomic_load(&epoch) + 1;
    atomic_store(&claim, (uint64_t)e << 32);
    atomic_store(&epoch, e);
    if (atomic_load(&sleepers) > 0) {
        pthread_mutex_lock(&sleep_mu);
        pthread_cond_broadcast(&wake_cv);
        pthread_mutex_unlock(&sleep_mu);
    }
    run_chunks(e);
    /* every chunk is claimed: wait for those still running elsewhere */
    if (atomic_load(&finished) < chunks) {
        double t0 = now_us();
        int spins = 0;
        while (atomic_load(&finished) < chunks) {
            cpu_relax();
            if (++spins % 64 == 0 && now_us() - t0 > rlaif_par_spin_us()) {
                pthread_mutex_lock(&sleep_mu);
                atomic_store(&caller_waiting, 1);
                while (atomic_load(&finished) < chunks) pthread_cond_wait(&done_cv, &sleep_mu);
                atomic_store(&caller_waiting, 0);
                pthread_mutex_unlock(&sleep_mu);
                break;
            }
        }
    }
    pthread_mutex_unlock(&submit_mu);
}
