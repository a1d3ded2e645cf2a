/* httpd.c: billetterie.httpd, a small HTTP/1.1 server for Lua over
 * libmicrohttpd (MHD), used by the sandbox (the local emulator of the vendor's
 * web services).
 *
 * MHD runs without threads of its own: Lua drives it with srv:run() or
 * srv:step(ms), so the Lua state is only ever touched from the calling thread,
 * inside those two calls. The Lua handler is called once a request has been
 * read in full, under lua_pcall, from a protected C function that also turns
 * its results into an MHD response: no Lua error ever longjmps through MHD.
 *
 * Per-request state is malloc'd on the first access-handler call and freed in
 * the request-completed callback.
 *
 * Fault injection (the sandbox's latency, dropped connections, truncated or
 * trickled bodies) is done here, because only the event loop can delay an
 * answer without blocking the other connections: a handler may return a
 * fourth value, { delay = ms, drop = true, send = bytes, chunk = bytes,
 * interval = ms }. A delayed connection is suspended (MHD_ALLOW_SUSPEND_RESUME)
 * and put on the server's timer list; run()/step() wake up for the nearest
 * timer and resume what is due, and MHD then calls the access handler (or the
 * body reader) again. Invariant: a request is on the timer list exactly while
 * its connection is suspended.
 */
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/select.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "compat.h"

/* -fvisibility=hidden hides everything; only luaopen_ is exported. */
#define BT_EXPORT __attribute__((visibility("default")))

#define BT_SERVER_MT "billetterie.httpd.server"
#define BT_DEFAULT_MAX_BODY ((lua_Integer)8 << 20)
#define BT_DEFAULT_TIMEOUT 30 /* seconds an idle connection is kept */
#define BT_RUN_SLICE_MS 250   /* longest delay before run() sees a signal */
#define BT_PP_BUFFER 16384    /* MHD post-processor buffer */
/* A chunked body that grows past max_body is read on and dropped for at most
 * this many more bytes, so that a client that sends it whole gets its 413;
 * past that the connection is closed: nothing is read any further. */
#define BT_DRAIN_MAX ((size_t)1 << 20)
#define BT_MAX_DELAY_MS 600000 /* longest injected delay: 10 minutes */
/* Form fields (query and body together) a request may carry: each becomes a
 * Lua table, so millions of `a=1&` in an 8 MB body would cost ~100 times
 * their size in memory. Beyond: 413, before any table is built. */
#define BT_MAX_FIELDS 10000
#define BT_STR_(x) #x
#define BT_STR(x) BT_STR_(x)
#define BT_TOO_MANY_FIELDS "too many form fields (at most " BT_STR(BT_MAX_FIELDS) ")"
/* Connections served at once; more are closed as they come. Below
 * FD_SETSIZE (select) with room to spare: the process keeps file
 * descriptors for SQLite and its own HTTP calls whatever clients hold. */
#define BT_MAX_CONNECTIONS 500
/* Per-connection memory pool of MHD (its default: 32 KiB), which holds the
 * request line, the headers and the parsed query. MHD touches all of it
 * (it zeroes the pool between requests): the worst case is this times
 * BT_MAX_CONNECTIONS, 32 MB. A query costs its text plus ~64 bytes per
 * parameter: ~800 short parameters fit; past that MHD (0.9.75) closes the
 * connection without an answer, and a longer request line gets 414. So
 * BT_MAX_FIELDS is reached by form bodies only. */
#define BT_CONN_MEMORY ((size_t)64 * 1024)

/* The one piece of process-wide mutable state. A signal handler can only
 * talk to the program through a volatile sig_atomic_t, and SIGTERM/SIGINT are
 * sent to the process, not to one server, so this cannot live in a userdata.
 * Only run() installs the handlers (and restores the previous ones when it
 * returns); it reads and clears the flag. */
static volatile sig_atomic_t bt_signal_caught = 0;

/* The first SIGINT or SIGTERM asks run() for a clean stop, which a handler
 * stuck in Lua never lets it see: the next one, of either kind, then does
 * what it would have done without us (SIG_DFL: the process ends). So both
 * go back to SIG_DFL here, not only the one that came (SA_RESETHAND);
 * sigaction is async-signal-safe. */
static void bt_on_signal(int sig)
{
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGINT, &dfl, NULL);
    sigaction(SIGTERM, &dfl, NULL);
    bt_signal_caught = sig;
}

/* ---- growable byte buffers and name/value lists (all owned copies) ---- */

typedef struct {
    char *data;
    size_t len, cap;
} bt_buf;

static int buf_append(bt_buf *b, const char *p, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *d;
        while (cap < b->len + n + 1)
            cap *= 2;
        if ((d = realloc(b->data, cap)) == NULL)
            return -1;
        b->data = d;
        b->cap = cap;
    }
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

typedef struct {
    bt_buf name, value;
} bt_pair;

typedef struct {
    bt_pair *items;
    size_t n, cap;
} bt_list;

/* A buffer holding exactly n bytes (and a NUL), for a name or a value that
 * may never grow: no rounding up, a form of short fields stays small. */
static int buf_set(bt_buf *b, const char *p, size_t n)
{
    if ((b->data = malloc(n + 1)) == NULL)
        return -1;
    if (n)
        memcpy(b->data, p, n);
    b->data[n] = '\0';
    b->len = n;
    b->cap = n + 1;
    return 0;
}

