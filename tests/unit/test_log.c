/* log: escaping of outside bytes, line format, buffering, rotation. */
#include "tests/unit/unit.h"

#include <regex.h>

#include "common/log.h"

static void escapes(const char *in, size_t len, const char *want)
{
    char buf[256];
    size_t n;

    memset(buf, 'X', sizeof buf);
    n = log_escape(in, len, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, strlen(want));
}

#define ESCAPES(in, want) escapes(LIT(in), want)

static void test_escape(void **state)
{
    (void)state;
    ESCAPES("", "");
    ESCAPES("IAMAT kiwi +34-118 1.5", "IAMAT kiwi +34-118 1.5");
    ESCAPES(" ~!\"#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}",
            " ~!\"#$%&'()*+,-./09:;<=>?@AZ[]^_`az{|}");
    ESCAPES("\\", "\\\\");
    ESCAPES("a\nb", "a\\nb");
    ESCAPES("\r\n", "\\r\\n");
    ESCAPES("\t", "\\t");
    ESCAPES("\0", "\\x00");
    ESCAPES("\f\v", "\\x0c\\x0b");
    ESCAPES("\x1b[31m", "\\x1b[31m");
    ESCAPES("\x7f", "\\x7f");
    ESCAPES("\x80\xff", "\\x80\\xff");
    ESCAPES("\xc3\xa9", "\\xc3\\xa9");             /* UTF-8 too */
    ESCAPES("a\0b\\x", "a\\x00b\\\\x");
}

static void test_escape_cap(void **state)
{
    char buf[16];

    (void)state;
    /* Always NUL-terminated; an escape is never cut in half. */
    memset(buf, 'X', sizeof buf);
    assert_int_equal(log_escape(LIT("abcdef"), buf, 4), 3);
    assert_string_equal(buf, "abc");
    assert_int_equal(buf[4], 'X');
    assert_int_equal(log_escape(LIT("a\n"), buf, 3), 1);
    assert_string_equal(buf, "a");
    assert_int_equal(log_escape(LIT("a\n"), buf, 4), 3);
    assert_string_equal(buf, "a\\n");
    assert_int_equal(log_escape(LIT("\xff"), buf, 4), 0);
    assert_string_equal(buf, "");
    assert_int_equal(log_escape(LIT("\xff"), buf, 5), 4);
    assert_string_equal(buf, "\\xff");
    assert_int_equal(log_escape(LIT("abc"), buf, 1), 0);
    assert_string_equal(buf, "");
    buf[0] = 'X';
    assert_int_equal(log_escape(LIT("abc"), buf, 0), 0);
    assert_int_equal(buf[0], 'X');                /* cap 0: untouched */
}

/* Each line: "YYYY-MM-DDTHH:MM:SS.uuuuuuZ NAME: text". */
static void assert_lines(const char *text, const char *name,
                         const char *const *bodies, size_t n)
{
    regex_t re;
    const char *p = text;
    char pattern[256];

    snprintf(pattern, sizeof pattern,
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}"
             "\\.[0-9]{6}Z %s: ", name);
    assert_int_equal(regcomp(&re, pattern, REG_EXTENDED), 0);
    for (size_t i = 0; i < n; i++) {
        const char *nl = strchr(p, '\n');
        regmatch_t m;
        char line[1024];

        assert_non_null(nl);
        assert_true((size_t)(nl - p) < sizeof line);
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        if (regexec(&re, line, 1, &m, 0) != 0)
            fail_msg("log line does not match: \"%s\"", line);
        assert_string_equal(line + m.rm_eo, bodies[i]);
        p = nl + 1;
    }
    assert_string_equal(p, "");
    regfree(&re);
}

static void test_lines_and_buffering(void **state)
{
    char *dir = unit_tempdir(), *path = unit_path(dir, "Hill.log"), *text;
    static const char *const bodies[] = {
        "link up: Jaquez",
        "warning: slow peer Smith",
        "error: cannot connect 42",
    };
    struct stat st;

    (void)state;
    assert_int_equal(log_open(path, "Hill", 0, 0, 0), 0);
    log_msg(LOG_INFO, "link up: %s", "Jaquez");
    log_msg(LOG_WARN, "slow peer %s", "Smith");
    /* Buffered: nothing in the file yet. */
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_size, 0);
    /* An error is flushed at once, with what came before it. */
    log_msg(LOG_ERROR, "cannot connect %d", 42);
    text = unit_read(path, NULL);
    assert_lines(text, "Hill", bodies, 3);
    free(text);
    log_close();
    unit_rmtree(dir);
    free(path);
}

