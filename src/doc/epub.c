/* EPUB 2 and 3: container.xml → OPF (metadata, manifest, spine) → nav.xhtml
 * or toc.ncx; chapter text sliced between the TOC's anchors, on demand. */
#include "doc/doc.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zip.h>

#include <libxml/HTMLparser.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "core/error.h"

#define NS_DC "http://purl.org/dc/elements/1.1/"
#define NS_OPS "http://www.idpf.org/2007/ops"
#define NS_XLINK "http://www.w3.org/1999/xlink"

typedef struct manifest_item {
    char *id, *href, *media, *props, *fallback;
} manifest_item;

struct kk_epub {
    zip_t *za;
    manifest_item *items;
    size_t n_items;
    char **spine;     /* entry names in reading order */
    char **spine_doc; /* what to read for each: itself, its markup fallback, or NULL (no text) */
    size_t n_spine;
};

typedef struct toc_entry {
    char *title;
    int level;
    char *path;     /* resolved entry name */
    char *frag;     /* NULL: top of the file */
} toc_entry;

typedef struct toc_list {
    toc_entry *e;
    size_t n, cap;
} toc_list;

/* ---- zip entries, with the limits a hostile book needs ---- */

/* Index of an entry; hrefs whose case differs from the entry name (books
 * made on case-insensitive file systems) are found too. */
static zip_int64_t locate(zip_t *za, const char *name)
{
    zip_int64_t idx = zip_name_locate(za, name, 0);
    return idx >= 0 ? idx : zip_name_locate(za, name, ZIP_FL_NOCASE);
}

/* Replaces *path by the entry's own name (so spine lookups compare equal);
 * 0 when the book has no such entry. */
static int canonical_entry(zip_t *za, char **path)
{
    zip_int64_t idx = locate(za, *path);
    if (idx < 0) return 0;
    const char *real = zip_get_name(za, (zip_uint64_t)idx, 0);
    if (real && strcmp(real, *path) != 0) {
        char *c = kk_strndup(real, strlen(real));
        if (c) {
            free(*path);
            *path = c;
        }
    }
    return 1;
}

static kokoro_status read_entry(kokoro_document *doc, const char *name, size_t max, char **out, size_t *out_len)
{
    zip_t *za = doc->epub->za;
    zip_int64_t idx = locate(za, name);
    if (idx < 0) return kk_error(KOKORO_ERR_FORMAT, "%s: the book has no entry \"%s\"", doc->name, name);
    zip_stat_t st;
    if (zip_stat_index(za, (zip_uint64_t)idx, 0, &st) != 0 || !(st.valid & ZIP_STAT_SIZE))
        return kk_error(KOKORO_ERR_FORMAT, "%s: entry \"%s\": unreadable zip header", doc->name, name);
    if (st.size > max)
        return kk_error(KOKORO_ERR_FORMAT, "%s: entry \"%s\" is %llu bytes uncompressed, over the %zu MiB limit",
                        doc->name, name, (unsigned long long)st.size, max >> 20);
    if ((st.valid & ZIP_STAT_COMP_SIZE) && st.size > ((zip_uint64_t)1 << 20) &&
        st.size / (st.comp_size ? st.comp_size : 1) > KK_DOC_MAX_RATIO)
        return kk_error(KOKORO_ERR_FORMAT,
                        "%s: entry \"%s\" expands %llu bytes to %llu (ratio over %d:1): refused as a zip bomb",
                        doc->name, name, (unsigned long long)st.comp_size, (unsigned long long)st.size,
                        KK_DOC_MAX_RATIO);
    zip_file_t *zf = zip_fopen_index(za, (zip_uint64_t)idx, 0);
    if (!zf)
        return kk_error(KOKORO_ERR_FORMAT, "%s: entry \"%s\": %s", doc->name, name, zip_strerror(za));
    size_t size = (size_t)st.size;
    char *buf = malloc(size + 1);
    if (!buf) {
        zip_fclose(zf);
        return kk_error(KOKORO_ERR_NOMEM, "%s: entry \"%s\": out of memory", doc->name, name);
    }
    size_t got = 0;
    while (got < size) {
        zip_int64_t r = zip_fread(zf, buf + got, size - got);
        if (r < 0) {
            kokoro_status e = kk_error(KOKORO_ERR_FORMAT, "%s: entry \"%s\": %s (damaged or truncated book)",
                                       doc->name, name, zip_file_strerror(zf));
            free(buf);
            zip_fclose(zf);
            return e;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    zip_fclose(zf);
    if (got != size) {
        free(buf);
        return kk_error(KOKORO_ERR_FORMAT, "%s: entry \"%s\": %zu of %zu bytes readable (damaged or truncated book)",
                        doc->name, name, got, size);
    }
    buf[size] = '\0';
    *out = buf;
    *out_len = size;
    return KOKORO_OK;
}

/* ---- XML: no network, no external entities, no entity expansion ---- */

static int is_fatal_xml_error(const xmlError *e)
{
    if (!e) return 0;
    if (e->code == XML_ERR_ENTITY_LOOP) return 1;
    if (e->message && (strstr(e->message, "depth") || strstr(e->message, "amplification"))) return 1;
    return 0;
}

/* Parses XML; when that fails and html is set, parses as tag-soup HTML.
 * Returns NULL with the error set. */
static xmlDocPtr parse_markup(kokoro_document *doc, const char *name, const char *buf, size_t len, int html)
{
    if (len > INT32_MAX) {
        kk_error(KOKORO_ERR_FORMAT, "%s: \"%s\" is too large", doc->name, name);
        return NULL;
    }
    xmlParserCtxtPtr ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
        return NULL;
    }
    xmlDocPtr x = xmlCtxtReadMemory(ctxt, buf, (int)len, name, NULL,
                                    XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING | XML_PARSE_NOCDATA);
    char msg[256] = "";
    int line = 0, fatal = 0;
    if (!x || !xmlDocGetRootElement(x)) {
        const xmlError *e = &ctxt->lastError;
        if (e->message) snprintf(msg, sizeof msg, "%s", e->message);
        size_t l = strlen(msg);
        while (l && (msg[l - 1] == '\n' || msg[l - 1] == ' ')) msg[--l] = '\0';
        line = e->line;
        fatal = is_fatal_xml_error(e);
        if (x) xmlFreeDoc(x);
        x = NULL;
    }
    xmlFreeParserCtxt(ctxt);
    if (x) return x;
    if (fatal && strstr(msg, "depth")) {
        kk_error(KOKORO_ERR_FORMAT, "%s: \"%s\" line %d: elements nested deeper than %d (depth limit): refused",
                 doc->name, name, line, KK_DOC_MAX_DEPTH);
        return NULL;
    }
    if (fatal) {
        kk_error(KOKORO_ERR_FORMAT, "%s: \"%s\" line %d: %s (refused: hostile or broken markup)", doc->name, name,
                 line, msg);
        return NULL;
    }
    if (html) {
        x = htmlReadMemory(buf, (int)len, name, "UTF-8",
                           HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING | HTML_PARSE_RECOVER |
                               HTML_PARSE_NOIMPLIED);
        if (x && xmlDocGetRootElement(x)) return x;
        if (x) xmlFreeDoc(x);
    }
    kk_error(KOKORO_ERR_FORMAT, "%s: \"%s\" is not well-formed XML (line %d: %s)", doc->name, name, line,
             msg[0] ? msg : "no root element");
    return NULL;
}

static int name_is(xmlNodePtr n, const char *local)
{
    if (!n || n->type != XML_ELEMENT_NODE) return 0;
    const char *nm = (const char *)n->name;
    const char *colon = strchr(nm, ':'); /* HTML parser keeps prefixes in the name */
    if (colon && !n->ns) nm = colon + 1;
    return strcasecmp(nm, local) == 0;
}

/* An attribute by local name, in namespace ns or (tag soup) as prefix:name. */
static char *attr(xmlNodePtr n, const char *local, const char *ns)
{
    xmlChar *v = NULL;
    if (ns) {
        v = xmlGetNsProp(n, (const xmlChar *)local, (const xmlChar *)ns);
        if (!v) {
            for (xmlAttrPtr a = n->properties; a; a = a->next) {
                const char *an = (const char *)a->name;
                const char *colon = strchr(an, ':');
                if (colon && strcmp(colon + 1, local) == 0 && !a->ns) {
                    v = xmlNodeGetContent((xmlNodePtr)a);
                    break;
                }
            }
        }
    } else {
        v = xmlGetNoNsProp(n, (const xmlChar *)local);
        if (!v) v = xmlGetProp(n, (const xmlChar *)local);
    }
    return (char *)v;
}

static int has_token(const char *list, const char *tok)
{
    if (!list) return 0;
    size_t t = strlen(tok);
    const char *p = list;
    while (*p) {
        while (*p && isspace((unsigned char)*p)) p++;
        const char *s = p;
        while (*p && !isspace((unsigned char)*p)) p++;
        if ((size_t)(p - s) == t && strncmp(s, tok, t) == 0) return 1;
    }
    return 0;
}

static int attr_has_token(xmlNodePtr n, const char *local, const char *ns, const char *tok)
{
    char *v = attr(n, local, ns);
    int r = has_token(v, tok);
    xmlFree(v);
    return r;
}

/* Text of a node's descendants (titles, labels), entities not expanded. */
static void node_text(xmlNodePtr n, kk_textbuf *tb, int depth)
{
    if (depth > KK_DOC_MAX_DEPTH) return;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (c->content) kk_tb_text(tb, (const char *)c->content, strlen((const char *)c->content));
        } else if (c->type == XML_ELEMENT_NODE) {
            if (name_is(c, "script") || name_is(c, "style") || name_is(c, "rt") || name_is(c, "rp")) continue;
            node_text(c, tb, depth + 1);
        }
    }
}

