/* journal_load: a node's store rebuilt from the files a crash left, on
 * files crafted here byte by byte (node/journal_load.c, no event loop). */
#include "tests/unit/unit.h"

#include <dirent.h>

#include "common/journal_codec.h"
#include "node/journal_load.h"

#define A1 "AT Hill +0.100000000 kiwi +10+10 1621464827.000000001"
#define A2 "AT Hill +0.100000000 kiwi +20+20 1621464827.000000002"
#define A3 "AT Hill +0.100000000 kiwi +30+30 1621464827.000000003"
#define B1 "AT Hill +0.100000000 pear +40+40 1621464827.000000001"
#define C1 "AT Hill +0.100000000 plum +50+50 1621464827.000000001"

struct fixture {
    char *dir, *path, *old_path, *snap_path;
    struct journal_files files;
    struct store store;
    struct journal_loaded got;
    char err[256];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    assert_non_null(f);
    f->dir = unit_tempdir();
    f->path = unit_path(f->dir, "N.journal");
    f->old_path = unit_path(f->dir, "N.journal.old");
    f->snap_path = unit_path(f->dir, "N.snapshot");
    f->files.dir = f->dir;
    f->files.path = f->path;
    f->files.old_path = f->old_path;
    f->files.snap_path = f->snap_path;
    assert_int_equal(store_init(&f->store), 0);
    f->got.fd = -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;

    if (f->got.fd >= 0)
        close(f->got.fd);
    journal_loaded_free(&f->got);
    store_free(&f->store);
    free(f->path);
    free(f->old_path);
    free(f->snap_path);
    unit_rmtree(f->dir);
    free(f);
    return 0;
}

/* A growing image of a file. */
struct image {
    unsigned char b[8192];
    size_t len;
};

static void put_frame(struct image *im, const char *line)
{
    size_t n = strlen(line);

    assert_true(im->len + JC_FRAME_HEAD + n <= sizeof im->b);
    im->len += jc_frame_encode(line, n, im->b + im->len);
}

static void journal_image(struct image *im, const char **lines, size_t n)
{
    im->len = 0;
    jc_journal_head(im->b);
    im->len = JC_JOURNAL_HEAD;
    for (size_t i = 0; i < n; i++)
        put_frame(im, lines[i]);
}

static void snapshot_image(struct image *im, const char **lines, size_t n)
{
    jc_snapshot_head(im->b);
    im->len = JC_SNAPSHOT_HEAD;
    for (size_t i = 0; i < n; i++)
        put_frame(im, lines[i]);
    jc_snapshot_trail(jc_crc(0, im->b, im->len), n, im->b + im->len);
    im->len += JC_SNAPSHOT_TRAIL;
}

static void write_image(const char *path, const struct image *im)
{
    unit_write(path, (const char *)im->b, im->len);
}

static off_t file_size(const char *path)
{
    struct stat st;

    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

static int load(struct fixture *f)
{
    return journal_load(&f->files, &f->store, &f->got, f->err, sizeof f->err);
}

static void assert_held(struct fixture *f, const char *id, const char *line)
{
    struct record *r = store_find(&f->store, id, strlen(id));
    const char *held;
    size_t len;

    if (!line) {
        assert_null(r);
        return;
    }
    assert_non_null(r);
    held = record_line(r, &len);
    if (len != strlen(line) || memcmp(held, line, len) != 0)
        fail_msg("held for %s: '%.*s', want '%s'", id, (int)len, held, line);
}

/* How many files in dir start with prefix. */
static int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
    closedir(d);
    return n;
}

static void test_fresh_dir_makes_a_journal(void **state)
{
    struct fixture *f = *state;
    unsigned char head[JC_JOURNAL_HEAD];
    size_t len;
    char *text;

    assert_int_equal(load(f), 0);
    assert_true(f->got.fd >= 0);
    assert_int_equal(f->got.size, JC_JOURNAL_HEAD);
    assert_int_equal(f->got.from_snap + f->got.from_old + f->got.from_journal,
                     0);
    assert_int_equal(f->got.old_found, 0);
    assert_int_equal(f->store.count, 0);
    jc_journal_head(head);
    text = unit_read(f->path, &len);
    assert_int_equal(len, JC_JOURNAL_HEAD);
    assert_memory_equal(text, head, JC_JOURNAL_HEAD);
    free(text);
}

