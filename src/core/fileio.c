/* src/core/fileio.c -- crash-safe whole-file replacement, the one
 * implementation every writer uses (the C savers, and through gz.atomic /
 * gz.write_atomic every Lua writer): a temporary file beside the target,
 * created exclusively (O_EXCL: never someone else's file, never a symlink
 * followed), written, flushed and fsynced, renamed over the target, then the
 * directory fsynced. A writer killed before its rename (SIGKILL, power loss)
 * leaves "<path>.tmp.<pid>.<n>" behind, as big as the checkpoint; the next
 * save of the same path removes such files when their process is gone and
 * they are ours (regular, same owner). Nothing else in the directory is
 * touched. A writer may also publish early (rename now, keep appending: the
 * labeler's replacing writer, which keeps an old file until the new one has
 * content).
 * Also the read side the binary readers share: rlaif_map_file.
 * Not here: appends to an existing file (gz.c's rlaif_fs_fsync/truncate serve
 * JSONL logs). */
#include "rlaif.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <libgen.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* 1 when name is "<base>.tmp.<pid>.<n>" (both decimal) and *pid gets pid. */
static int temp_name_of(const char *name, const char *base, long *pid) {
    size_t bl = strlen(base);
    if (strncmp(name, base, bl) != 0 || strncmp(name + bl, ".tmp.", 5) != 0) return 0;
    const char *p = name + bl + 5, *dot = strchr(p, '.');
    if (dot == NULL || dot == p || dot - p > 9 || dot[1] == '\0') return 0;
    for (const char *q = p; *q; q++)
        if (q != dot && (*q < '0' || *q > '9')) return 0;
    *pid = strtol(p, NULL, 10);
    return *pid > 0;
}

/* Remove temporaries of `path` left by writers that died (see the header).
 * Best effort: a failure here never fails the save. */
static void remove_stale_temps(const char *path) {
    char *d = strdup(path), *b = strdup(path);
    DIR *dir = d && b ? opendir(dirname(d)) : NULL;   /* gated: the save of `path` that calls us was */
    if (dir != NULL) {
        const char *base = basename(b);
        int dfd = dirfd(dir);
        struct dirent *e;
        while ((e = readdir(dir)) != NULL) {
            long pid;
            struct stat sb;
            if (!temp_name_of(e->d_name, base, &pid) || pid == (long)getpid()) continue;
            if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;   /* alive, or not ours to judge */
            if (fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode) ||
                sb.st_uid != geteuid())
                continue;
            unlinkat(dfd, e->d_name, 0);
        }
        closedir(dir);
    }
    free(d);
    free(b);
}

struct rlaif_atomic {
    FILE *f;           /* the temporary (after publish: the target itself) */
    char *path;        /* the target, after the sandbox's file policy */
    char *tmp;         /* "<path>.tmp.<pid>.<n>" */
    char *who;         /* message prefix */
    int published;     /* renamed already: nothing to remove on abort */
};

static void atomic_free(rlaif_atomic *a) {
    if (a == NULL) return;
    if (a->f) fclose(a->f);
    free(a->path);
    free(a->tmp);
    free(a->who);
    free(a);
}

void rlaif_atomic_abort(rlaif_atomic *a) {
    if (a == NULL) return;
    if (a->f) {
        fclose(a->f);
        a->f = NULL;
        if (!a->published) unlink(a->tmp);
    }
    atomic_free(a);
}

rlaif_status rlaif_atomic_open(rlaif_atomic **out, const char *path, const char *who, unsigned mode,
                               size_t bufsize) {
    static atomic_uint serial;   /* distinct temporary names across threads */
    char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
    *out = NULL;
    rlaif_status st = rlaif_path_gate(&path, gate, RLAIF_PATH_WRITE, who);
    if (st != RLAIF_OK) return st;
    rlaif_atomic *a = calloc(1, sizeof *a);
    size_t tlen = strlen(path) + 40;
    if (a == NULL || (a->path = strdup(path)) == NULL || (a->who = strdup(who)) == NULL ||
        (a->tmp = malloc(tlen)) == NULL) {
        atomic_free(a);
        return rlaif_fail(RLAIF_ENOMEM, "%s %s: out of memory", who, path);
    }
    /* In the target's directory, so the rename is atomic; O_EXCL, so never
     * someone else's file. */
    int fd = -1;
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(a->tmp, tlen, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&serial, 1));
        fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0 || (a->f = fdopen(fd, "wb")) == NULL) {
        st = rlaif_fail(RLAIF_EIO, "%s %s: %s", who, path, strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(a->tmp);
        }
        atomic_free(a);
        return st;
    }
    if (bufsize > 0) setvbuf(a->f, NULL, _IOFBF, bufsize);
    *out = a;
    return RLAIF_OK;
}

