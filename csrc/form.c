/* form.c: application/x-www-form-urlencoded, UTF-8, the PHP bracket way the
 * vendor reads it. Order is deterministic so a request can be logged,
 * compared and replayed: top-level keys sorted, arrays in index order
 * (liste[]=12&liste[]=13), maps by sorted key (liste_maj_code_envoi[145]=1).
 * Numbers with an integer value are written without a decimal part, so an id
 * that went through a float (LuaJIT, or an unrestored cjson value) still goes
 * on the wire as the vendor wrote it. Other numbers are written with the
 * fewest digits that read back to the same double (12.3, not the %.17g
 * 12.300000000000001), and -0 as "0" (a sign on zero means nothing to the
 * vendor's integer fields). Map keys are integers (exact on Lua 5.4, even
 * above 2^53) or strings; a non-integer number key is refused.
 * A table's shape cannot tell a map from an array ({ [1] = 2 } is both), so
 * the caller names the fields the catalogue types as maps (the third
 * argument): those are always written name[key]=v, whatever their keys.
 *
 * Scratch memory is on the C stack, or in userdata at fixed stack slots when
 * it grows (never malloc), so a luaL_error for a programmer mistake cannot
 * leak; luaL_Buffer is not used because it forbids touching the stack
 * between additions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "core.h"

/* Output starts in a buffer inside the struct (a form is usually short)
 * and moves to a userdata at a reserved stack slot when it grows. */
typedef struct {
    lua_State *L;
    int slot; /* stack index reserved for the userdata holding data */
    char *data;
    size_t len, cap;
    char inline_data[1024];
} out_buf;

static void out_init(lua_State *L, out_buf *o)
{
    o->L = L;
    o->cap = sizeof o->inline_data;
    o->len = 0;
    o->data = o->inline_data;
    lua_pushnil(L);
    o->slot = lua_gettop(L);
}

static void out_reserve(out_buf *o, size_t extra)
{
    if (o->len + extra > o->cap) {
        size_t cap = o->cap;
        char *data;
        while (o->len + extra > cap)
            cap *= 2;
        data = lua_newuserdata(o->L, cap);
        memcpy(data, o->data, o->len);
        lua_replace(o->L, o->slot);
        o->data = data;
        o->cap = cap;
    }
}

static void out_add(out_buf *o, const char *s, size_t len)
{
    out_reserve(o, len);
    memcpy(o->data + o->len, s, len);
    o->len += len;
}

static void out_escaped(out_buf *o, const char *s, size_t len, int keep_brackets)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i;
    out_reserve(o, len * 3);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '*' ||
            (keep_brackets && (c == '[' || c == ']'))) {
            o->data[o->len++] = (char)c;
        } else if (c == ' ') {
            o->data[o->len++] = '+';
        } else {
            o->data[o->len++] = '%';
            o->data[o->len++] = hex[c >> 4];
            o->data[o->len++] = hex[c & 15];
        }
    }
}

