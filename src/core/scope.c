/* src/core/scope.c -- the calling thread's scope: what an embedding host lets
 * the code running on this thread do (see rlaif.h, "scope").
 *
 * A host that runs untrusted scripts (src/embed/state.c) installs a scope on
 * its thread for the length of each run or call. The core consults it in three
 * places and nowhere else:
 *   - rlaif_cancelled() also reads the scope's own cancel flag, so interrupting
 *     one state stops its long C loops without touching another state's;
 *   - rlaif_mem_charge() charges tensor storage and model buffers to the
 *     scope's meter (the same meter the Lua allocator charges), so a memory
 *     limit covers what a script allocates through the toolkit too;
 *   - rlaif_path_gate() resolves every path the core opens against the
 *     scope's file policy: relative paths are taken under the root, and the
 *     resolved file must lie inside the root (reads may also use the
 *     read-only directories). Every file-opening site of the core calls it.
 * Without a scope (the rlaif executable, core.so in a stock lua5.4, C hosts
 * using the core API directly) all three are no-ops.
 *
 * What it is not: a security boundary against native code, or against
 * another thread changing the file system under a check (the check and the
 * open are two steps). Ownership: the scope and its strings belong to the
 * host; a meter is refcounted because tensors it paid for may outlive the
 * state that made them. */
#include "rlaif.h"

#include <errno.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static _Thread_local rlaif_scope *current;

rlaif_scope *rlaif_scope_set(rlaif_scope *s) {
    rlaif_scope *prev = current;
    current = s;
    return prev;
}

rlaif_scope *rlaif_scope_get(void) { return current; }

int rlaif_scope_cancelled(void) {
    rlaif_scope *s = current;
    return s != NULL && s->cancel != NULL && *s->cancel != 0;
}

/* ---- memory meter ---- */

struct rlaif_meter {
    atomic_size_t used;   /* bytes charged now */
    size_t limit;         /* 0 = none */
    atomic_int refs;      /* the owner + one per charged object */
};

rlaif_meter *rlaif_meter_new(size_t limit) {
    rlaif_meter *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    m->limit = limit;
    atomic_init(&m->used, 0);
    atomic_init(&m->refs, 1);
    return m;
}

void rlaif_meter_release(rlaif_meter *m) {
    if (m != NULL && atomic_fetch_sub(&m->refs, 1) == 1) free(m);
}

size_t rlaif_meter_used(const rlaif_meter *m) { return m ? atomic_load(&((rlaif_meter *)m)->used) : 0; }
size_t rlaif_meter_limit(const rlaif_meter *m) { return m ? m->limit : 0; }

