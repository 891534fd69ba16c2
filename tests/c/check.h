/* tests/c/check.h -- tiny test macros: CHECK(cond), CHECK_CLOSE(a, b, tol),
 * CHECK_OK(status). Failures print file:line and are counted; a test's main
 * returns check_report(). */
#ifndef RLAIF_CHECK_H
#define RLAIF_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_failures, check_count;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        check_count++;                                                              \
        if (!(cond)) {                                                              \
            check_failures++;                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

#define CHECK_CLOSE(a, b, tol)                                                          \
    do {                                                                                \
        double a_ = (a), b_ = (b);                                                      \
        check_count++;                                                                  \
        if (!(fabs(a_ - b_) <= (tol) * (1 + fabs(b_)))) {                               \
            check_failures++;                                                           \
            fprintf(stderr, "%s:%d: %s = %.9g, expected %.9g\n", __FILE__, __LINE__, #a, \
                    a_, b_);                                                            \
        }                                                                               \
    } while (0)

#define CHECK_OK(call)                                                                    \
    do {                                                                                  \
        rlaif_status s_ = (call);                                                         \
        check_count++;                                                                    \
        if (s_ != RLAIF_OK) {                                                             \
            check_failures++;                                                             \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call,          \
                    rlaif_last_error());                                                  \
        }                                                                                 \
    } while (0)

/* The call must fail with `status` and a message containing `needle`. */
#define CHECK_FAIL(call, status, needle)                                                  \
    do {                                                                                  \
        rlaif_status s_ = (call);                                                         \
        check_count++;                                                                    \
        if (s_ != (status) || strstr(rlaif_last_error(), (needle)) == NULL) {             \
            check_failures++;                                                             \
            fprintf(stderr, "%s:%d: %s gave status %d '%s', expected %d with '%s'\n",     \
                    __FILE__, __LINE__, #call, s_, rlaif_last_error(), (status), (needle)); \
        }                                                                                 \
    } while (0)

static int check_report(const char *name) {
    printf("%s: %d checks, %d failed\n", name, check_count, check_failures);
    return check_failures != 0;
}

#endif
