/* crypto.c: the one keyed hash the S-360 REST transport needs (billetterie.core).
 *
 *   core.hmac_sha256(key, data) -> 32 raw bytes
 *
 * JWT HS256 signatures (RFC 7518 3.2). OpenSSL's libcrypto does the work;
 * one-shot HMAC() keeps no state between calls. */
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core.h"

static int l_hmac_sha256(lua_State *L)
{
    size_t klen, dlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *data = luaL_checklstring(L, 2, &dlen);
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    if (klen > 0x7fffffff)
        return luaL_argerror(L, 1, "key too long");
    if (HMAC(EVP_sha256(), key, (int)klen, (const unsigned char *)data, dlen, out, &outlen) == NULL)
        return luaL_error(L, "HMAC-SHA256 failed");
    lua_pushlstring(L, (const char *)out, outlen);
    return 1;
}

void bt_crypto_register(lua_State *L)
{
    lua_pushcfunction(L, l_hmac_sha256);
    lua_setfield(L, -2, "hmac_sha256");
}
