/* hosts: which nodes of herd.ini belong on this machine.  A multi-host
 * herd shares one herd.ini; each machine runs the nodes whose host is
 * one of its own addresses (or the one address it is told to).  The
 * supervisor and herdctl both ask here, so they agree on what "here" is. */
#ifndef HERD_HOSTS_H
#define HERD_HOSTS_H

#include "common/config.h"

/* Mark in here[i] (one int per node of cfg) the nodes this machine
 * runs: with only (from --host), the nodes whose host is that address;
 * without, the local ones (lib/hostaddr.h), and every node when none
 * sets host=.  Returns how many are marked. */
size_t hosts_select(const struct herd_config *cfg, const char *only,
                    int *here);

#endif