FILE *rlaif_atomic_file(rlaif_atomic *a) { return a->f; }
const char *rlaif_atomic_path(const rlaif_atomic *a) { return a->path; }

/* Flush and fsync what was written so far. */
static rlaif_status atomic_sync(rlaif_atomic *a) {
    if (ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0)
        return rlaif_fail(RLAIF_EIO, "%s %s: write failed: %s", a->who, a->path,
                          errno ? strerror(errno) : "I/O error");
    return RLAIF_OK;
}

rlaif_status rlaif_atomic_sync(rlaif_atomic *a) {
    if (a->f == NULL) return rlaif_fail(RLAIF_EINVAL, "%s %s: the writer is closed", a->who, a->path);
    return atomic_sync(a);
}

/* Rename the temporary over the target; remove stale temporaries; fsync the directory. */
static rlaif_status atomic_rename(rlaif_atomic *a) {
    if (rename(a->tmp, a->path) != 0)
        return rlaif_fail(RLAIF_EIO, "%s %s: rename failed: %s", a->who, a->path, strerror(errno));
    a->published = 1;
    remove_stale_temps(a->path);
    char *dirbuf = strdup(a->path);
    int dfd = dirbuf ? open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;   /* gated: at open */
    if (dfd >= 0) {
        fsync(dfd);   /* best effort: the data itself is already durable */
        close(dfd);
    }
    free(dirbuf);
    return RLAIF_OK;
}

rlaif_status rlaif_atomic_publish(rlaif_atomic *a) {
    if (a->f == NULL) return rlaif_fail(RLAIF_EINVAL, "%s %s: the writer is closed", a->who, a->path);
    if (a->published) return atomic_sync(a);
    rlaif_status st = atomic_sync(a);
    return st != RLAIF_OK ? st : atomic_rename(a);
}

rlaif_status rlaif_atomic_commit(rlaif_atomic *a) {
    if (a->f == NULL) {
        rlaif_status st = rlaif_fail(RLAIF_EINVAL, "%s %s: the writer is closed", a->who, a->path);
        atomic_free(a);
        return st;
    }
    rlaif_status st = atomic_sync(a);
    if (st == RLAIF_OK) {
        int rc = fclose(a->f);
        a->f = NULL;
        if (rc != 0) st = rlaif_fail(RLAIF_EIO, "%s %s: close failed: %s", a->who, a->path, strerror(errno));
    }
    if (st == RLAIF_OK && !a->published) st = atomic_rename(a);
    if (st != RLAIF_OK && !a->published) {
        if (a->f) {
            fclose(a->f);
            a->f = NULL;
        }
        unlink(a->tmp);
    }
    atomic_free(a);
    return st;
}

rlaif_status rlaif_write_file_atomic(const char *path, const char *who, unsigned mode, rlaif_write_fn fill,
                                     void *ud) {
    rlaif_atomic *a;
    rlaif_status st = rlaif_atomic_open(&a, path, who, mode, 0);
    if (st != RLAIF_OK) return st;
    if ((st = fill(a->f, ud)) != RLAIF_OK) {
        rlaif_atomic_abort(a);
        return st;
    }
    return rlaif_atomic_commit(a);
}

/* ---- reading: a whole file mapped ---- */

rlaif_status rlaif_map_file(const char *path, const char *kind, size_t min_size, void **map, size_t *size) {
    char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
    *map = NULL, *size = 0;
    rlaif_status st = rlaif_path_gate(&path, gate, RLAIF_PATH_READ, kind);
    if (st != RLAIF_OK) return st;
    struct stat sb;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return rlaif_fail(RLAIF_EIO, "%s: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = rlaif_fail(RLAIF_EIO, "%s: not a regular file", path);
    } else if ((uint64_t)sb.st_size < min_size || sb.st_size == 0) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: %lld bytes is too short for a %s file", path, (long long)sb.st_size,
                        kind);
    } else if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = rlaif_fail(RLAIF_EFORMAT, "%s: %lld bytes is too large to map", path, (long long)sb.st_size);
    } else {
        void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) st = rlaif_fail(RLAIF_EIO, "%s: mmap: %s", path, strerror(errno));
        else *map = m, *size = (size_t)sb.st_size;
    }
    close(fd);
    return st;
}

void rlaif_unmap_file(void *map, size_t size) {
    if (map != NULL) munmap(map, size);
}
