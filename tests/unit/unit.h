/* unit.h: what every cmocka unit test of common/ shares.  cmocka wants
 * these system headers before its own. */
#ifndef HERD_TESTS_UNIT_H
#define HERD_TESTS_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A string literal as pointer and length, NUL bytes included. */
#define LIT(s) (s), (sizeof(s) - 1)

/* A fresh private directory under $TMPDIR (or /tmp); the caller removes it
 * with unit_rmtree(). */
static inline char *unit_tempdir(void)
{
    const char *base = getenv("TMPDIR");
    char *path = malloc(PATH_MAX);

    assert_non_null(path);
    snprintf(path, PATH_MAX, "%s/herd-unit-XXXXXX",
             base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(path));
    return path;
}

/* dir/name, malloc'd. */
static inline char *unit_path(const char *dir, const char *name)
{
    size_t n = strlen(dir) + 1 + strlen(name) + 1;
    char *p = malloc(n);

    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Write len bytes to path, replacing it. */
static inline void unit_write(const char *path, const char *text, size_t len)
{
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Read a whole (small) file into a NUL-terminated malloc'd string. */
static inline char *unit_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *p;
    size_t n = 0, cap = 4096, got;

    assert_non_null(f);
    p = malloc(cap);
    assert_non_null(p);
    while ((got = fread(p + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            p = realloc(p, cap);
            assert_non_null(p);
        }
    }
    fclose(f);
    p[n] = '\0';
    if (len)
        *len = n;
    return p;
}

/* rm -r for the flat directories the tests make (one level of files). */
static inline void unit_rmtree(char *dir)
{
    char cmd[PATH_MAX + 16];

    /* The directory name comes from mkdtemp: no quotes or spaces. */
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    free(dir);
}

#endif
