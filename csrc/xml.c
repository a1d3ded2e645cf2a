/* xml.c: XML to Lua tables with libxml2's xmlTextReader (billetterie.core).
 *
 *   core.xml_decode(text [, opts])      -> tree, root_name | nil, message
 *   core.xml_reader(source, tag [, opts]) -> reader | nil, message
 *   reader:next()  -> next element named `tag` (any depth) | nil at the end |
 *                     nil, message on malformed input (then nil forever;
 *                     every item completed before the error comes first,
 *                     but for a root element named `tag`: libxml2 reads
 *                     past its end before it reports the end) |
 *                     nil, "reader closed" after close
 *   reader:close() == __gc == __close (idempotent)
 *   source: { string = "<xml/>" } or { file = "path" }
 *   opts: max_depth (default 256; libxml2 itself stops at 256 too),
 *         max_size (bytes, string input only), arrays (set of element names),
 *         elements (decode only: the element form below instead)
 *
 * Element form (opts.elements = true), the shape core.xml_encode writes
 * (xml_write.c), for documents where namespaces matter (SOAP):
 *   { name = "localName", ns = "uri" or nil, attrs = { [local] = "v" } or
 *     nil, [1..n] = child elements and text strings in document order }
 *   Adjacent text and CDATA merge into one string; whitespace-only text is
 *   dropped from elements that have child elements; namespace declarations
 *   are not attributes; attributes are keyed by local name.
 *
 * Mapping of one element to a Lua value:
 *   - no attributes and no child elements: its text as a string, never a
 *     number ("073101758907" keeps its zeros; <a/> -> "").
 *   - otherwise a table: attributes as string fields, child elements as
 *     fields named by their local name (prefixes dropped), text under
 *     `_text` when it has non-whitespace characters or CDATA (verbatim).
 *   - an attribute and a child with the same name: the child keeps the
 *     field, the attribute moves to "@name".
 *   - a repeated child name becomes a sequence in document order; names in
 *     opts.arrays are always sequences (absent elements stay nil).
 *   Comments, processing instructions and entity references (to entities
 *   declared in a DTD) are dropped: entities are never expanded nor loaded.
 *
 * Why the reader for both functions: it builds Lua tables straight from the
 * parse events (no libxml2 tree of the whole document), frees each node once
 * passed, so memory is bounded by one subtree, and it is the fastest libxml2
 * path (GUIDE.md, "XML and JSON").
 *
 * Safety: XML_PARSE_NONET and never NOENT/DTDLOAD (no XXE, no network);
 * libxml2 errors go to a per-reader structured handler that only copies the
 * message into the object (no Lua call, so no longjmp through libxml2, and
 * nothing printed, no global handler touched). Files are read through our
 * own I/O callbacks so a missing file is our error, not a libxml2 warning on
 * stderr. decode also owns its xmlTextReader through a userdata, so a Lua
 * memory error while building tables cannot leak it.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <libxml/parser.h>
#include <libxml/xmlreader.h>

#include "core.h"

#define XR_MT "billetterie.xml_reader"
#define XR_OPTS (XML_PARSE_NONET | XML_PARSE_NOBLANKS | XML_PARSE_COMPACT)
#define XR_DEFAULT_DEPTH 256

enum { XR_OPEN, XR_DONE, XR_CLOSED };   /* DONE: end or error, libxml2 freed */
enum { MARK_ATTR = 1, MARK_ARRAY = 2 }; /* values of a frame's meta table */

/* One open element while building. Its Lua stack slots are, from base+3k:
 * table (nil until needed), meta (nil until needed: name -> MARK_*), name. */
typedef struct {
    size_t tstart;       /* its text starts here in xreader.text */
    int nattr;           /* attributes stored in its table */
    unsigned char cdata; /* saw a CDATA section */
    unsigned char meta;  /* attribute names snapshotted into meta */
} frame;

typedef struct {
    xmlTextReaderPtr r;
    int state, busy, last, max_depth;
    const char *tag; /* reader tag; the string lives in the uservalue */
    char *text;      /* text of open elements, used as a stack */
    size_t tlen, tcap;
    frame *fr;
    int frcap;
    int errlevel, errcode, errline;
    char err[256];
    /* The source's bytes not yet handed to libxml2: a string source (kept
     * alive by the uservalue), or fbuf, refilled from fp. */
    const char *src;
    size_t srclen, srcpos;
    FILE *fp; /* closed by libxml2 through io_close */
    char *fbuf;
    int eof;
    /* The pre-scan's state at srcpos (io_read_source): */
    int scan;   /* SC_* */
    int back;   /* the mode SC_SKIP returns to */
    char quote; /* open quote in SC_TAG or SC_DTD (or 0) */
    char skipc; /* SC_SKIP ends at skipn skipc then '>': "-->" "]]>" "?>" */
    int skipn;
    int run;     /* skipc seen at the end of the previous piece */
    int dtdopen; /* '[' open in the DOCTYPE */
    size_t carry; /* bytes of a construct's opening read past the last piece */
} xreader;

