/* Run-time CPU feature detection for the kernels' SIMD paths.
 *
 * Wheels are built for the baseline of their platform (no -march=native): SSE2 on x86-64,
 * NEON on AArch64. Wider paths (AVX2, AVX-512) are compiled with per-function target
 * attributes and chosen here at import time. WSFAST_ISA (read by the .pyx) can force a narrower
 * path. AVX-512 is the default only where the CPU also has AVX-512 VBMI (Ice Lake, Sapphire
 * Rapids, Zen 4 and later); on the first AVX-512 generation (Skylake-SP, Cascade Lake, Cooper
 * Lake, Xeon Phi) any 512-bit instruction lowers the core's clock for what runs after it, so
 * there it is opt-in (WSFAST_ISA=avx512; see wsf_cpu_default_isa).
 */
#ifndef WSF_CPU_H
#define WSF_CPU_H

#if defined(__x86_64__) || defined(_M_X64)
#define WSF_X86 1
#include <emmintrin.h>
#if defined(__GNUC__) || defined(__clang__)
#define WSF_HAVE_AVX2_CODE 1
#define WSF_HAVE_AVX512_CODE 1
#define WSF_TARGET_AVX2 __attribute__((target("avx2")))
#define WSF_TARGET_AVX512 __attribute__((target("avx512f")))
#include <immintrin.h>
#elif defined(_MSC_VER)
#define WSF_HAVE_AVX2_CODE 1
#define WSF_HAVE_AVX512_CODE 1
#define WSF_TARGET_AVX2
#define WSF_TARGET_AVX512
#include <immintrin.h>
#include <intrin.h>
#endif
#elif defined(__aarch64__) || defined(_M_ARM64)
#define WSF_NEON 1
#include <arm_neon.h>
#endif

/* Instruction-set levels, from narrowest to widest. */
enum {
    WSF_ISA_SCALAR = 0,
    WSF_ISA_SSE2 = 1,
    WSF_ISA_NEON = 1,
    WSF_ISA_AVX2 = 2,
    WSF_ISA_AVX512 = 3
};

/* WSF_CPU_SUPPORTS(name, reg, bit, xcr0): whether the CPU has the feature of CPUID leaf 7,
 * register `reg` (1: EBX, 2: ECX) bit `bit` (GCC and Clang call it `name`) and the OS saves
 * every XCR0 state bit it needs in `xcr0` (YMM: 0x6; ZMM and opmask as well: 0xE6). GCC's and
 * Clang's runtime check XCR0 themselves; MSVC reads CPUID, after OSXSAVE and AVX. A test may
 * define it first, to give the choices below a CPU of its own (tests/c/cpu_choice.c). */
#if defined(WSF_CPU_SUPPORTS)
/* the includer's */
#elif defined(WSF_HAVE_AVX2_CODE) && (defined(__GNUC__) || defined(__clang__))
#define WSF_CPU_SUPPORTS(name, reg, bit, xcr0) (__builtin_cpu_init(), __builtin_cpu_supports(name))
#elif defined(WSF_HAVE_AVX2_CODE) && defined(_MSC_VER)
static inline int wsf_msvc_leaf7(int reg, int bit, unsigned xcr0) {
    int r[4];
    __cpuid(r, 0);
    if (r[0] < 7) return 0;
    __cpuid(r, 1);
    if (!((r[2] >> 27) & 1) || !((r[2] >> 28) & 1)) return 0;
    if ((_xgetbv(0) & xcr0) != xcr0) return 0;
    __cpuidex(r, 7, 0);
    return (r[reg] >> bit) & 1;
}
#define WSF_CPU_SUPPORTS(name, reg, bit, xcr0) wsf_msvc_leaf7(reg, bit, xcr0)
#else
#define WSF_CPU_SUPPORTS(name, reg, bit, xcr0) 0
#endif

/* The widest level this CPU runs. */
static inline int wsf_cpu_best_isa(void) {
#if defined(WSF_X86)
    /* Each level runs the narrower levels' code too (UTF-8 takes its AVX2 path at the
     * AVX-512 level): AVX-512 only with AVX2, which a virtual CPU may hide on its own. */
    if (!WSF_CPU_SUPPORTS("avx2", 1, 5, 0x6)) return WSF_ISA_SSE2;
    if (WSF_CPU_SUPPORTS("avx512f", 1, 16, 0xE6)) return WSF_ISA_AVX512; /* Foundation */
    return WSF_ISA_AVX2;
#elif defined(WSF_NEON)
    return WSF_ISA_NEON;
#else
    return WSF_ISA_SCALAR;
#endif
}

/* The level used when WSFAST_ISA is unset: the widest, but AVX-512 only with AVX-512 VBMI
 * (leaf 7 ECX bit 1), the mark of the generations after the first (see the top of this file).
 * Where AVX-512 is on, the mask measured 1.1x-1.5x the AVX2 path from 1 KiB to 16 KiB
 * (bench/mask_isa.py); see wsf_mask for where it keeps to AVX2. */
static inline int wsf_cpu_default_isa(void) {
    int best = wsf_cpu_best_isa();
#if defined(WSF_X86)
    if (best >= WSF_ISA_AVX512 && !WSF_CPU_SUPPORTS("avx512vbmi", 2, 1, 0xE6)) return WSF_ISA_AVX2;
#endif
    return best;
}

/* A name for a level on this platform. */
static inline const char *wsf_isa_name(int isa) {
    if (isa >= WSF_ISA_AVX512) return "avx512";
    if (isa >= WSF_ISA_AVX2) return "avx2";
#if defined(WSF_X86)
    if (isa >= WSF_ISA_SSE2) return "sse2";
#elif defined(WSF_NEON)
    if (isa >= WSF_ISA_NEON) return "neon";
#endif
    return "scalar";
}

#endif
