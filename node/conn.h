/* conn: one TCP connection of a node, client or peer: a non-blocking
 * socket, an input buffer of lines, a capped output queue.  Closed
 * connections are freed after the loop iteration, never inside their own
 * callbacks. */
#ifndef HERD_CONN_H
#define HERD_CONN_H

#include <ev.h>
#include <stddef.h>

#include "common/buf.h"

/* Lines handled per wake-up, so one pipelining client cannot starve the
 * rest; the remainder is taken on the next loop iteration. */
#define CONN_LINES_PER_WAKEUP 64

struct conn;

struct conn_ops {
    /* One complete line, without "\n". */
    void (*on_line)(struct conn *c, const char *line, size_t len);
    /* A line longer than max_line: complete, or still without its "\n".
     * line points at its first max_line bytes (at least).  Unless the
     * owner closes the connection, the line is dropped up to its "\n"
     * and the next one is read. */
    void (*on_overlong)(struct conn *c, const char *line);
    /* May more lines be handled now?  NULL = always. */
    int (*ready)(struct conn *c);
    /* Output fell to the low-water mark (catch-up refills it). */
    void (*on_drain)(struct conn *c);
    /* The other side ended its stream and every line it sent (a last
     * one without "\n" included) has been handed to on_line.  NULL: end
     * of stream closes the connection at once (links). */
    void (*on_eof)(struct conn *c);
    /* The connection is closing; the owner forgets it. */
    void (*on_close)(struct conn *c, const char *why);
    /* TLS connections: the handshake finished (NULL = nothing to do). */
    void (*on_secure)(struct conn *c);
};

struct tls;

struct conn {
    int fd;
    unsigned long id;
    char addr[64];              /* "127.0.0.1:43210" */
    ev_io read_watcher, write_watcher;
    ev_idle more_lines;
    struct buf in, out;
    size_t max_line;
    size_t out_high;            /* stop reading input above this */
    size_t out_low;             /* on_drain below this */
    const struct conn_ops *ops;
    void *owner;
    ev_tstamp last_rx;          /* last bytes received */
    ev_tstamp line_since;       /* first byte of the unfinished line */
    int paused;                 /* reading stopped for backpressure */
    int flushing_close;         /* close once output is written */
    int connecting;             /* non-blocking connect in progress */
    int closed;
    int eof;                    /* the other side ended its stream */
    int eof_told;               /* on_eof has run */
    int done_reading;           /* the owner takes no more lines */
    int lingering;              /* replies out; draining input to close */
    ev_tstamp linger_since;
    int skipping;               /* dropping an over-long line to its "\n" */
    struct conn *prev, *next;   /* all live connections */
    struct conn *pend_prev, *pend_next;  /* output queued this iteration */
    int write_pending;
    struct conn *next_dead;
    /* A TLS connection (links): in and out hold plain text, wire the
     * ciphertext waiting for the socket; the transport sits between. */
    struct tls *tls;
    struct buf wire;
    int tls_up;                 /* handshake done: out may be encrypted */
};

/* Wrap an accepted or connecting socket (non-blocking already). */
struct conn *conn_new(struct ev_loop *loop, int fd, const char *addr,
                      const struct conn_ops *ops, void *owner,
                      size_t max_line, size_t max_out, int connecting);

/* Queue bytes.  Past the output cap the connection is closed (a client or
 * peer that will not read is dropped, not buffered forever): -1. */
int conn_send(struct conn *c, const char *p, size_t n);

/* Write what every connection queued this iteration; call it once before
 * the loop sleeps (after anything that must precede the replies). */
void conn_flush_pending(void);

/* Close now (reason is logged by the owner). */
void conn_close(struct conn *c, const char *why);

/* Close once queued output is written; stop reading. */
void conn_close_after_flush(struct conn *c);

/* Take no more lines (the owner closes once its replies are out). */
void conn_stop_reading(struct conn *c);

/* Re-check for buffered lines (after ready() turned true again). */
void conn_resume(struct conn *c);

/* Change who handles this connection's lines (a client turning peer). */
void conn_set_owner(struct conn *c, const struct conn_ops *ops, void *owner,
                    size_t max_line, size_t max_out);

/* From now on the connection speaks TLS (it owns t).  What out already
 * holds still goes in clear, first; what in holds past the current line
 * is the peer's first TLS bytes.  0, or -1 when closed. */
int conn_start_tls(struct conn *c, struct tls *t);

/* Free connections closed during this loop iteration. */
void conn_reap(void);

/* Close every connection (at exit). */
void conn_close_all(const char *why);

/* Close connections holding a half line older than idle seconds. */
void conn_sweep_idle(ev_tstamp now, double idle);

#endif