/* "%lld" without the printf machinery: ids are on every request. */
static int format_integer(char *buf, size_t size, long long v)
{
    char digits[24];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int n = 0, w = 0;
    do {
        digits[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (size < (size_t)n + 2)
        return snprintf(buf, size, "%lld", v);
    if (v < 0)
        buf[w++] = '-';
    while (n)
        buf[w++] = digits[--n];
    buf[w] = '\0';
    return w;
}

/* The shortest of %.15g, %.16g, %.17g that reads back as d (%.17g always
 * does), so 12.3 stays "12.3". */
static int shortest_double(char *buf, size_t size, double d)
{
    int digits, w = 0;
    for (digits = 15; digits <= 17; digits++) {
        w = snprintf(buf, size, "%.*g", digits, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return w;
}

/* The text of the scalar at idx (buf holds numbers); 0 on success, -1 when
 * the value cannot go in a form. */
static int scalar_text(lua_State *L, int idx, char *buf, size_t size, const char **text,
                       size_t *len)
{
    switch (lua_type(L, idx)) {
    case LUA_TSTRING:
        *text = lua_tolstring(L, idx, len);
        return 0;
    case LUA_TBOOLEAN: /* the spec's booleans are 0/1 on input */
        *text = lua_toboolean(L, idx) ? "1" : "0";
        *len = 1;
        return 0;
    case LUA_TNUMBER: {
        lua_Number n = lua_tonumber(L, idx);
        int w;
        if (bt_isinteger(L, idx))
            w = format_integer(buf, size, (long long)lua_tointeger(L, idx));
        else if (n == 0)
            w = snprintf(buf, size, "0"); /* -0 too */
        else if (n == floor(n) && fabs(n) <= 9223372036854775808.0)
            w = snprintf(buf, size, "%.0f", (double)n); /* exact, no exponent, up to 2^63 */
        else if (isfinite(n))
            w = shortest_double(buf, size, (double)n);
        else
            return -1;
        *text = buf;
        *len = (size_t)w;
        return 0;
    }
    default:
        return -1;
    }
}

/* One sortable key of a table; string pointers stay valid because the table
 * holding the keys stays on the stack. */
typedef struct {
    int is_number;
#if BT_HAS_INTEGERS
    lua_Integer number; /* exact, even above 2^53 */
#else
    lua_Number number; /* integral and finite (checked) */
#endif
    const char *str;
    size_t len;
} sort_key;

static int sort_key_cmp(const void *pa, const void *pb)
{
    const sort_key *a = pa, *b = pb;
    size_t n;
    int c;
    if (a->is_number != b->is_number)
        return a->is_number ? -1 : 1;
    if (a->is_number)
        return (a->number > b->number) - (a->number < b->number);
    n = a->len < b->len ? a->len : b->len;
    c = memcmp(a->str, b->str, n);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

#define FEW_KEYS 32

/* Collects and sorts the keys of the table at idx, into `few` when they fit
 * and else into a userdata; either way it pushes one value (nil or the
 * userdata) so the stack has the same shape. Keys other than strings and
 * numbers are a programmer mistake. */
static sort_key *sorted_keys(lua_State *L, int idx, const char *field, sort_key *few,
                             size_t *count)
{
    size_t n = 0, i = 0;
    sort_key *keys;
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        n++;
        lua_pop(L, 1);
    }
    if (n <= FEW_KEYS) {
        keys = few;
        lua_pushnil(L);
    } else {
        keys = lua_newuserdata(L, n * sizeof *keys);
    }
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TNUMBER) {
#if BT_HAS_INTEGERS
            /* float keys with an integral value are integers in a 5.4 table */
            if (!lua_isinteger(L, -1))
#else
            lua_Number k = lua_tonumber(L, -1);
            if (k != floor(k) || !isfinite(k))
#endif
                luaL_error(L, "form field %s: number keys must be integers, not %s",
                           field ? field : "(top level)", lua_tostring(L, -1));
            keys[i].is_number = 1;
#if BT_HAS_INTEGERS
            keys[i].number = lua_tointeger(L, -1);
#else
            keys[i].number = k;
#endif
            keys[i].str = NULL;
            keys[i].len = 0;
        } else if (lua_type(L, -1) == LUA_TSTRING) {
            keys[i].is_number = 0;
            keys[i].number = 0;
            keys[i].str = lua_tolstring(L, -1, &keys[i].len);
        } else {
            luaL_error(L, "form field %s: keys must be strings or numbers, not %s",
                       field ? field : "(top level)", luaL_typename(L, -1));
        }
        i++;
    }
    qsort(keys, n, sizeof *keys, sort_key_cmp);
    *count = n;
    return keys;
}

/* Pushes the key described by k. */
static void push_key(lua_State *L, const sort_key *k)
{
    if (k->is_number) {
#if BT_HAS_INTEGERS
        lua_pushinteger(L, k->number);
#else
        lua_pushnumber(L, k->number);
#endif
    } else {
        lua_pushlstring(L, k->str, k->len);
    }
}

static void add_pair(lua_State *L, out_buf *o, const char *name, size_t namelen, const char *sub,
                     size_t sublen, int bracket, int value_idx)
{
    char num[64];
    const char *text;
    size_t len;
    if (scalar_text(L, value_idx, num, sizeof num, &text, &len) != 0)
        luaL_error(L, "form field %s: cannot encode a %s", name, luaL_typename(L, value_idx));
    if (o->len)
        out_add(o, "&", 1);
    out_escaped(o, name, namelen, 1); /* a caller's own "liste[]" stays readable */
    if (bracket) {
        out_add(o, "[", 1);
        out_escaped(o, sub, sublen, 0);
        out_add(o, "]", 1);
    }
    out_add(o, "=", 1);
    out_escaped(o, text, len, 0);
}

/* A table value under `name`: a sequence gives name[]=v, anything else (or
 * any table when `keyed`: a map by the catalogue) name[key]=v by sorted key.
 * One level only: the vendor reads no deeper. */
static void add_table(lua_State *L, out_buf *o, const char *name, size_t namelen, int tidx,
                      int keyed)
{
    size_t n = bt_rawlen(L, tidx), count, i;
    sort_key few[FEW_KEYS], *keys;
    int top = lua_gettop(L);
    keys = sorted_keys(L, tidx, name, few, &count);
    if (!keyed && n > 0 && count == n) { /* a proper sequence */
        for (i = 1; i <= n; i++) {
            lua_rawgeti(L, tidx, (int)i);
            if (lua_type(L, -1) == LUA_TTABLE)
                luaL_error(L, "form field %s: nested tables are not supported", name);
            add_pair(L, o, name, namelen, "", 0, 1, lua_gettop(L));
            lua_pop(L, 1);
        }
    } else {
        for (i = 0; i < count; i++) {
            char num[64];
            const char *sub;
            size_t sublen;
            push_key(L, &keys[i]);
            lua_pushvalue(L, -1);
            lua_rawget(L, tidx);
            if (lua_type(L, -1) == LUA_TTABLE)
                luaL_error(L, "form field %s: nested tables are not supported", name);
            scalar_text(L, -2, num, sizeof num, &sub, &sublen);
            add_pair(L, o, name, namelen, sub, sublen, 1, lua_gettop(L));
            lua_pop(L, 2);
        }
    }
    lua_settop(L, top);
}

/* form_encode(fields [, prefix [, maps]]) -> "a=1&b%5B%5D=..."
 * prefix: text already encoded (a client's credentials, encoded once) that
 * goes first, joined with '&' when fields is not empty. maps: a set of
 * field names ({ liste_maj_code_envoi = true }) whose tables are maps. */
static int l_form_encode(lua_State *L)
{
    out_buf o;
    sort_key few[FEW_KEYS], *keys;
    size_t count, i, prefix_len = 0;
    const char *prefix;
    int maps;
    luaL_checktype(L, 1, LUA_TTABLE);
    prefix = luaL_optlstring(L, 2, NULL, &prefix_len);
    if (!lua_isnoneornil(L, 3))
        luaL_checktype(L, 3, LUA_TTABLE);
    lua_settop(L, 3);
    maps = lua_istable(L, 3);
    out_init(L, &o);                             /* slot 4 */
    keys = sorted_keys(L, 1, NULL, few, &count); /* slot 5 */
    if (prefix)
        out_add(&o, prefix, prefix_len);
    for (i = 0; i < count; i++) {
        const char *name;
        size_t namelen;
        if (keys[i].is_number)
            luaL_error(L, "form fields need string names, got a number key");
        name = keys[i].str;
        namelen = keys[i].len;
        lua_pushlstring(L, name, namelen);
        lua_rawget(L, 1);
        if (lua_type(L, -1) == LUA_TTABLE) {
            int keyed = 0;
            if (maps) {
                lua_pushlstring(L, name, namelen);
                lua_rawget(L, 3);
                keyed = lua_toboolean(L, -1);
                lua_pop(L, 1);
            }
            add_table(L, &o, name, namelen, lua_gettop(L), keyed);
        } else
            add_pair(L, &o, name, namelen, NULL, 0, 0, lua_gettop(L));
        lua_pop(L, 1);
    }
    lua_pushlstring(L, o.data, o.len);
    return 1;
}

/* form_escape(s) -> s percent-encoded for a query or form value. */
static int l_form_escape(lua_State *L)
{
    size_t len;
    const char *s = luaL_checklstring(L, 1, &len);
    out_buf o;
    lua_settop(L, 1);
    out_init(L, &o);
    out_escaped(&o, s, len, 0);
    lua_pushlstring(L, o.data, o.len);
    return 1;
}

void bt_form_register(lua_State *L)
{
    static const luaL_Reg fns[] = { { "form_encode", l_form_encode },
                                    { "form_escape", l_form_escape },
                                    { NULL, NULL } };
    luaL_setfuncs(L, fns, 0);
}
