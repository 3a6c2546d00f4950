#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "lcr_arena.h"
#include "lcr_os.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <jemalloc/jemalloc.h>

/* The end of a region reserved here is aligned to this, so jemalloc's first (metadata)
 * extent, HUGEPAGE bytes at HUGEPAGE alignment, loses nothing to alignment. */
#define LCR_ARENA_END_ALIGNMENT ((size_t)2 << 20)
/* arena.<i>.retain_grow_limit: jemalloc grows its retained memory in steps up to this.
 * Larger steps make a nearly full region cost one failed big request per extent. */
#define LCR_ARENA_RETAIN_GROW_LIMIT ((size_t)1 << 20)

struct lcr_arena {
    extent_hooks_t hooks;   /* handed to jemalloc; must live as long as the jemalloc arena */
    pthread_mutex_t lock;   /* guards everything below that changes */

    uintptr_t region_start, region_end;
    void *mapping;          /* non-NULL when the region was reserved here */
    size_t mapping_bytes;
    size_t jemalloc_page;
    unsigned jemalloc_arena;
    bool has_jemalloc_arena;
    bool fresh;             /* region memory never written is zero (reserved here) */

    uintptr_t low_start;    /* end of the control block */
    uintptr_t low;          /* bump pointer */
    uintptr_t low_peak;     /* highest bump pointer: memory above it was never written by LOW */
    uintptr_t high;         /* lowest extent address */
    size_t persistent_bytes, planned_bytes;

    size_t heap_extent_bytes, heap_waste_bytes;
    size_t heap_allocated, heap_peak;
    uint64_t heap_alloc_count, heap_free_count, heap_alloc_failures;
    uint64_t hook_alloc_calls, hook_alloc_failures, hook_dalloc_calls, hook_destroy_calls, hook_other_calls;
    uint64_t hook_outside;
    size_t largest_hook_request;
    size_t last_failed_request, left_at_last_failure;
};

static inline uintptr_t align_up(uintptr_t x, size_t a) { return (x + (a - 1)) & ~(uintptr_t)(a - 1); }
static inline uintptr_t align_down(uintptr_t x, size_t a) { return x & ~(uintptr_t)(a - 1); }
static inline bool is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

size_t lcr_arena_control_bytes(void) { return (size_t)align_up(sizeof(struct lcr_arena), 64); }

size_t lcr_arena_heap_page_size(void) {
    size_t page = 0, len = sizeof page;
    return mallctl("arenas.page", &page, &len, NULL, 0) == 0 ? page : 0;
}

static lcr_arena *from_hooks(extent_hooks_t *h) {
    return (lcr_arena *)(void *)((char *)h - offsetof(struct lcr_arena, hooks));
}

/* An extent jemalloc names must be one we carved: inside [high, region end).
 * Called with the lock held. */
static void check_extent(lcr_arena *a, const void *addr, size_t size) {
    uintptr_t p = (uintptr_t)addr;
    if (p < a->high || p > a->region_end || size > a->region_end - p) a->hook_outside++;
}

/* ---- extent hooks (called by jemalloc, possibly on any thread; never call malloc here) ---- */

static void *hook_alloc(extent_hooks_t *h, void *new_addr, size_t size, size_t alignment, bool *zero, bool *commit,
                        unsigned arena_ind) {
    (void)arena_ind;
    lcr_arena *a = from_hooks(h);
    pthread_mutex_lock(&a->lock);
    a->hook_alloc_calls++;
    if (size > a->largest_hook_request) a->largest_hook_request = size;
    size_t align = alignment > a->jemalloc_page ? alignment : a->jemalloc_page;
    uintptr_t top = 0;
    /* new_addr != NULL asks to extend in place at that address: refused (allowed by the API). */
    bool ok = new_addr == NULL && size != 0 && size % a->jemalloc_page == 0 && is_pow2(align) &&
              size <= a->high - a->low;
    if (ok) {
        top = align_down(a->high - size, align);
        ok = top >= a->low;
    }
    if (!ok) {
        a->hook_alloc_failures++;
        a->last_failed_request = size;
        a->left_at_last_failure = (size_t)(a->high - a->low);
        pthread_mutex_unlock(&a->lock);
        return NULL;
    }
    /* By construction [top, top + size) is inside the region; counted anyway, as a self-check. */
    if (top < a->region_start || top + size > a->region_end) a->hook_outside++;
    a->heap_waste_bytes += (size_t)(a->high - (top + size));
    a->heap_extent_bytes += size;
    a->high = top;
    /* Bytes below low_peak may have been written by the LOW end before a reset. */
    size_t dirty = 0;
    if (!a->fresh) dirty = size;
    else if (top < a->low_peak) dirty = (size_t)((a->low_peak < top + size ? a->low_peak : top + size) - top);
    pthread_mutex_unlock(&a->lock);
    if (*zero && dirty) memset((void *)top, 0, dirty);
    if (!dirty) *zero = true;
    *commit = true;
    return (void *)top;
}

