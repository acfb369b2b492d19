/* RFC 6455 §5.3 masking: dst[i] = src[i] ^ key[(offset + i) % 4].
 *
 * Technique: the key is rotated by the offset once and widened to a word. On x86-64, 64 bytes
 * per step with AVX-512 or 32 with AVX2 (chosen at run time), else 16 with SSE2, 4
 * vectors per loop turn with every store aligned and the turns starting on a cache line (no
 * store splits a line, each turn fills whole lines: what heap buffers at any 16-byte address
 * lost at 64 KiB); the unaligned ends are two vectors loaded first and stored last. On
 * AArch64 16 bytes per NEON step. Small buffers and the NEON tail go 8 bytes at a time
 * through a uint64 loaded with memcpy (safe on unaligned buffers), then byte by byte. dst may
 * equal src (in place); the buffers may not overlap otherwise.
 */
#ifndef WSF_MASK_H
#define WSF_MASK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wsf_cpu.h"

/* The 4 key bytes starting at payload position `offset`, in memory order. */
static inline uint32_t wsf_mask_key(const unsigned char *key, size_t offset) {
    unsigned char k[4];
    uint32_t w;
    k[0] = key[offset & 3];
    k[1] = key[(offset + 1) & 3];
    k[2] = key[(offset + 2) & 3];
    k[3] = key[(offset + 3) & 3];
    memcpy(&w, k, 4);
    return w;
}

static inline void wsf_mask_scalar(unsigned char *dst, const unsigned char *src, size_t n,
                                   uint32_t key) {
    uint64_t k64 = ((uint64_t)key << 32) | key; /* both halves equal: endian-neutral */
    unsigned char kb[4];
    size_t i = 0;
    memcpy(kb, &key, 4);
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, src + i, 8);
        v ^= k64;
        memcpy(dst + i, &v, 8);
    }
    for (; i < n; i++) dst[i] = src[i] ^ kb[i & 3];
}

/* The key word for payload position `pos`, given the word for position 0 (endian-neutral). */
static inline uint32_t wsf_key_at(uint32_t key, size_t pos) {
    unsigned char k[4];
    memcpy(k, &key, 4);
    return wsf_mask_key(k, pos);
}

/* The x86 vector loop, for one vector type T of W bytes (n >= W): the first and the last W
 * bytes are loaded up front, unaligned; the middle runs with every store aligned to W
 * (no store splits a cache line), four vectors per turn from a cache line boundary on (a turn
 * that straddles lines measured ~10% slower at 64 KiB); the two end vectors are stored last.
 * Where they overlap the middle they write the very bytes it wrote, computed from the same
 * source bytes, so this is exact in place too (dst == src). */
#define WSF_MASK_ALIGNED(T, W, SET1, LOADU, STOREU, STORE, XOR)                                  \
    do {                                                                                         \
        const T head_ = LOADU((const T *)src);                                                   \
        const T tail_ = LOADU((const T *)(src + n - (W)));                                       \
        size_t i_ = (W) - ((uintptr_t)dst & ((W) - 1));                                          \
        const T k_ = SET1((int)wsf_key_at(key, i_));                                             \
        /* single steps up to a cache line boundary: each 4-vector turn then fills whole lines */ \
        for (; ((uintptr_t)(dst + i_) & 63) && i_ + (W) <= n; i_ += (W))                         \
            STORE((T *)(dst + i_), XOR(LOADU((const T *)(src + i_)), k_));                       \
        for (; i_ + 4 * (W) <= n; i_ += 4 * (W)) {                                               \
            T a_ = LOADU((const T *)(src + i_));                                                 \
            T b_ = LOADU((const T *)(src + i_ + (W)));                                           \
            T c_ = LOADU((const T *)(src + i_ + 2 * (W)));                                       \
            T d_ = LOADU((const T *)(src + i_ + 3 * (W)));                                       \
            STORE((T *)(dst + i_), XOR(a_, k_));                                                 \
            STORE((T *)(dst + i_ + (W)), XOR(b_, k_));                                           \
            STORE((T *)(dst + i_ + 2 * (W)), XOR(c_, k_));                                       \
            STORE((T *)(dst + i_ + 3 * (W)), XOR(d_, k_));                                       \
        }                                                                                        \
        for (; i_ + (W) <= n; i_ += (W))                                                         \
            STORE((T *)(dst + i_), XOR(LOADU((const T *)(src + i_)), k_));                       \
        STOREU((T *)dst, XOR(head_, SET1((int)key)));                                            \
        STOREU((T *)(dst + n - (W)), XOR(tail_, SET1((int)wsf_key_at(key, n - (W)))));           \
    } while (0)

