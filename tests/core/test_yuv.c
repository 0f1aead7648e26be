#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cpu.h"
#include "core/prepost.h"
#include "core/yuv.h"
#include "harness.h"

/* A w x h 4:2:0 (or 4:2:2 / 4:4:4) frame with constant planes. */
struct frame {
    uint8_t y[64 * 64], u[64 * 64], v[64 * 64];
    struct mms_yuv f;
};

static void frame_init(struct frame *fr, int w, int h, enum mms_yuv_layout l, int Y, int U,
                       int V)
{
    memset(fr->y, Y, sizeof(fr->y));
    memset(fr->u, U, sizeof(fr->u));
    memset(fr->v, V, sizeof(fr->v));
    fr->f = (struct mms_yuv){.plane = {fr->y, fr->u, fr->v}, .stride = {64, 64, 64}, .w = w,
                             .h = h, .layout = l, .matrix = MMS_YUV_BT601};
}

static void pixel(const struct mms_yuv *f, int x, int y, uint8_t rgb[3])
{
    struct mms_yuv_lut l;
    mms_yuv_lut_init(&l, f->matrix, f->full_range);
    mms_yuv_pixel(f, &l, x, y, rgb);
}

static int near(int a, int b, int tol)
{
    return abs(a - b) <= tol;
}

static void limited_range_white_and_black_reach_the_ends(void)
{
    struct frame fr;
    uint8_t rgb[3];
    frame_init(&fr, 8, 8, MMS_YUV_420P, 235, 128, 128);
    pixel(&fr.f, 3, 3, rgb);
    CHECK(rgb[0] == 255 && rgb[1] == 255 && rgb[2] == 255);
    frame_init(&fr, 8, 8, MMS_YUV_420P, 16, 128, 128);
    pixel(&fr.f, 3, 3, rgb);
    CHECK(rgb[0] == 0 && rgb[1] == 0 && rgb[2] == 0);
}

static void full_range_keeps_luma_as_is(void)
{
    struct frame fr;
    uint8_t rgb[3];
    frame_init(&fr, 8, 8, MMS_YUV_420P, 100, 128, 128);
    fr.f.full_range = 1;
    pixel(&fr.f, 0, 0, rgb);
    CHECK(rgb[0] == 100 && rgb[1] == 100 && rgb[2] == 100);
    fr.f.full_range = 0;
    pixel(&fr.f, 0, 0, rgb);
    CHECK_EQ(rgb[0], 98); /* (100 - 16) * 255 / 219 = 97.8 */
}

static void bt709_red_is_red(void)
{
    /* BT.709 limited-range 100 % red: Y 63, Cb 102, Cr 240. */
    struct frame fr;
    uint8_t rgb[3];
    frame_init(&fr, 8, 8, MMS_YUV_444P, 63, 102, 240);
    fr.f.matrix = MMS_YUV_BT709;
    pixel(&fr.f, 1, 1, rgb);
    CHECK_MSG(near(rgb[0], 255, 1) && near(rgb[1], 0, 1) && near(rgb[2], 0, 1), "%d %d %d",
              rgb[0], rgb[1], rgb[2]);
}

static void the_matrix_changes_colours(void)
{
    struct frame fr;
    uint8_t a[3], b[3];
    frame_init(&fr, 8, 8, MMS_YUV_444P, 126, 60, 190);
    fr.f.matrix = MMS_YUV_BT709;
    pixel(&fr.f, 0, 0, a);
    fr.f.matrix = MMS_YUV_BT601;
    pixel(&fr.f, 0, 0, b);
    /* R = Y + 2 (1 - Kr) Cr: 239 with BT.709's Kr, 227 with BT.601's */
    CHECK_MSG(near(a[0], 239, 1) && near(b[0], 227, 1), "%d %d", a[0], b[0]);
}

static void unknown_matrix_reads_as_bt601(void)
{
    struct frame fr;
    uint8_t a[3], b[3];
    frame_init(&fr, 8, 8, MMS_YUV_444P, 90, 60, 200);
    pixel(&fr.f, 0, 0, a);
    fr.f.matrix = (enum mms_yuv_matrix)99;
    pixel(&fr.f, 0, 0, b);
    CHECK(!memcmp(a, b, 3));
}

