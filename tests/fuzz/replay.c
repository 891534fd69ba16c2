/* tests/fuzz/replay.c -- run a harness over files without libFuzzer: every file
 * named on the command line, and every file inside each directory named (one
 * level, as the seed and regression folders are laid out). `make test` links
 * each harness with this and the gcc ASan+UBSan objects to replay the seeds and
 * the committed crash fixtures. Prints one line: "<name>: N inputs replayed". */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static long replayed;

static void run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "replay: cannot open %s\n", path);
        exit(2);
    }
    size_t cap = 1 << 16, n = 0;
    unsigned char *buf = malloc(cap);
    for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (buf == NULL) exit(2);
    /* a copy of exactly n bytes, so ASan sees reads past the input */
    unsigned char *in = malloc(n ? n : 1);
    memcpy(in, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(in, n);
    free(in);
    replayed++;
}

static void run_path(const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return;   /* an optional folder that is absent */
    if (!S_ISDIR(sb.st_mode)) {
        run_file(path);
        return;
    }
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) run_file(p);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv) {
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) run_path(argv[i]);
    const char *name = strrchr(argv[0], '/');
    printf("%s: %ld inputs replayed\n", name ? name + 1 : argv[0], replayed);
    return 0;
}
