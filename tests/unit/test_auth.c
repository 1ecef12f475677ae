/* auth: the herd secret file, the keyring, key ids and link PSKs. */
#include "tests/unit/unit.h"

#include <dirent.h>
#include <sys/wait.h>

#include "common/auth.h"

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[n] == '\0';
}

static size_t count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_secret_created(void **state)
{
    char *dir = unit_tempdir(), *path = unit_path(dir, "secret"), *text;
    struct auth_secret s, again;
    char err[256] = "";
    struct stat st;
    mode_t old = umask(022);
    size_t len;

    (void)state;
    assert_int_equal(auth_secret_load(path, &s, err, sizeof err), 0);
    umask(old);
    /* Mode 0600, a regular file, 64 hex digits and a newline. */
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 07777, 0600);
    text = unit_read(path, &len);
    assert_int_equal(len, 65);
    assert_int_equal(text[64], '\n');
    text[64] = '\0';
    assert_true(is_lower_hex(text, 64));
    /* The secret is the file's text without its trailing newline. */
    assert_int_equal(s.len, 64);
    assert_memory_equal(s.bytes, text, 64);
    /* No temporary file is left behind. */
    assert_int_equal(count_entries(dir), 1);
    /* Loaded again: the same secret, the file untouched. */
    assert_int_equal(auth_secret_load(path, &again, err, sizeof err), 0);
    assert_int_equal(again.len, s.len);
    assert_memory_equal(again.bytes, s.bytes, s.len);
    free(text);
    text = unit_read(path, &len);
    assert_int_equal(len, 65);
    assert_memory_equal(text, s.bytes, 64);
    free(text);
    auth_secret_clear(&s);
    auth_secret_clear(&again);
    unit_rmtree(dir);
    free(path);
}

static void test_secret_fresh_each_herd(void **state)
{
    char *dir = unit_tempdir();
    char *a = unit_path(dir, "a"), *b = unit_path(dir, "b");
    struct auth_secret sa, sb;
    char err[256];

    (void)state;
    assert_int_equal(auth_secret_load(a, &sa, err, sizeof err), 0);
    assert_int_equal(auth_secret_load(b, &sb, err, sizeof err), 0);
    assert_int_equal(sa.len, sb.len);
    assert_true(memcmp(sa.bytes, sb.bytes, sa.len) != 0);
    unit_rmtree(dir);
    free(a);
    free(b);
}

static void test_secret_given(void **state)
{
    char *dir = unit_tempdir(), *path = unit_path(dir, "secret");
    struct auth_secret s;
    char err[256];

    (void)state;
    /* A secret written by hand: any bytes, trailing whitespace dropped. */
    unit_write(path, LIT("my herd secret!!  \t\r\n\n"));
    assert_int_equal(auth_secret_load(path, &s, err, sizeof err), 0);
    assert_int_equal(s.len, 16);
    assert_memory_equal(s.bytes, "my herd secret!!", 16);
    /* Exactly AUTH_SECRET_MIN bytes is enough... */
    unit_write(path, LIT("0123456789abcdef"));
    assert_int_equal(auth_secret_load(path, &s, err, sizeof err), 0);
    assert_int_equal(s.len, AUTH_SECRET_MIN);
    /* ...leading whitespace and inner bytes count. */
    unit_write(path, LIT(" \0abcdefghijklmn\n"));
    assert_int_equal(auth_secret_load(path, &s, err, sizeof err), 0);
    assert_int_equal(s.len, 16);
    assert_memory_equal(s.bytes, " \0abcdefghijklmn", 16);
    unit_rmtree(dir);
    free(path);
}

static void test_secret_too_short(void **state)
{
    char *dir = unit_tempdir(), *path = unit_path(dir, "secret");
    struct auth_secret s;
    char err[256];
    char want[512];

    (void)state;
    snprintf(want, sizeof want, "secret %s is shorter than %d bytes", path,
             AUTH_SECRET_MIN);
    unit_write(path, LIT("0123456789abcde"));
    err[0] = '\0';
    assert_int_equal(auth_secret_load(path, &s, err, sizeof err), -1);
    assert_string_equal(err, want);
    /* Trailing whitespace does not make up the length. */
    unit_write(path, LIT("0123456789abcde \n\n\n"));
    err[0] = '\0';
    assert_int_equal(auth_secret_load(path, &s, err, sizeof err), -1);
    assert_string_equal(err, want);
    /* An empty file is refused, not replaced. */
    unit_write(path, LIT(""));
    err[0] = '\0';
    assert_int_equal(auth_secret_load(path, &s, err, sizeof err), -1);
    assert_string_equal(err, want);
    {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_size, 0);
    }
    unit_rmtree(dir);
    free(path);
}

