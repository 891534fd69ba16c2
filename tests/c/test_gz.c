/* tests/c/test_gz.c -- the line reader over zlib: plain and gzip files, long
 * lines, a last line without newline, empty lines, a missing file, a truncated
 * gzip stream, truncate(), file identities (links name one file) and the
 * directory fsync; and the streaming atomic writer of src/core/fileio.c
 * (exclusive temporaries, publish, commit, abort). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "gz.h"
#include "rlaif.h"

static void write_plain(const char *path, const char *s, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(s, 1, n, f);
    fclose(f);
}

static void write_gz(const char *path, const char *s, size_t n) {
    gzFile g = gzopen(path, "wb");
    gzwrite(g, s, (unsigned)n);
    gzclose(g);
}

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    static char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* The streaming writer: never follows or takes over a file already at a
 * temporary's name (a symlink planted there stays, its target untouched);
 * publish makes the file visible and keeps appending; abort before publish
 * leaves the target as it was; commit of a closed path reports. */
static void check_atomic(void) {
    char dir[] = "/tmp/rlaif_atomic_XXXXXX", path[64], victim[64], name[96];
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    snprintf(victim, sizeof victim, "%s/victim.txt", dir);
    write_plain(victim, "precious", 8);
    for (int k = 0; k < 8; k++) {   /* the first names this process's writer tries */
        snprintf(name, sizeof name, "%s.tmp.%ld.%d", path, (long)getpid(), k);
        CHECK(symlink(victim, name) == 0);
    }
    rlaif_atomic *a = NULL;
    CHECK_OK(rlaif_atomic_open(&a, path, "cannot write", 0644, 0));
    if (!a) return;
    fputs("one\n", rlaif_atomic_file(a));
    CHECK(slurp(path) == NULL);                 /* not visible before publish */
    CHECK_OK(rlaif_atomic_publish(a));
    CHECK(strcmp(slurp(path), "one\n") == 0);
    fputs("two\n", rlaif_atomic_file(a));
    CHECK_OK(rlaif_atomic_commit(a));
    CHECK(strcmp(slurp(path), "one\ntwo\n") == 0);
    CHECK(strcmp(slurp(victim), "precious") == 0);
    for (int k = 0; k < 8; k++) {               /* the planted links are not ours to remove */
        snprintf(name, sizeof name, "%s.tmp.%ld.%d", path, (long)getpid(), k);
        CHECK(unlink(name) == 0);
    }
    /* abort before publish: the target as it was, no temporary left */
    CHECK_OK(rlaif_atomic_open(&a, path, "cannot write", 0644, 1 << 16));
    if (a) {
        fputs("lost", rlaif_atomic_file(a));
        rlaif_atomic_abort(a);
    }
    CHECK(strcmp(slurp(path), "one\ntwo\n") == 0);
    rlaif_atomic_abort(NULL);
    /* the whole-file writer is the same code */
    CHECK(rlaif_atomic_open(&a, "/nonexistent/dir/x", "cannot write", 0644, 0) == RLAIF_EIO);
    CHECK(a == NULL);
    CHECK(strstr(rlaif_last_error(), "cannot write /nonexistent/dir/x: No such file or directory") != NULL);
    remove(victim);
    remove(path);
    CHECK(rmdir(dir) == 0);   /* nothing else was left in it */
}