static char *node_text_dup(xmlNodePtr n)
{
    kk_textbuf tb = {0};
    node_text(n, &tb, 0);
    char *s;
    if (kk_tb_take(&tb, "title", &s, NULL) != KOKORO_OK) return NULL;
    return s;
}

/* ---- hrefs ---- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Resolves href against the folder base_dir ("" or "OEBPS/"): fragment split
 * off, percent-decoded, "." and ".." folded. NULL with *why set when the href
 * is external, empty or escapes the book. */
static char *resolve_href(const char *base_dir, const char *href, char **frag, const char **why)
{
    *frag = NULL;
    *why = NULL;
    size_t hl = strcspn(href, "#");
    if (href[hl] == '#' && href[hl + 1]) *frag = kk_strndup(href + hl + 1, strlen(href + hl + 1));
    const char *colon = memchr(href, ':', hl);
    const char *slash = memchr(href, '/', hl);
    if (colon && (!slash || colon < slash)) {
        *why = "points outside the book (a URL)";
        free(*frag);
        *frag = NULL;
        return NULL;
    }
    size_t bl = href[0] == '/' ? 0 : strlen(base_dir);
    char *raw = malloc(bl + hl + 1);
    if (!raw) return NULL;
    memcpy(raw, base_dir, bl);
    size_t o = bl;
    for (size_t i = 0; i < hl; i++) {
        if (href[i] == '%' && i + 2 < hl && hexval(href[i + 1]) >= 0 &&
            hexval(href[i + 2]) >= 0) {
            int v = hexval(href[i + 1]) * 16 + hexval(href[i + 2]);
            if (v == 0) {
                free(raw);
                free(*frag);
                *frag = NULL;
                *why = "contains %00";
                return NULL;
            }
            raw[o++] = (char)v;
            i += 2;
        } else {
            raw[o++] = href[i];
        }
    }
    raw[o] = '\0';
    /* fold the segments */
    char *out = malloc(o + 1);
    if (!out) {
        free(raw);
        return NULL;
    }
    size_t ol = 0;
    char *p = raw;
    while (*p) {
        char *s = p;
        while (*p && *p != '/') p++;
        size_t sl = (size_t)(p - s);
        if (*p) p++;
        if (sl == 0 || (sl == 1 && s[0] == '.')) continue;
        if (sl == 2 && s[0] == '.' && s[1] == '.') {
            if (ol == 0) {
                free(raw);
                free(out);
                free(*frag);
                *frag = NULL;
                *why = "escapes the book (\"..\" above its root)";
                return NULL;
            }
            while (ol > 0 && out[ol - 1] != '/') ol--;
            if (ol > 0) ol--; /* the slash */
            continue;
        }
        if (ol) out[ol++] = '/';
        memcpy(out + ol, s, sl);
        ol += sl;
    }
    out[ol] = '\0';
    free(raw);
    if (ol == 0) {
        free(out);
        free(*frag);
        *frag = NULL;
        *why = "is empty";
        return NULL;
    }
    return out;
}

static char *dir_of(const char *path)
{
    const char *s = strrchr(path, '/');
    return kk_strndup(path, s ? (size_t)(s - path) + 1 : 0);
}

/* ---- OPF ---- */

static const manifest_item *item_by_id(const kk_epub *e, const char *id)
{
    for (size_t i = 0; id && i < e->n_items; i++)
        if (e->items[i].id && strcmp(e->items[i].id, id) == 0) return &e->items[i];
    return NULL;
}

static int spine_index(const kk_epub *e, const char *path)
{
    for (size_t i = 0; i < e->n_spine; i++)
        if (strcmp(e->spine[i], path) == 0) return (int)i;
    return -1;
}

static xmlNodePtr child(xmlNodePtr n, const char *local)
{
    for (xmlNodePtr c = n ? n->children : NULL; c; c = c->next)
        if (name_is(c, local)) return c;
    return NULL;
}

