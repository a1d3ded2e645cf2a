/* xml_write.c: Lua element tables to XML text with libxml2's xmlTextWriter.
 *
 *   core.xml_encode(element [, { declaration = true | "standalone",
 *                                indent = true, max_depth = 256 }])
 *     -> text | nil, message
 *
 * declaration: true writes <?xml version="1.0" encoding="UTF-8"?> and a
 * newline first; "standalone" adds standalone="yes" (the vendor's NOTIFY).
 * indent: one element per line, four spaces a level (the vendor's
 * examples); a text-only element stays on its line, and the text ends with
 * a newline. libxml2 would indent inside mixed content (text and elements
 * under one element) and so change its text: with indent, mixed content is
 * refused. Without indent (the default) no whitespace is added.
 *
 * element = { name = "local", ns = "uri" or nil, prefix = "p" or nil,
 *             attrs = { [name] = "value" } or nil,
 *             [1..n] = child elements or text strings }
 * (the form core.xml_decode(text, { elements = true }) returns, see xml.c).
 *
 * Namespaces: an element with `ns` is written prefixed. The prefix is
 * `prefix` when given, else the one already bound to that URI in scope,
 * else a fresh "ns1", "ns2"...; xmlns:p is declared on the element where the
 * binding is first needed, so children reuse their ancestors' declarations.
 * Default namespaces are never declared, so an element without `ns` is in
 * no namespace. Attributes are written in name order (stable output).
 *
 * Bad data (invalid UTF-8, strictly: no overlong form, surrogate or code
 * point past U+10FFFF; control characters; a name that is not an XML name or
 * holds a NUL byte; an attribute "p:x" whose prefix no xmlns:p declares on
 * the element or above, "xml:" aside; a child that is neither a table nor a
 * string; a cycle or nesting deeper than max_depth, itself at most 256)
 * gives nil, message and no partial text. Escaping
 * of text and attribute values is libxml2's. The writer and its buffer are
 * owned by a userdata, so a Lua memory error on the way cannot leak them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/tree.h>
#include <libxml/xmlwriter.h>

#include "core.h"

#define XW_MT "billetterie.xml_writer"
#define XW_DEFAULT_DEPTH 256
/* write_element recurses in C: the cap keeps a cycle or an absurd tree from
 * overflowing the C stack (the decoder stops at libxml2's 256 too) */
#define XW_MAX_DEPTH 256

typedef struct {
    const char *prefix, *uri; /* strings kept alive by the element tables */
    int owned;                /* prefix is a malloc'ed generated name */
} binding;

typedef struct {
    xmlBufferPtr buf;
    xmlTextWriterPtr w;
    binding *scope; /* in-scope namespace bindings, innermost last */
    int nscope, capscope;
    int counter, max_depth, indent;
    char err[200];
} xwriter;

static void xw_release(xwriter *x)
{
    int i;
    if (x->w) {
        xmlFreeTextWriter(x->w);
        x->w = NULL;
    }
    if (x->buf) {
        xmlBufferFree(x->buf);
        x->buf = NULL;
    }
    for (i = 0; i < x->nscope; i++)
        if (x->scope[i].owned)
            free((char *)x->scope[i].prefix);
    free(x->scope);
    x->scope = NULL;
    x->nscope = x->capscope = 0;
}

static int l_writer_gc(lua_State *L)
{
    xw_release(luaL_checkudata(L, 1, XW_MT));
    return 0;
}

/* Text must be strict UTF-8 (no overlong form, no surrogate, nothing past
 * U+10FFFF: xmlCheckUTF8 lets all three through) and hold only characters
 * XML 1.0 allows: no NUL or other C0 control but tab, newline and carriage
 * return, no U+FFFE or U+FFFF. */