#if defined(WSF_X86)
/* 16-byte SSE2 steps (the x86-64 baseline), stores aligned: WSF_MASK_ALIGNED. n >= 16. */
static inline void wsf_mask_sse2(unsigned char *dst, const unsigned char *src, size_t n,
                                 uint32_t key) {
    WSF_MASK_ALIGNED(__m128i, 16, _mm_set1_epi32, _mm_loadu_si128, _mm_storeu_si128,
                     _mm_store_si128, _mm_xor_si128);
}
#endif

#if defined(WSF_HAVE_AVX2_CODE)
/* 32-byte AVX2 steps, stores aligned: WSF_MASK_ALIGNED. n >= 32. */
WSF_TARGET_AVX2
static void wsf_mask_avx2(unsigned char *dst, const unsigned char *src, size_t n, uint32_t key) {
    WSF_MASK_ALIGNED(__m256i, 32, _mm256_set1_epi32, _mm256_loadu_si256, _mm256_storeu_si256,
                     _mm256_store_si256, _mm256_xor_si256);
}
#endif

#if defined(WSF_HAVE_AVX512_CODE)
/* 64-byte AVX-512F steps, stores aligned (one cache line each): WSF_MASK_ALIGNED. n >= 64.
 * Taken from 256 bytes on (below that it measured no faster than AVX2), but not in place
 * from 64 KiB on (see wsf_mask). */
WSF_TARGET_AVX512
static void wsf_mask_avx512(unsigned char *dst, const unsigned char *src, size_t n,
                            uint32_t key) {
    WSF_MASK_ALIGNED(__m512i, 64, _mm512_set1_epi32, _mm512_loadu_si512, _mm512_storeu_si512,
                     _mm512_store_si512, _mm512_xor_si512);
}
#endif

#if defined(WSF_NEON)
static inline void wsf_mask_neon(unsigned char *dst, const unsigned char *src, size_t n,
                                 uint32_t key) {
    const uint8x16_t k = vreinterpretq_u8_u32(vdupq_n_u32(key));
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        uint8x16_t a = vld1q_u8(src + i);
        uint8x16_t b = vld1q_u8(src + i + 16);
        uint8x16_t c = vld1q_u8(src + i + 32);
        uint8x16_t d = vld1q_u8(src + i + 48);
        vst1q_u8(dst + i, veorq_u8(a, k));
        vst1q_u8(dst + i + 16, veorq_u8(b, k));
        vst1q_u8(dst + i + 32, veorq_u8(c, k));
        vst1q_u8(dst + i + 48, veorq_u8(d, k));
    }
    for (; i + 16 <= n; i += 16) vst1q_u8(dst + i, veorq_u8(vld1q_u8(src + i), k));
    wsf_mask_scalar(dst + i, src + i, n - i, key);
}
#endif

/* Masks n bytes with the widest path allowed by `isa` (a WSF_ISA_* level). */
static inline void wsf_mask(int isa, unsigned char *dst, const unsigned char *src, size_t n,
                            const unsigned char *key, size_t offset) {
    uint32_t k = wsf_mask_key(key, offset);
    if (n < 16) {
        wsf_mask_scalar(dst, src, n, k);
        return;
    }
#if defined(WSF_HAVE_AVX512_CODE)
    /* In place from 64 KiB on, where the cache bounds both, AVX2 measured up to 3% faster. */
    if (isa >= WSF_ISA_AVX512 && n >= 256 && (n < 65536 || dst != src)) {
        wsf_mask_avx512(dst, src, n, k);
        return;
    }
#endif
#if defined(WSF_HAVE_AVX2_CODE)
    if (isa >= WSF_ISA_AVX2 && n >= 64) {
        wsf_mask_avx2(dst, src, n, k);
        return;
    }
#endif
#if defined(WSF_X86)
    if (isa >= WSF_ISA_SSE2) {
        wsf_mask_sse2(dst, src, n, k);
        return;
    }
#elif defined(WSF_NEON)
    if (isa >= WSF_ISA_NEON) {
        wsf_mask_neon(dst, src, n, k);
        return;
    }
#endif
    (void)isa;
    wsf_mask_scalar(dst, src, n, k);
}

#endif
