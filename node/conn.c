#include "conn.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/container.h"
#include "tls.h"

/* Read this much per recv(); a busy client gets one read per wake-up. */
#define READ_CHUNK 65536
/* After its last reply, a connection the other side is still sending on
 * is shut down for writing and read (and discarded) this long before it
 * is closed: closing with unread input would send a reset, and the reset
 * can destroy the reply before the client reads it. */
#define LINGER_S 2.0
/* TLS: plain text is encrypted from out while less than WIRE_LOW of
 * ciphertext waits for the socket, WIRE_CHUNK at a time, so a slow
 * socket leaves the backlog in out, where the cap counts it. */
#define WIRE_LOW (256u << 10)
#define WIRE_CHUNK (64u << 10)
#define WIRE_MAX (WIRE_LOW + 2 * WIRE_CHUNK)
#define TLS_RECORD 16384        /* the most plain text one record holds */

static struct ev_loop *conn_loop;
static struct conn *live_list;
static struct conn *dead_list;
/* Connections with output queued this iteration: written in one go by
 * conn_flush_pending() before the loop sleeps, so a reply costs no extra
 * poll round and no watcher change when the socket takes it at once. */
static struct conn *pending_list;

static void pending_remove(struct conn *c)
{
    if (!c->write_pending)
        return;
    if (c->pend_prev)
        c->pend_prev->pend_next = c->pend_next;
    else
        pending_list = c->pend_next;
    if (c->pend_next)
        c->pend_next->pend_prev = c->pend_prev;
    c->pend_prev = c->pend_next = NULL;
    c->write_pending = 0;
}

static void pending_add(struct conn *c)
{
    if (c->write_pending)
        return;
    c->pend_prev = NULL;
    c->pend_next = pending_list;
    if (pending_list)
        pending_list->pend_prev = c;
    pending_list = c;
    c->write_pending = 1;
}

static void process_lines(struct conn *c);
static void tls_pump(struct conn *c);

/* Bytes that can go to the socket now (plain text of a TLS connection
 * waits for its handshake). */
static int has_output(const struct conn *c)
{
    if (c->tls)
        return buf_len(&c->wire) > 0 || (c->tls_up && buf_len(&c->out) > 0);
    return buf_len(&c->out) > 0;
}

static size_t queued(const struct conn *c)
{
    return buf_len(&c->out) + (c->tls ? buf_len(&c->wire) : 0);
}

static void update_write_watcher(struct conn *c)
{
    /* The write watcher runs only while there is something to write. */
    if (has_output(c) || c->connecting)
        ev_io_start(conn_loop, &c->write_watcher);
    else
        ev_io_stop(conn_loop, &c->write_watcher);
}

static void update_read_watcher(struct conn *c)
{
    if (c->lingering)
        ev_io_start(conn_loop, &c->read_watcher);
    else if (c->closed || c->flushing_close || c->connecting || c->paused ||
             c->eof || c->done_reading)
        ev_io_stop(conn_loop, &c->read_watcher);
    else
        ev_io_start(conn_loop, &c->read_watcher);
}

void conn_close(struct conn *c, const char *why)
{
    if (c->closed)
        return;
    c->closed = 1;
    pending_remove(c);
    ev_io_stop(conn_loop, &c->read_watcher);
    ev_io_stop(conn_loop, &c->write_watcher);
    ev_idle_stop(conn_loop, &c->more_lines);
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        live_list = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    if (c->ops->on_close)
        c->ops->on_close(c, why);
    c->next_dead = dead_list;
    dead_list = c;
}

void conn_reap(void)
{
    while (dead_list) {
        struct conn *c = dead_list;
        dead_list = c->next_dead;
        buf_free(&c->in);
        buf_free(&c->out);
        buf_free(&c->wire);
        tls_free(c->tls);
        free(c);
    }
}

/* Every reply is out: close, or first linger while the other side may
 * still be sending. */