static bt_pair *list_add(bt_list *l, const char *name, size_t nlen, const char *value, size_t vlen)
{
    bt_pair *p;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        bt_pair *items = realloc(l->items, cap * sizeof *items);
        if (items == NULL)
            return NULL;
        l->items = items;
        l->cap = cap;
    }
    p = &l->items[l->n];
    memset(p, 0, sizeof *p);
    if (buf_set(&p->name, name ? name : "", name ? nlen : 0) ||
        buf_set(&p->value, value ? value : "", value ? vlen : 0)) {
        free(p->name.data);
        free(p->value.data);
        return NULL;
    }
    l->n++;
    return p;
}

static void list_free(bt_list *l)
{
    size_t i;
    for (i = 0; i < l->n; i++) {
        free(l->items[i].name.data);
        free(l->items[i].value.data);
    }
    free(l->items);
    memset(l, 0, sizeof *l);
}

/* ---- application/x-www-form-urlencoded ----
 * Parsed here rather than by MHD's post processor, which rejects a whole body
 * for a raw '=' inside a value (base64 padding, a common client slip) while
 * MHD's own query-string parser accepts it. Same rules as that parser: split
 * on '&', the first '=' ends the name, '+' is a space, a %XX that is not hex
 * stays as it is. */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes p[0..n) in place, returns the new length. */
static size_t url_unescape(char *p, size_t n)
{
    size_t i, o = 0;
    for (i = 0; i < n; i++) {
        int hi, lo;
        if (p[i] == '+') {
            p[o++] = ' ';
        } else if (p[i] == '%' && i + 2 < n && (hi = hexval(p[i + 1])) >= 0 &&
                   (lo = hexval(p[i + 2])) >= 0) {
            p[o++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            p[o++] = p[i];
        }
    }
    return o;
}

/* -> 0, -1 out of memory, -2 more than max fields */
static int parse_urlencoded(char *p, size_t n, bt_list *out, size_t max)
{
    char *end = p + n;
    while (p < end) {
        char *amp = memchr(p, '&', (size_t)(end - p));
        char *stop = amp ? amp : end;
        char *eq = memchr(p, '=', (size_t)(stop - p));
        if (stop > p) {
            char *val = eq ? eq + 1 : stop;
            size_t nlen, vlen;
            if (out->n >= max)
                return -2;
            nlen = url_unescape(p, (size_t)((eq ? eq : stop) - p));
            vlen = url_unescape(val, (size_t)(stop - val));
            if (list_add(out, p, nlen, val, vlen) == NULL)
                return -1;
        }
        if (amp == NULL)
            break;
        p = amp + 1;
    }
    return 0;
}

/* ---- per-connection state ----
 * MHD decodes the path in place and hands it over as a C string: a %00 in
 * it would cut it short (GET /ws_idsession%00junk served as /ws_idsession).
 * The unescape callback, which decodes the path and the query's names and
 * values, sees the decoded length: it notes where a NUL came out, and
 * on_access refuses the request when that is its path. Query values may hold
 * NULs (they are pushed with their length). */

typedef struct {
    /* the first (in the read buffer) string decoded with a NUL in it since
     * the last request began: the path, if it has one, comes before its
     * query; cleared by each request's first on_access */
    const char *nul_at;
} bt_conn;

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        *socket_context = calloc(1, sizeof(bt_conn)); /* NULL: on_access refuses */
    } else {
        free(*socket_context);
        *socket_context = NULL;
    }
}

static bt_conn *conn_state(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static size_t on_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    size_t len = MHD_http_unescape(s); /* what MHD does by default */
    bt_conn *c;
    (void)cls;
    if (memchr(s, '\0', len) != NULL && (c = conn_state(conn)) != NULL &&
        (c->nul_at == NULL || (uintptr_t)s < (uintptr_t)c->nul_at))
        c->nul_at = s;
    return len;
}

/* ---- per-request state ---- */

enum { BT_RAW, BT_URLENCODED, BT_MULTIPART }; /* body kinds */

typedef struct bt_server bt_server;

typedef struct bt_request {
    struct MHD_Connection *conn;
    bt_server *srv;
    struct MHD_PostProcessor *pp;        /* multipart/form-data bodies only */
    const char *method, *path, *version; /* MHD's, valid during dispatch */
    bt_list query, headers, fields;      /* fields: form body, arrival order */
    bt_buf body;                         /* raw body (urlencoded: until parsed) */
    size_t received, drained;
    int kind, too_large, answered, bad_form, oom, too_many;
    struct MHD_Response *response; /* built under pcall, queued after it */
    unsigned status;
    lua_Integer id; /* per-server sequence number */
    /* delivery options (fourth handler result) */
    int pending;             /* answer built, waiting for its delay */
    int drop;                /* close the connection instead of answering */
    int suspended;           /* on srv->timers, connection suspended */
    uint64_t due;            /* monotonic ms when the timer fires */
    struct bt_request *next; /* timer list link */
    char *out;               /* body copy for the body reader */
    size_t out_len, send;    /* send: bytes sent before closing (truncation) */
    size_t chunk;            /* trickle: bytes released per interval (0: all) */
    unsigned interval;       /* trickle: ms between chunks */
} bt_request;

static void request_free(bt_request *req)
{
    if (req == NULL)
        return;
    if (req->pp)
        MHD_destroy_post_processor(req->pp);
    if (req->response)
        MHD_destroy_response(req->response);
    list_free(&req->query);
    list_free(&req->headers);
    list_free(&req->fields);
    free(req->body.data);
    free(req->out);
    free(req);
}

