#include "lcr_alloc_counter.h"

#include <stddef.h>

#include <jemalloc/jemalloc.h>

int lcr_thread_allocation_totals(uint64_t *allocated, uint64_t *deallocated) {
    uint64_t a = 0, d = 0;
    size_t len = sizeof a;
    int rc = mallctl("thread.allocated", &a, &len, NULL, 0);
    if (rc != 0) return rc;
    len = sizeof d;
    rc = mallctl("thread.deallocated", &d, &len, NULL, 0);
    if (rc != 0) return rc;
    *allocated = a;
    *deallocated = d;
    return 0;
}
