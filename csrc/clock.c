/* clock.c: what Lua lacks for scheduling: a monotonic clock with sub-second
 * resolution (os.time has seconds, os.clock is CPU time) and a sleep that
 * does not spin. */
#include <errno.h>
#include <time.h>
#include "core.h"

/* now() -> seconds (float) on a monotonic clock: only differences mean anything */
static int l_now(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

/* A day: a longer sleep is a mistake, and the bound keeps the conversion
 * to time_t defined. */
#define MAX_SLEEP_S 86400.0

/* sleep(seconds): blocks the whole thread; the scheduler uses it only when
 * no transfer is in flight. 0 or less returns at once; NaN and more than a
 * day (infinity too) are refused. */
static int l_sleep(lua_State *L)
{
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec ts;
    if (!(s <= MAX_SLEEP_S)) /* NaN fails it too */
        return luaL_argerror(L, 1, "seconds must be a number, at most 86400");
    if (s <= 0)
        return 0;
    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (lua_Number)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
    return 0;
}

void bt_clock_register(lua_State *L)
{
    static const luaL_Reg fns[] = { { "now", l_now }, { "sleep", l_sleep }, { NULL, NULL } };
    luaL_setfuncs(L, fns, 0);
}
