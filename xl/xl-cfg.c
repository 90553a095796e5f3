/* SPDX-License-Identifier: MIT */
/*
 * xl.cfg parsing for ferry's xl.
 *
 * Two layers.  The first is a generic reader for xl's configuration
 * syntax, a hand-written equivalent of Xen's libxlutil reader (flex lexer
 * libxlu_cfg_l.l, bison grammar libxlu_cfg_y.y, helpers libxlu_cfg.c): the
 * tokens, the grammar, "last assignment wins", "+=" concatenation and the
 * typed getters behave as xl's do.  The second builds the PV domain
 * configuration from it with xl_parse.c's defaults and checks, renders it
 * back as xl.cfg text and as libxl_domain_config JSON, and reads that JSON
 * back, checking every member's type and range.  JSON is written and
 * parsed by json-c, as libxl uses a JSON library (yajl) for it.
 *
 * Style: this is an xl/ file, so it is written in Xen's xl/libxl style
 * (four-space indent, K&R braces, `if (x) {`), not the hypervisor style.
 *
 * Invariants:
 *  - Nothing here prints or exits; errors go to the caller's
 *    struct xlcfg_error as one line "SOURCE:LINE: ..." (the key is named
 *    where known) and the return value is a negative errno.
 *  - struct xlcfg keeps every statement in source order; the setting in
 *    force for a key is the last one.  A "+=" statement stores the whole
 *    concatenated value, so lookups never have to replay history.
 *  - A parse call that fails leaves the configuration as it was before
 *    the call.
 *  - Every string a config holds is NUL-free: NUL bytes and escapes that
 *    would produce one are refused.
 *
 * Where ferry differs from Xen on purpose (documented in xl.cfg(5)): the
 * first error stops parsing (Xen reports each bad line); a comment on the
 * last line needs no newline and CR LF line ends are accepted (both are
 * lexical errors in Xen); \xHH and \OOO escapes work (Xen's are broken).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/size.h"
#include "xl-cfg.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Lists nested deeper than this are refused rather than recursed into. */
#define MAX_NESTING 64

/* ======================================================================
 * Small helpers: errors, a growable string buffer, quoting for messages
 * ====================================================================== */

