#include "jsonw.h"

#include <stdlib.h>
#include <string.h>

void jsonw_init(struct jsonw *w, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = malloc(cap);
    w->cap = w->buf ? cap : 0;
    w->failed = w->buf == NULL;
}

/* Room for n more bytes (and a NUL); 0, or -1 once memory ran short. */
static int room(struct jsonw *w, size_t n)
{
    size_t cap;
    char *grown;

    if (w->failed)
        return -1;
    if (w->len + n + 1 <= w->cap)
        return 0;
    cap = w->cap ? w->cap : 256;
    while (cap < w->len + n + 1)
        cap *= 2;
    grown = realloc(w->buf, cap);
    if (!grown) {
        w->failed = 1;
        return -1;
    }
    w->buf = grown;
    w->cap = cap;
    return 0;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
    if (room(w, n) < 0)
        return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void tabs(struct jsonw *w, int n)
{
    if (n <= 0 || room(w, (size_t)n) < 0)
        return;
    memset(w->buf + w->len, '\t', (size_t)n);
    w->len += (size_t)n;
}

/* Before a value: in an array, ", " after the first element (in an
 * object, jsonw_key() has written what comes before it). */
static void before_value(struct jsonw *w)
{
    if (w->depth == 0 || !w->array[w->depth - 1])
        return;
    if (!w->first[w->depth - 1])
        put(w, ", ", 2);
    w->first[w->depth - 1] = 0;
}

static void begin(struct jsonw *w, int array)
{
    before_value(w);
    put(w, array ? "[" : "{\n", array ? 1 : 2);
    if (w->depth >= JSONW_MAX_DEPTH) {
        w->failed = 1;
        return;
    }
    w->first[w->depth] = 1;
    w->array[w->depth] = (unsigned char)array;
    w->depth++;
}

void jsonw_object(struct jsonw *w)
{
    begin(w, 0);
}

void jsonw_array(struct jsonw *w)
{
    begin(w, 1);
}

void jsonw_end(struct jsonw *w)
{
    if (w->depth == 0) {
        w->failed = 1;
        return;
    }
    w->depth--;
    if (w->array[w->depth]) {
        put(w, "]", 1);
        return;
    }
    if (!w->first[w->depth])
        put(w, "\n", 1);
    tabs(w, w->depth);
    put(w, "}", 1);
}

/* cJSON's escaping: the two JSON must-escapes, the short forms it knows,
 * \u00xx (lower-case hex) for the other control bytes, the rest as is. */
static void quoted(struct jsonw *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);

    if (room(w, n + 2) < 0)
        return;
    w->buf[w->len++] = '"';
    for (; *p; p++) {
        const unsigned char *run = p;
        char esc[6];
        size_t k = 0;

        while (*p >= 32 && *p != '"' && *p != '\\')
            p++;
        put(w, (const char *)run, (size_t)(p - run));
        if (*p == '\0')
            break;
        esc[k++] = '\\';
        switch (*p) {
        case '"': esc[k++] = '"'; break;
        case '\\': esc[k++] = '\\'; break;
        case '\b': esc[k++] = 'b'; break;
        case '\f': esc[k++] = 'f'; break;
        case '\n': esc[k++] = 'n'; break;
        case '\r': esc[k++] = 'r'; break;
        case '\t': esc[k++] = 't'; break;
        default:
            esc[k++] = 'u';
            esc[k++] = '0';
            esc[k++] = '0';
            esc[k++] = hex[*p >> 4];
            esc[k++] = hex[*p & 15];
            break;
        }
        put(w, esc, k);
    }
    put(w, "\"", 1);
}

/* What comes before a key: ",\n" after the first, then the indent. */
static int before_key(struct jsonw *w)
{
    if (w->depth == 0 || w->array[w->depth - 1]) {
        w->failed = 1;
        return -1;
    }
    if (!w->first[w->depth - 1])
        put(w, ",\n", 2);
    w->first[w->depth - 1] = 0;
    tabs(w, w->depth);
    return 0;
}

void jsonw_key(struct jsonw *w, const char *key)
{
    if (before_key(w) < 0)
        return;
    quoted(w, key);
    put(w, ":\t", 2);
}

void jsonw_key_quoted(struct jsonw *w, const char *quoted_key, size_t n)
{
    if (before_key(w) < 0 || room(w, n + 2) < 0)
        return;
    memcpy(w->buf + w->len, quoted_key, n);
    memcpy(w->buf + w->len + n, ":\t", 2);
    w->len += n + 2;
}

void jsonw_string(struct jsonw *w, const char *s)
{
    before_value(w);
    quoted(w, s);
}

void jsonw_raw(struct jsonw *w, const char *s, size_t n)
{
    before_value(w);
    put(w, s, n);
}

char *jsonw_finish(struct jsonw *w, size_t *len)
{
    char *out = w->buf;

    if (w->failed || w->depth != 0 || !out) {
        free(w->buf);
        memset(w, 0, sizeof *w);
        return NULL;
    }
    out[w->len] = '\0';
    if (len)
        *len = w->len;
    memset(w, 0, sizeof *w);
    return out;
}
