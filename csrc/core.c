/* core.c: luaopen_billetterie_core. Kept trivial on purpose (a crash at
 * require is the worst failure a user can meet): it only builds the module
 * table and lets each concern add its functions. libcurl's global init is
 * done lazily by http.c when the first engine is created. */
#include "core.h"

__attribute__((visibility("default"))) int luaopen_billetterie_core(lua_State *L);

int luaopen_billetterie_core(lua_State *L)
{
    lua_newtable(L);
    lua_pushliteral(L, BT_VERSION);
    lua_setfield(L, -2, "version");
    bt_http_register(L);
    bt_form_register(L);
    bt_base64_register(L);
    bt_json_register(L);
    bt_xml_register(L);
    bt_clock_register(L);
    bt_xml_write_register(L);
    bt_crypto_register(L);
    bt_file_register(L);
    return 1;
}