static kokoro_status read_metadata(kokoro_document *doc, xmlNodePtr md, char **cover_id)
{
    static const char *const KEYS[] = {"title", "creator", "language", "date", "publisher", "description",
                                       "identifier"};
    for (xmlNodePtr c = md ? md->children : NULL; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (name_is(c, "meta")) {
            char *nm = attr(c, "name", NULL);
            if (nm && strcmp(nm, "cover") == 0 && !*cover_id) {
                char *ct = attr(c, "content", NULL);
                if (ct) {
                    *cover_id = kk_strndup(ct, strlen(ct));
                    xmlFree(ct);
                }
            }
            xmlFree(nm);
            continue;
        }
        if (!c->ns || !c->ns->href || strcmp((const char *)c->ns->href, NS_DC) != 0) continue;
        for (size_t k = 0; k < sizeof KEYS / sizeof KEYS[0]; k++) {
            if (!name_is(c, KEYS[k])) continue;
            char *v = node_text_dup(c);
            if (!v) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
            if (strchr(v, '<') && strlen(v) < INT32_MAX) {
                /* descriptions often carry escaped HTML: keep its text only */
                htmlDocPtr h = htmlReadMemory(v, (int)strlen(v), "description", "UTF-8",
                                              HTML_PARSE_NONET | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING);
                xmlNodePtr root = h ? xmlDocGetRootElement(h) : NULL;
                char *plain = root ? node_text_dup(root) : NULL;
                if (plain) {
                    free(v);
                    v = plain;
                }
                if (h) xmlFreeDoc(h);
            }
            kokoro_status st = kk_doc_add_meta(doc, KEYS[k], v);
            free(v);
            if (st != KOKORO_OK) return st;
        }
    }
    return KOKORO_OK;
}

static kokoro_status read_manifest(kokoro_document *doc, xmlNodePtr man, const char *opf_dir)
{
    kk_epub *e = doc->epub;
    size_t n = 0;
    for (xmlNodePtr c = man ? man->children : NULL; c; c = c->next) n += name_is(c, "item");
    if (n > 4 * KK_DOC_MAX_CHAPTERS)
        return kk_error(KOKORO_ERR_FORMAT, "%s: the manifest lists %zu items, over the limit", doc->name, n);
    e->items = calloc(n ? n : 1, sizeof *e->items);
    if (!e->items) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
    for (xmlNodePtr c = man ? man->children : NULL; c; c = c->next) {
        if (!name_is(c, "item")) continue;
        char *href = attr(c, "href", NULL);
        if (!href) continue;
        char *frag;
        const char *why;
        char *path = resolve_href(opf_dir, href, &frag, &why);
        free(frag);
        if (!path) {
            if (why) kk_doc_warn(doc, "manifest item \"%s\" %s; ignored", href, why);
            xmlFree(href);
            if (!why) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
            continue;
        }
        xmlFree(href);
        manifest_item *it = &e->items[e->n_items++];
        canonical_entry(e->za, &path);
        it->href = path;
        char *v;
        if ((v = attr(c, "id", NULL))) it->id = kk_strndup(v, strlen(v)), xmlFree(v);
        if ((v = attr(c, "media-type", NULL))) it->media = kk_strndup(v, strlen(v)), xmlFree(v);
        if ((v = attr(c, "properties", NULL))) it->props = kk_strndup(v, strlen(v)), xmlFree(v);
        if ((v = attr(c, "fallback", NULL))) it->fallback = kk_strndup(v, strlen(v)), xmlFree(v);
    }
    return KOKORO_OK;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcasecmp(s + n - k, suf) == 0;
}

/* A document the XHTML reader can read: (X)HTML, XML or SVG. */
static int is_markup(const manifest_item *it)
{
    if (it->media) return strstr(it->media, "html") || strstr(it->media, "xml");
    return has_suffix(it->href, ".xhtml") || has_suffix(it->href, ".html") || has_suffix(it->href, ".htm") ||
           has_suffix(it->href, ".xml") || has_suffix(it->href, ".svg");
}

static kokoro_status read_spine(kokoro_document *doc, xmlNodePtr spine)
{
    kk_epub *e = doc->epub;
    size_t n = 0;
    for (xmlNodePtr c = spine ? spine->children : NULL; c; c = c->next) n += name_is(c, "itemref");
    if (n > KK_DOC_MAX_CHAPTERS)
        return kk_error(KOKORO_ERR_FORMAT, "%s: the spine has %zu items, over the %d limit", doc->name, n,
                        KK_DOC_MAX_CHAPTERS);
    e->spine = calloc(n ? n : 1, sizeof *e->spine);
    e->spine_doc = calloc(n ? n : 1, sizeof *e->spine_doc);
    if (!e->spine || !e->spine_doc) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
    for (xmlNodePtr c = spine ? spine->children : NULL; c; c = c->next) {
        if (!name_is(c, "itemref")) continue;
        char *idref = attr(c, "idref", NULL);
        const manifest_item *it = item_by_id(e, idref);
        if (!it) {
            kk_doc_warn(doc, "spine item \"%s\" is not in the manifest; ignored", idref ? idref : "");
        } else if (locate(e->za, it->href) < 0) {
            kk_doc_warn(doc, "spine item \"%s\" points to \"%s\", which the book does not contain; ignored", idref,
                        it->href);
        } else {
            /* images in the spine (comics, manga) read through their fallback chain */
            const manifest_item *text = it;
            for (int hops = 0; text && !is_markup(text) && hops < 8; hops++) text = item_by_id(e, text->fallback);
            if (text && !is_markup(text)) text = NULL;
            if (!text) kk_doc_warn(doc, "spine item \"%s\" (%s) has no text and no text fallback", idref, it->href);
            e->spine[e->n_spine] = kk_strndup(it->href, strlen(it->href));
            e->spine_doc[e->n_spine] = text ? kk_strndup(text->href, strlen(text->href)) : NULL;
            if (!e->spine[e->n_spine] || (text && !e->spine_doc[e->n_spine])) {
                free(e->spine[e->n_spine]);
                xmlFree(idref);
                return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
            }
            e->n_spine++;
        }
        xmlFree(idref);
    }
    return KOKORO_OK;
}

/* ---- table of contents ---- */

static int toc_add(toc_list *t, char *title, int level, char *path, char *frag)
{
    if (t->n >= KK_DOC_MAX_CHAPTERS) return 0;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 32;
        toc_entry *p = realloc(t->e, cap * sizeof *p);
        if (!p) return 0;
        t->e = p;
        t->cap = cap;
    }
    t->e[t->n++] = (toc_entry){title, level, path, frag};
    return 1;
}

static void toc_free(toc_list *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free(t->e[i].title);
        free(t->e[i].path);
        free(t->e[i].frag);
    }
    free(t->e);
    memset(t, 0, sizeof *t);
}

static kokoro_status toc_link(kokoro_document *doc, toc_list *t, const char *dir, const char *href, char *title,
                              int level)
{
    char *frag;
    const char *why;
    char *path = resolve_href(dir, href, &frag, &why);
    if (!path) {
        if (why) kk_doc_warn(doc, "table of contents entry \"%s\": href \"%s\" %s; ignored", title, href, why);
        free(title);
        return why ? KOKORO_OK : kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
    }
    if (!canonical_entry(doc->epub->za, &path)) {
        kk_doc_warn(doc, "table of contents entry \"%s\" points to \"%s\", which the book does not contain; ignored",
                    title, path);
        free(title);
        free(path);
        free(frag);
        return KOKORO_OK;
    }
    if (!toc_add(t, title, level, path, frag)) {
        free(title);
        free(path);
        free(frag);
        if (t->n >= KK_DOC_MAX_CHAPTERS)
            return kk_error(KOKORO_ERR_FORMAT, "%s: table of contents has more than %d entries", doc->name,
                            KK_DOC_MAX_CHAPTERS);
        return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
    }
    return KOKORO_OK;
}