static bool hook_dalloc(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned arena_ind) {
    (void)committed; (void)arena_ind;
    lcr_arena *a = from_hooks(h);
    pthread_mutex_lock(&a->lock);
    a->hook_dalloc_calls++;
    check_extent(a, addr, size);
    pthread_mutex_unlock(&a->lock);
    return true; /* opt out: the extent stays ours and jemalloc keeps it as retained */
}

static void hook_destroy(extent_hooks_t *h, void *addr, size_t size, bool committed, unsigned arena_ind) {
    (void)committed; (void)arena_ind;
    lcr_arena *a = from_hooks(h);
    pthread_mutex_lock(&a->lock);
    a->hook_destroy_calls++;
    check_extent(a, addr, size);
    pthread_mutex_unlock(&a->lock);
}

static void count_other(extent_hooks_t *h, void *addr, size_t size) {
    lcr_arena *a = from_hooks(h);
    pthread_mutex_lock(&a->lock);
    a->hook_other_calls++;
    check_extent(a, addr, size);
    pthread_mutex_unlock(&a->lock);
}

static bool hook_commit(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length, unsigned ind) {
    (void)offset; (void)length; (void)ind;
    count_other(h, addr, size);
    return false; /* success: the whole region is always committed */
}

static bool hook_decommit(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length, unsigned ind) {
    (void)offset; (void)length; (void)ind;
    count_other(h, addr, size);
    return true; /* opt out */
}

static bool hook_purge(extent_hooks_t *h, void *addr, size_t size, size_t offset, size_t length, unsigned ind) {
    (void)offset; (void)length; (void)ind;
    count_other(h, addr, size);
    return true; /* opt out: pages stay as they are */
}

static bool hook_split(extent_hooks_t *h, void *addr, size_t size, size_t size_a, size_t size_b, bool committed,
                       unsigned ind) {
    (void)size_a; (void)size_b; (void)committed; (void)ind;
    count_other(h, addr, size);
    return false; /* allow: all extents live in one mapping */
}

static bool hook_merge(extent_hooks_t *h, void *addr_a, size_t size_a, void *addr_b, size_t size_b, bool committed,
                       unsigned ind) {
    (void)committed; (void)ind;
    lcr_arena *a = from_hooks(h);
    pthread_mutex_lock(&a->lock);
    a->hook_other_calls++;
    check_extent(a, addr_a, size_a);
    check_extent(a, addr_b, size_b);
    pthread_mutex_unlock(&a->lock);
    return false; /* allow */
}

/* ---- create / destroy ---- */

static void fail_result(lcr_arena_create_result *r, size_t needed, size_t left, int error) {
    if (r) {
        r->needed = needed;
        r->left = left;
        r->error = error;
    }
}

static int arena_mallctl_set(unsigned index, const char *name, void *value, size_t len) {
    char key[64];
    snprintf(key, sizeof key, "arena.%u.%s", index, name);
    return mallctl(key, NULL, NULL, value, len);
}

static void release_region(void *mapping, size_t bytes) {
    if (mapping) lcr_os_release(mapping, bytes);
}

