#include "grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int grow_array(void *array_ptr, size_t *cap, size_t need, size_t elem,
               size_t first)
{
    void *array, *grown;
    size_t n = *cap ? *cap : (first ? first : 1);

    if (need <= *cap)
        return 0;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return -1;
        n *= 2;
    }
    if (elem && n > SIZE_MAX / elem)
        return -1;
    /* The array pointer is read and written as bytes: array_ptr is the
     * address of a typed pointer (struct x **), which may not be accessed
     * through a void **. */
    memcpy(&array, array_ptr, sizeof array);
    grown = realloc(array, n * elem);
    if (!grown)
        return -1;
    memcpy(array_ptr, &grown, sizeof grown);
    *cap = n;
    return 0;
}
