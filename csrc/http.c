/* http.c: the libcurl engine. One engine owns one multi handle, hence one
 * connection cache (keep-alive), DNS cache and TLS session cache shared by
 * every transfer it runs, blocking or concurrent. Transfers live in slots
 * that keep their easy handle and buffers for reuse, so a steady stream of
 * calls allocates nothing.
 *
 * Lua API (methods of the userdata returned by core.http_engine{...}):
 *   engine = core.http_engine{ user_agent=, headers={"A: b"} (sent always) }
 *   id = engine:start{ url=, method="POST"|"GET", body=, headers={"A: b"},
 *                      timeout=s, connect_timeout=s, max_size=bytes,
 *                      verify=true, cainfo=, capath=, gzip=true,
 *                      file=path (the body is written there, not kept) }
 *        (or config = core.http_config{ timeout=, ... } made once instead
 *        of the settings, which spares reading them on every call)
 *   status, body, content_type, errkind, errmsg, request_id, retry_after
 *        = engine:wait(id)  (retry_after: the Retry-After text of a >= 400)
 *        (blocks, driving every transfer, until id is done; frees the slot)
 *   ids = engine:poll(timeout_ms)   -- drives transfers, returns finished ids
 *   ... = engine:result(id)          -- same values as wait, for a finished id
 *   engine:cancel(id); engine:pending(); engine:close()
 * errkind is nil on success, else "timeout", "tls" (the certificate could not
 * be verified), "too_large" or "network" (a failed TLS handshake included:
 * its message says so, and like any network failure it may pass on retry).
 *
 * Numbers are checked before they reach libcurl: timeouts are finite
 * seconds in (0, MAX_TIMEOUT_S], rounded up to whole milliseconds (libcurl
 * reads 0 ms as "no timeout"), max_size whole bytes in [1, 2^53].
 *
 * libcurl callbacks only copy bytes: nothing in them can raise a Lua error,
 * so no longjmp ever crosses libcurl. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <curl/curl.h>
#include "core.h"

#define ENGINE_MT "billetterie.http_engine"
#define CONFIG_MT "billetterie.http_config"

enum slot_state { SLOT_FREE, SLOT_RUNNING, SLOT_DONE };

/* The settings a request may change, remembered per handle so that a steady
 * stream of identical calls re-sets only the URL and the body. */
typedef struct {
    long timeout_ms, connect_timeout_ms;
    curl_off_t max_size;
    int verify, gzip, own_headers;
    char cainfo[512], capath[512];
} handle_config;

typedef struct {
    CURL *easy;
    struct curl_slist *headers; /* this request's list (defaults + extras), or NULL */
    handle_config config;
    int configured;
    char *url;  /* the URL last set, so repeated calls skip the copy */
    char *body; /* response body */
    size_t len, cap, max_size;
    int too_big;
    FILE *sink;            /* the body goes to this file instead of memory */
    size_t sunk;           /* bytes written to sink */
    enum slot_state state;
    CURLcode code;
    char errbuf[CURL_ERROR_SIZE];
} transfer;

typedef struct {
    CURLM *multi;
    transfer **slots; /* pointers, so easy handles' WRITEDATA stay valid */
    size_t nslots;
    size_t running;
    int added; /* transfers were added since the last perform */
    char *user_agent;
    struct curl_slist *default_headers; /* sent with every request */
    char *default_cainfo;               /* libcurl's built-in CA locations, restored */
    char *default_capath;               /* when a request names none */
    int closed;
    /* A method that pushes Lua values (which may run the GC, hence any
     * finalizer, hence engine:close()) sets busy: close then only marks the
     * engine closed and the method releases it when done. */
    int busy, close_deferred;
    int global_init; /* curl_global_init succeeded: cleanup owed */
} engine;

/* The methods are closures sharing these upvalues: the two metatables and
 * the keys of a request, so that start and result, which run once per call,
 * check their userdata and read the request with rawequal and rawget
 * instead of looking names up (luaL_checkudata, lua_getfield) every time;
 * and the bodies that call_busy runs protected (no closure made per call). */
enum {
    UV_ENGINE_MT = 1,
    UV_CONFIG_MT,
    UV_URL,
    UV_METHOD,
    UV_BODY,
    UV_FILE,
    UV_CONFIG,
    UV_HEADERS,
    UV_RESULT_BODY,
    UV_POLL_BODY,
    UV_COUNT
};
static const char *const request_keys[] = { "url", "method", "body", "file", "config", "headers" };

