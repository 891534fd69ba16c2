/* tests/fuzz/replay.c -- run the harnesses over files without libFuzzer:
 *
 *   replay NAME PATH...   every file named, and every file inside each folder
 *                         named (one level, as seeds/ and regress/ are laid out)
 *
 * `make test` links every harness into this one binary (each compiled with its
 * entry points renamed fuzz_one_<id> / fuzz_init_<id>, ids listed in FUZZ_LIST)
 * together with the gcc ASan+UBSan objects, to replay the seeds and the
 * committed crash fixtures. Prints "fuzz_NAME: N inputs replayed". */
#include <dirent.h>
#include <sys/stat.h>

#include "fuzz.h"

#define X(id)                                                \
    int fuzz_one_##id(const uint8_t *data, size_t size);     \
    int fuzz_init_##id(int *argc, char ***argv) __attribute__((weak));
FUZZ_LIST
#undef X

static const struct harness {
    const char *name;
    int (*one)(const uint8_t *, size_t);
    int (*init)(int *, char ***);
} harnesses[] = {
#define X(id) {#id, fuzz_one_##id, fuzz_init_##id},
    FUZZ_LIST
#undef X
};

static long replayed;

static void run_file(const struct harness *h, const char *path) {
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
    unsigned char *in = malloc(n ? n : 1);   /* exactly n bytes: ASan sees reads past the input */
    memcpy(in, buf, n);
    free(buf);
    h->one(in, n);
    free(in);
    replayed++;
}

static void run_path(const struct harness *h, const char *path) {
    struct stat sb;
    if (stat(path, &sb) != 0) return;   /* an optional folder that is absent */
    if (!S_ISDIR(sb.st_mode)) {
        run_file(h, path);
        return;
    }
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    for (int i = 0; i < n; i++) {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(p, &sb) == 0 && S_ISREG(sb.st_mode)) run_file(h, p);
        free(names[i]);
    }
    free(names);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: replay NAME PATH...\n");
        return 2;
    }
    char id[64];
    snprintf(id, sizeof id, "%s", argv[1]);
    for (char *p = id; *p; p++)
        if (*p == '-') *p = '_';
    for (size_t i = 0; i < sizeof harnesses / sizeof *harnesses; i++) {
        const struct harness *h = &harnesses[i];
        if (strcmp(h->name, id) != 0) continue;
        if (h->init) h->init(&argc, &argv);
        for (int k = 2; k < argc; k++) run_path(h, argv[k]);
        printf("fuzz_%s: %ld inputs replayed\n", argv[1], replayed);
        return 0;
    }
    fprintf(stderr, "replay: no harness named %s\n", argv[1]);
    return 2;
}
