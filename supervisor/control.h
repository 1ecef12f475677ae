/* control: the supervisor's Unix socket (run_dir/supervisor.sock, mode
 * 0600, same uid only).  A client sends one command line and reads one
 * JSON object back, then the connection closes:
 *
 *   status | start [NODE] | stop NODE | restart NODE | shutdown
 *   reload | reload-dry
 *
 * Every reply has "ok"; a refusal has "code" (herdctl's exit code) and
 * "error". */
#ifndef HERD_CONTROL_H
#define HERD_CONTROL_H

#include <stddef.h>

struct sup;

/* Bind and listen at s->sock_path.  0, or -1 with a message in err. */
int control_open(struct sup *s, char *err, size_t errlen);
/* Listen afresh at s->sock_path (its file was removed or replaced);
 * open connections are kept.  0, or -1 with a message in err. */
int control_reopen(struct sup *s, char *err, size_t errlen);
void control_close(struct sup *s);

/* The "status" reply (`herdctl status --json`), for the HTTP face too.
 * Caller frees. */
struct cJSON *control_status(struct sup *s);

#endif
