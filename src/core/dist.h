/* src/core/dist.h -- data parallelism across processes on MPI (issue 13): the
 * process group an MPI launcher (mpirun) started, and the few collective
 * operations the trainers need on flat buffers: float32 (gradients,
 * parameters), float64 (batch statistics) and bytes (Lua values as JSON, in
 * src/lua/l_dist.c and lua/rlaif/dist.lua).
 *
 * The group is MPI_COMM_WORLD. rlaif_dist_init initialises MPI once
 * (MPI_Init_thread with MPI_THREAD_FUNNELED: only the thread that runs Lua calls
 * MPI; the OpenMP and BLIS workers never do), and only when the process was
 * started by a launcher (OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_SIZE in the
 * environment) and RLAIF_DIST is not "0". Without a launcher, or in a build
 * without MPI (RLAIF_WITH_MPI undefined), the process is rank 0 of 1 and every
 * operation is a local one that succeeds (a sum over one process, a broadcast to
 * itself), so callers have a single code path.
 *
 * Threads: when several ranks share a node and no thread count was set
 * (RLAIF_NUM_THREADS, BLIS_NUM_THREADS, OMP_NUM_THREADS), each rank takes its
 * share of the threads (the default divided by the ranks on the node, at least 1).
 *
 * Exit: an on_exit handler ends MPI: MPI_Finalize when the process exits with
 * status 0, MPI_Abort when it fails, so one failing rank ends the whole job
 * instead of leaving the others blocked in a collective. The handler outlives a
 * stock lua5.4 unloading the module (core.so is linked -z nodelete). When a host
 * initialised MPI before us, we use it and leave finalising to the host.
 *
 * Every collective first checks that all ranks passed the same size (a small
 * all-reduce), so a mismatch fails on every rank with a message instead of
 * corrupting memory or hanging; MPI errors return RLAIF_EIO (MPI_ERRORS_RETURN).
 * Collectives block; like MPI itself, they must be called by every rank in the
 * same order. Not here: which rows a rank trains on and which pairs it labels
 * (lua/rlaif/dist.lua, train.lua, rl.lua, cli/label.lua, cli/merge.lua). */
#ifndef RLAIF_DIST_H
#define RLAIF_DIST_H

#include "model.h"
#include "rlaif.h"

typedef enum rlaif_dist_op {
    RLAIF_DIST_SUM = 0,
    RLAIF_DIST_MEAN,      /* the sum divided by the number of processes */
    RLAIF_DIST_MAX,
    RLAIF_DIST_MIN,
} rlaif_dist_op;

/* Idempotent. Initialises MPI when launched by mpirun (see the header);
 * RLAIF_EIO when MPI_Init_thread fails. Every function below calls it. */
rlaif_status rlaif_dist_init(void);

int rlaif_dist_built(void);        /* 1 when this build has MPI                        */
int rlaif_dist_active(void);       /* 1 when MPI is initialised and in use             */
int rlaif_dist_rank(void);         /* 0 .. size-1; 0 without MPI                      */
int rlaif_dist_size(void);         /* processes in the group; 1 without MPI           */
int rlaif_dist_local_rank(void);   /* rank among the processes on this node          */
int rlaif_dist_local_size(void);   /* processes on this node                          */
int rlaif_dist_thread_level(void); /* the MPI thread level provided (-1 without MPI) */
/* "Open MPI v4.1.4" (the library's name and version), "" in a build without MPI. Static. */
const char *rlaif_dist_library(void);

rlaif_status rlaif_dist_barrier(void);
/* Ends MPI now, on every rank together (a collective), for a front end that has
 * agreed on its exit status with the other ranks: the exit handler then leaves
 * the job alone whatever the status. Later collectives fail; rank and size keep
 * their values. A no-op without MPI, and for MPI a host started. */
rlaif_status rlaif_dist_finalize(void);

/* In place over every rank's x (n floats): x = op of all ranks' x. */
rlaif_status rlaif_dist_allreduce_f32(float *x, size_t n, rlaif_dist_op op);
/* The same for doubles (sums of batch statistics keep float64 precision). */
rlaif_status rlaif_dist_allreduce_f64(double *x, size_t n, rlaif_dist_op op);
/* x (n floats) from rank `root` into every rank's x. */
rlaif_status rlaif_dist_broadcast_f32(float *x, size_t n, int root);

/* Bytes from `root` to every rank. On root, *buf and *len are read (borrowed).
 * On the other ranks *buf receives a new malloc'd buffer of *len bytes plus a
 * terminating 0 (the caller frees it). */
rlaif_status rlaif_dist_broadcast_bytes(char **buf, size_t *len, int root);
/* Every rank's bytes to `root` (root >= 0), or to every rank (root = -1). On a
 * receiving rank, *out gets a new malloc'd concatenation in rank order and
 * *lens a new malloc'd array of size() lengths (the caller frees both); on the
 * others both are set to NULL. At most INT_MAX bytes in total. */
rlaif_status rlaif_dist_gather_bytes(const char *buf, size_t len, int root, char **out, size_t **lens);

/* The model's flat gradient buffer (num_params floats), all-reduced in place in
 * one call: op = RLAIF_DIST_SUM or RLAIF_DIST_MEAN. Gradients not allocated yet
 * (a rank without rows this step) count as zeros. Borrows m. */
rlaif_status rlaif_dist_allreduce_grads(rlaif_model *m, rlaif_dist_op op);
/* Parameters, AdamW moments (allocated or freed to match root) and the step
 * count from rank `root` into every rank's model: identical starting weights,
 * or a checkpoint only root has read. Models must have the same parameter count.
 * Gradients are left alone. Borrows m. */
rlaif_status rlaif_dist_broadcast_model(rlaif_model *m, int root);

#endif
