/*
 * lcr_arena.h — one memory budget: a single region carved from both ends.
 *
 *   region start                                                        region end
 *   | control | LOW: bump (planned step memory, persistent objects) -> ... <- HIGH: heap extents |
 *                                                              low   ^   high
 *
 * - The region is either reserved here (one anonymous mmap, MAP_NORESERVE, trimmed so its
 *   end is 2 MiB aligned) or a caller's buffer. Nothing outside it is ever handed out.
 * - The control block (this struct, the jemalloc extent hooks table and the mutex) lives at
 *   the start of the region, so the arena itself is inside its own budget.
 * - LOW grows up: lcr_arena_take() is a bump allocation; lcr_arena_get_mark()/lcr_arena_reset()
 *   roll it back.
 * - HIGH grows down and feeds one explicit jemalloc arena (arenas.create with extent hooks).
 *   The alloc hook carves page-aligned, alignment-respecting extents below the current high
 *   boundary and refuses (returns NULL) when it would cross the low end. Freed extents are
 *   never given back (dalloc opts out, jemalloc retains and reuses them); decommit and purge
 *   opt out; split and merge are allowed. The high boundary therefore only moves down.
 *   lcr_arena_heap_alloc()/lcr_arena_heap_free() wrap mallocx/dallocx with
 *   MALLOCX_ARENA(i) | MALLOCX_TCACHE_NONE and track usable sizes (sallocx).
 * - Every hook checks that the extent jemalloc names lies inside [high, region end);
 *   hook_outside_count counts violations (it must stay 0).
 *
 * Minimum budget: jemalloc takes its arena metadata (the "base" block) from the hooks when
 * the arena is created: HUGEPAGE bytes (2 MiB on Debian's x86-64 and arm64 builds) at
 * HUGEPAGE alignment. A budget must hold that block plus the control block
 * (lcr_arena_control_bytes()) and any alignment lost at the high end; lcr_arena_create()
 * fails with LCR_ARENA_BUDGET otherwise, releasing everything it took. With a region
 * reserved here (end 2 MiB aligned) 2 MiB + 64 KiB is enough on both; a caller's buffer
 * whose end is not 2 MiB aligned may lose up to 2 MiB more to alignment.
 *
 * Threads: every function may be called from any thread. The boundary between the ends and
 * the counters are protected by a mutex the hooks also take (a leaf lock: nothing else is
 * locked while it is held, and no hook calls malloc).
 */
#ifndef LCR_ARENA_H
#define LCR_ARENA_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct lcr_arena lcr_arena;

/// Status codes of lcr_arena_create.
typedef enum {
    LCR_ARENA_OK = 0,
    /// The budget is too small (see lcr_arena_create_result.needed / left).
    LCR_ARENA_BUDGET = 1,
    /// An OS call failed (errno in lcr_arena_create_result.error).
    LCR_ARENA_SYSTEM = 2,
    /// A bad argument (NULL buffer with caller mode, zero size...).
    LCR_ARENA_INVALID = 3,
    /// jemalloc refused a mallctl for another reason (its return code in .error).
    LCR_ARENA_ALLOCATOR = 4,
} lcr_arena_status;

/// Details of a failed lcr_arena_create.
typedef struct {
    /// Bytes the failing step needed (control block, or the extent jemalloc asked for).
    size_t needed;
    /// Bytes that were left in the region at that point.
    size_t left;
    /// errno (LCR_ARENA_SYSTEM) or mallctl's return value (LCR_ARENA_ALLOCATOR).
    int error;
} lcr_arena_create_result;

/// A snapshot of the arena's accounting. Addresses are plain integers.
typedef struct {
    size_t reserved_bytes;        // the budget: region size
    size_t control_bytes;         // control block at the region start (inside the budget)
    size_t low_used_bytes;        // LOW end: bytes from the end of the control block to the bump pointer
    size_t low_peak_bytes;        // highest low_used_bytes seen
    size_t persistent_bytes;      // LOW end: bytes taken as LCR_ARENA_USE_PERSISTENT (without padding)
    size_t planned_bytes;         // LOW end: bytes taken as LCR_ARENA_USE_PLANNED (without padding)
    size_t heap_extent_bytes;     // HIGH end: bytes handed to jemalloc as extents (incl. its metadata)
    size_t heap_waste_bytes;      // HIGH end: bytes skipped to honour extent alignment
    size_t heap_allocated_bytes;  // usable bytes (sallocx) of live heap allocations
    size_t heap_peak_bytes;       // highest heap_allocated_bytes seen
    size_t bytes_left;            // gap between the two ends
    uint64_t heap_alloc_count;    // successful lcr_arena_heap_alloc calls
    uint64_t heap_free_count;     // lcr_arena_heap_free calls that freed
    uint64_t heap_alloc_failures; // lcr_arena_heap_alloc calls that returned NULL
    uint64_t hook_alloc_calls;    // extent alloc hook calls
    uint64_t hook_alloc_failures; // ... that returned NULL
    uint64_t hook_dalloc_calls;
    uint64_t hook_destroy_calls;
    uint64_t hook_other_calls;    // commit, decommit, purge, split, merge
    uint64_t hook_outside_count;  // extents or heap pointers outside [high, end): must stay 0
    size_t largest_hook_request;  // largest extent size jemalloc asked for
    uintptr_t region_start;
    uintptr_t region_end;
    uintptr_t low_end;            // current bump pointer
    uintptr_t high_start;         // lowest address of any heap extent (region_end if none)
    unsigned jemalloc_arena;      // the explicit arena's index
    size_t jemalloc_page;         // jemalloc's page size (arenas.page)
} lcr_arena_stats;