/* Pre-scan modes: text and tags; in a tag named `tag`; in a comment, CDATA
 * section or PI; in the DOCTYPE. */
enum { SC_TEXT, SC_TAG, SC_SKIP, SC_DTD };

/* ---- libxml2 side: no Lua calls in here ---- */

#if LIBXML_VERSION >= 21200
static void on_error(void *arg, const xmlError *e)
#else
static void on_error(void *arg, xmlErrorPtr e)
#endif
{
    xreader *x = arg;
    size_t n;
    /* Keep the first message of the worst level seen: the fatal one. */
    if (e == NULL || (int)e->level < XML_ERR_ERROR || (int)e->level <= x->errlevel)
        return;
    x->errlevel = (int)e->level;
    x->errcode = e->code;
    x->errline = e->line;
    snprintf(x->err, sizeof x->err, "line %d: %s", e->line, e->message ? e->message : "XML error");
    n = strlen(x->err);
    while (n > 0 && (x->err[n - 1] == '\n' || x->err[n - 1] == ' '))
        x->err[--n] = '\0';
    while (n-- > 0) /* some messages add a "Bytes: ..." line */
        if (x->err[n] == '\n')
            x->err[n] = ' ';
}

/* End of a name after '<' or '</' (XML names hold none of these). */
static int name_stop(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '>' || c == '/' || c == '<';
}

/* Just past the '>' that ends a tag, scanning from p inside it, with
 * quoted attribute values skipped ('>' is allowed in them); NULL if that
 * '>' is not in [p, end). *quote carries an open quote across windows. */
static const char *tag_end(const char *p, const char *end, char *quote)
{
    char q = *quote;
    while (p < end) {
        if (q != 0) {
            const char *c = memchr(p, q, (size_t)(end - p));
            if (c == NULL)
                break;
            p = c + 1;
            q = 0;
        } else if (*p == '>') {
            *quote = 0;
            return p + 1;
        } else {
            if (*p == '"' || *p == '\'')
                q = *p;
            p++;
        }
    }
    *quote = q;
    return NULL;
}

/* Just past the '>' that ends a comment, CDATA section or PI: the first
 * '>' after x->skipn x->skipc, or NULL if that '>' is not in [p, end);
 * x->run carries the skipc that ended the previous window. */
static const char *skip_end(xreader *x, const char *p, const char *end)
{
    const char *start = p, *g, *b;
    int n;
    while ((g = memchr(p, '>', (size_t)(end - p))) != NULL) {
        for (b = g, n = 0; b > p && b[-1] == x->skipc && n < x->skipn; b--)
            n++;
        if (b == start)
            n += x->run;
        x->run = 0;
        if (n >= x->skipn)
            return g + 1;
        p = g + 1;
    }
    for (b = end, n = 0; b > p && b[-1] == x->skipc && n < x->skipn; b--)
        n++;
    n += b == start ? x->run : 0;
    x->run = n < x->skipn ? n : x->skipn;
    return NULL;
}

static int starts(const char *p, const char *end, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(end - p) >= n && memcmp(p, lit, n) == 0;
}

static void enter_skip(xreader *x, char c, int n, int back)
{
    x->scan = SC_SKIP;
    x->skipc = c;
    x->skipn = n;
    x->back = back;
    x->run = 0;
}

/* Where the piece [w, end) handed to libxml2 must end (io_read_source),
 * moving the pre-scan's state along it. Comments, CDATA sections, PIs and
 * the DOCTYPE (its literals and internal subset) are skipped as libxml2
 * reads them: a fake tag in them with an open quote would hide the real
 * tags that follow. Text and attribute values never hold '<'. A
 * construct's opening ("<!--", "<!DOCTYPE"...) is told from the bytes
 * available up to `la`, past the piece (libxml2's first read asks for 4
 * bytes); what of it lies past `end` is carried to the next piece. When
 * more bytes may follow `la` (`more`), an opening running to `la` is cut
 * before, to be read whole next time. */
