/* hostaddr: facts about this machine's addresses and host names: is a
 * host this machine, are two hosts the same.  Nothing about the herd. */
#ifndef HERD_HOSTADDR_H
#define HERD_HOSTADDR_H

#define HOSTADDR_NAME_MAX 255   /* longest host name it looks up */

/* True when addr names this machine: "localhost", 127.0.0.0/8, ::1, the
 * unspecified address, or an address of one of its interfaces
 * (getifaddrs).  A host name is local when it is this machine's name
 * (gethostname) or resolves to one of those addresses; it is resolved
 * once per process, waiting at most 2 s (a resolver that does not answer
 * in time makes it not local). */
int hostaddr_is_local(const char *addr);

/* True when a and b name the same host: equal text, or the same IPv4 or
 * IPv6 address written two ways ("::1" and "0:0::1"). */
int hostaddr_same(const char *a, const char *b);

#endif
