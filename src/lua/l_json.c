/* src/lua/l_json.c -- rlaif.core.json: JSON encode/decode for Lua values.
 *
 *   json.encode(v [, {indent = false}]) -> string   (raises on values JSON cannot hold)
 *   json.decode(s)                      -> value | nil, "json.decode: <why> at byte N"
 *   json.null                           -- the sentinel for JSON null (a light userdata)
 *   json.array([t])                     -- marks t (or a new table) to encode as an array even
 *                                          when empty; returns t
 *
 * Encoding: Lua integers are written exactly; floats with %.17g (every float
 * round-trips bit for bit; an integral float keeps a ".0" so it stays a float);
 * NaN and infinities raise. A table whose keys are exactly 1..n is an array;
 * any other table is an object with its keys sorted (so equal tables give equal
 * text: canonical output, usable as a hash input); non-string keys other than
 * an array's raise. An empty table is {} unless marked with json.array.
 * Errors name the path of the offending value ("json.encode: NaN at .p_ab").
 *
 * Decoding goes through cJSON. Integral numbers in the int64 range come back as
 * Lua integers (beyond 2^53 they carry a double's precision: cJSON parses with
 * strtod); other numbers as floats; null as json.null. The cJSON tree is held
 * in a userdata box while it is converted, so an out-of-memory error raised by
 * Lua cannot leak it (house style 9.6). */
#include <cJSON.h>
#include <lauxlib.h>
#include <lua.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "l_util.h"

#define JSON_MAX_DEPTH 200
#define TREE_MT "rlaif.JsonTree"

/* ---- encode ---- */

typedef struct path_ent { const char *key; lua_Integer idx; } path_ent;

/* The output goes to a buffer on the C stack (large enough for a labeler
 * record, so the common case allocates nothing but the result string) and
 * moves to malloc'd memory when it outgrows it. The heap block is owned by a
 * userdata box created only then, in a stack slot reserved for it (so the
 * walk's stack indices do not move); the box's __gc frees the block, so an
 * error raised half-way cannot leak it, and the Lua stack is free for the
 * values being walked. */
typedef struct heap_box { char *p; } heap_box;

#define SB_INIT 2048
typedef struct sbuf {
    char *p;
    size_t n, cap;
    lua_State *L;
    int box_slot;               /* stack index reserved for the heap_box */
    heap_box *box;              /* NULL while p is the stack buffer */
} sbuf;

static void sb_grow_slow(sbuf *b, size_t more) {
    size_t cap = b->cap;
    while (cap < b->n + more) cap *= 2;
    if (!b->box) {
        heap_box *box = lua_newuserdatauv(b->L, sizeof *box, 0);
        box->p = NULL;
        luaL_setmetatable(b->L, "rlaif.JsonEnc");
        lua_replace(b->L, b->box_slot);
        char *p = malloc(cap);
        if (!p) luaL_error(b->L, "json.encode: out of memory");
        memcpy(p, b->p, b->n);
        box->p = p;
        b->box = box;
        b->p = p;
    } else {
        char *p = realloc(b->box->p, cap);
        if (!p) luaL_error(b->L, "json.encode: out of memory");
        b->box->p = p;
        b->p = p;
    }
    b->cap = cap;
}
static inline void sb_grow(sbuf *b, size_t more) {
    if (b->n + more > b->cap) sb_grow_slow(b, more);
}
static inline void sb_addlstring(sbuf *b, const char *s, size_t n) {
    sb_grow(b, n);
    memcpy(b->p + b->n, s, n);
    b->n += n;
}
static inline void sb_addchar(sbuf *b, char c) {
    sb_grow(b, 1);
    b->p[b->n++] = c;
}
static inline void sb_addstring(sbuf *b, const char *s) { sb_addlstring(b, s, strlen(s)); }

typedef struct enc {
    lua_State *L;
    sbuf *b;
    int indent;                 /* 0 = compact */
    int depth;
    path_ent path[JSON_MAX_DEPTH + 1];
} enc;

static int enc_error(enc *e, const char *what) {
    luaL_Buffer pb;
    lua_State *L = e->L;
    luaL_buffinit(L, &pb);
    for (int i = 0; i < e->depth; i++) {
        if (e->path[i].key) {
            luaL_addchar(&pb, '.');
            luaL_addstring(&pb, e->path[i].key);
        } else {
            lua_pushfstring(L, "[%I]", e->path[i].idx);
            luaL_addvalue(&pb);
        }
    }
    luaL_pushresult(&pb);
    return luaL_error(L, "json.encode: %s at %s", what, e->depth ? lua_tostring(L, -1) : "top level");
}