static void test_journal_replays_in_order(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {A1, B1, A3, A2};
    struct image im;

    journal_image(&im, lines, 4);
    write_image(f->path, &im);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.from_journal, 4);
    assert_int_equal(f->got.size, im.len);
    assert_int_equal(f->store.count, 2);
    assert_held(f, "kiwi", A3);         /* newest by client time, not last */
    assert_held(f, "pear", B1);
    assert_int_equal(file_size(f->path), im.len);
}

static void test_torn_tail_is_cut(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {A1, B1, A2};
    struct image im;
    size_t good;

    journal_image(&im, lines, 2);
    good = im.len;
    put_frame(&im, A2);
    im.len -= 5;                        /* the last write cut short */
    write_image(f->path, &im);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.from_journal, 2);
    assert_int_equal(f->got.size, good);
    assert_int_equal(file_size(f->path), good);
    assert_held(f, "kiwi", A1);
    assert_held(f, "pear", B1);
    (void)lines[2];
}

static void test_torn_frame_header_is_cut(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {A1};
    struct image im;

    journal_image(&im, lines, 1);
    im.b[im.len++] = 0x20;              /* 3 bytes of a length field */
    im.b[im.len++] = 0;
    im.b[im.len++] = 0;
    write_image(f->path, &im);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.size, im.len - 3);
    assert_int_equal(file_size(f->path), im.len - 3);
    assert_held(f, "kiwi", A1);
}

static void test_corrupt_frame_drops_it_and_what_follows(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {A1};
    struct image im;
    size_t second;

    journal_image(&im, lines, 1);
    second = im.len;
    put_frame(&im, B1);
    put_frame(&im, C1);
    im.b[second + JC_FRAME_HEAD + 3] ^= 0x01;  /* a bit gone bad in B1 */
    write_image(f->path, &im);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.from_journal, 1);
    assert_int_equal(f->got.size, second);
    assert_int_equal(file_size(f->path), second);
    assert_held(f, "kiwi", A1);
    assert_held(f, "pear", NULL);
    assert_held(f, "plum", NULL);       /* nothing past a corrupt frame */
}

static void test_zero_length_frame_is_corrupt(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {A1};
    struct image im;
    size_t end;

    journal_image(&im, lines, 1);
    end = im.len;
    memset(im.b + im.len, 0, 16);
    im.len += 16;
    write_image(f->path, &im);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.size, end);
    assert_int_equal(file_size(f->path), end);
}

static void test_snapshot_plus_journal(void **state)
{
    struct fixture *f = *state;
    const char *snap[] = {A1, B1};
    const char *jrnl[] = {A2, C1};
    struct image s, j;

    snapshot_image(&s, snap, 2);
    write_image(f->snap_path, &s);
    journal_image(&j, jrnl, 2);
    write_image(f->path, &j);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.from_snap, 2);
    assert_int_equal(f->got.from_journal, 2);
    assert_int_equal(f->got.snap_size, s.len);
    assert_int_equal(f->store.count, 3);
    assert_held(f, "kiwi", A2);
    assert_held(f, "pear", B1);
    assert_held(f, "plum", C1);
}

static void test_journal_older_than_snapshot_changes_nothing(void **state)
{
    struct fixture *f = *state;
    const char *snap[] = {A3};
    const char *jrnl[] = {A1};          /* overlap after a crash */
    struct image s, j;

    snapshot_image(&s, snap, 1);
    write_image(f->snap_path, &s);
    journal_image(&j, jrnl, 1);
    write_image(f->path, &j);
    assert_int_equal(load(f), 0);
    assert_held(f, "kiwi", A3);
}

static void test_corrupt_snapshot_is_set_aside(void **state)
{
    struct fixture *f = *state;
    const char *snap[] = {A1, B1};
    const char *jrnl[] = {C1};
    struct image s, j;

    snapshot_image(&s, snap, 2);
    s.b[JC_SNAPSHOT_HEAD + JC_FRAME_HEAD + 4] ^= 0x40;
    write_image(f->snap_path, &s);
    journal_image(&j, jrnl, 1);
    write_image(f->path, &j);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.from_snap, 0);
    assert_int_equal(f->got.snap_size, 0);
    assert_int_equal(f->store.count, 1);
    assert_held(f, "plum", C1);
    assert_int_equal(access(f->snap_path, F_OK), -1);
    assert_int_equal(count_files(f->dir, "N.snapshot.corrupt-"), 1);
}

