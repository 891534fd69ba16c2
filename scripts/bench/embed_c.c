/* scripts/bench/embed_c.c -- what embedding costs, against the raw Lua C API
 * in the same process (built and run by scripts/bench/embed.lua).
 *
 *   call     rlaif_state_call(S, "f", "[1, 2]", &out) on f(a, b) = a + b: JSON in,
 *            protected call with the scope and the hook armed, JSON out;
 *            sandboxed with a budget, and without the sandbox
 *   call_ref the same function through the raw Lua API on the same kind of
 *            state: lua_getglobal, two lua_pushinteger, lua_pcall, lua_tointeger
 *   loop     a Lua loop of 10M iterations run by rlaif_state_run, with an
 *            instruction budget (a count hook: Lua 5.4 then traces every
 *            instruction) and without one (no hook); the reference: the same
 *            chunk in a plain luaL_newstate
 * One JSON line per measurement, best of 5, with ratio = rlaif / reference. */
#include <rlaif.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include <stdio.h>
#include <stdlib.h>

#define CALLS 20000

static const char *const LOOP = "local s = 0 for i = 1, 10000000 do s = s + i % 7 end return s";

static double best_of(int reps, double (*f)(void *), void *ud) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t = f(ud);
        if (t < best) best = t;
    }
    return best;
}

static double time_calls(void *ud) {
    rlaif_state *S = ud;
    double t0 = rlaif_clock();
    for (int i = 0; i < CALLS; i++) {
        char *out = NULL;
        if (rlaif_state_call(S, "f", "[1, 2]", &out) != RLAIF_OK) {
            fprintf(stderr, "embed_c: %s\n", rlaif_state_error(S));
            exit(1);
        }
        rlaif_free(out);
    }
    return (rlaif_clock() - t0) / CALLS;
}

static double time_raw_calls(void *ud) {
    lua_State *L = ud;
    double t0 = rlaif_clock();
    long sum = 0;
    for (int i = 0; i < CALLS; i++) {
        lua_getglobal(L, "f");
        lua_pushinteger(L, 1);
        lua_pushinteger(L, 2);
        if (lua_pcall(L, 2, 1, 0) != LUA_OK) exit(1);
        sum += (long)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    if (sum != 3L * CALLS) exit(1);
    return (rlaif_clock() - t0) / CALLS;
}

static double time_loop(void *ud) {
    rlaif_state *S = ud;
    double t0 = rlaif_clock();
    if (rlaif_state_run(S, LOOP) != RLAIF_OK) exit(1);
    return rlaif_clock() - t0;
}

static double time_raw_loop(void *ud) {
    lua_State *L = ud;
    double t0 = rlaif_clock();
    if (luaL_dostring(L, LOOP) != LUA_OK) exit(1);
    lua_settop(L, 0);
    return rlaif_clock() - t0;
}

int main(void) {
    rlaif_options o = rlaif_options_default();
    o.instruction_budget = 1000000000;
    rlaif_state *S = rlaif_state_new(&o);
    rlaif_options plain = {0};
    rlaif_state *P = rlaif_state_new(&plain);
    lua_State *R = luaL_newstate();
    if (!S || !P || !R) {
        fprintf(stderr, "embed_c: %s\n", rlaif_last_error());
        return 1;
    }
    luaL_openlibs(R);
    const char *def = "function f(a, b) return a + b end";
    if (rlaif_state_run(S, def) || rlaif_state_run(P, def) || luaL_dostring(R, def)) return 1;

    double ref = best_of(5, time_raw_calls, R);
    double sb = best_of(5, time_calls, S), ns = best_of(5, time_calls, P);
    printf("{\"bench\":\"embed\",\"op\":\"call\",\"sandbox\":true,\"budget\":true,\"us\":%.3f,\"ref_us\":%.3f,"
           "\"ratio\":%.1f}\n", sb * 1e6, ref * 1e6, sb / ref);
    printf("{\"bench\":\"embed\",\"op\":\"call\",\"sandbox\":false,\"budget\":false,\"us\":%.3f,\"ref_us\":%.3f,"
           "\"ratio\":%.1f}\n", ns * 1e6, ref * 1e6, ns / ref);
    double lref = best_of(5, time_raw_loop, R), loop = best_of(5, time_loop, S), free_loop = best_of(5, time_loop, P);
    printf("{\"bench\":\"embed\",\"op\":\"loop\",\"budget\":true,\"iterations\":10000000,\"s\":%.4f,\"ref_s\":%.4f,"
           "\"ratio\":%.3f}\n", loop, lref, loop / lref);
    printf("{\"bench\":\"embed\",\"op\":\"loop\",\"budget\":false,\"iterations\":10000000,\"s\":%.4f,\"ref_s\":%.4f,"
           "\"ratio\":%.3f}\n", free_loop, lref, free_loop / lref);
    lua_close(R);
    rlaif_state_free(S);
    rlaif_state_free(P);
    return 0;
}
