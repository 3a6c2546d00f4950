#include "lcr_atomic.h"

#include <stdatomic.h>

/* The cells are plain 8-byte slots in arena memory; they are reached only through these
 * functions, so viewing them as _Atomic objects of the same size and alignment is sound. */
_Static_assert(sizeof(_Atomic(uint64_t)) == 8, "an atomic u64 cell is 8 bytes");
_Static_assert(sizeof(_Atomic(void *)) <= 8, "an atomic pointer fits a cell");
_Static_assert(_Alignof(_Atomic(uint64_t)) <= 8, "an atomic u64 cell is at most 8-aligned");

size_t lcr_atomic_cell_size(void) { return 8; }
size_t lcr_atomic_cell_alignment(void) { return 8; }

int lcr_atomic_is_lock_free(void) {
    return ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_LLONG_LOCK_FREE == 2;
}

void *lcr_atomic_pointer_load(void *cell) { return atomic_load((_Atomic(void *) *)cell); }
void lcr_atomic_pointer_store(void *cell, void *value) { atomic_store((_Atomic(void *) *)cell, value); }
void *lcr_atomic_pointer_exchange(void *cell, void *value) {
    return atomic_exchange((_Atomic(void *) *)cell, value);
}

uint64_t lcr_atomic_u64_load(void *cell) { return atomic_load((_Atomic(uint64_t) *)cell); }
void lcr_atomic_u64_store(void *cell, uint64_t value) { atomic_store((_Atomic(uint64_t) *)cell, value); }
uint64_t lcr_atomic_u64_fetch_add(void *cell, uint64_t delta) {
    return atomic_fetch_add((_Atomic(uint64_t) *)cell, delta);
}
uint64_t lcr_atomic_u64_load_relaxed(void *cell) {
    return atomic_load_explicit((_Atomic(uint64_t) *)cell, memory_order_relaxed);
}
void lcr_atomic_u64_store_relaxed(void *cell, uint64_t value) {
    atomic_store_explicit((_Atomic(uint64_t) *)cell, value, memory_order_relaxed);
}