/* nav.xhtml: <ol><li><a href>Title</a><ol>…</ol></li></ol>, nested. */
static kokoro_status nav_list(kokoro_document *doc, toc_list *t, const char *dir, xmlNodePtr ol, int level)
{
    if (level > 64) return kk_error(KOKORO_ERR_FORMAT, "%s: table of contents nested deeper than 64", doc->name);
    for (xmlNodePtr li = ol->children; li; li = li->next) {
        if (!name_is(li, "li")) continue;
        /* a label without a link (<span>Author</span><ol>…</ol>) is an entry
         * that starts where its first child does */
        xmlNodePtr label = NULL, sub = NULL;
        int linked = 0;
        for (xmlNodePtr c = li->children; c; c = c->next) {
            if (name_is(c, "a")) {
                char *h = attr(c, "href", NULL);
                linked |= h != NULL;
                xmlFree(h);
                if (!label) label = c;
            } else if (name_is(c, "span") && !label) {
                label = c;
            } else if (name_is(c, "ol") || name_is(c, "ul")) {
                sub = c;
            }
        }
        if (!linked && label && sub) {
            char *title = node_text_dup(label);
            if (!title) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
            if (!toc_add(t, title, level, NULL, NULL)) {
                free(title);
                return kk_error(KOKORO_ERR_FORMAT, "%s: table of contents too large", doc->name);
            }
        }
        for (xmlNodePtr c = li->children; c; c = c->next) {
            if (name_is(c, "a")) {
                char *href = attr(c, "href", NULL);
                char *title = node_text_dup(c);
                if (!title) {
                    xmlFree(href);
                    return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
                }
                kokoro_status st = KOKORO_OK;
                if (href) st = toc_link(doc, t, dir, href, title, level);
                else free(title);
                xmlFree(href);
                if (st != KOKORO_OK) return st;
            } else if (name_is(c, "ol") || name_is(c, "ul")) {
                kokoro_status st = nav_list(doc, t, dir, c, level + 1);
                if (st != KOKORO_OK) return st;
            }
        }
    }
    return KOKORO_OK;
}

/* Finds every <nav> (they may sit in sections) up to a bounded depth. */
static void find_navs(xmlNodePtr n, xmlNodePtr *navs, size_t *n_navs, size_t max, int depth)
{
    if (depth > KK_DOC_MAX_DEPTH) return;
    for (xmlNodePtr c = n->children; c && *n_navs < max; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (name_is(c, "nav")) navs[(*n_navs)++] = c;
        else find_navs(c, navs, n_navs, max, depth + 1);
    }
}

typedef struct landmark {
    char *path, *frag, *type;
} landmark;

typedef struct landmark_list {
    landmark *l;
    size_t n, cap;
} landmark_list;

static void landmark_add(kokoro_document *doc, landmark_list *lm, const char *dir, const char *href, const char *type)
{
    if (!href || !type || lm->n >= 1000) return;
    char *frag;
    const char *why;
    char *path = resolve_href(dir, href, &frag, &why);
    if (!path) {
        if (why) kk_doc_warn(doc, "landmark \"%s\" href \"%s\" %s; ignored", type, href, why);
        return;
    }
    if (lm->n == lm->cap) {
        size_t cap = lm->cap ? lm->cap * 2 : 8;
        landmark *p = realloc(lm->l, cap * sizeof *p);
        if (!p) {
            free(path);
            free(frag);
            return;
        }
        lm->l = p;
        lm->cap = cap;
    }
    char *ty = kk_strndup(type, strlen(type));
    if (!ty) {
        free(path);
        free(frag);
        return;
    }
    lm->l[lm->n++] = (landmark){path, frag, ty};
}

static void landmarks_free(landmark_list *lm)
{
    for (size_t i = 0; i < lm->n; i++) {
        free(lm->l[i].path);
        free(lm->l[i].frag);
        free(lm->l[i].type);
    }
    free(lm->l);
}

static kokoro_status read_nav(kokoro_document *doc, const char *nav_path, toc_list *t, landmark_list *lm)
{
    char *buf;
    size_t len;
    kokoro_status st = read_entry(doc, nav_path, KK_DOC_MAX_MARKUP, &buf, &len);
    if (st != KOKORO_OK) return st;
    xmlDocPtr x = parse_markup(doc, nav_path, buf, len, 1);
    free(buf);
    if (!x) return KOKORO_ERR_FORMAT;
    char *dir = dir_of(nav_path);
    xmlNodePtr navs[16];
    size_t n_navs = 0;
    find_navs(xmlDocGetRootElement(x), navs, &n_navs, 16, 0);
    xmlNodePtr toc = NULL;
    for (size_t i = 0; i < n_navs; i++) {
        if (attr_has_token(navs[i], "type", NS_OPS, "toc") || attr_has_token(navs[i], "role", NULL, "doc-toc")) {
            if (!toc) toc = navs[i];
        } else if (attr_has_token(navs[i], "type", NS_OPS, "landmarks")) {
            xmlNodePtr ol = child(navs[i], "ol");
            for (xmlNodePtr li = ol ? ol->children : NULL; li; li = li->next) {
                xmlNodePtr a = child(li, "a");
                if (!a) continue;
                char *href = attr(a, "href", NULL), *type = attr(a, "type", NS_OPS);
                landmark_add(doc, lm, dir, href, type);
                xmlFree(href);
                xmlFree(type);
            }
        }
    }
    if (!toc && n_navs) toc = navs[0];
    xmlNodePtr ol = toc ? child(toc, "ol") : NULL;
    st = ol && dir ? nav_list(doc, t, dir, ol, 1) : KOKORO_OK;
    free(dir);
    xmlFreeDoc(x);
    return st;
}

static kokoro_status ncx_points(kokoro_document *doc, toc_list *t, const char *dir, xmlNodePtr parent, int level)
{
    if (level > 64) return kk_error(KOKORO_ERR_FORMAT, "%s: toc.ncx nested deeper than 64", doc->name);
    for (xmlNodePtr p = parent->children; p; p = p->next) {
        if (!name_is(p, "navPoint")) continue;
        xmlNodePtr label = child(p, "navLabel");
        xmlNodePtr content = child(p, "content");
        char *src = content ? attr(content, "src", NULL) : NULL;
        if (src) {
            char *title = label ? node_text_dup(label) : kk_strndup("", 0);
            if (!title) {
                xmlFree(src);
                return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
            }
            kokoro_status st = toc_link(doc, t, dir, src, title, level);
            xmlFree(src);
            if (st != KOKORO_OK) return st;
        }
        kokoro_status st = ncx_points(doc, t, dir, p, level + 1);
        if (st != KOKORO_OK) return st;
    }
    return KOKORO_OK;
}

static kokoro_status read_ncx(kokoro_document *doc, const char *ncx_path, toc_list *t)
{
    char *buf;
    size_t len;
    kokoro_status st = read_entry(doc, ncx_path, KK_DOC_MAX_MARKUP, &buf, &len);
    if (st != KOKORO_OK) return st;
    xmlDocPtr x = parse_markup(doc, ncx_path, buf, len, 0);
    free(buf);
    if (!x) return KOKORO_ERR_FORMAT;
    char *dir = dir_of(ncx_path);
    xmlNodePtr map = child(xmlDocGetRootElement(x), "navMap");
    st = map && dir ? ncx_points(doc, t, dir, map, 1) : KOKORO_OK;
    free(dir);
    xmlFreeDoc(x);
    return st;
}