struct bt_server {
    struct MHD_Daemon *daemon; /* NULL once closed */
    lua_State *L;              /* the caller's state, only during run/step */
    bt_request *cur;           /* request being dispatched */
    size_t max_body;
    lua_Integer next_id;
    char id_prefix[48]; /* X-Request-Id of answers made in C */
    int signals;        /* run() installs SIGINT/SIGTERM handlers */
    int running, stop_requested, close_requested;
    bt_request *timers; /* suspended requests, unsorted (there are few) */
};

/* ---- timers: suspended connections and when to resume them ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void timer_suspend(bt_request *req, uint64_t due)
{
    bt_server *srv = req->srv;
    MHD_suspend_connection(req->conn);
    req->suspended = 1;
    req->due = due;
    req->next = srv->timers;
    srv->timers = req;
}

/* Resumes the requests due by `now` (all of them with all = 1).
 * -> how many were resumed */
static int timers_resume(bt_server *srv, uint64_t now, int all)
{
    bt_request **p = &srv->timers;
    int n = 0;
    while (*p) {
        bt_request *req = *p;
        if (all || req->due <= now) {
            *p = req->next;
            req->next = NULL;
            req->suspended = 0;
            MHD_resume_connection(req->conn);
            n++;
        } else {
            p = &req->next;
        }
    }
    return n;
}

/* The wait before the nearest timer, capped by ms (-1: no cap). */
static int32_t timers_wait(const bt_server *srv, int32_t ms)
{
    const bt_request *req;
    uint64_t now = now_ms();
    for (req = srv->timers; req; req = req->next) {
        int32_t left = req->due > now ? (int32_t)(req->due - now) : 0;
        if (ms < 0 || left < ms)
            ms = left;
    }
    return ms;
}

/* One round of the event loop, waiting at most ms (-1: until activity),
 * and less if a timer is due sooner. A connection resumed after the wait is
 * served in a second, non-blocking round. */
static enum MHD_Result loop_round(bt_server *srv, int32_t ms)
{
    enum MHD_Result r;
    timers_resume(srv, now_ms(), 0);
    r = MHD_run_wait(srv->daemon, timers_wait(srv, ms));
    if (r == MHD_YES && srv->daemon && timers_resume(srv, now_ms(), 0) > 0)
        r = MHD_run_wait(srv->daemon, 0);
    return r;
}

/* ---- MHD callbacks: plain C, never call anything that may raise ---- */

/* MHD's post processor calls this per field, possibly several times for one
 * long value (off > 0 continues the last field). */
static enum MHD_Result on_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                const char *filename, const char *content_type,
                                const char *transfer_encoding, const char *data, uint64_t off,
                                size_t size)
{
    bt_request *req = cls;
    (void)kind;
    (void)filename;
    (void)content_type;
    (void)transfer_encoding;
    if (off > 0 && req->fields.n > 0) {
        bt_pair *last = &req->fields.items[req->fields.n - 1];
        if (buf_append(&last->value, data, size) == 0)
            return MHD_YES;
    } else if (req->fields.n >= BT_MAX_FIELDS) {
        req->too_many = 1;
        return MHD_NO;
    } else if (list_add(&req->fields, key, key ? strlen(key) : 0, data, size)) {
        return MHD_YES;
    }
    req->oom = 1;
    return MHD_NO;
}

/* MHD_get_connection_values_n only counts what it visited: a copy that
 * failed is told by `failed`. */
typedef struct {
    bt_list *list;
    int failed;
} bt_copy;

static enum MHD_Result on_value(void *cls, enum MHD_ValueKind kind, const char *key,
                                size_t key_size, const char *value, size_t value_size)
{
    bt_copy *copy = cls;
    (void)kind;
    if (list_add(copy->list, key, key_size, value, value_size))
        return MHD_YES;
    copy->failed = 1;
    return MHD_NO;
}

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlongs,
 * surrogates or code points past U+10FFFF), 0 if there is none. */
static size_t utf8_len(const unsigned char *s)
{
    size_t len = s[0] >= 0xC2 && s[0] <= 0xDF   ? 2
                 : s[0] >= 0xE0 && s[0] <= 0xEF ? 3
                 : s[0] >= 0xF0 && s[0] <= 0xF4 ? 4
                                                : 0;
    unsigned char lo = s[0] == 0xE0 ? 0xA0 : s[0] == 0xF0 ? 0x90 : 0x80;
    unsigned char hi = s[0] == 0xED ? 0x9F : s[0] == 0xF4 ? 0x8F : 0xBF;
    size_t i;
    for (i = 1; i < len; i++) /* stops at the NUL: it is no continuation */
        if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xBF))
            return 0;
    return len;
}

/* Appends s to out as the inside of a JSON string: valid UTF-8 as it is
 * (é stays é), a byte that is not as U+FFFD; out has room for 6 bytes per
 * byte of s. */
static char *json_chars(char *out, const char *s)
{
    while (*s) {
        unsigned char c = (unsigned char)*s;
        size_t len = c >= 0x80 ? utf8_len((const unsigned char *)s) : 1;
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            out += sprintf(out, "\\u%04x", c);
        } else if (len == 0) {
            out += sprintf(out, "\\ufffd");
            len = 1;
        } else {
            memcpy(out, s, len);
            out += len;
        }
        s += len;
    }
    return out;
}

/* Answers made without Lua (413, 400, 500), in the shape of the sandbox's
 * own errors: {"error":{"status":..,"message":..,"request_id":..}}, with the
 * same X-Request-Id (<prefix><id>) as the handler is expected to send.
 * message: a constant of this file. */