lcr_arena_status lcr_arena_create(void *buffer, size_t bytes, lcr_arena **out, lcr_arena_create_result *result) {
    fail_result(result, 0, 0, 0);
    if (out == NULL) return LCR_ARENA_INVALID;
    *out = NULL;
    if (bytes == 0) return LCR_ARENA_INVALID;

    size_t jpage = 0, len = sizeof jpage;
    int rc = mallctl("arenas.page", &jpage, &len, NULL, 0);
    if (rc != 0 || !is_pow2(jpage)) {
        fail_result(result, 0, 0, rc);
        return LCR_ARENA_ALLOCATOR;
    }

    size_t control = lcr_arena_control_bytes();
    uintptr_t start, end;
    void *mapping = NULL;
    size_t mapping_bytes = 0;
    if (buffer == NULL) {
        /* Reserve bytes + alignment slack, keep [end - bytes, end) with `end` aligned, and
         * give the rest back. */
        size_t os_page = lcr_os_page_size();
        size_t align = LCR_ARENA_END_ALIGNMENT > jpage ? LCR_ARENA_END_ALIGNMENT : jpage;
        if (bytes > SIZE_MAX - align - os_page) {
            fail_result(result, bytes, 0, ENOMEM);
            return LCR_ARENA_SYSTEM;
        }
        size_t map_len = (size_t)align_up(bytes, os_page) + align;
        void *m = lcr_os_reserve(map_len);
        if (m == NULL) {
            fail_result(result, bytes, 0, lcr_os_errno());
            return LCR_ARENA_SYSTEM;
        }
        uintptr_t mb = (uintptr_t)m, me = mb + map_len;
        end = align_down(me, align);
        start = end - bytes;
        uintptr_t keep = align_down(start, os_page);
        if (keep > mb) lcr_os_release(m, (size_t)(keep - mb));
        if (me > end) lcr_os_release((void *)end, (size_t)(me - end));
        mapping = (void *)keep;
        mapping_bytes = (size_t)(end - keep);
    } else {
        start = (uintptr_t)buffer;
        if (bytes > UINTPTR_MAX - start) return LCR_ARENA_INVALID;
        end = start + bytes;
    }

    uintptr_t a_addr = align_up(start, 64);
    if (a_addr < start || a_addr > end || end - a_addr < control) {
        fail_result(result, control + (size_t)(a_addr - start), bytes, 0);
        release_region(mapping, mapping_bytes);
        return LCR_ARENA_BUDGET;
    }
    lcr_arena *a = (lcr_arena *)a_addr;
    memset(a, 0, sizeof *a);
    a->hooks.alloc = hook_alloc;
    a->hooks.dalloc = hook_dalloc;
    a->hooks.destroy = hook_destroy;
    a->hooks.commit = hook_commit;
    a->hooks.decommit = hook_decommit;
    a->hooks.purge_lazy = hook_purge;
    a->hooks.purge_forced = hook_purge;
    a->hooks.split = hook_split;
    a->hooks.merge = hook_merge;
    a->region_start = start;
    a->region_end = end;
    a->mapping = mapping;
    a->mapping_bytes = mapping_bytes;
    a->jemalloc_page = jpage;
    a->fresh = mapping != NULL;
    a->low_start = a->low = a->low_peak = a_addr + control;
    /* Extents are jemalloc-page aligned: the heap end starts at the last page boundary. */
    a->high = align_down(end, jpage);
    if (a->high < a->low) a->high = a->low;
    a->heap_waste_bytes = (size_t)(end - a->high);
    int perr = pthread_mutex_init(&a->lock, NULL);
    if (perr != 0) {
        fail_result(result, 0, 0, perr);
        release_region(mapping, mapping_bytes);
        return LCR_ARENA_SYSTEM;
    }

    unsigned index = 0;
    size_t index_len = sizeof index;
    extent_hooks_t *hooks = &a->hooks;
    rc = mallctl("arenas.create", &index, &index_len, &hooks, sizeof hooks);
    if (rc != 0) {
        /* jemalloc could not get its metadata block from the hooks: the budget is too small. */
        lcr_arena_status status = LCR_ARENA_ALLOCATOR;
        if (a->hook_alloc_failures > 0) {
            status = LCR_ARENA_BUDGET;
            fail_result(result, a->last_failed_request, a->left_at_last_failure, rc);
        } else {
            fail_result(result, 0, 0, rc);
        }
        pthread_mutex_destroy(&a->lock);
        release_region(mapping, mapping_bytes);
        return status;
    }
    a->jemalloc_arena = index;
    a->has_jemalloc_arena = true;

    size_t grow = LCR_ARENA_RETAIN_GROW_LIMIT;
    ssize_t never = -1;
    if ((rc = arena_mallctl_set(index, "retain_grow_limit", &grow, sizeof grow)) != 0 ||
        (rc = arena_mallctl_set(index, "dirty_decay_ms", &never, sizeof never)) != 0 ||
        (rc = arena_mallctl_set(index, "muzzy_decay_ms", &never, sizeof never)) != 0) {
        fail_result(result, 0, 0, rc);
        lcr_arena_destroy(a);
        return LCR_ARENA_ALLOCATOR;
    }
    *out = a;
    return LCR_ARENA_OK;
}