/* ---- XHTML to text ---- */

typedef struct walk {
    kokoro_document *doc;
    kk_textbuf *tb;
    const char *start_id; /* collect from the element with this id (NULL: from the top) */
    const char *end_id;   /* stop at the element with this id (NULL: to the end) */
    int collecting, stopped, found_start, too_deep;
    int muted; /* inside a skipped element: anchors count, text does not */
} walk;

static int is_block(xmlNodePtr n)
{
    static const char *const B[] = {"p",      "div",     "h1",    "h2",    "h3",     "h4",         "h5",
                                    "h6",     "li",      "ul",    "ol",    "dl",     "dt",         "dd",
                                    "blockquote", "section", "article", "header", "footer", "aside", "nav",
                                    "figure", "figcaption", "table", "tr",  "pre",    "hr",         "address",
                                    "main",   "caption", "body",  "hgroup", "details", "summary"};
    for (size_t i = 0; i < sizeof B / sizeof B[0]; i++)
        if (name_is(n, B[i])) return 1;
    return 0;
}

/* Footnote markers: <sup>12</sup>, <sup>[3]</sup>, <sup>*</sup>. */
static int is_marker_sup(xmlNodePtr n)
{
    if (!name_is(n, "sup")) return 0;
    char *t = node_text_dup(n);
    if (!t) return 0;
    size_t len = strlen(t);
    int marker = len > 0 && len <= 6;
    for (size_t i = 0; marker && i < len; i++) {
        unsigned char c = (unsigned char)t[i];
        if (!(isdigit(c) || c == '[' || c == ']' || c == '*' || c == '(' || c == ')' || c >= 0x80)) marker = 0;
    }
    /* a non-ASCII sup (†, ‡) only when short: 1 or 2 symbols */
    free(t);
    return marker;
}

static int skip_element(xmlNodePtr n)
{
    if (name_is(n, "script") || name_is(n, "style") || name_is(n, "head") || name_is(n, "title") ||
        name_is(n, "noscript") || name_is(n, "template") || name_is(n, "svg") || name_is(n, "math") ||
        name_is(n, "rt") || name_is(n, "rp"))
        return 1;
    char *type = attr(n, "type", NS_OPS), *role = attr(n, "role", NULL);
    int skip = has_token(type, "noteref") || has_token(role, "doc-noteref") || has_token(type, "pagebreak") ||
               has_token(role, "doc-pagebreak") || has_token(type, "footnote") || has_token(type, "endnote") ||
               has_token(type, "rearnote") || has_token(role, "doc-footnote") || has_token(role, "doc-endnote") ||
               has_token(type, "page-list");
    xmlFree(type);
    xmlFree(role);
    if (!skip) { /* printed line and page numbers (poetry, facsimiles) */
        char *cls = attr(n, "class", NULL);
        skip = has_token(cls, "lnum") || has_token(cls, "linenum") || has_token(cls, "line-number") ||
               has_token(cls, "linenumber") || has_token(cls, "pagenum") || has_token(cls, "page-number") ||
               has_token(cls, "pagenumber");
        xmlFree(cls);
    }
    return skip || is_marker_sup(n);
}

static int id_is(xmlNodePtr n, const char *id)
{
    if (!id) return 0;
    char *v = attr(n, "id", NULL);
    int r = v && strcmp(v, id) == 0;
    xmlFree(v);
    if (!r && name_is(n, "a")) {
        v = attr(n, "name", NULL);
        r = v && strcmp(v, id) == 0;
        xmlFree(v);
    }
    return r;
}

static void walk_node(walk *w, xmlNodePtr n, int depth)
{
    if (depth > KK_DOC_MAX_DEPTH) {
        w->too_deep = 1;
        w->stopped = 1;
        return;
    }
    for (xmlNodePtr c = n->children; c && !w->stopped; c = c->next) {
        if (c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) {
            if (w->collecting && !w->muted && c->content) kk_tb_text(w->tb, (const char *)c->content, strlen((const char *)c->content));
            continue;
        }
        if (c->type == XML_ENTITY_REF_NODE) {
            /* HTML named entities in XHTML without a DTD; other entities stay unexpanded */
            const htmlEntityDesc *d = htmlEntityLookup(c->name);
            if (w->collecting && !w->muted && d) {
                char u[5];
                unsigned v = d->value;
                size_t k = v < 0x80 ? 1 : v < 0x800 ? 2 : v < 0x10000 ? 3 : 4;
                if (k == 1) u[0] = (char)v;
                else if (k == 2) u[0] = (char)(0xC0 | (v >> 6)), u[1] = (char)(0x80 | (v & 0x3F));
                else if (k == 3)
                    u[0] = (char)(0xE0 | (v >> 12)), u[1] = (char)(0x80 | ((v >> 6) & 0x3F)),
                    u[2] = (char)(0x80 | (v & 0x3F));
                else
                    u[0] = (char)(0xF0 | (v >> 18)), u[1] = (char)(0x80 | ((v >> 12) & 0x3F)),
                    u[2] = (char)(0x80 | ((v >> 6) & 0x3F)), u[3] = (char)(0x80 | (v & 0x3F));
                kk_tb_text(w->tb, u, k);
            }
            continue;
        }
        if (c->type != XML_ELEMENT_NODE) continue;
        if (w->end_id && id_is(c, w->end_id) && (w->collecting || !w->start_id)) {
            w->stopped = 1;
            return;
        }
        if (!w->collecting && id_is(c, w->start_id)) {
            w->collecting = 1;
            w->found_start = 1;
        }
        if (skip_element(c)) {
            w->muted++; /* a start or end anchor may sit inside (a page break's id) */
            walk_node(w, c, depth + 1);
            w->muted--;
            continue;
        }
        int on = w->collecting && !w->muted;
        if (name_is(c, "br")) {
            if (on) kk_tb_line(w->tb);
            continue;
        }
        int block = is_block(c);
        if (block && on) kk_tb_para(w->tb);
        if ((name_is(c, "td") || name_is(c, "th")) && on && w->tb->pending < 1) w->tb->pending = 1;
        walk_node(w, c, depth + 1);
        if (block && w->collecting && !w->muted) kk_tb_para(w->tb);
    }
}

static xmlNodePtr find_body(xmlNodePtr root)
{
    xmlNodePtr b = child(root, "body");
    return b ? b : root;
}

/* Appends the text of one spine document between the anchors. */
static kokoro_status doc_text(kokoro_document *doc, const char *path, const char *start_id, const char *end_id,
                              kk_textbuf *tb)
{
    char *buf;
    size_t len;
    kokoro_status st = read_entry(doc, path, KK_DOC_MAX_MARKUP, &buf, &len);
    if (st != KOKORO_OK) return st;
    xmlDocPtr x = parse_markup(doc, path, buf, len, 1);
    free(buf);
    if (!x) return KOKORO_ERR_FORMAT;
    xmlNodePtr body = find_body(xmlDocGetRootElement(x));
    walk w = {doc, tb, start_id, end_id, start_id == NULL, 0, 0, 0, 0};
    kk_tb_para(tb);
    walk_node(&w, body, 0);
    if (start_id && !w.found_start && !w.too_deep) {
        /* the anchor is missing: read the whole document rather than nothing */
        walk w2 = {doc, tb, NULL, end_id, 1, 0, 0, 0, 0};
        walk_node(&w2, body, 0);
        w.too_deep = w2.too_deep;
    }
    xmlFreeDoc(x);
    if (w.too_deep)
        return kk_error(KOKORO_ERR_FORMAT, "%s: \"%s\": elements nested deeper than %d", doc->name, path,
                        KK_DOC_MAX_DEPTH);
    return KOKORO_OK;
}

