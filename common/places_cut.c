#include "places_cut.h"

#include <string.h>

/* Where the scan is; every function stops at end, never past it. */
struct scan {
    const char *p, *end;
};

/* Skip JSON whitespace.  -1 for what the verbatim reply must not carry:
 * a CR, or an empty line (two newlines in one run).  *newline: the run
 * held one. */
static int ws(struct scan *s, int *newline)
{
    int nl = 0;

    for (; s->p < s->end; s->p++) {
        char c = *s->p;
        if (c == '\n') {
            if (nl)
                return -1;
            nl = 1;
        } else if (c != ' ' && c != '\t') {
            break;
        }
    }
    if (s->p < s->end && *s->p == '\r')
        return -1;
    if (newline)
        *newline = nl;
    return 0;
}

static int hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
           (c >= 'A' && c <= 'F');
}

/* Bytes a string's scan must stop at: the quote, the backslash, and the
 * control bytes JSON forbids raw.  One load per byte of a long name. */
static const unsigned char stop_in_string[256] = {
    [0 ... 0x1f] = 1, ['"'] = 1, ['\\'] = 1,
};

/* A string at s->p (on its quote).  No control byte, only the escapes
 * JSON has; \u0000 and surrogates are left to cJSON, which decodes them
 * its own way.  *escaped: it held a backslash. */
static int string(struct scan *s, int *escaped)
{
    int esc = 0;

    s->p++;
    while (s->p < s->end) {
        unsigned char c = (unsigned char)*s->p;
        if (!stop_in_string[c]) {
            s->p++;
            continue;
        }
        if (c == '"') {
            s->p++;
            if (escaped)
                *escaped = esc;
            return 0;
        }
        if (c != '\\')
            return -1;
        esc = 1;
        if (s->end - s->p < 2)
            return -1;
        c = (unsigned char)s->p[1];
        if (c == 'u') {
            const char *h = s->p + 2;
            if (s->end - h < 4 || !hex(h[0]) || !hex(h[1]) || !hex(h[2]) ||
                !hex(h[3]))
                return -1;
            if (memcmp(h, "0000", 4) == 0 ||
                ((h[0] == 'd' || h[0] == 'D') &&
                 strchr("89abcdefABCDEF", h[1]) != NULL))
                return -1;
            s->p += 6;
        } else if (strchr("\"\\/bfnrt", c) != NULL && c != '\0') {
            s->p += 2;
        } else {
            return -1;
        }
    }
    return -1;
}

static int digits(struct scan *s)
{
    const char *start = s->p;

    while (s->p < s->end && *s->p >= '0' && *s->p <= '9')
        s->p++;
    return (int)(s->p - start);
}

/* RFC 8259's number, short enough that a double holds it (cJSON would
 * turn an overflow into null, which is not what came). */
static int number(struct scan *s)
{
    const char *start = s->p;
    int n;

    if (*s->p == '-')
        s->p++;
    if (s->p < s->end && *s->p == '0')
        s->p++;
    else if (digits(s) == 0)
        return -1;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (digits(s) == 0)
            return -1;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        n = digits(s);
        if (n == 0 || n > 2)
            return -1;
    }
    return s->p - start > 32 ? -1 : 0;
}

static int literal(struct scan *s, const char *word, size_t n)
{
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return -1;
    s->p += n;
    return 0;
}

static int value(struct scan *s, int depth);

/* Where the elements of an array end: the first PLACES_CUT_KEEP of them
 * (ends) and the last (last), and how many there are (count). */
struct marks {
    int count;
    const char **ends;
    const char *last;
};

/* An object or array at s->p; close is '}' or ']'.  With marks (arrays
 * only), note where each element ends. */
static int container(struct scan *s, int depth, char close, struct marks *m)
{
    if (depth >= PLACES_CUT_MAX_DEPTH)
        return -1;
    s->p++;
    if (ws(s, NULL) < 0 || s->p >= s->end)
        return -1;
    if (*s->p == close) {
        s->p++;
        return 0;
    }
    for (;;) {
        if (close == '}') {
            if (*s->p != '"' || string(s, NULL) < 0 || ws(s, NULL) < 0 ||
                s->p >= s->end || *s->p != ':')
                return -1;
            s->p++;
            if (ws(s, NULL) < 0)
                return -1;
        }
        if (value(s, depth + 1) < 0)
            return -1;
        if (m) {
            if (m->count < PLACES_CUT_KEEP)
                m->ends[m->count] = s->p;
            m->count++;
            m->last = s->p;
        }
        if (ws(s, NULL) < 0 || s->p >= s->end)
            return -1;
        if (*s->p == close) {
            s->p++;
            return 0;
        }
        if (*s->p != ',')
            return -1;
        s->p++;
        if (ws(s, NULL) < 0 || s->p >= s->end)
            return -1;
    }
}

