#include "core/exec.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/cpu.h"

/*
 * Bilinear x2 with align_corners=True: output pixel o samples the input at
 * o * (in - 1) / (out - 1). oneDNN's resampling only has half-pixel centres,
 * so this one runs here. Each output row blends two input rows; the inner
 * loop over `block` channels is contiguous and vectorises.
 */
/* Where each output column reads, the same for every row and channel
 * block: computed once per call with the arithmetic the blend would use. */
struct up_col {
    int x0, x1;
    float wx;
};

/* Columns per table: wider rows take several passes. */
#define UP_COLS 1024

static void up_row(const float *r0, const float *r1, float *o, const struct up_col *cols, int ow,
                   int block, float wy)
{
    if (block == 1) { /* the final logits: one channel, so go along the row */
        for (int ox = 0; ox < ow; ox++) {
            const struct up_col *k = &cols[ox];
            float top = r0[k->x0] + (r0[k->x1] - r0[k->x0]) * k->wx;
            float bot = r1[k->x0] + (r1[k->x1] - r1[k->x0]) * k->wx;
            o[ox] = top + (bot - top) * wy;
        }
        return;
    }
    for (int ox = 0; ox < ow; ox++) {
        const struct up_col *k = &cols[ox];
        const float *a = r0 + (size_t)k->x0 * block, *b = r0 + (size_t)k->x1 * block;
        const float *c = r1 + (size_t)k->x0 * block, *d = r1 + (size_t)k->x1 * block;
        float *out = o + (size_t)ox * block, wx = k->wx;
        for (int l = 0; l < block; l++) {
            float top = a[l] + (b[l] - a[l]) * wx;
            float bot = c[l] + (d[l] - c[l]) * wx;
            out[l] = top + (bot - top) * wy;
        }
    }
}

void mms_kernel_upsample2(const float *src, float *dst, int cblocks, int block, int h, int w)
{
    const int oh = 2 * h, ow = 2 * w;
    const float ry = oh > 1 ? (float)(h - 1) / (oh - 1) : 0.f;
    const float rx = ow > 1 ? (float)(w - 1) / (ow - 1) : 0.f;
    struct up_col cols[UP_COLS];
    for (int c0 = 0; c0 < ow; c0 += UP_COLS) {
        int n = ow - c0 < UP_COLS ? ow - c0 : UP_COLS;
        for (int i = 0; i < n; i++) {
            float fx = (c0 + i) * rx;
            int x0 = (int)fx;
            cols[i] = (struct up_col){x0, x0 + 1 < w ? x0 + 1 : w - 1, fx - x0};
        }
#pragma omp parallel for collapse(2) schedule(static)
        for (int cb = 0; cb < cblocks; cb++) {
            for (int oy = 0; oy < oh; oy++) {
                float fy = oy * ry;
                int y0 = (int)fy;
                int y1 = y0 + 1 < h ? y0 + 1 : h - 1;
                const float *r0 = src + ((size_t)cb * h + y0) * w * block;
                const float *r1 = src + ((size_t)cb * h + y1) * w * block;
                float *o = dst + (((size_t)cb * oh + oy) * ow + c0) * block;
                up_row(r0, r1, o, cols, n, block, fy - y0);
            }
        }
    }
}

/* The int8 versions in fixed point: positions rounded to 1/2048 of a
 * pixel, the four-tap blend in 1/2^22 (255 x 2^22 fits an int), rounded
 * half up (floor of x + 0.5). A blend of values within the type's range
 * stays within it. The blend is separable without rounding in between,
 *   a w00 + b w01 + c w10 + d w11
 *     = (a (1 - wx) + b wx) (1 - wy) + (c (1 - wx) + d wx) wy,
 * so the AVX2 path computes it so, in 16-bit pairs then 32 bits, and gives
 * the same integers. */
#define UP_BITS 11
#define UP_ONE (1 << UP_BITS)

/* One output pixel's `c` channels from its four source pixels. */
#define BLEND_INT(NAME, T)                                                                     \
    static void NAME(const T *a, const T *b, const T *cc, const T *d, T *out, int c, int wx,    \
                     int wy)                                                                   \
    {                                                                                          \
        int w00 = (UP_ONE - wx) * (UP_ONE - wy), w01 = wx * (UP_ONE - wy);                     \
        int w10 = (UP_ONE - wx) * wy, w11 = wx * wy;                                           \
        for (int l = 0; l < c; l++) {                                                          \
            int v = a[l] * w00 + b[l] * w01 + cc[l] * w10 + d[l] * w11 +                       \
                    (1 << (2 * UP_BITS - 1));                                                  \
            out[l] = (T)(v >> (2 * UP_BITS));                                                  \
        }                                                                                      \
    }

BLEND_INT(blend_s8, int8_t)
BLEND_INT(blend_u8, uint8_t)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define KERNELS_AVX2 1

