/* The SIMD level the kernels pick (wsf_cpu.h) for CPUs other than this one: WSF_CPU_SUPPORTS
 * is defined here to answer from a table of features, before the header is included.
 * Built and run natively by tests/test_c_kernels.py on x86-64. */
#include <stdio.h>
#include <string.h>

static int fake_avx2, fake_avx512f, fake_avx512vbmi;

static int fake_supports(const char *name) {
    if (!strcmp(name, "avx2")) return fake_avx2;
    if (!strcmp(name, "avx512f")) return fake_avx512f;
    if (!strcmp(name, "avx512vbmi")) return fake_avx512vbmi;
    printf("asked for an unknown feature: %s\n", name);
    return 0;
}

#define WSF_CPU_SUPPORTS(name, reg, bit, xcr0) fake_supports(name)
#include "wsf_cpu.h"

int main(void) {
#if defined(WSF_X86) && defined(WSF_HAVE_AVX2_CODE)
    /* avx2, avx512f, avx512vbmi -> the best level, the default level */
    static const struct { int avx2, f, vbmi; const char *best, *dflt; } cases[] = {
        {0, 0, 0, "sse2", "sse2"},
        {1, 0, 0, "avx2", "avx2"},
        {1, 1, 0, "avx512", "avx2"},     /* first AVX-512 generation: opt-in */
        {1, 1, 1, "avx512", "avx512"},   /* with VBMI: the default */
        {0, 1, 1, "sse2", "sse2"},       /* AVX2 hidden: AVX-512 would run AVX2 code */
        {1, 0, 1, "avx2", "avx2"},
    };
    int failed = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fake_avx2 = cases[i].avx2;
        fake_avx512f = cases[i].f;
        fake_avx512vbmi = cases[i].vbmi;
        const char *best = wsf_isa_name(wsf_cpu_best_isa());
        const char *dflt = wsf_isa_name(wsf_cpu_default_isa());
        if (strcmp(best, cases[i].best) || strcmp(dflt, cases[i].dflt)) {
            printf("avx2=%d avx512f=%d avx512vbmi=%d: best %s, default %s; expected %s, %s\n",
                   cases[i].avx2, cases[i].f, cases[i].vbmi, best, dflt, cases[i].best,
                   cases[i].dflt);
            failed = 1;
        }
    }
    if (failed) return 1;
    printf("ok (%d cases)\n", (int)(sizeof cases / sizeof cases[0]));
#else
    printf("ok (not x86-64 with GCC or Clang: nothing to check)\n");
#endif
    return 0;
}