kokoro_status kk_epub_chapter(kokoro_document *doc, size_t i, kk_textbuf *tb)
{
    const kk_doc_chapter *c = &doc->ch[i];
    kk_epub *e = doc->epub;
    if (c->spine_start < 0) {
        /* outside the spine: read it only if it is markup */
        for (size_t k = 0; k < e->n_items; k++)
            if (strcmp(e->items[k].href, c->href) == 0 && !is_markup(&e->items[k])) return KOKORO_OK;
        return doc_text(doc, c->href, c->start_id, c->end_id, tb);
    }
    if (c->spine_end < c->spine_start) return KOKORO_OK; /* two TOC entries at one place */
    /* a fallback shared with the spine item before was read by the chapter before */
    const char *prev = c->spine_start > 0 ? e->spine_doc[c->spine_start - 1] : NULL;
    for (int s = c->spine_start; s <= c->spine_end; s++) {
        const char *path = e->spine_doc[s];
        if (!path || (prev && strcmp(prev, path) == 0)) continue; /* no text, or the same fallback again */
        int own = strcmp(path, e->spine[s]) == 0; /* anchors belong to the spine item itself */
        kokoro_status st = doc_text(doc, path, s == c->spine_start && own ? c->start_id : NULL,
                                    s == c->spine_end && own ? c->end_id : NULL, tb);
        if (st != KOKORO_OK) return st;
        prev = path;
    }
    return KOKORO_OK;
}

/* ---- cover ---- */

static int try_cover(kokoro_document *doc, const char *path, const char *how)
{
    char *buf;
    size_t len;
    if (read_entry(doc, path, KK_DOC_MAX_COVER, &buf, &len) != KOKORO_OK) {
        kk_doc_warn(doc, "cover (%s): %s", how, kokoro_last_error());
        return 0;
    }
    const char *mime = kk_doc_image_mime((unsigned char *)buf, len);
    if (!mime) {
        kk_doc_warn(doc, "cover (%s) \"%s\" is not a JPEG, PNG or WebP image; ignored", how, path);
        free(buf);
        return 0;
    }
    doc->cover = (unsigned char *)buf;
    doc->cover_len = len;
    doc->cover_mime = mime;
    return 1;
}

/* The first <img src> or SVG <image xlink:href> of a cover page. */
static char *find_image(xmlNodePtr n, int depth)
{
    if (depth > KK_DOC_MAX_DEPTH) return NULL;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        char *v = NULL;
        if (name_is(c, "img")) v = attr(c, "src", NULL);
        else if (name_is(c, "image")) {
            v = attr(c, "href", NS_XLINK);
            if (!v) v = attr(c, "href", NULL);
        }
        if (v && strncmp(v, "data:", 5) != 0) return v;
        xmlFree(v);
        v = find_image(c, depth + 1);
        if (v) return v;
    }
    return NULL;
}

static void cover_from_page(kokoro_document *doc, const char *page)
{
    char *buf;
    size_t len;
    if (read_entry(doc, page, KK_DOC_MAX_MARKUP, &buf, &len) != KOKORO_OK) return;
    xmlDocPtr x = parse_markup(doc, page, buf, len, 1);
    free(buf);
    if (!x) return;
    char *src = find_image(xmlDocGetRootElement(x), 0);
    xmlFreeDoc(x);
    if (!src) return;
    char *dir = dir_of(page), *frag;
    const char *why;
    char *path = dir ? resolve_href(dir, src, &frag, &why) : NULL;
    if (path) {
        free(frag);
        try_cover(doc, path, "image of the cover page");
    } else if (why) {
        kk_doc_warn(doc, "cover page image \"%s\" %s; ignored", src, why);
    }
    free(path);
    free(dir);
    xmlFree(src);
}

static void find_cover(kokoro_document *doc, const char *meta_cover, const landmark_list *lm, const char *guide_cover)
{
    kk_epub *e = doc->epub;
    for (size_t i = 0; i < e->n_items; i++)
        if (has_token(e->items[i].props, "cover-image") && try_cover(doc, e->items[i].href, "cover-image")) return;
    if (meta_cover) {
        const manifest_item *it = item_by_id(e, meta_cover);
        if (it && try_cover(doc, it->href, "meta name=cover")) return;
    }
    const char *page = guide_cover;
    for (size_t i = 0; !page && i < lm->n; i++)
        if (strcmp(lm->l[i].type, "cover") == 0) page = lm->l[i].path;
    if (!page) {
        const manifest_item *it = item_by_id(e, "cover");
        if (it && it->media && strstr(it->media, "html")) page = it->href;
    }
    if (page) cover_from_page(doc, page);
}

/* ---- front / back matter from landmarks and the guide ---- */

static kokoro_matter landmark_matter(const char *type)
{
    static const char *const FRONT[] = {"cover", "titlepage", "title-page", "copyright-page", "copyright",
                                        "toc", "dedication", "acknowledgements", "acknowledgments", "epigraph",
                                        "halftitlepage", "frontispiece", "imprint", "loi", "lot", "other-credits"};
    static const char *const BACK[] = {"colophon", "index", "contributors"};
    for (size_t i = 0; i < sizeof FRONT / sizeof FRONT[0]; i++)
        if (strcmp(type, FRONT[i]) == 0) return KOKORO_MATTER_FRONT;
    for (size_t i = 0; i < sizeof BACK / sizeof BACK[0]; i++)
        if (strcmp(type, BACK[i]) == 0) return KOKORO_MATTER_BACK;
    return KOKORO_MATTER_BODY;
}

static void apply_landmarks(kokoro_document *doc, const landmark_list *lm, const char *source)
{
    for (size_t i = 0; i < doc->n_ch; i++) {
        kk_doc_chapter *c = &doc->ch[i];
        for (size_t k = 0; k < lm->n; k++) {
            const landmark *l = &lm->l[k];
            if (!c->href || strcmp(l->path, c->href) != 0) continue;
            /* the landmark must name the chapter's own start, anchor included */
            if (!l->frag != !c->start_id || (l->frag && strcmp(l->frag, c->start_id) != 0)) continue;
            kokoro_matter m = landmark_matter(l->type);
            if (m == KOKORO_MATTER_BODY) continue;
            char reason[160];
            snprintf(reason, sizeof reason, "%s type \"%s\"", source, l->type);
            char *r = kk_strndup(reason, strlen(reason));
            if (!r) return;
            free(c->reason);
            c->reason = r;
            c->matter = m;
            break;
        }
    }
}

/* ---- open ---- */

