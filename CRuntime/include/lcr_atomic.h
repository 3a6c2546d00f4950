/*
 * lcr_atomic.h — C11 atomics over caller-provided 8-byte cells, for Swift code that cannot
 * declare _Atomic storage itself (the hot-swap slot and the counters of Sources/Lichen/Runtime).
 *
 * A cell is lcr_atomic_cell_size() bytes aligned to lcr_atomic_cell_alignment() (8 and 8 on
 * every supported target), zeroed or set with a store before use, and touched only through
 * these functions. Every operation is sequentially consistent unless its name says otherwise;
 * none takes a lock (lcr_atomic_is_lock_free() reports what the target gives).
 */
#ifndef LCR_ATOMIC_H
#define LCR_ATOMIC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

size_t lcr_atomic_cell_size(void);
size_t lcr_atomic_cell_alignment(void);
/// 1 when both the pointer and the 64-bit operations are lock-free on this target.
int lcr_atomic_is_lock_free(void);

/* ---- pointer cells ---- */
void *lcr_atomic_pointer_load(void *cell);
void lcr_atomic_pointer_store(void *cell, void *value);
/// Stores `value` and returns what the cell held, in one step.
void *lcr_atomic_pointer_exchange(void *cell, void *value);

/* ---- 64-bit counters ---- */
uint64_t lcr_atomic_u64_load(void *cell);
void lcr_atomic_u64_store(void *cell, uint64_t value);
/// Adds `delta` and returns the value before.
uint64_t lcr_atomic_u64_fetch_add(void *cell, uint64_t delta);
/// Relaxed load and store, for statistics read while being written (no ordering implied).
uint64_t lcr_atomic_u64_load_relaxed(void *cell);
void lcr_atomic_u64_store_relaxed(void *cell, uint64_t value);

#ifdef __cplusplus
}
#endif
#endif /* LCR_ATOMIC_H */