static enum MHD_Result reply_error(const bt_server *srv, const bt_request *req, unsigned status,
                                   const char *message)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    char id[80], body[1024], *o;
    snprintf(id, sizeof id, "%s%lld", srv->id_prefix, (long long)req->id);
    o = body + snprintf(body, 64, "{\"error\":{\"status\":%u,\"message\":\"", status);
    o = json_chars(o, message); /* id: < 80 bytes, message: short */
    o += sprintf(o, "\",\"request_id\":\"");
    o = json_chars(o, id);
    o += sprintf(o, "\"}}");
    r = MHD_create_response_from_buffer((size_t)(o - body), body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    /* without its headers the answer would lie (no JSON type, no id): close
     * the connection instead */
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                "application/json; charset=utf-8") != MHD_YES ||
        MHD_add_response_header(r, "X-Request-Id", id) != MHD_YES) {
        MHD_destroy_response(r);
        return MHD_NO;
    }
    ret = MHD_queue_response(req->conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The handler's error, on one line of stderr (a server log must not be
 * broken by multi-line messages). */
static void report_error(lua_State *L)
{
    /* only a real string: converting a number could allocate, outside pcall */
    const char *msg = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    fputs("billetterie.httpd: handler error: ", stderr);
    if (msg == NULL)
        msg = "(error object is not a string)";
    for (; *msg; msg++)
        fputc(*msg == '\n' || *msg == '\r' ? ' ' : *msg, stderr);
    fputc('\n', stderr);
    fflush(stderr);
}

/* ---- Lua side of a request, run under lua_pcall ---- */

/* name -> value; with join, repeated names are joined with ", " (headers,
 * as HTTP allows), otherwise the last one wins (query and form fields). */
static void push_list_map(lua_State *L, const bt_list *l, int join)
{
    size_t i;
    lua_createtable(L, 0, (int)l->n);
    for (i = 0; i < l->n; i++) {
        const bt_pair *p = &l->items[i];
        if (join) {
            lua_pushlstring(L, p->name.data, p->name.len);
            lua_pushvalue(L, -1);
            if (lua_rawget(L, -3) == LUA_TSTRING) {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, p->value.data, p->value.len);
                lua_concat(L, 3);
            } else {
                lua_pop(L, 1);
                lua_pushlstring(L, p->value.data, p->value.len);
            }
        } else {
            lua_pushlstring(L, p->name.data, p->name.len);
            lua_pushlstring(L, p->value.data, p->value.len);
        }
        lua_rawset(L, -3);
    }
}

static void push_params(lua_State *L, const bt_list *l, int *n)
{
    size_t i;
    for (i = 0; i < l->n; i++) {
        lua_createtable(L, 2, 0);
        lua_pushlstring(L, l->items[i].name.data, l->items[i].name.len);
        lua_rawseti(L, -2, 1);
        lua_pushlstring(L, l->items[i].value.data, l->items[i].value.len);
        lua_rawseti(L, -2, 2);
        lua_rawseti(L, -2, ++*n);
    }
}

static void push_request(lua_State *L, const bt_request *req)
{
    int n = 0;
    lua_createtable(L, 0, 8);
    lua_pushstring(L, req->method);
    lua_setfield(L, -2, "method");
    lua_pushstring(L, req->path); /* holds no NUL: on_access refused those */
    lua_setfield(L, -2, "path");
    lua_pushstring(L, req->version);
    lua_setfield(L, -2, "version");
    lua_pushinteger(L, req->id);
    lua_setfield(L, -2, "id");
    push_list_map(L, &req->query, 0);
    lua_setfield(L, -2, "query");
    push_list_map(L, &req->fields, 0);
    lua_setfield(L, -2, "form");
    lua_createtable(L, (int)(req->query.n + req->fields.n), 0);
    push_params(L, &req->query, &n);
    push_params(L, &req->fields, &n);
    lua_setfield(L, -2, "params");
    push_list_map(L, &req->headers, 1);
    lua_setfield(L, -2, "headers");
    if (req->kind == BT_RAW) {
        lua_pushlstring(L, req->body.data ? req->body.data : "", req->body.len);
        lua_setfield(L, -2, "body");
    }
}

/* Body reader of truncated and trickled answers: hands out req->out up to
 * req->send bytes (then closes the connection: the client sees a short
 * body), `chunk` bytes per `interval` ms. Between two chunks the connection
 * is suspended, not polled. */
static ssize_t body_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    bt_request *req = cls;
    uint64_t now;
    size_t n;
    if (pos >= req->send)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    n = req->send - (size_t)pos;
    if (req->chunk) {
        now = now_ms();
        if (now < req->due) {
            timer_suspend(req, req->due);
            return 0;
        }
        req->due = now + req->interval;
        if (n > req->chunk)
            n = req->chunk;
    }
    if (n > max)
        n = max;
    memcpy(buf, req->out + pos, n);
    return (ssize_t)n;
}

/* Reads { delay, drop, send, chunk, interval } at index idx.
 * -> delay in ms */
static lua_Integer read_delivery(lua_State *L, int idx, bt_request *req, size_t len)
{
    static const char *const names[] = { "delay", "send", "chunk", "interval" };
    const lua_Integer max[] = { BT_MAX_DELAY_MS, (lua_Integer)len, (lua_Integer)len + 1,
                                BT_MAX_DELAY_MS };
    lua_Integer v[4] = { 0, -1, 0, 0 };
    int i;
    for (i = 0; i < 4; i++) {
        lua_getfield(L, idx, names[i]);
        if (!lua_isnil(L, -1) &&
            (!lua_isinteger(L, -1) || (v[i] = lua_tointeger(L, -1)) < 0 || v[i] > max[i]))
            luaL_error(L, "delivery option '%s': integer from 0 to %I expected", names[i], max[i]);
        lua_pop(L, 1);
    }
    lua_getfield(L, idx, "drop");
    req->drop = lua_toboolean(L, -1);
    lua_pop(L, 1);
    req->send = v[1] < 0 ? len : (size_t)v[1];
    req->chunk = (size_t)v[2];
    req->interval = (unsigned)v[3];
    return v[0];
}