/* Bytes that need an escape in a JSON string: controls, '"', '\\', DEL. */
static const unsigned char needs_escape[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1, [0x7f] = 1,
};

static void add_string(sbuf *b, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    sb_grow(b, n + 2);
    b->p[b->n++] = '"';
    size_t run = 0;   /* start of a run of bytes that need no escape */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!needs_escape[c]) continue;
        if (i > run) sb_addlstring(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': sb_addlstring(b, "\\\"", 2); break;
        case '\\': sb_addlstring(b, "\\\\", 2); break;
        case '\n': sb_addlstring(b, "\\n", 2); break;
        case '\r': sb_addlstring(b, "\\r", 2); break;
        case '\t': sb_addlstring(b, "\\t", 2); break;
        case '\b': sb_addlstring(b, "\\b", 2); break;
        case '\f': sb_addlstring(b, "\\f", 2); break;
        default: {
            char u[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            sb_addlstring(b, u, 6);
        }
        }
    }
    if (n > run) sb_addlstring(b, s + run, n - run);
    sb_addchar(b, '"');
}

/* An integer in decimal: the same text as LUA_INTEGER_FMT ("%lld"). */
static void add_integer(sbuf *b, lua_Integer v) {
    char buf[24];
    char *q = buf + sizeof buf;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        *--q = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--q = '-';
    sb_addlstring(b, q, (size_t)(buf + sizeof buf - q));
}

static void add_number(enc *e, int idx) {
    lua_State *L = e->L;
    if (lua_isinteger(L, idx)) {
        add_integer(e->b, lua_tointeger(L, idx));
        return;
    }
    char buf[40];
    double d = lua_tonumber(L, idx);
    if (isnan(d)) enc_error(e, "NaN");
    if (isinf(d)) enc_error(e, "infinity");
    int len = snprintf(buf, sizeof buf, "%.17g", d);
    sb_addlstring(e->b, buf, (size_t)len);
    if (!strpbrk(buf, ".eE")) sb_addlstring(e->b, ".0", 2);
}

static void newline(enc *e) {
    if (!e->indent) return;
    sb_addchar(e->b, '\n');
    for (int i = 0; i < e->depth * e->indent; i++) sb_addchar(e->b, ' ');
}

static int key_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void encode_value(enc *e, int idx);

/* An object's key and the stack index of its value. */
typedef struct kent { const char *s; size_t len; int vidx; } kent;
#define KEYS_ON_STACK 24        /* objects up to this size keep their values on the stack */

/* Write "key": value (with the separator before it when not first). */
static void encode_member(enc *e, const char *ks, size_t klen, int vidx, lua_Integer i) {
    sbuf *b = e->b;
    if (i > 0) sb_addchar(b, ',');
    newline(e);
    add_string(b, ks, klen);
    sb_addchar(b, ':');
    if (e->indent) sb_addchar(b, ' ');
    e->path[e->depth - 1] = (path_ent){ks, 0};
    encode_value(e, vidx);
}

