/*
 * lcr_alloc_counter.h — the calling thread's allocation totals, from jemalloc.
 *
 * jemalloc (Debian's, linked as the process allocator) keeps per-thread byte totals of every
 * allocation and deallocation made through it: mallctl "thread.allocated" and
 * "thread.deallocated". Reading them before and after a piece of code tells whether it
 * allocated, without hooks. Used by tests to prove that a steady-state step allocates nothing.
 *
 * Threads: reads the calling thread's counters only; callable from any thread.
 */
#ifndef LCR_ALLOC_COUNTER_H
#define LCR_ALLOC_COUNTER_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Writes the calling thread's total bytes allocated and deallocated through jemalloc since the
/// thread started. Returns 0, or jemalloc's mallctl error code (outputs then untouched).
int lcr_thread_allocation_totals(uint64_t *allocated, uint64_t *deallocated);

#ifdef __cplusplus
}
#endif

#endif
