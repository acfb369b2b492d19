/* UTF-8 validation (RFC 3629, Unicode Table 3-7), whole-buffer and incremental.
 *
 * Technique: the state between calls is a DFA state (0 = at a character boundary). A call
 * first finishes any character left open by the previous call with the DFA, then:
 * - AVX2 (chosen at run time, 32 bytes per step) or NEON (16): an all-ASCII step costs one
 *   movemask (vmaxvq_u8);
 *   otherwise the "lookup" method of Keiser & Lemire (Software: Practice and Experience,
 *   2021): three 16-entry nibble tables classify each pair of consecutive bytes into error
 *   bits (too short, too long, overlong, surrogate, too large, two continuations), plus a
 *   check that the 3rd/4th bytes of long characters are continuations. It stops before the
 *   last character that may be cut by the block end; the DFA takes over from there.
 * - otherwise (SSE2, scalar), and for the tail: the DFA, skipping ASCII 16 bytes at a time
 *   or 8 (uint64 loaded with memcpy).
 * The DFA rejects at the first byte that cannot continue any valid string (fail fast).
 */
#ifndef WSF_UTF8_H
#define WSF_UTF8_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "wsf_cpu.h"

enum { WSF_UTF8_ACCEPT = 0, WSF_UTF8_REJECT = 1 };

/* Byte classes: 0 ASCII; 1 80..8F; 2 90..9F; 3 A0..BF; 4 never valid (C0, C1, F5..FF);
 * 5 C2..DF; 6 E0; 7 E1..EC, EE..EF; 8 ED; 9 F0; 10 F1..F3; 11 F4. */
static const uint8_t wsf_utf8_class[256] = {
#define R16(c) c, c, c, c, c, c, c, c, c, c, c, c, c, c, c, c
    R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), R16(0), /* 00..7F */
    R16(1),                                                          /* 80..8F */
    R16(2),                                                          /* 90..9F */
    R16(3), R16(3),                                                  /* A0..BF */
    4, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5,                  /* C0..CF */
    R16(5),                                                          /* D0..DF */
    6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 7,                  /* E0..EF */
    9, 10, 10, 10, 11, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,              /* F0..FF */
#undef R16
};

/* States: 0 accept, 1 reject (absorbing); 2/3/4 need 1/2/3 continuation bytes 80..BF;
 * 5 after E0 (next A0..BF); 6 after ED (next 80..9F); 7 after F0 (next 90..BF);
 * 8 after F4 (next 80..8F). Row = state, column = byte class. */