static void extreme_values_clamp(void)
{
    struct frame fr;
    uint8_t rgb[3];
    frame_init(&fr, 8, 8, MMS_YUV_444P, 255, 255, 255);
    pixel(&fr.f, 0, 0, rgb);
    CHECK(rgb[0] == 255 && rgb[2] == 255);
    frame_init(&fr, 8, 8, MMS_YUV_444P, 0, 0, 0);
    pixel(&fr.f, 0, 0, rgb);
    CHECK(rgb[0] == 0 && rgb[2] == 0);
}

/* Cb varies by column; the chroma read at each luma column shows the
 * interpolation weights of the siting. */
static int cb_at(struct frame *fr, int x)
{
    /* Blue minus luma is proportional to Cb - 128 with full-range grey
     * luma; read it back through the blue channel. */
    uint8_t rgb[3];
    pixel(&fr->f, x, 0, rgb);
    return rgb[2];
}

static void centred_chroma_blends_three_to_one(void)
{
    struct frame fr;
    frame_init(&fr, 8, 2, MMS_YUV_422P, 128, 128, 128);
    fr.f.full_range = 1;
    fr.f.site_x = 1;
    fr.u[0] = 128; /* chroma column 0 */
    fr.u[1] = 160; /* chroma column 1 */
    fr.u[2] = 160;
    fr.u[3] = 160;
    /* luma 1: 3/4 of column 0 + 1/4 of column 1 = 136; luma 2: the reverse = 152 */
    int b1 = cb_at(&fr, 1), b2 = cb_at(&fr, 2), b0 = cb_at(&fr, 0);
    CHECK_EQ(b0, 128);            /* edge: column 0 only */
    CHECK_EQ(b1, 128 + 14);       /* 1.772 * 8 = 14.2 */
    CHECK_EQ(b2, 128 + 43);       /* 1.772 * 24 = 42.5 */
}

static void cosited_chroma_is_exact_on_even_columns(void)
{
    struct frame fr;
    frame_init(&fr, 8, 2, MMS_YUV_422P, 128, 128, 128);
    fr.f.full_range = 1;
    fr.f.site_x = 0;
    fr.u[1] = 160;
    fr.u[2] = 160;
    fr.u[3] = 160;
    CHECK_EQ(cb_at(&fr, 0), 128);
    CHECK_EQ(cb_at(&fr, 1), 128 + 28); /* midway: Cb 144, 1.772 * 16 = 28.4 */
    CHECK_EQ(cb_at(&fr, 2), 128 + 57); /* 1.772 * 32 = 56.7 */
}

static void nv12_reads_like_planar(void)
{
    enum { W = 10, H = 6 };
    struct frame a;
    frame_init(&a, W, H, MMS_YUV_420P, 0, 0, 0);
    static uint8_t uv[64 * 64];
    uint32_t r = 7;
    for (int i = 0; i < 64 * 64; i++) {
        r = r * 1103515245u + 12345u;
        a.y[i] = (uint8_t)(r >> 16);
        a.u[i] = (uint8_t)(r >> 8);
        a.v[i] = (uint8_t)(r >> 24);
    }
    for (int y = 0; y < H / 2; y++)
        for (int x = 0; x < W / 2; x++) {
            uv[y * 64 + 2 * x] = a.u[y * 64 + x];
            uv[y * 64 + 2 * x + 1] = a.v[y * 64 + x];
        }
    struct mms_yuv b = a.f;
    b.layout = MMS_YUV_NV12;
    b.plane[1] = uv;
    b.plane[2] = NULL;
    static uint8_t pa[W * H * 3], pb[W * H * 3];
    mms_yuv_to_rgb24(&a.f, pa, 3 * W);
    mms_yuv_to_rgb24(&b, pb, 3 * W);
    CHECK(!memcmp(pa, pb, sizeof(pa)));
}

/* The fused pass is the conversion followed by the still-image resize,
 * bit for bit, at the frame size and resized, odd sizes included. */
