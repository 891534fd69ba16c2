/* src/core/par.h -- the thread pool of the model kernels (rlaif_par_for).
 *
 * A loop of n items cut into chunks of `grain` items; the calling thread and
 * up to threads - 1 pool workers claim chunks one at a time until none is
 * left. The caller waits only for chunks a worker has claimed, never for a
 * worker that has not started: on a shared machine, where a worker may be
 * descheduled for a whole scheduler slice, the caller simply does its share.
 * Workers wait for the next loop spinning for RLAIF_SPIN_US microseconds
 * (default 50), then sleep on a condition variable. Internal to the core;
 * not a public API. Ownership: ctx is borrowed for the duration of the call. */
#ifndef RLAIF_PAR_H
#define RLAIF_PAR_H

/* fn(ctx, lo, hi) processes items [lo, hi). */
typedef void (*rlaif_par_fn)(void *ctx, int lo, int hi);

/* Run fn over [0, n) in chunks of grain items on up to `threads` threads (the
 * caller included). One thread, one chunk, a call from inside a chunk, or a
 * pool busy with another thread's loop: the caller runs fn(ctx, 0, n) alone.
 * Each chunk is run by exactly one thread, so results that depend only on the
 * chunk boundaries are the same for any number of threads. */
void rlaif_par_for(int n, int grain, int threads, rlaif_par_fn fn, void *ctx);

/* Microseconds a worker spins before sleeping (RLAIF_SPIN_US, read once). */
int rlaif_par_spin_us(void);

#endif
