/* src/core/fileio.c -- crash-safe whole-file replacement: write a temporary
 * file beside the target, fsync it, rename it over the target, fsync the
 * directory. Used by every writer of a file a crash must not leave half
 * written (safetensors, config.json, training state).
 * Not here: appends (gz.c's rlaif_fs_fsync/truncate serve JSONL logs). */
#include "rlaif.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

rlaif_status rlaif_write_file_atomic(const char *path, const char *who, unsigned mode, rlaif_write_fn fill,
                                     void *ud) {
    static atomic_uint serial;   /* distinct temporary names across threads */
    rlaif_status st = RLAIF_OK;
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