static void test_secret_cannot_create(void **state)
{
    char *dir = unit_tempdir();
    char *missing = unit_path(dir, "no/such/dir/secret");
    char *file = unit_path(dir, "plain");
    char *under_file = unit_path(dir, "plain/secret");
    struct auth_secret s;
    char err[512];

    (void)state;
    err[0] = '\0';
    assert_int_equal(auth_secret_load(missing, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, missing));
    /* A path that cannot even be opened (a file where a directory should
     * be) is refused with a message too. */
    unit_write(file, LIT("x"));
    err[0] = '\0';
    assert_int_equal(auth_secret_load(under_file, &s, err, sizeof err), -1);
    assert_non_null(strstr(err, under_file));
    unit_rmtree(dir);
    free(missing);
    free(file);
    free(under_file);
}

/* Several processes racing to create the secret agree on one. */
static void test_secret_race(void **state)
{
    enum { KIDS = 8 };
    char *dir = unit_tempdir(), *path = unit_path(dir, "secret");
    int fds[KIDS][2];
    pid_t pids[KIDS];
    struct auth_secret mine;
    char err[256];

    (void)state;
    for (int i = 0; i < KIDS; i++) {
        assert_int_equal(pipe(fds[i]), 0);
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct auth_secret s;
            char e[256];
            int ok = auth_secret_load(path, &s, e, sizeof e) == 0 &&
                     s.len == 64 &&
                     write(fds[i][1], s.bytes, 64) == 64;
            _exit(ok ? 0 : 1);
        }
        close(fds[i][1]);
    }
    assert_int_equal(auth_secret_load(path, &mine, err, sizeof err), 0);
    for (int i = 0; i < KIDS; i++) {
        char got[64];
        int status;

        assert_int_equal(read(fds[i][0], got, 64), 64);
        close(fds[i][0]);
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_memory_equal(got, mine.bytes, 64);
    }
    assert_int_equal(count_entries(dir), 1);
    unit_rmtree(dir);
    free(path);
}

static struct auth_secret secret_of(const char *text)
{
    struct auth_secret s;

    memset(&s, 0, sizeof s);
    s.len = strlen(text);
    memcpy(s.bytes, text, s.len);
    return s;
}

static void test_key_id_and_psk_known_answers(void **state)
{
    struct auth_secret s = secret_of("sixteen-byte-key");
    unsigned char psk[AUTH_PSK_LEN], other[AUTH_PSK_LEN];
    char id[AUTH_KEY_ID_HEX + 1];
    static const unsigned char want[AUTH_PSK_LEN] = {
        0xa9, 0x87, 0xe1, 0x02, 0xb7, 0x7a, 0x1a, 0xc7, 0x52, 0xbe, 0x51,
        0xd4, 0x97, 0xe4, 0x48, 0xb2, 0xf9, 0x5b, 0x38, 0x3d, 0x38, 0xd9,
        0xe5, 0x9e, 0x38, 0xd5, 0x29, 0xb7, 0xd1, 0xb4, 0xb5, 0xaf,
    };

    (void)state;
    /* printf 'herd key id\nsixteen-byte-key' | sha256sum, first 8 bytes:
     * pinned so that two builds agree on which key a HELLO names. */
    auth_key_id(&s, id);
    assert_string_equal(id, "d91e8af3202dfde5");
    /* openssl kdf -keylen 32 -kdfopt digest:SHA256
     *   -kdfopt key:sixteen-byte-key -kdfopt salt:'herd-v2 link psk'
     *   -kdfopt info:"dialer Hill<LF>listener Jaquez" HKDF */
    assert_int_equal(auth_link_psk(&s, "Hill", "Jaquez", psk), 0);
    assert_memory_equal(psk, want, sizeof want);
    /* Bound to the roles and the names. */
    assert_int_equal(auth_link_psk(&s, "Jaquez", "Hill", other), 0);
    assert_memory_not_equal(psk, other, sizeof psk);
    assert_int_equal(auth_link_psk(&s, "Hil", "lJaquez", other), 0);
    assert_memory_not_equal(psk, other, sizeof psk);
}