static void check_lines(const char *path, size_t longlen) {
    rlaif_gz *g = NULL;
    CHECK_OK(rlaif_gz_open(&g, path));
    if (!g) return;
    const char *line;
    size_t len;
    int nl;
    CHECK_OK(rlaif_gz_getline(g, &line, &len, &nl));
    CHECK(line && len == 3 && memcmp(line, "abc", 3) == 0 && nl == 1);
    CHECK_OK(rlaif_gz_getline(g, &line, &len, &nl));
    CHECK(line && len == 0 && nl == 1);                     /* empty line */
    CHECK_OK(rlaif_gz_getline(g, &line, &len, &nl));
    CHECK(line && len == longlen && line[0] == 'x' && line[len - 1] == 'x' && nl == 1);
    CHECK_OK(rlaif_gz_getline(g, &line, &len, &nl));
    CHECK(line && len == 4 && memcmp(line, "last", 4) == 0 && nl == 0);  /* no final newline */
    CHECK(rlaif_gz_lineno(g) == 4);
    CHECK_OK(rlaif_gz_getline(g, &line, &len, &nl));
    CHECK(line == NULL && len == 0);
    rlaif_gz_close(g);
}

int main(void) {
    char tmpl[] = "/tmp/rlaif_gz_XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    fclose(fdopen(fd, "w"));
    char gzpath[64];
    snprintf(gzpath, sizeof gzpath, "%s.gz", tmpl);

    size_t longlen = 300000;   /* longer than the internal buffers */
    size_t n = 4 + 1 + longlen + 1 + 4;
    char *s = malloc(n);
    memcpy(s, "abc\n\n", 5);
    memset(s + 5, 'x', longlen);
    memcpy(s + 5 + longlen, "\nlast", 5);
    write_plain(tmpl, s, n);
    check_lines(tmpl, longlen);
    write_gz(gzpath, s, n);
    check_lines(gzpath, longlen);

    /* a truncated gzip stream is an error naming the file */
    FILE *f = fopen(gzpath, "rb");
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fclose(f);
    CHECK_OK(rlaif_fs_truncate(gzpath, sz / 2));
    rlaif_gz *g = NULL;
    CHECK_OK(rlaif_gz_open(&g, gzpath));
    const char *line;
    size_t len;
    int nl;
    rlaif_status st = RLAIF_OK;
    while (g && (st = rlaif_gz_getline(g, &line, &len, &nl)) == RLAIF_OK && line) {}
    CHECK(st == RLAIF_EFORMAT);
    CHECK(strstr(rlaif_last_error(), gzpath) != NULL);
    rlaif_gz_close(g);

    /* a missing file */
    g = NULL;
    CHECK(rlaif_gz_open(&g, "/nonexistent/x.jsonl") == RLAIF_EIO && g == NULL);
    CHECK(strstr(rlaif_last_error(), "/nonexistent/x.jsonl: cannot open") != NULL);
    rlaif_gz_close(NULL);

    /* file identity: a symlink and a "dir/./name" spelling name the same file */
    int exists;
    uint64_t d1, i1, d2, i2;
    char link[80], dotted[80];
    snprintf(link, sizeof link, "%s.link", tmpl);
    snprintf(dotted, sizeof dotted, "/tmp/./%s", tmpl + 5);
    CHECK(symlink(tmpl, link) == 0);
    CHECK_OK(rlaif_fs_file_id(tmpl, &exists, &d1, &i1));
    CHECK(exists == 1);
    CHECK_OK(rlaif_fs_file_id(link, &exists, &d2, &i2));
    CHECK(exists == 1 && d1 == d2 && i1 == i2);
    CHECK_OK(rlaif_fs_file_id(dotted, &exists, &d2, &i2));
    CHECK(exists == 1 && d1 == d2 && i1 == i2);
    CHECK_OK(rlaif_fs_file_id(gzpath, &exists, &d2, &i2));
    CHECK(exists == 1 && !(d1 == d2 && i1 == i2));
    CHECK_OK(rlaif_fs_file_id("/nonexistent/x.jsonl", &exists, &d2, &i2));
    CHECK(exists == 0);
    CHECK_OK(rlaif_fs_fsync_dir(tmpl));
    CHECK(rlaif_fs_fsync_dir("/nonexistent/x.jsonl") == RLAIF_EIO);
    remove(link);

    free(s);
    remove(tmpl);
    remove(gzpath);
    check_atomic();
    return check_report("test_gz");
}