/* The userdata at idx if its metatable is the one in upvalue uv, else NULL. */
static void *to_instance(lua_State *L, int idx, int uv)
{
    void *p = lua_touserdata(L, idx);
    int same;
    if (!p || !lua_getmetatable(L, idx))
        return NULL;
    same = lua_rawequal(L, -1, lua_upvalueindex(uv));
    lua_pop(L, 1);
    return same ? p : NULL;
}

static engine *check_engine(lua_State *L)
{
    engine *e = to_instance(L, 1, UV_ENGINE_MT);
    if (!e)
        luaL_argerror(L, 1, "http engine expected");
    if (e->closed)
        luaL_error(L, "http engine is closed");
    return e;
}

/* Pushes req[key] (a raw read: requests are plain tables), returns its type. */
static int request_field(lua_State *L, int req, int uv)
{
    lua_pushvalue(L, lua_upvalueindex(uv));
    lua_rawget(L, req);
    return lua_type(L, -1);
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userp)
{
    transfer *t = userp;
    size_t n = size * nmemb;
    if (t->len + t->sunk + n > t->max_size) { /* MAXFILESIZE misses chunked bodies */
        t->too_big = 1;
        return 0;
    }
    if (t->sink) {
        if (fwrite(data, 1, n, t->sink) != n)
            return 0; /* libcurl reports a write error */
        t->sunk += n;
        return n;
    }
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap : 16384;
        char *body;
        while (t->len + n + 1 > cap)
            cap *= 2;
        body = realloc(t->body, cap);
        if (!body)
            return 0; /* libcurl reports a write error */
        t->body = body;
        t->cap = cap;
    }
    memcpy(t->body + t->len, data, n);
    t->len += n;
    return n;
}

/* Moves finished transfers to SLOT_DONE and out of the multi handle. */
static void collect_done(engine *e)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(e->multi, &left))) {
        transfer *t = NULL;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        t->code = msg->data.result;
        t->state = SLOT_DONE;
        if (t->sink && fclose(t->sink) != 0 && t->code == CURLE_OK)
            t->code = CURLE_WRITE_ERROR; /* the file is incomplete */
        t->sink = NULL;
        curl_multi_remove_handle(e->multi, msg->easy_handle);
        e->running--;
    }
}

static transfer *slot_of(lua_State *L, engine *e, int arg)
{
    lua_Integer id = luaL_checkinteger(L, arg);
    if (id < 1 || (size_t)id > e->nslots || e->slots[id - 1]->state == SLOT_FREE)
        luaL_argerror(L, arg, "no such transfer");
    return e->slots[id - 1];
}