static void test_keyring_parse(void **state)
{
    struct auth_keyring r;
    char err[256];

    (void)state;
    assert_int_equal(auth_keyring_parse(LIT("\nsecond-secret-key-xx\r\n"
                                            "sixteen-byte-key \t\n\n"
                                            "second-secret-key-xx\n"),
                                        &r, err, sizeof err), 0);
    /* The first is the primary; a repeat counts once. */
    assert_int_equal(r.n, 2);
    assert_int_equal(r.keys[0].secret.len, 20);
    assert_memory_equal(r.keys[0].secret.bytes, "second-secret-key-xx", 20);
    assert_string_equal(r.keys[1].id, "d91e8af3202dfde5");
    assert_ptr_equal(auth_keyring_find(&r, "d91e8af3202dfde5", 16), &r.keys[1]);
    assert_null(auth_keyring_find(&r, "d91e8af3202dfde5", 15));
    assert_null(auth_keyring_find(&r, "0000000000000000", 16));
    /* Refusals: nothing, a short key, too many keys. */
    assert_int_equal(auth_keyring_parse(LIT("\n \n"), &r, err, sizeof err), -1);
    assert_string_equal(err, "keyring holds no key");
    assert_int_equal(auth_keyring_parse(LIT("sixteen-byte-key\nshort\n"), &r,
                                        err, sizeof err), -1);
    assert_string_equal(err, "keyring line 2: a secret must be 16 to 4096 bytes");
    {
        char text[(AUTH_KEYS_MAX + 2) * 20];
        size_t len = 0;
        for (int i = 0; i <= AUTH_KEYS_MAX; i++)
            len += (size_t)sprintf(text + len, "key-number-%08d\n", i);
        assert_int_equal(auth_keyring_parse(text, len, &r, err, sizeof err), -1);
        assert_string_equal(err, "keyring holds more than 16 keys");
        assert_int_equal(auth_keyring_parse(text, len - 20, &r, err,
                                            sizeof err), 0);
        assert_int_equal(r.n, AUTH_KEYS_MAX);
    }
    auth_keyring_clear(&r);
}

static void test_keyring_load_and_write(void **state)
{
    char *dir = unit_tempdir(), *ring = unit_path(dir, "herd.keyring");
    char *secret = unit_path(dir, "herd.secret");
    char *tmp = malloc(strlen(ring) + 32), *text;
    static struct auth_keyring r, back;
    char err[512];
    struct stat st;
    size_t len;
    int from_ring = -1;

    (void)state;
    /* No keyring: the single secret, created if need be. */
    assert_int_equal(auth_keyring_load(ring, secret, &r, &from_ring, err,
                                       sizeof err), 0);
    assert_int_equal(from_ring, 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.keys[0].secret.len, 64);
    /* Written: one line per key, primary first, mode 0600, no temporary
     * file left; read back the same. */
    r.keys[1].secret = secret_of("sixteen-byte-key");
    auth_key_id(&r.keys[1].secret, r.keys[1].id);
    r.n = 2;
    assert_int_equal(auth_keyring_write(ring, &r, err, sizeof err), 0);
    assert_int_equal(stat(ring, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    text = unit_read(ring, &len);
    assert_int_equal(len, 64 + 1 + 16 + 1);
    assert_memory_equal(text + 65, "sixteen-byte-key\n", 17);
    free(text);
    assert_int_equal(count_entries(dir), 2);
    assert_int_equal(auth_keyring_load(ring, secret, &back, &from_ring, err,
                                       sizeof err), 0);
    assert_int_equal(from_ring, 1);
    assert_int_equal(back.n, 2);
    assert_string_equal(back.keys[0].id, r.keys[0].id);
    assert_string_equal(back.keys[1].id, "d91e8af3202dfde5");
    /* A symlink planted at the keyring is not followed when read. */
    assert_int_equal(unlink(ring), 0);
    assert_int_equal(symlink(secret, ring), 0);
    assert_int_equal(auth_keyring_load(ring, secret, &back, &from_ring, err,
                                       sizeof err), -1);
    assert_non_null(strstr(err, "cannot open keyring"));
    unlink(ring);
    /* ...nor at the temporary name when written: the link is replaced,
     * its target untouched. */
    sprintf(tmp, "%s.tmp.%ld", ring, (long)getpid());
    assert_int_equal(symlink(secret, tmp), 0);
    assert_int_equal(auth_keyring_write(ring, &r, err, sizeof err), 0);
    text = unit_read(secret, &len);
    assert_int_equal(len, 65);
    free(text);
    assert_int_equal(lstat(ring, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    auth_keyring_clear(&r);
    auth_keyring_clear(&back);
    unit_rmtree(dir);
    free(ring);
    free(secret);
    free(tmp);
}

static void test_secret_clear(void **state)
{
    struct auth_secret s = secret_of("sixteen-byte-key");

    (void)state;
    auth_secret_clear(&s);
    assert_int_equal(s.len, 0);
    for (size_t i = 0; i < sizeof s.bytes; i++)
        assert_int_equal(s.bytes[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_created),
        cmocka_unit_test(test_secret_fresh_each_herd),
        cmocka_unit_test(test_secret_given),
        cmocka_unit_test(test_secret_too_short),
        cmocka_unit_test(test_secret_cannot_create),
        cmocka_unit_test(test_secret_race),
        cmocka_unit_test(test_key_id_and_psk_known_answers),
        cmocka_unit_test(test_keyring_parse),
        cmocka_unit_test(test_keyring_load_and_write),
        cmocka_unit_test(test_secret_clear),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