static const char *scan_piece(xreader *x, const char *w, const char *end, const char *la, int more)
{
    const char *p = w, *t, *s, *q, *g;
    size_t n = strlen(x->tag);
    if (x->carry > 0) {
        size_t c = x->carry < (size_t)(end - w) ? x->carry : (size_t)(end - w);
        p += c;
        x->carry -= c;
    }
    while (p < end) {
        switch (x->scan) {
        case SC_TAG: /* a tag named `tag` longer than a piece */
            if ((g = tag_end(p, end, &x->quote)) == NULL)
                return end;
            x->scan = SC_TEXT;
            return g;
        case SC_SKIP:
            if ((g = skip_end(x, p, end)) == NULL)
                return end;
            x->scan = x->back;
            p = g;
            break;
        case SC_DTD:
            for (; p < end && x->scan == SC_DTD; p++) {
                if (x->quote != 0) {
                    if (*p == x->quote)
                        x->quote = 0;
                } else if (*p == '"' || *p == '\'') {
                    x->quote = *p;
                } else if (*p == '[') {
                    x->dtdopen++;
                } else if (*p == ']') {
                    x->dtdopen -= x->dtdopen > 0;
                } else if (*p == '>' && x->dtdopen == 0) {
                    x->scan = SC_TEXT;
                } else if (*p == '<') {
                    if (la - p < 4 && p > w && more)
                        return p;
                    if (starts(p, la, "<!--")) {
                        enter_skip(x, '-', 2, SC_DTD);
                        p += 3;
                    } else if (p + 1 < la && p[1] == '?') {
                        enter_skip(x, '?', 1, SC_DTD);
                        p++;
                    }
                }
            }
            break;
        default: /* SC_TEXT */
            if ((t = memchr(p, '<', (size_t)(end - p))) == NULL)
                return end;
            s = t + 1;
            if (s < la && (*s == '!' || *s == '?')) {
                if (la - t < 9 && t > w && more)
                    return t;
                if (*s == '?') {
                    enter_skip(x, '?', 1, SC_TEXT);
                    p = s + 1;
                } else if (starts(s, la, "!--")) {
                    enter_skip(x, '-', 2, SC_TEXT);
                    p = s + 3;
                } else if (starts(s, la, "![CDATA[")) {
                    enter_skip(x, ']', 2, SC_TEXT);
                    p = s + 8;
                } else if (starts(s, la, "!DOCTYPE")) {
                    x->scan = SC_DTD;
                    x->quote = 0;
                    x->dtdopen = 0;
                    p = s + 8;
                } else {
                    p = s + 1;
                }
                break;
            }
            if (s < end && *s == '/')
                s++;
            for (q = s; q < end && !name_stop(*q); q++)
                if (*q == ':')
                    s = q + 1; /* the local name follows the last ':' */
            /* a name running to `end` may go on past the window */
            if (q == end)
                return t > w && (more || end < la) ? t : end;
            if ((size_t)(q - s) != n || memcmp(s, x->tag, n) != 0) {
                p = q;
                break;
            }
            x->quote = 0;
            if ((g = tag_end(q, end, &x->quote)) != NULL)
                return g;
            if (t > w)
                return t;
            x->scan = SC_TAG;
            return end;
        }
    }
    if (p > end)
        x->carry = (size_t)(p - end);
    return end;
}

#define XR_FILE_BUF 65536 /* > 2 x the 4096 bytes libxml2 asks for */
#define XR_PIECE 511      /* < libxml2's 512-byte parse block: io_read_source */

/* Tops the file buffer up to at least `want` bytes unless the file ends;
 * -1 on a read error. */
static int refill(xreader *x, size_t want)
{
    size_t rest = x->srclen - x->srcpos, got;
    if (x->fp == NULL || x->eof || rest >= want)
        return 0;
    memmove(x->fbuf, x->fbuf + x->srcpos, rest);
    x->srcpos = 0;
    got = fread(x->fbuf + rest, 1, XR_FILE_BUF - rest, x->fp);
    x->srclen = rest + got;
    if (got < XR_FILE_BUF - rest) {
        if (ferror(x->fp))
            return -1;
        x->eof = 1;
    }
    return 0;
}

/* A source (string or file) as libxml2 reads it.
 *
 * The reader gives up every node parsed in the same xmlTextReaderPushData
 * as an error, so items completed before a malformation would be lost or
 * not depending on where its reads fell. Two rules make next() yield every
 * item completed before the error:
 *   - a piece ends just after the '>' of any tag named like the reader's
 *     (<tag ...>, </tag>, <tag/>, prefixed or not), so the end of an item
 *     and what follows it never share a piece;
 *   - a piece is at most XR_PIECE bytes: libxml2 2.9 parses 512-byte
 *     blocks and reads again before parsing a shorter leftover, so a
 *     shorter piece is parsed whole, alone, in the push that read it.
 * A tag longer than a piece, a comment... are followed across reads
 * (x->scan). */
static int io_read_source(void *ctx, char *buf, int len)
{
    xreader *x = ctx;
    const char *w, *end;
    size_t n, avail;
    if (refill(x, XR_PIECE) != 0)
        return -1;
    w = x->src + x->srcpos;
    avail = x->srclen - x->srcpos;
    n = avail < (size_t)len ? avail : (size_t)len;
    if (n > XR_PIECE)
        n = XR_PIECE;
    end = w + n;
    /* the source's bytes at hand bound the look-ahead; more may follow
     * them only from a file not read to its end */
    end = scan_piece(x, w, end, x->src + x->srclen, x->fp != NULL && !x->eof);
    n = (size_t)(end - w);
    memcpy(buf, w, n);
    x->srcpos += n;
    return (int)n;
}

static int io_close(void *ctx)
{
    xreader *x = ctx;
    int rc = x->fp != NULL && fclose(x->fp) != 0 ? -1 : 0;
    x->fp = NULL;
    return rc;
}

/* Frees libxml2 and C buffers; the object stays a valid userdata. */
static void xr_release(xreader *x)
{
    if (x->r) {
        xmlFreeTextReader(x->r);
        x->r = NULL;
    }
    if (x->fp) { /* only if libxml2 never took it */
        fclose(x->fp);
        x->fp = NULL;
    }
    free(x->fbuf);
    x->fbuf = NULL;
    x->src = NULL;
    x->srclen = x->srcpos = 0;
    free(x->text);
    x->text = NULL;
    x->tlen = x->tcap = 0;
    free(x->fr);
    x->fr = NULL;
    x->frcap = 0;
}

