/* watch: `herd-supervisor --http-only`, the HTTP face for a herd that
 * something else runs (systemd, after `herdctl export systemd`).  It
 * spawns nothing: each node of this machine is seen through its
 * run_dir/NAME.status (running while the pid written there lives, a new
 * pid counting as a restart), the places emulator through its port; the
 * face serves the same /metrics, /api/status and page from that. */
#ifndef HERD_WATCH_H
#define HERD_WATCH_H

struct sup;

/* Serve until SIGTERM or SIGINT.  here: herd.ini's nodes that belong to
 * this machine (sup_nodes_here).  Returns the exit code. */
int watch_run(struct sup *s, const int *here, int with_places);

#endif