static void finish(struct conn *c)
{
    if (c->lingering)
        return;
    if (c->eof || shutdown(c->fd, SHUT_WR) < 0) {
        conn_close(c, "closed after reply");
        return;
    }
    ev_io_stop(conn_loop, &c->write_watcher);
    c->lingering = 1;
    c->linger_since = ev_now(conn_loop);
    update_read_watcher(c);
}

/* TLS: encrypt queued plain text while little ciphertext waits.  All of
 * one iteration's lines go out in as few records as they fit. */
static int encrypt_some(struct conn *c)
{
    while (c->tls_up && buf_len(&c->out) > 0 && buf_len(&c->wire) < WIRE_LOW) {
        size_t n = buf_len(&c->out);

        if (n > WIRE_CHUNK)
            n = WIRE_CHUNK;
        if (tls_write(c->tls, buf_head(&c->out), n) < 0 ||
            tls_drain(c->tls, &c->wire) < 0) {
            conn_close(c, tls_why(c->tls));
            return -1;
        }
        buf_consume(&c->out, n);
    }
    return 0;
}

static void flush_output(struct conn *c)
{
    struct buf *b = c->tls ? &c->wire : &c->out;

    for (;;) {
        if (c->tls && encrypt_some(c) < 0)
            return;
        if (buf_len(b) == 0)
            break;
        ssize_t n = send(c->fd, buf_head(b), buf_len(b), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            conn_close(c, strerror(errno));
            return;
        }
        buf_consume(b, (size_t)n);
    }
    if (queued(c) == 0 && c->flushing_close) {
        finish(c);
        return;
    }
    if (c->paused && buf_len(&c->out) <= c->out_low) {
        c->paused = 0;
        update_read_watcher(c);
        process_lines(c);
        if (c->closed)
            return;
    }
    if (buf_len(&c->out) <= c->out_low && c->ops->on_drain) {
        c->ops->on_drain(c);
        if (c->closed)
            return;
    }
    update_write_watcher(c);
}

int conn_send(struct conn *c, const char *p, size_t n)
{
    if (c->closed)
        return -1;
    if (buf_append(&c->out, p, n) < 0) {
        conn_close(c, errno == ENOBUFS ? "output queue full (peer not reading)"
                                       : "out of memory");
        return -1;
    }
    /* Written before the loop sleeps (or by the write watcher, if one is
     * already waiting for room in the socket). */
    if (!c->connecting && !ev_is_active(&c->write_watcher))
        pending_add(c);
    return 0;
}

void conn_flush_pending(void)
{
    while (pending_list) {
        struct conn *c = pending_list;

        pending_remove(c);
        flush_output(c);        /* may queue more, or close c */
    }
}

void conn_close_after_flush(struct conn *c)
{
    c->flushing_close = 1;
    update_read_watcher(c);
    if (queued(c) == 0)
        finish(c);
    else
        ev_io_start(conn_loop, &c->write_watcher);
}

/* More to hand to the owner: a whole line, or after end of stream the
 * last bytes (a line without "\n") or the end itself. */
static int more_to_do(const struct conn *c)
{
    if (memchr(buf_head(&c->in), '\n', buf_len(&c->in)))
        return 1;
    return c->eof && (buf_len(&c->in) > 0 || !c->eof_told);
}