static kokoro_status chapters_from_toc(kokoro_document *doc, toc_list *t)
{
    kk_epub *e = doc->epub;
    /* labels take the place of the entry after them; labels with nothing after go */
    for (size_t i = t->n; i-- > 0;) {
        if (t->e[i].path) continue;
        if (i + 1 < t->n && t->e[i + 1].path) {
            t->e[i].path = kk_strndup(t->e[i + 1].path, strlen(t->e[i + 1].path));
            if (!t->e[i].path) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
            if (t->e[i + 1].frag) {
                t->e[i].frag = kk_strndup(t->e[i + 1].frag, strlen(t->e[i + 1].frag));
                if (!t->e[i].frag) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
            }
        }
    }
    size_t keep = 0;
    for (size_t i = 0; i < t->n; i++) {
        if (t->e[i].path) t->e[keep++] = t->e[i];
        else free(t->e[i].title);
    }
    t->n = keep;
    for (size_t i = 0; i < t->n; i++) {
        toc_entry *te = &t->e[i];
        kk_doc_chapter *c;
        kokoro_status st = kk_doc_add_chapter(doc, te->title, strlen(te->title), te->level, &c);
        if (st != KOKORO_OK) return st;
        c->href = kk_strndup(te->path, strlen(te->path));
        c->start_id = te->frag ? kk_strndup(te->frag, strlen(te->frag)) : NULL;
        if (!c->href || (te->frag && !c->start_id)) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
        int s = spine_index(e, te->path);
        c->spine_start = s;
        c->spine_end = s;
        if (s < 0) {
            /* outside the spine: that document alone, up to the next entry's anchor in it */
            if (i + 1 < t->n && strcmp(t->e[i + 1].path, te->path) == 0 && t->e[i + 1].frag)
                c->end_id = kk_strndup(t->e[i + 1].frag, strlen(t->e[i + 1].frag));
            continue;
        }
        /* the next entry that starts somewhere else bounds this one */
        size_t j = i + 1;
        int ns = j < t->n ? spine_index(e, t->e[j].path) : -1;
        if (j >= t->n || ns < 0) {
            c->spine_end = j >= t->n ? (int)e->n_spine - 1 : s;
            continue;
        }
        const char *nf = t->e[j].frag;
        int same_place = ns == s && ((!nf && !te->frag) || (nf && te->frag && strcmp(nf, te->frag) == 0));
        if (same_place) {
            c->spine_end = s - 1; /* empty: the next entry starts at the very same place */
        } else if (ns < s || (ns == s && !nf)) {
            c->spine_end = s; /* out of reading order: this document to its end */
        } else if (nf) {
            c->spine_end = ns;
            c->end_id = kk_strndup(nf, strlen(nf));
            if (!c->end_id) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
        } else {
            c->spine_end = ns - 1;
        }
    }
    return KOKORO_OK;
}

/* The first element named local in document order, depth-bounded. */
static xmlNodePtr find_element(xmlNodePtr n, const char *local, int depth)
{
    if (depth > KK_DOC_MAX_DEPTH) return NULL;
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        if (name_is(c, local)) return c;
        xmlNodePtr f = find_element(c, local, depth + 1);
        if (f) return f;
    }
    return NULL;
}

/* Without a usable TOC every spine document is a chapter, titled by its
 * first heading or <title>. */
static kokoro_status chapters_from_spine(kokoro_document *doc)
{
    kk_epub *e = doc->epub;
    for (size_t s = 0; s < e->n_spine; s++) {
        char *title = NULL, *buf;
        size_t len;
        if (!e->spine_doc[s]) continue; /* no text */
        if (s > 0 && e->spine_doc[s - 1] && strcmp(e->spine_doc[s - 1], e->spine_doc[s]) == 0) {
            if (doc->n_ch) doc->ch[doc->n_ch - 1].spine_end = (int)s; /* the same fallback again */
            continue;
        }
        if (read_entry(doc, e->spine_doc[s], KK_DOC_MAX_MARKUP, &buf, &len) == KOKORO_OK) {
            xmlDocPtr x = parse_markup(doc, e->spine_doc[s], buf, len, 1);
            free(buf);
            if (x) {
                xmlNodePtr root = xmlDocGetRootElement(x);
                xmlNodePtr body = find_body(root);
                static const char *const H[] = {"h1", "h2", "h3"};
                for (size_t h = 0; h < 3 && !title; h++) {
                    xmlNodePtr hn = find_element(body, H[h], 0);
                    if (hn) {
                        title = node_text_dup(hn);
                        if (title && !*title) free(title), title = NULL;
                    }
                }
                xmlNodePtr head = child(root, "head");
                xmlNodePtr t = head ? child(head, "title") : NULL;
                if (!title && t) {
                    title = node_text_dup(t);
                    if (title && !*title) free(title), title = NULL;
                }
                xmlFreeDoc(x);
            }
        }
        char fallback[32];
        snprintf(fallback, sizeof fallback, "Chapter %zu", doc->n_ch + 1);
        kk_doc_chapter *c;
        kokoro_status st = kk_doc_add_chapter(doc, title ? title : fallback, strlen(title ? title : fallback), 1, &c);
        free(title);
        if (st != KOKORO_OK) return st;
        c->href = kk_strndup(e->spine[s], strlen(e->spine[s]));
        if (!c->href) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", doc->name);
        c->spine_start = c->spine_end = (int)s;
    }
    return KOKORO_OK;
}

/* <EncryptedData><CipherData><CipherReference URI="OEBPS/ch1.xhtml"/>: an
 * error when a reference names a document of the spine. */
static kokoro_status drm_refs(kokoro_document *doc, xmlNodePtr n, int depth)
{
    kk_epub *e = doc->epub;
    if (!n || depth > 16) return KOKORO_OK;
    if (name_is(n, "CipherReference")) {
        char *uri = attr(n, "URI", NULL), *frag = NULL;
        const char *why;
        char *path = uri ? resolve_href("", uri, &frag, &why) : NULL;
        kokoro_status st = KOKORO_OK;
        for (size_t s = 0; path && s < e->n_spine && st == KOKORO_OK; s++)
            if ((e->spine_doc[s] && strcmp(e->spine_doc[s], path) == 0) || strcmp(e->spine[s], path) == 0)
                st = kk_error(KOKORO_ERR_FORMAT,
                              "%s: the book is encrypted (DRM): META-INF/encryption.xml lists \"%s\"; only "
                              "DRM-free EPUBs can be read",
                              doc->name, path);
        free(path);
        free(frag);
        xmlFree(uri);
        return st;
    }
    for (xmlNodePtr c = n->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) continue;
        kokoro_status st = drm_refs(doc, c, depth + 1);
        if (st != KOKORO_OK) return st;
    }
    return KOKORO_OK;
}

/* META-INF/encryption.xml naming a spine document means DRM: its text is
 * ciphertext. (Obfuscated fonts are common and harmless.) */
static kokoro_status check_drm(kokoro_document *doc)
{
    if (locate(doc->epub->za, "META-INF/encryption.xml") < 0) return KOKORO_OK;
    char *buf;
    size_t len;
    if (read_entry(doc, "META-INF/encryption.xml", KK_DOC_MAX_MARKUP, &buf, &len) != KOKORO_OK) {
        kk_doc_warn(doc, "META-INF/encryption.xml: %s", kokoro_last_error());
        return KOKORO_OK;
    }
    xmlDocPtr x = parse_markup(doc, "META-INF/encryption.xml", buf, len, 0);
    free(buf);
    if (!x) {
        kk_doc_warn(doc, "META-INF/encryption.xml is not readable XML; ignored");
        return KOKORO_OK;
    }
    kokoro_status st = drm_refs(doc, xmlDocGetRootElement(x), 0);
    xmlFreeDoc(x);
    return st;
}

