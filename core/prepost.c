#include "core/prepost.h"

#include <math.h>
#include <stddef.h>

#include "core/cpu.h"

/*
 * Bilinear sampling exactly as PyTorch's upsample_bilinear2d computes it
 * for align_corners=False and no scale factor (UpSample.h:
 * area_pixel_compute_source_index, guard_index_and_lambda): in float,
 *   src = (in / out) * (dst + 0.5) - 0.5, clamped to >= 0,
 *   i0 = min(floor(src), in - 1), i1 = i0 + (i0 < in - 1),
 *   l1 = clamp(src - i0, 0, 1), l0 = 1 - l1,
 * and an axis whose size does not change is a plain copy (l0 = 1). Values
 * combine in the order of its generic (NCHW) CPU kernel:
 *   (a * lx0 + b * lx1) * ly0 + (c * lx0 + d * lx1) * ly1.
 * The reference's permuted HWC frame takes PyTorch's channels-last kernel,
 * which sums the four products in another order: results agree to float
 * rounding, not bit for bit.
 *
 * Work goes in tiles of TILE output columns: the column coefficients of
 * a tile are computed once into a table on the stack, and each source row
 * is resized horizontally once into one of two stack buffers that the
 * output rows blend vertically (each source row serves several output
 * rows when upscaling). A call allocates nothing whatever the frame size.
 */

#define TILE 256

struct lin {
    int i0, i1;
    float l0, l1;
};

static struct lin lin_at(int dst, int in, int out)
{
    struct lin c = {dst, dst, 1.0f, 0.0f};
    if (in == out)
        return c;
    float scale = (float)in / (float)out;
    float src = scale * ((float)dst + 0.5f) - 0.5f;
    if (src < 0.0f)
        src = 0.0f;
    int i = (int)src; /* src >= 0: truncation is floor */
    if (i > in - 1)
        i = in - 1;
    float l = src - (float)i;
    l = l < 0.0f ? 0.0f : l > 1.0f ? 1.0f : l;
    c.i0 = i;
    c.i1 = i + (i < in - 1);
    c.l1 = l;
    c.l0 = 1.0f - l;
    return c;
}

static void lin_table(struct lin *tab, int x0, int n, int in, int out)
{
    for (int i = 0; i < n; i++)
        tab[i] = lin_at(x0 + i, in, out);
}

/* Two horizontally resized source rows (c channels of TILE floats each),
 * tagged with the source row they hold. */
struct rows {
    int src[2];
    float v[2][3][TILE];
};

/* Fills out with source row `row` resized for the tile of n output
 * columns from x0, whose taps and weights tab holds. */
typedef void (*hfill_fn)(const void *src, int row, int x0, const struct lin *tab, int n,
                         float (*out)[TILE]);

/* Points r0 / r1 at the buffers holding source rows ly->i0 / ly->i1,
 * filling what is missing without evicting a row still needed. */
static void rows_get(struct rows *r, const struct lin *ly, hfill_fn fill,
                     const void *src, int x0, const struct lin *tab, int n,
                     float (**r0)[TILE], float (**r1)[TILE])
{
    int want[2] = {ly->i0, ly->i1}, slot[2];
    for (int k = 0; k < 2; k++) {
        slot[k] = r->src[0] == want[k] ? 0 : r->src[1] == want[k] ? 1 : -1;
        if (slot[k] >= 0)
            continue;
        slot[k] = k == 1 ? 1 - slot[0] : r->src[0] == want[1] ? 1 : 0;
        fill(src, want[k], x0, tab, n, r->v[slot[k]]);
        r->src[slot[k]] = want[k];
    }
    *r0 = r->v[slot[0]];
    *r1 = r->v[slot[1]];
}

/* ---- pre ---- */

static inline float normalise(float v, float mean, float std)
{
    /* Written as the reference does it, (x / 255 - mean) / std: at the
     * network size (no resize) the results agree bit for bit. */
    return (v / 255.0f - mean) / std;
}

static void pre_copy(const uint8_t *rgb, int w, int h, int stride, float *dst,
                     const float mean[3], const float std[3])
{
    size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++) {
        const uint8_t *p = rgb + (size_t)y * stride;
        float *o = dst + (size_t)y * w;
        for (int x = 0; x < w; x++) {
            o[x] = normalise(p[3 * x], mean[0], std[0]);
            o[x + plane] = normalise(p[3 * x + 1], mean[1], std[1]);
            o[x + 2 * plane] = normalise(p[3 * x + 2], mean[2], std[2]);
        }
    }
}

struct rgb_src {
    const uint8_t *p;
    int stride;
};