/// Bytes of the control block at the start of every region (16-byte multiple).
size_t lcr_arena_control_bytes(void);
/// jemalloc's page size (mallctl "arenas.page"): the heap end's granularity.
size_t lcr_arena_heap_page_size(void);

/// Creates an arena over `bytes` bytes: reserved here when `buffer` is NULL, else over the
/// caller's buffer (which must stay valid until lcr_arena_destroy and is not freed by it).
/// On success stores the arena in *out and returns LCR_ARENA_OK; on failure *out is NULL,
/// everything taken is released, and *result (if non-NULL) says why.
lcr_arena_status lcr_arena_create(void *buffer, size_t bytes, lcr_arena **out, lcr_arena_create_result *result);

/// Destroys the jemalloc arena (arena.<i>.destroy: every heap allocation is gone) and
/// releases the region if it was reserved here. NULL is ignored.
void lcr_arena_destroy(lcr_arena *arena);

/* ---- LOW end ---- */

/// What a low-end block is for (kept apart in the statistics).
typedef enum {
    LCR_ARENA_USE_PERSISTENT = 0,  // long-lived objects made at load time
    LCR_ARENA_USE_PLANNED = 1,     // a planned step-memory region
} lcr_arena_use;

/// A low-end position, for lcr_arena_reset.
typedef struct {
    size_t low_used_bytes;
    size_t persistent_bytes;
    size_t planned_bytes;
} lcr_arena_mark;

/// `bytes` from the low end, aligned to `alignment` (a power of two; 0 means 16).
/// NULL when it would cross the heap or `alignment` is invalid; nothing changes then.
void *lcr_arena_take(lcr_arena *arena, size_t bytes, size_t alignment, lcr_arena_use use);
/// Bytes the low end could still give at `alignment` (0 means 16): the gap minus padding.
size_t lcr_arena_low_available(lcr_arena *arena, size_t alignment);
/// The current low-end position.
lcr_arena_mark lcr_arena_get_mark(lcr_arena *arena);
/// Rolls the low end back to `mark` (from lcr_arena_get_mark). Returns 0, or -1 (nothing
/// changes) when `mark` is ahead of the current position.
int lcr_arena_reset(lcr_arena *arena, lcr_arena_mark mark);

/* ---- HIGH end: the capped jemalloc heap ---- */

/// mallocx(bytes, MALLOCX_ARENA(i) | MALLOCX_TCACHE_NONE [| MALLOCX_ALIGN(alignment)]).
/// `alignment` 0 or 1 means jemalloc's default. NULL when the budget cannot hold it, or when
/// `bytes` is 0 or `alignment` is not a power of two.
void *lcr_arena_heap_alloc(lcr_arena *arena, size_t bytes, size_t alignment);
/// Frees a pointer from lcr_arena_heap_alloc of the same arena. Returns 0, or -1 (and frees
/// nothing) when the pointer does not lie in the heap end. NULL is ignored (returns 0).
int lcr_arena_heap_free(lcr_arena *arena, void *pointer);
/// Usable size of a live heap allocation (sallocx).
size_t lcr_arena_heap_usable_size(const lcr_arena *arena, const void *pointer);

/// Copies the accounting into *stats.
void lcr_arena_get_stats(lcr_arena *arena, lcr_arena_stats *stats);

/// jemalloc's own statistic "stats.arenas.<i>.<name>" for this arena (a size_t statistic
/// such as "mapped", "retained", "resident", "base", "pactive"), after refreshing the
/// "epoch". Returns 0 and stores it in *value, or mallctl's error.
int lcr_arena_jemalloc_stat(lcr_arena *arena, const char *name, size_t *value);

/// 1 if [pointer, pointer + bytes) lies inside the region, else 0.
int lcr_arena_contains(const lcr_arena *arena, const void *pointer, size_t bytes);

#ifdef __cplusplus
}
#endif
#endif /* LCR_ARENA_H */
