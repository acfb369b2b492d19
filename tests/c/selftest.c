/* Self-test of the C kernels against byte-at-a-time references, on every SIMD path this CPU
 * has (up to the widest, AVX-512 included where the CPU has it). tests/test_c_kernels.py
 * builds and runs it natively, and for AArch64 (NEON) under qemu-user when a cross compiler is
 * installed. */
#include <stdio.h>
#include <stdlib.h>
#include "wsf_mask.h"
#include "wsf_utf8.h"
static unsigned rnd_state = 12345;
static unsigned rnd(void) { rnd_state = rnd_state * 1103515245u + 12345u; return rnd_state >> 8; }
int main(void) {
    printf("best isa %d (%s)\n", wsf_cpu_best_isa(), wsf_isa_name(wsf_cpu_best_isa()));
    static unsigned char src[5000], a[5000], b[5000];
    unsigned char key[4];
    const int best = wsf_cpu_best_isa();
    for (int t = 0; t < 40000; t++) {
        /* Mostly small, some up to 4 KiB; source and destination at any alignment. */
        size_t n = (t & 7) ? rnd() % 600 : rnd() % 4800, off = rnd() % 7, s = rnd() % 65;
        size_t d = rnd() % 65;
        int isa = (int)(rnd() % (unsigned)(best + 1));
        for (size_t i = 0; i < n + s; i++) src[i] = rnd();
        for (int i = 0; i < 4; i++) key[i] = rnd();
        memset(a, 0xA5, sizeof a);
        wsf_mask(isa, a + d, src + s, n, key, off);
        for (size_t i = 0; i < n; i++) b[i] = src[s + i] ^ key[(off + i) & 3];
        if (memcmp(a + d, b, n)) { printf("MASK MISMATCH isa=%d n=%zu\n", isa, n); return 1; }
        for (size_t i = 0; i < sizeof a; i++) {
            if ((i < d || i >= d + n) && a[i] != 0xA5) { printf("MASK WROTE OUTSIDE\n"); return 1; }
        }
        memcpy(a + d, src + s, n);
        wsf_mask(isa, a + d, a + d, n, key, off);
        if (memcmp(a + d, b, n)) { printf("INPLACE MISMATCH isa=%d n=%zu\n", isa, n); return 1; }
    }
    const char *pieces[] = {"hello ", "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "\xf0\x9f\x8e\x89", "abcdefghijklmnopqrstuvwxyz0123456789", "\xce\x95\xce\xbb"};
    const unsigned char bad[] = {0x80, 0xbf, 0xc0, 0xc2, 0xe0, 0xed, 0xf0, 0xf4, 0xf5, 0xff, 0xa0, 0x90};
    long invalid = 0;
    for (int t = 0; t < 200000; t++) {
        size_t n = 0; int k = rnd() % 40;
        for (int i = 0; i < k; i++) { const char *p = pieces[rnd() % 6]; size_t l = strlen(p); memcpy(src + n, p, l); n += l; }
        int muts = rnd() % 3;
        for (int i = 0; i < muts && n; i++) src[rnd() % n] = (rnd() & 1) ? bad[rnd() % 12] : rnd();
        size_t cut = n ? rnd() % (n + 1) : 0;
        int isa = (int)(rnd() % (unsigned)(best + 1));
        uint32_t s1 = wsf_utf8_validate(isa, 0, src, n);
        uint32_t s0 = 0;
        for (size_t i = 0; i < n && s0 != 1; i++) s0 = wsf_utf8_next[s0][wsf_utf8_class[src[i]]];
        uint32_t s2 = wsf_utf8_validate(isa, 0, src, cut);
        s2 = wsf_utf8_validate(isa, s2, src + cut, n - cut);
        if (s1 != s0 || s2 != s0) { printf("UTF8 MISMATCH %u %u %u n=%zu\n", s0, s1, s2, n); return 1; }
        invalid += s0 != 0;
    }
    printf("ok (%ld invalid of 200000)\n", invalid);
    return 0;
}