static int free_slot_index(lua_State *L, engine *e)
{
    size_t i;
    transfer **slots, *t;
    for (i = 0; i < e->nslots; i++)
        if (e->slots[i]->state == SLOT_FREE)
            return (int)i;
    t = calloc(1, sizeof *t);
    slots = t ? realloc(e->slots, (e->nslots + 1) * sizeof *slots) : NULL;
    if (!slots) {
        free(t);
        return luaL_error(L, "out of memory"); /* raises; never returns */
    }
    e->slots = slots;
    t->easy = curl_easy_init();
    if (!t->easy) {
        free(t);
        return luaL_error(L, "curl_easy_init failed");
    }
    /* What never changes for this handle is set once. */
    curl_easy_setopt(t->easy, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(t->easy, CURLOPT_PRIVATE, (char *)t);
    curl_easy_setopt(t->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(t->easy, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(t->easy, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(t->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(t->easy, CURLOPT_USERAGENT, e->user_agent);
    curl_easy_setopt(t->easy, CURLOPT_TCP_KEEPALIVE, 1L);
    e->slots[e->nslots] = t;
    return (int)e->nslots++;
}

/* Pushes t[key] for the table at absolute index idx: a raw read for a
 * request (a plain table: no __index may run in start, where one closing
 * the engine would leave start working on a released engine), lua_getfield
 * for the options of http_engine{} and http_config{}. */
static void get_key(lua_State *L, int idx, const char *key, int raw)
{
    if (raw) {
        lua_pushstring(L, key);
        lua_rawget(L, idx);
    } else {
        lua_getfield(L, idx, key);
    }
}

/* Pushes t[key] and returns it as a string, or def when nil. Only real
 * strings: converting a number would make a string only the stack holds,
 * so the caller pops it once the text is copied. */
static const char *opt_string(lua_State *L, int idx, const char *key, const char *def, int raw)
{
    get_key(L, idx, key, raw);
    if (lua_isnil(L, -1))
        return def;
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "%s must be a string", key);
    return lua_tostring(L, -1);
}

static double opt_number(lua_State *L, int idx, const char *key, double def, int raw)
{
    double v = def;
    get_key(L, idx, key, raw);
    if (lua_isnil(L, -1))
        v = def;
    else if (lua_type(L, -1) == LUA_TNUMBER)
        v = (double)lua_tonumber(L, -1);
    else
        luaL_error(L, "%s must be a number", key);
    lua_pop(L, 1);
    return v;
}

#define MAX_TIMEOUT_S 86400.0             /* a day: longer is a mistake */
#define MAX_SIZE_BYTES 9007199254740992.0 /* 2^53: exact in a double */
#define MAX_HOST_CONNECTIONS 65536.0

/* A timeout in seconds as libcurl's milliseconds. The comparisons are
 * written so that NaN fails them; sub-millisecond values round up to 1 ms
 * because 0 ms would mean no timeout at all. */
static long timeout_ms(lua_State *L, int idx, const char *key, double def, int raw)
{
    double s = opt_number(L, idx, key, def, raw), ms;
    if (!(s > 0 && s <= MAX_TIMEOUT_S))
        luaL_error(L, "%s must be a number of seconds in (0, %d]", key, (int)MAX_TIMEOUT_S);
    ms = ceil(s * 1000);
    return (long)ms;
}

/* A count or size that must be a whole number in [lo, hi] (NaN fails). */
static double whole_number(lua_State *L, int idx, const char *key, double def, double lo, double hi,
                           const char *range, int raw)
{
    double v = opt_number(L, idx, key, def, raw);
    if (!(v >= lo && v <= hi && v == floor(v)))
        luaL_error(L, "%s must be a whole number in %s", key, range);
    return v;
}

static int opt_bool(lua_State *L, int idx, const char *key, int def, int raw)
{
    int v;
    get_key(L, idx, key, raw);
    v = lua_isnil(L, -1) ? def : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* Applies the per-request settings that differ from what the handle has. */
static void configure(engine *e, transfer *t, const handle_config *want)
{
    CURL *h = t->easy;
    handle_config *have = &t->config;
    int all = !t->configured;
    if (all || have->timeout_ms != want->timeout_ms)
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, want->timeout_ms);
    if (all || have->connect_timeout_ms != want->connect_timeout_ms)
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, want->connect_timeout_ms);
    if (all || have->max_size != want->max_size)
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, want->max_size);
    if (all || have->gzip != want->gzip)
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, want->gzip ? "" : NULL);
    if (all || have->verify != want->verify) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, want->verify ? 1L : 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, want->verify ? 2L : 0L);
    }
    if (all || strcmp(have->cainfo, want->cainfo))
        curl_easy_setopt(h, CURLOPT_CAINFO, want->cainfo[0] ? want->cainfo : e->default_cainfo);
    if (all || strcmp(have->capath, want->capath))
        curl_easy_setopt(h, CURLOPT_CAPATH, want->capath[0] ? want->capath : e->default_capath);
    if (all || want->own_headers || have->own_headers)
        curl_easy_setopt(h, CURLOPT_HTTPHEADER,
                         want->own_headers ? t->headers : e->default_headers);
    *have = *want;
    t->configured = 1;
}

/* Copies t[key] (a string or nil) into dst. */
static void copy_path(lua_State *L, int idx, const char *key, char *dst, size_t size, int raw)
{
    const char *src = opt_string(L, idx, key, NULL, raw);
    dst[0] = '\0';
    if (src && strlen(src) >= size)
        luaL_error(L, "%s path is too long", key);
    if (src)
        strcpy(dst, src);
    lua_pop(L, 1);
}

/* Whether the request's header list (at list, n items) names the header of
 * "Name: value" line `line` (names compare without case). */
