/* jsonw: JSON written straight into a growing buffer, byte for byte as
 * cJSON_Print() lays out the same tree (tabs, "key":\tvalue, array
 * elements after ", "), so an answer built here is the answer a cJSON
 * tree would have printed, without the tree: no node per value, no
 * second pass.  An allocation failure is remembered and reported once at
 * the end. */
#ifndef HERD_PLACES_JSONW_H
#define HERD_PLACES_JSONW_H

#include <stddef.h>

#define JSONW_MAX_DEPTH 16

struct jsonw {
    char *buf;
    size_t len, cap;
    int depth;
    int failed;
    unsigned char first[JSONW_MAX_DEPTH];  /* nothing in it yet */
    unsigned char array[JSONW_MAX_DEPTH];  /* an array, not an object */
};

void jsonw_init(struct jsonw *w, size_t cap);
void jsonw_object(struct jsonw *w);
void jsonw_array(struct jsonw *w);
void jsonw_end(struct jsonw *w);        /* of the innermost one */
/* A member's key, in an object; its value follows. */
void jsonw_key(struct jsonw *w, const char *key);
void jsonw_string(struct jsonw *w, const char *s);
/* A key or string given as a literal that needs no escaping: quoted at
 * compile time, copied at run time. */
#define JSONW_KEY(w, lit) jsonw_key_quoted((w), "\"" lit "\"", sizeof(lit) + 1)
#define JSONW_STR(w, lit) jsonw_raw((w), "\"" lit "\"", sizeof(lit) + 1)
void jsonw_key_quoted(struct jsonw *w, const char *quoted, size_t n);

/* Text that already is JSON (a number cJSON would have held raw). */
void jsonw_raw(struct jsonw *w, const char *s, size_t n);

/* The text, NUL-terminated (caller frees), and its length; NULL when
 * memory ran short (everything freed). */
char *jsonw_finish(struct jsonw *w, size_t *len);

#endif
