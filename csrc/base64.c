/* base64.c: RFC 4648 base64. Encoding is the standard padded alphabet the
 * vendor expects; decoding is lenient the way the vendor's own examples need
 * (wrapped lines, missing padding, the URL-safe alphabet) but rejects
 * anything else instead of guessing. */
#include <stdint.h>
#include <string.h>
#include "core.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

static int l_b64encode(lua_State *L)
{
    size_t len, i;
    const unsigned char *src = (const unsigned char *)luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)src[i] << 16 | (uint32_t)src[i + 1] << 8 | src[i + 2];
        char out[4] = { b64_alphabet[v >> 18], b64_alphabet[(v >> 12) & 63],
                        b64_alphabet[(v >> 6) & 63], b64_alphabet[v & 63] };
        luaL_addlstring(&b, out, 4);
    }
    if (i < len) {
        uint32_t v = (uint32_t)src[i] << 16 | (i + 1 < len ? (uint32_t)src[i + 1] << 8 : 0);
        char out[4] = { b64_alphabet[v >> 18], b64_alphabet[(v >> 12) & 63],
                        i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=', '=' };
        luaL_addlstring(&b, out, 4);
    }
    luaL_pushresult(&b);
    return 1;
}

/* Returns nil, message on invalid input (it comes from the network). */
static int l_b64decode(lua_State *L)
{
    size_t len, i;
    const unsigned char *src = (const unsigned char *)luaL_checklstring(L, 1, &len);
    luaL_Buffer b;
    uint32_t acc = 0;
    int bits = 0, pad = 0;
    luaL_buffinit(L, &b);
    for (i = 0; i < len; i++) {
        unsigned char c = src[i];
        int v;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        v = b64_value(c);
        if (v < 0 || pad) {
            luaL_pushresult(&b);
            lua_pop(L, 1);
            lua_pushnil(L);
            lua_pushfstring(L, "invalid base64 at byte %d", (int)i + 1);
            return 2;
        }
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            luaL_addchar(&b, (char)((acc >> bits) & 0xFF));
        }
    }
    if (bits >= 6 || pad > 2) { /* a lone trailing character cannot encode a byte */
        luaL_pushresult(&b);
        lua_pop(L, 1);
        lua_pushnil(L);
        lua_pushliteral(L, "truncated base64");
        return 2;
    }
    luaL_pushresult(&b);
    return 1;
}

void bt_base64_register(lua_State *L)
{
    static const luaL_Reg fns[] = { { "b64encode", l_b64encode },
                                    { "b64decode", l_b64decode },
                                    { NULL, NULL } };
    luaL_setfuncs(L, fns, 0);
}
