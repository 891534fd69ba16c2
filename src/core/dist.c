/* src/core/dist.c -- the process group and its collectives (dist.h has the
 * contract). One code path for the three cases: no MPI in the build, MPI built
 * in but no launcher (both: rank 0 of 1, local copies only), and a job started
 * by mpirun (MPI_COMM_WORLD). Sizes above INT_MAX elements are sent in chunks,
 * as MPI counts are ints.
 * Not here: Lua values (l_dist.c encodes them as JSON bytes), which rows each
 * rank trains on (lua/rlaif/dist.lua). */
#include "dist.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef RLAIF_WITH_MPI
#include <mpi.h>
#endif

static pthread_once_t once = PTHREAD_ONCE_INIT;
static rlaif_status init_status = RLAIF_OK;
static char init_error[300];
static int active;                 /* MPI initialised and used                     */
static int finalized;              /* rlaif_dist_finalize ran                      */
static int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, level_ = -1;
static char library[96];

#define CHUNK ((size_t)1 << 30)    /* elements per MPI call                        */

#ifdef RLAIF_WITH_MPI
/* The float all-reduce of ranks that share one machine goes through a shared
 * memory window instead of MPI_Allreduce: each rank copies a piece of its
 * buffer into its slot, sums its share of the piece over every slot (in rank
 * order, so every rank gets the same bits), and copies the sum back -- three
 * barriers per piece. MPI's shared-memory transport moves large messages in
 * small fragments, one hand-off each, which is slow whenever the ranks compete
 * for cores (oversubscribed or busy machines; see scripts/bench/dist.lua). */
static MPI_Comm node = MPI_COMM_NULL;  /* the ranks on this machine               */
static MPI_Win shm_win = MPI_WIN_NULL;
static float *shm_base;            /* size_ slots of SHM_PIECE floats, rank order  */
static int shm_broken;             /* the window could not be made: MPI_Allreduce  */
#define SHM_PIECE ((size_t)1 << 24) /* floats per slot (64 MB)                     */
#define SHM_MIN ((size_t)1 << 16)   /* smaller buffers take MPI_Allreduce           */
#endif

/* ---- initialisation and exit ---- */

#ifdef RLAIF_WITH_MPI
static int env_set(const char *name) {
    const char *s = getenv(name);
    return s != NULL && *s != '\0';
}

static int owns_mpi;               /* we called MPI_Init_thread (and finalise it)  */

/* started by an MPI launcher, and not told to ignore it */
static int launched(void) {
    const char *d = getenv("RLAIF_DIST");
    if (d != NULL && strcmp(d, "0") == 0) return 0;
    return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_SIZE");
}

/* on_exit: finalise after a clean exit; abort the whole job after a failure, so
 * no other rank waits forever in a collective this one will never join. */
static void shm_free(void);
static void at_exit(int status, void *arg) {
    (void)arg;
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) return;
    if (status != 0 && size_ > 1) MPI_Abort(MPI_COMM_WORLD, status);
    shm_free();
    MPI_Finalize();
}

static void mpi_message(int rc, char *out, size_t size) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, msg, &len) != MPI_SUCCESS) len = 0;
    msg[len < MPI_MAX_ERROR_STRING ? len : MPI_MAX_ERROR_STRING - 1] = '\0';
    snprintf(out, size, "%s", len ? msg : "unknown MPI error");
}