static int value(struct scan *s, int depth)
{
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        return container(s, depth, '}', NULL);
    case '[':
        return container(s, depth, ']', NULL);
    case '"':
        return string(s, NULL);
    case 't':
        return literal(s, "true", 4);
    case 'f':
        return literal(s, "false", 5);
    case 'n':
        return literal(s, "null", 4);
    default:
        return number(s);
    }
}

static int key_is(const char *k, size_t n, const char *want)
{
    return n == strlen(want) && memcmp(k, want, n) == 0;
}

int places_cut_scan(const char *body, size_t len, struct places_scan *out)
{
    struct scan s = {body, body + len};
    const char *root, *status = NULL;
    struct marks results = {0, out->ends, NULL};
    size_t status_len = 0;
    int seen_attr = 0, seen_results = 0, seen_status = 0, seen_msg = 0;
    int nl, first = 1;

    if (body == NULL)
        return -1;
    /* Around the root anything JSON calls whitespace: it is not sent. */
    while (s.p < s.end && strchr(" \t\r\n", *s.p) != NULL && *s.p)
        s.p++;
    if (s.p >= s.end || *s.p != '{')
        return -1;
    root = s.p++;
    for (;;) {
        const char *key;
        size_t key_len;
        int escaped;

        /* Pretty-printed: each member, and the closing brace, on a line
         * of its own. */
        if (ws(&s, &nl) < 0 || !nl || s.p >= s.end)
            return -1;
        if (*s.p == '}' && first)
            break;
        first = 0;
        if (*s.p != '"')
            return -1;
        key = s.p + 1;
        if (string(&s, &escaped) < 0 || escaped)
            return -1;
        key_len = (size_t)(s.p - 1 - key);
        if (ws(&s, NULL) < 0 || s.p >= s.end || *s.p != ':')
            return -1;
        s.p++;
        if (ws(&s, NULL) < 0 || s.p >= s.end)
            return -1;
        if (key_is(key, key_len, "results")) {
            if (seen_results++ || *s.p != '[' ||
                container(&s, 1, ']', &results) < 0)
                return -1;
        } else if (key_is(key, key_len, "status")) {
            const char *v = s.p + 1;
            if (seen_status++ || *s.p != '"' || string(&s, &escaped) < 0 ||
                escaped)
                return -1;
            status = v;
            status_len = (size_t)(s.p - 1 - v);
        } else {
            if (key_is(key, key_len, "html_attributions") && seen_attr++)
                return -1;
            if (key_is(key, key_len, "error_message") && seen_msg++)
                return -1;
            if (value(&s, 1) < 0)
                return -1;
        }
        if (ws(&s, &nl) < 0 || s.p >= s.end)
            return -1;
        if (*s.p == ',') {
            s.p++;
            continue;
        }
        if (*s.p != '}' || !nl)
            return -1;
        break;
    }
    s.p++;                      /* past the root's '}' */
    out->root = root;
    out->root_len = (size_t)(s.p - root);
    out->last = results.last;
    out->count = results.count;
    while (s.p < s.end && strchr(" \t\r\n", *s.p) != NULL && *s.p)
        s.p++;
    if (s.p != s.end || !seen_results || !seen_attr || !status)
        return -1;
    if (key_is(status, status_len, "ZERO_RESULTS"))
        out->zero_results = 1;
    else if (key_is(status, status_len, "OK"))
        out->zero_results = 0;
    else
        return -1;
    return 0;
}

void places_cut_bound(const struct places_scan *s, int max_results,
                      struct places_cut *out)
{
    if (max_results < 1)
        max_results = 1;
    if (max_results > PLACES_CUT_KEEP)
        max_results = PLACES_CUT_KEEP;
    out->head = s->root;
    out->head_len = s->root_len;
    out->tail = s->root + s->root_len;
    out->tail_len = 0;
    out->zero_results = s->zero_results;
    out->n_results = s->count;
    if (s->count > max_results) {
        /* Up to the end of the bound's last element, then from the end
         * of the list's last one: its own line break and ']' follow. */
        out->head_len = (size_t)(s->ends[max_results - 1] - s->root);
        out->tail = s->last;
        out->tail_len = (size_t)(s->root + s->root_len - s->last);
        out->n_results = max_results;
    }
}

int places_cut_legacy(const char *body, size_t len, int max_results,
                      struct places_cut *out)
{
    struct places_scan s;

    if (max_results < 1 || max_results > PLACES_CUT_KEEP ||
        places_cut_scan(body, len, &s) < 0)
        return -1;
    places_cut_bound(&s, max_results, out);
    return 0;
}
