/* tests/fuzz/fuzz.h -- shared bits of the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
 *
 * Each harness defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize). The same file builds twice: with clang's libFuzzer for
 * `make fuzz`, and with the gcc ASan+UBSan objects plus replay.c for the corpus
 * replay in `make test`. A harness never aborts on bad input it was given: only
 * sanitizer reports and FUZZ_ASSERT (a broken invariant) count as findings.
 * Readers that take a path get the input through a private temporary file. */
#ifndef RLAIF_FUZZ_H
#define RLAIF_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                           \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                \
        }                                                                           \
    } while (0)

/* A directory of our own for this process under $TMPDIR (scripts/fuzz.sh points
 * it into build/ and removes it, also after a crash), made once, removed at exit. */
static char fuzz_dir_[4096];
static inline void fuzz_rmdir_(void) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir_);
    if (system(cmd) != 0) fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir_);
}
static inline const char *fuzz_dir(void) {
    if (fuzz_dir_[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        snprintf(fuzz_dir_, sizeof fuzz_dir_, "%s/rlaif-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (mkdtemp(fuzz_dir_) == NULL) abort();
        atexit(fuzz_rmdir_);
    }
    return fuzz_dir_;
}

/* Write data to <fuzz_dir>/name and return the path (static buffer per call site
 * is not needed: the caller copies or uses it at once). */
static inline const char *fuzz_file(const char *name, const void *data, size_t size) {
    static char path[4200];
    snprintf(path, sizeof path, "%s/%s", fuzz_dir(), name);
    FILE *f = fopen(path, "wb");
    if (f == NULL) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    return path;
}

#endif
