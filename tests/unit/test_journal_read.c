/* journal_read: the log read back for a catch-up, on journal files
 * crafted here (node/journal_read.c). */
#include "tests/unit/unit.h"

#include "common/journal_codec.h"
#include "node/journal_load.h"
#include "node/journal_read.h"

#define R(k) "AT Hill +0.100000000 c" #k " +10+10 1621464827.000000001"

struct image {
    unsigned char b[8192];
    size_t len;
};

static void start(struct image *im)
{
    jc_journal_head(im->b);
    im->len = JC_JOURNAL_HEAD;
}

static size_t put(struct image *im, const char *line)
{
    size_t at = im->len;

    im->len += jc_frame_encode(line, strlen(line), im->b + im->len);
    return at;
}

struct fixture {
    char *dir, *p1, *p2;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    assert_non_null(f);
    f->dir = unit_tempdir();
    f->p1 = unit_path(f->dir, "N.backlog.0000000000000064");
    f->p2 = unit_path(f->dir, "N.journal");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    free(f->p1);
    free(f->p2);
    unit_rmtree(f->dir);
    free(f);
    return 0;
}

/* Two files: records 100..102 (a position between), then after a start's
 * jump 4294967396 and 4294967397, and a torn tail. */
static size_t two_files(struct fixture *f)
{
    struct image a, b;
    size_t second;

    start(&a);
    put(&a, "HERD-LOG 00000000000000e1 100");
    put(&a, R(100));
    second = put(&a, R(101));
    put(&a, "HERD-POS Jaquez 00000000000000aa 7");
    put(&a, R(102));
    unit_write(f->p1, (const char *)a.b, a.len);
    start(&b);
    put(&b, "HERD-LOG 00000000000000e1 4294967396");
    put(&b, R(4294967396));
    put(&b, R(4294967397));
    b.b[b.len++] = 0x30;                /* torn */
    unit_write(f->p2, (const char *)b.b, b.len);
    return second;
}

/* Read what r gives, as the client ids joined by spaces. */
static void read_all(struct journal_reader *r, char *out, size_t cap)
{
    const char *line;
    size_t len, used = 0;
    int rc;

    out[0] = '\0';
    while ((rc = journal_reader_next(r, &line, &len)) == 1) {
        struct proto_at at;

        assert_int_equal(proto_parse_at(line, len, &at), 0);
        used += (size_t)snprintf(out + used, cap - used, "%s%.*s",
                                 used ? " " : "", (int)at.id.len, at.id.p);
        assert_true(used < cap);
    }
    assert_int_equal(rc, 0);
}

static void test_reads_after_a_position_across_files(void **state)
{
    struct fixture *f = *state;
    const char *paths[2] = {f->p1, f->p2}, *why = NULL;
    struct journal_reader *r;
    char got[512];

    two_files(f);
    r = journal_reader_files(paths, 2, JC_JOURNAL_HEAD, 1, 100, 4294967397ULL,
                             &why);
    assert_non_null(r);
    read_all(r, got, sizeof got);
    assert_string_equal(got, "c101 c102 c4294967396 c4294967397");
    assert_true(journal_reader_seq(r) == 4294967397ULL);
    journal_reader_close(r);
}

static void test_stops_at_the_end_it_was_given(void **state)
{
    struct fixture *f = *state;
    const char *paths[2] = {f->p1, f->p2}, *why = NULL;
    struct journal_reader *r;
    const char *line;
    size_t len;

    two_files(f);
    r = journal_reader_files(paths, 2, JC_JOURNAL_HEAD, 1, 99, 101, &why);
    assert_non_null(r);
    assert_int_equal(journal_reader_next(r, &line, &len), 1);
    assert_true(journal_reader_seq(r) == 100);
    assert_int_equal(journal_reader_next(r, &line, &len), 1);
    assert_true(journal_reader_seq(r) == 101);
    /* 102 and later came after the catch-up began: flooded, not read. */
    assert_int_equal(journal_reader_next(r, &line, &len), 0);
    assert_true(journal_reader_seq(r) == 101);
    journal_reader_close(r);
}