static void xr_fail(xreader *x, const char *msg)
{
    if (x->errlevel < XML_ERR_FATAL + 1) { /* ours beat libxml2's */
        x->errlevel = XML_ERR_FATAL + 1;
        snprintf(x->err, sizeof x->err, "%s", msg);
    }
}

static int too_deep(xreader *x)
{
    char msg[64];
    if (xmlTextReaderDepth(x->r) + 1 <= x->max_depth)
        return 0;
    snprintf(msg, sizeof msg, "XML nesting deeper than %d", x->max_depth);
    xr_fail(x, msg);
    return 1;
}

/* ---- building Lua values ---- */

/* lua_pushlstring, not lua_pushstring: on Lua 5.4 the latter goes through a
 * pointer-keyed cache with a strcmp that costs more than it saves here. */
static void push_str(lua_State *L, const char *s)
{
    if (s == NULL)
        s = "";
    lua_pushlstring(L, s, strlen(s));
}

/* Local name of the current node; also drops an undeclared prefix, which
 * libxml2 leaves in the name (after a namespace error it does not stop on). */
static const char *local_name(xmlTextReaderPtr r)
{
    const char *n = (const char *)xmlTextReaderConstLocalName(r), *c;
    if (n == NULL)
        return "";
    c = strrchr(n, ':');
    return c ? c + 1 : n;
}

static void text_add(lua_State *L, xreader *x, const xmlChar *s)
{
    size_t n = s ? strlen((const char *)s) : 0;
    if (n == 0)
        return;
    if (x->tcap - x->tlen < n) {
        size_t cap = x->tcap ? x->tcap : 256;
        char *p;
        while (cap - x->tlen < n) {
            if (cap > (size_t)-1 / 2)
                luaL_error(L, "not enough memory");
            cap *= 2;
        }
        if ((p = realloc(x->text, cap)) == NULL)
            luaL_error(L, "not enough memory");
        x->text = p;
        x->tcap = cap;
    }
    memcpy(x->text + x->tlen, s, n);
    x->tlen += n;
}

static int is_blank(const char *s, size_t n)
{
    while (n-- > 0)
        if (s[n] != ' ' && s[n] != '\t' && s[n] != '\n' && s[n] != '\r')
            return 0;
    return 1;
}

/* Element start at frame k: pushes its 3 slots (attributes already in its
 * table). Returns 0 (nothing pushed) if too deep. */
static int open_elem(lua_State *L, xreader *x, int base, int k)
{
    int s = base + 3 * k;
    frame *f;
    if (too_deep(x))
        return 0;
    if (k >= x->frcap) {
        int cap = x->frcap ? 2 * x->frcap : 16;
        frame *p = realloc(x->fr, (size_t)cap * sizeof *p);
        if (p == NULL)
            luaL_error(L, "not enough memory");
        x->fr = p;
        x->frcap = cap;
    }
    if (!lua_checkstack(L, 12))
        luaL_error(L, "XML too deep for the Lua stack");
    f = &x->fr[k];
    f->tstart = x->tlen;
    f->nattr = 0;
    f->cdata = f->meta = 0;
    lua_pushnil(L);
    lua_pushnil(L);
    push_str(L, local_name(x->r));
    if (xmlTextReaderHasAttributes(x->r) == 1) {
        while (xmlTextReaderMoveToNextAttribute(x->r) == 1) {
            if (xmlTextReaderIsNamespaceDecl(x->r) == 1)
                continue;
            if (f->nattr++ == 0) {
                lua_createtable(L, 0, 4);
                lua_replace(L, s);
            }
            push_str(L, local_name(x->r));
            push_str(L, (const char *)xmlTextReaderConstValue(x->r));
            lua_rawset(L, s);
        }
        xmlTextReaderMoveToElement(x->r);
    }
    return 1;
}

/* Stores the value on top into the table of parent frame k-1 under the name
 * of frame k, applying the attribute/array rules. Pops the value. */