static const uint8_t wsf_utf8_next[9][12] = {
    {0, 1, 1, 1, 1, 2, 5, 3, 6, 7, 4, 8}, /* accept */
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* reject */
    {1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1}, /* one more */
    {1, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1}, /* two more */
    {1, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, /* three more */
    {1, 1, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1}, /* after E0 */
    {1, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* after ED */
    {1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, /* after F0 */
    {1, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, /* after F4 */
};

/* Length of the run of ASCII bytes at the start of p[0:n], found a word/vector at a time
 * (may stop a few bytes early; the caller's DFA handles what remains). */
static inline size_t wsf_ascii_prefix(const unsigned char *p, size_t n) {
    size_t i = 0;
#if defined(WSF_X86)
    for (; i + 16 <= n; i += 16) {
        if (_mm_movemask_epi8(_mm_loadu_si128((const __m128i *)(p + i)))) return i;
    }
#elif defined(WSF_NEON)
    for (; i + 16 <= n; i += 16) {
        if (vmaxvq_u8(vld1q_u8(p + i)) >= 0x80) return i;
    }
#endif
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ULL) return i;
    }
    return i;
}

/* The DFA over p[0:n] from `state`, skipping ASCII runs while at a boundary. */
static inline uint32_t wsf_utf8_dfa(uint32_t state, const unsigned char *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (state == WSF_UTF8_ACCEPT) {
            i += wsf_ascii_prefix(p + i, n - i);
            while (i < n && p[i] < 0x80) i++;
            if (i == n) break;
        }
        state = wsf_utf8_next[state][wsf_utf8_class[p[i]]];
        if (state == WSF_UTF8_REJECT) return state;
        i++;
    }
    return state;
}

#if defined(WSF_HAVE_AVX2_CODE) || defined(WSF_NEON)
/* Error bits of the lookup method; bit 7 marks "two continuation bytes in a row". */
#define WSF_TOO_SHORT (1 << 0)  /* lead byte then ASCII or another lead */
#define WSF_TOO_LONG (1 << 1)   /* ASCII then continuation */
#define WSF_OVERLONG3 (1 << 2)  /* E0 80..9F */
#define WSF_TOO_LARGE (1 << 3)  /* F4 90..BF, F5.. 90..BF */
#define WSF_SURROGATE (1 << 4)  /* ED A0..BF */
#define WSF_OVERLONG2 (1 << 5)  /* C0/C1 continuation */
#define WSF_TOO_LARGE_1000 (1 << 6) /* F5.. 80..8F */
#define WSF_OVERLONG4 (1 << 6)  /* F0 80..8F */
#define WSF_TWO_CONTS (1 << 7)
#define WSF_CARRY (WSF_TOO_SHORT | WSF_TOO_LONG | WSF_TWO_CONTS)

/* The three 16-entry tables, indexed by the previous byte's high nibble, its low nibble and
 * the current byte's high nibble; a pair is an error where the three entries share a bit. */
static const uint8_t wsf_utf8_b1_high[16] = {
    WSF_TOO_LONG, WSF_TOO_LONG, WSF_TOO_LONG, WSF_TOO_LONG, WSF_TOO_LONG, WSF_TOO_LONG,
    WSF_TOO_LONG, WSF_TOO_LONG, WSF_TWO_CONTS, WSF_TWO_CONTS, WSF_TWO_CONTS, WSF_TWO_CONTS,
    WSF_TOO_SHORT | WSF_OVERLONG2, WSF_TOO_SHORT,
    WSF_TOO_SHORT | WSF_OVERLONG3 | WSF_SURROGATE,
    WSF_TOO_SHORT | WSF_TOO_LARGE | WSF_TOO_LARGE_1000 | WSF_OVERLONG4};
#define WSF_L_HI (WSF_CARRY | WSF_TOO_LARGE | WSF_TOO_LARGE_1000)
static const uint8_t wsf_utf8_b1_low[16] = {
    WSF_CARRY | WSF_OVERLONG3 | WSF_OVERLONG2 | WSF_OVERLONG4, WSF_CARRY | WSF_OVERLONG2,
    WSF_CARRY, WSF_CARRY, WSF_CARRY | WSF_TOO_LARGE, WSF_L_HI, WSF_L_HI, WSF_L_HI, WSF_L_HI,
    WSF_L_HI, WSF_L_HI, WSF_L_HI, WSF_L_HI, WSF_L_HI | WSF_SURROGATE, WSF_L_HI, WSF_L_HI};
#undef WSF_L_HI
#define WSF_C8 (WSF_TOO_LONG | WSF_OVERLONG2 | WSF_TWO_CONTS | WSF_OVERLONG3 | WSF_TOO_LARGE_1000 | WSF_OVERLONG4)
#define WSF_C9 (WSF_TOO_LONG | WSF_OVERLONG2 | WSF_TWO_CONTS | WSF_OVERLONG3 | WSF_TOO_LARGE)
#define WSF_CA (WSF_TOO_LONG | WSF_OVERLONG2 | WSF_TWO_CONTS | WSF_SURROGATE | WSF_TOO_LARGE)
#define WSF_S WSF_TOO_SHORT
static const uint8_t wsf_utf8_b2_high[16] = {
    WSF_S, WSF_S, WSF_S, WSF_S, WSF_S, WSF_S, WSF_S, WSF_S, WSF_C8, WSF_C9, WSF_CA, WSF_CA,
    WSF_S, WSF_S, WSF_S, WSF_S};
#undef WSF_C8
#undef WSF_C9
#undef WSF_CA
#undef WSF_S

/* How many leading bytes of p[0:i] (whole blocks, all valid) end at a character boundary:
 * gives back the last character, which the end of the last block may have cut. */
static inline size_t wsf_utf8_settled(const unsigned char *p, size_t i) {
    size_t t;
    if (i == 0) return 0;
    t = i - 1;
    while (t > 0 && (p[t] & 0xC0) == 0x80) t--;
    return t;
}
#endif

#if defined(WSF_HAVE_AVX2_CODE)
WSF_TARGET_AVX2
static inline __m256i wsf_avx2_prev(__m256i in, __m256i prev_in, int k) {
    /* The block shifted right by k bytes, with the previous block's last k bytes in front. */
    __m256i carry = _mm256_permute2x128_si256(prev_in, in, 0x21);
    switch (k) {
    case 1: return _mm256_alignr_epi8(in, carry, 15);
    case 2: return _mm256_alignr_epi8(in, carry, 14);
    default: return _mm256_alignr_epi8(in, carry, 13);
    }
}

/* Validates whole 32-byte blocks of p[0:n], which starts at a character boundary. Returns
 * how many leading bytes are settled (all of them valid and at a boundary), or (size_t)-1 on
 * an error. The bytes after the result are for the DFA. */
WSF_TARGET_AVX2
static size_t wsf_utf8_avx2(const unsigned char *p, size_t n) {
    const __m256i b1_high =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)wsf_utf8_b1_high));
    const __m256i b1_low =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)wsf_utf8_b1_low));
    const __m256i b2_high =
        _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)wsf_utf8_b2_high));
    const __m256i low_nibble = _mm256_set1_epi8(0x0F);
    const __m256i third_min = _mm256_set1_epi8((char)(0xE0 - 0x80));
    const __m256i fourth_min = _mm256_set1_epi8((char)(0xF0 - 0x80));
    const __m256i high_bit = _mm256_set1_epi8((char)0x80);
    __m256i prev_in = _mm256_setzero_si256();
    __m256i error = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i in = _mm256_loadu_si256((const __m256i *)(p + i));
        if (_mm256_movemask_epi8(_mm256_or_si256(in, prev_in)) == 0) {
            /* ASCII after ASCII: nothing to check (no character can be open). */
            prev_in = in;
            continue;
        }
        __m256i prev1 = wsf_avx2_prev(in, prev_in, 1);
        __m256i hi1 = _mm256_and_si256(_mm256_srli_epi16(prev1, 4), low_nibble);
        __m256i lo1 = _mm256_and_si256(prev1, low_nibble);
        __m256i hi2 = _mm256_and_si256(_mm256_srli_epi16(in, 4), low_nibble);
        __m256i special = _mm256_and_si256(
            _mm256_and_si256(_mm256_shuffle_epi8(b1_high, hi1), _mm256_shuffle_epi8(b1_low, lo1)),
            _mm256_shuffle_epi8(b2_high, hi2));
        __m256i prev2 = wsf_avx2_prev(in, prev_in, 2);
        __m256i prev3 = wsf_avx2_prev(in, prev_in, 3);
        __m256i must23 = _mm256_or_si256(_mm256_subs_epu8(prev2, third_min),
                                         _mm256_subs_epu8(prev3, fourth_min));
        error = _mm256_or_si256(error,
                                _mm256_xor_si256(_mm256_and_si256(must23, high_bit), special));
        prev_in = in;
        if ((i & 1023) == 992 && !_mm256_testz_si256(error, error)) return (size_t)-1;
    }
    if (!_mm256_testz_si256(error, error)) return (size_t)-1;
    return wsf_utf8_settled(p, i);
}
#endif

