/* src/lua/l_util.h -- helpers shared by the binding files (luaL_-style).
 *
 * A tensor userdata is a box holding one owned reference (house style 9.7):
 * __gc, __close and :free() release it and set it to NULL, and every method goes
 * through rlaifL_checktensor, which raises on a freed box. */
#ifndef RLAIF_L_UTIL_H
#define RLAIF_L_UTIL_H

#include <lauxlib.h>
#include <lua.h>

#include "tensor.h"

#define RLAIF_TENSOR_MT "rlaif.Tensor"

typedef struct tensor_box { rlaif_tensor *t; } tensor_box;

/* The tensor at index i; raises when i is not a tensor or was freed. Borrowed. */
rlaif_tensor *rlaifL_checktensor(lua_State *L, int i);
/* The tensor at index i, or NULL when i is not a tensor (raises when freed). */
rlaif_tensor *rlaifL_testtensor(lua_State *L, int i);
/* Push a new empty box (t = NULL) with the tensor metatable; the caller fills it. */
tensor_box   *rlaifL_newbox(lua_State *L);
/* Push t, taking over the caller's reference (t may not be NULL), and tell the
 * GC how many bytes it holds. */
void          rlaifL_pushtensor(lua_State *L, rlaif_tensor *t);
/* Tell the GC about `bytes` of new memory outside its heap (tensor data, model
 * buffers). Never call it from a finalizer. */
void          rlaifL_gcpressure(lua_State *L, size_t bytes);
/* Raise "<op>: <rlaif_last_error()>" for a failed core call, naming the
 * operation once: a message that starts with "<op>:" is raised as it is, and
 * one that starts with op's last part ("matmul:" for "tensor.matmul") has that
 * part replaced by op. */
int           rlaifL_fail(lua_State *L, const char *op);
/* Read a shape table {d1, ..., dn} at index i into shape; returns ndim. */
int           rlaifL_checkshape(lua_State *L, int i, int64_t *shape);
/* 1-based (negative = from the end) dim at index i of a tensor with ndim dims,
 * returned 0-based; raises when out of range. */
int           rlaifL_checkdim(lua_State *L, int i, int ndim);

/* The model userdata at index i (l_model.c); raises when it is not one or was freed. Borrowed. */
struct rlaif_model *rlaifL_checkmodel(lua_State *L, int i);
/* The tokenizer at index i (l_bpe.c); raises when it is not one or was freed. Borrowed. */
struct rlaif_bpe *rlaifL_checktokenizer(lua_State *L, int i);

int luaopen_rlaif_tensor(lua_State *L);
int luaopen_rlaif_rl(lua_State *L);     /* l_rl.c: RL batches and losses */
int luaopen_rlaif_model(lua_State *L);
int luaopen_rlaif_tokenizer(lua_State *L); /* l_bpe.c */
int luaopen_rlaif_llm(lua_State *L);   /* l_llm.c */
int luaopen_rlaif_gz(lua_State *L);     /* l_gzip.c: line reader, fsync, truncate */
int luaopen_rlaif_json(lua_State *L);   /* l_json.c: encode/decode */
int luaopen_rlaif_serve(lua_State *L);  /* l_serve.c: the HTTP server of rlaif serve */
int luaopen_rlaif_gguf(lua_State *L);   /* l_gguf.c: GGUF files, read side */
int luaopen_rlaif_dist(lua_State *L);   /* l_dist.c: processes under mpirun (MPI) */

#endif
