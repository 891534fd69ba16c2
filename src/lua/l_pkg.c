/* src/lua/l_pkg.c -- luaopen_rlaif_core: the C module "rlaif.core".
 *
 * Builds one table with a field per core submodule (tensor, ...) and the
 * runtime functions. Sets no globals. The executable registers this opener in
 * package.preload, so `require "rlaif.core"` behaves the same in the REPL and in
 * a stock lua5.4 that loads build/rlaif/core.so. */
#include <lauxlib.h>
#include <lua.h>

#include "dist.h"
#include "l_util.h"
#include "rlaif.h"

static int pkg_set_threads(lua_State *L) {
    lua_Integer n = luaL_checkinteger(L, 1);
    if (n < 1 || n > RLAIF_MAX_THREADS)
        return luaL_argerror(L, 1, lua_pushfstring(L, "thread count must be an integer from 1 to %d, got %I",
                                                   RLAIF_MAX_THREADS, (LUAI_UACINT)n));
    rlaif_init();
    rlaif_set_threads((int)n);
    return 0;
}

/* check_env() -> true | nil, msg: RLAIF_NUM_THREADS is unset or a thread count */
static int pkg_check_env(lua_State *L) {
    if (rlaif_check_env() != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int pkg_get_threads(lua_State *L) {
    lua_pushinteger(L, rlaif_get_threads());
    return 1;
}

/* info() -> {version=, blis_version=, blis_arch=, blis_arch_forced=, threads=, kernels=, kernels_forced=,
 *           mpi=, mpi_library=, rank=, size=} */
static int pkg_info(lua_State *L) {
    lua_createtable(L, 0, 8);
    lua_pushstring(L, RLAIF_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, rlaif_blas_version());
    lua_setfield(L, -2, "blis_version");
    lua_pushstring(L, rlaif_blas_arch());
    lua_setfield(L, -2, "blis_arch");
    lua_pushboolean(L, rlaif_blas_arch_forced());
    lua_setfield(L, -2, "blis_arch_forced");
    lua_pushinteger(L, rlaif_get_threads());
    lua_setfield(L, -2, "threads");
    if (rlaif_blas_note()[0]) {
        lua_pushstring(L, rlaif_blas_note());
        lua_setfield(L, -2, "blis_note");
    }
    lua_pushstring(L, rlaif_kernels_name());
    lua_setfield(L, -2, "kernels");
    lua_pushboolean(L, rlaif_kernels_scalar_forced());
    lua_setfield(L, -2, "kernels_forced");
    if (rlaif_kernels_note()[0]) {
        lua_pushstring(L, rlaif_kernels_note());
        lua_setfield(L, -2, "kernels_note");
    }
    lua_pushboolean(L, rlaif_dist_built());   /* rlaif.dist: MPI built in, and this process's place */
    lua_setfield(L, -2, "mpi");
    if (rlaif_dist_built()) {
        lua_pushstring(L, rlaif_dist_library());
        lua_setfield(L, -2, "mpi_library");
    }
    lua_pushinteger(L, rlaif_dist_rank());
    lua_setfield(L, -2, "rank");
    lua_pushinteger(L, rlaif_dist_size());
    lua_setfield(L, -2, "size");
    return 1;
}

static int pkg_cancelled(lua_State *L) {
    lua_pushboolean(L, rlaif_cancelled());
    return 1;
}

/* clock() -> monotonic wall-clock seconds */
static int pkg_clock(lua_State *L) {
    lua_pushnumber(L, rlaif_clock());
    return 1;
}

/* setenv(name, value|nil): for the child processes this one starts */
static int pkg_setenv(lua_State *L) {
    const char *name = luaL_checkstring(L, 1), *value = luaL_optstring(L, 2, NULL);
    if (rlaif_setenv(name, value) != RLAIF_OK) return luaL_error(L, "%s", rlaif_last_error());
    return 0;
}

static const luaL_Reg pkg_funcs[] = {
    {"setenv", pkg_setenv},
    {"clock", pkg_clock},
    {"set_threads", pkg_set_threads},
    {"get_threads", pkg_get_threads},
    {"check_env", pkg_check_env},
    {"info", pkg_info},
    {"cancelled", pkg_cancelled},
    {NULL, NULL},
};

static const luaL_Reg modules[] = {
    {"tensor", luaopen_rlaif_tensor},
    {"model", luaopen_rlaif_model},
    {"rl", luaopen_rlaif_rl},
    {"tokenizer", luaopen_rlaif_tokenizer},
    {"llm", luaopen_rlaif_llm},
    {"gz", luaopen_rlaif_gz},
    {"json", luaopen_rlaif_json},
    {"serve", luaopen_rlaif_serve},
    {"gguf", luaopen_rlaif_gguf},
    {"dist", luaopen_rlaif_dist},
    {NULL, NULL},
};

LUAMOD_API int luaopen_rlaif_core(lua_State *L) {
    rlaif_init();
    luaL_newlib(L, pkg_funcs);
    lua_pushstring(L, RLAIF_VERSION);
    lua_setfield(L, -2, "version");
    for (const luaL_Reg *m = modules; m->name; m++) {
        m->func(L);
        lua_setfield(L, -2, m->name);
    }
    return 1;
}
