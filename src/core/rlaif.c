/* src/core/rlaif.c -- errors, cancellation, BLIS kernel selection and threads.
 *
 * Owns the process-wide runtime state: the cancel flag (set from signal
 * handlers), the chosen thread count and the BLIS configuration. Not here:
 * anything Lua-facing (src/lua) or tensor math (tensor*.c). */
#include "rlaif.h"

#include <blis.h>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ---- errors ---- */

static _Thread_local char last_error[512];

const char *rlaif_last_error(void) { return last_error; }

rlaif_status rlaif_fail(rlaif_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return status;
}

const char *rlaif_status_name(rlaif_status status) {
    switch (status) {
    case RLAIF_OK: return "ok";
    case RLAIF_EINVAL: return "invalid argument";
    case RLAIF_ENOMEM: return "out of memory";
    case RLAIF_EIO: return "i/o error";
    case RLAIF_EFORMAT: return "bad format";
    case RLAIF_EINTR: return "interrupted";
    case RLAIF_EACCES: return "not allowed";
    case RLAIF_ESCRIPT: return "script error";
    case RLAIF_EBUDGET: return "instruction budget exceeded";
    }
    return "unknown status";
}

/* ---- cancellation ---- */

static volatile sig_atomic_t cancel_flag;

void rlaif_cancel_request(void) { cancel_flag = 1; }
void rlaif_cancel_reset(void) { cancel_flag = 0; }
/* The process-wide flag, or the calling thread's scope's own (scope.c). */
int  rlaif_cancelled(void) { return cancel_flag != 0 || rlaif_scope_cancelled(); }

/* ---- BLIS and threads ---- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static int n_threads = 1;
static int arch_forced;

/* A thread count from the environment: 1..RLAIF_MAX_THREADS with blanks
 * around it, else 0 (unset or unusable). */
static int env_int(const char *name) {
    const char *s = getenv(name);
    if (s == NULL || *s == '\0') return 0;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    while (*end == ' ' || *end == '\t') end++;
    return (end != s && *end == '\0' && errno == 0 && v > 0 && v <= RLAIF_MAX_THREADS) ? (int)v : 0;
}

rlaif_status rlaif_check_env(void) {
    const char *s = getenv("RLAIF_NUM_THREADS");
    if (s == NULL || *s == '\0' || env_int("RLAIF_NUM_THREADS") > 0) return RLAIF_OK;
    return rlaif_fail(RLAIF_EINVAL, "RLAIF_NUM_THREADS must be an integer from 1 to %d, got \"%.40s\"",
                      RLAIF_MAX_THREADS, s);
}

static char arch_note[160];
static char user_arch[64];  /* a user's unusable BLIS_ARCH_TYPE, restored after bli_init */

