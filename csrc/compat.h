/* compat.h: the few Lua 5.4 API calls our sources use that Lua 5.1/LuaJIT 2.1
 * lacks, under bt_ names so they never collide with a host's own shims
 * (lua-cjson's luaL_setfuncs clash with LuaJIT taught that). */
#ifndef BT_COMPAT_H
#define BT_COMPAT_H

#include <lua.h>
#include <lauxlib.h>

/* Only two targets: Lua 5.4 and LuaJIT 2.1 (which already has luaL_setfuncs,
 * luaL_newlib and luaL_testudata, so those are used as they are). */
#if LUA_VERSION_NUM >= 502
#define bt_rawlen(L, i) lua_rawlen((L), (i))
#else
#define bt_rawlen(L, i) lua_objlen((L), (i))
#endif

/* Integers: 5.4 has a real integer subtype; 5.1 only doubles. */
#if LUA_VERSION_NUM >= 503
#define BT_HAS_INTEGERS 1
#define bt_isinteger(L, i) lua_isinteger((L), (i))
#else
#define BT_HAS_INTEGERS 0
#define bt_isinteger(L, i) 0
#endif

/* Userdata with a per-object Lua table (uservalue / fenv) that keeps the Lua
 * values C needs alive, instead of registry refs that are easy to forget. */
#if LUA_VERSION_NUM >= 504
#define bt_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 1)
#define bt_setuservalue(L, i) lua_setiuservalue((L), (i), 1)
#define bt_getuservalue(L, i) lua_getiuservalue((L), (i), 1)
#elif LUA_VERSION_NUM >= 502
#define bt_newuserdata(L, sz) lua_newuserdata((L), (sz))
#define bt_setuservalue(L, i) lua_setuservalue((L), (i))
#define bt_getuservalue(L, i) lua_getuservalue((L), (i))
#else
#define bt_newuserdata(L, sz) lua_newuserdata((L), (sz))
#define bt_setuservalue(L, i) lua_setfenv((L), (i))
#define bt_getuservalue(L, i) lua_getfenv((L), (i))
#endif

/* Creates (once) the metatable `name`: methods under __index, and the one
 * idempotent destructor as __gc and __close (a close method calls it too).
 * Leaves the metatable on the stack so the caller can add more fields. */
static inline void bt_new_class(lua_State *L, const char *name, const luaL_Reg *methods,
                                lua_CFunction destructor)
{
    if (luaL_newmetatable(L, name)) {
        lua_newtable(L);
        luaL_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        if (destructor) {
            lua_pushcfunction(L, destructor);
            lua_setfield(L, -2, "__gc");
            lua_pushcfunction(L, destructor);
            lua_setfield(L, -2, "__close");
        }
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__name");
    }
}

#endif