static void add_header(lua_State *L, bt_request *req, const char *name)
{
    const char *value = lua_tostring(L, -1);
    if (value == NULL)
        luaL_error(L, "header '%s': string expected, got %s", name, luaL_typename(L, -1));
    if (MHD_add_response_header(req->response, name, value) != MHD_YES)
        luaL_error(L, "header '%s': rejected (invalid name or value)", name);
}

/* Turns a handler's (status, headers, body [, delivery]), at stack indexes
 * base..base+3, into req->response. With dry set the response is made
 * without the body: only the checks count (httpd.check). Everything here may
 * raise. -> the delay in ms */
static lua_Integer build_response(lua_State *L, int base, bt_request *req, int dry)
{
    const char *body;
    size_t len;
    lua_Integer status = 0, delay = 0;
    int hdr = base + 1;

    /* 1xx are interim answers: MHD would send one and then nothing */
    if (!lua_isinteger(L, base) || (status = lua_tointeger(L, base)) < 200 || status > 599)
        luaL_error(L, "handler must return an HTTP status (200-599)");
    if (!lua_isnoneornil(L, hdr) && !lua_istable(L, hdr))
        luaL_error(L, "handler must return the headers as a table");
    if (!lua_isnoneornil(L, base + 2) && !lua_isstring(L, base + 2))
        luaL_error(L, "handler must return the body as a string");
    if (!lua_isnoneornil(L, base + 3) && !lua_istable(L, base + 3))
        luaL_error(L, "handler must return the delivery options as a table");
    body = lua_isnoneornil(L, base + 2) ? (len = 0, "") : lua_tolstring(L, base + 2, &len);

    req->status = (unsigned)status;
    req->send = len;
    if (lua_istable(L, base + 3))
        delay = read_delivery(L, base + 3, req, len);
    if (dry) {
        req->response = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    } else if (req->send < len || req->chunk) { /* served by body_reader, from a copy */
        if ((req->out = malloc(len ? len : 1)) == NULL)
            luaL_error(L, "out of memory");
        memcpy(req->out, body, len);
        req->out_len = len;
        req->response = MHD_create_response_from_callback(len, 4096, body_reader, req, NULL);
    } else {
        req->response = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    }
    if (req->response == NULL)
        luaL_error(L, "out of memory");
    if (lua_istable(L, hdr)) {
        lua_pushnil(L);
        while (lua_next(L, hdr)) {
            const char *name;
            /* type first: lua_tostring would turn a number key into a string,
             * which breaks lua_next */
            if (lua_type(L, -2) != LUA_TSTRING)
                luaL_error(L, "header names must be strings");
            name = lua_tostring(L, -2);
            if (lua_istable(L, -1)) { /* { "a", "b" }: the header repeated */
                lua_Integer i, n = (lua_Integer)bt_rawlen(L, -1);
                for (i = 1; i <= n; i++) {
                    lua_rawgeti(L, -1, i);
                    add_header(L, req, name);
                    lua_pop(L, 1);
                }
            } else {
                add_header(L, req, name);
            }
            lua_pop(L, 1);
        }
    }
    return delay;
}

/* Calls the handler with the request table and builds its answer; dispatch()
 * catches what raises. -> the delay in ms (as a Lua integer) */
static int dispatch_protected(lua_State *L)
{
    bt_server *srv = luaL_checkudata(L, 1, BT_SERVER_MT);
    bt_request *req = srv->cur;

    bt_getuservalue(L, 1);
    lua_getfield(L, -1, "handler");
    push_request(L, req);
    lua_call(L, 1, 4); /* stack: srv, uservalue, status, headers, body, delivery */
    lua_pushinteger(L, build_response(L, 3, req, 0));
    return 1;
}

static int check_protected(lua_State *L)
{
    build_response(L, 2, lua_touserdata(L, 1), 1);
    return 0;
}

/* httpd.check(status, headers, body [, delivery]) -> true, or nil, err:
 * whether a handler's results would be sent as they are, or become a 500
 * (so that a caller that records what it answers records the truth). */
