/* hosts: which nodes of herd.ini belong on this machine.  A multi-host
 * herd shares one herd.ini; each machine runs the nodes whose host is
 * one of its own addresses (or the one address it is told to).  herdctl
 * links this module too, so both programs agree on what "here" is. */
#ifndef HERD_HOSTS_H
#define HERD_HOSTS_H

#include "common/config.h"

/* True when addr names this machine: "localhost", 127.0.0.0/8, ::1, the
 * unspecified address, or an address of one of its interfaces
 * (getifaddrs).  A host name is local when it is this machine's name
 * (gethostname) or resolves to one of those addresses; it is resolved
 * once per process, waiting at most 2 s (a resolver that does not answer
 * in time makes it not local). */
int hosts_is_local(const char *addr);

/* True when a and b name the same host: equal text, or the same IPv4 or
 * IPv6 address written two ways ("::1" and "0:0::1"). */
int hosts_same(const char *a, const char *b);

/* Mark in here[i] (one int per node of cfg) the nodes this machine
 * runs: with only (from --host), the nodes whose host is that address;
 * without, the local ones, and every node when none sets host=.
 * Returns how many are marked. */
size_t hosts_select(const struct herd_config *cfg, const char *only,
                    int *here);

#endif
