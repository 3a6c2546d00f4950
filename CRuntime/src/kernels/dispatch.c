/*
 * dispatch.c — the one place that picks a kernel table for the running CPU.
 *
 * x86-64: CPUID through __builtin_cpu_supports (which also checks that the OS saves the
 * AVX / AVX-512 register state). aarch64: getauxval(AT_HWCAP), HWCAP_ASIMDDP for SDOT.
 * The choice is made at first call and cached; it is the same answer every time, so the
 * unsynchronised cache is a benign race (every writer stores the same value).
 */
#include "lcr_kernels_internal.h"

#if defined(__aarch64__)
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

const char *lcr_isa_name(lcr_isa isa) {
    switch (isa) {
    case LCR_ISA_PORTABLE: return "portable";
    case LCR_ISA_AVX2: return "avx2";
    case LCR_ISA_NEON: return "neon";
    case LCR_ISA_NEON_DOTPROD: return "neon-dotprod";
    case LCR_ISA_AVX512VNNI: return "avx512vnni";
    default: return "unknown";
    }
}

int lcr_isa_supported(lcr_isa isa) {
    switch (isa) {
    case LCR_ISA_PORTABLE: return 1;
#if defined(__x86_64__)
    case LCR_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    case LCR_ISA_AVX512VNNI:
        return lcr_isa_supported(LCR_ISA_AVX2) && __builtin_cpu_supports("avx512f") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512vnni");
#endif
#if defined(__aarch64__)
    case LCR_ISA_NEON: return 1;  // Advanced SIMD is mandatory on AArch64
    case LCR_ISA_NEON_DOTPROD: return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
    default: return 0;
    }
}

lcr_isa lcr_isa_best(void) {
    static int cached = -1;
    if (cached >= 0) return (lcr_isa)cached;
    lcr_isa best = LCR_ISA_PORTABLE;
#if defined(__x86_64__)
    if (lcr_isa_supported(LCR_ISA_AVX512VNNI)) best = LCR_ISA_AVX512VNNI;
    else if (lcr_isa_supported(LCR_ISA_AVX2)) best = LCR_ISA_AVX2;
#endif
#if defined(__aarch64__)
    best = lcr_isa_supported(LCR_ISA_NEON_DOTPROD) ? LCR_ISA_NEON_DOTPROD : LCR_ISA_NEON;
#endif
    cached = (int)best;
    return best;
}

const lcr_kernel_table *lcr_kernels_for(lcr_isa isa) {
    if (!lcr_isa_supported(isa)) return NULL;
    switch (isa) {
    case LCR_ISA_PORTABLE: return &lcr_kernel_table_portable;
#if defined(__x86_64__)
    case LCR_ISA_AVX2: return &lcr_kernel_table_avx2;
    case LCR_ISA_AVX512VNNI: return &lcr_kernel_table_avx512vnni;
#endif
#if defined(__aarch64__)
    case LCR_ISA_NEON: return &lcr_kernel_table_neon;
    case LCR_ISA_NEON_DOTPROD: return &lcr_kernel_table_neon_dotprod;
#endif
    default: return NULL;
    }
}

const lcr_kernel_table *lcr_kernels_best(void) { return lcr_kernels_for(lcr_isa_best()); }

float lcr_read_bandwidth_probe(const float *x, int64_t n) {
#if defined(__x86_64__)
    if (lcr_isa_supported(LCR_ISA_AVX2)) return lcr_read_bandwidth_probe_avx2(x, n);
#endif
#if defined(__aarch64__)
    return lcr_read_bandwidth_probe_neon(x, n);
#endif
    return lcr_read_bandwidth_probe_portable(x, n);
}