static void fused_pass_equals_convert_then_resize(void)
{
    static const int sizes[][4] = {{33, 17, 16, 9}, {33, 17, 33, 17}, {20, 10, 47, 23}};
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int w = sizes[s][0], h = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
        struct frame fr;
        frame_init(&fr, w, h, MMS_YUV_420P, 0, 0, 0);
        uint32_t r = 99;
        for (int i = 0; i < 64 * 64; i++) {
            r = r * 1664525u + 1013904223u;
            fr.y[i] = (uint8_t)(r >> 24);
            fr.u[i] = (uint8_t)(r >> 16);
            fr.v[i] = (uint8_t)(r >> 8);
        }
        fr.f.matrix = MMS_YUV_BT709;
        uint8_t *rgb = malloc((size_t)3 * w * h);
        float *a = malloc(sizeof(float) * 3 * dw * dh), *b = malloc(sizeof(float) * 3 * dw * dh);
        mms_yuv_to_rgb24(&fr.f, rgb, 3 * w);
        mms_pre_rgb24(rgb, w, h, 3 * w, a, dh, dw, mean, std);
        mms_pre_yuv(&fr.f, b, dh, dw, mean, std);
        CHECK_MSG(!memcmp(a, b, sizeof(float) * 3 * dw * dh), "%dx%d -> %dx%d", w, h, dw, dh);
        free(rgb);
        free(a);
        free(b);
    }
}

/* A random w x h frame in its own tight buffers (stride = width: a luma
 * read past the row's end would leave the buffer and ASan would say so). */
struct big_frame {
    uint8_t *p[3];
    struct mms_yuv f;
};

static void big_frame_init(struct big_frame *b, int w, int h, enum mms_yuv_layout l, int site_x,
                           uint32_t seed)
{
    int subx = l != MMS_YUV_444P, suby = l == MMS_YUV_420P || l == MMS_YUV_NV12;
    int cw = (w + subx) >> subx, ch = (h + suby) >> suby;
    int cstride = l == MMS_YUV_NV12 ? 2 * cw : cw;
    size_t n[3] = {(size_t)w * h, (size_t)cstride * ch, l == MMS_YUV_NV12 ? 0 : (size_t)cw * ch};
    uint32_t r = seed;
    for (int k = 0; k < 3; k++) {
        b->p[k] = n[k] ? malloc(n[k]) : NULL;
        for (size_t i = 0; i < n[k]; i++) {
            r = r * 1664525u + 1013904223u;
            b->p[k][i] = (uint8_t)(r >> 24);
        }
    }
    b->f = (struct mms_yuv){.plane = {b->p[0], b->p[1], b->p[2]}, .stride = {w, cstride, cw},
                            .w = w, .h = h, .layout = l, .matrix = MMS_YUV_BT709,
                            .site_x = site_x, .site_y = 1};
}

static void big_frame_free(struct big_frame *b)
{
    for (int k = 0; k < 3; k++)
        free(b->p[k]);
}

/* The vector path gives the scalar path's floats bit for bit: every layout,
 * both chroma sitings, a 720p frame, odd sizes and frames too narrow for
 * a vector's luma read. On a CPU without AVX2 both runs are scalar. */
static void vector_pass_equals_scalar_pass(void)
{
    static const int sizes[][4] = {{1280, 720, 288, 512}, {1279, 719, 287, 511}, {5, 9, 7, 16},
                                   {3, 4, 6, 17},         {640, 480, 480, 640}};
    static const enum mms_yuv_layout layouts[] = {MMS_YUV_420P, MMS_YUV_NV12, MMS_YUV_422P,
                                                  MMS_YUV_444P};
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        for (size_t l = 0; l < sizeof(layouts) / sizeof(layouts[0]); l++)
            for (int site = 0; site < 2; site++) {
                int w = sizes[s][0], h = sizes[s][1], dh = sizes[s][2], dw = sizes[s][3];
                struct big_frame b;
                big_frame_init(&b, w, h, layouts[l], site, (uint32_t)(s * 8 + l * 2 + site));
                size_t n = (size_t)3 * dw * dh;
                float *vec = malloc(sizeof(float) * n), *sca = malloc(sizeof(float) * n);
                mms_cpu_use_simd(1);
                mms_pre_yuv(&b.f, vec, dh, dw, mean, std);
                mms_cpu_use_simd(0);
                mms_pre_yuv(&b.f, sca, dh, dw, mean, std);
                mms_cpu_use_simd(1);
                CHECK_MSG(!memcmp(vec, sca, sizeof(float) * n), "%dx%d -> %dx%d layout %d site %d",
                          w, h, dw, dh, (int)layouts[l], site);
                free(vec);
                free(sca);
                big_frame_free(&b);
            }
}

