/* core.h: how the pieces of billetterie.core register themselves.
 * Each file owns one concern and adds its functions (and metatables) to the
 * module table that luaopen_billetterie_core leaves on top of the stack. */
#ifndef BT_CORE_H
#define BT_CORE_H

#include "compat.h"

#define BT_VERSION "0.1.0"

void bt_http_register(lua_State *L);      /* http.c: libcurl client, blocking and multi */
void bt_form_register(lua_State *L);      /* form.c: x-www-form-urlencoded with bracket keys */
void bt_base64_register(lua_State *L);    /* base64.c */
void bt_json_register(lua_State *L);      /* json.c: integer restoration after lua-cjson */
void bt_xml_register(lua_State *L);       /* xml.c: libxml2 tree and streaming reader */
void bt_clock_register(lua_State *L);     /* clock.c: monotonic clock and sleep */
void bt_xml_write_register(lua_State *L); /* xml_write.c: element tables to XML */
void bt_crypto_register(lua_State *L);    /* crypto.c: HMAC-SHA256 (JWT) */
void bt_file_register(lua_State *L);      /* file.c: files only their owner reads */

#endif