static int httpd_check(lua_State *L)
{
    bt_request tmp;
    int ok;
    memset(&tmp, 0, sizeof tmp);
    lua_settop(L, 4);
    lua_pushcfunction(L, check_protected);
    lua_insert(L, 1);
    lua_pushlightuserdata(L, &tmp);
    lua_insert(L, 2);
    ok = lua_pcall(L, 5, 0, 0) == LUA_OK;
    if (tmp.response)
        MHD_destroy_response(tmp.response);
    free(tmp.out);
    if (ok) {
        lua_pushboolean(L, 1);
        return 1;
    }
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

/* Hands the built answer to MHD, or closes the connection for a drop. */
static enum MHD_Result deliver(bt_request *req)
{
    enum MHD_Result ret = MHD_NO;
    req->pending = 0;
    if (!req->drop)
        ret = MHD_queue_response(req->conn, req->status, req->response);
    MHD_destroy_response(req->response);
    req->response = NULL;
    return ret;
}

static enum MHD_Result dispatch(bt_server *srv, bt_request *req)
{
    lua_State *L = srv->L;
    lua_Integer delay = 0;
    int top;

    if (L == NULL)
        return reply_error(srv, req, 500, "server not running");
    top = lua_gettop(L);
    srv->cur = req;
    /* Index 1 of the running run()/step() frame is the server userdata; these
     * two pushes do not allocate, so nothing can raise outside the pcall. */
    lua_pushcfunction(L, dispatch_protected);
    lua_pushvalue(L, 1);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK) {
        report_error(L);
        if (req->response)
            MHD_destroy_response(req->response);
        req->response = NULL;
    } else {
        delay = lua_tointeger(L, -1);
    }
    lua_settop(L, top);
    srv->cur = NULL;
    if (req->response == NULL) {
        req->drop = 0;
        return reply_error(srv, req, 500, "internal server error");
    }
    /* now_ms() is floored: one more millisecond so an injected delay is
     * never shorter than asked. Also the first trickle chunk. */
    req->due = now_ms() + (uint64_t)delay + (delay > 0 ? 1 : 0);
    if (delay > 0) {
        /* MHD calls on_access again once the connection is resumed */
        req->pending = 1;
        timer_suspend(req, req->due);
        return MHD_YES;
    }
    return deliver(req);
}

/* MHD calls this once when the headers are in, once per chunk of body, and
 * once more (with *upload_data_size == 0) when the request is complete. */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    bt_server *srv = cls;
    bt_request *req = *con_cls;
    bt_conn *c;
    int nul;
    bt_copy query = { NULL, 0 }, headers = { NULL, 0 };
    size_t i, j;

    if (req == NULL) {
        const char *cl =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        const char *ct =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if ((req = calloc(1, sizeof *req)) == NULL)
            return MHD_NO;
        req->conn = conn;
        req->srv = srv;
        req->id = ++srv->next_id;
        *con_cls = req;
        if ((c = conn_state(conn)) == NULL) {
            req->answered = 1;
            return reply_error(srv, req, 500, "out of memory");
        }
        nul = c->nul_at == url;
        c->nul_at = NULL;
        if (nul) {
            req->answered = 1;
            return reply_error(srv, req, 400, "NUL byte in the path");
        }
        /* Refuse an announced oversized body before it is sent (this also
         * answers "Expect: 100-continue" with 413 instead of 100). */
        if (cl && strtoull(cl, NULL, 10) > srv->max_body) {
            req->too_large = req->answered = 1;
            return reply_error(srv, req, 413, "request body too large");
        }
        if (ct && strncasecmp(ct, MHD_HTTP_POST_ENCODING_FORM_URLENCODED,
                              strlen(MHD_HTTP_POST_ENCODING_FORM_URLENCODED)) == 0) {
            req->kind = BT_URLENCODED;
        } else if (ct && strncasecmp(ct, MHD_HTTP_POST_ENCODING_MULTIPART_FORMDATA,
                                     strlen(MHD_HTTP_POST_ENCODING_MULTIPART_FORMDATA)) == 0) {
            req->kind = BT_MULTIPART;
            req->pp = MHD_create_post_processor(conn, BT_PP_BUFFER, on_field, req);
            if (req->pp == NULL)
                req->bad_form = 1; /* e.g. no boundary */
        }
        return MHD_YES;
    }

    if (*upload_data_size > 0) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (n > srv->max_body - req->received)
            req->too_large = 1; /* a chunked body grew past the limit */
        if (req->too_large) {
            /* MHD (0.9.75) takes no response while a body comes in:
             * MHD_queue_response fails until the body is read. So drop what
             * comes, up to BT_DRAIN_MAX bytes for the 413, then close. */
            req->drained += n;
            return req->drained > BT_DRAIN_MAX ? MHD_NO : MHD_YES;
        }
        /* counted in every state: a malformed body is cut at max_body too */
        req->received += n;
        if (req->oom || req->bad_form || req->answered)
            return MHD_YES;
        if (req->pp) {
            if (MHD_post_process(req->pp, upload_data, n) != MHD_YES)
                req->bad_form = 1;
        } else if (buf_append(&req->body, upload_data, n)) {
            req->oom = 1;
        }
        return MHD_YES;
    }

    if (req->pending) /* resumed after its delay */
        return deliver(req);
    if (req->answered)
        return MHD_YES;
    if (req->too_large)
        return reply_error(srv, req, 413, "request body too large");
    if (req->pp) {
        if (MHD_destroy_post_processor(req->pp) != MHD_YES)
            req->bad_form = 1;
        req->pp = NULL;
    }
    if (req->kind == BT_URLENCODED && req->body.len > 0) {
        int rc = parse_urlencoded(req->body.data, req->body.len, &req->fields, BT_MAX_FIELDS);
        if (rc == -2)
            req->too_many = 1;
        else if (rc != 0)
            req->oom = 1;
        free(req->body.data); /* parsed: the fields own copies */
        memset(&req->body, 0, sizeof req->body);
    }
    if (req->too_many)
        return reply_error(srv, req, 413, BT_TOO_MANY_FIELDS);
    if (req->oom)
        return reply_error(srv, req, 500, "out of memory");
    if (req->bad_form)
        return reply_error(srv, req, 400, "malformed form body");
    query.list = &req->query;
    headers.list = &req->headers;
    MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, on_value, &query);
    if (!query.failed)
        MHD_get_connection_values_n(conn, MHD_HEADER_KIND, on_value, &headers);
    if (query.failed || headers.failed)
        return reply_error(srv, req, 500, "out of memory");
    if (req->query.n + req->fields.n > BT_MAX_FIELDS)
        return reply_error(srv, req, 413, BT_TOO_MANY_FIELDS);
    for (i = 0; i < req->headers.n; i++) { /* header names are case-blind */
        bt_buf *name = &req->headers.items[i].name;
        for (j = 0; j < name->len; j++)
            if (name->data[j] >= 'A' && name->data[j] <= 'Z')
                name->data[j] += 'a' - 'A';
    }
    req->method = method;
    req->path = url;
    req->version = version;
    return dispatch(srv, req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    bt_server *srv = cls;
    bt_request *req = *con_cls, **p;
    (void)conn;
    (void)toe;
    if (req && req->suspended) { /* never expected (see the invariant above) */
        for (p = &srv->timers; *p; p = &(*p)->next) {
            if (*p == req) {
                *p = req->next;
                break;
            }
        }
    }
    request_free(req);
    *con_cls = NULL;
}