static void insert(lua_State *L, xreader *x, int base, int k, int arrays)
{
    frame *pf = &x->fr[k - 1];
    int p = base + 3 * (k - 1), m = p + 1, name = base + 3 * k + 2;
    int v = lua_gettop(L), isarr = 0, mark = 0;
    if (lua_isnil(L, p)) {
        lua_createtable(L, 0, 4);
        lua_replace(L, p);
    }
    if (pf->nattr > 0 && !pf->meta) {
        /* First child of an element with attributes: the table holds only
         * attributes now, so its keys are exactly the attribute names. */
        lua_newtable(L);
        lua_pushnil(L);
        while (lua_next(L, p)) {
            lua_pop(L, 1);
            lua_pushvalue(L, -1);
            lua_pushinteger(L, MARK_ATTR);
            lua_rawset(L, -4);
        }
        lua_replace(L, m);
        pf->meta = 1;
    }
    if (arrays) {
        lua_pushvalue(L, name);
        lua_rawget(L, arrays);
        isarr = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    if (!lua_isnil(L, m)) {
        lua_pushvalue(L, name);
        lua_rawget(L, m);
        mark = (int)lua_tointeger(L, -1);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, name);
    lua_rawget(L, p);        /* v+1: current field */
    if (mark == MARK_ATTR) { /* attribute -> "@name" */
        lua_pushfstring(L, "@%s", lua_tostring(L, name));
        lua_pushvalue(L, v + 1);
        lua_rawset(L, p);
        lua_pushvalue(L, name);
        lua_pushnil(L);
        lua_rawset(L, m);
        lua_pushnil(L);
        lua_replace(L, v + 1);
        mark = 0;
    }
    if (lua_isnil(L, v + 1)) { /* first occurrence */
        lua_pushvalue(L, name);
        if (isarr) {
            lua_createtable(L, 1, 0);
            lua_pushvalue(L, v);
            lua_rawseti(L, -2, 1);
        } else {
            lua_pushvalue(L, v);
        }
        lua_rawset(L, p);
    } else if (isarr || mark == MARK_ARRAY) { /* already a sequence */
        int n = (int)bt_rawlen(L, v + 1);
        lua_pushvalue(L, v);
        lua_rawseti(L, v + 1, n + 1);
    } else { /* second one: {old, new} */
        lua_pushvalue(L, name);
        lua_createtable(L, 2, 0);
        lua_pushvalue(L, v + 1);
        lua_rawseti(L, -2, 1);
        lua_pushvalue(L, v);
        lua_rawseti(L, -2, 2);
        lua_rawset(L, p);
        if (lua_isnil(L, m)) {
            lua_newtable(L);
            lua_replace(L, m);
        }
        lua_pushvalue(L, name);
        lua_pushinteger(L, MARK_ARRAY);
        lua_rawset(L, m);
    }
    lua_settop(L, v - 1);
}

/* Closes the top frame k: computes its value, then stores it into frame k-1
 * and pops frame k, or for k == 0 leaves only the value at `base`. */
static void close_elem(lua_State *L, xreader *x, int base, int k, int arrays)
{
    frame *f = &x->fr[k];
    int s = base + 3 * k;
    size_t n = x->tlen - f->tstart;
    const char *t = n ? x->text + f->tstart : "";
    if (lua_isnil(L, s)) {
        lua_pushlstring(L, t, n);
    } else {
        if (f->cdata || !is_blank(t, n)) {
            lua_pushlstring(L, t, n);
            lua_setfield(L, s, "_text");
        }
        lua_pushvalue(L, s);
    }
    x->tlen = f->tstart;
    if (k > 0) {
        insert(L, x, base, k, arrays);
        lua_settop(L, s - 1);
    } else {
        lua_replace(L, base);
        lua_settop(L, base);
    }
}

/* The reader is on an element start: reads through its end and pushes its
 * value (returns 1), or returns 0 with x->err set and nothing pushed.
 * `arrays` is the stack index of opts.arrays or 0. */
static int build(lua_State *L, xreader *x, int arrays)
{
    int base = lua_gettop(L) + 1, k = 0, rc;
    for (;;) {
        switch (xmlTextReaderNodeType(x->r)) {
        case XML_READER_TYPE_ELEMENT:
            if (!open_elem(L, x, base, k))
                goto fail;
            k++;
            if (xmlTextReaderIsEmptyElement(x->r) != 1)
                break;
            /* <x/> has no end event: fall through and close it now */
            /* FALLTHROUGH */
        case XML_READER_TYPE_END_ELEMENT:
            close_elem(L, x, base, --k, arrays);
            if (k == 0)
                return 1;
            break;
        case XML_READER_TYPE_CDATA:
            x->fr[k - 1].cdata = 1;
            /* FALLTHROUGH */
        case XML_READER_TYPE_TEXT:
        case XML_READER_TYPE_WHITESPACE:
        case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
            text_add(L, x, xmlTextReaderConstValue(x->r));
            break;
        default: /* comments, PIs, entity references */
            break;
        }
        if ((rc = xmlTextReaderRead(x->r)) != 1) {
            /* The push parser says "Extra content at the end of the
             * document" for a truncated one too: say what we know. */
            if (rc == 0 || x->errcode == XML_ERR_DOCUMENT_END) {
                char msg[80];
                snprintf(msg, sizeof msg, "line %d: premature end of XML document", x->errline);
                x->errlevel = -1;
                xr_fail(x, msg);
            }
            goto fail;
        }
    }
fail:
    x->tlen = 0;
    lua_settop(L, base - 1);
    return 0;
}

/* ---- Lua functions ---- */

/* Reads opts at idx (nil or table), the last argument used: extra ones are
 * dropped first, so opts.arrays or nil always lands at idx + 1. Returns that
 * index, or 0 when there are no arrays. */
static int get_opts(lua_State *L, int idx, int *max_depth, lua_Integer *max_size)
{
    *max_depth = XR_DEFAULT_DEPTH;
    *max_size = -1;
    lua_settop(L, idx);
    if (lua_isnil(L, idx)) {
        lua_pushnil(L);
        return 0;
    }
    luaL_checktype(L, idx, LUA_TTABLE);
    lua_getfield(L, idx, "max_depth");
    if (!lua_isnil(L, -1)) {
        lua_Integer d = lua_tointeger(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || d < 1)
            luaL_argerror(L, idx, "opts.max_depth must be a positive integer");
        *max_depth = d > INT_MAX ? INT_MAX : (int)d;
    }
    lua_getfield(L, idx, "max_size");
    if (!lua_isnil(L, -1)) {
        lua_Number n = lua_tonumber(L, -1);
        if (lua_type(L, -1) != LUA_TNUMBER || n < 0)
            luaL_argerror(L, idx, "opts.max_size must be a non-negative number");
        *max_size = n < 9e18 ? (lua_Integer)n : -1; /* huge or NaN: no limit */
    }
    lua_pop(L, 2);
    lua_getfield(L, idx, "arrays");
    if (lua_isnil(L, -1))
        return 0;
    if (!lua_istable(L, -1))
        luaL_argerror(L, idx, "opts.arrays must be a table");
    return idx + 1;
}

static xreader *new_xreader(lua_State *L, int max_depth)
{
    xreader *x = bt_newuserdata(L, sizeof *x);
    memset(x, 0, sizeof *x);
    x->max_depth = max_depth;
    x->errlevel = -1;
    luaL_getmetatable(L, XR_MT);
    lua_setmetatable(L, -2);
    return x;
}

static int push_fail(lua_State *L, xreader *x)
{
    lua_pushnil(L);
    lua_pushstring(L, x->err[0] ? x->err : "malformed XML document");
    xr_release(x);
    x->state = XR_DONE;
    return 2;
}

static int too_big(lua_State *L, lua_Integer max_size)
{
    char msg[64];
    snprintf(msg, sizeof msg, "XML document larger than %lld bytes", (long long)max_size);
    lua_pushnil(L);
    lua_pushstring(L, msg);
    return 2;
}

/* ---- element form ---- */

/* Pushes the text of an attribute (its text children, entities unexpanded). */
static void push_attr_value(lua_State *L, xmlAttrPtr a)
{
    luaL_Buffer b;
    xmlNodePtr c;
    luaL_buffinit(L, &b);
    for (c = a->children; c != NULL; c = c->next)
        if (c->type == XML_TEXT_NODE && c->content != NULL)
            luaL_addstring(&b, (const char *)c->content);
    luaL_pushresult(&b);
}

/* Pushes element n (expanded by the reader) in the element form. Returns 0,
 * with nothing pushed and x->err set, when deeper than x->max_depth. C
 * recursion is bounded by max_depth and by libxml2's own 256 limit. */
static int push_element(lua_State *L, xreader *x, xmlNodePtr n, int depth)
{
    xmlNodePtr c;
    int t, k = 0, has_elem = 0, text_open = 0;
    if (depth > x->max_depth) {
        char msg[64];
        snprintf(msg, sizeof msg, "XML nesting deeper than %d", x->max_depth);
        xr_fail(x, msg);
        return 0;
    }
    if (!lua_checkstack(L, 8))
        luaL_error(L, "XML too deep for the Lua stack");
    lua_createtable(L, 0, 3);
    t = lua_gettop(L);
    push_str(L, (const char *)n->name);
    lua_setfield(L, t, "name");
    if (n->ns != NULL && n->ns->href != NULL) {
        push_str(L, (const char *)n->ns->href);
        lua_setfield(L, t, "ns");
    }
    if (n->properties != NULL) {
        xmlAttrPtr a;
        lua_newtable(L);
        for (a = n->properties; a != NULL; a = a->next) {
            push_str(L, (const char *)a->name);
            push_attr_value(L, a);
            lua_rawset(L, -3);
        }
        lua_setfield(L, t, "attrs");
    }
    for (c = n->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE) {
            if (!push_element(L, x, c, depth + 1)) {
                lua_settop(L, t - 1);
                return 0;
            }
            lua_rawseti(L, t, ++k);
            has_elem = 1;
            text_open = 0;
        } else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
                   c->content != NULL) {
            push_str(L, (const char *)c->content);
            if (text_open) { /* merge with the previous text child */
                lua_rawgeti(L, t, k);
                lua_insert(L, -2);
                lua_concat(L, 2);
            } else {
                k++;
            }
            lua_rawseti(L, t, k);
            text_open = 1;
        } else {
            text_open = 0; /* comments, PIs, entity references: dropped */
        }
    }
    if (has_elem) { /* drop whitespace-only text between elements */
        int i, j = 0;
        for (i = 1; i <= k; i++) {
            size_t len;
            const char *s;
            lua_rawgeti(L, t, i);
            s = lua_tolstring(L, -1, &len);
            if (s != NULL && lua_type(L, -1) == LUA_TSTRING && is_blank(s, len)) {
                lua_pop(L, 1);
                continue;
            }
            lua_rawseti(L, t, ++j);
        }
        for (i = j + 1; i <= k; i++) {
            lua_pushnil(L);
            lua_rawseti(L, t, i);
        }
    }
    return 1;
}

