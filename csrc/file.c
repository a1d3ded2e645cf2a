/* file.c: a file only its owner may read (billetterie.core).
 *
 *   core.private_file(path) -> true | nil, message
 *
 * Creates `path` empty with mode 0600 when it does not exist and leaves an
 * existing one as it is. Lua's io.open and SQLite create files with the
 * process umask (0644 as a rule): bulk's journal (SQLite then gives its
 * -wal and -shm files the database's mode) and report hold a CSV's
 * organisations and the vendor's messages about them, not for other users. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

static int l_private_file(lua_State *L)
{
    const char *path = luaL_checkstring(L, 1);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            lua_pushboolean(L, 1);
            return 1;
        }
        lua_pushnil(L);
        lua_pushfstring(L, "cannot create %s: %s", path, strerror(errno));
        return 2;
    }
    close(fd);
    lua_pushboolean(L, 1);
    return 1;
}

void bt_file_register(lua_State *L)
{
    lua_pushcfunction(L, l_private_file);
    lua_setfield(L, -2, "private_file");
}
