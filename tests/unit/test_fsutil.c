/* fsutil: mkdir -p fsyncs the parent of every directory it creates; the
 * open and atomic-write helpers never follow a planted symlink. */
#include "tests/unit/unit.h"

#include <sys/syscall.h>

#include "common/fsutil.h"
#include "common/log.h"

/* This program's fsync stands in for libc's (the executable's symbol
 * wins over the shared library's), so the test sees which directories
 * were fsynced and still really syncs them. */
#define MAX_SYNCED 16
static char synced[MAX_SYNCED][PATH_MAX];
static int n_synced;

int fsync(int fd)
{
    char link[64];
    ssize_t n;

    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    if (n_synced < MAX_SYNCED) {
        n = readlink(link, synced[n_synced], PATH_MAX - 1);
        synced[n_synced][n > 0 ? n : 0] = '\0';
        n_synced++;
    }
    return (int)syscall(SYS_fsync, fd);
}

static int was_synced(const char *path)
{
    for (int i = 0; i < n_synced && i < MAX_SYNCED; i++)
        if (strcmp(synced[i], path) == 0)
            return 1;
    return 0;
}

static void test_mkdir_fsyncs_parents(void **state)
{
    char *dir = unit_tempdir(), real[PATH_MAX], path[PATH_MAX + 16];
    char want[PATH_MAX + 16];
    struct stat st;

    (void)state;
    assert_non_null(realpath(dir, real));
    snprintf(path, sizeof path, "%s/a/b/c", real);
    n_synced = 0;
    assert_int_equal(fs_mkdir_p(path, 0700), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0700);
    /* a is new in real, b in a, c in b: each parent is fsynced. */
    assert_int_equal(n_synced, 3);
    assert_true(was_synced(real));
    snprintf(want, sizeof want, "%s/a", real);
    assert_true(was_synced(want));
    snprintf(want, sizeof want, "%s/a/b", real);
    assert_true(was_synced(want));

    /* Nothing new, nothing synced; a trailing slash is the same dir. */
    n_synced = 0;
    snprintf(path, sizeof path, "%s/a/b/c/", real);
    assert_int_equal(fs_mkdir_p(path, 0700), 0);
    assert_int_equal(n_synced, 0);

    /* Only the new last level: only its parent. */
    snprintf(path, sizeof path, "%s/a/b/d", real);
    assert_int_equal(fs_mkdir_p(path, 0700), 0);
    assert_int_equal(n_synced, 1);
    snprintf(want, sizeof want, "%s/a/b", real);
    assert_true(was_synced(want));
    unit_rmtree(dir);
}

static void test_open_append_refuses_symlink(void **state)
{
    char *dir = unit_tempdir();
    char *target = unit_path(dir, "target"), *link = unit_path(dir, "x.log");
    char *text;
    int fd;

    (void)state;
    unit_write(target, LIT("private\n"));
    assert_int_equal(symlink(target, link), 0);
    errno = 0;
    assert_int_equal(fs_open_append(link, 0640), -1);
    assert_int_equal(errno, ELOOP);
    text = unit_read(target, NULL);
    assert_string_equal(text, "private\n");
    free(text);

    /* The log module refuses it the same way. */
    assert_int_equal(log_open(link, "x", 0, 0, 0), -1);
    assert_int_equal(errno, ELOOP);
    log_msg(LOG_ERROR, "must not reach the target");
    log_close();
    text = unit_read(target, NULL);
    assert_string_equal(text, "private\n");
    free(text);

    unlink(link);
    fd = fs_open_append(link, 0640);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "a\n", 2), 2);
    close(fd);
    unit_rmtree(dir);
    free(target);
    free(link);
}

static void test_write_atomic_planted_tmp(void **state)
{
    char *dir = unit_tempdir();
    char *target = unit_path(dir, "target"), *path = unit_path(dir, "s.state");
    char tmp[PATH_MAX + 32], *text;
    struct stat st;

    (void)state;
    unit_write(target, LIT("private\n"));
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    assert_int_equal(symlink(target, tmp), 0);
    assert_int_equal(fs_write_atomic(path, "new\n", 4, 0600), 0);
    text = unit_read(target, NULL);
    assert_string_equal(text, "private\n");      /* not written through */
    free(text);
    text = unit_read(path, NULL);
    assert_string_equal(text, "new\n");
    free(text);
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(lstat(tmp, &st), -1);       /* no temp left */
    unit_rmtree(dir);
    free(target);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mkdir_fsyncs_parents),
        cmocka_unit_test(test_open_append_refuses_symlink),
        cmocka_unit_test(test_write_atomic_planted_tmp),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