static int l_decode(lua_State *L)
{
    size_t len;
    const char *s;
    int max_depth, arrays, rc, elements = 0;
    lua_Integer max_size;
    xreader *x;
    luaL_checktype(L, 1, LUA_TSTRING);
    s = lua_tolstring(L, 1, &len);
    arrays = get_opts(L, 2, &max_depth, &max_size);
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "elements");
        elements = lua_toboolean(L, -1);
        lua_pop(L, 1);
    }
    lua_settop(L, 3); /* 1 text, 2 opts, 3 arrays */
    if (max_size >= 0 && (lua_Integer)len > max_size)
        return too_big(L, max_size);
    if (len == 0 || len > INT_MAX) {
        lua_pushnil(L);
        lua_pushstring(L, len ? "XML document too large" : "empty XML document");
        return 2;
    }
    x = new_xreader(L, max_depth); /* 4: owns the reader */
    x->r = xmlReaderForMemory(s, (int)len, NULL, NULL, XR_OPTS);
    if (x->r == NULL) {
        xr_fail(x, "cannot create an XML reader");
        return push_fail(L, x);
    }
    xmlTextReaderSetStructuredErrorHandler(x->r, on_error, x);
    while ((rc = xmlTextReaderRead(x->r)) == 1 &&
           xmlTextReaderNodeType(x->r) != XML_READER_TYPE_ELEMENT)
        ;
    if (rc != 1)
        return push_fail(L, x);
    push_str(L, local_name(x->r)); /* 5: root name */
    if (elements) {
        /* the reader parses the root's subtree into a tree it owns */
        xmlNodePtr root = xmlTextReaderExpand(x->r);
        if (root == NULL || too_deep(x) || !push_element(L, x, root, 1))
            return push_fail(L, x);   /* 6: element */
        rc = xmlTextReaderNext(x->r); /* past the subtree, not through it again */
    } else if (!build(L, x, arrays)) {
        return push_fail(L, x); /* 6: tree */
    } else {
        rc = 1;
    }
    while (rc == 1) /* what follows the root: trailing junk is an error */
        rc = xmlTextReaderRead(x->r);
    if (rc < 0)
        return push_fail(L, x);
    xr_release(x);
    x->state = XR_DONE;
    lua_insert(L, -2);
    return 2;
}

