/* src/core/fileio.c -- crash-safe whole-file replacement: write a temporary
 * file beside the target, fsync it, rename it over the target, fsync the
 * directory. Used by every writer of a file a crash must not leave half
 * written (safetensors, config.json, training state). A writer killed before
 * its rename (SIGKILL, power loss) leaves "<path>.tmp.<pid>.<n>" behind, as
 * big as the checkpoint; the next save of the same path removes such files
 * when their process is gone and they are ours (regular, same owner). Nothing
 * else in the directory is touched.
 * Not here: appends (gz.c's rlaif_fs_fsync/truncate serve JSONL logs). */
#include "rlaif.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <libgen.h>
#include <signal.h>
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

rlaif_status rlaif_write_file_atomic(const char *path, const char *who, unsigned mode, rlaif_write_fn fill,
                                     void *ud) {
    static atomic_uint serial;   /* distinct temporary names across threads */
    char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
    rlaif_status st = rlaif_path_gate(&path, gate, RLAIF_PATH_WRITE, who);
    if (st != RLAIF_OK) return st;
    size_t tlen = strlen(path) + 40;
    char *tmp = malloc(tlen), *dirbuf = strdup(path);
    FILE *f = NULL;
    int fd = -1, created = 0;
    if (tmp == NULL || dirbuf == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "%s %s: out of memory", who, path);
        goto done;
    }
    /* In the target's directory, so the rename is atomic; O_EXCL, so never
     * someone else's file. */
    for (int tries = 0; fd < 0 && tries < 100; tries++) {
        snprintf(tmp, tlen, "%s.tmp.%ld.%u", path, (long)getpid(), atomic_fetch_add(&serial, 1));
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)mode);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0 || (f = fdopen(fd, "wb")) == NULL) {
        st = rlaif_fail(RLAIF_EIO, "%s %s: %s", who, path, strerror(errno));
        created = fd >= 0;
        goto done;
    }
    created = 1;
    fd = -1;   /* owned by f now */
    if ((st = fill(f, ud)) != RLAIF_OK) goto done;
    if (ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        st = rlaif_fail(RLAIF_EIO, "%s %s: write failed: %s", who, path, strerror(errno));
        goto done;
    }
    int rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        st = rlaif_fail(RLAIF_EIO, "%s %s: close failed: %s", who, path, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = rlaif_fail(RLAIF_EIO, "%s %s: rename failed: %s", who, path, strerror(errno));
        goto done;
    }
    created = 0;
    remove_stale_temps(path);
    int dfd = open(dirname(dirbuf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);   /* best effort: the data itself is already durable */
        close(dfd);
    }
done:
    if (f) fclose(f);
    if (fd >= 0) close(fd);
    if (created) unlink(tmp);
    free(tmp);
    free(dirbuf);
    return st;
}