void lcr_arena_destroy(lcr_arena *a) {
    if (a == NULL) return;
    if (a->has_jemalloc_arena) {
        char key[64];
        snprintf(key, sizeof key, "arena.%u.destroy", a->jemalloc_arena);
        mallctl(key, NULL, NULL, NULL, 0);
        a->has_jemalloc_arena = false;
    }
    void *mapping = a->mapping;
    size_t mapping_bytes = a->mapping_bytes;
    pthread_mutex_destroy(&a->lock);
    release_region(mapping, mapping_bytes); /* `a` lives in the region: not touched after this */
}

/* ---- LOW end ---- */

void *lcr_arena_take(lcr_arena *a, size_t bytes, size_t alignment, lcr_arena_use use) {
    if (alignment == 0) alignment = 16;
    if (!is_pow2(alignment)) return NULL;
    pthread_mutex_lock(&a->lock);
    uintptr_t p = align_up(a->low, alignment);
    void *r = NULL;
    if (p >= a->low && p <= a->high && bytes <= a->high - p) {
        a->low = p + bytes;
        if (a->low > a->low_peak) a->low_peak = a->low;
        if (use == LCR_ARENA_USE_PLANNED) a->planned_bytes += bytes;
        else a->persistent_bytes += bytes;
        r = (void *)p;
    }
    pthread_mutex_unlock(&a->lock);
    return r;
}

size_t lcr_arena_low_available(lcr_arena *a, size_t alignment) {
    if (alignment == 0) alignment = 16;
    if (!is_pow2(alignment)) return 0;
    pthread_mutex_lock(&a->lock);
    uintptr_t p = align_up(a->low, alignment);
    size_t left = (p >= a->low && p <= a->high) ? (size_t)(a->high - p) : 0;
    pthread_mutex_unlock(&a->lock);
    return left;
}

lcr_arena_mark lcr_arena_get_mark(lcr_arena *a) {
    pthread_mutex_lock(&a->lock);
    lcr_arena_mark m = {(size_t)(a->low - a->low_start), a->persistent_bytes, a->planned_bytes};
    pthread_mutex_unlock(&a->lock);
    return m;
}

int lcr_arena_reset(lcr_arena *a, lcr_arena_mark mark) {
    pthread_mutex_lock(&a->lock);
    int rc = -1;
    if (mark.low_used_bytes <= (size_t)(a->low - a->low_start) && mark.persistent_bytes <= a->persistent_bytes &&
        mark.planned_bytes <= a->planned_bytes) {
        a->low = a->low_start + mark.low_used_bytes;
        a->persistent_bytes = mark.persistent_bytes;
        a->planned_bytes = mark.planned_bytes;
        rc = 0;
    }
    pthread_mutex_unlock(&a->lock);
    return rc;
}

/* ---- HIGH end ---- */