static int overridden(lua_State *L, int list, size_t n, const char *line)
{
    size_t i, len = strcspn(line, ":");
    for (i = 1; i <= n; i++) {
        const char *h;
        lua_rawgeti(L, list, (int)i);
        h = lua_tostring(L, -1);
        lua_pop(L, 1); /* the list keeps the string alive */
        if (h && strlen(h) > len && h[len] == ':' && strncasecmp(h, line, len) == 0)
            return 1;
    }
    return 0;
}

/* Raises unless every item of the header list at `list` is a string: then
 * reading them later allocates nothing (so cannot run a finalizer). */
static size_t check_headers(lua_State *L, int list)
{
    size_t i, n = bt_rawlen(L, list);
    for (i = 1; i <= n; i++) {
        int type;
        lua_rawgeti(L, list, (int)i);
        type = lua_type(L, -1);
        lua_pop(L, 1);
        if (type != LUA_TSTRING)
            luaL_error(L, "headers[%d] must be a string", (int)i);
    }
    return n;
}

/* The engine's default headers, less those the request names again (its
 * own Accept, say), then the request's (checked by check_headers). */
static void build_headers(lua_State *L, engine *e, transfer *t, int list, size_t n)
{
    struct curl_slist *d;
    size_t i;
    curl_slist_free_all(t->headers);
    t->headers = NULL;
    for (d = e->default_headers; d; d = d->next) {
        struct curl_slist *l;
        if (overridden(L, list, n, d->data))
            continue;
        l = curl_slist_append(t->headers, d->data);
        if (!l)
            luaL_error(L, "out of memory");
        t->headers = l;
    }
    for (i = 1; i <= n; i++) {
        struct curl_slist *l;
        lua_rawgeti(L, list, (int)i);
        l = curl_slist_append(t->headers, lua_tostring(L, -1));
        lua_pop(L, 1);
        if (!l)
            luaL_error(L, "out of memory");
        t->headers = l;
    }
}

/* Reads the per-request settings of a table (a request: raw, or the
 * options of http_config{}). */
static void read_config(lua_State *L, int idx, handle_config *c, int raw)
{
    memset(c, 0, sizeof *c);
    c->timeout_ms = timeout_ms(L, idx, "timeout", 30, raw);
    c->connect_timeout_ms = timeout_ms(L, idx, "connect_timeout", 10, raw);
    c->max_size = (curl_off_t)whole_number(L, idx, "max_size", 64.0 * 1024 * 1024, 1,
                                           MAX_SIZE_BYTES, "[1, 2^53]", raw);
    c->verify = opt_bool(L, idx, "verify", 1, raw);
    c->gzip = opt_bool(L, idx, "gzip", 1, raw);
    copy_path(L, idx, "cainfo", c->cainfo, sizeof c->cainfo, raw);
    copy_path(L, idx, "capath", c->capath, sizeof c->capath, raw);
}

/* core.http_config{ timeout=, connect_timeout=, max_size=, verify=, gzip=,
 * cainfo=, capath= }: an immutable set of settings to give as the `config`
 * field of requests. */
static int l_config(lua_State *L)
{
    handle_config *c;
    luaL_checktype(L, 1, LUA_TTABLE);
    c = lua_newuserdata(L, sizeof *c);
    read_config(L, 1, c, 0);
    luaL_getmetatable(L, CONFIG_MT);
    lua_setmetatable(L, -2);
    return 1;
}