static void init_mpi(void) {
    int len = 0, inited = 0;
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    if (MPI_Get_library_version(v, &len) == MPI_SUCCESS) {
        v[strcspn(v, ",\n")] = '\0';        /* "Open MPI v4.1.4, package: ..." */
        snprintf(library, sizeof library, "%.90s", v);
    }
    MPI_Initialized(&inited);
    if (!inited && !launched()) return;
    if (!inited) {
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &level_);
        if (rc != MPI_SUCCESS) {
            char msg[200];
            mpi_message(rc, msg, sizeof msg);
            init_status = RLAIF_EIO;
            snprintf(init_error, sizeof init_error, "dist: MPI_Init_thread failed: %s", msg);
            return;
        }
        owns_mpi = 1;
        on_exit(at_exit, NULL);
    } else {
        MPI_Query_thread(&level_);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node) == MPI_SUCCESS) {
        MPI_Comm_rank(node, &local_rank_);
        MPI_Comm_size(node, &local_size_);
    } else {
        node = MPI_COMM_NULL;
    }
    active = 1;
    /* ranks sharing a node share its cores, unless the user chose a thread count */
    if (local_size_ > 1 && !env_set("RLAIF_NUM_THREADS") && !env_set("BLIS_NUM_THREADS") &&
        !env_set("OMP_NUM_THREADS")) {
        int n = rlaif_get_threads() / local_size_;
        rlaif_set_threads(n > 0 ? n : 1);
    }
}
#endif

static void init_once(void) {
#ifdef RLAIF_WITH_MPI
    init_mpi();
#endif
}

rlaif_status rlaif_dist_init(void) {
    pthread_once(&once, init_once);
    if (init_status != RLAIF_OK) return rlaif_fail(init_status, "%s", init_error);
    return RLAIF_OK;
}

int rlaif_dist_built(void) {
#ifdef RLAIF_WITH_MPI
    return 1;
#else
    return 0;
#endif
}

int rlaif_dist_active(void) { return rlaif_dist_init(), active; }
int rlaif_dist_rank(void) { return rlaif_dist_init(), rank_; }
int rlaif_dist_size(void) { return rlaif_dist_init(), size_; }
int rlaif_dist_local_rank(void) { return rlaif_dist_init(), local_rank_; }
int rlaif_dist_local_size(void) { return rlaif_dist_init(), local_size_; }
int rlaif_dist_thread_level(void) { return rlaif_dist_init(), level_; }
const char *rlaif_dist_library(void) { return rlaif_dist_init(), library; }

/* ---- checks shared by the collectives ---- */

/* RLAIF_OK when there is nothing to communicate (one process), 1 when there is;
 * a failure when MPI could not start or the caller is not the MPI thread. */
static int need_mpi(const char *op, rlaif_status *st) {
    *st = rlaif_dist_init();
    if (*st != RLAIF_OK) return 0;
    if (finalized) {
        *st = rlaif_fail(RLAIF_EINVAL, "%s: MPI was finalized (dist.finalize)", op);
        return 0;
    }
    if (!active || size_ == 1) return 0;
#ifdef RLAIF_WITH_MPI
    int main_thread = 0;
    MPI_Is_thread_main(&main_thread);
    if (!main_thread) {
        *st = rlaif_fail(RLAIF_EINVAL, "%s: called from a thread other than the one that started MPI", op);
        return 0;
    }
#endif
    return 1;
}

static rlaif_status root_ok(const char *op, int root, int any) {
    if ((any && root == -1) || (root >= 0 && root < size_)) return RLAIF_OK;
    return rlaif_fail(RLAIF_EINVAL, "%s: root %d is not a rank (0 to %d)", op, root, size_ - 1);
}

#ifdef RLAIF_WITH_MPI
static rlaif_status mpi_fail(const char *op, int rc) {
    char msg[200];
    mpi_message(rc, msg, sizeof msg);
    return rlaif_fail(RLAIF_EIO, "%s: MPI: %s", op, msg);
}

/* Every rank must pass the same a and b (sizes, roots, operations): one
 * all-reduce of (a, -a, b, -b) with MAX gives the largest and smallest of each. */
static rlaif_status same_everywhere(const char *op, const char *what, long long a, const char *what_b,
                                    long long b) {
    long long v[4] = {a, -a, b, -b};
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 4, MPI_LONG_LONG, MPI_MAX, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail(op, rc);
    if (v[0] != -v[1])
        return rlaif_fail(RLAIF_EINVAL, "%s: the ranks passed different %s (%lld here, from %lld to %lld)", op, what,
                          a, -v[1], v[0]);
    if (v[2] != -v[3])
        return rlaif_fail(RLAIF_EINVAL, "%s: the ranks passed different %s (%lld here, from %lld to %lld)", op,
                          what_b, b, -v[3], v[2]);
    return RLAIF_OK;
}