void *lcr_arena_heap_alloc(lcr_arena *a, size_t bytes, size_t alignment) {
    if (bytes == 0 || (alignment > 1 && !is_pow2(alignment)) || !a->has_jemalloc_arena) return NULL;
    int flags = (int)MALLOCX_ARENA(a->jemalloc_arena) | MALLOCX_TCACHE_NONE;
    if (alignment > 1) flags |= MALLOCX_ALIGN(alignment);
    /* The lock is not held here: mallocx may call the hooks, which take it. */
    void *p = mallocx(bytes, flags);
    size_t usable = p ? sallocx(p, 0) : 0;
    pthread_mutex_lock(&a->lock);
    if (p == NULL) {
        a->heap_alloc_failures++;
    } else {
        if ((uintptr_t)p < a->high || (uintptr_t)p > a->region_end || usable > a->region_end - (uintptr_t)p)
            a->hook_outside++;
        a->heap_alloc_count++;
        a->heap_allocated += usable;
        if (a->heap_allocated > a->heap_peak) a->heap_peak = a->heap_allocated;
    }
    pthread_mutex_unlock(&a->lock);
    return p;
}

int lcr_arena_heap_free(lcr_arena *a, void *p) {
    if (p == NULL) return 0;
    pthread_mutex_lock(&a->lock);
    bool inside = (uintptr_t)p >= a->high && (uintptr_t)p < a->region_end;
    pthread_mutex_unlock(&a->lock);
    if (!inside || !a->has_jemalloc_arena) return -1;
    size_t usable = sallocx(p, 0);
    dallocx(p, MALLOCX_TCACHE_NONE);
    pthread_mutex_lock(&a->lock);
    a->heap_free_count++;
    a->heap_allocated -= usable <= a->heap_allocated ? usable : a->heap_allocated;
    pthread_mutex_unlock(&a->lock);
    return 0;
}

size_t lcr_arena_heap_usable_size(const lcr_arena *a, const void *p) {
    (void)a;
    return p ? sallocx(p, 0) : 0;
}

void lcr_arena_get_stats(lcr_arena *a, lcr_arena_stats *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_lock(&a->lock);
    s->reserved_bytes = (size_t)(a->region_end - a->region_start);
    s->control_bytes = (size_t)(a->low_start - a->region_start);
    s->low_used_bytes = (size_t)(a->low - a->low_start);
    s->low_peak_bytes = (size_t)(a->low_peak - a->low_start);
    s->persistent_bytes = a->persistent_bytes;
    s->planned_bytes = a->planned_bytes;
    s->heap_extent_bytes = a->heap_extent_bytes;
    s->heap_waste_bytes = a->heap_waste_bytes;
    s->heap_allocated_bytes = a->heap_allocated;
    s->heap_peak_bytes = a->heap_peak;
    s->bytes_left = (size_t)(a->high - a->low);
    s->heap_alloc_count = a->heap_alloc_count;
    s->heap_free_count = a->heap_free_count;
    s->heap_alloc_failures = a->heap_alloc_failures;
    s->hook_alloc_calls = a->hook_alloc_calls;
    s->hook_alloc_failures = a->hook_alloc_failures;
    s->hook_dalloc_calls = a->hook_dalloc_calls;
    s->hook_destroy_calls = a->hook_destroy_calls;
    s->hook_other_calls = a->hook_other_calls;
    s->hook_outside_count = a->hook_outside;
    s->largest_hook_request = a->largest_hook_request;
    s->region_start = a->region_start;
    s->region_end = a->region_end;
    s->low_end = a->low;
    s->high_start = a->high;
    s->jemalloc_arena = a->jemalloc_arena;
    s->jemalloc_page = a->jemalloc_page;
    pthread_mutex_unlock(&a->lock);
}

int lcr_arena_contains(const lcr_arena *a, const void *p, size_t bytes) {
    uintptr_t x = (uintptr_t)p;
    return x >= a->region_start && x <= a->region_end && bytes <= a->region_end - x;
}

int lcr_arena_jemalloc_stat(lcr_arena *a, const char *name, size_t *value) {
    if (a == NULL || name == NULL || value == NULL || !a->has_jemalloc_arena) return EINVAL;
    uint64_t epoch = 1;
    size_t len = sizeof epoch;
    int rc = mallctl("epoch", &epoch, &len, &epoch, len);
    if (rc != 0) return rc;
    char key[128];
    int n = snprintf(key, sizeof key, "stats.arenas.%u.%s", a->jemalloc_arena, name);
    if (n < 0 || (size_t)n >= sizeof key) return EINVAL;
    len = sizeof *value;
    return mallctl(key, value, &len, NULL, 0);
}