static void seterr(struct xlcfg_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void seterr(struct xlcfg_error *err, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

struct sbuf {
    char *buf;
    size_t len, size;
    bool oom;
};

static void sb_put(struct sbuf *sb, const char *s, size_t n)
{
    if (sb->oom)
        return;
    if (sb->len + n + 1 > sb->size) {
        size_t size = sb->size ? sb->size : 64;
        char *buf;

        while (size < sb->len + n + 1)
            size *= 2;
        buf = realloc(sb->buf, size);
        if (!buf) {
            sb->oom = true;
            return;
        }
        sb->buf = buf;
        sb->size = size;
    }
    memcpy(sb->buf + sb->len, s, n);
    sb->len += n;
    sb->buf[sb->len] = '\0';
}

/* Takes an int so callers can pass bytes built from arithmetic. */
static void sb_putc(struct sbuf *sb, int c)
{
    char ch = (char)c;

    sb_put(sb, &ch, 1);
}

static void sb_puts(struct sbuf *sb, const char *s)
{
    sb_put(sb, s, strlen(s));
}

static void sb_printf(struct sbuf *sb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
    char small[128];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0) {
        sb->oom = true;
        return;
    }
    if ((size_t)n < sizeof(small)) {
        sb_put(sb, small, n);
        return;
    }
    {
        char *big = malloc(n + 1);

        if (!big) {
            sb->oom = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, n + 1, fmt, ap);
        va_end(ap);
        sb_put(sb, big, n);
        free(big);
    }
}

/* Hand over the buffer (never NULL unless out of memory). */
static char *sb_finish(struct sbuf *sb)
{
    char *s;

    if (!sb->oom && !sb->buf)
        sb_put(sb, "", 0);
    if (sb->oom) {
        free(sb->buf);
        s = NULL;
    } else {
        s = sb->buf;
    }
    sb->buf = NULL;
    sb->len = sb->size = 0;
    return s;
}

/*
 * Quote @n bytes of @s for an error message: in double quotes, with
 * quotes, backslashes and control characters escaped, cut short with
 * "..." so a message stays one readable line.
 */
#define QUOTE_MAX 160

static const char *quote_msg(char buf[QUOTE_MAX], const char *s, size_t n)
{
    size_t o = 0, i;

    buf[o++] = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];

        if (o + 8 >= QUOTE_MAX) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if (c == '\t') {
            buf[o++] = '\\';
            buf[o++] = 't';
        } else if (c < 0x20 || c == 0x7f) {
            o += snprintf(buf + o, QUOTE_MAX - o, "\\x%02x", c);
        } else {
            buf[o++] = (char)c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static const char *quote_str(char buf[QUOTE_MAX], const char *s)
{
    return quote_msg(buf, s, strlen(s));
}

/* ======================================================================
 * Values
 * ====================================================================== */

struct xlcfg_value {
    enum xlcfg_type type;
    int line;
    char *text;                     /* STRING and NUMBER */
    struct xlcfg_value **items;     /* LIST */
    unsigned int nr_items, max_items;
};

static void value_free(struct xlcfg_value *v)
{
    unsigned int i;

    if (!v)
        return;
    for (i = 0; i < v->nr_items; i++)
        value_free(v->items[i]);
    free(v->items);
    free(v->text);
    free(v);
}

/* An atom taking ownership of @text (freed on failure too). */
static struct xlcfg_value *atom_new(enum xlcfg_type type, char *text,
                                    int line)
{
    struct xlcfg_value *v = calloc(1, sizeof(*v));

    if (!v) {
        free(text);
        return NULL;
    }
    v->type = type;
    v->text = text;
    v->line = line;
    return v;
}

static struct xlcfg_value *list_new(int line)
{
    struct xlcfg_value *v = calloc(1, sizeof(*v));

    if (v) {
        v->type = XLCFG_LIST;
        v->line = line;
    }
    return v;
}

/* Append @item to @list, taking ownership (freed on failure too). */
static int list_append(struct xlcfg_value *list, struct xlcfg_value *item)
{
    if (list->nr_items == list->max_items) {
        unsigned int max = list->max_items ? list->max_items * 2 : 4;
        struct xlcfg_value **items;

        items = realloc(list->items, max * sizeof(*items));
        if (!items) {
            value_free(item);
            return -ENOMEM;
        }
        list->items = items;
        list->max_items = max;
    }
    list->items[list->nr_items++] = item;
    return 0;
}

static struct xlcfg_value *value_copy(const struct xlcfg_value *v)
{
    struct xlcfg_value *c;
    unsigned int i;

    if (v->type != XLCFG_LIST) {
        char *text = strdup(v->text);

        return text ? atom_new(v->type, text, v->line) : NULL;
    }
    c = list_new(v->line);
    if (!c)
        return NULL;
    for (i = 0; i < v->nr_items; i++) {
        struct xlcfg_value *item = value_copy(v->items[i]);

        if (!item || list_append(c, item)) {
            value_free(c);
            return NULL;
        }
    }
    return c;
}

enum xlcfg_type xlcfg_value_type(const struct xlcfg_value *value)
{
    return value->type;
}

int xlcfg_value_line(const struct xlcfg_value *value)
{
    return value->line;
}

const char *xlcfg_value_string(const struct xlcfg_value *value)
{
    return value->type == XLCFG_LIST ? NULL : value->text;
}

unsigned int xlcfg_list_count(const struct xlcfg_value *list)
{
    return list->type == XLCFG_LIST ? list->nr_items : 0;
}

const struct xlcfg_value *xlcfg_list_item(const struct xlcfg_value *list,
                                          unsigned int i)
{
    if (list->type != XLCFG_LIST || i >= list->nr_items)
        return NULL;
    return list->items[i];
}

const char *xlcfg_list_get_string(const struct xlcfg_value *list,
                                  unsigned int i)
{
    const struct xlcfg_value *item = xlcfg_list_item(list, i);

    return item ? xlcfg_value_string(item) : NULL;
}

/* xl's escapes, so that the text parses back to the same string. */
static void put_xl_string(struct sbuf *sb, const char *s)
{
    static const char named[] = "\a\b\f\n\r\t\v";
    static const char letter[] = "abfnrtv";

    sb_putc(sb, '"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        const char *n = c ? strchr(named, c) : NULL;

        if (c == '"' || c == '\\') {
            sb_putc(sb, '\\');
            sb_putc(sb, c);
        } else if (n) {
            sb_putc(sb, '\\');
            sb_putc(sb, letter[n - named]);
        } else if (c < 0x20 || c == 0x7f) {
            sb_printf(sb, "\\x%02x", c);
        } else {
            sb_putc(sb, c);
        }
    }
    sb_putc(sb, '"');
}

static void put_value(struct sbuf *sb, const struct xlcfg_value *v)
{
    unsigned int i;

    switch (v->type) {
    case XLCFG_STRING:
        put_xl_string(sb, v->text);
        break;
    case XLCFG_NUMBER:
        sb_puts(sb, v->text);
        break;
    case XLCFG_LIST:
        if (!v->nr_items) {
            sb_puts(sb, "[]");
            break;
        }
        sb_puts(sb, "[ ");
        for (i = 0; i < v->nr_items; i++) {
            if (i)
                sb_puts(sb, ", ");
            put_value(sb, v->items[i]);
        }
        sb_puts(sb, " ]");
        break;
    }
}

char *xlcfg_value_format(const struct xlcfg_value *value)
{
    struct sbuf sb = { 0 };

    put_value(&sb, value);
    return sb_finish(&sb);
}

/* ======================================================================
 * The configuration object
 * ====================================================================== */

void xlcfg_init(struct xlcfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
}

static void setting_free(struct xlcfg_setting *set)
{
    free(set->key);
    value_free(set->value);
    set->key = NULL;
    set->value = NULL;
}

/* Drop settings back to @nr (used to undo a failed parse call). */
static void truncate_settings(struct xlcfg *cfg, unsigned int nr)
{
    while (cfg->nr_settings > nr)
        setting_free(&cfg->settings[--cfg->nr_settings]);
}

void xlcfg_dispose(struct xlcfg *cfg)
{
    unsigned int i;

    truncate_settings(cfg, 0);
    free(cfg->settings);
    for (i = 0; i < cfg->nr_sources; i++)
        free(cfg->sources[i]);
    free(cfg->sources);
    memset(cfg, 0, sizeof(*cfg));
}

/* Settings point at their source name, so names live as long as @cfg. */
static const char *intern_source(struct xlcfg *cfg, const char *name)
{
    unsigned int i;
    char **sources, *copy;

    for (i = 0; i < cfg->nr_sources; i++)
        if (!strcmp(cfg->sources[i], name))
            return cfg->sources[i];
    copy = strdup(name);
    if (!copy)
        return NULL;
    sources = realloc(cfg->sources, (cfg->nr_sources + 1) * sizeof(*sources));
    if (!sources) {
        free(copy);
        return NULL;
    }
    cfg->sources = sources;
    cfg->sources[cfg->nr_sources++] = copy;
    return copy;
}

const struct xlcfg_setting *xlcfg_lookup(const struct xlcfg *cfg,
                                         const char *key)
{
    unsigned int i;

    for (i = cfg->nr_settings; i-- > 0;)
        if (!strcmp(cfg->settings[i].key, key))
            return &cfg->settings[i];
    return NULL;
}

/* ======================================================================
 * The lexer (the tokens of libxlu_cfg_l.l)
 * ====================================================================== */

enum tok {
    T_EOF,
    T_IDENT,        /* [a-z][._0-9a-z]* */
    T_NUMBER,       /* [0-9][0-9a-fx]* */
    T_STRING,       /* '...' or "..." */
    T_NEWLINE,      /* \n, or a comment through its \n */
    T_SEMI,
    T_COMMA,
    T_LBRACK,
    T_RBRACK,
    T_EQ,
    T_ADD,          /* += */
};

struct lexer {
    const char *name;
    const char *src;
    size_t len, pos;
    int line;                   /* line of src[pos] */
    struct xlcfg_error *err;
    bool likely_python;

    /* The current token. */
    enum tok tok;
    size_t tstart, tend;
    int tline;
    char *tval;                 /* IDENT/NUMBER text, dequoted STRING */
};

static bool is_key_start(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_key_char(char c)
{
    return is_key_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '_';
}

static bool is_number_char(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == 'x';
}

/*
 * A character no token starts with.  As in Xen, the message shows it with
 * the rest of its run of non-blank characters.
 */
static int lex_error(struct lexer *lx, const char *what)
{
    size_t end = lx->pos + 1;
    char q[QUOTE_MAX];

    while (end < lx->len && !strchr(" \t\r\n", lx->src[end]))
        end++;
    seterr(lx->err, "%s:%d: %s near %s", lx->name, lx->line, what,
           quote_msg(q, lx->src + lx->pos, end - lx->pos));
    return -EINVAL;
}

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

/* Escape error: name the whole quoted token. */
static int string_error(struct lexer *lx, size_t start, size_t end,
                        const char *what)
{
    char q[QUOTE_MAX];

    seterr(lx->err, "%s:%d: %s near %s", lx->name, lx->line, what,
           quote_msg(q, lx->src + start, end - start));
    return -EINVAL;
}

/* Turn the body of a quoted string, src[start+1 .. end-1), into tval. */
static int dequote(struct lexer *lx, size_t start, size_t end)
{
    static const char letters[] = "abfnrtv";
    static const char values[] = "\a\b\f\n\r\t\v";
    struct sbuf sb = { 0 };
    const char *s = lx->src;
    size_t i = start + 1, last = end - 1;
    int rc = 0;

    while (i < last) {
        char c = s[i++];
        const char *l;
        int v;

        if (c == '\0') {
            rc = string_error(lx, start, end,
                              "NUL character in quoted string");
            goto out;
        }
        if (c != '\\') {
            sb_putc(&sb, c);
            continue;
        }
        /* The lexer guaranteed a character after every backslash. */
        c = s[i++];
        l = c ? strchr(letters, c) : NULL;
        if (c == '"' || c == '\'' || c == '\\') {
            sb_putc(&sb, c);
        } else if (l) {
            sb_putc(&sb, values[l - letters]);
        } else if (c == 'x') {
            if (i + 2 > last || hexval(s[i]) < 0 || hexval(s[i + 1]) < 0) {
                rc = string_error(lx, start, end,
                                  "invalid digit after backslash hex numerical character escape in quoted string");
                goto out;
            }
            v = hexval(s[i]) * 16 + hexval(s[i + 1]);
            i += 2;
            if (!v) {
                rc = string_error(lx, start, end,
                                  "NUL character in quoted string");
                goto out;
            }
            sb_putc(&sb, (char)v);
        } else if (c >= '0' && c <= '7') {
            unsigned int n = 1;

            v = c - '0';
            while (n < 3 && i < last && s[i] >= '0' && s[i] <= '7') {
                v = v * 8 + (s[i++] - '0');
                n++;
            }
            if (!v) {
                rc = string_error(lx, start, end,
                                  "NUL character in quoted string");
                goto out;
            }
            if (v > 0xff) {
                rc = string_error(lx, start, end,
                                  "octal character escape out of range in quoted string");
                goto out;
            }
            sb_putc(&sb, (char)v);
        } else {
            rc = string_error(lx, start, end,
                              "invalid character after backslash in quoted string");
            goto out;
        }
    }
    lx->tval = sb_finish(&sb);
    if (!lx->tval)
        rc = -ENOMEM;
 out:
    if (rc)
        free(sb_finish(&sb));
    return rc;
}

/* A quoted string on one line; backslash escapes any character but \n. */
static int lex_string(struct lexer *lx)
{
    const char *s = lx->src;
    char quote = s[lx->pos];
    size_t i = lx->pos + 1;
    int rc;

    while (i < lx->len && s[i] != quote && s[i] != '\n') {
        if (s[i] == '\\') {
            if (i + 1 >= lx->len || s[i + 1] == '\n')
                break;
            i += 2;
        } else {
            i++;
        }
    }
    if (i >= lx->len || s[i] != quote) {
        size_t end = lx->pos;
        char q[QUOTE_MAX];

        while (end < lx->len && s[end] != '\n' && s[end] != '\r')
            end++;
        seterr(lx->err, "%s:%d: unterminated string near %s", lx->name,
               lx->line, quote_msg(q, s + lx->pos, end - lx->pos));
        return -EINVAL;
    }
    lx->tend = i + 1;
    rc = dequote(lx, lx->pos, lx->tend);
    if (rc)
        return rc;
    lx->pos = lx->tend;
    lx->tok = T_STRING;
    return 0;
}

static int lex_word(struct lexer *lx, enum tok tok, bool (*in)(char))
{
    size_t end = lx->pos + 1;

    while (end < lx->len && in(lx->src[end]))
        end++;
    lx->tval = strndup(lx->src + lx->pos, end - lx->pos);
    if (!lx->tval)
        return -ENOMEM;
    lx->tok = tok;
    lx->tend = lx->pos = end;
    return 0;
}

static int lex_single(struct lexer *lx, enum tok tok, size_t n)
{
    lx->tok = tok;
    lx->pos += n;
    lx->tend = lx->pos;
    return 0;
}

static int lex_newline(struct lexer *lx, size_t end)
{
    lx->tok = T_NEWLINE;
    lx->pos = lx->tend = end;
    lx->line++;
    return 0;
}

static int lex_next(struct lexer *lx)
{
    const char *s = lx->src;
    size_t i;
    char c;

    free(lx->tval);
    lx->tval = NULL;

    while (lx->pos < lx->len && (s[lx->pos] == ' ' || s[lx->pos] == '\t'))
        lx->pos++;
    lx->tstart = lx->tend = lx->pos;
    lx->tline = lx->line;
    if (lx->pos == lx->len) {
        lx->tok = T_EOF;
        return 0;
    }

    c = s[lx->pos];
    switch (c) {
    case '\n':
        return lex_newline(lx, lx->pos + 1);
    case '\r':
        if (lx->pos + 1 < lx->len && s[lx->pos + 1] == '\n')
            return lex_newline(lx, lx->pos + 2);
        break;
    case '#':
        for (i = lx->pos; i < lx->len && s[i] != '\n'; i++)
            ;
        if (i == lx->len) {
            /* A comment on the last line: end the statement, then EOF. */
            lx->tok = T_NEWLINE;
            lx->pos = lx->tend = i;
            return 0;
        }
        return lex_newline(lx, i + 1);
    case ',':
        return lex_single(lx, T_COMMA, 1);
    case '[':
        return lex_single(lx, T_LBRACK, 1);
    case ']':
        return lex_single(lx, T_RBRACK, 1);
    case ';':
        return lex_single(lx, T_SEMI, 1);
    case '=':
        return lex_single(lx, T_EQ, 1);
    case '+':
        if (lx->pos + 1 < lx->len && s[lx->pos + 1] == '=')
            return lex_single(lx, T_ADD, 2);
        break;
    case '\'':
    case '"':
        return lex_string(lx);
    default:
        if (is_key_start(c))
            return lex_word(lx, T_IDENT, is_key_char);
        if (c >= '0' && c <= '9')
            return lex_word(lx, T_NUMBER, is_number_char);
        break;
    }

    /* Xen's hint: these usually mean an old Python-syntax config. */
    if (c == '+' || c == '-' || c == '.' || c == '(' || c == ')' ||
        c == ':')
        lx->likely_python = true;
    return lex_error(lx, "lexical error");
}

/* ======================================================================
 * The parser (the grammar of libxlu_cfg_y.y, by recursive descent)
 *
 *   file       := stmts | stmts assignment
 *   stmt       := assignment endstmt | endstmt
 *   assignment := IDENT '=' value | IDENT '+=' value
 *   endstmt    := NEWLINE | ';'
 *   value      := atom | '[' nlok valuelist ']'
 *   valuelist  := <empty> | values | values ',' nlok
 *   values     := value nlok | values ',' nlok value nlok
 * ====================================================================== */

struct parser {
    struct lexer lx;
    struct xlcfg *cfg;
    const char *source;         /* interned name */
};

static int syntax_error(struct parser *p)
{
    struct lexer *lx = &p->lx;
    char q[QUOTE_MAX];
    const char *near;

    if (lx->tok == T_EOF)
        near = "end of file";
    else if (lx->tok == T_NEWLINE)
        near = "end of line";
    else
        near = quote_msg(q, lx->src + lx->tstart, lx->tend - lx->tstart);
    seterr(lx->err, "%s:%d: syntax error near %s", lx->name, lx->tline,
           near);
    return -EINVAL;
}

static int skip_newlines(struct parser *p)
{
    int rc = 0;

    while (!rc && p->lx.tok == T_NEWLINE)
        rc = lex_next(&p->lx);
    return rc;
}

static int parse_value(struct parser *p, unsigned int depth,
                       struct xlcfg_value **value_r);

/* After '[': the items, up to and including ']'. */
static int parse_list(struct parser *p, unsigned int depth,
                      struct xlcfg_value *list)
{
    struct xlcfg_value *item;
    int rc;

    rc = skip_newlines(p);
    if (rc)
        return rc;
    if (p->lx.tok == T_RBRACK)
        return lex_next(&p->lx);
    for (;;) {
        rc = parse_value(p, depth + 1, &item);
        if (rc)
            return rc;
        rc = list_append(list, item);
        if (!rc)
            rc = skip_newlines(p);
        if (rc)
            return rc;
        if (p->lx.tok == T_RBRACK)
            return lex_next(&p->lx);
        if (p->lx.tok != T_COMMA)
            return syntax_error(p);
        rc = lex_next(&p->lx);
        if (!rc)
            rc = skip_newlines(p);
        if (rc)
            return rc;
        if (p->lx.tok == T_RBRACK)   /* trailing comma */
            return lex_next(&p->lx);
    }
}

static int parse_value(struct parser *p, unsigned int depth,
                       struct xlcfg_value **value_r)
{
    struct lexer *lx = &p->lx;
    struct xlcfg_value *v;
    int rc;

    *value_r = NULL;
    if (lx->tok == T_STRING || lx->tok == T_NUMBER) {
        v = atom_new(lx->tok == T_STRING ? XLCFG_STRING : XLCFG_NUMBER,
                     lx->tval, lx->tline);
        lx->tval = NULL;
        if (!v)
            return -ENOMEM;
        rc = lex_next(lx);
        if (rc) {
            value_free(v);
            return rc;
        }
        *value_r = v;
        return 0;
    }
    if (lx->tok != T_LBRACK)
        return syntax_error(p);
    if (depth >= MAX_NESTING) {
        char q[QUOTE_MAX];

        seterr(lx->err, "%s:%d: lists nested too deeply near %s", lx->name,
               lx->tline, quote_msg(q, "[", 1));
        return -EINVAL;
    }
    v = list_new(lx->tline);
    if (!v)
        return -ENOMEM;
    rc = lex_next(lx);
    if (!rc)
        rc = parse_list(p, depth, v);
    if (rc) {
        value_free(v);
        return rc;
    }
    *value_r = v;
    return 0;
}

/*
 * Concatenate for "key += value" as libxlu does: an atom onto the earlier
 * atom, a list onto the earlier list.  @v becomes the whole new value.
 */
static int concat_value(struct parser *p, const char *key,
                        const struct xlcfg_value *prev,
                        struct xlcfg_value *v)
{
    if ((prev->type == XLCFG_LIST) != (v->type == XLCFG_LIST)) {
        seterr(p->lx.err,
               "%s:%d: key \"%s\": can't add [list] to \"string\" or vice versa",
               p->lx.name, v->line, key);
        return -EINVAL;
    }
    if (v->type != XLCFG_LIST) {
        size_t a = strlen(prev->text), b = strlen(v->text);
        char *text = malloc(a + b + 1);

        if (!text)
            return -ENOMEM;
        memcpy(text, prev->text, a);
        memcpy(text + a, v->text, b + 1);
        free(v->text);
        v->text = text;
        if (prev->type == XLCFG_STRING)
            v->type = XLCFG_STRING;
        return 0;
    } else {
        struct xlcfg_value *joined = list_new(v->line), *item;
        unsigned int i;

        if (!joined)
            return -ENOMEM;
        for (i = 0; i < prev->nr_items + v->nr_items; i++) {
            if (i < prev->nr_items) {
                item = value_copy(prev->items[i]);
            } else {
                item = v->items[i - prev->nr_items];
                v->items[i - prev->nr_items] = NULL;
            }
            if (!item || list_append(joined, item)) {
                value_free(joined);
                return -ENOMEM;
            }
        }
        /* Move the joined items into @v, which the caller owns. */
        free(v->items);
        v->items = joined->items;
        v->nr_items = joined->nr_items;
        v->max_items = joined->max_items;
        joined->items = NULL;
        joined->nr_items = joined->max_items = 0;
        value_free(joined);
        return 0;
    }
}

/* Store a statement; takes ownership of @key and @v. */
static int store(struct parser *p, char *key, enum xlcfg_op op,
                 struct xlcfg_value *v)
{
    struct xlcfg *cfg = p->cfg;
    struct xlcfg_setting *set;
    int rc = 0;

    if (op == XLCFG_OP_ADD) {
        const struct xlcfg_setting *prev = xlcfg_lookup(cfg, key);

        if (prev)
            rc = concat_value(p, key, prev->value, v);
        if (rc)
            goto fail;
    }
    if (cfg->nr_settings == cfg->max_settings) {
        unsigned int max = cfg->max_settings ? cfg->max_settings * 2 : 16;

        set = realloc(cfg->settings, max * sizeof(*set));
        if (!set) {
            rc = -ENOMEM;
            goto fail;
        }
        cfg->settings = set;
        cfg->max_settings = max;
    }
    set = &cfg->settings[cfg->nr_settings++];
    set->key = key;
    set->value = v;
    set->op = op;
    set->source = p->source;
    set->line = v->line;
    return 0;

 fail:
    free(key);
    value_free(v);
    return rc;
}

static int parse_assignment(struct parser *p)
{
    struct lexer *lx = &p->lx;
    struct xlcfg_value *v;
    enum xlcfg_op op;
    char *key = lx->tval;
    int rc;

    lx->tval = NULL;
    rc = lex_next(lx);
    if (rc)
        goto fail;
    if (lx->tok == T_EQ) {
        op = XLCFG_OP_ASSIGN;
    } else if (lx->tok == T_ADD) {
        op = XLCFG_OP_ADD;
    } else {
        rc = syntax_error(p);
        goto fail;
    }
    rc = lex_next(lx);
    if (!rc)
        rc = parse_value(p, 0, &v);
    if (rc)
        goto fail;
    return store(p, key, op, v);

 fail:
    free(key);
    return rc;
}

static int parse_file_body(struct parser *p)
{
    struct lexer *lx = &p->lx;
    int rc;

    rc = lex_next(lx);
    while (!rc) {
        switch (lx->tok) {
        case T_EOF:
            return 0;
        case T_NEWLINE:
        case T_SEMI:
            rc = lex_next(lx);
            continue;
        case T_IDENT:
            break;
        default:
            return syntax_error(p);
        }
        rc = parse_assignment(p);
        if (rc)
            return rc;
        if (lx->tok == T_EOF)
            return 0;
        if (lx->tok != T_NEWLINE && lx->tok != T_SEMI)
            return syntax_error(p);
        rc = lex_next(lx);
    }
    return rc;
}

static int parse_buffer(struct xlcfg *cfg, const char *name,
                        const char *text, size_t len,
                        struct xlcfg_error *err)
{
    unsigned int nr_before = cfg->nr_settings;
    struct parser p;
    int rc;

    memset(&p, 0, sizeof(p));
    p.cfg = cfg;
    p.source = intern_source(cfg, name);
    if (!p.source) {
        seterr(err, "%s: out of memory", name);
        return -ENOMEM;
    }
    p.lx.name = p.source;
    p.lx.src = text;
    p.lx.len = len;
    p.lx.line = 1;
    p.lx.err = err;

    rc = parse_file_body(&p);
    free(p.lx.tval);
    if (p.lx.likely_python)
        cfg->likely_python = true;
    if (rc == -ENOMEM)
        seterr(err, "%s:%d: out of memory", name, p.lx.line);
    if (rc)
        truncate_settings(cfg, nr_before);
    return rc;
}

int xlcfg_parse_string(struct xlcfg *cfg, const char *name,
                       const char *text, struct xlcfg_error *err)
{
    return parse_buffer(cfg, name, text, strlen(text), err);
}

int xlcfg_parse_file(struct xlcfg *cfg, const char *path,
                     struct xlcfg_error *err)
{
    struct sbuf sb = { 0 };
    char chunk[8192];
    char *text = NULL;
    ssize_t r;
    int fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rc = -errno;
        seterr(err, "%s: unable to open configuration file: %s", path,
               strerror(-rc));
        goto out;
    }
    for (;;) {
        r = read(fd, chunk, sizeof(chunk));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            seterr(err, "%s: unable to read configuration file: %s", path,
                   strerror(-rc));
            goto out;
        }
        if (r == 0)
            break;
        sb_put(&sb, chunk, r);
    }
    {
        size_t len = sb.len;

        text = sb_finish(&sb);
        if (!text) {
            rc = -ENOMEM;
            seterr(err, "%s: out of memory", path);
            goto out;
        }
        rc = parse_buffer(cfg, path, text, len, err);
    }

 out:
    if (fd >= 0)
        close(fd);
    free(sb_finish(&sb));
    free(text);
    return rc;
}

int xlcfg_apply_overrides(struct xlcfg *cfg, const char *const *args,
                          unsigned int nr_args, struct xlcfg_error *err)
{
    unsigned int i;
    int rc;

    for (i = 0; i < nr_args; i++) {
        rc = xlcfg_parse_string(cfg, "command line", args[i], err);
        if (rc)
            return rc;
    }
    return 0;
}

/* ======================================================================
 * Typed getters (libxlu's xlu_cfg_get_*)
 * ====================================================================== */

static void key_error(struct xlcfg_error *err, const struct xlcfg_setting *set,
                      const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void key_error(struct xlcfg_error *err, const struct xlcfg_setting *set,
                      const char *fmt, ...)
{
    char what[XLCFG_ERROR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    seterr(err, "%s:%d: key \"%s\": %s", set->source, set->line, set->key,
           what);
}

static int find_setting(const struct xlcfg *cfg, const char *key,
                        const struct xlcfg_setting **set_r,
                        struct xlcfg_error *err)
{
    *set_r = xlcfg_lookup(cfg, key);
    if (!*set_r) {
        seterr(err, "key \"%s\" is not set", key);
        return -ENOENT;
    }
    return 0;
}

int xlcfg_get_string(const struct xlcfg *cfg, const char *key,
                     const char **value_r, struct xlcfg_error *err)
{
    const struct xlcfg_setting *set;
    int rc = find_setting(cfg, key, &set, err);

    if (rc)
        return rc;
    if (set->value->type == XLCFG_LIST) {
        key_error(err, set, "expected a single value, got a list");
        return -EINVAL;
    }
    *value_r = set->value->text;
    return 0;
}

int xlcfg_get_bounded_long(const struct xlcfg *cfg, const char *key,
                           long min, long max, long *value_r,
                           struct xlcfg_error *err)
{
    const struct xlcfg_setting *set;
    const char *text;
    char q[QUOTE_MAX];
    char *end;
    long l;
    int rc = find_setting(cfg, key, &set, err);

    if (rc)
        return rc;
    if (set->value->type == XLCFG_LIST) {
        key_error(err, set, "expected a number, got a list");
        return -EINVAL;
    }
    if (set->op == XLCFG_OP_ADD) {
        key_error(err, set, "can't use += with numbers");
        return -EINVAL;
    }
    text = set->value->text;
    errno = 0;
    l = strtol(text, &end, 0);
    if (errno == ERANGE) {
        key_error(err, set, "number %s is out of range", quote_str(q, text));
        return -ERANGE;
    }
    if (end == text || *end) {
        if (set->value->type == XLCFG_STRING)
            key_error(err, set, "expected a number, got string %s",
                      quote_str(q, text));
        else
            key_error(err, set, "expected a number, got %s",
                      quote_str(q, text));
        return -EINVAL;
    }
    if (l < min) {
        key_error(err, set, "value %ld is smaller than minimum bound %ld",
                  l, min);
        return -EINVAL;
    }
    if (l > max) {
        key_error(err, set, "value %ld is greater than maximum bound %ld",
                  l, max);
        return -EINVAL;
    }
    *value_r = l;
    return 0;
}

int xlcfg_get_long(const struct xlcfg *cfg, const char *key,
                   long *value_r, struct xlcfg_error *err)
{
    return xlcfg_get_bounded_long(cfg, key, LONG_MIN, LONG_MAX, value_r,
                                  err);
}

int xlcfg_get_list(const struct xlcfg *cfg, const char *key,
                   const struct xlcfg_value **list_r,
                   struct xlcfg_error *err)
{
    const struct xlcfg_setting *set;
    char q[QUOTE_MAX];
    int rc = find_setting(cfg, key, &set, err);

    if (rc)
        return rc;
    if (set->value->type != XLCFG_LIST) {
        if (set->value->type == XLCFG_STRING)
            key_error(err, set, "expected a list, got string %s",
                      quote_str(q, set->value->text));
        else
            key_error(err, set, "expected a list, got number %s",
                      set->value->text);
        return -EINVAL;
    }
    *list_r = set->value;
    return 0;
}

/* ======================================================================
 * The domain configuration
 * ====================================================================== */

/* xl.cfg names (xl_parse.c) and libxl JSON names (the IDL, lower case). */
static const struct {
    enum ferry_action action;
    const char *xl;
    const char *json;
} actions[] = {
    { FERRY_ACTION_DESTROY, "destroy", "destroy" },
    { FERRY_ACTION_RESTART, "restart", "restart" },
    { FERRY_ACTION_RESTART_RENAME, "rename-restart", "restart_rename" },
    { FERRY_ACTION_PRESERVE, "preserve", "preserve" },
    { FERRY_ACTION_COREDUMP_DESTROY, "coredump-destroy", "coredump_destroy" },
    { FERRY_ACTION_COREDUMP_RESTART, "coredump-restart", "coredump_restart" },
    { FERRY_ACTION_SOFT_RESET, "soft-reset", "soft_reset" },
};

const char *ferry_action_name(enum ferry_action action)
{
    unsigned int i;

    for (i = 0; i < ARRAY_SIZE(actions); i++)
        if (actions[i].action == action)
            return actions[i].xl;
    return NULL;
}

const char *ferry_action_json_name(enum ferry_action action)
{
    unsigned int i;

    for (i = 0; i < ARRAY_SIZE(actions); i++)
        if (actions[i].action == action)
            return actions[i].json;
    return NULL;
}

static int action_from_name(const char *name, bool json,
                            enum ferry_action *action_r)
{
    unsigned int i;

    for (i = 0; i < ARRAY_SIZE(actions); i++) {
        if (!strcmp(name, json ? actions[i].json : actions[i].xl)) {
            *action_r = actions[i].action;
            return 0;
        }
    }
    return -EINVAL;
}

/* Default memory when neither memory nor maxmem is given: libxl's. */
#define DEFAULT_MEMORY_MIB 32
/* Bound so that the KiB figure (x1024) fits an int64 in the JSON. */
#define MAX_MEMORY_MIB (LONG_MAX / 1024)

/* The keys ferry reads; any other key is kept as unknown. */
static const char *const known_keys[] = {
    "name", "uuid", "type", "builder", "memory", "maxmem", "vcpus",
    "maxvcpus", "kernel", "cmdline", "root", "extra", "on_poweroff",
    "on_reboot", "on_crash",
};

void ferry_domain_config_init(struct ferry_domain_config *dc)
{
    memset(dc, 0, sizeof(*dc));
    dc->type = FERRY_DOMAIN_TYPE_PV;
    dc->memory_mib = dc->maxmem_mib = DEFAULT_MEMORY_MIB;
    dc->vcpus = dc->maxvcpus = 1;
    dc->on_poweroff = FERRY_ACTION_DESTROY;
    dc->on_reboot = FERRY_ACTION_RESTART;
    dc->on_crash = FERRY_ACTION_DESTROY;
}

void ferry_domain_config_dispose(struct ferry_domain_config *dc)
{
    unsigned int i;

    free(dc->name);
    free(dc->kernel);
    free(dc->cmdline);
    for (i = 0; i < dc->nr_unknown; i++) {
        free(dc->unknown[i].key);
        free(dc->unknown[i].value);
        free(dc->unknown[i].source);
    }
    free(dc->unknown);
    for (i = 0; i < dc->nr_warnings; i++)
        free(dc->warnings[i]);
    free(dc->warnings);
    ferry_domain_config_init(dc);
}

static int add_warning(struct ferry_domain_config *dc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int add_warning(struct ferry_domain_config *dc, const char *fmt, ...)
{
    char **warnings;
    char *msg;
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (n < 0)
        return -ENOMEM;
    warnings = realloc(dc->warnings,
                       (dc->nr_warnings + 1) * sizeof(*warnings));
    if (!warnings) {
        free(msg);
        return -ENOMEM;
    }
    dc->warnings = warnings;
    dc->warnings[dc->nr_warnings++] = msg;
    return 0;
}

/* The name messages use for the whole configuration: its first source. */
static const char *cfg_name(const struct xlcfg *cfg)
{
    return cfg->nr_sources ? cfg->sources[0] : "config";
}

/*
 * xl's domain type rule: the given text may be any prefix of a type name,
 * tried in the order hvm, pv, pvh (so "" means hvm and "p" means pv).
 */
enum xl_type { XL_TYPE_INVALID, XL_TYPE_HVM, XL_TYPE_PV, XL_TYPE_PVH };

static enum xl_type classify_type(const char *s, bool builder)
{
    size_t n = strlen(s);

    if (!strncmp(s, "hvm", n))
        return XL_TYPE_HVM;
    if (builder)
        return strncmp(s, "generic", n) ? XL_TYPE_INVALID : XL_TYPE_PV;
    if (!strncmp(s, "pv", n))
        return XL_TYPE_PV;
    if (!strncmp(s, "pvh", n))
        return XL_TYPE_PVH;
    return XL_TYPE_INVALID;
}

static int parse_type(const struct xlcfg *cfg, struct xlcfg_error *err)
{
    const struct xlcfg_setting *tset = NULL, *bset = NULL, *set;
    enum xl_type type = XL_TYPE_INVALID, builder;
    const char *s;
    char q[QUOTE_MAX];
    int rc;

    rc = xlcfg_get_string(cfg, "type", &s, err);
    if (rc && rc != -ENOENT)
        return rc;
    if (!rc) {
        tset = xlcfg_lookup(cfg, "type");
        type = classify_type(s, false);
        if (type == XL_TYPE_INVALID) {
            key_error(err, tset, "Invalid domain type %s.", quote_str(q, s));
            return -EINVAL;
        }
    }

    /* "builder" is deprecated since Xen 4.10 but still honoured. */
    rc = xlcfg_get_string(cfg, "builder", &s, err);
    if (rc && rc != -ENOENT)
        return rc;
    if (!rc) {
        bset = xlcfg_lookup(cfg, "builder");
        builder = classify_type(s, true);
        if (builder == XL_TYPE_INVALID) {
            key_error(err, bset, "Invalid domain type %s.", quote_str(q, s));
            return -EINVAL;
        }
        if (type != XL_TYPE_INVALID && type != builder) {
            key_error(err, bset,
                      "Contradicting \"builder\" and \"type\" options specified.");
            return -EINVAL;
        }
        type = builder;
    }

    if (type == XL_TYPE_INVALID || type == XL_TYPE_PV)
        return 0;           /* PV is xl's default on x86 */
    set = bset ? bset : tset;
    key_error(err, set,
              "domain type \"%s\" is not supported: ferry runs PV domains only (type = \"pv\")",
              type == XL_TYPE_HVM ? "hvm" : "pvh");
    return -EINVAL;
}

static int dup_string(char **dst, const char *src, struct xlcfg_error *err)
{
    *dst = strdup(src);
    if (!*dst) {
        seterr(err, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static int parse_name_uuid(struct ferry_domain_config *dc,
                           const struct xlcfg *cfg, struct xlcfg_error *err)
{
    const char *s;
    char q[QUOTE_MAX];
    int rc;

    rc = xlcfg_get_string(cfg, "name", &s, err);
    if (rc == -ENOENT) {
        seterr(err, "%s: Domain name must be specified.", cfg_name(cfg));
        return -EINVAL;
    }
    if (rc)
        return rc;
    if (!*s) {
        key_error(err, xlcfg_lookup(cfg, "name"),
                  "Domain name must not be empty.");
        return -EINVAL;
    }
    rc = dup_string(&dc->name, s, err);
    if (rc)
        return rc;

    rc = xlcfg_get_string(cfg, "uuid", &s, err);
    if (rc == -ENOENT) {
        uuid_generate(dc->uuid);
        return 0;
    }
    if (rc)
        return rc;
    if (uuid_parse(s, dc->uuid)) {
        key_error(err, xlcfg_lookup(cfg, "uuid"), "Failed to parse UUID: %s",
                  quote_str(q, s));
        return -EINVAL;
    }
    return 0;
}

/*
 * memory/maxmem: a size in ferry's one syntax (common/size.h), in MiB when
 * it has no unit, quoted or not; a whole number of MiB from 1 MiB up.
 */
static int get_size_mib(const struct xlcfg *cfg, const char *key,
                        long *mib_r, struct xlcfg_error *err)
{
    const struct xlcfg_setting *set;
    char q[QUOTE_MAX];
    uint64_t bytes;
    int rc = find_setting(cfg, key, &set, err);

    if (rc)
        return rc;
    if (set->value->type == XLCFG_LIST) {
        key_error(err, set, "expected a size, got a list");
        return -EINVAL;
    }
    if (set->op == XLCFG_OP_ADD) {
        key_error(err, set, "can't use += with numbers");
        return -EINVAL;
    }
    quote_str(q, set->value->text);
    rc = ferry_parse_size(set->value->text, SIZE_DEFAULT_MIB, &bytes);
    if (rc) {
        key_error(err, set, "%s %s", q,
                  ferry_size_error(rc));
        return -EINVAL;
    }
    if (bytes % (1 << 20)) {
        key_error(err, set, "%s is not a whole number of MiB", q);
        return -EINVAL;
    }
    if (!bytes) {
        key_error(err, set, "%s is smaller than the minimum, 1 MiB", q);
        return -EINVAL;
    }
    /* 2^64 bytes are 2^44 MiB, far below MAX_MEMORY_MIB. */
    *mib_r = (long)(bytes >> 20);
    return 0;
}

/* memory/maxmem as xl and libxl default them, plus ferry's maxmem check. */
static int parse_memory(struct ferry_domain_config *dc,
                        const struct xlcfg *cfg, struct xlcfg_error *err)
{
    long memory = 0, maxmem = 0;
    int rc;

    rc = get_size_mib(cfg, "memory", &memory, err);
    if (rc && rc != -ENOENT)
        return rc;
    rc = get_size_mib(cfg, "maxmem", &maxmem, err);
    if (rc && rc != -ENOENT)
        return rc;

    if (!memory && !maxmem)
        memory = maxmem = DEFAULT_MEMORY_MIB;
    else if (!maxmem)
        maxmem = memory;
    else if (!memory)
        memory = maxmem;
    if (maxmem < memory) {
        key_error(err, xlcfg_lookup(cfg, "maxmem"),
                  "maxmem < memory (%ld MiB < %ld MiB)", maxmem, memory);
        return -EINVAL;
    }
    dc->memory_mib = memory;
    dc->maxmem_mib = maxmem;
    return 0;
}

static int parse_vcpus(struct ferry_domain_config *dc,
                       const struct xlcfg *cfg, struct xlcfg_error *err)
{
    long vcpus = 1, maxvcpus = 0;
    int rc;

    rc = xlcfg_get_bounded_long(cfg, "vcpus", LONG_MIN, FERRY_MAX_VCPUS,
                                &vcpus, err);
    if (rc && rc != -ENOENT)
        return rc;
    if (vcpus < 1)
        vcpus = 1;          /* xl: "Default to 1 vCPU" */

    rc = xlcfg_get_bounded_long(cfg, "maxvcpus", LONG_MIN, FERRY_MAX_VCPUS,
                                &maxvcpus, err);
    if (rc && rc != -ENOENT)
        return rc;
    if (maxvcpus == 0)
        maxvcpus = vcpus;   /* 0 means "not set" to libxl */
    if (maxvcpus < vcpus) {
        key_error(err, xlcfg_lookup(cfg, "maxvcpus"),
                  "maxvcpus < vcpus (%ld < %ld)", maxvcpus, vcpus);
        return -EINVAL;
    }
    dc->vcpus = vcpus;
    dc->maxvcpus = maxvcpus;
    return 0;
}

static int parse_actions(struct ferry_domain_config *dc,
                         const struct xlcfg *cfg, struct xlcfg_error *err)
{
    static const struct {
        const char *key;
        const char *dflt;
        size_t offset;
    } keys[] = {
        { "on_poweroff", "destroy",
          offsetof(struct ferry_domain_config, on_poweroff) },
        { "on_reboot", "restart",
          offsetof(struct ferry_domain_config, on_reboot) },
        { "on_crash", "destroy",
          offsetof(struct ferry_domain_config, on_crash) },
    };
    enum ferry_action *a;
    const char *s;
    char q[QUOTE_MAX];
    unsigned int i;
    int rc;

    for (i = 0; i < ARRAY_SIZE(keys); i++) {
        a = (enum ferry_action *)((char *)dc + keys[i].offset);
        rc = xlcfg_get_string(cfg, keys[i].key, &s, err);
        if (rc == -ENOENT)
            s = keys[i].dflt;
        else if (rc)
            return rc;
        if (action_from_name(s, false, a)) {
            key_error(err, xlcfg_lookup(cfg, keys[i].key),
                      "Unknown %s action %s specified", keys[i].key,
                      quote_str(q, s));
            return -EINVAL;
        }
        if (*a == FERRY_ACTION_SOFT_RESET) {
            key_error(err, xlcfg_lookup(cfg, keys[i].key),
                      "action \"soft-reset\" is not supported for PV domains");
            return -EINVAL;
        }
    }
    return 0;
}

/* kernel, and xl's parse_cmdline(): cmdline, else "root=R" and/or extra. */
static int parse_kernel(struct ferry_domain_config *dc,
                        const struct xlcfg *cfg, struct xlcfg_error *err)
{
    const char *kernel, *cmdline = NULL, *root = NULL, *extra = NULL;
    int rc;

    rc = xlcfg_get_string(cfg, "kernel", &kernel, err);
    if (rc == -ENOENT) {
        seterr(err,
               "%s: key \"kernel\" must be specified (ferry has no bootloader)",
               cfg_name(cfg));
        return -EINVAL;
    }
    if (rc)
        return rc;
    rc = dup_string(&dc->kernel, kernel, err);
    if (rc)
        return rc;

    rc = xlcfg_get_string(cfg, "cmdline", &cmdline, err);
    if (rc && rc != -ENOENT)
        return rc;
    rc = xlcfg_get_string(cfg, "root", &root, err);
    if (rc && rc != -ENOENT)
        return rc;
    rc = xlcfg_get_string(cfg, "extra", &extra, err);
    if (rc && rc != -ENOENT)
        return rc;

    rc = 0;
    if (cmdline) {
        rc = dup_string(&dc->cmdline, cmdline, err);
        if (!rc && (root || extra))
            rc = add_warning(dc,
                             "%s: Warning: ignoring root= and extra= in favour of cmdline=",
                             cfg_name(cfg));
    } else if (root && extra) {
        rc = asprintf(&dc->cmdline, "root=%s %s", root, extra) < 0 ?
             -ENOMEM : 0;
    } else if (root) {
        rc = asprintf(&dc->cmdline, "root=%s", root) < 0 ? -ENOMEM : 0;
    } else if (extra) {
        rc = dup_string(&dc->cmdline, extra, err);
    }
    if (rc == -ENOMEM) {
        dc->cmdline = NULL;
        seterr(err, "out of memory");
    }
    return rc;
}

static bool is_known_key(const char *key)
{
    unsigned int i;

    for (i = 0; i < ARRAY_SIZE(known_keys); i++)
        if (!strcmp(key, known_keys[i]))
            return true;
    return false;
}

/* Keep each unknown key once, with the setting in force for it. */
static int collect_unknown(struct ferry_domain_config *dc,
                           const struct xlcfg *cfg, struct xlcfg_error *err)
{
    struct ferry_unknown_key *u;
    const struct xlcfg_setting *set;
    unsigned int i, j;

    for (i = 0; i < cfg->nr_settings; i++) {
        const char *key = cfg->settings[i].key;

        if (is_known_key(key))
            continue;
        for (j = 0; j < dc->nr_unknown; j++)
            if (!strcmp(dc->unknown[j].key, key))
                break;
        if (j < dc->nr_unknown)
            continue;
        set = xlcfg_lookup(cfg, key);
        u = realloc(dc->unknown, (dc->nr_unknown + 1) * sizeof(*u));
        if (!u)
            goto oom;
        dc->unknown = u;
        u = &dc->unknown[dc->nr_unknown];
        memset(u, 0, sizeof(*u));
        dc->nr_unknown++;
        u->line = set->line;
        u->key = strdup(key);
        u->value = xlcfg_value_format(set->value);
        u->source = strdup(set->source);
        if (!u->key || !u->value || !u->source)
            goto oom;
    }
    return 0;

 oom:
    seterr(err, "out of memory");
    return -ENOMEM;
}

int ferry_domain_config_from_xlcfg(struct ferry_domain_config *dc,
                                   const struct xlcfg *cfg,
                                   struct xlcfg_error *err)
{
    int rc;

    /* In xl_parse.c's order, so the first error is the one xl reports. */
    rc = parse_type(cfg, err);
    if (!rc)
        rc = parse_name_uuid(dc, cfg, err);
    if (!rc)
        rc = parse_memory(dc, cfg, err);
    if (!rc)
        rc = parse_vcpus(dc, cfg, err);
    if (!rc)
        rc = parse_actions(dc, cfg, err);
    if (!rc)
        rc = parse_kernel(dc, cfg, err);
    if (!rc)
        rc = collect_unknown(dc, cfg, err);
    if (!rc)
        dc->type = FERRY_DOMAIN_TYPE_PV;
    return rc;
}

int ferry_domain_config_load(struct ferry_domain_config *dc,
                             const char *path,
                             const char *const *overrides,
                             unsigned int nr_overrides,
                             bool *likely_python_r,
                             struct xlcfg_error *err)
{
    struct xlcfg cfg;
    int rc;

    xlcfg_init(&cfg);
    rc = xlcfg_parse_file(&cfg, path, err);
    if (!rc)
        rc = xlcfg_apply_overrides(&cfg, overrides, nr_overrides, err);
    if (!rc)
        rc = ferry_domain_config_from_xlcfg(dc, &cfg, err);
    if (likely_python_r)
        *likely_python_r = cfg.likely_python;
    xlcfg_dispose(&cfg);
    return rc;
}

bool ferry_domain_config_equal(const struct ferry_domain_config *a,
                               const struct ferry_domain_config *b)
{
    bool cmdline_eq = (!a->cmdline && !b->cmdline) ||
        (a->cmdline && b->cmdline && !strcmp(a->cmdline, b->cmdline));

    return a->name && b->name && !strcmp(a->name, b->name) &&
        !uuid_compare(a->uuid, b->uuid) &&
        a->type == b->type &&
        a->memory_mib == b->memory_mib && a->maxmem_mib == b->maxmem_mib &&
        a->vcpus == b->vcpus && a->maxvcpus == b->maxvcpus &&
        a->kernel && b->kernel && !strcmp(a->kernel, b->kernel) &&
        cmdline_eq &&
        a->on_poweroff == b->on_poweroff && a->on_reboot == b->on_reboot &&
        a->on_crash == b->on_crash;
}

/* ======================================================================
 * Rendering as xl.cfg
 * ====================================================================== */

static void put_setting_str(struct sbuf *sb, const char *key, const char *s)
{
    sb_printf(sb, "%s = ", key);
    put_xl_string(sb, s);
    sb_putc(sb, '\n');
}

char *ferry_domain_config_to_xlcfg(const struct ferry_domain_config *dc)
{
    struct sbuf sb = { 0 };
    char uuid[37];
    unsigned int i;

    uuid_unparse_lower(dc->uuid, uuid);
    put_setting_str(&sb, "name", dc->name ? dc->name : "");
    put_setting_str(&sb, "uuid", uuid);
    put_setting_str(&sb, "type", "pv");
    sb_printf(&sb, "memory = %" PRIu64 "\n", dc->memory_mib);
    sb_printf(&sb, "maxmem = %" PRIu64 "\n", dc->maxmem_mib);
    sb_printf(&sb, "vcpus = %u\n", dc->vcpus);
    sb_printf(&sb, "maxvcpus = %u\n", dc->maxvcpus);
    put_setting_str(&sb, "kernel", dc->kernel ? dc->kernel : "");
    if (dc->cmdline)
        put_setting_str(&sb, "cmdline", dc->cmdline);
    put_setting_str(&sb, "on_poweroff", ferry_action_name(dc->on_poweroff));
    put_setting_str(&sb, "on_reboot", ferry_action_name(dc->on_reboot));
    put_setting_str(&sb, "on_crash", ferry_action_name(dc->on_crash));
    for (i = 0; i < dc->nr_unknown; i++) {
        const struct ferry_unknown_key *u = &dc->unknown[i];

        sb_printf(&sb, "# ignored (unknown to ferry): %s = %s  (%s:%d)\n",
                  u->key, u->value, u->source, u->line);
    }
    return sb_finish(&sb);
}

/* ======================================================================
 * libxl_domain_config JSON, written and read with json-c
 *
 * libxl writes this JSON with yajl's beautifier: four spaces an indent
 * level, "key": value, one array element per line.  json-c's pretty
 * printer has the same shape but indents with tabs; a tab inside a json-c
 * string is always written as \t, so every raw tab at the start of a line
 * is indentation and becomes four spaces.
 * ====================================================================== */

char *xlcfg_json_format(struct json_object *obj)
{
    const char *s;
    struct sbuf sb = { 0 };
    bool bol = true;

    s = json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY |
                                       JSON_C_TO_STRING_PRETTY_TAB |
                                       JSON_C_TO_STRING_SPACED |
                                       JSON_C_TO_STRING_NOSLASHESCAPE);
    if (!s)
        return NULL;
    for (; *s; s++) {
        if (bol && *s == '\t') {
            sb_puts(&sb, "    ");
            continue;
        }
        /* An empty object or array is "{}" or "[]", as yajl writes it,
         * not json-c's opening and closing lines. */
        if ((*s == '{' || *s == '[') && s[1] == '\n') {
            size_t n = 2 + strspn(s + 2, "\t");

            if (s[n] == (*s == '{' ? '}' : ']')) {
                sb_putc(&sb, *s);
                s += n;
            }
        }
        bol = *s == '\n';
        sb_putc(&sb, *s);
    }
    sb_putc(&sb, '\n');
    return sb_finish(&sb);
}

const char *xlcfg_json_line(struct json_object *obj)
{
    return json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                          JSON_C_TO_STRING_NOSLASHESCAPE);
}

int xlcfg_json_add(struct json_object *obj, const char *key,
                   struct json_object *v)
{
    if (!v)
        return -ENOMEM;
    if (json_object_object_add(obj, key, v)) {
        json_object_put(v);
        return -ENOMEM;
    }
    return 0;
}

int xlcfg_json_get_string(struct json_object *obj, const char *key,
                          const char **s_r)
{
    struct json_object *v;

    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v))
        return -ENOENT;
    if (!json_object_is_type(v, json_type_string) ||
        strlen(json_object_get_string(v)) !=
        (size_t)json_object_get_string_len(v))
        return -EINVAL;
    *s_r = json_object_get_string(v);
    return 0;
}

int xlcfg_json_get_u64(struct json_object *obj, const char *key,
                       uint64_t *v_r)
{
    struct json_object *v;

    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v))
        return -ENOENT;
    /* json-c saturates what does not fit at UINT64_MAX, so that value
     * stands for "too large". */
    if (!json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 0 ||
        json_object_get_uint64(v) == UINT64_MAX)
        return -EINVAL;
    *v_r = json_object_get_uint64(v);
    return 0;
}

int xlcfg_json_get_bool(struct json_object *obj, const char *key,
                        bool *v_r)
{
    struct json_object *v;

    if (!json_object_is_type(obj, json_type_object) ||
        !json_object_object_get_ex(obj, key, &v))
        return -ENOENT;
    if (!json_object_is_type(v, json_type_boolean))
        return -EINVAL;
    *v_r = json_object_get_boolean(v);
    return 0;
}

/* The kernel and cmdline of b_info or of its deprecated type.pv twin. */
static int json_add_boot(struct json_object *obj,
                         const struct ferry_domain_config *dc)
{
    int rc = xlcfg_json_add(obj, "kernel", json_object_new_string(
                                dc->kernel ? dc->kernel : ""));

    if (!rc && dc->cmdline)
        rc = xlcfg_json_add(obj, "cmdline",
                            json_object_new_string(dc->cmdline));
    return rc;
}

static struct json_object *config_to_json_object(
    const struct ferry_domain_config *dc)
{
    struct json_object *root, *ci = NULL, *bi = NULL, *avail = NULL;
    struct json_object *pv = NULL;
    char uuid[37];
    unsigned int i;
    int rc;

    uuid_unparse_lower(dc->uuid, uuid);
    root = json_object_new_object();
    if (!root)
        return NULL;

    rc = xlcfg_json_add(root, "c_info", ci = json_object_new_object());
    if (!rc)
        rc = xlcfg_json_add(ci, "type", json_object_new_string("pv"));
    if (!rc)
        rc = xlcfg_json_add(ci, "name", json_object_new_string(
                                dc->name ? dc->name : ""));
    if (!rc)
        rc = xlcfg_json_add(ci, "uuid", json_object_new_string(uuid));

    if (!rc)
        rc = xlcfg_json_add(root, "b_info",
                            bi = json_object_new_object());
    if (!rc)
        rc = xlcfg_json_add(bi, "max_vcpus",
                            json_object_new_uint64(dc->maxvcpus));
    if (!rc)
        rc = xlcfg_json_add(bi, "avail_vcpus",
                            avail = json_object_new_array());
    for (i = 0; !rc && i < dc->vcpus; i++) {
        struct json_object *bit = json_object_new_uint64(i);

        if (!bit || json_object_array_add(avail, bit)) {
            json_object_put(bit);
            rc = -ENOMEM;
        }
    }
    if (!rc)
        rc = xlcfg_json_add(bi, "max_memkb",
                            json_object_new_uint64(dc->maxmem_mib * 1024));
    if (!rc)
        rc = xlcfg_json_add(bi, "target_memkb",
                            json_object_new_uint64(dc->memory_mib * 1024));
    /* The generic fields and their deprecated type.pv twins, as libxl. */
    if (!rc)
        rc = json_add_boot(bi, dc);
    if (!rc)
        rc = xlcfg_json_add(bi, "type.pv",
                            pv = json_object_new_object());
    if (!rc)
        rc = json_add_boot(pv, dc);

    if (!rc)
        rc = xlcfg_json_add(root, "on_poweroff", json_object_new_string(
                                ferry_action_json_name(dc->on_poweroff)));
    if (!rc)
        rc = xlcfg_json_add(root, "on_reboot", json_object_new_string(
                                ferry_action_json_name(dc->on_reboot)));
    if (!rc)
        rc = xlcfg_json_add(root, "on_crash", json_object_new_string(
                                ferry_action_json_name(dc->on_crash)));
    if (rc) {
        json_object_put(root);
        return NULL;
    }
    return root;
}

char *ferry_domain_config_to_json(const struct ferry_domain_config *dc)
{
    struct json_object *root = config_to_json_object(dc);
    char *s;

    if (!root)
        return NULL;
    s = xlcfg_json_format(root);
    json_object_put(root);
    return s;
}

/* ======================================================================
 * Reading JSON with json-c
 * ====================================================================== */

int xlcfg_json_parse(const char *name, const char *text, size_t len,
                     struct json_object **obj_r, struct xlcfg_error *err)
{
    struct json_tokener *tok = NULL;
    struct json_object *obj = NULL;
    enum json_tokener_error jerr;
    const char *nul;
    char *buf = NULL;
    size_t end;
    int rc = -EINVAL;

    *obj_r = NULL;
    if (!name)
        name = "JSON";
    /* json-c takes an int length that counts the terminating NUL. */
    if (len >= INT_MAX) {
        seterr(err, "%s: %zu bytes of JSON is too large", name, len);
        goto out;
    }
    nul = memchr(text, '\0', len);
    if (nul) {
        seterr(err, "%s: offset %zu: NUL byte in the JSON text", name,
               (size_t)(nul - text));
        goto out;
    }
    buf = malloc(len + 1);
    tok = json_tokener_new_ex(MAX_NESTING);
    if (!buf || !tok) {
        seterr(err, "%s: out of memory", name);
        rc = -ENOMEM;
        goto out;
    }
    memcpy(buf, text, len);
    buf[len] = '\0';
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT |
                           JSON_TOKENER_VALIDATE_UTF8);
    obj = json_tokener_parse_ex(tok, buf, (int)len + 1);
    jerr = json_tokener_get_error(tok);
    end = json_tokener_get_parse_end(tok);
    if (end > len)
        end = len;
    if (!obj || jerr != json_tokener_success) {
        if (jerr == json_tokener_success || jerr == json_tokener_continue)
            jerr = json_tokener_error_parse_eof;
        seterr(err, "%s: offset %zu: %s", name, end,
               json_tokener_error_desc(jerr));
        goto out;
    }
    *obj_r = obj;
    obj = NULL;
    rc = 0;

 out:
    json_object_put(obj);
    if (tok)
        json_tokener_free(tok);
    free(buf);
    return rc;
}