static void process_lines(struct conn *c)
{
    int handled = 0;
    const char *line;
    size_t len;

    while (!c->closed && !c->flushing_close && !c->done_reading) {
        if (c->ops->ready && !c->ops->ready(c)) {
            /* Stop reading too, so the input stays bounded; the owner
             * calls conn_resume() when it can take lines again. */
            c->paused = 1;
            update_read_watcher(c);
            return;
        }
        if (buf_len(&c->out) > c->out_high) {
            c->paused = 1;      /* resumes when output drains */
            update_read_watcher(c);
            return;
        }
        if (handled == CONN_LINES_PER_WAKEUP) {
            if (more_to_do(c))
                ev_idle_start(conn_loop, &c->more_lines);
            return;
        }
        if (!buf_take_line(&c->in, &line, &len)) {
            /* After end of stream, what is left is the last line. */
            if (!c->eof || buf_len(&c->in) == 0)
                break;
            line = buf_head(&c->in);
            len = buf_len(&c->in);
            buf_consume(&c->in, len);
        }
        /* The bound holds for every line, however the bytes arrived: a
         * long line read whole is no different from one read in pieces. */
        if (len > c->max_line) {
            c->ops->on_overlong(c, line);
            handled++;
            continue;
        }
        c->ops->on_line(c, line, len);
        handled++;
    }
    if (c->closed || c->flushing_close || c->done_reading)
        return;
    if (buf_len(&c->in) > c->max_line) {
        c->ops->on_overlong(c, buf_head(&c->in));
        if (!c->closed && !c->flushing_close) {
            /* The owner keeps the connection: drop the line up to its
             * "\n", however long it goes on. */
            buf_consume(&c->in, buf_len(&c->in));
            c->skipping = 1;
        }
        return;
    }
    if (c->eof && !c->eof_told && buf_len(&c->in) == 0) {
        c->eof_told = 1;
        if (c->ops->on_eof)
            c->ops->on_eof(c);
        else
            conn_close(c, "closed by the other side");
    }
}

void conn_stop_reading(struct conn *c)
{
    c->done_reading = 1;
    update_read_watcher(c);
}

void conn_resume(struct conn *c)
{
    if (c->closed)
        return;
    c->paused = 0;
    update_read_watcher(c);
    ev_idle_start(conn_loop, &c->more_lines);
}

static void on_more_lines(struct ev_loop *loop, ev_idle *w, int revents)
{
    struct conn *c = container_of(w, struct conn, more_lines);

    (void)revents;
    ev_idle_stop(loop, w);
    if (c->paused)
        return;
    if (c->tls)
        tls_pump(c);
    else
        process_lines(c);
}

static void queue_write(struct conn *c)
{
    if (!c->connecting && !ev_is_active(&c->write_watcher))
        pending_add(c);
}

/* TLS: one handshake step; 1 when it is done, 0 when it needs more
 * input, -1 when the connection closed. */
static int tls_step(struct conn *c)
{
    int rc;

    if (c->tls_up)
        return 1;
    rc = tls_handshake(c->tls);
    if (tls_drain(c->tls, &c->wire) < 0 || rc < 0) {
        conn_close(c, tls_why(c->tls));
        return -1;
    }
    if (buf_len(&c->wire) > 0)
        queue_write(c);
    if (rc == 0)
        return 0;
    c->tls_up = 1;
    if (c->ops->on_secure) {
        c->ops->on_secure(c);
        if (c->closed)
            return -1;
    }
    queue_write(c);
    return 1;
}

/* TLS: finish the handshake, decrypt what arrived into in, handle its
 * lines. */
static void tls_pump(struct conn *c)
{
    int full = 0, have_line;

    if (tls_step(c) <= 0)
        return;
    have_line = memchr(buf_head(&c->in), '\n', buf_len(&c->in)) != NULL;
    for (;;) {
        size_t want = c->in.max - buf_len(&c->in), room;
        char *dst;
        ssize_t n;

        /* Decrypt about what a plain connection reads per wake-up: once
         * a chunk's worth with a whole line is waiting, handle it first
         * (filling in to its cap would move it at every record). */
        if (want == 0 || (have_line && buf_len(&c->in) >= READ_CHUNK)) {
            full = 1;
            break;
        }
        /* Room for one record's plain text at a time: asking for more
         * would move the unread lines to the front at every record. */
        if (want > TLS_RECORD)
            want = TLS_RECORD;
        dst = buf_space(&c->in, want, &room);
        if (!dst) {
            conn_close(c, "out of memory");
            return;
        }
        n = tls_read(c->tls, dst, room);
        if (n < 0) {
            conn_close(c, tls_why(c->tls));
            return;
        }
        if (n == 0)
            break;
        /* The half-line clock, as for plain connections (on_readable). */
        int had_partial = buf_len(&c->in) > 0;
        int ends_line = memchr(dst, '\n', (size_t)n) != NULL;
        have_line |= ends_line;
        buf_commit(&c->in, (size_t)n);
        if (!had_partial || ends_line)
            c->line_since = ev_now(conn_loop);
    }
    /* Post-handshake messages (a key update) may want an answer. */
    if (tls_drain(c->tls, &c->wire) < 0) {
        conn_close(c, tls_why(c->tls));
        return;
    }
    if (buf_len(&c->wire) > 0)
        queue_write(c);
    process_lines(c);
    /* Plain text left in the engine because in was full enough: come
     * back for it once the lines are handled. */
    if (full && !c->closed && !c->paused && tls_buffered(c->tls) > 0)
        ev_idle_start(conn_loop, &c->more_lines);
}

