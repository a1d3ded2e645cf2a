/* json.c: lua-cjson does the parsing (we never re-implement JSON), but
 * Debian's lua-cjson 2.1.0 pushes every number with lua_pushnumber, so under
 * Lua 5.4 the vendor's 603 arrives as 603.0 and an id sent back would go on
 * the wire as "5442.0". restore_integers walks the decoded value once and
 * turns every float with an exact integer value back into an integer.
 * LuaJIT has only doubles, so there it is the identity. */
#include <math.h>
#include <string.h>
#include "core.h"

#if BT_HAS_INTEGERS
/* Converts the table at absolute index idx in place. depth bounds the walk
 * (cjson already limits nesting to 1000 by default). */
static void restore_table(lua_State *L, int idx, int depth)
{
    luaL_checkstack(L, 4, "json nesting");
    if (depth > 1000)
        luaL_error(L, "JSON nesting deeper than 1000");
    lua_pushnil(L);
    while (lua_next(L, idx)) { /* key at -2, value at -1 */
        int t = lua_type(L, -1);
        if (t == LUA_TNUMBER && !lua_isinteger(L, -1)) {
            lua_Number n = lua_tonumber(L, -1);
            lua_Integer i;
            /* exact integer values only, inside the integer range */
            if (n == floor(n) && n >= -9007199254740992.0 && n <= 9007199254740992.0) {
                i = (lua_Integer)n;
                lua_pop(L, 1);
                lua_pushvalue(L, -1); /* key */
                lua_pushinteger(L, i);
                lua_rawset(L, idx); /* setting an existing key during next is allowed */
                continue;
            }
        } else if (t == LUA_TTABLE) {
            restore_table(L, lua_gettop(L), depth + 1);
        }
        lua_pop(L, 1);
    }
}
#endif

/* restore_integers(value) -> value (tables are converted in place) */
static int l_restore_integers(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
#if BT_HAS_INTEGERS
    if (lua_type(L, 1) == LUA_TTABLE) {
        restore_table(L, 1, 0);
    } else if (lua_type(L, 1) == LUA_TNUMBER && !lua_isinteger(L, 1)) {
        lua_Number n = lua_tonumber(L, 1);
        if (n == floor(n) && n >= -9007199254740992.0 && n <= 9007199254740992.0)
            lua_pushinteger(L, (lua_Integer)n);
    }
#endif
    return 1;
}

/* The decoder made by core.json_decoder(cjson_decode): decode(text) ->
 * value | nil, message. One C call per answer does what the Lua wrapper did
 * in three (pcall, the decode, restore_integers), on the hot path of every
 * call; cjson's errors are caught, never raised. */
static int l_decoder_call(lua_State *L)
{
    luaL_checkany(L, 1);
    lua_settop(L, 1);
    lua_pushvalue(L, lua_upvalueindex(1));
    lua_insert(L, 1); /* decode text */
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        const char *msg = lua_tostring(L, -1), *rest;
        lua_pushnil(L);
        if (!msg) {
            lua_pushliteral(L, "JSON decoding failed");
        } else {
            rest = strstr(msg, ": "); /* drops a "where: " prefix, as the Lua wrapper did */
            lua_pushstring(L, rest ? rest + 2 : msg);
        }
        return 2;
    }
#if BT_HAS_INTEGERS
    if (lua_type(L, 1) == LUA_TTABLE) {
        restore_table(L, 1, 0);
    } else if (lua_type(L, 1) == LUA_TNUMBER && !lua_isinteger(L, 1)) {
        lua_Number n = lua_tonumber(L, 1);
        if (n == floor(n) && n >= -9007199254740992.0 && n <= 9007199254740992.0) {
            lua_pop(L, 1);
            lua_pushinteger(L, (lua_Integer)n);
        }
    }
#endif
    return 1;
}

/* core.json_decoder(decode) -> the decode function above, around `decode`
 * (a lua-cjson decode function). */
static int l_json_decoder(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, 1);
    lua_pushcclosure(L, l_decoder_call, 1);
    return 1;
}

void bt_json_register(lua_State *L)
{
    lua_pushcfunction(L, l_json_decoder);
    lua_setfield(L, -2, "json_decoder");
    lua_pushcfunction(L, l_restore_integers);
    lua_setfield(L, -2, "restore_integers");
}