#if defined(WSF_NEON)
/* The lookup method of wsf_utf8_avx2 on 16-byte NEON blocks (vqtbl1q_u8 for the nibble
 * tables, vextq_u8 for the bytes before); same contract. */
static size_t wsf_utf8_neon(const unsigned char *p, size_t n) {
    const uint8x16_t b1_high = vld1q_u8(wsf_utf8_b1_high);
    const uint8x16_t b1_low = vld1q_u8(wsf_utf8_b1_low);
    const uint8x16_t b2_high = vld1q_u8(wsf_utf8_b2_high);
    const uint8x16_t low_nibble = vdupq_n_u8(0x0F);
    const uint8x16_t third_min = vdupq_n_u8(0xE0 - 0x80);
    const uint8x16_t fourth_min = vdupq_n_u8(0xF0 - 0x80);
    const uint8x16_t high_bit = vdupq_n_u8(0x80);
    uint8x16_t prev_in = vdupq_n_u8(0);
    uint8x16_t error = vdupq_n_u8(0);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        uint8x16_t in = vld1q_u8(p + i);
        if (vmaxvq_u8(vorrq_u8(in, prev_in)) < 0x80) {
            prev_in = in; /* ASCII after ASCII: no character can be open */
            continue;
        }
        uint8x16_t prev1 = vextq_u8(prev_in, in, 15);
        uint8x16_t special = vandq_u8(
            vandq_u8(vqtbl1q_u8(b1_high, vshrq_n_u8(prev1, 4)),
                     vqtbl1q_u8(b1_low, vandq_u8(prev1, low_nibble))),
            vqtbl1q_u8(b2_high, vshrq_n_u8(in, 4)));
        uint8x16_t must23 = vorrq_u8(vqsubq_u8(vextq_u8(prev_in, in, 14), third_min),
                                     vqsubq_u8(vextq_u8(prev_in, in, 13), fourth_min));
        error = vorrq_u8(error, veorq_u8(vandq_u8(must23, high_bit), special));
        prev_in = in;
        if ((i & 1023) == 1008 && vmaxvq_u8(error)) return (size_t)-1;
    }
    if (vmaxvq_u8(error)) return (size_t)-1;
    return wsf_utf8_settled(p, i);
}
#endif