/* ======================================================================
 * JSON -> domain configuration
 *
 * Every member is checked for type and range before it is used; members
 * ferry does not know are ignored, as libxl ignores them.  Messages name
 * the member by its path: "save.img: b_info.max_memkb: ...".
 * ====================================================================== */

struct jreader {
    const char *name;
    struct xlcfg_error *err;
};

static int jerr(struct jreader *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int jerr(struct jreader *r, const char *fmt, ...)
{
    char what[XLCFG_ERROR_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    seterr(r->err, "%s: %s", r->name, what);
    return -EINVAL;
}

static int joom(struct jreader *r)
{
    seterr(r->err, "%s: out of memory", r->name);
    return -ENOMEM;
}

static const char *jtype_name(const struct json_object *v)
{
    switch (json_object_get_type(v)) {
    case json_type_null: return "null";
    case json_type_boolean: return "a boolean";
    case json_type_double:
    case json_type_int: return "a number";
    case json_type_object: return "an object";
    case json_type_array: return "an array";
    case json_type_string: return "a string";
    }
    return "an unknown value";
}

static const char *jwant_name(enum json_type t)
{
    switch (t) {
    case json_type_object: return "an object";
    case json_type_array: return "an array";
    case json_type_string: return "a string";
    default: return "a number";
    }
}

/*
 * Member @key of @obj (named @path in messages) with type @type.
 * -ENOENT (no message) when absent and optional.  A string must not hold
 * a NUL (\u0000): everything ferry keeps is a C string.
 */
static int jmember(struct jreader *r, struct json_object *obj,
                   const char *path, const char *key, enum json_type type,
                   bool required, struct json_object **out)
{
    struct json_object *v = NULL;

    *out = NULL;
    if (!json_object_object_get_ex(obj, key, &v)) {
        if (!required)
            return -ENOENT;
        return jerr(r, "%s: missing \"%s\"", path, key);
    }
    if (!json_object_is_type(v, type))
        return jerr(r, "%s.%s: expected %s, got %s", path, key,
                    jwant_name(type), jtype_name(v));
    if (type == json_type_string &&
        strlen(json_object_get_string(v)) !=
        (size_t)json_object_get_string_len(v))
        return jerr(r, "%s.%s: \\u0000 is not allowed in strings", path,
                    key);
    *out = v;
    return 0;
}

/* A non-negative integer in [min, max]. */
static int jinteger(struct jreader *r, struct json_object *v,
                    const char *path, uint64_t min, uint64_t max,
                    uint64_t *out)
{
    const char *text = json_object_to_json_string_ext(v,
                                                      JSON_C_TO_STRING_PLAIN);
    uint64_t u;

    if (!json_object_is_type(v, json_type_int) &&
        !json_object_is_type(v, json_type_double))
        return jerr(r, "%s: expected a number, got %s", path,
                    jtype_name(v));
    if (!json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) < 0)
        return jerr(r, "%s: expected a non-negative integer, got %s", path,
                    text);
    /* json-c saturates at UINT64_MAX, which every bound here is below. */
    u = json_object_get_uint64(v);
    if (u < min || u > max)
        return jerr(r, "%s: %s%s is out of range [%" PRIu64 ", %" PRIu64 "]",
                    path, text, u == UINT64_MAX ? " or more" : "", min, max);
    *out = u;
    return 0;
}

/* Required member @key of @obj (@path in messages), an integer. */
static int jint_member(struct jreader *r, struct json_object *obj,
                       const char *path, const char *key, uint64_t min,
                       uint64_t max, uint64_t *out)
{
    struct json_object *v;
    char full[64];

    if (!json_object_object_get_ex(obj, key, &v))
        return jerr(r, "%s: missing \"%s\"", path, key);
    snprintf(full, sizeof(full), "%s.%s", path, key);
    return jinteger(r, v, full, min, max, out);
}

static int jdup(struct jreader *r, char **dst, struct json_object *v)
{
    *dst = strdup(json_object_get_string(v));
    return *dst ? 0 : joom(r);
}

static int json_c_info(struct ferry_domain_config *dc, struct jreader *r,
                       struct json_object *root)
{
    struct json_object *ci, *v;
    char q[QUOTE_MAX];
    int rc;

    rc = jmember(r, root, "(top level)", "c_info", json_type_object, true,
                 &ci);
    if (rc)
        return rc;

    rc = jmember(r, ci, "c_info", "type", json_type_string, true, &v);
    if (rc)
        return rc;
    if (strcmp(json_object_get_string(v), "pv"))
        return jerr(r, "c_info.type: domain type %s is not supported: ferry runs PV domains only",
                    quote_str(q, json_object_get_string(v)));

    rc = jmember(r, ci, "c_info", "name", json_type_string, true, &v);
    if (rc)
        return rc;
    if (!json_object_get_string_len(v))
        return jerr(r, "c_info.name: Domain name must not be empty.");
    rc = jdup(r, &dc->name, v);
    if (rc)
        return rc;

    rc = jmember(r, ci, "c_info", "uuid", json_type_string, true, &v);
    if (rc)
        return rc;
    if (uuid_parse(json_object_get_string(v), dc->uuid))
        return jerr(r, "c_info.uuid: Failed to parse UUID: %s",
                    quote_str(q, json_object_get_string(v)));
    return 0;
}

static int json_memory(struct ferry_domain_config *dc, struct jreader *r,
                       struct json_object *bi)
{
    static const char *const keys[] = { "max_memkb", "target_memkb" };
    uint64_t kb[2];
    unsigned int i;
    int rc;

    for (i = 0; i < 2; i++) {
        rc = jint_member(r, bi, "b_info", keys[i], 1024,
                         (uint64_t)MAX_MEMORY_MIB * 1024, &kb[i]);
        if (rc)
            return rc;
        if (kb[i] % 1024)
            return jerr(r, "b_info.%s: %" PRIu64 " KiB is not a whole number of MiB",
                        keys[i], kb[i]);
    }
    dc->maxmem_mib = kb[0] / 1024;
    dc->memory_mib = kb[1] / 1024;
    if (dc->maxmem_mib < dc->memory_mib)
        return jerr(r, "b_info.max_memkb: maxmem < memory (%" PRIu64 " KiB < %" PRIu64 " KiB)",
                    kb[0], kb[1]);
    return 0;
}

static int json_vcpus(struct ferry_domain_config *dc, struct jreader *r,
                      struct json_object *bi)
{
    struct json_object *avail;
    uint64_t max, bit;
    size_t i, n;
    int rc;

    rc = jint_member(r, bi, "b_info", "max_vcpus", 1, FERRY_MAX_VCPUS,
                     &max);
    if (rc)
        return rc;
    rc = jmember(r, bi, "b_info", "avail_vcpus", json_type_array, true,
                 &avail);
    if (rc)
        return rc;
    n = json_object_array_length(avail);
    if (!n || n > max)
        return jerr(r, "b_info.avail_vcpus: %zu vCPUs online, need 1 to max_vcpus (%" PRIu64 ")",
                    n, max);
    /* ferry starts vCPUs 0..vcpus-1 online, as xl's bitmap does. */
    for (i = 0; i < n; i++) {
        rc = jinteger(r, json_object_array_get_idx(avail, i),
                      "b_info.avail_vcpus", 0, FERRY_MAX_VCPUS, &bit);
        if (rc)
            return rc;
        if (bit != i)
            return jerr(r, "b_info.avail_vcpus: expected vCPU %zu, got %" PRIu64 " (the online vCPUs must be 0 to N-1 in order)",
                        i, bit);
    }
    dc->maxvcpus = max;
    dc->vcpus = n;
    return 0;
}

/*
 * b_info.kernel/cmdline and their deprecated type.pv twins: either may be
 * given; if both are, they must agree (libxl's deprecated_by rule).
 */
static int json_string_pair(struct jreader *r, struct json_object *bi,
                            struct json_object *pv, const char *key,
                            bool required, char **out)
{
    struct json_object *a = NULL, *b = NULL;
    int rc;

    rc = jmember(r, bi, "b_info", key, json_type_string, false, &a);
    if (rc && rc != -ENOENT)
        return rc;
    if (pv) {
        rc = jmember(r, pv, "b_info.type.pv", key, json_type_string, false,
                     &b);
        if (rc && rc != -ENOENT)
            return rc;
    }
    if (a && b && strcmp(json_object_get_string(a),
                         json_object_get_string(b)))
        return jerr(r, "b_info.type.pv.%s differs from b_info.%s", key,
                    key);
    if (!a)
        a = b;
    if (!a) {
        if (required)
            return jerr(r, "b_info: missing \"%s\"", key);
        return 0;
    }
    return jdup(r, out, a);
}

static int json_b_info(struct ferry_domain_config *dc, struct jreader *r,
                       struct json_object *root)
{
    struct json_object *bi, *pv;
    int rc;

    rc = jmember(r, root, "(top level)", "b_info", json_type_object, true,
                 &bi);
    if (!rc)
        rc = json_vcpus(dc, r, bi);
    if (!rc)
        rc = json_memory(dc, r, bi);
    if (rc)
        return rc;
    rc = jmember(r, bi, "b_info", "type.pv", json_type_object, false, &pv);
    if (rc && rc != -ENOENT)
        return rc;
    rc = json_string_pair(r, bi, pv, "kernel", true, &dc->kernel);
    if (!rc)
        rc = json_string_pair(r, bi, pv, "cmdline", false, &dc->cmdline);
    if (!rc && !*dc->kernel)
        rc = jerr(r, "b_info.kernel: must not be empty");
    return rc;
}

static int json_actions(struct ferry_domain_config *dc, struct jreader *r,
                        struct json_object *root)
{
    static const char *const keys[] = { "on_poweroff", "on_reboot",
                                        "on_crash" };
    enum ferry_action *fields[] = { &dc->on_poweroff, &dc->on_reboot,
                                    &dc->on_crash };
    struct json_object *v;
    char q[QUOTE_MAX];
    unsigned int i;
    int rc;

    for (i = 0; i < ARRAY_SIZE(keys); i++) {
        rc = jmember(r, root, "(top level)", keys[i], json_type_string,
                     false, &v);
        if (rc == -ENOENT) {
            /* libxl leaves out fields at their init value, destroy. */
            *fields[i] = FERRY_ACTION_DESTROY;
            continue;
        }
        if (rc)
            return rc;
        if (action_from_name(json_object_get_string(v), true, fields[i]))
            return jerr(r, "%s: unknown action %s", keys[i],
                        quote_str(q, json_object_get_string(v)));
        if (*fields[i] == FERRY_ACTION_SOFT_RESET)
            return jerr(r, "%s: action \"soft_reset\" is not supported for PV domains",
                        keys[i]);
    }
    return 0;
}

int ferry_domain_config_from_json(struct ferry_domain_config *dc,
                                  const char *name, const char *json,
                                  size_t len, struct xlcfg_error *err)
{
    struct jreader r = {
        .name = name ? name : "JSON",
        .err = err,
    };
    struct json_object *root = NULL;
    int rc;

    rc = xlcfg_json_parse(r.name, json, len, &root, err);
    if (rc)
        goto out;
    if (!json_object_is_type(root, json_type_object)) {
        rc = jerr(&r, "expected an object, got %s", jtype_name(root));
        goto out;
    }
    rc = json_c_info(dc, &r, root);
    if (!rc)
        rc = json_b_info(dc, &r, root);
    if (!rc)
        rc = json_actions(dc, &r, root);
    if (!rc)
        dc->type = FERRY_DOMAIN_TYPE_PV;

 out:
    json_object_put(root);
    return rc;
}