static void test_starts_at_an_index_mark(void **state)
{
    struct fixture *f = *state;
    const char *paths[1] = {f->p1}, *why = NULL;
    struct journal_reader *r;
    char got[256];
    size_t second = two_files(f);

    /* The mark at record 101's frame says it is numbered 101. */
    r = journal_reader_files(paths, 1, second, 101, 101, 102, &why);
    assert_non_null(r);
    read_all(r, got, sizeof got);
    assert_string_equal(got, "c102");
    journal_reader_close(r);
}

static void test_nothing_after_the_last(void **state)
{
    struct fixture *f = *state;
    const char *paths[2] = {f->p1, f->p2}, *why = NULL;
    struct journal_reader *r;
    const char *line;
    size_t len;

    two_files(f);
    /* A position in the gap of a jump: nothing is numbered there. */
    r = journal_reader_files(paths + 1, 1, JC_JOURNAL_HEAD, 103, 200000,
                             200000, &why);
    assert_non_null(r);
    assert_int_equal(journal_reader_next(r, &line, &len), 0);
    journal_reader_close(r);
}

static void test_corrupt_frame_is_an_error(void **state)
{
    struct fixture *f = *state;
    const char *paths[1] = {f->p1}, *why = NULL;
    struct journal_reader *r;
    struct image a;
    const char *line;
    size_t len, at;

    start(&a);
    put(&a, R(1));
    at = put(&a, R(2));
    a.b[at + JC_FRAME_HEAD + 2] ^= 0x01;
    unit_write(f->p1, (const char *)a.b, a.len);
    r = journal_reader_files(paths, 1, JC_JOURNAL_HEAD, 1, 0, 10, &why);
    assert_non_null(r);
    assert_int_equal(journal_reader_next(r, &line, &len), 1);
    assert_int_equal(journal_reader_next(r, &line, &len), -1);
    journal_reader_close(r);
}

static void test_a_frame_longer_than_the_buffer(void **state)
{
    struct fixture *f = *state;
    const char *paths[1] = {f->p1}, *why = NULL;
    struct journal_reader *r;
    size_t n = 300 * 1024, hl;
    char *id = malloc(n + 1), *line = malloc(n + 128);
    unsigned char *file = malloc(n + 256), head[JC_JOURNAL_HEAD];
    const char *got;
    size_t len, used;

    assert_non_null(id);
    assert_non_null(line);
    assert_non_null(file);
    memset(id, 'x', n);
    id[n] = '\0';
    hl = (size_t)snprintf(line, n + 128,
                          "AT Hill +0.100000000 %s +10+10 1621464827.5", id);
    jc_journal_head(head);
    memcpy(file, head, sizeof head);
    used = sizeof head + jc_frame_encode(line, hl, file + sizeof head);
    unit_write(f->p1, (const char *)file, used);
    r = journal_reader_files(paths, 1, JC_JOURNAL_HEAD, 1, 0, 5, &why);
    assert_non_null(r);
    assert_int_equal(journal_reader_next(r, &got, &len), 1);
    assert_int_equal(len, hl);
    assert_memory_equal(got, line, hl);
    assert_int_equal(journal_reader_next(r, &got, &len), 0);
    journal_reader_close(r);
    free(id);
    free(line);
    free(file);
}

static void test_missing_file_is_refused(void **state)
{
    struct fixture *f = *state;
    const char *paths[1] = {f->p1}, *why = NULL;

    assert_null(journal_reader_files(paths, 1, JC_JOURNAL_HEAD, 1, 0, 1,
                                     &why));
    assert_non_null(why);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_reads_after_a_position_across_files),
        T(test_stops_at_the_end_it_was_given),
        T(test_starts_at_an_index_mark),
        T(test_nothing_after_the_last),
        T(test_corrupt_frame_is_an_error),
        T(test_a_frame_longer_than_the_buffer),
        T(test_missing_file_is_refused),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
