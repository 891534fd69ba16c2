/* rlaif/common.h -- the parts of the rlaif C API every other header uses:
 * version, status codes and errors, memory returned by the library, threads,
 * cancellation and feature queries.
 *
 * Errors: every function that can fail returns an rlaif_status (RLAIF_OK = 0)
 * and leaves a readable message for the calling thread in rlaif_last_error().
 * Nothing in the library calls exit or abort on anything a caller can trigger.
 *
 * Memory: strings and buffers the library hands over (JSON results, decoded
 * text) are freed with rlaif_free. Objects have their own free/release
 * functions, named in their headers. Everything a function takes as
 * `const char *` or `const T *` is borrowed for the length of the call.
 *
 * Stability: the functions and types of include/rlaif.h and include/rlaif/
 * are the promised API of this major version; structs are opaque unless a
 * header shows their fields. Everything else in the library is internal. */
#ifndef RLAIF_COMMON_H
#define RLAIF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version ---- */

#define RLAIF_VERSION_MAJOR 0
#define RLAIF_VERSION_MINOR 1
#define RLAIF_VERSION_PATCH 0
#define RLAIF_VERSION "0.1.0"
/* MAJOR * 10000 + MINOR * 100 + PATCH, for #if checks. */
#define RLAIF_VERSION_NUMBER (RLAIF_VERSION_MAJOR * 10000 + RLAIF_VERSION_MINOR * 100 + RLAIF_VERSION_PATCH)

/* The version of the library actually loaded (may differ from the header's). */
const char *rlaif_version(void);
int         rlaif_version_number(void);

/* 1 when the library was built with the named feature, else 0. Names:
 * "tensor", "tokenizer", "llm", "llm-cache", "model", "generate", "reward",
 * "lua" (rlaif_state), "sandbox", "blis", "openmp". */
int         rlaif_has_feature(const char *name);
/* Every feature name, space-separated. Static string. */
const char *rlaif_features(void);

/* ---- status codes and errors ---- */

typedef enum rlaif_status {
    RLAIF_OK = 0,
    RLAIF_EINVAL,   /* bad argument: negative size, bad dim, wrong shape, malformed JSON */
    RLAIF_ENOMEM,   /* allocation failed, a size overflows, or a memory limit was reached */
    RLAIF_EIO,      /* a file could not be opened, read or written; a request failed */
    RLAIF_EFORMAT,  /* a file's content is malformed or unsupported */
    RLAIF_EINTR,    /* cancelled: rlaif_cancel_request, rlaif_state_interrupt */
    RLAIF_EACCES,   /* refused by a sandbox: a path outside its root, a forbidden call */
    RLAIF_ESCRIPT,  /* a Lua script failed to compile or raised an error */
    RLAIF_EBUDGET,  /* a script used up its instruction budget */
} rlaif_status;

/* The message of the last failure on this thread ("" when none). Borrowed;
 * valid until the next failing call on the same thread. */
const char *rlaif_last_error(void);

/* Short name of a status ("invalid argument", ...). Static string. */
const char *rlaif_status_name(rlaif_status status);

/* Free a string or buffer the library returned (NULL-safe). */
void rlaif_free(void *p);

/* ---- runtime ---- */

/* Optional: every entry point that needs it calls it. Picks the BLIS kernels
 * and the thread count (RLAIF_NUM_THREADS, else BLIS_NUM_THREADS /
 * OMP_NUM_THREADS, else every online core). Idempotent, thread-safe. */
void rlaif_init(void);

/* Threads used by BLIS and the element-wise kernels, process-wide. n >= 1. */
void rlaif_set_threads(int n);
int  rlaif_get_threads(void);

/* BLIS's kernel configuration in use ("skx", "zen3", ...) and BLIS's version.
 * Static strings. */
const char *rlaif_blas_arch(void);
const char *rlaif_blas_version(void);

/* Monotonic wall-clock time in seconds. */
double rlaif_clock(void);

/* ---- cancellation ---- */

/* Process-wide: long C loops (model forward/generate, batch encoding, LLM
 * batches, matmul batches) poll a flag and fail with RLAIF_EINTR once it is
 * set. rlaif_cancel_request is async-signal-safe (call it from a SIGINT
 * handler); clear the flag with rlaif_cancel_reset before the next piece of
 * work. To stop one embedded Lua state only, use rlaif_state_interrupt. */
void rlaif_cancel_request(void);
void rlaif_cancel_reset(void);
int  rlaif_cancelled(void);

#ifdef __cplusplus
}
#endif

#endif