static MPI_Op mpi_op(rlaif_dist_op op) {
    switch (op) {
    case RLAIF_DIST_MAX: return MPI_MAX;
    case RLAIF_DIST_MIN: return MPI_MIN;
    default: return MPI_SUM;
    }
}

static rlaif_status allreduce(const char *op, void *x, size_t n, MPI_Datatype type, size_t elem, rlaif_dist_op o) {
    rlaif_status st = same_everywhere(op, "sizes", (long long)n, "operations", (long long)o);
    if (st != RLAIF_OK) return st;
    for (size_t off = 0; off < n; off += CHUNK) {
        int k = (int)(n - off < CHUNK ? n - off : CHUNK);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)x + off * elem, k, type, mpi_op(o), MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(op, rc);
    }
    return RLAIF_OK;
}

static void shm_free(void) {
    if (shm_win != MPI_WIN_NULL) {
        MPI_Win_unlock_all(shm_win);
        MPI_Win_free(&shm_win);
    }
    shm_base = NULL;
    if (node != MPI_COMM_NULL) MPI_Comm_free(&node);
}

/* The window, made on first use by every rank together; 0 when it cannot be
 * (the ranks agree, so all of them take MPI_Allreduce). */
static int shm_ready(void) {
    if (shm_base != NULL) return 1;
    if (shm_broken || node == MPI_COMM_NULL || local_size_ != size_) return 0;
    MPI_Aint bytes = rank_ == 0 ? (MPI_Aint)(SHM_PIECE * sizeof(float) * (size_t)size_) : 0;
    float *base = NULL;
    int ok = MPI_Win_allocate_shared(bytes, sizeof(float), MPI_INFO_NULL, node, &base, &shm_win) == MPI_SUCCESS;
    if (ok) {
        MPI_Aint got = 0;
        int disp = 0;
        ok = MPI_Win_shared_query(shm_win, 0, &got, &disp, &base) == MPI_SUCCESS && base != NULL &&
             (size_t)got >= SHM_PIECE * sizeof(float) * (size_t)size_;
    }
    int all = ok;
    if (MPI_Allreduce(MPI_IN_PLACE, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD) != MPI_SUCCESS) all = 0;
    if (!all) {
        if (shm_win != MPI_WIN_NULL) MPI_Win_free(&shm_win);
        shm_broken = 1;
        return 0;
    }
    MPI_Win_lock_all(MPI_MODE_NOCHECK, shm_win);
    shm_base = base;
    return 1;
}

static int shm_fence(void) {
    MPI_Win_sync(shm_win);
    int rc = MPI_Barrier(node);
    MPI_Win_sync(shm_win);
    return rc;
}

static rlaif_status shm_allreduce(const char *op, float *x, size_t n, rlaif_dist_op o) {
    int nt = rlaif_get_threads();
    for (size_t off = 0; off < n; off += SHM_PIECE) {
        size_t k = n - off < SHM_PIECE ? n - off : SHM_PIECE;
        memcpy(shm_base + (size_t)rank_ * SHM_PIECE, x + off, k * sizeof(float));
        int rc = shm_fence();
        if (rc != MPI_SUCCESS) return mpi_fail(op, rc);
        /* my share of the piece, summed over the slots in rank order into slot 0 */
        size_t lo = k * (size_t)rank_ / (size_t)size_, hi = k * (size_t)(rank_ + 1) / (size_t)size_;
#pragma omp parallel for num_threads(nt) if (hi - lo > ((size_t)1 << 18))
        for (size_t i = lo; i < hi; i++) {
            float v = shm_base[i];
            for (int r = 1; r < size_; r++) {
                float w = shm_base[(size_t)r * SHM_PIECE + i];
                v = o == RLAIF_DIST_MAX ? (w > v ? w : v) : o == RLAIF_DIST_MIN ? (w < v ? w : v) : v + w;
            }
            shm_base[i] = v;
        }
        if ((rc = shm_fence()) != MPI_SUCCESS) return mpi_fail(op, rc);
        memcpy(x + off, shm_base, k * sizeof(float));
        if ((rc = shm_fence()) != MPI_SUCCESS) return mpi_fail(op, rc);   /* slot 0 is free again */
    }
    return RLAIF_OK;
}