static void tls_readable(struct conn *c)
{
    static char chunk[READ_CHUNK];
    ssize_t n;

    /* Take more from the socket only while little ciphertext is waiting
     * to be decrypted, so the engine's input stays bounded too. */
    if (tls_buffered(c->tls) < READ_CHUNK) {
        n = recv(c->fd, chunk, sizeof chunk, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            conn_close(c, strerror(errno));
            return;
        }
        if (n == 0) {
            conn_close(c, "closed by the other side");
            return;
        }
        c->last_rx = ev_now(conn_loop);
        if (tls_feed(c->tls, chunk, (size_t)n) < 0) {
            conn_close(c, tls_why(c->tls));
            return;
        }
    }
    tls_pump(c);
}

int conn_start_tls(struct conn *c, struct tls *t)
{
    c->tls = t;
    buf_init(&c->wire, WIRE_MAX);
    /* Clear text queued before the switch (the dialer's HERD-HELLO)
     * leaves first, ahead of the handshake. */
    if (buf_len(&c->out) > 0) {
        if (buf_append(&c->wire, buf_head(&c->out), buf_len(&c->out)) < 0) {
            conn_close(c, "out of memory");
            return -1;
        }
        buf_consume(&c->out, buf_len(&c->out));
    }
    /* Bytes that came after the HERD-HELLO line are the first of TLS. */
    if (buf_len(&c->in) > 0) {
        if (tls_feed(t, buf_head(&c->in), buf_len(&c->in)) < 0) {
            conn_close(c, tls_why(t));
            return -1;
        }
        buf_consume(&c->in, buf_len(&c->in));
    }
    if (c->connecting)
        return 0;
    /* A step now, not a whole pump: this may run inside the connection's
     * own line handling, and the handshake's first step yields no lines. */
    if (tls_step(c) < 0)
        return -1;
    if (c->tls_up)
        ev_idle_start(conn_loop, &c->more_lines);
    return 0;
}

