# billetterie: build, demo and test. `make demo` and `make test` install the
# Debian packages they need (as root, with apt-get) before anything else.

LUA54      ?= lua5.4
LUAJIT     ?= luajit
BUSTED     ?= /usr/bin/busted
BUILD      ?= build

# Debian 12 packages. luajit2/libluajit2-5.1-dev is OpenResty's LuaJIT 2.1: the
# plain luajit package conflicts with the one nginx's Lua module depends on.
DEB_PACKAGES = gcc make pkg-config ca-certificates curl sqlite3 \
  lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev \
  libcurl4-openssl-dev libxml2-dev libmicrohttpd-dev libsqlite3-dev \
  lua-cjson lua-busted lua-sql-sqlite3 luarocks nginx libnginx-mod-http-lua openssl libssl-dev valgrind chromium

CFLAGS_COMMON = -std=gnu99 -O2 -g -fPIC -Wall -Wextra -Werror -Wshadow \
  -Wstrict-prototypes -Wmissing-prototypes -fvisibility=hidden
DEPS_CFLAGS = $(shell pkg-config --cflags libcurl libxml-2.0 libcrypto 2>/dev/null)
DEPS_LIBS   = $(shell pkg-config --libs libcurl libxml-2.0 libcrypto 2>/dev/null)
HTTPD_CFLAGS = $(shell pkg-config --cflags libmicrohttpd 2>/dev/null)
HTTPD_LIBS   = $(shell pkg-config --libs libmicrohttpd 2>/dev/null)
LUA54_INC   = -I/usr/include/lua5.4
LUAJIT_INC  = -I/usr/include/luajit-2.1
SANITIZE   ?=
LDFLAGS_SO  = -shared $(SANITIZE)

CORE_SRC  = csrc/core.c csrc/http.c csrc/form.c csrc/base64.c csrc/json.c csrc/xml.c csrc/clock.c csrc/xml_write.c csrc/crypto.c csrc/file.c
CORE_HDR  = csrc/core.h csrc/compat.h
HTTPD_SRC = csrc/httpd.c

CORE54  = $(BUILD)/5.4/billetterie/core.so
COREJIT = $(BUILD)/jit/billetterie/core.so
HTTPD54 = $(BUILD)/5.4/billetterie/httpd.so

LUA_PATH_DEV  = ./lua/?.lua;./lua/?/init.lua;./?.lua;;
LUA_CPATH_54  = ./$(BUILD)/5.4/?.so;;
LUA_CPATH_JIT = ./$(BUILD)/jit/?.so;;
ENV54  = LUA_PATH='$(LUA_PATH_DEV)' LUA_CPATH='$(LUA_CPATH_54)'
ENVJIT = LUA_PATH='$(LUA_PATH_DEV)' LUA_CPATH='$(LUA_CPATH_JIT)'

.PHONY: all deps demo test test-asan test-valgrind bench clean rockspec catalogue docs

all: $(CORE54) $(COREJIT) $(HTTPD54)

$(CORE54): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SANITIZE) $(LUA54_INC) $(DEPS_CFLAGS) -o $@ $(CORE_SRC) $(LDFLAGS_SO) $(DEPS_LIBS)

$(COREJIT): $(CORE_SRC) $(CORE_HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SANITIZE) $(LUAJIT_INC) $(DEPS_CFLAGS) -o $@ $(CORE_SRC) $(LDFLAGS_SO) $(DEPS_LIBS)

$(HTTPD54): $(HTTPD_SRC) csrc/compat.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) $(SANITIZE) $(LUA54_INC) $(HTTPD_CFLAGS) -o $@ $(HTTPD_SRC) $(LDFLAGS_SO) $(HTTPD_LIBS)

# Installs only what is missing, so a prepared machine pays one dpkg query.
deps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:" $$missing; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing; \
	fi

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh

test: deps
	@$(MAKE) --no-print-directory all
	@$(ENV54) LUA=$(LUA54) BUSTED=$(BUSTED) sh tools/run-tests.sh

test-asan: deps
	@$(MAKE) --no-print-directory BUILD=build-asan SANITIZE='-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined' all
	@BUILD=build-asan sh tools/run-asan.sh

test-valgrind: deps
	@$(MAKE) --no-print-directory all
	@sh tools/run-valgrind.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@sh bench/run.sh
	@sh bench/sandbox_bench.sh
	@sh bench/workflow_bench.sh

rockspec:
	$(LUA54) tools/sync-rockspec.lua

docs: $(CORE54)
	$(ENV54) $(LUA54) tools/gen_api_docs.lua

# The reference the catalogue is generated from lives beside the project
# (the team's shared folder), not in the repository: REFERENCE= to point elsewhere.
REFERENCE ?= ../shared/reference/labilletterie-ws.json
catalogue:
	@test -f "$(REFERENCE)" || { echo "make catalogue: $(REFERENCE) not found (set REFERENCE=path/to/labilletterie-ws.json)" >&2; exit 2; }
	$(LUA54) tools/gen_catalogue.lua $(REFERENCE) lua/billetterie

clean:
	rm -rf build build-asan
