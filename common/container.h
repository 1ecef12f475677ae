/* container: container_of(), the object a callback's libev watcher is a
 * member of.  Every program finds its context this way rather than
 * through globals: what a callback touches is what it was handed. */
#ifndef HERD_CONTAINER_H
#define HERD_CONTAINER_H

#include <stddef.h>

/* The struct of type that holds *ptr as its member. */
#define container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

#endif