int rlaif_meter_add(rlaif_meter *m, size_t bytes) {
    size_t old = atomic_load_explicit(&m->used, memory_order_relaxed);
    for (;;) {
        if (m->limit && (bytes > m->limit || old > m->limit - bytes)) return 0;
        if (atomic_compare_exchange_weak_explicit(&m->used, &old, old + bytes, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 1;
    }
}

void rlaif_meter_sub(rlaif_meter *m, size_t bytes) {
    atomic_fetch_sub_explicit(&m->used, bytes, memory_order_relaxed);
}

rlaif_status rlaif_mem_charge(size_t bytes, const char *what, rlaif_meter **who) {
    *who = NULL;
    rlaif_scope *s = current;
    if (s == NULL || s->meter == NULL) return RLAIF_OK;
    if (!rlaif_meter_add(s->meter, bytes)) {
        s->refused_mem = 1;
        return rlaif_fail(RLAIF_ENOMEM, "%s: memory limit of %zu bytes exceeded (%zu in use, %zu more asked)", what,
                          s->meter->limit, rlaif_meter_used(s->meter), bytes);
    }
    atomic_fetch_add(&s->meter->refs, 1);
    *who = s->meter;
    return RLAIF_OK;
}

void rlaif_mem_uncharge(rlaif_meter *who, size_t bytes) {
    if (who == NULL) return;
    rlaif_meter_sub(who, bytes);
    rlaif_meter_release(who);
}

/* ---- file policy ---- */

/* 1 when the absolute, resolved path p lies in directory dir (resolved). */
static int inside(const char *p, const char *dir) {
    size_t n = strlen(dir);
    if (n == 1 && dir[0] == '/') return 1;
    return strncmp(p, dir, n) == 0 && (p[n] == '/' || p[n] == '\0');
}

/* Resolve `path` (relative = under root) to an absolute name without symbolic
 * links: the file itself when it exists, else its directory plus the last
 * component. Writes into out (PATH_MAX). 0 on success, else an errno. */
static int resolve(const char *path, const char *root, char *out) {
    char full[PATH_MAX];
    int n = path[0] == '/' ? snprintf(full, sizeof full, "%s", path)
                           : snprintf(full, sizeof full, "%s/%s", root ? root : ".", path);
    if (n < 0 || (size_t)n >= sizeof full) return ENAMETOOLONG;
    if (realpath(full, out) != NULL) return 0;
    if (errno != ENOENT) return errno;
    struct stat sb;
    if (lstat(full, &sb) == 0) return ELOOP;   /* a symbolic link that leads nowhere (yet) */
    while (n > 1 && full[n - 1] == '/') full[--n] = '\0';
    char *slash = strrchr(full, '/');
    const char *base = slash + 1;
    if (slash == NULL || *base == '\0' || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) return ENOENT;
    char dir[PATH_MAX];
    if (slash == full) snprintf(dir, sizeof dir, "/");
    else snprintf(dir, sizeof dir, "%.*s", (int)(slash - full), full);
    if (realpath(dir, out) == NULL) return errno;
    size_t len = strlen(out);
    if (len + 1 + strlen(base) + 1 > PATH_MAX) return ENAMETOOLONG;
    snprintf(out + len, PATH_MAX - len, "%s%s", len == 1 ? "" : "/", base);
    return 0;
}

/* 1 when path, taken under root when relative, names something in root
 * without a ".." component (used only when it cannot be resolved). */
static int lexically_inside(const char *path, const char *root) {
    if (path[0] == '/' && !inside(path, root)) return 0;
    for (const char *c = path; (c = strstr(c, "..")) != NULL; c += 2)
        if ((c == path || c[-1] == '/') && (c[2] == '/' || c[2] == '\0')) return 0;
    return 1;
}

rlaif_status rlaif_path_gate(const char **path, char *buf, int access, const char *who) {
    rlaif_scope *s = current;
    if (s == NULL || !s->files) return RLAIF_OK;
    const char *p = *path;
    if (p == NULL || *p == '\0') return rlaif_fail(RLAIF_EINVAL, "%s: empty path", who);
    if (s->root == NULL) {
        s->refused_path = 1;
        return rlaif_fail(RLAIF_EACCES, "%s: %s: no file access in this sandbox (it has no root directory)", who, p);
    }
    int err = resolve(p, s->root, buf);
    if (err == ELOOP) {
        s->refused_path = 1;
        return rlaif_fail(RLAIF_EACCES, "%s: %s: a symbolic link to nowhere is not allowed in the sandbox", who, p);
    }
    if (err != 0 && !lexically_inside(p, s->root)) err = EACCES;   /* say nothing about what is outside */
    if (err != 0 && err != EACCES) return rlaif_fail(RLAIF_EIO, "%s: %s: %s", who, p, strerror(err));
    if (err == 0 && inside(buf, s->root)) {
        *path = buf;
        return RLAIF_OK;
    }
    if (err == 0 && access == RLAIF_PATH_READ && s->read_dirs != NULL)
        for (const char *const *d = s->read_dirs; *d != NULL; d++)
            if (inside(buf, *d)) {
                *path = buf;
                return RLAIF_OK;
            }
    s->refused_path = 1;
    for (const char *const *d = s->read_dirs; err == 0 && access == RLAIF_PATH_WRITE && d && *d; d++)
        if (inside(buf, *d)) return rlaif_fail(RLAIF_EACCES, "%s: %s: read-only in the sandbox", who, p);
    return rlaif_fail(RLAIF_EACCES, "%s: %s: outside the sandbox root %s", who, p, s->root);
}
