/* RFC 6455 §5.3 masking: dst[i] = src[i] ^ key[(offset + i) % 4].
 *
 * Technique: the key is rotated by the offset once and widened to a word; then 32 bytes per
 * step with AVX2 (chosen at run time), else 16 with SSE2 (x86-64) or NEON (AArch64), 4 vectors
 * per loop turn; the remainder 8 bytes at a time through a uint64 loaded with memcpy (safe on
 * unaligned buffers); the last bytes one by one. Every vector step is a multiple of 4 bytes,
 * so the key phase never changes. dst may equal src (in place); the buffers may not overlap
 * otherwise.
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

#if defined(WSF_X86)
static inline void wsf_mask_sse2(unsigned char *dst, const unsigned char *src, size_t n,
                                 uint32_t key) {
    const __m128i k = _mm_set1_epi32((int)key);
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(src + i + 16));
        __m128i c = _mm_loadu_si128((const __m128i *)(src + i + 32));
        __m128i d = _mm_loadu_si128((const __m128i *)(src + i + 48));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
        _mm_storeu_si128((__m128i *)(dst + i + 16), _mm_xor_si128(b, k));
        _mm_storeu_si128((__m128i *)(dst + i + 32), _mm_xor_si128(c, k));
        _mm_storeu_si128((__m128i *)(dst + i + 48), _mm_xor_si128(d, k));
    }
    for (; i + 16 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_xor_si128(a, k));
    }
    wsf_mask_scalar(dst + i, src + i, n - i, key);
}
#endif

#if defined(WSF_HAVE_AVX2_CODE)
WSF_TARGET_AVX2
static void wsf_mask_avx2(unsigned char *dst, const unsigned char *src, size_t n, uint32_t key) {
    const __m256i k = _mm256_set1_epi32((int)key);
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        __m256i b = _mm256_loadu_si256((const __m256i *)(src + i + 32));
        __m256i c = _mm256_loadu_si256((const __m256i *)(src + i + 64));
        __m256i d = _mm256_loadu_si256((const __m256i *)(src + i + 96));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(a, k));
        _mm256_storeu_si256((__m256i *)(dst + i + 32), _mm256_xor_si256(b, k));
        _mm256_storeu_si256((__m256i *)(dst + i + 64), _mm256_xor_si256(c, k));
        _mm256_storeu_si256((__m256i *)(dst + i + 96), _mm256_xor_si256(d, k));
    }
    for (; i + 32 <= n; i += 32) {
        __m256i a = _mm256_loadu_si256((const __m256i *)(src + i));
        _mm256_storeu_si256((__m256i *)(dst + i), _mm256_xor_si256(a, k));
    }
    wsf_mask_sse2(dst + i, src + i, n - i, key);
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