static rlaif_status bcast(const char *op, void *x, size_t n, MPI_Datatype type, size_t elem, int root) {
    for (size_t off = 0; off < n; off += CHUNK) {
        int k = (int)(n - off < CHUNK ? n - off : CHUNK);
        int rc = MPI_Bcast((char *)x + off * elem, k, type, root, MPI_COMM_WORLD);
        if (rc != MPI_SUCCESS) return mpi_fail(op, rc);
    }
    return RLAIF_OK;
}
#endif

static rlaif_status op_ok(const char *op, rlaif_dist_op o) {
    if (o >= RLAIF_DIST_SUM && o <= RLAIF_DIST_MIN) return RLAIF_OK;
    return rlaif_fail(RLAIF_EINVAL, "%s: unknown reduction %d", op, (int)o);
}

/* ---- collectives ---- */

rlaif_status rlaif_dist_barrier(void) {
    rlaif_status st;
    if (!need_mpi("dist.barrier", &st)) return st;
#ifdef RLAIF_WITH_MPI
    int rc = MPI_Barrier(MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail("dist.barrier", rc);
#endif
    return RLAIF_OK;
}

rlaif_status rlaif_dist_finalize(void) {
    rlaif_status st = rlaif_dist_init();
    if (st != RLAIF_OK || finalized) return st;
    finalized = 1;
#ifdef RLAIF_WITH_MPI
    if (active && owns_mpi) {
        shm_free();
        int rc = MPI_Finalize();
        if (rc != MPI_SUCCESS) return mpi_fail("dist.finalize", rc);
    }
#endif
    return RLAIF_OK;
}

rlaif_status rlaif_dist_allreduce_f32(float *x, size_t n, rlaif_dist_op op) {
    rlaif_status st = op_ok("dist.allreduce", op);
    if (st != RLAIF_OK || !need_mpi("dist.allreduce", &st)) return st;
#ifdef RLAIF_WITH_MPI
    if (n >= SHM_MIN) {
        if ((st = same_everywhere("dist.allreduce", "sizes", (long long)n, "operations", (long long)op)) != RLAIF_OK)
            return st;
        st = shm_ready() ? shm_allreduce("dist.allreduce", x, n, op) :
                           allreduce("dist.allreduce", x, n, MPI_FLOAT, sizeof(float), op);
    } else {
        st = allreduce("dist.allreduce", x, n, MPI_FLOAT, sizeof(float), op);
    }
    if (st != RLAIF_OK) return st;
    if (op == RLAIF_DIST_MEAN) {
        float inv = 1.0f / (float)size_;
        int nt = n > ((size_t)1 << 20) ? rlaif_get_threads() : 1;
#pragma omp parallel for num_threads(nt)
        for (size_t i = 0; i < n; i++) x[i] *= inv;
    }
#endif
    return RLAIF_OK;
}

rlaif_status rlaif_dist_allreduce_f64(double *x, size_t n, rlaif_dist_op op) {
    rlaif_status st = op_ok("dist.allreduce", op);
    if (st != RLAIF_OK || !need_mpi("dist.allreduce", &st)) return st;
#ifdef RLAIF_WITH_MPI
    if ((st = allreduce("dist.allreduce", x, n, MPI_DOUBLE, sizeof(double), op)) != RLAIF_OK) return st;
    if (op == RLAIF_DIST_MEAN)
        for (size_t i = 0; i < n; i++) x[i] /= size_;
#endif
    return RLAIF_OK;
}

rlaif_status rlaif_dist_broadcast_f32(float *x, size_t n, int root) {
    rlaif_status st = rlaif_dist_init();
    if (st != RLAIF_OK || (st = root_ok("dist.broadcast", root, 0)) != RLAIF_OK) return st;
    if (!need_mpi("dist.broadcast", &st)) return st;
#ifdef RLAIF_WITH_MPI
    if ((st = same_everywhere("dist.broadcast", "sizes", (long long)n, "roots", root)) != RLAIF_OK) return st;
    return bcast("dist.broadcast", x, n, MPI_FLOAT, sizeof(float), root);
#else
    return RLAIF_OK;
#endif
}

rlaif_status rlaif_dist_broadcast_bytes(char **buf, size_t *len, int root) {
    rlaif_status st = rlaif_dist_init();
    if (st != RLAIF_OK || (st = root_ok("dist.broadcast", root, 0)) != RLAIF_OK) return st;
    if (!need_mpi("dist.broadcast", &st)) return st;
#ifdef RLAIF_WITH_MPI
    if ((st = same_everywhere("dist.broadcast", "roots", root, "roots", root)) != RLAIF_OK) return st;
    unsigned long long n = rank_ == root ? (unsigned long long)*len : 0;
    int rc = MPI_Bcast(&n, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return mpi_fail("dist.broadcast", rc);
    if (rank_ != root) {
        *buf = NULL;
        *len = 0;
        /* every rank sees the same n: all fail together, none is left waiting */
        if (n > ((size_t)1 << 40)) return rlaif_fail(RLAIF_ENOMEM, "dist.broadcast: %llu bytes is too much", n);
        char *p = malloc((size_t)n + 1);
        if (p == NULL) return rlaif_fail(RLAIF_ENOMEM, "dist.broadcast: cannot allocate %llu bytes", n);
        p[n] = '\0';
        if ((st = bcast("dist.broadcast", p, (size_t)n, MPI_CHAR, 1, root)) != RLAIF_OK) {
            free(p);
            return st;
        }
        *buf = p;
        *len = (size_t)n;
        return RLAIF_OK;
    }
    if (n > ((size_t)1 << 40)) return rlaif_fail(RLAIF_ENOMEM, "dist.broadcast: %llu bytes is too much", n);
    return bcast("dist.broadcast", *buf, (size_t)n, MPI_CHAR, 1, root);
#else
    return RLAIF_OK;
#endif
}

rlaif_status rlaif_dist_gather_bytes(const char *buf, size_t len, int root, char **out, size_t **lens) {
    *out = NULL;
    *lens = NULL;
    rlaif_status st = rlaif_dist_init();
    if (st != RLAIF_OK || (st = root_ok("dist.gather", root, 1)) != RLAIF_OK) return st;
    if (len > INT_MAX) return rlaif_fail(RLAIF_EINVAL, "dist.gather: %zu bytes is more than one gather takes", len);
    if (!need_mpi("dist.gather", &st)) {
        if (st != RLAIF_OK) return st;
        char *p = malloc(len + 1);
        size_t *l = malloc(sizeof *l);
        if (p == NULL || l == NULL) {
            free(p), free(l);
            return rlaif_fail(RLAIF_ENOMEM, "dist.gather: out of memory");
        }
        if (len) memcpy(p, buf, len);
        p[len] = '\0';
        l[0] = len;
        *out = p, *lens = l;
        return RLAIF_OK;
    }
#ifdef RLAIF_WITH_MPI
    if ((st = same_everywhere("dist.gather", "roots", root, "roots", root)) != RLAIF_OK) return st;
    int n = size_, mine = (int)len, receive = root < 0 || rank_ == root, rc;
    int *counts = malloc(sizeof(int) * n), *displs = malloc(sizeof(int) * n);
    char *p = NULL;
    size_t *l = NULL;
    if (counts == NULL || displs == NULL) {
        st = rlaif_fail(RLAIF_ENOMEM, "dist.gather: out of memory");
        goto done;
    }
    /* every rank learns every length, so all decide alike on the total */
    if ((rc = MPI_Allgather(&mine, 1, MPI_INT, counts, 1, MPI_INT, MPI_COMM_WORLD)) != MPI_SUCCESS) {
        st = mpi_fail("dist.gather", rc);
        goto done;
    }
    size_t total = 0;
    for (int i = 0; i < n; i++) displs[i] = (int)(total < INT_MAX ? total : 0), total += (size_t)counts[i];
    if (total > INT_MAX) {
        st = rlaif_fail(RLAIF_EINVAL, "dist.gather: %zu bytes in all is more than one gather takes", total);
        goto done;
    }
    if (receive) {
        p = malloc(total + 1);
        l = malloc(sizeof *l * n);
        if (p == NULL || l == NULL) {
            st = rlaif_fail(RLAIF_ENOMEM, "dist.gather: cannot allocate %zu bytes", total);
            goto done;
        }
        p[total] = '\0';
        for (int i = 0; i < n; i++) l[i] = (size_t)counts[i];
    }
    rc = root < 0 ? MPI_Allgatherv(buf, mine, MPI_CHAR, p, counts, displs, MPI_CHAR, MPI_COMM_WORLD)
                  : MPI_Gatherv(buf, mine, MPI_CHAR, p, counts, displs, MPI_CHAR, root, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) {
        st = mpi_fail("dist.gather", rc);
        goto done;
    }
    if (receive) *out = p, *lens = l, p = NULL, l = NULL;
done:
    free(p);
    free(l);
    free(counts);
    free(displs);
    return st;
#else
    return RLAIF_OK;
#endif
}

/* ---- models ---- */

rlaif_status rlaif_dist_allreduce_grads(rlaif_model *m, rlaif_dist_op op) {
    if (op != RLAIF_DIST_SUM && op != RLAIF_DIST_MEAN)
        return rlaif_fail(RLAIF_EINVAL, "dist.allreduce_grads: gradients are summed or averaged, not op %d", (int)op);
    rlaif_status st;
    if (!need_mpi("dist.allreduce_grads", &st)) return st;
    if (m->grads_memory == NULL && (st = rlaif_model_zero_grad(m)) != RLAIF_OK) return st;
    return rlaif_dist_allreduce_f32(m->grads_memory, m->num_params, op);
}

rlaif_status rlaif_dist_broadcast_model(rlaif_model *m, int root) {
    rlaif_status st = rlaif_dist_init();
    if (st != RLAIF_OK || (st = root_ok("dist.broadcast_model", root, 0)) != RLAIF_OK) return st;
    if (!need_mpi("dist.broadcast_model", &st)) return st;
#ifdef RLAIF_WITH_MPI
    const char *op = "dist.broadcast_model";
    size_t np = m->num_params;
    if ((st = same_everywhere(op, "parameter counts", (long long)np, "roots", root)) != RLAIF_OK) return st;
    long long h[2] = {m->m_memory != NULL, m->opt_step};
    if ((st = bcast(op, h, 2, MPI_LONG_LONG, sizeof(long long), root)) != RLAIF_OK) return st;
    if ((st = bcast(op, m->params_memory, np, MPI_FLOAT, sizeof(float), root)) != RLAIF_OK) return st;
    if (h[0]) {
        if (m->m_memory == NULL) {   /* as load_state does: moments to match the sender's */
            m->m_memory = calloc(np, sizeof(float));
            m->v_memory = calloc(np, sizeof(float));
            if (m->m_memory == NULL || m->v_memory == NULL) {
                free(m->m_memory), free(m->v_memory);
                m->m_memory = m->v_memory = NULL;
                return rlaif_fail(RLAIF_ENOMEM, "%s: cannot allocate AdamW state (%zu floats)", op, 2 * np);
            }
        }
        if ((st = bcast(op, m->m_memory, np, MPI_FLOAT, sizeof(float), root)) != RLAIF_OK) return st;
        if ((st = bcast(op, m->v_memory, np, MPI_FLOAT, sizeof(float), root)) != RLAIF_OK) return st;
    } else if (m->m_memory != NULL) {
        free(m->m_memory), free(m->v_memory);
        m->m_memory = m->v_memory = NULL;
    }
    m->opt_step = h[1];
#endif
    return RLAIF_OK;
}