/* ---- the server object ---- */

static bt_server *check_server(lua_State *L)
{
    return luaL_checkudata(L, 1, BT_SERVER_MT);
}

/* close, __gc and __close: one idempotent destructor. From inside a handler
 * the daemon cannot be stopped (we are in its callback), so it is deferred
 * until run()/step() returns. */
static int srv_close(lua_State *L)
{
    bt_server *srv = check_server(L);
    if (srv->running) {
        srv->stop_requested = srv->close_requested = 1;
        return 0;
    }
    if (srv->daemon) {
        /* MHD_stop_daemon must not meet a suspended connection */
        timers_resume(srv, 0, 1);
        MHD_stop_daemon(srv->daemon); /* frees open requests via on_completed */
        srv->daemon = NULL;
    }
    lua_pushnil(L);
    bt_setuservalue(L, 1); /* drops the handler */
    return 0;
}

/* Ends a run()/step(). Before stopping, the daemon gets a few non-blocking
 * rounds so that answers queued by the last handlers are written out. */
static void after_run(lua_State *L, bt_server *srv, int flush)
{
    int i;
    for (i = 0; flush && i < 3; i++)
        MHD_run_wait(srv->daemon, 0);
    srv->running = 0;
    srv->L = NULL;
    if (srv->close_requested)
        srv_close(L);
}

static int closed_error(lua_State *L)
{
    lua_pushnil(L);
    lua_pushliteral(L, "server is closed");
    return 2;
}

/* srv:step([timeout_ms]) -> true, or false once after stop(), or nil, err.
 * timeout_ms: 0 = do not wait (default), -1 = wait for activity. */
static int srv_step(lua_State *L)
{
    bt_server *srv = check_server(L);
    lua_Integer ms = luaL_optinteger(L, 2, 0);
    enum MHD_Result r;
    luaL_argcheck(L, ms >= -1 && ms <= INT32_MAX, 2, "timeout out of range");
    if (srv->daemon == NULL)
        return closed_error(L);
    if (srv->running)
        return luaL_error(L, "server is already running");
    srv->running = 1;
    srv->L = L;
    r = loop_round(srv, (int32_t)ms);
    after_run(L, srv, srv->close_requested);
    if (r != MHD_YES && srv->daemon) {
        lua_pushnil(L);
        lua_pushliteral(L, "event loop failed");
        return 2;
    }
    lua_pushboolean(L, !srv->stop_requested);
    srv->stop_requested = 0;
    return 1;
}

/* srv:run() serves until stop() or SIGINT/SIGTERM.
 * -> true, "stopped" | "SIGINT" | "SIGTERM", or nil, err. */
static int srv_run(lua_State *L)
{
    bt_server *srv = check_server(L);
    struct sigaction sa, old_int, old_term;
    int failed = 0, sig;

    if (srv->daemon == NULL)
        return closed_error(L);
    if (srv->running)
        return luaL_error(L, "server is already running");
    srv->stop_requested = 0;
    if (srv->signals) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = bt_on_signal; /* no SA_RESTART: wake the poll up */
        sa.sa_flags = 0;
        sigemptyset(&sa.sa_mask); /* both blocked in the handler: one runs */
        sigaddset(&sa.sa_mask, SIGINT);
        sigaddset(&sa.sa_mask, SIGTERM);
        bt_signal_caught = 0;
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
    }
    srv->running = 1;
    srv->L = L;
    while (!srv->stop_requested && !bt_signal_caught) {
        if (loop_round(srv, BT_RUN_SLICE_MS) != MHD_YES && !bt_signal_caught) {
            failed = 1;
            break;
        }
    }
    sig = srv->signals ? bt_signal_caught : 0;
    after_run(L, srv, !failed);
    if (srv->signals) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
        bt_signal_caught = 0;
    }
    srv->stop_requested = 0;
    if (failed) {
        lua_pushnil(L);
        lua_pushliteral(L, "event loop failed");
        return 2;
    }
    lua_pushboolean(L, 1);
    lua_pushstring(L, sig == SIGINT ? "SIGINT" : sig ? "SIGTERM" : "stopped");
    return 2;
}

/* srv:stop(): run() returns (and step() returns false) after this request. */
static int srv_stop(lua_State *L)
{
    check_server(L)->stop_requested = 1;
    return 0;
}

static int srv_port(lua_State *L)
{
    bt_server *srv = check_server(L);
    const union MHD_DaemonInfo *info;
    if (srv->daemon == NULL)
        return closed_error(L);
    info = MHD_get_daemon_info(srv->daemon, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "port unknown");
        return 2;
    }
    lua_pushinteger(L, info->port);
    return 1;
}

