/* tests/fuzz/fuzz_json.c -- rlaif.core.json (src/lua/l_json.c) in a Lua state:
 * decode the input, and when it decodes, encode the value again and decode
 * that: a JSON record's way through data.lua. */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "fuzz.h"

int luaopen_rlaif_json(lua_State *L);

static lua_State *L;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    L = luaL_newstate();
    luaL_openlibs(L);
    luaL_requiref(L, "rlaif.json", luaopen_rlaif_json, 0);
    lua_setglobal(L, "json");
    if (luaL_dostring(L, "function roundtrip(s)\n"
                         "  local v = json.decode(s)\n"
                         "  if v == nil then return end\n"
                         "  local ok, e = pcall(json.encode, v)\n"
                         "  if ok then assert(json.decode(e) ~= nil or e == 'null', e) end\n"
                         "end") != LUA_OK)
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    lua_getglobal(L, "roundtrip");
    lua_pushlstring(L, (const char *)data, size);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        const char *e = lua_tostring(L, -1);
        /* a raised error is a finding unless it is a documented refusal */
        if (e == NULL || strstr(e, "json.") == NULL) {
            fprintf(stderr, "fuzz_json: %s\n", e ? e : "(non-string error)");
            abort();
        }
        lua_pop(L, 1);
    }
    lua_gc(L, LUA_GCSTEP, 0);
    return 0;
}
