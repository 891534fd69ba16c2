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
 *   gz.fsync(file)                     -- flush a Lua file handle (or an atomic writer)
 *                                      -- and fsync it
 *   gz.truncate(path, size)            -- true, or nil, msg
 *   gz.mkdir(path), gz.write_atomic(path, s) -- true, or nil, msg
 *   local w = gz.atomic(path [, bufsize])   -- a replacing writer (src/core/fileio.c):
 *                                      -- nil, msg when the temporary cannot be made
 *   w:write(s, ...)  w:flush()  w:sync()   -- as a file's; sync = flush + fsync
 *   w:publish()                        -- rename over path now, keep writing (appends)
 *   w:commit()  w:abort()              -- replace path / drop the temporary; both
 *                                      -- close w (abort also __gc/__close, idempotent)
 *   w:path()                           -- the target
 *   gz.file_id(path)                   -- "dev:ino" of the file path names, false when
 *                                      -- there is none; nil, msg when stat fails
 *   gz.fsync_dir(path)                 -- fsync path's directory: true, or nil, msg
 *
 * Every failure of a writer returns nil, msg ("cannot write PATH: reason");
 * using a closed one raises. The reader and the writer userdata are boxes
 * holding one pointer (house style 9.7). */
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gz.h"
#include "rlaif.h"
#include "l_util.h"

#define GZ_MT "rlaif.GzReader"
#define ATOMIC_MT "rlaif.AtomicWriter"

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

static int atomic_sync(lua_State *L);

/* gz.fsync(file | atomic writer) -> true | nil, msg */
static int gz_fsync(lua_State *L) {
    if (luaL_testudata(L, 1, ATOMIC_MT)) return atomic_sync(L);
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

/* ---- the atomic writer ---- */

typedef struct atomic_box { rlaif_atomic *a; } atomic_box;

static int push_fail(lua_State *L) {
    luaL_pushfail(L);
    lua_pushstring(L, rlaif_last_error());
    return 2;
}

static rlaif_atomic *check_atomic(lua_State *L, int i) {
    atomic_box *b = luaL_checkudata(L, i, ATOMIC_MT);
    if (!b->a) luaL_error(L, "attempt to use a closed atomic writer");
    return b->a;
}

/* gz.atomic(path [, bufsize]) -> writer | nil, msg */
static int gz_atomic(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lua_Integer buf = luaL_optinteger(L, 2, 1 << 16);
    luaL_argcheck(L, buf >= 0 && buf <= (1 << 30), 2, "buffer size must be from 0 to 2^30 bytes");
    atomic_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->a = NULL;
    luaL_setmetatable(L, ATOMIC_MT);
    if (rlaif_atomic_open(&b->a, path, "cannot write", 0644, (size_t)buf) != RLAIF_OK) return push_fail(L);
    return 1;
}

/* w:write(s, ...) -> w | nil, msg (strings and numbers, as file:write) */
static int atomic_write(lua_State *L) {
    rlaif_atomic *a = check_atomic(L, 1);
    FILE *f = rlaif_atomic_file(a);
    int n = lua_gettop(L);
    for (int i = 2; i <= n; i++) {
        size_t len;
        const char *s = luaL_checklstring(L, i, &len);
        if (fwrite(s, 1, len, f) != len) {
            rlaif_fail(RLAIF_EIO, "cannot write %s: %s", rlaif_atomic_path(a), strerror(errno));
            return push_fail(L);
        }
    }
    lua_settop(L, 1);
    return 1;
}

static int atomic_flush(lua_State *L) {
    rlaif_atomic *a = check_atomic(L, 1);
    if (fflush(rlaif_atomic_file(a)) != 0) {
        rlaif_fail(RLAIF_EIO, "cannot write %s: %s", rlaif_atomic_path(a), strerror(errno));
        return push_fail(L);
    }
    lua_pushboolean(L, 1);
    return 1;
}

static int atomic_sync(lua_State *L) {
    if (rlaif_atomic_sync(check_atomic(L, 1)) != RLAIF_OK) return push_fail(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int atomic_publish(lua_State *L) {
    if (rlaif_atomic_publish(check_atomic(L, 1)) != RLAIF_OK) return push_fail(L);
    lua_pushboolean(L, 1);
    return 1;
}

/* commit frees the writer whatever happens; the box is closed first */
static int atomic_commit(lua_State *L) {
    rlaif_atomic *a = check_atomic(L, 1);
    ((atomic_box *)lua_touserdata(L, 1))->a = NULL;
    if (rlaif_atomic_commit(a) != RLAIF_OK) return push_fail(L);
    lua_pushboolean(L, 1);
    return 1;
}

static int atomic_abort(lua_State *L) {   /* abort, __gc and __close */
    atomic_box *b = luaL_checkudata(L, 1, ATOMIC_MT);
    rlaif_atomic_abort(b->a);
    b->a = NULL;
    return 0;
}

static int atomic_path(lua_State *L) {
    lua_pushstring(L, rlaif_atomic_path(check_atomic(L, 1)));
    return 1;
}

static int atomic_tostring(lua_State *L) {
    atomic_box *b = luaL_checkudata(L, 1, ATOMIC_MT);
    if (b->a) lua_pushfstring(L, "atomic writer (%s)", rlaif_atomic_path(b->a));
    else lua_pushliteral(L, "atomic writer (closed)");
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

static const luaL_Reg atomic_methods[] = {
    {"write", atomic_write},   {"flush", atomic_flush}, {"sync", atomic_sync},  {"publish", atomic_publish},
    {"commit", atomic_commit}, {"abort", atomic_abort}, {"path", atomic_path}, {NULL, NULL},
};

static const luaL_Reg atomic_meta[] = {
    {"__gc", atomic_abort}, {"__close", atomic_abort}, {"__tostring", atomic_tostring}, {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg gz_funcs[] = {
    {"open", gz_open}, {"fsync", gz_fsync}, {"truncate", gz_truncate}, {"mkdir", gz_mkdir},
    {"write_atomic", gz_write_atomic}, {"atomic", gz_atomic}, {"file_id", gz_file_id},
    {"fsync_dir", gz_fsync_dir}, {NULL, NULL},
};

int luaopen_rlaif_gz(lua_State *L) {
    if (luaL_newmetatable(L, GZ_MT)) {
        luaL_setfuncs(L, reader_meta, 0);
        luaL_newlibtable(L, reader_methods);
        luaL_setfuncs(L, reader_methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, ATOMIC_MT)) {
        luaL_setfuncs(L, atomic_meta, 0);
        luaL_newlibtable(L, atomic_methods);
        luaL_setfuncs(L, atomic_methods, 0);
        lua_setfield(L, -2, "__index");
    }
    lua_pop(L, 1);
    luaL_newlib(L, gz_funcs);
    return 1;
}
