/* src/lua/l_gzip.c -- rlaif.core.gz: streaming line reader for .jsonl and
 * .jsonl.gz (zlib reads plain files too), and fsync/truncate for crash-safe
 * JSONL appends.
 *
 *   local r = gz.open(path)            -- raises on misuse; nil, msg when unreadable
 *   local line, nl = r:read()          -- next line (no '\n'); nl = false for a last
 *                                      -- line without newline; nil at end of file;
 *                                      -- nil, msg on a corrupt stream
 *   for line, nl in r:lines() do ... end   -- raises "<file>: ..." on a corrupt stream
 *   r:lineno()  r:path()  r:close()    -- close is idempotent (also __gc/__close)
 *   gz.fsync(file)                     -- flush a Lua file handle and fsync it
 *   gz.truncate(path, size)            -- true, or nil, msg
 *   gz.mkdir(path), gz.write_atomic(path, s) -- true, or nil, msg
 *   gz.file_id(path)                   -- "dev:ino" of the file path names, false when
 *                                      -- there is none; nil, msg when stat fails
 *   gz.fsync_dir(path)                 -- fsync path's directory: true, or nil, msg
 *
 * The reader userdata is a box holding one pointer (house style 9.7). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <stdio.h>

#include "gz.h"
#include "rlaif.h"
#include "l_util.h"

#define GZ_MT "rlaif.GzReader"

typedef struct gz_box { rlaif_gz *g; } gz_box;

static rlaif_gz *check_reader(lua_State *L, int i) {
    gz_box *b = luaL_checkudata(L, i, GZ_MT);
    if (!b->g) luaL_error(L, "attempt to use a closed gz reader");
    return b->g;
}

static int gz_open(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    gz_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->g = NULL;
    luaL_setmetatable(L, GZ_MT);
    if (rlaif_gz_open(&b->g, path) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    return 1;
}

static int gz_read(lua_State *L) {
    rlaif_gz *g = check_reader(L, 1);
    const char *line;
    size_t len;
    int nl;
    if (rlaif_gz_getline(g, &line, &len, &nl) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    if (!line) {
        luaL_pushfail(L);
        return 1;
    }
    lua_pushlstring(L, line, len);
    lua_pushboolean(L, nl);
    return 2;
}

static int gz_lines_iter(lua_State *L) {
    rlaif_gz *g = check_reader(L, lua_upvalueindex(1));
    const char *line;
    size_t len;
    int nl;
    if (rlaif_gz_getline(g, &line, &len, &nl) != RLAIF_OK)
        return luaL_error(L, "%s", rlaif_last_error());
    if (!line) return 0;
    lua_pushlstring(L, line, len);
    lua_pushboolean(L, nl);
    return 2;
}

static int gz_lines(lua_State *L) {
    check_reader(L, 1);
    lua_pushvalue(L, 1);
    lua_pushcclosure(L, gz_lines_iter, 1);
    return 1;
}

static int gz_lineno(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)rlaif_gz_lineno(check_reader(L, 1)));
    return 1;
}

static int gz_path(lua_State *L) {
    lua_pushstring(L, rlaif_gz_path(check_reader(L, 1)));
    return 1;
}

static int gz_close(lua_State *L) {   /* close, __gc and __close */
    gz_box *b = luaL_checkudata(L, 1, GZ_MT);
    rlaif_gz_close(b->g);
    b->g = NULL;
    return 0;
}

static int gz_tostring(lua_State *L) {
    gz_box *b = luaL_checkudata(L, 1, GZ_MT);
    if (b->g) lua_pushfstring(L, "gz reader (%s)", rlaif_gz_path(b->g));
    else lua_pushliteral(L, "gz reader (closed)");
    return 1;
}

static int gz_fsync(lua_State *L) {
    luaL_Stream *s = luaL_checkudata(L, 1, LUA_FILEHANDLE);
    luaL_argcheck(L, s->closef != NULL && s->f != NULL, 1, "attempt to use a closed file");
    if (fflush(s->f) != 0) return luaL_fileresult(L, 0, "gz.fsync");
    if (rlaif_fs_fsync(fileno(s->f), "gz.fsync") != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int gz_truncate(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer size = luaL_checkinteger(L, 2);
    luaL_argcheck(L, size >= 0, 2, "size must be >= 0");
    if (rlaif_fs_truncate(path, (int64_t)size) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

/* gz.mkdir(path) -> true | nil, msg (an existing directory is fine) */
static int gz_mkdir(lua_State *L) {
    if (rlaif_fs_mkdir(luaL_checkstring(L, 1)) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

typedef struct { const char *s; size_t n; } blob;
static rlaif_status write_blob(FILE *f, void *ud) {
    blob *b = ud;
    fwrite(b->s, 1, b->n, f);
    return RLAIF_OK;
}

/* gz.write_atomic(path, string) -> true | nil, msg (temporary file, fsync, rename) */
static int gz_write_atomic(lua_State *L) {
    blob b;
    const char *path = luaL_checkstring(L, 1);
    b.s = luaL_checklstring(L, 2, &b.n);
    if (rlaif_write_file_atomic(path, "cannot write", 0644, write_blob, &b) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int gz_file_id(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    int exists;
    uint64_t dev, ino;
    if (rlaif_fs_file_id(path, &exists, &dev, &ino) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    if (!exists) lua_pushboolean(L, 0);
    else lua_pushfstring(L, "%I:%I", (lua_Integer)dev, (lua_Integer)ino);
    return 1;
}

static int gz_fsync_dir(lua_State *L) {
    if (rlaif_fs_fsync_dir(luaL_checkstring(L, 1)) != RLAIF_OK) {
        luaL_pushfail(L);
        lua_pushstring(L, rlaif_last_error());
        return 2;
    }
    lua_pushboolean(L, 1);
    return 1;
}

static const luaL_Reg reader_methods[] = {
    {"read", gz_read},     {"lines", gz_lines}, {"lineno", gz_lineno},
    {"path", gz_path},     {"close", gz_close}, {NULL, NULL},
};

static const luaL_Reg reader_meta[] = {
    {"__gc", gz_close}, {"__close", gz_close}, {"__tostring", gz_tostring}, {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg gz_funcs[] = {
    {"open", gz_open}, {"fsync", gz_fsync}, {"truncate", gz_truncate}, {"mkdir", gz_mkdir},
    {"write_atomic", gz_write_atomic}, {"file_id", gz_file_id}, {"fsync_dir", gz_fsync_dir}, {NULL, NULL},
};

int luaopen_rlaif_gz(lua_State *L) {
    if (luaL_newmetatable(L, GZ_MT)) {
        luaL_setfuncs(L, reader_meta, 0);
        luaL_newlibtable(L, reader_methods);
        luaL_setfuncs(L, reader_methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, gz_funcs);
    return 1;
}