static int valid_text(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t i = 0, k, n;
    if (len > (size_t)0x7fffffff)
        return 0;
    while (i < len) {
        unsigned long cp = s[i], min;
        if (cp < 0x80) {
            if (cp < 0x20 && cp != '\t' && cp != '\n' && cp != '\r')
                return 0;
            i++;
            continue;
        }
        if (cp >= 0xC2 && cp <= 0xDF) { /* C0 and C1 would be overlong */
            n = 1;
            cp &= 0x1F;
            min = 0x80;
        } else if (cp >= 0xE0 && cp <= 0xEF) {
            n = 2;
            cp &= 0x0F;
            min = 0x800;
        } else if (cp >= 0xF0 && cp <= 0xF4) {
            n = 3;
            cp &= 0x07;
            min = 0x10000;
        } else {
            return 0; /* a continuation byte first, or a lead past U+10FFFF */
        }
        if (len - i <= n)
            return 0; /* truncated sequence */
        for (k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0xFFFE ||
            cp == 0xFFFF)
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Records the first error. The detail (a name from the caller's data) is
 * shown as is where it is valid text, and byte by byte as \xHH where it is
 * not UTF-8 or is a control character: a message never carries invalid
 * bytes on to a log or a terminal. */
static int fail(xwriter *x, const char *what, const char *detail)
{
    char safe[96];
    size_t i = 0, w = 0, len = detail ? strlen(detail) : 0;
    if (x->err[0])
        return 0;
    while (i < len && w + 8 < sizeof safe) {
        unsigned char c = (unsigned char)detail[i];
        size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
        if (c >= 0x80 && n <= len - i && valid_text(detail + i, n)) {
            if (w + n >= sizeof safe)
                break;
            memcpy(safe + w, detail + i, n);
            w += n;
            i += n;
        } else if (c < 0x20 || c >= 0x7F) {
            w += (size_t)snprintf(safe + w, sizeof safe - w, "\\x%02X", c);
            i++;
        } else {
            safe[w++] = (char)c;
            i++;
        }
    }
    if (i < len) /* too long to show whole */
        w += (size_t)snprintf(safe + w, sizeof safe - w, "...");
    safe[w] = '\0';
    snprintf(x->err, sizeof x->err, "%s%s%s", what, detail ? ": " : "", detail ? safe : "");
    return 0;
}

/* t[key] if it is a string (kept alive by the element table), else NULL;
 * *bad = 1 for another type, 2 for a string with a NUL byte (C would cut it
 * there without a word). */
static const char *field_string(lua_State *L, int t, const char *key, int *bad)
{
    const char *s = NULL;
    size_t len;
    lua_getfield(L, t, key);
    if (lua_type(L, -1) == LUA_TSTRING) {
        s = lua_tolstring(L, -1, &len);
        if (strlen(s) != len)
            *bad = 2;
    } else if (!lua_isnil(L, -1)) {
        *bad = 1;
    }
    lua_pop(L, 1);
    return s;
}

static const char *bound_prefix(xwriter *x, const char *uri)
{
    int i;
    for (i = x->nscope - 1; i >= 0; i--)
        if (strcmp(x->scope[i].uri, uri) == 0) {
            /* a later binding of the same prefix to another URI hides it */
            int j, hidden = 0;
            for (j = i + 1; j < x->nscope; j++)
                if (strcmp(x->scope[j].prefix, x->scope[i].prefix) == 0)
                    hidden = 1;
            if (!hidden)
                return x->scope[i].prefix;
        }
    return NULL;
}

static int prefix_in_scope(xwriter *x, const char *prefix)
{
    int i;
    for (i = 0; i < x->nscope; i++)
        if (strcmp(x->scope[i].prefix, prefix) == 0)
            return 1;
    return 0;
}

/* Whether the prefix of attribute name "p:x" is bound here or above ("xml"
 * always is); a name without a prefix needs nothing. */
static int prefix_declared(xwriter *x, const char *name)
{
    const char *colon = strchr(name, ':');
    int i;
    size_t n;
    if (colon == NULL)
        return 1;
    n = (size_t)(colon - name);
    if (n == 3 && strncmp(name, "xml", 3) == 0)
        return 1;
    for (i = 0; i < x->nscope; i++)
        if (strlen(x->scope[i].prefix) == n && strncmp(x->scope[i].prefix, name, n) == 0)
            return 1;
    return 0;
}

static int push_binding(lua_State *L, xwriter *x, const char *prefix, const char *uri, int owned)
{
    if (x->nscope == x->capscope) {
        int cap = x->capscope ? 2 * x->capscope : 8;
        binding *p = realloc(x->scope, (size_t)cap * sizeof *p);
        if (p == NULL) {
            if (owned)
                free((char *)prefix);
            luaL_error(L, "not enough memory");
        }
        x->scope = p;
        x->capscope = cap;
    }
    x->scope[x->nscope].prefix = prefix;
    x->scope[x->nscope].uri = uri;
    x->scope[x->nscope].owned = owned;
    x->nscope++;
    return 1;
}

static void pop_bindings(xwriter *x, int to)
{
    while (x->nscope > to) {
        x->nscope--;
        if (x->scope[x->nscope].owned)
            free((char *)x->scope[x->nscope].prefix);
    }
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Writes the attributes of the element table at t (attrs at stack index a). */
static int write_attrs(lua_State *L, xwriter *x, int a)
{
    const char **names;
    size_t n = 0, i;
    lua_pushnil(L);
    while (lua_next(L, a)) {
        lua_pop(L, 1);
        n++;
    }
    if (n == 0)
        return 1;
    /* scratch array owned by Lua: freed even if an error unwinds */
    names = bt_newuserdata(L, n * sizeof *names);
    n = 0;
    lua_pushnil(L);
    while (lua_next(L, a)) {
        size_t len;
        const char *v;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING) {
            lua_pop(L, 3);
            return fail(x, "attribute names and values must be strings", NULL);
        }
        v = lua_tolstring(L, -1, &len);
        if (!valid_text(v, len)) {
            const char *k = lua_tostring(L, -2);
            lua_pop(L, 3);
            return fail(x, "invalid UTF-8 or control character in attribute", k);
        }
        names[n] = lua_tolstring(L, -2, &len);
        if (strlen(names[n]) != len) {
            const char *k = names[n];
            lua_pop(L, 3);
            return fail(x, "NUL byte in attribute name", k);
        }
        if (!valid_text(names[n], len)) { /* before libxml2 sees it */
            const char *k = names[n];
            lua_pop(L, 3);
            return fail(x, "not an XML attribute name", k);
        }
        n++;
        lua_pop(L, 1);
    }
    qsort(names, n, sizeof *names, cmp_names);
    for (i = 0; i < n; i++) {
        if (xmlValidateQName((const xmlChar *)names[i], 0) != 0 ||
            strncmp(names[i], "xmlns", 5) == 0) {
            lua_pop(L, 1);
            return fail(x, "not an XML attribute name", names[i]);
        }
        if (!prefix_declared(x, names[i])) {
            lua_pop(L, 1);
            return fail(x, "undeclared attribute prefix (no xmlns:prefix here or above)", names[i]);
        }
        lua_getfield(L, a, names[i]);
        if (xmlTextWriterWriteAttribute(x->w, (const xmlChar *)names[i],
                                        (const xmlChar *)lua_tostring(L, -1)) < 0) {
            lua_pop(L, 2);
            return fail(x, "libxml2 could not write an attribute", names[i]);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1); /* names */
    return 1;
}

/* Writes the element table at stack index t. Returns 1, or 0 with x->err. */
static int write_element(lua_State *L, xwriter *x, int t, int depth)
{
    const char *name, *ns, *prefix, *use = NULL;
    int bad = 0, rc, i, n, mark = x->nscope, declare = 0, texts = 0, elements = 0;
    if (depth > x->max_depth) {
        char msg[64];
        snprintf(msg, sizeof msg, "element nesting deeper than %d (or a cycle)", x->max_depth);
        return fail(x, msg, NULL);
    }
    if (!lua_checkstack(L, 10))
        return fail(x, "element nesting too deep for the Lua stack", NULL);
    name = field_string(L, t, "name", &bad);
    ns = field_string(L, t, "ns", &bad);
    prefix = field_string(L, t, "prefix", &bad);
    if (bad == 2)
        return fail(x, "NUL byte in the name, ns or prefix of element", name);
    if (bad || name == NULL)
        return fail(x, "an element needs a string name (and string ns, prefix)", name);
    /* strict UTF-8 first: libxml2's name check prints to stderr otherwise */
    if (!valid_text(name, strlen(name)) || xmlValidateNCName((const xmlChar *)name, 0) != 0)
        return fail(x, "not an XML element name", name);
    if (ns != NULL) {
        size_t len = strlen(ns);
        if (len == 0 || !valid_text(ns, len))
            return fail(x, "invalid namespace URI on element", name);
        if (prefix != NULL) {
            if (!valid_text(prefix, strlen(prefix)) ||
                xmlValidateNCName((const xmlChar *)prefix, 0) != 0 ||
                strncmp(prefix, "xml", 3) == 0)
                return fail(x, "not a usable namespace prefix", prefix);
            use = prefix;
            declare = bound_prefix(x, ns) == NULL || strcmp(bound_prefix(x, ns), prefix) != 0;
            if (declare)
                push_binding(L, x, prefix, ns, 0);
        } else if ((use = bound_prefix(x, ns)) == NULL) {
            char gen[24];
            char *copy;
            do
                snprintf(gen, sizeof gen, "ns%d", ++x->counter);
            while (prefix_in_scope(x, gen));
            if ((copy = malloc(strlen(gen) + 1)) == NULL)
                luaL_error(L, "not enough memory");
            strcpy(copy, gen);
            push_binding(L, x, copy, ns, 1);
            use = copy;
            declare = 1;
        }
        /* Lua strings: no length limit, freed even if an error unwinds */
        rc = xmlTextWriterStartElement(x->w, (const xmlChar *)lua_pushfstring(L, "%s:%s", use, name));
        lua_pop(L, 1);
    } else {
        rc = xmlTextWriterStartElement(x->w, (const xmlChar *)name);
    }
    if (rc < 0)
        return fail(x, "libxml2 could not start element", name);
    if (declare) {
        rc = xmlTextWriterWriteAttribute(x->w, (const xmlChar *)lua_pushfstring(L, "xmlns:%s", use),
                                         (const xmlChar *)ns);
        lua_pop(L, 1);
        if (rc < 0)
            return fail(x, "libxml2 could not declare a namespace", use);
    }
    lua_getfield(L, t, "attrs");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            return fail(x, "attrs must be a table on element", name);
        if (!write_attrs(L, x, lua_gettop(L)))
            return 0;
    }
    lua_pop(L, 1);
    n = (int)bt_rawlen(L, t);
    for (i = 1; i <= n; i++) {
        lua_rawgeti(L, t, i);
        if (lua_type(L, -1) == LUA_TSTRING) {
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            if (!valid_text(s, len))
                return fail(x, "invalid UTF-8 or control character in the text of", name);
            if (x->indent && elements)
                return fail(x, "indent cannot write mixed content (text and elements), in", name);
            texts++;
            if (xmlTextWriterWriteString(x->w, (const xmlChar *)s) < 0)
                return fail(x, "libxml2 could not write the text of", name);
        } else if (lua_istable(L, -1)) {
            if (x->indent && texts)
                return fail(x, "indent cannot write mixed content (text and elements), in", name);
            elements++;
            if (!write_element(L, x, lua_gettop(L), depth + 1))
                return 0;
        } else {
            return fail(x, "children must be element tables or strings, in", name);
        }
        lua_pop(L, 1);
    }
    /* <a></a> rather than <a/> for an element with an empty text child */
    rc = n > 0 ? xmlTextWriterFullEndElement(x->w) : xmlTextWriterEndElement(x->w);
    if (rc < 0)
        return fail(x, "libxml2 could not end element", name);
    pop_bindings(x, mark);
    return 1;
}

enum { DECL_NONE, DECL_PLAIN, DECL_STANDALONE };

static int l_encode(lua_State *L)
{
    xwriter *x;
    int declaration = DECL_NONE, indent = 0, max_depth = XW_DEFAULT_DEPTH;
    const char *standalone;
    luaL_checktype(L, 1, LUA_TTABLE);
    if (!lua_isnoneornil(L, 2)) {
        luaL_checktype(L, 2, LUA_TTABLE);
        lua_getfield(L, 2, "declaration");
        if (lua_type(L, -1) == LUA_TSTRING) {
            if (strcmp(lua_tostring(L, -1), "standalone") != 0)
                luaL_argerror(L, 2, "opts.declaration must be true or \"standalone\"");
            declaration = DECL_STANDALONE;
        } else if (lua_toboolean(L, -1)) {
            declaration = DECL_PLAIN;
        }
        lua_getfield(L, 2, "indent");
        indent = lua_toboolean(L, -1);
        lua_getfield(L, 2, "max_depth");
        if (!lua_isnil(L, -1)) {
            lua_Integer d = lua_tointeger(L, -1);
            if (lua_type(L, -1) != LUA_TNUMBER || d < 1)
                luaL_argerror(L, 2, "opts.max_depth must be a positive integer");
            max_depth = d > XW_MAX_DEPTH ? XW_MAX_DEPTH : (int)d;
        }
        lua_pop(L, 3);
    }
    standalone = declaration == DECL_STANDALONE ? "yes" : NULL;
    lua_settop(L, 1);
    x = bt_newuserdata(L, sizeof *x); /* 2: owns writer, buffer, scope */
    memset(x, 0, sizeof *x);
    x->max_depth = max_depth;
    x->indent = indent;
    luaL_getmetatable(L, XW_MT);
    lua_setmetatable(L, 2);
    if ((x->buf = xmlBufferCreate()) == NULL || (x->w = xmlNewTextWriterMemory(x->buf, 0)) == NULL)
        return luaL_error(L, "not enough memory");
    if (indent && (xmlTextWriterSetIndent(x->w, 1) < 0 ||
                   xmlTextWriterSetIndentString(x->w, (const xmlChar *)"    ") < 0))
        return luaL_error(L, "not enough memory");
    if ((declaration && xmlTextWriterStartDocument(x->w, NULL, "UTF-8", standalone) < 0) ||
        !write_element(L, x, 1, 1) || xmlTextWriterFlush(x->w) < 0) {
        lua_pushnil(L);
        lua_pushstring(L, x->err[0] ? x->err : "libxml2 could not write the document");
        xw_release(x);
        return 2;
    }
    if (declaration)
        xmlTextWriterEndDocument(x->w);
    xmlTextWriterFlush(x->w);
    lua_pushlstring(L, (const char *)xmlBufferContent(x->buf), (size_t)xmlBufferLength(x->buf));
    xw_release(x);
    return 1;
}

/* Adds xml_encode to the module table on top of the stack. */
void bt_xml_write_register(lua_State *L)
{
    static const luaL_Reg none[] = { { NULL, NULL } };
    bt_new_class(L, XW_MT, none, l_writer_gc);
    lua_pop(L, 1);
    lua_pushcfunction(L, l_encode);
    lua_setfield(L, -2, "xml_encode");
}