/* 8 channels: widen, pair (a, b) for one multiply-add, then blend rows. */
#define BLEND8_AVX2(WIDEN, PACK)                                                               \
    {                                                                                          \
        __m128i A = WIDEN(_mm_loadl_epi64((const __m128i *)(a + l)));                          \
        __m128i B = WIDEN(_mm_loadl_epi64((const __m128i *)(b + l)));                          \
        __m128i C = WIDEN(_mm_loadl_epi64((const __m128i *)(cc + l)));                         \
        __m128i D = WIDEN(_mm_loadl_epi64((const __m128i *)(d + l)));                          \
        __m256i ab = _mm256_set_m128i(_mm_unpackhi_epi16(A, B), _mm_unpacklo_epi16(A, B));     \
        __m256i cd = _mm256_set_m128i(_mm_unpackhi_epi16(C, D), _mm_unpacklo_epi16(C, D));     \
        __m256i top = _mm256_madd_epi16(ab, hx), bot = _mm256_madd_epi16(cd, hx);              \
        __m256i v = _mm256_add_epi32(_mm256_mullo_epi32(top, vy0), _mm256_mullo_epi32(bot, vy1)); \
        v = _mm256_srai_epi32(_mm256_add_epi32(v, half), 2 * UP_BITS);                         \
        __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)); \
        _mm_storel_epi64((__m128i *)(out + l), PACK(p, p));                                    \
    }

#define BLEND_INT_AVX2(NAME, T, WIDEN, PACK, SCALAR)                                           \
    __attribute__((target("avx2"))) static void NAME(const T *a, const T *b, const T *cc,      \
                                                     const T *d, T *out, int c, int wx, int wy) \
    {                                                                                          \
        const __m256i hx = _mm256_set1_epi32((int)((unsigned)wx << 16 | (UP_ONE - wx)));       \
        const __m256i vy0 = _mm256_set1_epi32(UP_ONE - wy), vy1 = _mm256_set1_epi32(wy);       \
        const __m256i half = _mm256_set1_epi32(1 << (2 * UP_BITS - 1));                        \
        int l = 0;                                                                             \
        for (; l + 8 <= c; l += 8)                                                             \
            BLEND8_AVX2(WIDEN, PACK)                                                           \
        if (l < c)                                                                             \
            SCALAR(a + l, b + l, cc + l, d + l, out + l, c - l, wx, wy);                       \
    }

BLEND_INT_AVX2(blend_s8_avx2, int8_t, _mm_cvtepi8_epi16, _mm_packs_epi16, blend_s8)
BLEND_INT_AVX2(blend_u8_avx2, uint8_t, _mm_cvtepu8_epi16, _mm_packus_epi16, blend_u8)
#endif

#define UPSAMPLE_INT(NAME, T, BLEND)                                                           \
    void NAME(const T *src, T *dst, int c, int h, int w, int ostride)                          \
    {                                                                                          \
        const int oh = 2 * h, ow = 2 * w;                                                      \
        const long dy = oh > 1 ? oh - 1 : 1, dx = ow > 1 ? ow - 1 : 1;                         \
        void (*blend)(const T *, const T *, const T *, const T *, T *, int, int, int) = BLEND; \
        UPSAMPLE_PICK(BLEND)                                                                   \
        _Pragma("omp parallel for schedule(static)")                                          \
        for (int oy = 0; oy < oh; oy++) {                                                      \
            long ny = ((long)oy * (h - 1) * UP_ONE * 2 + dy) / (2 * dy);                       \
            int y0 = (int)(ny >> UP_BITS), wy = (int)(ny & (UP_ONE - 1));                      \
            int y1 = y0 + 1 < h ? y0 + 1 : h - 1;                                              \
            const T *r0 = src + (size_t)y0 * w * c, *r1 = src + (size_t)y1 * w * c;            \
            T *o = dst + (size_t)oy * ow * ostride;                                            \
            for (int ox = 0; ox < ow; ox++) {                                                  \
                long nx = ((long)ox * (w - 1) * UP_ONE * 2 + dx) / (2 * dx);                   \
                int x0 = (int)(nx >> UP_BITS), wx = (int)(nx & (UP_ONE - 1));                  \
                int x1 = x0 + 1 < w ? x0 + 1 : w - 1;                                          \
                blend(r0 + (size_t)x0 * c, r0 + (size_t)x1 * c, r1 + (size_t)x0 * c,           \
                      r1 + (size_t)x1 * c, o + (size_t)ox * ostride, c, wx, wy);               \
            }                                                                                  \
        }                                                                                      \
    }

#ifdef KERNELS_AVX2
#define UPSAMPLE_PICK(BLEND)                                                                   \
    if (mms_cpu_avx2())                                                                        \
        blend = BLEND##_avx2;
#else
#define UPSAMPLE_PICK(BLEND)
#endif