/* A frame a few pixels wide enlarged past 500x: several tiles of the
 * network's row then begin on the same source column with the same
 * weights, and each must still read its own columns. */
static void tiny_frame_enlarged_equals_convert_then_resize(void)
{
    static const int sizes[][4] = {{3, 5, 32, 2048}, {5, 3, 32, 2048}, {2, 2, 32, 2048}, {4, 4, 32, 4096}};
    static const enum mms_yuv_layout layouts[] = {MMS_YUV_444P, MMS_YUV_420P, MMS_YUV_NV12};
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
        for (size_t l = 0; l < sizeof(layouts) / sizeof(layouts[0]); l++)
            for (int simd = 0; simd < 2; simd++) {
                int w = sizes[s][0], h = sizes[s][1], dh = sizes[s][2], dw = sizes[s][3];
                struct big_frame b;
                big_frame_init(&b, w, h, layouts[l], 0, (uint32_t)(s * 4 + l + 77));
                size_t n = (size_t)3 * dw * dh;
                uint8_t *rgb = malloc((size_t)3 * w * h);
                float *a = malloc(sizeof(float) * n), *c = malloc(sizeof(float) * n);
                mms_cpu_use_simd(simd);
                mms_yuv_to_rgb24(&b.f, rgb, 3 * w);
                mms_pre_rgb24(rgb, w, h, 3 * w, a, dh, dw, mean, std);
                mms_pre_yuv(&b.f, c, dh, dw, mean, std);
                mms_cpu_use_simd(1);
                CHECK_MSG(!memcmp(a, c, sizeof(float) * n), "%dx%d -> %dx%d layout %d simd %d", w,
                          h, dw, dh, (int)layouts[l], simd);
                free(rgb);
                free(a);
                free(c);
                big_frame_free(&b);
            }
}

/* The same 720p frame through the fused pass and through the still path
 * (convert, then resize) gives the same network input. */
static void fused_pass_equals_convert_then_resize_at_720p(void)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f}, std[3] = {0.229f, 0.224f, 0.225f};
    enum { W = 1280, H = 720, DW = 512, DH = 288 };
    struct big_frame b;
    big_frame_init(&b, W, H, MMS_YUV_420P, 0, 1234);
    uint8_t *rgb = malloc((size_t)3 * W * H);
    float *a = malloc(sizeof(float) * 3 * DW * DH), *c = malloc(sizeof(float) * 3 * DW * DH);
    mms_yuv_to_rgb24(&b.f, rgb, 3 * W);
    mms_pre_rgb24(rgb, W, H, 3 * W, a, DH, DW, mean, std);
    mms_pre_yuv(&b.f, c, DH, DW, mean, std);
    CHECK(!memcmp(a, c, sizeof(float) * 3 * DW * DH));
    free(rgb);
    free(a);
    free(c);
    big_frame_free(&b);
}

static void empty_frame_writes_nothing(void)
{
    struct frame fr;
    frame_init(&fr, 0, 0, MMS_YUV_420P, 0, 0, 0);
    static const float mean[3] = {0}, std[3] = {1, 1, 1};
    float out[12];
    for (int i = 0; i < 12; i++)
        out[i] = -7.0f;
    mms_pre_yuv(&fr.f, out, 2, 2, mean, std);
    int untouched = 1;
    for (int i = 0; i < 12; i++)
        untouched &= out[i] == -7.0f;
    CHECK(untouched);
}

MMS_TESTS(T(tiny_frame_enlarged_equals_convert_then_resize), T(limited_range_white_and_black_reach_the_ends), T(full_range_keeps_luma_as_is),
          T(bt709_red_is_red), T(the_matrix_changes_colours), T(unknown_matrix_reads_as_bt601),
          T(extreme_values_clamp), T(centred_chroma_blends_three_to_one),
          T(cosited_chroma_is_exact_on_even_columns), T(nv12_reads_like_planar),
          T(fused_pass_equals_convert_then_resize), T(vector_pass_equals_scalar_pass),
          T(fused_pass_equals_convert_then_resize_at_720p), T(empty_frame_writes_nothing))
