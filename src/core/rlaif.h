/* src/core/rlaif.h -- umbrella header of the pure C core: status codes, version,
 * error reporting, cancellation and BLAS/thread set-up.
 *
 * This core never includes lua.h (`make check` proves it). Every function that can
 * fail on user input returns an rlaif_status and leaves a readable message in a
 * thread-local buffer (rlaif_last_error); nothing here calls exit or abort on
 * anything a caller can trigger. */
#ifndef RLAIF_H
#define RLAIF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RLAIF_VERSION "0.1.0"

typedef enum rlaif_status {
    RLAIF_OK = 0,
    RLAIF_EINVAL,   /* bad argument: negative size, bad dim, wrong shape */
    RLAIF_ENOMEM,   /* allocation failed or size overflows */
    RLAIF_EIO,      /* file could not be opened, read or written */
    RLAIF_EFORMAT,  /* a file's content is malformed or unsupported */
    RLAIF_EINTR,    /* cancelled by rlaif_cancel_request (Ctrl-C) */
} rlaif_status;

/* ---- errors ---- */

/* The message of the last failure on this thread ("" when none). Borrowed;
 * valid until the next failing call on the same thread. */
const char *rlaif_last_error(void);

/* Record a printf-style message for this thread and return `status`, so a
 * failing path reads `return rlaif_fail(RLAIF_EINVAL, "matmul: ...", ...)`. */
rlaif_status rlaif_fail(rlaif_status status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Short name of a status ("invalid argument", ...). Static string. */
const char *rlaif_status_name(rlaif_status status);

/* ---- files ---- */

/* Fills a file for rlaif_write_file_atomic with fwrite; write errors need no
 * checking (ferror finds them afterwards). Returns RLAIF_OK, or a failure it
 * has already reported with rlaif_fail. */
typedef rlaif_status (*rlaif_write_fn)(FILE *f, void *ud);

/* Replace `path` atomically: a new temporary file beside it (created with
 * `mode`, less the umask) is filled by fill(f, ud), flushed, fsynced and
 * renamed over `path`, then the directory is fsynced. On any failure the
 * temporary file is removed and `path` is untouched; I/O failures are
 * RLAIF_EIO "<who> <path>: <what failed>: <reason>". After a successful save,
 * temporaries of `path` left by writers that were killed ("<path>.tmp.<pid>.<n>"
 * of a dead process, our own regular files) are removed. Borrows everything. */
rlaif_status rlaif_write_file_atomic(const char *path, const char *who, unsigned mode, rlaif_write_fn fill,
                                     void *ud);

/* ---- cancellation ---- */

/* Async-signal-safe: a SIGINT handler calls rlaif_cancel_request; long C loops
 * poll rlaif_cancelled() and return RLAIF_EINTR. Front ends clear the flag with
 * rlaif_cancel_reset before running the next chunk of user code. */
void rlaif_cancel_request(void);
void rlaif_cancel_reset(void);
int  rlaif_cancelled(void);

/* ---- runtime set-up ---- */

/* Idempotent and cheap after the first call; every entry point that reaches BLIS
 * calls it. BLIS 0.9.0 does not recognise AMD Zen 5 (family 0x1A) and would
 * silently use its generic kernels; on such an AVX-512 CPU, with no usable
 * BLIS_ARCH_TYPE in the environment, rlaif selects BLIS's `skx` kernels.
 * Elsewhere BLIS's own choice stands (Intel AVX-512: skx; Zen 3/4: zen3).
 * Threads default to RLAIF_NUM_THREADS, else BLIS_NUM_THREADS/OMP_NUM_THREADS,
 * else every online core. */
void rlaif_init(void);

/* Threads used by BLIS and by the element-wise kernels. n >= 1. */
void rlaif_set_threads(int n);
int  rlaif_get_threads(void);

/* BLIS's kernel configuration in use ("skx", "zen3", "generic", ...) and
 * whether rlaif chose it (1) or BLIS detected it / the user set it (0). */
const char *rlaif_blas_arch(void);
int         rlaif_blas_arch_forced(void);
const char *rlaif_blas_version(void);
/* Why a user-set BLIS_ARCH_TYPE was ignored ("" when it was not). */
const char *rlaif_blas_note(void);
/* The element-wise kernels in use: "avx512" or "scalar" (portable loops: a CPU
 * without AVX-512, or RLAIF_KERNELS=scalar, read once at the first call);
 * whether RLAIF_KERNELS=scalar forced them; why a RLAIF_KERNELS value other
 * than scalar/auto was ignored ("" when none). Defined in kernels.c. */
const char *rlaif_kernels_name(void);
int         rlaif_kernels_scalar_forced(void);
const char *rlaif_kernels_note(void);

/* Set (value non-NULL) or remove an environment variable of this process, for
 * the children it starts. RLAIF_EINVAL on a bad name. */
rlaif_status rlaif_setenv(const char *name, const char *value);

/* Monotonic wall-clock time in seconds (for benchmarks and progress). */
double rlaif_clock(void);

#endif
