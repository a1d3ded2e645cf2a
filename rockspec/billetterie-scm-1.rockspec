-- LuaRocks build of billetterie. On Debian the C libraries and lua-cjson come
-- from apt (see the README), so an offline build is:
--   luarocks --lua-version 5.4 make --deps-mode none rockspec/billetterie-scm-1.rockspec \
--     CURL_INCDIR=/usr/include/$(gcc -print-multiarch)
rockspec_format = "3.0"
package = "billetterie"
version = "scm-1"
source = {
  url = "git+file:///dev/null",  -- built from a checkout with `luarocks make`
}
description = {
  summary = "Drive L@billetterie and S-360 venue ticketing from Lua",
  detailed = "A Lua module with a libcurl/libxml2 C core: every web service as a call, "
    .. "validated before sending, with one error value, coroutines and a local sandbox.",
  license = "MIT",
}
dependencies = {
  "lua >= 5.1",
  "lua-cjson >= 2.1.0",
}
external_dependencies = {
  CURL = { header = "curl/curl.h" },
  LIBXML2 = { header = "libxml2/libxml/xmlreader.h" },
  MICROHTTPD = { header = "microhttpd.h" },
  OPENSSL = { header = "openssl/hmac.h" },   -- libcrypto's HMAC-SHA256 (S-360 REST tokens)
}
build = {
  type = "builtin",
  modules = {
    ["billetterie.core"] = {
      sources = { "csrc/core.c", "csrc/http.c", "csrc/form.c", "csrc/base64.c", "csrc/json.c", "csrc/xml.c",
                  "csrc/clock.c", "csrc/xml_write.c", "csrc/crypto.c", "csrc/file.c" },
      libraries = { "curl", "xml2", "crypto" },
      incdirs = { "csrc", "$(CURL_INCDIR)", "$(LIBXML2_INCDIR)/libxml2", "$(OPENSSL_INCDIR)" },
      libdirs = { "$(CURL_LIBDIR)", "$(LIBXML2_LIBDIR)", "$(OPENSSL_LIBDIR)" },
    },
    ["billetterie.httpd"] = {
      sources = { "csrc/httpd.c" },
      libraries = { "microhttpd" },
      incdirs = { "csrc", "$(MICROHTTPD_INCDIR)" },
      libdirs = { "$(MICROHTTPD_LIBDIR)" },
    },
    -- BEGIN LUA MODULES (written by `make rockspec`; the suite checks it is current)
    ["billetterie.bulk"] = "lua/billetterie/bulk.lua",
    ["billetterie.cache"] = "lua/billetterie/cache.lua",
    ["billetterie.catalogue"] = "lua/billetterie/catalogue.lua",
    ["billetterie.cli"] = "lua/billetterie/cli.lua",
    ["billetterie.client"] = "lua/billetterie/client.lua",
    ["billetterie.client_cache"] = "lua/billetterie/client_cache.lua",
    ["billetterie.codes"] = "lua/billetterie/codes.lua",
    ["billetterie.csv"] = "lua/billetterie/csv.lua",
    ["billetterie.envelope"] = "lua/billetterie/envelope.lua",
    ["billetterie.error"] = "lua/billetterie/error.lua",
    ["billetterie"] = "lua/billetterie/init.lua",
    ["billetterie.json"] = "lua/billetterie/json.lua",
    ["billetterie.limits"] = "lua/billetterie/limits.lua",
    ["billetterie.ngx_session"] = "lua/billetterie/ngx_session.lua",
    ["billetterie.notifications"] = "lua/billetterie/notifications.lua",
    ["billetterie.pages"] = "lua/billetterie/pages.lua",
    ["billetterie.params"] = "lua/billetterie/params.lua",
    ["billetterie.runner"] = "lua/billetterie/runner.lua",
    ["billetterie.s360.catalogue"] = "lua/billetterie/s360/catalogue.lua",
    ["billetterie.s360.cookie"] = "lua/billetterie/s360/cookie.lua",
    ["billetterie.s360"] = "lua/billetterie/s360/init.lua",
    ["billetterie.s360.rest"] = "lua/billetterie/s360/rest.lua",
    ["billetterie.s360.schema"] = "lua/billetterie/s360/schema.lua",
    ["billetterie.s360.soap"] = "lua/billetterie/s360/soap.lua",
    ["billetterie.sandbox.catalogue"] = "lua/billetterie/sandbox/catalogue.lua",
    ["billetterie.sandbox.changes"] = "lua/billetterie/sandbox/changes.lua",
    ["billetterie.sandbox.codec"] = "lua/billetterie/sandbox/codec.lua",
    ["billetterie.sandbox.contacts"] = "lua/billetterie/sandbox/contacts.lua",
    ["billetterie.sandbox.control"] = "lua/billetterie/sandbox/control.lua",
    ["billetterie.sandbox.dashboard"] = "lua/billetterie/sandbox/dashboard.lua",
    ["billetterie.sandbox.db"] = "lua/billetterie/sandbox/db.lua",
    ["billetterie.sandbox.faults"] = "lua/billetterie/sandbox/faults.lua",
    ["billetterie.sandbox"] = "lua/billetterie/sandbox/init.lua",
    ["billetterie.sandbox.journal"] = "lua/billetterie/sandbox/journal.lua",
    ["billetterie.sandbox.lists"] = "lua/billetterie/sandbox/lists.lua",
    ["billetterie.sandbox.organismes"] = "lua/billetterie/sandbox/organismes.lua",
    ["billetterie.sandbox.purchases"] = "lua/billetterie/sandbox/purchases.lua",
    ["billetterie.sandbox.s360"] = "lua/billetterie/sandbox/s360.lua",
    ["billetterie.sandbox.s360_auth"] = "lua/billetterie/sandbox/s360_auth.lua",
    ["billetterie.sandbox.s360_contacts"] = "lua/billetterie/sandbox/s360_contacts.lua",
    ["billetterie.sandbox.s360_jwt"] = "lua/billetterie/sandbox/s360_jwt.lua",
    ["billetterie.sandbox.s360_ref"] = "lua/billetterie/sandbox/s360_ref.lua",
    ["billetterie.sandbox.s360_soap"] = "lua/billetterie/sandbox/s360_soap.lua",
    ["billetterie.sandbox.s360_social"] = "lua/billetterie/sandbox/s360_social.lua",
    ["billetterie.sandbox.s360_values"] = "lua/billetterie/sandbox/s360_values.lua",
    ["billetterie.sandbox.s360_wire"] = "lua/billetterie/sandbox/s360_wire.lua",
    ["billetterie.sandbox.seeds.demo"] = "lua/billetterie/sandbox/seeds/demo.lua",
    ["billetterie.sandbox.services"] = "lua/billetterie/sandbox/services.lua",
    ["billetterie.sandbox.sessions"] = "lua/billetterie/sandbox/sessions.lua",
    ["billetterie.session"] = "lua/billetterie/session.lua",
    ["billetterie.stream"] = "lua/billetterie/stream.lua",
    ["billetterie.transport"] = "lua/billetterie/transport.lua",
    ["billetterie.transport_ngx"] = "lua/billetterie/transport_ngx.lua",
    ["billetterie.xml"] = "lua/billetterie/xml.lua",
    -- END LUA MODULES
  },
  install = {
    bin = { billetterie = "bin/billetterie" },
  },
}