UPSAMPLE_INT(mms_kernel_upsample2_s8, int8_t, blend_s8)
UPSAMPLE_INT(mms_kernel_upsample2_u8, uint8_t, blend_u8)

/* bf16: the blend in fp32, as the fp32 kernel computes it, rounded to
 * nearest even once at the store. */
static inline float bf16_load(uint16_t v)
{
    uint32_t u = (uint32_t)v << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

static inline uint16_t bf16_store(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof(u));
    if ((u & 0x7fffffffu) > 0x7f800000u) /* NaN stays a (quiet) NaN */
        return (uint16_t)(u >> 16 | 0x40);
    return (uint16_t)((u + 0x7fffu + (u >> 16 & 1)) >> 16);
}

static void blend_bf16(const uint16_t *a, const uint16_t *b, const uint16_t *c,
                       const uint16_t *d, uint16_t *out, int n, float wx, float wy)
{
    for (int l = 0; l < n; l++) {
        float top = bf16_load(a[l]) + (bf16_load(b[l]) - bf16_load(a[l])) * wx;
        float bot = bf16_load(c[l]) + (bf16_load(d[l]) - bf16_load(c[l])) * wx;
        out[l] = bf16_store(top + (bot - top) * wy);
    }
}

#ifdef KERNELS_AVX2
__attribute__((target("avx2"))) static inline __m256 bf16x8_load(const uint16_t *p)
{
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(v), 16));
}

/* bf16_store on 8 lanes: the same rounding and NaN rule, integer for
 * integer. No FMA (the target is avx2 alone): the multiply and the add
 * round separately, as in the portable blend. */
__attribute__((target("avx2"))) static void blend_bf16_avx2(const uint16_t *a, const uint16_t *b,
                                                            const uint16_t *c, const uint16_t *d,
                                                            uint16_t *out, int n, float wx,
                                                            float wy)
{
    const __m256 vx = _mm256_set1_ps(wx), vy = _mm256_set1_ps(wy);
    const __m256i abs = _mm256_set1_epi32(0x7fffffff), inf = _mm256_set1_epi32(0x7f800000);
    const __m256i one = _mm256_set1_epi32(1), bias = _mm256_set1_epi32(0x7fff);
    const __m256i quiet = _mm256_set1_epi32(0x40);
    int l = 0;
    for (; l + 8 <= n; l += 8) {
        __m256 fa = bf16x8_load(a + l), fb = bf16x8_load(b + l);
        __m256 fc = bf16x8_load(c + l), fd = bf16x8_load(d + l);
        __m256 top = _mm256_add_ps(fa, _mm256_mul_ps(_mm256_sub_ps(fb, fa), vx));
        __m256 bot = _mm256_add_ps(fc, _mm256_mul_ps(_mm256_sub_ps(fd, fc), vx));
        __m256i u = _mm256_castps_si256(
            _mm256_add_ps(top, _mm256_mul_ps(_mm256_sub_ps(bot, top), vy)));
        __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), one);
        __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, bias), lsb), 16);
        __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, abs), inf);
        r = _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), quiet), nan);
        __m256i p = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
        _mm_storeu_si128((__m128i *)(out + l), _mm256_castsi256_si128(p));
    }
    if (l < n)
        blend_bf16(a + l, b + l, c + l, d + l, out + l, n - l, wx, wy);
}
#endif

void mms_kernel_upsample2_bf16(const uint16_t *src, uint16_t *dst, int c, int h, int w,
                               int ostride)
{
    void (*blend)(const uint16_t *, const uint16_t *, const uint16_t *, const uint16_t *,
                  uint16_t *, int, float, float) = blend_bf16;
    UPSAMPLE_PICK(blend_bf16)
    const int oh = 2 * h, ow = 2 * w;
    const float ry = oh > 1 ? (float)(h - 1) / (oh - 1) : 0.f;
    const float rx = ow > 1 ? (float)(w - 1) / (ow - 1) : 0.f;
#pragma omp parallel for schedule(static)
    for (int oy = 0; oy < oh; oy++) {
        float fy = oy * ry;
        int y0 = (int)fy, y1 = y0 + 1 < h ? y0 + 1 : h - 1;
        const uint16_t *r0 = src + (size_t)y0 * w * c, *r1 = src + (size_t)y1 * w * c;
        uint16_t *o = dst + (size_t)oy * ow * ostride;
        for (int ox = 0; ox < ow; ox++) {
            float fx = ox * rx;
            int x0 = (int)fx, x1 = x0 + 1 < w ? x0 + 1 : w - 1;
            blend(r0 + (size_t)x0 * c, r0 + (size_t)x1 * c, r1 + (size_t)x0 * c,
                  r1 + (size_t)x1 * c, o + (size_t)ox * ostride, c, fx - x0, fy - y0);
        }
    }
}