static pthread_once_t xml_once = PTHREAD_ONCE_INIT;
static void xml_init(void) { xmlInitParser(); } /* libxml2's global tables, once, before any thread parses */

kokoro_status kk_epub_open(kokoro_document *doc, const char *path)
{
    pthread_once(&xml_once, xml_init);
    kk_epub *e = calloc(1, sizeof *e);
    if (!e) return kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
    doc->epub = e;
    int zerr = 0;
    e->za = zip_open(path, ZIP_RDONLY, &zerr);
    if (!e->za) {
        zip_error_t ze;
        zip_error_init_with_code(&ze, zerr);
        kokoro_status st = kk_error(zerr == ZIP_ER_NOENT || zerr == ZIP_ER_OPEN || zerr == ZIP_ER_READ ? KOKORO_ERR_IO
                                                                                                        : KOKORO_ERR_FORMAT,
                                    "%s: not a readable EPUB (zip archive): %s", path, zip_error_strerror(&ze));
        zip_error_fini(&ze);
        return st;
    }

    char *buf;
    size_t len;
    kokoro_status st = read_entry(doc, "META-INF/container.xml", 1u << 20, &buf, &len);
    if (st != KOKORO_OK) {
        if (locate(e->za, "META-INF/container.xml") < 0)
            return kk_error(KOKORO_ERR_FORMAT, "%s: not an EPUB: META-INF/container.xml is missing", path);
        return st;
    }
    xmlDocPtr cx = parse_markup(doc, "META-INF/container.xml", buf, len, 0);
    free(buf);
    if (!cx) return KOKORO_ERR_FORMAT;
    char *opf = NULL;
    xmlNodePtr rootfiles = child(xmlDocGetRootElement(cx), "rootfiles");
    for (xmlNodePtr r = rootfiles ? rootfiles->children : NULL; r && !opf; r = r->next) {
        if (!name_is(r, "rootfile")) continue;
        char *fp = attr(r, "full-path", NULL);
        if (fp) {
            char *frag;
            const char *why;
            opf = resolve_href("", fp, &frag, &why);
            free(frag);
            if (!opf && why) kk_doc_warn(doc, "container.xml rootfile \"%s\" %s", fp, why);
            xmlFree(fp);
        }
    }
    xmlFreeDoc(cx);
    if (!opf)
        return kk_error(KOKORO_ERR_FORMAT, "%s: META-INF/container.xml names no usable rootfile (full-path)", path);

    st = read_entry(doc, opf, KK_DOC_MAX_MARKUP, &buf, &len);
    if (st != KOKORO_OK) {
        free(opf);
        return st;
    }
    xmlDocPtr ox = parse_markup(doc, opf, buf, len, 0);
    free(buf);
    if (!ox) {
        free(opf);
        return KOKORO_ERR_FORMAT;
    }
    char *opf_dir = dir_of(opf);
    xmlNodePtr pkg = xmlDocGetRootElement(ox);
    char *cover_id = NULL, *guide_cover = NULL;
    toc_list toc = {0};
    landmark_list lm = {0}, guide = {0};
    if (!opf_dir) {
        st = kk_error(KOKORO_ERR_NOMEM, "%s: out of memory", path);
        goto done;
    }
    if (!name_is(pkg, "package")) {
        st = kk_error(KOKORO_ERR_FORMAT, "%s: \"%s\": root element is <%s>, expected <package>", path, opf,
                      (const char *)pkg->name);
        goto done;
    }
    st = read_metadata(doc, child(pkg, "metadata"), &cover_id);
    if (st == KOKORO_OK) st = read_manifest(doc, child(pkg, "manifest"), opf_dir);
    xmlNodePtr spine = child(pkg, "spine");
    if (st == KOKORO_OK) st = read_spine(doc, spine);
    if (st != KOKORO_OK) goto done;
    if (e->n_spine == 0) {
        st = kk_error(KOKORO_ERR_FORMAT, "%s: \"%s\": the spine lists no readable document", path, opf);
        goto done;
    }
    xmlNodePtr g = child(pkg, "guide");
    for (xmlNodePtr r = g ? g->children : NULL; r; r = r->next) {
        if (!name_is(r, "reference")) continue;
        char *href = attr(r, "href", NULL), *type = attr(r, "type", NULL);
        landmark_add(doc, &guide, opf_dir, href, type);
        xmlFree(href);
        xmlFree(type);
    }
    for (size_t i = 0; i < guide.n && !guide_cover; i++)
        if (strcmp(guide.l[i].type, "cover") == 0) guide_cover = guide.l[i].path;

    /* EPUB 3 nav first, then the EPUB 2 NCX */
    for (size_t i = 0; i < e->n_items && toc.n == 0; i++) {
        if (!has_token(e->items[i].props, "nav")) continue;
        if (read_nav(doc, e->items[i].href, &toc, &lm) != KOKORO_OK) {
            kk_doc_warn(doc, "navigation document: %s", kokoro_last_error());
            toc_free(&toc);
        }
    }
    if (toc.n == 0) {
        char *tocid = spine ? attr(spine, "toc", NULL) : NULL;
        const manifest_item *ncx = item_by_id(e, tocid);
        xmlFree(tocid);
        for (size_t i = 0; !ncx && i < e->n_items; i++)
            if (e->items[i].media && strcmp(e->items[i].media, "application/x-dtbncx+xml") == 0) ncx = &e->items[i];
        if (ncx && read_ncx(doc, ncx->href, &toc) != KOKORO_OK) {
            kk_doc_warn(doc, "toc.ncx: %s", kokoro_last_error());
            toc_free(&toc);
        }
    }
    if (toc.n > 0) st = chapters_from_toc(doc, &toc);
    else {
        kk_doc_warn(doc, "no usable table of contents: one chapter per spine document");
        st = chapters_from_spine(doc);
    }
    if (st != KOKORO_OK) goto done;
    st = check_drm(doc);
    if (st != KOKORO_OK) goto done;
    apply_landmarks(doc, &lm, "landmark");
    apply_landmarks(doc, &guide, "guide");
    find_cover(doc, cover_id, &lm, guide_cover);
done:
    toc_free(&toc);
    landmarks_free(&lm);
    landmarks_free(&guide);
    free(cover_id);
    free(opf_dir);
    free(opf);
    xmlFreeDoc(ox);
    return st;
}

void kk_epub_free(kk_epub *e)
{
    if (!e) return;
    if (e->za) zip_discard(e->za);
    for (size_t i = 0; i < e->n_items; i++) {
        free(e->items[i].id);
        free(e->items[i].href);
        free(e->items[i].media);
        free(e->items[i].props);
        free(e->items[i].fallback);
    }
    free(e->items);
    for (size_t i = 0; i < e->n_spine; i++) {
        free(e->spine[i]);
        free(e->spine_doc[i]);
    }
    free(e->spine);
    free(e->spine_doc);
    free(e);
}