static void hfill_rgb(const void *src, int row, int x0, const struct lin *tab, int n,
                      float (*out)[TILE])
{
    (void)x0;
    const struct rgb_src *s = src;
    const uint8_t *r = s->p + (size_t)row * s->stride;
    for (int i = 0; i < n; i++) {
        int a = 3 * tab[i].i0, b = 3 * tab[i].i1;
        for (int c = 0; c < 3; c++)
            out[c][i] = (float)r[a + c] * tab[i].l0 + (float)r[b + c] * tab[i].l1;
    }
}

/* Resizes any source whose rows `fill` reads as RGB on the 0..255 scale. */
static void pre_resize(hfill_fn fill, const void *src, int w, int h, float *dst, int dh,
                       int dw, const float mean[3], const float std[3])
{
    size_t plane = (size_t)dw * dh;
    struct lin tab[TILE];
    struct rows rows;
    for (int x0 = 0; x0 < dw; x0 += TILE) {
        int n = dw - x0 < TILE ? dw - x0 : TILE;
        lin_table(tab, x0, n, w, dw);
        rows.src[0] = rows.src[1] = -1;
        for (int y = 0; y < dh; y++) {
            struct lin ly = lin_at(y, h, dh);
            float (*r0)[TILE], (*r1)[TILE];
            rows_get(&rows, &ly, fill, src, x0, tab, n, &r0, &r1);
            for (int c = 0; c < 3; c++) {
                float *o = dst + c * plane + (size_t)y * dw + x0;
                for (int i = 0; i < n; i++)
                    o[i] = normalise(r0[c][i] * ly.l0 + r1[c][i] * ly.l1, mean[c],
                                     std[c]);
            }
        }
    }
}

void mms_pre_rgb24(const uint8_t *rgb, int w, int h, int stride, float *dst,
                   int dh, int dw, const float mean[3], const float std[3])
{
    if (w <= 0 || h <= 0 || dw <= 0 || dh <= 0)
        return;
    if (w == dw && h == dh) {
        pre_copy(rgb, w, h, stride, dst, mean, std);
        return;
    }
    struct rgb_src src = {rgb, stride};
    pre_resize(hfill_rgb, &src, w, h, dst, dh, dw, mean, std);
}

/* The widest chroma row the one-pass path blends on the stack. */
#define CHROMA_MAX 8192

struct yuv_src {
    const struct mms_yuv *f;
    struct mms_yuv_lut lut;
    int subx, suby, cw, ch;
    /* One luma row's chroma, blended vertically, in quarters (0..1020);
     * one spare entry past the last so a vector can read it in pairs. */
    uint16_t *cu, *cv;
    struct yuv_cols *cols;
};

static void blend_chroma_row(const struct yuv_src *s, int row, int c0, int c1)
{
    const struct mms_yuv *f = s->f;
    int y0, y1, fy;
    mms_yuv_taps(row, s->suby, f->site_y, s->ch, &y0, &y1, &fy);
    int nv12 = f->layout == MMS_YUV_NV12, step = nv12 ? 2 : 1;
    const uint8_t *u0 = f->plane[1] + (long)y0 * f->stride[1];
    const uint8_t *u1 = f->plane[1] + (long)y1 * f->stride[1];
    const uint8_t *v0 = nv12 ? u0 + 1 : f->plane[2] + (long)y0 * f->stride[2];
    const uint8_t *v1 = nv12 ? u1 + 1 : f->plane[2] + (long)y1 * f->stride[2];
    for (int j = c0; j <= c1; j++) {
        s->cu[j] = (uint16_t)(u0[j * step] * (4 - fy) + u1[j * step] * fy);
        s->cv[j] = (uint16_t)(v0[j * step] * (4 - fy) + v1[j * step] * fy);
    }
    s->cu[c1 + 1] = s->cv[c1 + 1] = 0;
}

static void hfill_yuv_any(const void *src, int row, int x0, const struct lin *tab, int n,
                          float (*out)[TILE])
{
    (void)x0;
    const struct yuv_src *s = src;
    for (int i = 0; i < n; i++) {
        uint8_t a[3], b[3];
        mms_yuv_pixel(s->f, &s->lut, tab[i].i0, row, a);
        mms_yuv_pixel(s->f, &s->lut, tab[i].i1, row, b);
        for (int c = 0; c < 3; c++)
            out[c][i] = (float)a[c] * tab[i].l0 + (float)b[c] * tab[i].l1;
    }
}

/* Where the two source pixels (k = 0, 1) of each output column of a tile
 * read their luma and chroma, and the column's weights: the same for every
 * row of the tile. One array per field, so that a vector loads them. */
