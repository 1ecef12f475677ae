/* auth: the herd secret file and the HMAC handshake proofs. */
#include "tests/unit/unit.h"

#include <dirent.h>
#include <sys/wait.h>

#include "common/auth.h"
#include "common/peerproto.h"

#define DN "0123456789abcdef0123456789abcdef"
#define LN "fedcba9876543210fedcba9876543210"

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

static void test_nonce(void **state)
{
    char a[PEER_NONCE_HEX + 1], b[PEER_NONCE_HEX + 1];

    (void)state;
    assert_int_equal(auth_nonce(a, sizeof a), 0);
    assert_int_equal(auth_nonce(b, sizeof b), 0);
    assert_int_equal(strlen(a), PEER_NONCE_HEX);
    assert_true(is_lower_hex(a, PEER_NONCE_HEX));
    assert_true(is_lower_hex(b, PEER_NONCE_HEX));
    assert_string_not_equal(a, b);
    assert_int_equal(auth_nonce(a, PEER_NONCE_HEX), -1);
}

static struct auth_secret secret_of(const char *text)
{
    struct auth_secret s;

    memset(&s, 0, sizeof s);
    s.len = strlen(text);
    memcpy(s.bytes, text, s.len);
    return s;
}

static void mac(const struct auth_secret *s, const char *role, const char *d,
                const char *l, const char *dn, const char *ln, char *out)
{
    assert_int_equal(auth_mac(s, role, d, l, dn, ln, out, PEER_MAC_HEX + 1), 0);
    assert_int_equal(strlen(out), PEER_MAC_HEX);
    assert_true(is_lower_hex(out, PEER_MAC_HEX));
}

static void test_mac_known_answer(void **state)
{
    struct auth_secret s = secret_of("sixteen-byte-key");
    char out[PEER_MAC_HEX + 1];

    (void)state;
    /* From: printf 'herd-v1\nlistener\nHill\nJaquez\nDN\nLN' |
     *       openssl dgst -sha256 -hmac sixteen-byte-key
     * Pinned so two builds of the node always understand each other. */
    mac(&s, "listener", "Hill", "Jaquez", DN, LN, out);
    assert_string_equal(out, "ef45a4dc1f67bb967abb38cd0858d848"
                             "4899167a2e82e3d5edc0830cbba41d79");
}

static void test_mac_binds_everything(void **state)
{
    struct auth_secret s = secret_of("sixteen-byte-key");
    struct auth_secret s2 = secret_of("sixteen-byte-kez");
    char base[PEER_MAC_HEX + 1], same[PEER_MAC_HEX + 1];
    char other[7][PEER_MAC_HEX + 1];

    (void)state;
    mac(&s, "dialer", "Hill", "Jaquez", DN, LN, base);
    mac(&s, "dialer", "Hill", "Jaquez", DN, LN, same);
    assert_string_equal(base, same);
    mac(&s, "listener", "Hill", "Jaquez", DN, LN, other[0]);  /* role */
    mac(&s, "dialer", "Jaquez", "Hill", DN, LN, other[1]);    /* names */
    mac(&s, "dialer", "Hill", "Smith", DN, LN, other[2]);
    mac(&s, "dialer", "Hill", "Jaquez", LN, DN, other[3]);    /* nonces */
    mac(&s, "dialer", "Hill", "Jaquez",
        "0123456789abcdef0123456789abcdee", LN, other[4]);
    mac(&s, "dialer", "Hill", "Jaquez", DN,
        "fedcba9876543210fedcba9876543211", other[5]);
    mac(&s2, "dialer", "Hill", "Jaquez", DN, LN, other[6]);   /* secret */
    for (int i = 0; i < 7; i++) {
        if (strcmp(base, other[i]) == 0)
            fail_msg("MAC variant %d equals the base MAC", i);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(other[i], other[j]);
    }
    /* Field boundaries matter: "Hill"+"Jaquez" is not "Hil"+"lJaquez". */
    mac(&s, "dialer", "Hil", "lJaquez", DN, LN, same);
    assert_string_not_equal(base, same);
}

static void test_mac_cap(void **state)
{
    struct auth_secret s = secret_of("sixteen-byte-key");
    char out[PEER_MAC_HEX + 1];

    (void)state;
    assert_int_equal(auth_mac(&s, "dialer", "a", "b", DN, LN, out,
                              PEER_MAC_HEX), -1);
}

static void test_mac_equal(void **state)
{
    char a[PEER_MAC_HEX + 1], b[PEER_MAC_HEX + 1];

    (void)state;
    memset(a, 'a', PEER_MAC_HEX);
    a[PEER_MAC_HEX] = '\0';
    memcpy(b, a, sizeof a);
    assert_true(auth_mac_equal(a, b));
    b[0] = 'b';
    assert_false(auth_mac_equal(a, b));
    b[0] = 'a';
    b[PEER_MAC_HEX - 1] = 'b';                 /* the last byte counts */
    assert_false(auth_mac_equal(a, b));
    b[PEER_MAC_HEX - 1] = 'a';
    b[PEER_MAC_HEX - 1] = '\0';                /* so does the length */
    assert_false(auth_mac_equal(a, b));
    assert_false(auth_mac_equal(b, a));
    assert_false(auth_mac_equal("", a));
    assert_true(auth_mac_equal("", ""));
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
        cmocka_unit_test(test_nonce),
        cmocka_unit_test(test_mac_known_answer),
        cmocka_unit_test(test_mac_binds_everything),
        cmocka_unit_test(test_mac_cap),
        cmocka_unit_test(test_mac_equal),
        cmocka_unit_test(test_secret_clear),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
