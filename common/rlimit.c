#include "rlimit.h"

#include <sys/resource.h>

unsigned long rlimit_raise_nofile(void)
{
    struct rlimit r;

    if (getrlimit(RLIMIT_NOFILE, &r) < 0)
        return 0;
    if (r.rlim_cur < r.rlim_max) {
        rlim_t was = r.rlim_cur;

        r.rlim_cur = r.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &r) < 0)
            r.rlim_cur = was;   /* keep what we had */
    }
    return r.rlim_cur == RLIM_INFINITY ? (unsigned long)-1
                                       : (unsigned long)r.rlim_cur;
}