static int l_reader(lua_State *L)
{
    int max_depth;
    lua_Integer max_size;
    xreader *x;
    luaL_checktype(L, 1, LUA_TTABLE);
    luaL_checktype(L, 2, LUA_TSTRING);
    get_opts(L, 3, &max_depth, &max_size);
    lua_settop(L, 4);             /* 4: arrays or nil */
    lua_getfield(L, 1, "string"); /* 5 */
    lua_getfield(L, 1, "file");   /* 6 */
    if (lua_type(L, 5) == LUA_TSTRING ? !lua_isnil(L, 6) : lua_type(L, 6) != LUA_TSTRING)
        luaL_argerror(L, 1, "expected { string = xml } or { file = path }");
    x = new_xreader(L, max_depth); /* 7 */
    /* uservalue {string source, arrays, tag}: keeps alive what C points to */
    lua_createtable(L, 3, 0);
    lua_pushvalue(L, 5);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 4);
    lua_rawseti(L, -2, 2);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 3);
    bt_setuservalue(L, 7);
    x->tag = lua_tostring(L, 2);
    if (lua_type(L, 5) == LUA_TSTRING) {
        size_t len;
        const char *s = lua_tolstring(L, 5, &len);
        if (max_size >= 0 && (lua_Integer)len > max_size)
            return too_big(L, max_size);
        if (len > INT_MAX) {
            lua_pushnil(L);
            lua_pushliteral(L, "XML document too large");
            return 2;
        }
        if (len == 0) { /* next() will say so */
            xr_fail(x, "empty XML document");
            lua_settop(L, 7);
            return 1;
        }
        /* libxml2 reads s while parsing: the uservalue keeps it alive */
        x->src = s;
        x->srclen = len;
        x->r = xmlReaderForIO(io_read_source, NULL, x, NULL, NULL, XR_OPTS);
    } else {
        const char *path = lua_tostring(L, 6);
        FILE *fp = fopen(path, "rbe");
        struct stat st;
        if (fp != NULL && fstat(fileno(fp), &st) == 0 && S_ISDIR(st.st_mode)) {
            fclose(fp); /* glibc opens a directory, reads fail */
            fp = NULL;
            errno = EISDIR;
        }
        if (fp == NULL) {
            lua_pushnil(L);
            lua_pushfstring(L, "cannot open %s: %s", path, strerror(errno));
            return 2;
        }
        x->fp = fp; /* xr_release closes it from here on */
        if ((x->fbuf = malloc(XR_FILE_BUF)) == NULL) {
            lua_pushnil(L);
            lua_pushliteral(L, "not enough memory");
            return 2;
        }
        x->src = x->fbuf;
        if (refill(x, 1) != 0) {
            lua_pushnil(L);
            lua_pushfstring(L, "cannot read %s: %s", path, strerror(errno));
            return 2;
        }
        if (x->srclen == 0) { /* as for an empty string: next() says so */
            xr_fail(x, "empty XML document");
            lua_settop(L, 7);
            return 1;
        }
        /* fp belongs to libxml2 from here on, even if this fails */
        x->r = xmlReaderForIO(io_read_source, io_close, x, NULL, NULL, XR_OPTS);
    }
    if (x->r == NULL) {
        lua_pushnil(L);
        lua_pushliteral(L, "cannot create an XML reader");
        return 2;
    }
    xmlTextReaderSetStructuredErrorHandler(x->r, on_error, x);
    lua_settop(L, 7);
    return 1;
}