struct yuv_cols {
    /* The tile, by its first column: under a strong enlargement two tiles
     * can share their first and last taps and weights, so those are no key. */
    int n, x0;
    int32_t x[2][TILE], c0[2][TILE], c1[2][TILE], fx[2][TILE];
    float l0[TILE], l1[TILE];
};

static void yuv_cols_update(const struct yuv_src *s, struct yuv_cols *t, int x0,
                            const struct lin *tab, int n)
{
    if (t->n == n && t->x0 == x0)
        return;
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 2; k++) {
            int x = k ? tab[i].i1 : tab[i].i0, c0, c1, fx;
            mms_yuv_taps(x, s->subx, s->f->site_x, s->cw, &c0, &c1, &fx);
            t->x[k][i] = x;
            t->c0[k][i] = c0;
            t->c1[k][i] = c1;
            t->fx[k][i] = fx;
        }
        t->l0[i] = tab[i].l0;
        t->l1[i] = tab[i].l1;
    }
    t->n = n;
    t->x0 = x0;
}

/* mms_yuv_pixel on a row whose chroma blend_chroma_row made: the same
 * arithmetic, the vertical half of it done once per row. */
static inline void row_pixel(const struct yuv_src *s, const uint8_t *yrow, int x, int c0, int c1,
                             int fx, float rgb[3])
{
    int U = (s->cu[c0] * (4 - fx) + s->cu[c1] * fx + 8) >> 4;
    int V = (s->cv[c0] * (4 - fx) + s->cv[c1] * fx + 8) >> 4;
    int32_t ly = s->lut.y[yrow[x]];
    rgb[0] = mms_yuv_clamp(ly + s->lut.rv[V]);
    rgb[1] = mms_yuv_clamp(ly + s->lut.gu[U] + s->lut.gv[V]);
    rgb[2] = mms_yuv_clamp(ly + s->lut.bu[U]);
}

