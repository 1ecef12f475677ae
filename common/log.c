#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "htime.h"

/* Flush once this much is buffered, whatever the timer says. */
#define LOG_BUFFER 65536

static struct {
    int fd;
    char *path;
    char name[80];
    size_t max_bytes;
    int keep;
    int echo;
    size_t size;                /* bytes in the file, for rotation */
    char buf[LOG_BUFFER];
    size_t used;
} lg = {.fd = -1};

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return;             /* nowhere left to report it */
        }
        p += w;
        n -= (size_t)w;
    }
}

static int open_file(void)
{
    struct stat st;

    /* Never through a symlink: log_dir may be writable by others (a
     * tmpfs), and a planted link must not aim a root-run herd's lines at
     * a file of its choice.  open fails with ELOOP instead. */
    lg.fd = open(lg.path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC,
                 0640);
    if (lg.fd < 0)
        return -1;
    lg.size = fstat(lg.fd, &st) == 0 ? (size_t)st.st_size : 0;
    return 0;
}

/* path.(keep-1) -> path.keep, ..., path -> path.1, then a fresh path. */
static void rotate(void)
{
    size_t n = strlen(lg.path) + 16;
    char *from = malloc(n), *to = malloc(n);

    if (from && to) {
        for (int i = lg.keep - 1; i >= 1; i--) {
            snprintf(from, n, "%s.%d", lg.path, i);
            snprintf(to, n, "%s.%d", lg.path, i + 1);
            rename(from, to);
        }
        if (lg.keep > 0) {
            snprintf(to, n, "%s.1", lg.path);
            rename(lg.path, to);
        } else {
            unlink(lg.path);
        }
    }
    free(from);
    free(to);
    close(lg.fd);
    lg.fd = -1;
    open_file();
}

void log_flush(void)
{
    if (lg.used == 0)
        return;
    if (lg.fd >= 0) {
        write_all(lg.fd, lg.buf, lg.used);
        lg.size += lg.used;
    }
    if (lg.echo)
        write_all(STDERR_FILENO, lg.buf, lg.used);
    lg.used = 0;
    if (lg.fd >= 0 && lg.max_bytes && lg.size >= lg.max_bytes)
        rotate();
}

int log_open(const char *path, const char *name, size_t max_bytes, int keep,
             int echo)
{
    log_close();
    lg.path = strdup(path);
    if (!lg.path)
        return -1;
    snprintf(lg.name, sizeof lg.name, "%s", name);
    lg.max_bytes = max_bytes;
    lg.keep = keep;
    lg.echo = echo;
    return open_file();
}

static void append(const char *p, size_t n)
{
    if (n > sizeof lg.buf - lg.used)
        log_flush();
    if (n > sizeof lg.buf) {
        /* A line bigger than the buffer goes straight out. */
        if (lg.fd >= 0) {
            write_all(lg.fd, p, n);
            lg.size += n;
        }
        if (lg.echo)
            write_all(STDERR_FILENO, p, n);
        return;
    }
    memcpy(lg.buf + lg.used, p, n);
    lg.used += n;
}

static const char *level_word(enum log_level level)
{
    switch (level) {
    case LOG_WARN:
        return "warning: ";
    case LOG_ERROR:
        return "error: ";
    case LOG_INFO:
        break;
    }
    return "";
}

/* "2026-11-28T16:45:14.387549Z NAME: " into out (room for 128 bytes).
 * The date part is formatted once per second, not once per line. */
static size_t line_header(char *out)
{
    static int64_t cached_sec = -1;
    static char cached[24];     /* "2026-11-28T16:45:14." */
    struct htime now = htime_now();
    int32_t usec = now.nsec / 1000;
    size_t n, name_len = strlen(lg.name);

    if (now.sec != cached_sec) {
        htime_format_utc(now, cached, sizeof cached);   /* cut after '.' */
        cached_sec = now.sec;
    }
    memcpy(out, cached, 20);
    n = 20;
    for (int i = 5; i >= 0; i--) {
        out[n + (size_t)i] = (char)('0' + usec % 10);
        usec /= 10;
    }
    n += 6;
    out[n++] = 'Z';
    out[n++] = ' ';
    if (name_len > 80)
        name_len = 80;
    memcpy(out + n, lg.name, name_len);
    n += name_len;
    out[n++] = ':';
    out[n++] = ' ';
    return n;
}

static void vlog(enum log_level level, const char *label, const char *fmt,
                 va_list ap)
{
    char line[8192];
    size_t n;
    int m;

    n = line_header(line);
    m = snprintf(line + n, sizeof line - n, "%s%s", level_word(level),
                 label ? label : "");
    if (m > 0)
        n += (size_t)m < sizeof line - n ? (size_t)m : sizeof line - n - 1;
    m = vsnprintf(line + n, sizeof line - n, fmt, ap);
    if (m > 0)
        n += (size_t)m < sizeof line - n ? (size_t)m : sizeof line - n - 1;
    if (n >= sizeof line - 1)
        n = sizeof line - 2;
    line[n++] = '\n';
    append(line, n);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(level, NULL, fmt, ap);
    va_end(ap);
    if (level == LOG_ERROR)
        log_flush();
}

/* Bytes a log line shows as they are: printable ASCII but the backslash. */
static int plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '\\';
}

size_t log_escape(const char *p, size_t len, char *buf, size_t cap)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i = 0;

    if (cap == 0)
        return 0;
    while (i < len) {
        unsigned char c = (unsigned char)p[i];
        char tmp[4];
        size_t k = 0;

        if (plain(c)) {
            /* Copy a whole run of printable bytes at once. */
            size_t run = i + 1;
            while (run < len && plain((unsigned char)p[run]))
                run++;
            if (run - i > cap - 1 - o)
                run = i + (cap - 1 - o);
            memcpy(buf + o, p + i, run - i);
            o += run - i;
            if (run < len && o == cap - 1)
                break;
            i = run;
            continue;
        }
        tmp[k++] = '\\';
        if (c == '\\')
            tmp[k++] = '\\';
        else if (c == '\n')
            tmp[k++] = 'n';
        else if (c == '\r')
            tmp[k++] = 'r';
        else if (c == '\t')
            tmp[k++] = 't';
        else {
            tmp[k++] = 'x';
            tmp[k++] = hex[c >> 4];
            tmp[k++] = hex[c & 15];
        }
        if (o + k + 1 > cap)
            break;
        memcpy(buf + o, tmp, k);
        o += k;
        i++;
    }
    buf[o] = '\0';
    return o;
}

void log_bytes(const char *label, const char *p, size_t len, size_t limit)
{
    /* header + label + 4 bytes per escaped byte + the size note */
    char line[128 + 256 + 4 * 2048 + 64];
    size_t shown = len < limit ? len : limit, n, label_len = strlen(label);

    if (shown > 2048)
        shown = 2048;
    if (label_len > 256)
        label_len = 256;
    n = line_header(line);
    memcpy(line + n, label, label_len);
    n += label_len;
    n += log_escape(p, shown, line + n, sizeof line - n - 64);
    if (shown < len)
        n += (size_t)snprintf(line + n, 64, "... (%zu bytes)", len);
    line[n++] = '\n';
    append(line, n);
}

void log_close(void)
{
    log_flush();
    if (lg.fd >= 0)
        close(lg.fd);
    lg.fd = -1;
    free(lg.path);
    lg.path = NULL;
}
