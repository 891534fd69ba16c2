/* src/core/gz.c -- line reader over zlib (gzopen/gzgets) and small file
 * helpers for crash-safe appends. See gz.h. */
#include "gz.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

struct rlaif_gz {
    gzFile f;
    char *path;
    char *buf;      /* the current line, grown as needed */
    size_t cap;
    int64_t lineno;
    int eof;
    size_t rpos, rlen;      /* unread bytes in rbuf */
    char rbuf[1 << 16];
};

rlaif_status rlaif_gz_open(rlaif_gz **out, const char *path) {
    *out = NULL;
    char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
    rlaif_status gst = rlaif_path_gate(&path, gate, RLAIF_PATH_READ, "gz.open");
    if (gst != RLAIF_OK) return gst;
    rlaif_gz *g = calloc(1, sizeof *g);
    if (!g) return rlaif_fail(RLAIF_ENOMEM, "gz.open: out of memory");
    g->path = strdup(path);
    g->cap = 1 << 16;
    g->buf = malloc(g->cap);
    if (!g->path || !g->buf) {
        rlaif_gz_close(g);
        return rlaif_fail(RLAIF_ENOMEM, "gz.open: out of memory");
    }
    errno = 0;
    g->f = gzopen(path, "rb");
    if (!g->f) {
        int e = errno;
        rlaif_gz_close(g);
        return rlaif_fail(RLAIF_EIO, "%s: cannot open: %s", path, e ? strerror(e) : "out of memory");
    }
    gzbuffer(g->f, 1 << 17);
    *out = g;
    return RLAIF_OK;
}

/* The zlib error of the stream as an rlaif status (OK when there is none). */
static rlaif_status stream_error(rlaif_gz *g) {
    int zerr = Z_OK;
    const char *msg = gzerror(g->f, &zerr);
    if (zerr == Z_OK || zerr == Z_STREAM_END) return RLAIF_OK;
    if (zerr == Z_ERRNO)
        return rlaif_fail(RLAIF_EIO, "%s: read error after line %lld: %s", g->path,
                          (long long)g->lineno, strerror(errno));
    if (zerr == Z_MEM_ERROR) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", g->path);
    return rlaif_fail(RLAIF_EFORMAT, "%s: corrupt or truncated gzip data after line %lld: %s",
                      g->path, (long long)g->lineno, msg ? msg : "?");
}

rlaif_status rlaif_gz_getline(rlaif_gz *g, const char **line, size_t *len, int *newline) {
    *line = NULL;
    *len = 0;
    *newline = 0;
    size_t n = 0;
    int any = 0;
    for (;;) {
        if (g->rpos == g->rlen) {
            if (g->eof) break;
            int r = gzread(g->f, g->rbuf, (unsigned)sizeof g->rbuf);
            if (r < 0) return stream_error(g);
            if (r == 0) {
                rlaif_status st = stream_error(g);   /* a truncated stream ends with an error */
                if (st != RLAIF_OK) return st;
                g->eof = 1;
                break;
            }
            g->rlen = (size_t)r;
            g->rpos = 0;
        }
        const char *p = g->rbuf + g->rpos;
        size_t avail = g->rlen - g->rpos;
        const char *nl = memchr(p, '\n', avail);
        size_t take = nl ? (size_t)(nl - p) : avail;
        if (n + take + 1 > g->cap) {
            size_t ncap = g->cap;
            while (n + take + 1 > ncap) ncap *= 2;
            char *nb = realloc(g->buf, ncap);
            if (!nb) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory (line %lld)", g->path,
                                       (long long)g->lineno + 1);
            g->buf = nb;
            g->cap = ncap;
        }
        memcpy(g->buf + n, p, take);
        n += take;
        any = 1;
        g->rpos += take + (nl ? 1 : 0);
        if (nl) {
            *newline = 1;
            break;
        }
    }
    if (!any) return RLAIF_OK;   /* end of file */
    g->buf[n] = '\0';
    g->lineno++;
    *line = g->buf;
    *len = n;
    return RLAIF_OK;
}

int64_t rlaif_gz_lineno(const rlaif_gz *g) { return g->lineno; }

const char *rlaif_gz_path(const rlaif_gz *g) { return g->path; }

void rlaif_gz_close(rlaif_gz *g) {
    if (!g) return;
    if (g->f) gzclose(g->f);
    free(g->buf);
    free(g->path);
    free(g);
}

rlaif_status rlaif_fs_fsync(int fd, const char *what) {
    if (fsync(fd) != 0 && errno != EINVAL && errno != EROFS)
        return rlaif_fail(RLAIF_EIO, "%s: fsync failed: %s", what ? what : "file", strerror(errno));
    return RLAIF_OK;
}

rlaif_status rlaif_fs_truncate(const char *path, int64_t size) {
    if (size < 0) return rlaif_fail(RLAIF_EINVAL, "%s: truncate to negative size", path);
    char gate[RLAIF_PATH_MAX];
    rlaif_status gst = rlaif_path_gate(&path, gate, RLAIF_PATH_WRITE, "truncate");
    if (gst != RLAIF_OK) return gst;
    if (truncate(path, (off_t)size) != 0)
        return rlaif_fail(RLAIF_EIO, "%s: truncate failed: %s", path, strerror(errno));
    return RLAIF_OK;
}

rlaif_status rlaif_fs_mkdir(const char *path) {
    char gate[RLAIF_PATH_MAX];   /* an embedding sandbox's file policy (scope.c) */
    rlaif_status gst = rlaif_path_gate(&path, gate, RLAIF_PATH_WRITE, "mkdir");
    if (gst != RLAIF_OK) return gst;
    struct stat sb;
    if (mkdir(path, 0755) == 0) return RLAIF_OK;
    if (errno == EEXIST && stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) return RLAIF_OK;
    return rlaif_fail(RLAIF_EIO, "%s: cannot create directory: %s", path, strerror(errno));
}

rlaif_status rlaif_fs_file_id(const char *path, int *exists, uint64_t *dev, uint64_t *ino) {
    struct stat st;
    *exists = 0;
    *dev = *ino = 0;
    char gate[RLAIF_PATH_MAX];
    rlaif_status gst = rlaif_path_gate(&path, gate, RLAIF_PATH_READ, "file_id");
    if (gst != RLAIF_OK) return gst;
    if (stat(path, &st) != 0) {
        if (errno == ENOENT || errno == ENOTDIR) return RLAIF_OK;
        return rlaif_fail(RLAIF_EIO, "%s: %s", path, strerror(errno));
    }
    *exists = 1;
    *dev = (uint64_t)st.st_dev;
    *ino = (uint64_t)st.st_ino;
    return RLAIF_OK;
}

rlaif_status rlaif_fs_fsync_dir(const char *path) {
    char gate[RLAIF_PATH_MAX];
    rlaif_status gst = rlaif_path_gate(&path, gate, RLAIF_PATH_READ, "fsync_dir");
    if (gst != RLAIF_OK) return gst;
    char *copy = strdup(path);
    if (copy == NULL) return rlaif_fail(RLAIF_ENOMEM, "%s: out of memory", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    rlaif_status st = RLAIF_OK;
    if (fd < 0) st = rlaif_fail(RLAIF_EIO, "%s: cannot open its directory: %s", path, strerror(errno));
    else {
        st = rlaif_fs_fsync(fd, path);
        close(fd);
    }
    free(copy);
    return st;
}