static void test_snapshot_without_trailer_is_set_aside(void **state)
{
    struct fixture *f = *state;
    const char *snap[] = {A1};
    struct image s;

    snapshot_image(&s, snap, 1);
    s.len -= JC_SNAPSHOT_TRAIL;         /* never finished */
    write_image(f->snap_path, &s);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->store.count, 0);
    assert_int_equal(count_files(f->dir, "N.snapshot.corrupt-"), 1);
}

static void test_old_journal_is_read_and_kept(void **state)
{
    struct fixture *f = *state;
    const char *old[] = {A1, B1};
    const char *jrnl[] = {A2};
    struct image o, j;

    journal_image(&o, old, 2);
    o.b[o.len++] = 0x7f;                /* a torn tail, left as it is */
    write_image(f->old_path, &o);
    journal_image(&j, jrnl, 1);
    write_image(f->path, &j);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.old_found, 1);
    assert_int_equal(f->got.from_old, 2);
    assert_int_equal(f->got.from_journal, 1);
    assert_held(f, "kiwi", A2);
    assert_held(f, "pear", B1);
    /* journal.old is read, never written: the snapshot removes it. */
    assert_int_equal(file_size(f->old_path), o.len);
}

static void test_old_journal_without_header_is_ignored(void **state)
{
    struct fixture *f = *state;

    unit_write(f->old_path, LIT("garbage"));
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.old_found, 1);
    assert_int_equal(f->got.from_old, 0);
    assert_int_equal(f->store.count, 0);
    assert_false(f->got.files[0].present);  /* no part of the log */
}

static void test_not_a_journal_is_set_aside(void **state)
{
    struct fixture *f = *state;

    unit_write(f->path, LIT("HERDJNL\x09 something else entirely"));
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.size, JC_JOURNAL_HEAD);
    assert_int_equal(file_size(f->path), JC_JOURNAL_HEAD);
    assert_int_equal(count_files(f->dir, "N.journal.corrupt-"), 1);
}

static void test_torn_header_starts_afresh(void **state)
{
    struct fixture *f = *state;
    unsigned char head[JC_JOURNAL_HEAD];

    jc_journal_head(head);
    unit_write(f->path, (const char *)head, 3);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.size, JC_JOURNAL_HEAD);
    assert_int_equal(file_size(f->path), JC_JOURNAL_HEAD);
    assert_int_equal(count_files(f->dir, "N.journal.corrupt-"), 0);
}

static void test_unreadable_record_is_skipped(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {A1, "not an AT line", B1};
    struct image im;

    journal_image(&im, lines, 3);
    write_image(f->path, &im);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.from_journal, 3);
    assert_int_equal(f->got.size, im.len);  /* framed fine: kept */
    assert_int_equal(f->store.count, 2);
}

static void test_unopenable_journal_fails_with_reason(void **state)
{
    struct fixture *f = *state;

    assert_int_equal(mkdir(f->path, 0700), 0);  /* a directory in its place */
    assert_int_equal(load(f), -1);
    assert_int_equal(f->got.fd, -1);
    assert_non_null(strstr(f->err, f->path));
    rmdir(f->path);
}

#define LOG_E1 "HERD-LOG 00000000000000e1 100"
#define POS_J "HERD-POS Jaquez 00000000000000aa 7"

static void test_log_numbers_records_and_keeps_positions(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {LOG_E1, A1, B1, POS_J, C1};
    const struct journal_pos *p;
    struct image im;

    journal_image(&im, lines, 5);
    write_image(f->path, &im);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.from_journal, 3);   /* control frames apart */
    assert_int_equal(f->store.count, 3);
    assert_true(f->got.log.epoch == 0xe1);
    assert_true(f->got.log.epoch_first == 100);
    assert_true(f->got.log.next_seq == 103);
    p = journal_log_find_pos(&f->got.log, "Jaquez");
    assert_non_null(p);
    assert_true(p->epoch == 0xaa && p->seq == 7);
    assert_null(journal_log_find_pos(&f->got.log, "Smith"));
}