static int srv_tostring(lua_State *L)
{
    bt_server *srv = check_server(L);
    lua_pushfstring(L, "billetterie.httpd server (%s)", srv->daemon ? "open" : "closed");
    return 1;
}

/* Resolves host (a literal address or a name) for MHD_OPTION_SOCK_ADDR. */
static int resolve(const char *host, int port, struct sockaddr_storage *ss, const char **err)
{
    struct addrinfo hints, *res = NULL;
    int rc;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0) {
        *err = gai_strerror(rc);
        return -1;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else {
        *err = "unsupported address family";
        return -1;
    }
    return 0;
}

/* httpd.new{ host=, port=, handler=, max_body=, timeout=, signals=,
 *            request_id_prefix= }
 * -> server, or nil, err when it cannot listen. */
static int httpd_new(lua_State *L)
{
    const char *host, *prefix, *err = NULL;
    size_t prefix_len;
    lua_Integer port, max_body, timeout;
    int signals;
    unsigned int flags = MHD_ALLOW_SUSPEND_RESUME;
    struct sockaddr_storage ss;
    bt_server *srv;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "host");
    host = luaL_optstring(L, -1, "127.0.0.1");
    lua_getfield(L, 1, "port");
    port = luaL_optinteger(L, -1, 0);
    lua_getfield(L, 1, "max_body");
    max_body = luaL_optinteger(L, -1, BT_DEFAULT_MAX_BODY);
    lua_getfield(L, 1, "timeout");
    timeout = luaL_optinteger(L, -1, BT_DEFAULT_TIMEOUT);
    lua_getfield(L, 1, "request_id_prefix");
    prefix = luaL_optlstring(L, -1, "req-", &prefix_len);
    lua_getfield(L, 1, "signals");
    signals = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
    lua_getfield(L, 1, "handler");
    if (!lua_isfunction(L, -1))
        return luaL_argerror(L, 1, "'handler' must be a function");
    if (port < 0 || port > 65535)
        return luaL_argerror(L, 1, "'port' out of range");
    if (max_body < 0)
        return luaL_argerror(L, 1, "'max_body' must be >= 0");
    if (prefix_len >= sizeof(((bt_server *)0)->id_prefix))
        return luaL_argerror(L, 1, "'request_id_prefix' too long");
    if (timeout < 0 || timeout > 86400)
        return luaL_argerror(L, 1, "'timeout' out of range");

    if (resolve(host, (int)port, &ss, &err) != 0) {
        lua_pushnil(L);
        lua_pushfstring(L, "cannot resolve '%s': %s", host, err);
        return 2;
    }
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* select(), not epoll: with MHD_USE_EPOLL (0.9.75) a request sent with
     * its FIN leaves the connection open until the timeout; MHD_USE_POLL
     * needs MHD's own thread. select() serves fds below FD_SETSIZE, above
     * BT_MAX_CONNECTIONS. */

    srv = bt_newuserdata(L, sizeof *srv);
    memset(srv, 0, sizeof *srv);
    srv->max_body = (size_t)max_body;
    srv->signals = signals;
    memcpy(srv->id_prefix, prefix, prefix_len + 1);
    luaL_setmetatable(L, BT_SERVER_MT);
    lua_createtable(L, 0, 1); /* uservalue: keeps the handler alive */
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "handler");
    bt_setuservalue(L, -2);

    errno = 0;
    srv->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_access, srv, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)timeout,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)BT_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)BT_CONN_MEMORY, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, srv, MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
        MHD_OPTION_UNESCAPE_CALLBACK, on_unescape, NULL, MHD_OPTION_END);
    if (srv->daemon == NULL) {
        int e = errno, fd;
        lua_pushnil(L);
        /* MHD says nothing when its listening socket is past select()'s
         * reach: see whether the next descriptor would be */
        if (e == 0 && (fd = socket(ss.ss_family, SOCK_STREAM, 0)) >= 0) {
            if (fd >= FD_SETSIZE)
                lua_pushfstring(L,
                                "cannot listen on %s:%d: too many open files for select(): "
                                "the socket would be descriptor %d, select() serves 0 to %d",
                                host, (int)port, fd, FD_SETSIZE - 1);
            close(fd);
            if (fd >= FD_SETSIZE)
                return 2;
        }
        lua_pushfstring(L, "cannot listen on %s:%d: %s", host, (int)port,
                        e ? strerror(e) : "MHD_start_daemon failed");
        return 2;
    }
    return 1;
}

/* httpd.time() -> the wall clock in seconds, with sub-millisecond digits
 * (os.time has whole seconds, os.clock is CPU time). */
static int httpd_time(lua_State *L)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9);
    return 1;
}

static const luaL_Reg server_methods[] = { { "run", srv_run },     { "step", srv_step },
                                           { "stop", srv_stop },   { "port", srv_port },
                                           { "close", srv_close }, { NULL, NULL } };

BT_EXPORT int luaopen_billetterie_httpd(lua_State *L);

BT_EXPORT int luaopen_billetterie_httpd(lua_State *L)
{
    bt_new_class(L, BT_SERVER_MT, server_methods, srv_close);
    lua_pushcfunction(L, srv_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    lua_createtable(L, 0, 4);
    lua_pushcfunction(L, httpd_new);
    lua_setfield(L, -2, "new");
    lua_pushcfunction(L, httpd_check);
    lua_setfield(L, -2, "check");
    lua_pushcfunction(L, httpd_time);
    lua_setfield(L, -2, "time");
    lua_pushstring(L, MHD_get_version());
    lua_setfield(L, -2, "mhd_version");
    return 1;
}