static void test_flush_and_close(void **state)
{
    char *dir = unit_tempdir(), *path = unit_path(dir, "Smith.log"), *text;
    static const char *const one[] = {"first"};
    static const char *const two[] = {"first", "second"};
    static const char *const three[] = {"first", "second", "third"};

    (void)state;
    assert_int_equal(log_open(path, "Smith", 0, 0, 0), 0);
    log_msg(LOG_INFO, "first");
    log_flush();
    text = unit_read(path, NULL);
    assert_lines(text, "Smith", one, 1);
    free(text);
    log_msg(LOG_INFO, "second");
    log_close();                               /* close flushes */
    text = unit_read(path, NULL);
    assert_lines(text, "Smith", two, 2);
    free(text);
    /* Reopening appends. */
    assert_int_equal(log_open(path, "Smith", 0, 0, 0), 0);
    log_msg(LOG_INFO, "third");
    log_close();
    text = unit_read(path, NULL);
    assert_lines(text, "Smith", three, 3);
    free(text);
    unit_rmtree(dir);
    free(path);
}

static void test_log_bytes(void **state)
{
    char *dir = unit_tempdir(), *path = unit_path(dir, "n.log"), *text;
    static const char *const bodies[] = {
        "request: IAMAT a\\x00b\\r\\n",
        "request: abcd... (10 bytes)",
        "reply: ",
    };

    (void)state;
    assert_int_equal(log_open(path, "n", 0, 0, 0), 0);
    log_bytes("request: ", LIT("IAMAT a\0b\r\n"), 100);
    log_bytes("request: ", LIT("abcdefghij"), 4);
    log_bytes("reply: ", LIT(""), 100);
    log_close();
    text = unit_read(path, NULL);
    assert_lines(text, "n", bodies, 3);
    free(text);
    unit_rmtree(dir);
    free(path);
}

static void test_no_injection(void **state)
{
    char *dir = unit_tempdir(), *path = unit_path(dir, "n.log"), *text;
    static const char *const bodies[] = {
        "got: x\\n2026-01-01T00:00:00.000000Z n: forged",
    };

    (void)state;
    /* A client cannot start a log line of its own. */
    assert_int_equal(log_open(path, "n", 0, 0, 0), 0);
    log_bytes("got: ", LIT("x\n2026-01-01T00:00:00.000000Z n: forged"), 4096);
    log_close();
    text = unit_read(path, NULL);
    assert_lines(text, "n", bodies, 1);
    free(text);
    unit_rmtree(dir);
    free(path);
}

static void test_rotation(void **state)
{
    char *dir = unit_tempdir(), *path = unit_path(dir, "r.log");
    char *p1 = unit_path(dir, "r.log.1"), *p2 = unit_path(dir, "r.log.2");
    char *p3 = unit_path(dir, "r.log.3"), *text;
    struct stat st;

    (void)state;
    assert_int_equal(log_open(path, "r", 100, 2, 0), 0);
    for (int i = 0; i < 10; i++) {
        log_msg(LOG_INFO, "line %d padding padding padding padding padding "
                "padding padding padding", i);
        log_flush();
    }
    log_close();
    assert_int_equal(stat(p1, &st), 0);
    assert_int_equal(stat(p2, &st), 0);
    assert_int_equal(stat(p3, &st), -1);       /* only keep=2 kept */
    /* Each flush passed 100 bytes, so each rotated: the newest line is in
     * .1, the one before in .2, and the live file starts afresh. */
    text = unit_read(p1, NULL);
    assert_non_null(strstr(text, "line 9 "));
    assert_null(strstr(text, "line 8 "));
    free(text);
    text = unit_read(p2, NULL);
    assert_non_null(strstr(text, "line 8 "));
    free(text);
    text = unit_read(path, NULL);
    assert_string_equal(text, "");
    free(text);
    unit_rmtree(dir);
    free(path);
    free(p1);
    free(p2);
    free(p3);
}

static void test_open_fails(void **state)
{
    char *dir = unit_tempdir(), *path = unit_path(dir, "no/such/dir.log");

    (void)state;
    errno = 0;
    assert_int_equal(log_open(path, "x", 0, 0, 0), -1);
    assert_int_equal(errno, ENOENT);
    log_msg(LOG_INFO, "goes nowhere, harmlessly");
    log_close();
    unit_rmtree(dir);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape),
        cmocka_unit_test(test_escape_cap),
        cmocka_unit_test(test_lines_and_buffering),
        cmocka_unit_test(test_flush_and_close),
        cmocka_unit_test(test_log_bytes),
        cmocka_unit_test(test_no_injection),
        cmocka_unit_test(test_rotation),
        cmocka_unit_test(test_open_fails),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