static int l_start(lua_State *L)
{
    engine *e = check_engine(L);
    const char *url, *method, *body, *sink_path;
    size_t body_len = 0, nheaders;
    handle_config want, *config;
    transfer *t;
    CURL *h;
    int idx;
    CURLMcode mc;

    luaL_checktype(L, 2, LUA_TTABLE);
    lua_settop(L, 2);
    /* The strings stay on the stack (3 to 5), alive while this runs. */
    if (request_field(L, 2, UV_URL) != LUA_TSTRING)
        return luaL_argerror(L, 2, "url (a string) is required");
    url = lua_tostring(L, 3);
    /* Real strings only: a converted number would allocate (see busy). */
    switch (request_field(L, 2, UV_METHOD)) {
    case LUA_TNIL:
        method = "POST";
        break;
    case LUA_TSTRING:
        method = lua_tostring(L, 4);
        if (strcmp(method, "POST") && strcmp(method, "GET"))
            return luaL_argerror(L, 2, "method must be POST or GET");
        break;
    default:
        return luaL_argerror(L, 2, "method must be a string");
    }
    switch (request_field(L, 2, UV_BODY)) {
    case LUA_TNIL:
        body = NULL;
        break;
    case LUA_TSTRING:
        body = lua_tolstring(L, 5, &body_len);
        break;
    default:
        return luaL_argerror(L, 2, "body must be a string");
    }
    switch (request_field(L, 2, UV_FILE)) {
    case LUA_TNIL:
        sink_path = NULL;
        break;
    case LUA_TSTRING:
        sink_path = lua_tostring(L, 6);
        break;
    default:
        return luaL_argerror(L, 2, "file must be a string");
    }
    /* A prepared core.http_config saves reading the settings on every call. */
    config = NULL;
    if (request_field(L, 2, UV_CONFIG) != LUA_TNIL) {
        config = to_instance(L, 7, UV_CONFIG_MT);
        if (!config)
            return luaL_argerror(L, 2, "config must be made by core.http_config");
    }
    if (config) {
        want = *config;
    } else {
        read_config(L, 2, &want, 1);
    }
    nheaders = 0;
    switch (request_field(L, 2, UV_HEADERS)) {
    case LUA_TNIL:
        break;
    case LUA_TTABLE:
        nheaders = check_headers(L, lua_gettop(L));
        break;
    default:
        return luaL_argerror(L, 2, "headers must be a table");
    }
    /* Reading the request allocated (key strings), so a finalizer may have
     * closed the engine meanwhile. From here to the end nothing allocates
     * Lua memory before the slot is queued (errors aside), so none can. */
    if (e->closed)
        return luaL_error(L, "http engine is closed");
    idx = free_slot_index(L, e);
    t = e->slots[idx];
    h = t->easy;
    want.own_headers = nheaders > 0;
    if (want.own_headers)
        build_headers(L, e, t, lua_gettop(L), nheaders);

    t->sunk = 0;
    t->len = 0;
    t->too_big = 0;
    t->max_size = (size_t)want.max_size;
    t->errbuf[0] = '\0';
    configure(e, t, &want);
    if (!t->url || strcmp(t->url, url)) {
        char *copy = strdup(url);
        if (!copy)
            return luaL_error(L, "out of memory");
        free(t->url);
        t->url = copy;
        curl_easy_setopt(h, CURLOPT_URL, url);
    }
    if (method[0] == 'G') {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else {
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        curl_easy_setopt(h, CURLOPT_COPYPOSTFIELDS, body ? body : "");
    }
    /* Opened last: nothing below can raise, so the FILE cannot leak. */
    if (sink_path) {
        t->sink = fopen(sink_path, "wb");
        if (!t->sink) {
            lua_pushnil(L);
            lua_pushfstring(L, "cannot write %s: %s", sink_path, strerror(errno));
            return 2;
        }
    }
    mc = curl_multi_add_handle(e->multi, h);
    if (mc != CURLM_OK) {
        if (t->sink)
            fclose(t->sink);
        t->sink = NULL;
        lua_pushnil(L);
        lua_pushstring(L, curl_multi_strerror(mc));
        return 2;
    }
    t->state = SLOT_RUNNING;
    e->running++;
    e->added = 1;
    lua_pushinteger(L, idx + 1);
    return 1;
}

/* libcurl's codes as our errkinds, and a prefix for the message. Only a
 * certificate problem is "tls" (verification: retrying cannot help); a
 * failed handshake (https to a plain-HTTP port, no common cipher) is a
 * network failure that says what it was. */
static const struct {
    CURLcode code;
    const char *kind, *prefix;
} curl_errors[] = {
    { CURLE_OPERATION_TIMEDOUT, "timeout", "" },
    { CURLE_FILESIZE_EXCEEDED, "too_large", "" }, /* Content-Length over max_size */
    { CURLE_PEER_FAILED_VERIFICATION, "tls", "" },
    { CURLE_SSL_CACERT_BADFILE, "tls", "" },
    { CURLE_SSL_CERTPROBLEM, "tls", "" },
    { CURLE_SSL_ISSUER_ERROR, "tls", "" },
    { CURLE_SSL_CRL_BADFILE, "tls", "" },
    { CURLE_SSL_CONNECT_ERROR, "network", "TLS handshake failed: " },
    { CURLE_SSL_CIPHER, "network", "TLS handshake failed: " },
};

/* Pushes errkind and errmsg of a failed transfer. */
static void push_error(lua_State *L, const transfer *t)
{
    const char *kind = "network", *prefix = "";
    size_t i;
    for (i = 0; i < sizeof curl_errors / sizeof *curl_errors; i++)
        if (curl_errors[i].code == t->code) {
            kind = curl_errors[i].kind;
            prefix = curl_errors[i].prefix;
        }
    if (t->too_big || t->code == CURLE_FILESIZE_EXCEEDED) {
        char msg[80];
        snprintf(msg, sizeof msg, "response larger than max_size (%llu bytes)",
                 (unsigned long long)t->max_size);
        lua_pushliteral(L, "too_large");
        lua_pushstring(L, msg);
        return;
    }
    lua_pushstring(L, kind);
    lua_pushfstring(L, "%s%s", prefix, t->errbuf[0] ? t->errbuf : curl_easy_strerror(t->code));
}

static void engine_release(engine *e);

/* Runs the C function in upvalue uv on the nargs values on top of the
 * stack, under lua_pcall, with the engine busy: pushing Lua values may run
 * the GC, hence any finalizer, hence engine:close(), which then only marks
 * the engine and leaves the releasing to us. Protected, so an error (out of
 * memory; a finalizer raising on LuaJIT) cannot skip the end of busy, which
 * would defer every later close() to __gc. Returns the body's results. */
static int call_busy(lua_State *L, engine *e, int uv, int nargs)
{
    int base = lua_gettop(L) - nargs, status;
    lua_pushvalue(L, lua_upvalueindex(uv));
    lua_insert(L, base + 1);
    e->busy++;
    status = lua_pcall(L, nargs, LUA_MULTRET, 0);
    if (--e->busy == 0 && e->close_deferred)
        engine_release(e);
    if (status != 0)
        return lua_error(L);
    return lua_gettop(L) - base;
}

/* result_body(engine, slot index from 0): pushes the outcome of a finished
 * transfer and frees its slot (under call_busy):
 * status, body, content_type, errkind, errmsg, request_id, retry_after */
static int result_body(lua_State *L)
{
    engine *e = lua_touserdata(L, 1);
    transfer *t = e->slots[lua_tointeger(L, 2)];
    long status = 0;
    char *ctype = NULL;
    struct curl_header *hdr = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(t->easy, CURLINFO_CONTENT_TYPE, &ctype);
    lua_pushinteger(L, status);
    lua_pushlstring(L, t->body ? t->body : "", t->len);
    if (ctype)
        lua_pushstring(L, ctype);
    else
        lua_pushnil(L);
    if (t->code == CURLE_OK && !t->too_big) {
        lua_pushnil(L);
        lua_pushnil(L);
    } else {
        push_error(L, t);
    }
    if (status && curl_easy_header(t->easy, "X-Request-Id", 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK)
        lua_pushstring(L, hdr->value);
    else
        lua_pushnil(L);
    /* Looked up on refusals only (429, 503...): successes pay nothing. */
    if (status >= 400 && curl_easy_header(t->easy, "Retry-After", 0, CURLH_HEADER, -1, &hdr) == CURLHE_OK)
        lua_pushstring(L, hdr->value);
    else
        lua_pushnil(L);
    t->state = SLOT_FREE;
    /* Keep the buffer for the next transfer unless it grew large. */
    if (t->cap > 1024 * 1024) {
        free(t->body);
        t->body = NULL;
        t->cap = 0;
    }
    t->len = 0;
    return 7;
}

/* The outcome of the finished transfer whose id (checked) is at 2. */
static int push_result(lua_State *L, engine *e)
{
    lua_Integer i = lua_tointeger(L, 2) - 1;
    lua_settop(L, 1);
    lua_pushinteger(L, i);
    return call_busy(L, e, UV_RESULT_BODY, 2);
}

/* One round of work: run what is ready, wait up to timeout_ms for more. */
static void drive(engine *e, int timeout_ms)
{
    int still;
    if (e->added || timeout_ms <= 0) { /* send what start() queued */
        e->added = 0;
        curl_multi_perform(e->multi, &still);
        collect_done(e);
    }
    if (e->running == 0 || timeout_ms <= 0)
        return;
    curl_multi_poll(e->multi, NULL, 0, timeout_ms, NULL);
    curl_multi_perform(e->multi, &still);
    collect_done(e);
}

static int l_wait(lua_State *L)
{
    engine *e = check_engine(L);
    transfer *t = slot_of(L, e, 2);
    while (t->state == SLOT_RUNNING)
        drive(e, 1000);
    return push_result(L, e);
}

/* poll_body(engine, ids or nil): the table of finished transfers (under
 * call_busy: e->slots stays allocated while the table grows). */
static int poll_body(lua_State *L)
{
    engine *e = lua_touserdata(L, 1);
    size_t i, old = 0;
    int n = 0;
    if (lua_istable(L, 2))
        old = bt_rawlen(L, 2);
    else
        lua_newtable(L);
    for (i = 0; i < e->nslots; i++) {
        if (e->slots[i]->state == SLOT_DONE) {
            lua_pushinteger(L, (lua_Integer)i + 1);
            lua_rawseti(L, -2, ++n);
        }
    }
    for (i = (size_t)n + 1; i <= old; i++) {
        lua_pushnil(L);
        lua_rawseti(L, -2, (int)i);
    }
    return 1;
}

/* poll(timeout_ms [, ids]) -> ids: the finished transfers, in a new table
 * or in `ids` (cleared first), which a loop can reuse for every round. */
static int l_poll(lua_State *L)
{
    engine *e = check_engine(L);
    lua_Integer timeout_ms = luaL_optinteger(L, 2, 0);
    drive(e, (int)(timeout_ms < 0 ? 0 : timeout_ms > 60000 ? 60000 : timeout_ms));
    lua_settop(L, 3);
    lua_remove(L, 2);
    return call_busy(L, e, UV_POLL_BODY, 2);
}

static int l_result(lua_State *L)
{
    engine *e = check_engine(L);
    transfer *t = slot_of(L, e, 2);
    if (t->state != SLOT_DONE)
        return luaL_argerror(L, 2, "transfer still running");
    return push_result(L, e);
}

static int l_cancel(lua_State *L)
{
    engine *e = check_engine(L);
    transfer *t = slot_of(L, e, 2);
    if (t->state == SLOT_RUNNING) {
        curl_multi_remove_handle(e->multi, t->easy);
        e->running--;
    }
    if (t->sink)
        fclose(t->sink);
    t->sink = NULL;
    t->state = SLOT_FREE;
    t->len = 0;
    return 0;
}

static int l_pending(lua_State *L)
{
    engine *e = check_engine(L);
    lua_pushinteger(L, (lua_Integer)e->running);
    return 1;
}

/* Frees everything the engine holds, once. */
static void engine_release(engine *e)
{
    size_t i;
    if (!e->global_init)
        return; /* never built, or already released */
    e->close_deferred = 0;
    for (i = 0; i < e->nslots; i++) {
        transfer *t = e->slots[i];
        if (t->state == SLOT_RUNNING)
            curl_multi_remove_handle(e->multi, t->easy);
        if (t->sink)
            fclose(t->sink);
        curl_easy_cleanup(t->easy);
        curl_slist_free_all(t->headers);
        free(t->body);
        free(t->url);
        free(t);
    }
    free(e->slots);
    e->slots = NULL;
    e->nslots = 0;
    if (e->multi)
        curl_multi_cleanup(e->multi);
    e->multi = NULL;
    free(e->user_agent);
    curl_slist_free_all(e->default_headers);
    e->default_headers = NULL;
    free(e->default_cainfo);
    free(e->default_capath);
    e->user_agent = e->default_cainfo = e->default_capath = NULL;
    curl_global_cleanup(); /* balances the init of l_new (libcurl counts) */
    e->global_init = 0;
}

/* close() and __close: idempotent. Called by a finalizer while a method
 * pushes values (busy), it only marks the engine closed: the method
 * releases it when it is done. */
static int l_close(lua_State *L)
{
    engine *e = luaL_checkudata(L, 1, ENGINE_MT);
    e->closed = 1;
    if (e->busy)
        e->close_deferred = 1;
    else
        engine_release(e);
    return 0;
}

/* __gc: the engine is unreachable, so no method is running on it: release. */
static int l_gc(lua_State *L)
{
    engine *e = luaL_checkudata(L, 1, ENGINE_MT);
    e->closed = 1;
    engine_release(e);
    return 0;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* Setting CURLOPT_CAINFO to NULL would disable verification's trust store,
 * so the built-in defaults are read once and set back on every request. */
static void remember_ca_defaults(engine *e)
{
    CURL *h = curl_easy_init();
    char *info = NULL, *path = NULL;
    if (!h)
        return;
    curl_easy_getinfo(h, CURLINFO_CAINFO, &info);
    curl_easy_getinfo(h, CURLINFO_CAPATH, &path);
    e->default_cainfo = dup_or_null(info);
    e->default_capath = dup_or_null(path);
    curl_easy_cleanup(h);
}

/* core.http_engine{ user_agent = "...", headers = { "A: b" }, max_host_connections = n } */
static int l_new(lua_State *L)
{
    const char *ua;
    engine *e;
    long max_host;
    if (lua_isnoneornil(L, 1))
        lua_newtable(L);
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    max_host = (long)whole_number(L, 1, "max_host_connections", 0, 0, MAX_HOST_CONNECTIONS,
                                  "[0, 65536]", 0);
    ua = opt_string(L, 1, "user_agent", "billetterie/" BT_VERSION, 0); /* 2: keeps it alive */
    lua_settop(L, 2);
    e = lua_newuserdata(L, sizeof *e); /* 3 */
    memset(e, 0, sizeof *e);
    luaL_getmetatable(L, ENGINE_MT);
    lua_setmetatable(L, -2);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        e->closed = 1;
        return luaL_error(L, "curl_global_init failed");
    }
    e->global_init = 1; /* from here __gc undoes whatever was built */
    e->multi = curl_multi_init();
    e->user_agent = strdup(ua);
    if (!e->multi || !e->user_agent)
        return luaL_error(L, "cannot create the http engine");
    remember_ca_defaults(e);
    lua_getfield(L, 1, "headers");
    if (lua_istable(L, -1)) {
        size_t i, n = bt_rawlen(L, -1);
        for (i = 1; i <= n; i++) {
            struct curl_slist *l;
            lua_rawgeti(L, -1, (int)i);
            l = curl_slist_append(e->default_headers, luaL_checkstring(L, -1));
            lua_pop(L, 1);
            if (!l)
                return luaL_error(L, "out of memory");
            e->default_headers = l;
        }
    }
    lua_pop(L, 1);
    if (max_host > 0)
        curl_multi_setopt(e->multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_host);
    return 1;
}

static int l_curl_version(lua_State *L)
{
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    return 1;
}

void bt_http_register(lua_State *L)
{
    static const luaL_Reg methods[] = { { "start", l_start },   { "wait", l_wait },
                                        { "poll", l_poll },     { "result", l_result },
                                        { "cancel", l_cancel }, { "pending", l_pending },
                                        { "close", l_close },   { NULL, NULL } };
    static const luaL_Reg no_methods[] = { { NULL, NULL } };
    size_t i;
    bt_new_class(L, ENGINE_MT, no_methods, l_close); /* engine_mt */
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, -2, "__gc");
    bt_new_class(L, CONFIG_MT, no_methods, NULL);    /* engine_mt config_mt */
    /* the methods, with their upvalues, go into engine_mt.__index */
    lua_getfield(L, -2, "__index");                  /* engine_mt config_mt index */
    lua_pushvalue(L, -3);
    lua_pushvalue(L, -3);
    for (i = 0; i < sizeof request_keys / sizeof *request_keys; i++)
        lua_pushstring(L, request_keys[i]);
    lua_pushcfunction(L, result_body);
    lua_pushcfunction(L, poll_body);
    luaL_setfuncs(L, methods, UV_COUNT - 1);         /* pops the upvalues */
    lua_pop(L, 3);
    lua_pushcfunction(L, l_new);
    lua_setfield(L, -2, "http_engine");
    lua_pushcfunction(L, l_config);
    lua_setfield(L, -2, "http_config");
    lua_pushcfunction(L, l_curl_version);
    lua_setfield(L, -2, "curl_version");
}