/* The lookup kernel of this platform and the level it needs (none: the DFA alone). */
#if defined(WSF_HAVE_AVX2_CODE)
#define WSF_UTF8_LOOKUP(p, n) wsf_utf8_avx2(p, n)
#define WSF_UTF8_LOOKUP_ISA WSF_ISA_AVX2
#elif defined(WSF_NEON)
#define WSF_UTF8_LOOKUP(p, n) wsf_utf8_neon(p, n)
#define WSF_UTF8_LOOKUP_ISA WSF_ISA_NEON
#endif

/* Validates p[0:n] continuing from DFA `state`; returns the state after the last byte
 * (WSF_UTF8_ACCEPT: valid and complete; WSF_UTF8_REJECT: invalid). `isa` is a WSF_ISA_*. */
static inline uint32_t wsf_utf8_validate(int isa, uint32_t state, const unsigned char *p,
                                         size_t n) {
    size_t i = 0;
    while (state > WSF_UTF8_REJECT && i < n) {
        state = wsf_utf8_next[state][wsf_utf8_class[p[i++]]];
    }
    if (state == WSF_UTF8_REJECT) return state;
#if defined(WSF_UTF8_LOOKUP_ISA)
    if (isa >= WSF_UTF8_LOOKUP_ISA && n - i >= 64) {
        size_t done = WSF_UTF8_LOOKUP(p + i, n - i);
        if (done == (size_t)-1) return WSF_UTF8_REJECT;
        i += done;
    }
#endif
    (void)isa;
    return wsf_utf8_dfa(state, p + i, n - i);
}

/* Index of the first byte of p[0:n] at which the DFA, starting from `state`, rejects (n when
 * none does; 0 when `state` is already a reject). Byte by byte: only called once
 * wsf_utf8_validate has found an error, to say where it is. */
static inline size_t wsf_utf8_reject_index(uint32_t state, const unsigned char *p, size_t n) {
    size_t i;
    if (state == WSF_UTF8_REJECT) return 0;
    for (i = 0; i < n; i++) {
        state = wsf_utf8_next[state][wsf_utf8_class[p[i]]];
        if (state == WSF_UTF8_REJECT) return i;
    }
    return n;
}

#endif