/* Encode the table at absolute index idx. */
static void encode_table(enc *e, int idx) {
    lua_State *L = e->L;
    if (e->depth >= JSON_MAX_DEPTH) enc_error(e, "nesting too deep (a cycle?)");
    /* classify: count keys, check for 1..n; the values of the first
     * KEYS_ON_STACK string keys are kept on the stack (above `base`) with
     * their keys in ents, in traversal order */
    kent ents[KEYS_ON_STACK];
    int base = lua_gettop(L);
    luaL_checkstack(L, KEYS_ON_STACK + 8, "json.encode: nesting too deep");
    lua_Integer n = 0, maxi = 0;
    int strings = 0, others = 0, nul_key = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        n++;
        if (lua_type(L, -2) == LUA_TSTRING) {
            if (strings < KEYS_ON_STACK) {
                kent *k = &ents[strings];
                k->s = lua_tolstring(L, -2, &k->len);   /* a string key: no conversion */
                if (memchr(k->s, 0, k->len)) nul_key = 1;
                lua_insert(L, -2);                     /* keep the value below the key */
                k->vidx = lua_gettop(L) - 1;
                strings++;
                continue;
            }
            strings++;
        } else if (lua_isinteger(L, -2) && lua_tointeger(L, -2) >= 1) {
            lua_Integer k = lua_tointeger(L, -2);
            if (k > maxi) maxi = k;
        } else others++;
        lua_pop(L, 1);
    }
    sbuf *b = e->b;
    if (n == 0) {
        int marked = 0;   /* json.array(t) */
        if (lua_getmetatable(L, idx)) {
            lua_getfield(L, -1, "__jsontype");
            marked = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "array") == 0;
            lua_pop(L, 2);
        }
        sb_addstring(b, marked ? "[]" : "{}");
        return;
    }
    int is_array = strings == 0 && others == 0 && maxi == n;
    if (is_array) {
        sb_addchar(b, '[');
        e->depth++;
        for (lua_Integer i = 1; i <= n; i++) {
            if (i > 1) sb_addchar(b, ',');
            newline(e);
            e->path[e->depth - 1] = (path_ent){NULL, i};
            lua_rawgeti(L, idx, i);
            encode_value(e, lua_gettop(L));
            lua_pop(L, 1);
        }
        e->depth--;
        newline(e);
        sb_addchar(b, ']');
        return;
    }
    if (others || strings != n) {
        lua_settop(L, base);
        e->path[e->depth] = (path_ent){NULL, 0};
        enc_error(e, "table mixes array and object keys (object keys must be strings)");
    }
    if (n <= KEYS_ON_STACK && !nul_key) {
        /* sort the keys (distinct C strings here: any sort gives key_cmp's
         * order) and write the values from the stack */
        for (int i = 1; i < (int)n; i++) {
            kent k = ents[i];
            int j = i;
            while (j > 0 && strcmp(ents[j - 1].s, k.s) > 0) {
                ents[j] = ents[j - 1];
                j--;
            }
            ents[j] = k;
        }
        sb_addchar(b, '{');
        e->depth++;
        for (int i = 0; i < (int)n; i++) encode_member(e, ents[i].s, ents[i].len, ents[i].vidx, i);
        e->depth--;
        newline(e);
        sb_addchar(b, '}');
        lua_settop(L, base);
        return;
    }
    lua_settop(L, base);
    /* a large object (or a key with an embedded zero, which this path reads as
     * C strings): collect and sort the keys; the strings stay alive in the table */
    const char **keys = lua_newuserdatauv(L, sizeof(char *) * (size_t)n, 0);
    int kidx = lua_gettop(L);
    lua_Integer k = 0;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        keys[k++] = lua_tostring(L, -2);
        lua_pop(L, 1);
    }
    qsort(keys, (size_t)n, sizeof *keys, key_cmp);
    sb_addchar(b, '{');
    e->depth++;
    for (lua_Integer i = 0; i < n; i++) {
        size_t klen;
        lua_getfield(L, idx, keys[i]);
        lua_pushstring(L, keys[i]);
        const char *ks = lua_tolstring(L, -1, &klen);
        encode_member(e, ks, klen, lua_gettop(L) - 1, i);
        lua_pop(L, 2);
    }
    e->depth--;
    newline(e);
    sb_addchar(b, '}');
    lua_remove(L, kidx);
}

static void encode_value(enc *e, int idx) {
    lua_State *L = e->L;
    switch (lua_type(L, idx)) {
    case LUA_TNIL: sb_addlstring(e->b, "null", 4); break;
    case LUA_TBOOLEAN:
        if (lua_toboolean(L, idx)) sb_addlstring(e->b, "true", 4);
        else sb_addlstring(e->b, "false", 5);
        break;
    case LUA_TNUMBER: add_number(e, idx); break;
    case LUA_TSTRING: {
        size_t n;
        const char *s = lua_tolstring(L, idx, &n);
        add_string(e->b, s, n);
        break;
    }
    case LUA_TTABLE:
        luaL_checkstack(L, 8, "json.encode: nesting too deep");
        encode_table(e, idx);
        break;
    case LUA_TLIGHTUSERDATA:
        if (lua_touserdata(L, idx) == NULL) {
            sb_addlstring(e->b, "null", 4);
            break;
        }
        /* fallthrough */
    default: {
        char what[64];
        snprintf(what, sizeof what, "cannot encode a %s", luaL_typename(L, idx));
        enc_error(e, what);
    }
    }
}

/* json.encode(v [, opts]) */
static int enc_gc(lua_State *L) {
    heap_box *box = lua_touserdata(L, 1);
    free(box->p);
    box->p = NULL;
    return 0;
}

static int json_encode(lua_State *L) {
    luaL_checkany(L, 1);
    int indent = 0;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "indent");
        if (lua_isinteger(L, -1)) indent = (int)lua_tointeger(L, -1);
        else if (lua_toboolean(L, -1)) indent = 2;
        lua_pop(L, 1);
    }
    lua_settop(L, 1);
    lua_pushnil(L);             /* slot 2: the heap_box, once the output leaves init */
    char init[SB_INIT];
    sbuf out = {init, 0, sizeof init, L, 2, NULL};
    enc e;
    e.L = L;
    e.b = &out;
    e.indent = indent < 0 ? 0 : indent > 8 ? 8 : indent;
    e.depth = 0;
    encode_value(&e, 1);
    lua_pushlstring(L, out.p, out.n);
    if (out.box) {
        free(out.box->p);
        out.box->p = NULL;
    }
    return 1;
}

