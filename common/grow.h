/* grow: room in an array that grows by doubling, the one way the herd's
 * programs grow one (a failed step leaves the array as it was, so a
 * caller that runs out of memory still holds a consistent array). */
#ifndef HERD_GROW_H
#define HERD_GROW_H

#include <stddef.h>

/* Make room for at least need elements of elem bytes in the array that
 * *array_ptr points to, of which *cap are allocated: the capacity
 * doubles, starting from first.  0 (array and cap updated), or -1 when
 * memory is short or the size would overflow (array and cap untouched). */
int grow_array(void *array_ptr, size_t *cap, size_t need, size_t elem,
               size_t first);

/* GROW(v, cap, need, first) for a typed array v: grow_array() with v's
 * element size. */
#define GROW(array, cap, need, first) \
    grow_array(&(array), &(cap), (need), sizeof *(array), (first))

#endif
