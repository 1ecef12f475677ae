/* herdctl decides which nodes are "here" exactly as the supervisor does
 * (status before the supervisor runs, export systemd), so it builds the
 * supervisor's own module rather than a copy that could drift. */
#include "supervisor/hosts.c"