static void test_new_epoch_forgets_positions(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {LOG_E1, POS_J, A1, "HERD-LOG 00000000000000e2 500",
                           B1};
    struct image im;

    journal_image(&im, lines, 5);
    write_image(f->path, &im);
    assert_int_equal(load(f), 0);
    assert_true(f->got.log.epoch == 0xe2);
    assert_true(f->got.log.epoch_first == 500);
    assert_true(f->got.log.next_seq == 501);
    assert_int_equal(f->got.log.n_pos, 0);
}

static void test_malformed_control_frame_is_skipped(void **state)
{
    struct fixture *f = *state;
    const char *lines[] = {LOG_E1, "HERD-POS Jaquez 00aa 7", A1,
                           "HERD-LOG 00000000000000E1 1"};
    struct image im;

    journal_image(&im, lines, 4);
    write_image(f->path, &im);
    assert_int_equal(load(f), 0);
    assert_int_equal(f->got.log.n_pos, 0);
    assert_true(f->got.log.epoch == 0xe1 && f->got.log.next_seq == 101);
    assert_int_equal(f->got.size, im.len);
}

static void test_backlog_is_numbered_not_applied(void **state)
{
    struct fixture *f = *state;
    const char *back[] = {LOG_E1, A1, A2};
    const char *jrnl[] = {"HERD-LOG 00000000000000e1 4294967398", B1};
    char *bpath = unit_path(f->dir, "N.backlog.0000000000000064");
    const char *list[] = {bpath, NULL};
    struct image b, j;

    journal_image(&b, back, 3);
    write_image(bpath, &b);
    journal_image(&j, jrnl, 2);
    write_image(f->path, &j);
    f->files.backlog = list;
    assert_int_equal(load(f), 0);
    assert_int_equal(f->store.count, 1);     /* the snapshot holds those */
    assert_held(f, "pear", B1);
    assert_int_equal(f->got.n_files, 3);
    assert_true(f->got.files[0].present && f->got.files[0].size == b.len);
    assert_true(f->got.files[0].index.n >= 1);
    assert_false(f->got.files[1].present);   /* no journal.old */
    assert_true(f->got.files[2].present);
    assert_true(f->got.files[2].first_seq == 102);
    assert_true(f->got.log.next_seq == 4294967399ULL);
    free(bpath);
}

static void test_index_finds_the_mark_before(void **state)
{
    struct journal_index x = {0};
    const struct journal_mark *m;

    (void)state;
    assert_null(journal_index_find(&x, 5));
    assert_int_equal(journal_index_add(&x, 8, 1), 0);
    assert_int_equal(journal_index_add(&x, 100, 2), 0);  /* too close */
    assert_int_equal(x.n, 1);
    assert_int_equal(journal_index_add(&x, 8 + JOURNAL_INDEX_STEP, 50), 0);
    assert_int_equal(journal_index_add(&x, 8 + 2 * JOURNAL_INDEX_STEP, 90), 0);
    m = journal_index_find(&x, 49);
    assert_true(m->seq == 1);
    m = journal_index_find(&x, 50);
    assert_true(m->seq == 50);
    m = journal_index_find(&x, 1000);
    assert_true(m->seq == 90);
    journal_index_cut(&x, 8 + JOURNAL_INDEX_STEP);
    assert_int_equal(x.n, 1);
    journal_index_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_fresh_dir_makes_a_journal),
        T(test_journal_replays_in_order),
        T(test_torn_tail_is_cut),
        T(test_torn_frame_header_is_cut),
        T(test_corrupt_frame_drops_it_and_what_follows),
        T(test_zero_length_frame_is_corrupt),
        T(test_snapshot_plus_journal),
        T(test_journal_older_than_snapshot_changes_nothing),
        T(test_corrupt_snapshot_is_set_aside),
        T(test_snapshot_without_trailer_is_set_aside),
        T(test_old_journal_is_read_and_kept),
        T(test_old_journal_without_header_is_ignored),
        T(test_not_a_journal_is_set_aside),
        T(test_torn_header_starts_afresh),
        T(test_unreadable_record_is_skipped),
        T(test_unopenable_journal_fails_with_reason),
        T(test_log_numbers_records_and_keeps_positions),
        T(test_new_epoch_forgets_positions),
        T(test_malformed_control_frame_is_skipped),
        T(test_backlog_is_numbered_not_applied),
        T(test_index_finds_the_mark_before),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