/* ---- decode ---- */

typedef struct tree_box { cJSON *t; } tree_box;

static int tree_gc(lua_State *L) {
    tree_box *b = luaL_checkudata(L, 1, TREE_MT);
    cJSON_Delete(b->t);
    b->t = NULL;
    return 0;
}

static void push_item(lua_State *L, const cJSON *it, int depth) {
    if (depth > JSON_MAX_DEPTH) luaL_error(L, "json.decode: nesting too deep");
    luaL_checkstack(L, 4, "json.decode: nesting too deep");
    if (cJSON_IsNull(it)) {
        lua_pushlightuserdata(L, NULL);
    } else if (cJSON_IsFalse(it)) {
        lua_pushboolean(L, 0);
    } else if (cJSON_IsTrue(it)) {
        lua_pushboolean(L, 1);
    } else if (cJSON_IsNumber(it)) {
        double d = it->valuedouble;
        if (d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0)
            lua_pushinteger(L, (lua_Integer)d);
        else
            lua_pushnumber(L, d);
    } else if (cJSON_IsString(it)) {
        lua_pushstring(L, it->valuestring);
    } else if (cJSON_IsArray(it)) {
        int n = cJSON_GetArraySize(it);
        lua_createtable(L, n, 0);
        int i = 1;
        for (const cJSON *c = it->child; c; c = c->next) {
            push_item(L, c, depth + 1);
            lua_rawseti(L, -2, i++);
        }
        if (n == 0) luaL_setmetatable(L, "rlaif.JsonArray");
    } else if (cJSON_IsObject(it)) {
        lua_createtable(L, 0, 4);
        for (const cJSON *c = it->child; c; c = c->next) {
            push_item(L, c, depth + 1);
            lua_setfield(L, -2, c->string ? c->string : "");
        }
    } else {
        luaL_error(L, "json.decode: invalid value");
    }
}

/* json.decode(s) -> value | nil, msg */
static int json_decode(lua_State *L) {
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    tree_box *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->t = NULL;
    luaL_setmetatable(L, TREE_MT);
    const char *end = NULL;
    b->t = cJSON_ParseWithLengthOpts(s, len, &end, 0);
    if (!b->t) {
        size_t at = end && end >= s && end <= s + len ? (size_t)(end - s) : 0;
        luaL_pushfail(L);
        if (len == 0 || strspn(s, " \t\r\n") == len)
            lua_pushliteral(L, "json.decode: empty input");
        else
            lua_pushfstring(L, "json.decode: syntax error at byte %d", (int)at + 1);
        return 2;
    }
    size_t pos = end ? (size_t)(end - s) : len;
    while (pos < len && (s[pos] == ' ' || s[pos] == '\t' || s[pos] == '\r' || s[pos] == '\n')) pos++;
    if (pos < len) {
        cJSON_Delete(b->t);
        b->t = NULL;
        luaL_pushfail(L);
        lua_pushfstring(L, "json.decode: unexpected text after the value at byte %d", (int)pos + 1);
        return 2;
    }
    push_item(L, b->t, 0);
    cJSON_Delete(b->t);
    b->t = NULL;
    return 1;
}

/* json.array([t]) -> t, marked to encode as an array (even when empty) */
static int json_array(lua_State *L) {
    if (lua_isnoneornil(L, 1)) lua_newtable(L);
    else luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    luaL_setmetatable(L, "rlaif.JsonArray");
    return 1;
}

static const luaL_Reg json_funcs[] = {
    {"encode", json_encode}, {"decode", json_decode}, {"array", json_array}, {NULL, NULL},
};

int luaopen_rlaif_json(lua_State *L) {
    if (luaL_newmetatable(L, TREE_MT)) {
        lua_pushcfunction(L, tree_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, "rlaif.JsonEnc")) {
        lua_pushcfunction(L, enc_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_pop(L, 1);
    if (luaL_newmetatable(L, "rlaif.JsonArray")) {
        lua_pushliteral(L, "array");
        lua_setfield(L, -2, "__jsontype");
    }
    lua_pop(L, 1);
    luaL_newlib(L, json_funcs);
    lua_pushlightuserdata(L, NULL);
    lua_setfield(L, -2, "null");
    return 1;
}