/* The part of next() run under lua_pcall: 1 = reader, 2 = arrays or nil.
 * Returns the item, or nothing with x->last = 0 (end) or -1 (error). */
static int next_body(lua_State *L)
{
    xreader *x = lua_touserdata(L, 1);
    int arrays = lua_isnil(L, 2) ? 0 : 2, rc;
    for (;;) {
        if ((rc = xmlTextReaderRead(x->r)) != 1)
            break;
        if (xmlTextReaderNodeType(x->r) == XML_READER_TYPE_ELEMENT) {
            const char *name = local_name(x->r);
            if (too_deep(x)) {
                rc = -1;
                break;
            }
            if (name[0] == x->tag[0] && strcmp(name, x->tag) == 0) {
                rc = build(L, x, arrays) ? 1 : -1;
                break;
            }
        }
    }
    x->last = rc;
    return rc == 1 ? 1 : 0;
}

/* Protected call, so that a Lua error while building (out of memory) never
 * leaves a reader stopped halfway, and `busy` always means "running": a
 * finalizer calling next() or close() on it meanwhile cannot free it under
 * our feet (close is then deferred to the end of this call). */
static int l_reader_next(lua_State *L)
{
    xreader *x = luaL_checkudata(L, 1, XR_MT);
    int status;
    if (x->state == XR_CLOSED) {
        lua_pushnil(L);
        lua_pushliteral(L, "reader closed");
        return 2;
    }
    if (x->state == XR_DONE) {
        lua_pushnil(L);
        return 1;
    }
    if (x->r == NULL)
        return push_fail(L, x); /* empty source */
    if (x->busy) {
        lua_pushnil(L);
        lua_pushliteral(L, "XML reader busy");
        return 2;
    }
    lua_settop(L, 1);
    lua_pushcfunction(L, next_body); /* 2 */
    lua_pushvalue(L, 1);
    bt_getuservalue(L, 1);
    lua_rawgeti(L, -1, 2); /* arrays or nil */
    lua_remove(L, -2);
    x->busy = 1;
    x->last = -1;
    status = lua_pcall(L, 2, 1, 0); /* 2: item, nil or error */
    x->busy = 0;
    if (x->state == XR_CLOSED) { /* closed meanwhile */
        xr_release(x);
        if (status == 0) {
            lua_pushnil(L);
            lua_pushliteral(L, "reader closed");
            return 2;
        }
    }
    if (status != 0) { /* position unknown: stop */
        xr_release(x);
        if (x->state == XR_OPEN)
            x->state = XR_DONE;
        return lua_error(L);
    }
    if (x->last == 1)
        return 1;
    if (x->last == 0) { /* end of the document */
        xr_release(x);
        x->state = XR_DONE;
        return 1; /* the nil from next_body */
    }
    lua_pop(L, 1);
    return push_fail(L, x);
}

/* close, __gc and __close: frees once, stays callable. While next() runs
 * (only a finalizer can get here then) it just marks it: next() frees. */
static int l_reader_close(lua_State *L)
{
    xreader *x = luaL_checkudata(L, 1, XR_MT);
    if (!x->busy)
        xr_release(x);
    x->state = XR_CLOSED;
    return 0;
}

static int l_reader_tostring(lua_State *L)
{
    static const char *const names[] = { "open", "done", "closed" };
    xreader *x = luaL_checkudata(L, 1, XR_MT);
    lua_pushfstring(L, XR_MT " (%s): %p", names[x->state], (void *)x);
    return 1;
}

/* Adds xml_decode and xml_reader to the module table on top of the stack;
 * leaves the stack as it found it. */
void bt_xml_register(lua_State *L)
{
    static const luaL_Reg methods[] = { { "next", l_reader_next },
                                        { "close", l_reader_close },
                                        { NULL, NULL } };
    xmlInitParser(); /* idempotent; never xmlCleanupParser (shared process) */
    bt_new_class(L, XR_MT, methods, l_reader_close);
    lua_pushcfunction(L, l_reader_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    lua_pushcfunction(L, l_decode);
    lua_setfield(L, -2, "xml_decode");
    lua_pushcfunction(L, l_reader);
    lua_setfield(L, -2, "xml_reader");
}