#if defined(__x86_64__) && defined(__GNUC__)
static int cpu_has_avx512(void) {
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd");
}
static int cpu_has_avx2(void) { return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"); }
#endif

/* 1 when a user-given BLIS_ARCH_TYPE names a configuration this BLIS build has
 * and this CPU can run: BLIS aborts on the first, the second dies of SIGILL. */
static int arch_usable(long id) {
    switch (id) {
#if defined(__x86_64__) && defined(__GNUC__)
#ifdef BLIS_CONFIG_SKX
    case BLIS_ARCH_SKX: return cpu_has_avx512();
#endif
#ifdef BLIS_CONFIG_HASWELL
    case BLIS_ARCH_HASWELL: return cpu_has_avx2();
#endif
#ifdef BLIS_CONFIG_ZEN3
    case BLIS_ARCH_ZEN3: return cpu_has_avx2();
#endif
#ifdef BLIS_CONFIG_ZEN2
    case BLIS_ARCH_ZEN2: return cpu_has_avx2();
#endif
#ifdef BLIS_CONFIG_ZEN
    case BLIS_ARCH_ZEN: return cpu_has_avx2();
#endif
#ifdef BLIS_CONFIG_SANDYBRIDGE
    case BLIS_ARCH_SANDYBRIDGE: return __builtin_cpu_supports("avx");
#endif
#ifdef BLIS_CONFIG_PENRYN
    case BLIS_ARCH_PENRYN: return 1;
#endif
#endif
#ifdef BLIS_CONFIG_GENERIC
    case BLIS_ARCH_GENERIC: return 1;
#endif
    default: return 0;
    }
}

#if defined(__x86_64__) && defined(__GNUC__)
/* 1 when BLIS 0.9.0's own detection does not know this AVX-512 CPU and would
 * fall back to its generic kernels: AMD from family 0x1A (Zen 5) on, and other
 * vendors. Intel AVX-512 parts are detected as skx by BLIS itself, and AMD
 * family 0x19 (Zen 3/4) as zen3, whose AVX2 kernels measure faster than skx on
 * Zen 4, which runs 512-bit instructions at half width. */
static int blis_would_fall_back(void) {
    unsigned eax, ebx, ecx, edx;
    char vendor[13];
    if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return 0;
    memcpy(vendor, &ebx, 4), memcpy(vendor + 4, &edx, 4), memcpy(vendor + 8, &ecx, 4);
    vendor[12] = '\0';
    if (strcmp(vendor, "GenuineIntel") == 0) return 0;
    if (strcmp(vendor, "AuthenticAMD") != 0) return 1;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    unsigned family = (eax >> 8) & 0xf;
    if (family == 0xf) family += (eax >> 20) & 0xff;
    return family >= 0x1a;
}
#endif

/* Choose BLIS's kernels before its first call: a usable user choice stands;
 * else, on an AVX-512 CPU that BLIS 0.9.0 would send to its generic kernels
 * (about 5x slower), select `skx`; else BLIS's own detection stands. */
static void select_blis_arch(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
#endif
    const char *user = getenv("BLIS_ARCH_TYPE");
    if (user != NULL) {
        char *end;
        long id = strtol(user, &end, 10);
        if (*user != '\0' && *end == '\0' && arch_usable(id)) return;
        snprintf(arch_note, sizeof arch_note,
                 "ignored BLIS_ARCH_TYPE=%.40s: not a kernel configuration this BLIS and CPU can run", user);
        snprintf(user_arch, sizeof user_arch, "%s", user);
        unsetenv("BLIS_ARCH_TYPE");
    }
#if defined(__x86_64__) && defined(__GNUC__) && defined(BLIS_CONFIG_SKX)
    if (cpu_has_avx512() && blis_would_fall_back()) {
        char id[16];
        snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_SKX);
        setenv("BLIS_ARCH_TYPE", id, 1);
        arch_forced = 1;
    }
#endif
}

static void set_threads(int n);

static void init_runtime(void) {
    select_blis_arch();
    rlaif_kernels_scalar_forced();   /* reads RLAIF_KERNELS once, before any kernel runs */
    int n = env_int("RLAIF_NUM_THREADS");
    if (n == 0) n = env_int("BLIS_NUM_THREADS");
    if (n == 0) n = env_int("OMP_NUM_THREADS");
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    bli_init();  /* reads BLIS_ARCH_TYPE once, here */
    /* Leave the environment as the user had it, for child processes. */
    if (arch_forced) unsetenv("BLIS_ARCH_TYPE");
    if (user_arch[0]) setenv("BLIS_ARCH_TYPE", user_arch, 1);
    set_threads(n);
}

void rlaif_init(void) { pthread_once(&init_once, init_runtime); }

static void set_threads(int n) {
    if (n < 1) n = 1;
    if (n > RLAIF_MAX_THREADS) n = RLAIF_MAX_THREADS;
    n_threads = n;
    bli_thread_set_num_threads(n);
}

/* After rlaif_init, so that a host's choice made before anything else ran is
 * not replaced by the defaults when the runtime starts. */
void rlaif_set_threads(int n) {
    rlaif_init();
    set_threads(n);
}

int rlaif_get_threads(void) {
    rlaif_init();
    return n_threads;
}

const char *rlaif_blas_arch(void) {
    rlaif_init();
    return bli_arch_string(bli_arch_query_id());
}

int rlaif_blas_arch_forced(void) {
    rlaif_init();
    return arch_forced;
}

const char *rlaif_blas_note(void) {
    rlaif_init();
    return arch_note;
}

const char *rlaif_blas_version(void) { return bli_info_get_version_str(); }

double rlaif_clock(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

rlaif_status rlaif_setenv(const char *name, const char *value) {
    if (name == NULL || name[0] == '\0' || strchr(name, '=') != NULL)
        return rlaif_fail(RLAIF_EINVAL, "setenv: invalid variable name '%s'", name ? name : "");
    int rc = value ? setenv(name, value, 1) : unsetenv(name);
    return rc == 0 ? RLAIF_OK : rlaif_fail(RLAIF_ENOMEM, "setenv: %s", strerror(errno));
}