static void hfill_yuv_cols(const struct yuv_src *s, const uint8_t *yrow, int i0, int n,
                           float (*out)[TILE])
{
    const struct yuv_cols *t = s->cols;
    for (int i = i0; i < n; i++) {
        float a[3], b[3];
        row_pixel(s, yrow, t->x[0][i], t->c0[0][i], t->c1[0][i], t->fx[0][i], a);
        row_pixel(s, yrow, t->x[1][i], t->c0[1][i], t->c1[1][i], t->fx[1][i], b);
        for (int c = 0; c < 3; c++)
            out[c][i] = a[c] * t->l0[i] + b[c] * t->l1[i];
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define PRE_AVX2 1

/* row_pixel for 8 taps at once, the same integer arithmetic: luma and
 * both chroma taps read with gathers, the tables with gathers. A luma
 * gather reads 4 bytes, so it starts at most at w - 4 and shifts the byte
 * down: nothing outside the row is read. Chroma pairs (c0, c0 + 1) come
 * in one 32-bit read; c1 is c0 or c0 + 1 (mms_yuv_taps). */
__attribute__((target("avx2"))) static inline void
tap8(const struct yuv_src *s, const uint8_t *yrow, int w, const int32_t *xs, const int32_t *c0s,
     const int32_t *c1s, const int32_t *fxs, __m256 rgb[3])
{
    const __m256i x = _mm256_loadu_si256((const __m256i *)xs);
    const __m256i xc = _mm256_min_epi32(x, _mm256_set1_epi32(w - 4));
    const __m256i sh = _mm256_slli_epi32(_mm256_sub_epi32(x, xc), 3);
    const __m256i byte = _mm256_set1_epi32(0xff), word = _mm256_set1_epi32(0xffff);
    __m256i Y = _mm256_i32gather_epi32((const int *)yrow, xc, 1);
    Y = _mm256_and_si256(_mm256_srlv_epi32(Y, sh), byte);

    const __m256i c0 = _mm256_loadu_si256((const __m256i *)c0s);
    const __m256i same = _mm256_cmpeq_epi32(c0, _mm256_loadu_si256((const __m256i *)c1s));
    const __m256i fx = _mm256_loadu_si256((const __m256i *)fxs);
    const __m256i gx = _mm256_sub_epi32(_mm256_set1_epi32(4), fx);
    const __m256i eight = _mm256_set1_epi32(8);
    __m256i ch[2];
    const uint16_t *planes[2] = {s->cu, s->cv};
    for (int p = 0; p < 2; p++) {
        __m256i g = _mm256_i32gather_epi32((const int *)planes[p], c0, 2);
        __m256i lo = _mm256_and_si256(g, word);
        __m256i hi = _mm256_blendv_epi8(_mm256_srli_epi32(g, 16), lo, same);
        __m256i v = _mm256_add_epi32(_mm256_mullo_epi32(lo, gx), _mm256_mullo_epi32(hi, fx));
        ch[p] = _mm256_srai_epi32(_mm256_add_epi32(v, eight), 4);
    }
    const __m256i U = ch[0], V = ch[1];
    const __m256i ly = _mm256_i32gather_epi32(s->lut.y, Y, 4);
    __m256i v[3];
    v[0] = _mm256_add_epi32(ly, _mm256_i32gather_epi32(s->lut.rv, V, 4));
    v[1] = _mm256_add_epi32(_mm256_add_epi32(ly, _mm256_i32gather_epi32(s->lut.gu, U, 4)),
                            _mm256_i32gather_epi32(s->lut.gv, V, 4));
    v[2] = _mm256_add_epi32(ly, _mm256_i32gather_epi32(s->lut.bu, U, 4));
    const __m256i half = _mm256_set1_epi32(32768), zero = _mm256_setzero_si256();
    for (int c = 0; c < 3; c++) {
        __m256i q = _mm256_srai_epi32(_mm256_add_epi32(v[c], half), 16);
        q = _mm256_min_epi32(_mm256_max_epi32(q, zero), byte);
        rgb[c] = _mm256_cvtepi32_ps(q);
    }
}

/* Multiplies and adds kept apart: the scalar path's rounding, bit for bit
 * (C11 mode does not contract them into FMAs). */
__attribute__((target("avx2"))) static int
hfill_yuv_avx2(const struct yuv_src *s, const uint8_t *yrow, int n, float (*out)[TILE])
{
    const struct yuv_cols *t = s->cols;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a[3], b[3];
        tap8(s, yrow, s->f->w, t->x[0] + i, t->c0[0] + i, t->c1[0] + i, t->fx[0] + i, a);
        tap8(s, yrow, s->f->w, t->x[1] + i, t->c0[1] + i, t->c1[1] + i, t->fx[1] + i, b);
        const __m256 l0 = _mm256_loadu_ps(t->l0 + i), l1 = _mm256_loadu_ps(t->l1 + i);
        for (int c = 0; c < 3; c++)
            _mm256_storeu_ps(out[c] + i,
                             _mm256_add_ps(_mm256_mul_ps(a[c], l0), _mm256_mul_ps(b[c], l1)));
    }
    return i;
}

#endif

/* Converts only the source pixels the tile's output columns read: at 720p
 * to 288x512 that is fewer conversions than the frame has pixels. */
static void hfill_yuv(const void *src, int row, int x0, const struct lin *tab, int n,
                      float (*out)[TILE])
{
    const struct yuv_src *s = src;
    yuv_cols_update(s, s->cols, x0, tab, n);
    blend_chroma_row(s, row, s->cols->c0[0][0], s->cols->c1[1][n - 1]);
    const uint8_t *yrow = s->f->plane[0] + (long)row * s->f->stride[0];
    int done = 0;
#ifdef PRE_AVX2
    if (s->f->w >= 4 && mms_cpu_avx2())
        done = hfill_yuv_avx2(s, yrow, n, out);
#endif
    hfill_yuv_cols(s, yrow, done, n, out);
}

void mms_pre_yuv(const struct mms_yuv *f, float *dst, int dh, int dw, const float mean[3],
                 const float std[3])
{
    if (f->w <= 0 || f->h <= 0 || dw <= 0 || dh <= 0)
        return;
    uint16_t cu[CHROMA_MAX + 1], cv[CHROMA_MAX + 1];
    struct yuv_cols cols = {.n = -1};
    struct yuv_src src = {.f = f, .cu = cu, .cv = cv, .cols = &cols};
    mms_yuv_lut_init(&src.lut, f->matrix, f->full_range);
    src.subx = f->layout != MMS_YUV_444P;
    src.suby = f->layout == MMS_YUV_420P || f->layout == MMS_YUV_NV12;
    src.cw = (f->w + src.subx) >> src.subx;
    src.ch = (f->h + src.suby) >> src.suby;
    if (f->w == dw && f->h == dh) {
        size_t plane = (size_t)dw * dh;
        for (int y = 0; y < dh; y++)
            for (int x = 0; x < dw; x++) {
                uint8_t px[3];
                mms_yuv_pixel(f, &src.lut, x, y, px);
                for (int c = 0; c < 3; c++)
                    dst[c * plane + (size_t)y * dw + x] = normalise(px[c], mean[c], std[c]);
            }
        return;
    }
    if (src.cw <= CHROMA_MAX) {
        pre_resize(hfill_yuv, &src, f->w, f->h, dst, dh, dw, mean, std);
        return;
    }
    pre_resize(hfill_yuv_any, &src, f->w, f->h, dst, dh, dw, mean, std);
}

/* ---- resize and post ---- */

/* Edge weights are exactly 0, and inf * 0 is NaN: keeping every value
 * finite (NaN reads as the lowest) makes the result finite for any input
 * while leaving ordinary values untouched. FLT_MAX / 4 keeps the weighted
 * sums clear of overflow. */
#define BIG 8.5e37f

static inline float tame(float v)
{
    return v > BIG ? BIG : v >= -BIG ? v : -BIG;
}

struct plane_src {
    const float *p;
    int w;
};

static void hfill_plane(const void *src, int row, int x0, const struct lin *tab, int n,
                        float (*out)[TILE])
{
    (void)x0;
    const struct plane_src *s = src;
    const float *r = s->p + (size_t)row * s->w;
    for (int i = 0; i < n; i++)
        out[0][i] = tame(r[tab[i].i0]) * tab[i].l0 + tame(r[tab[i].i1]) * tab[i].l1;
}

/* Calls emit(ctx, row, x0, values, n) with each resized run of up to TILE
 * values, so the post step never needs the whole resized plane. */
typedef void (*emit_fn)(void *ctx, int y, int x0, const float *v, int n);

static void resize_runs(const float *p, int sh, int sw, int dh, int dw, emit_fn emit,
                        void *ctx)
{
    struct plane_src src = {p, sw};
    struct lin tab[TILE];
    struct rows rows;
    float run[TILE];
    for (int x0 = 0; x0 < dw; x0 += TILE) {
        int n = dw - x0 < TILE ? dw - x0 : TILE;
        lin_table(tab, x0, n, sw, dw);
        rows.src[0] = rows.src[1] = -1;
        for (int y = 0; y < dh; y++) {
            struct lin ly = lin_at(y, sh, dh);
            float (*r0)[TILE], (*r1)[TILE];
            rows_get(&rows, &ly, hfill_plane, &src, x0, tab, n, &r0, &r1);
            for (int i = 0; i < n; i++)
                run[i] = r0[0][i] * ly.l0 + r1[0][i] * ly.l1;
            emit(ctx, y, x0, run, n);
        }
    }
}

struct plane_out {
    float *dst;
    int dw;
};

static void emit_plane(void *ctx, int y, int x0, const float *v, int n)
{
    struct plane_out *p = ctx;
    float *o = p->dst + (size_t)y * p->dw + x0;
    for (int i = 0; i < n; i++)
        o[i] = v[i];
}

void mms_resize_plane(const float *src, int sh, int sw, float *dst, int dh, int dw)
{
    if (sh <= 0 || sw <= 0 || dh <= 0 || dw <= 0)
        return;
    struct plane_out p = {dst, dw};
    resize_runs(src, sh, sw, dh, dw, emit_plane, &p);
}

/* The largest float not above log(t / (1 - t)): for a float logit l,
 * l > cut in float is then exactly l > log(t / (1 - t)) in real numbers,
 * i.e. sigmoid(l) > t. */
static float logit_cut(float t)
{
    if (isnan(t) || t >= 1.0f)
        return INFINITY; /* sigmoid(l) > t never holds */
    if (t <= 0.0f)
        return -INFINITY;
    double cut = log((double)t / (1.0 - (double)t));
    float f = (float)cut;
    if ((double)f > cut)
        f = nextafterf(f, -INFINITY);
    return f;
}

struct mask_out {
    uint8_t *mask;
    int stride;
    float cut;
};

static void emit_mask(void *ctx, int y, int x0, const float *v, int n)
{
    struct mask_out *m = ctx;
    uint8_t *o = m->mask + (size_t)y * m->stride + x0;
    for (int i = 0; i < n; i++)
        o[i] = v[i] > m->cut ? 255 : 0;
}

void mms_post_mask(const float *logits, int lh, int lw, uint8_t *mask, int w,
                   int h, int stride, float threshold)
{
    if (lh <= 0 || lw <= 0 || w <= 0 || h <= 0)
        return;
    struct mask_out m = {mask, stride, logit_cut(threshold)};
    if (lh == h && lw == w) {
        for (int y = 0; y < h; y++)
            emit_mask(&m, y, 0, logits + (size_t)y * lw, lw);
        return;
    }
    resize_runs(logits, lh, lw, h, w, emit_mask, &m);
}