static void on_readable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, read_watcher);
    size_t room;
    char *dst;
    ssize_t n;

    (void)revents;
    if (c->lingering) {
        char sink[4096];
        n = recv(c->fd, sink, sizeof sink, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                       errno != EINTR))
            conn_close(c, "closed after reply");
        return;
    }
    if (c->tls) {
        tls_readable(c);
        return;
    }
    /* Room for a chunk, but never past the input cap: a line that long is
     * answered by on_overlong, not buffered further. */
    size_t want = c->in.max - buf_len(&c->in);
    if (want > READ_CHUNK)
        want = READ_CHUNK;
    if (want == 0) {
        process_lines(c);
        return;
    }
    dst = buf_space(&c->in, want, &room);
    if (dst == NULL) {
        conn_close(c, "out of memory");
        return;
    }
    n = recv(c->fd, dst, room < want ? room : want, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        conn_close(c, strerror(errno));
        return;
    }
    if (n == 0) {
        if (!c->ops->on_eof) {
            conn_close(c, "closed by the other side");
            return;
        }
        /* End of stream means no more requests, not "stop answering":
         * the lines read so far, and a last one without "\n", are still
         * served, then the owner closes (SPEC.md, Connections). */
        c->eof = 1;
        update_read_watcher(c);
        process_lines(c);
        return;
    }
    c->last_rx = ev_now(loop);
    if (c->skipping) {
        /* The rest of a line already refused: drop it up to its "\n". */
        char *nl = memchr(dst, '\n', (size_t)n);
        if (!nl)
            return;
        c->skipping = 0;
        size_t keep = (size_t)n - (size_t)(nl + 1 - dst);
        memmove(dst, nl + 1, keep);
        n = (ssize_t)keep;
        if (n == 0)
            return;
    }
    /* The idle clock of a half line starts with its first byte and is not
     * reset by more bytes of the same line: a slow-loris client dribbling
     * a byte at a time still meets the deadline. */
    int had_partial = buf_len(&c->in) > 0;
    int ends_line = memchr(dst, '\n', (size_t)n) != NULL;
    buf_commit(&c->in, (size_t)n);
    c->last_rx = ev_now(loop);
    if (!had_partial || ends_line)
        c->line_since = c->last_rx;
    process_lines(c);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = container_of(w, struct conn, write_watcher);

    (void)loop;
    (void)revents;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;

        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            conn_close(c, strerror(err));
            return;
        }
        c->connecting = 0;
        update_read_watcher(c);
        /* The owner learns of the connect through on_drain. */
        if (c->ops->on_drain)
            c->ops->on_drain(c);
        if (c->closed)
            return;
    }
    flush_output(c);
}

struct conn *conn_new(struct ev_loop *loop, int fd, const char *addr,
                      const struct conn_ops *ops, void *owner,
                      size_t max_line, size_t max_out, int connecting)
{
    struct conn *c = calloc(1, sizeof *c);

    if (!c)
        return NULL;
    conn_loop = loop;
    c->fd = fd;
    snprintf(c->addr, sizeof c->addr, "%s", addr);
    /* The input buffer holds one over-long line at most, plus a chunk. */
    buf_init(&c->in, max_line + READ_CHUNK + 1);
    buf_init(&c->out, max_out);
    c->max_line = max_line;
    c->out_high = max_out / 2;
    c->out_low = max_out / 8;
    c->ops = ops;
    c->owner = owner;
    c->connecting = connecting;
    c->last_rx = c->line_since = ev_now(loop);
    ev_io_init(&c->read_watcher, on_readable, fd, EV_READ);
    ev_io_init(&c->write_watcher, on_writable, fd, EV_WRITE);
    ev_idle_init(&c->more_lines, on_more_lines);
    c->next = live_list;
    if (live_list)
        live_list->prev = c;
    live_list = c;
    update_read_watcher(c);
    update_write_watcher(c);
    return c;
}

void conn_set_owner(struct conn *c, const struct conn_ops *ops, void *owner,
                    size_t max_line, size_t max_out)
{
    c->ops = ops;
    c->owner = owner;
    c->max_line = max_line;
    c->in.max = max_line + READ_CHUNK + 1;
    c->out.max = max_out;
    c->out_high = max_out / 2;
    c->out_low = max_out / 8;
}

void conn_close_all(const char *why)
{
    while (live_list)
        conn_close(live_list, why);
}

void conn_sweep_idle(ev_tstamp now, double idle)
{
    struct conn *c = live_list, *next;

    for (; c; c = next) {
        next = c->next;
        if (c->lingering) {
            if (now - c->linger_since > LINGER_S)
                conn_close(c, "closed after reply");
            continue;
        }
        /* Whole lines waiting (reading is paused for backpressure) are
         * not a stall; only an unfinished line counts. */
        if (buf_len(&c->in) > 0 && !c->eof && !c->done_reading &&
            now - c->line_since > idle &&
            !memchr(buf_head(&c->in), '\n', buf_len(&c->in)))
            conn_close(c, "a line unfinished for too long");
    }
}
