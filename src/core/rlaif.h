/* src/core/rlaif.h -- umbrella header of the pure C core: status codes, version,
 * error reporting, cancellation and BLAS/thread set-up.
 *
 * This core never includes lua.h (`make check` proves it). Every function that can
 * fail on user input returns an rlaif_status and leaves a readable message in a
 * thread-local buffer (rlaif_last_error); nothing here calls exit or abort on
 * anything a caller can trigger. */
#ifndef RLAIF_H
#define RLAIF_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The public part (version, rlaif_status, the functions the C API promises)
 * lives in include/rlaif/common.h; this header adds the core's internals. */
#include <rlaif/common.h>

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

/* The same, written piece by piece: rlaif_atomic_open creates the temporary
 * exclusively (mode less the umask; a stdio buffer of bufsize bytes, 0 =
 * stdio's default) after the sandbox's file policy; write to
 * rlaif_atomic_file(a) (borrowed); rlaif_atomic_commit flushes, fsyncs,
 * renames over the path and frees `a` (on failure the temporary is removed and
 * the path untouched); rlaif_atomic_abort drops the temporary and frees `a`
 * (NULL-safe). rlaif_atomic_publish renames now and keeps the file open for
 * more writes (appends a later commit makes durable; an abort then only
 * closes); rlaif_atomic_sync flushes and fsyncs. Messages as above. One
 * writer is used by one thread at a time. */
typedef struct rlaif_atomic rlaif_atomic;
rlaif_status rlaif_atomic_open(rlaif_atomic **out, const char *path, const char *who, unsigned mode,
                               size_t bufsize);
FILE        *rlaif_atomic_file(rlaif_atomic *a);
const char  *rlaif_atomic_path(const rlaif_atomic *a);
rlaif_status rlaif_atomic_sync(rlaif_atomic *a);
rlaif_status rlaif_atomic_publish(rlaif_atomic *a);
rlaif_status rlaif_atomic_commit(rlaif_atomic *a);
void         rlaif_atomic_abort(rlaif_atomic *a);

/* Map the regular file `path` read-only, after the sandbox's file policy:
 * *map (release with rlaif_unmap_file) and *size. Failures: RLAIF_EIO
 * "<path>: <reason>" or "... not a regular file", RLAIF_EFORMAT "<path>: N
 * bytes is too short for a <kind> file" below min_size bytes (or empty). */
rlaif_status rlaif_map_file(const char *path, const char *kind, size_t min_size, void **map, size_t *size);
void         rlaif_unmap_file(void *map, size_t size);   /* NULL-safe */

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

/* Threads used by BLIS and the element-wise kernels, 1..RLAIF_MAX_THREADS
 * (values outside are clamped). */
#define RLAIF_MAX_THREADS 1024
void rlaif_set_threads(int n);
int  rlaif_get_threads(void);

/* RLAIF_OK when RLAIF_NUM_THREADS is unset, empty or a thread count (an integer
 * from 1 to RLAIF_MAX_THREADS, blanks around it allowed); else RLAIF_EINVAL
 * "RLAIF_NUM_THREADS must be an integer from 1 to 1024, got \"abc\"". The
 * runtime itself ignores such a value (every core is used); front ends call
 * this first so that a typo is an error, not a silent default. */
rlaif_status rlaif_check_env(void);

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

/* ---- the calling thread's scope (scope.c) ---- */

/* What an embedding host (src/embed/state.c) lets the code running on this
 * thread do, installed for the length of a run or call. Without a scope, the
 * three hooks below are no-ops. */
typedef struct rlaif_meter rlaif_meter;
typedef struct rlaif_scope {
    volatile sig_atomic_t *cancel;  /* nonzero: rlaif_cancelled() is true on this thread */
    rlaif_meter *meter;             /* charged for tensor storage and model buffers, or NULL */
    int files;                      /* 1: every file the core opens goes through the policy */
    const char *root;               /* resolved directory files may be read and written in, or NULL */
    const char *const *read_dirs;   /* resolved read-only directories, NULL-terminated, or NULL */
    int refused_path, refused_mem;  /* set when the policy refused a path / the meter a charge */
} rlaif_scope;

/* Install s (NULL: none) on this thread; returns the previous scope. */
rlaif_scope *rlaif_scope_set(rlaif_scope *s);
rlaif_scope *rlaif_scope_get(void);
int          rlaif_scope_cancelled(void);   /* the scope's own flag (rlaif_cancelled reads it) */

/* A byte counter with an optional limit, shared by a Lua allocator and the
 * core buffers it pays for. Refcounted: new = 1 reference. */
rlaif_meter *rlaif_meter_new(size_t limit);
void         rlaif_meter_release(rlaif_meter *m);      /* NULL-safe */
size_t       rlaif_meter_used(const rlaif_meter *m);
size_t       rlaif_meter_limit(const rlaif_meter *m);
/* Add bytes unless that passes the limit: 1 added, 0 refused. Thread-safe. */
int          rlaif_meter_add(rlaif_meter *m, size_t bytes);
void         rlaif_meter_sub(rlaif_meter *m, size_t bytes);

/* Charge bytes to the scope's meter before allocating them: RLAIF_OK with *who
 * the meter (a new reference; NULL without a scope), or RLAIF_ENOMEM "<what>:
 * memory limit of N bytes exceeded". Pair with rlaif_mem_uncharge(*who, bytes). */
rlaif_status rlaif_mem_charge(size_t bytes, const char *what, rlaif_meter **who);
void         rlaif_mem_uncharge(rlaif_meter *who, size_t bytes);   /* NULL-safe */

/* Every path the core opens goes through here first. Under a scope with a
 * file policy, *path is resolved (a relative path is taken under the root;
 * symbolic links are followed), must lie inside the root -- or, for reads, in
 * a read-only directory -- and is replaced by the resolved name, written to
 * buf (RLAIF_PATH_MAX bytes). Otherwise RLAIF_EACCES "<who>: <path>: outside
 * the sandbox root ...". Without a scope: RLAIF_OK, *path untouched. */
#define RLAIF_PATH_MAX 4096
enum { RLAIF_PATH_READ = 0, RLAIF_PATH_WRITE = 1 };
rlaif_status rlaif_path_gate(const char **path, char *buf, int access, const char *who);

#endif
