#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/prepost.h"
#include "harness.h"

static const float mean0[3] = {0, 0, 0};
static const float std1[3] = {1, 1, 1};
static const float mean_i[3] = {0.485f, 0.456f, 0.406f};
static const float std_i[3] = {0.229f, 0.224f, 0.225f};

static uint32_t rng = 12345;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static float norm(int v, int c, const float *mean, const float *std)
{
    return ((float)v / 255.0f - mean[c]) / std[c];
}

static int close_to(float a, float b, float tol)
{
    return fabsf(a - b) <= tol * (1.0f + fabsf(b));
}

static void identity_is_exact_normalise(void)
{
    enum { W = 37, H = 11, STRIDE = 3 * W + 5 };
    static uint8_t rgb[H * STRIDE];
    static float out[3 * H * W];
    for (size_t i = 0; i < sizeof(rgb); i++)
        rgb[i] = (uint8_t)next();
    mms_pre_rgb24(rgb, W, H, STRIDE, out, H, W, mean_i, std_i);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                bad += out[(c * H + y) * W + x] !=
                       norm(rgb[y * STRIDE + 3 * x + c], c, mean_i, std_i);
    CHECK_MSG(bad == 0, "%d values differ", bad);
}

static void constant_stays_constant(void)
{
    static const int sizes[][4] = {
        {10, 7, 33, 21}, {64, 48, 13, 9}, {5, 5, 5, 17}, {300, 2, 1, 1}, {1, 1, 40, 30},
        {640, 360, 512, 288},
    };
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int w = sizes[s][0], h = sizes[s][1], dw = sizes[s][2], dh = sizes[s][3];
        uint8_t *rgb = malloc((size_t)3 * w * h);
        float *out = malloc(sizeof(float) * 3 * dw * dh);
        for (int i = 0; i < w * h; i++) {
            rgb[3 * i] = 17;
            rgb[3 * i + 1] = 128;
            rgb[3 * i + 2] = 255;
        }
        mms_pre_rgb24(rgb, w, h, 3 * w, out, dh, dw, mean_i, std_i);
        int bad = 0;
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < dw * dh; i++)
                bad += !close_to(out[c * dw * dh + i],
                                 norm(c == 0 ? 17 : c == 1 ? 128 : 255, c, mean_i, std_i),
                                 1e-6f);
        CHECK_MSG(bad == 0, "%dx%d -> %dx%d: %d values off", w, h, dw, dh, bad);
        free(rgb);
        free(out);
    }
}

/*
 * Derived by hand from PyTorch's rule (src = (dst + 0.5) * in / out - 0.5,
 * clamped at 0; the right neighbour clamped to the last index).
 * 2 -> 4: scale 0.5; dst 0: src -0.25 -> 0, weights (1, 0); dst 1: 0.25
 * -> (0.75, 0.25); dst 2: 0.75 -> (0.25, 0.75); dst 3: 1.25 -> index 1,
 * the last, so only b. [a, b] -> [a, .75a + .25b, .25a + .75b, b], per
 * axis. For [[1, 2], [3, 4]] rows become [1, 1.25, 1.75, 2] and
 * [3, 3.25, 3.75, 4], then columns mix them the same way. All weights are
 * dyadic, so the float results are exact.
 */
static void upsample_2x2_matches_pytorch(void)
{
    const float in[4] = {1, 2, 3, 4};
    const float want[16] = {
        1.0f, 1.25f, 1.75f, 2.0f,
        1.5f, 1.75f, 2.25f, 2.5f,
        2.5f, 2.75f, 3.25f, 3.5f,
        3.0f, 3.25f, 3.75f, 4.0f,
    };
    float out[16];
    mms_resize_plane(in, 2, 2, out, 4, 4);
    for (int i = 0; i < 16; i++)
        CHECK_MSG(out[i] == want[i], "[%d] %g != %g", i, out[i], want[i]);

    /* The same through pre: 8-bit values, mean 0, std 1. */
    const uint8_t rgb[12] = {10, 20, 30, 50, 60, 70, 90, 100, 110, 130, 140, 150};
    float p[3 * 16];
    mms_pre_rgb24(rgb, 2, 2, 6, p, 4, 4, mean0, std1);
    for (int c = 0; c < 3; c++) {
        float a = rgb[c], b = rgb[3 + c], d = rgb[6 + c], e = rgb[9 + c];
        float row0[4] = {a, .75f * a + .25f * b, .25f * a + .75f * b, b};
        float row1[4] = {d, .75f * d + .25f * e, .25f * d + .75f * e, e};
        float wy[4][2] = {{1, 0}, {.75f, .25f}, {.25f, .75f}, {0, 1}};
        for (int y = 0; y < 4; y++)
            for (int x = 0; x < 4; x++) {
                float v = row0[x] * wy[y][0] + row1[x] * wy[y][1];
                CHECK_MSG(close_to(p[c * 16 + y * 4 + x], v / 255.0f, 1e-6f),
                          "c%d (%d,%d) %g != %g", c, x, y, p[c * 16 + y * 4 + x],
                          v / 255.0f);
            }
    }
}

/*
 * 3 -> 2: scale 1.5; dst 0: src 0.25 -> (0.75, 0.25) of [0], [1]; dst 1:
 * src 1.75 -> (0.25, 0.75) of [1], [2]. [4, 8, 16] -> [5, 14].
 */
static void downsample_3_to_2(void)
{
    const float in[3] = {4, 8, 16};
    float out[2];
    mms_resize_plane(in, 1, 3, out, 1, 2);
    CHECK_MSG(out[0] == 5.0f && out[1] == 14.0f, "%g %g", out[0], out[1]);
    mms_resize_plane(in, 3, 1, out, 2, 1);
    CHECK_MSG(out[0] == 5.0f && out[1] == 14.0f, "%g %g", out[0], out[1]);
}

static void split_survives_downscale(void)
{
    enum { W = 640, H = 360, DW = 160, DH = 90 };
    uint8_t *rgb = malloc(3 * W * H);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            memset(rgb + 3 * (y * W + x), x < W / 2 ? 0 : 255, 3);
    float *out = malloc(sizeof(float) * 3 * DW * DH);
    mms_pre_rgb24(rgb, W, H, 3 * W, out, DH, DW, mean0, std1);
    int bad = 0;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < DH; y++)
            for (int x = 0; x < DW; x++)
                bad += out[(c * DH + y) * DW + x] != (x < DW / 2 ? 0.0f : 1.0f);
    CHECK_MSG(bad == 0, "%d values cross the split", bad);
    free(rgb);
    free(out);
}

static void threshold_half_is_logit_positive(void)
{
    enum { W = 53, H = 17, STRIDE = 60 };
    float logits[W * H];
    for (int i = 0; i < W * H; i++)
        logits[i] = ((float)(next() % 20001) - 10000.0f) / 1000.0f;
    logits[0] = 0.0f;
    logits[1] = -0.0f;
    logits[2] = FLT_MIN;
    logits[3] = -FLT_MIN;
    uint8_t mask[H * STRIDE];
    memset(mask, 7, sizeof(mask));
    mms_post_mask(logits, H, W, mask, W, H, STRIDE, 0.5f);
    int bad = 0, pad = 0;
    for (int y = 0; y < H; y++) {
        for (int x = 0; x < W; x++)
            bad += mask[y * STRIDE + x] != (logits[y * W + x] > 0 ? 255 : 0);
        for (int x = W; x < STRIDE; x++)
            pad += mask[y * STRIDE + x] != 7;
    }
    CHECK_MSG(bad == 0, "%d pixels differ from logit > 0", bad);
    CHECK_MSG(pad == 0, "%d padding bytes written", pad);
}

/* sigmoid(l) > t, decided in double, for logits around each cut. */
static void threshold_matches_sigmoid(void)
{
    const float ts[] = {0.1f, 0.3f, 0.5f, 0.7f, 0.9f, 0.999f};
    for (size_t k = 0; k < sizeof(ts) / sizeof(ts[0]); k++) {
        float t = ts[k];
        float cut = (float)log(t / (1.0 - t));
        float l[64];
        float v = cut;
        for (int i = 0; i < 32; i++)
            v = nextafterf(v, -INFINITY);
        for (int i = 0; i < 64; i++, v = nextafterf(v, INFINITY))
            l[i] = v;
        uint8_t m[64];
        mms_post_mask(l, 1, 64, m, 64, 1, 64, t);
        int bad = 0;
        for (int i = 0; i < 64; i++) {
            /* 1 / (1 + e^-l) > t  <=>  l > -log(1/t - 1), in long double
             * so the reference is finer than any float step. */
            long double cut_l = -logl(1.0L / (long double)t - 1.0L);
            bad += m[i] != ((long double)l[i] > cut_l ? 255 : 0);
        }
        CHECK_MSG(bad == 0, "t=%g: %d logits decided differently", t, bad);
    }
}

static void split_survives_mask_upscale(void)
{
    const float logits[4] = {-1, 1, -1, 1};
    uint8_t m[8 * 6];
    mms_post_mask(logits, 2, 2, m, 8, 6, 8, 0.5f);
    int bad = 0;
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 8; x++)
            bad += m[y * 8 + x] != (x < 4 ? 0 : 255);
    CHECK_MSG(bad == 0, "%d pixels off the split", bad);
}

static void extremes_make_no_nan(void)
{
    const float specials[] = {INFINITY, -INFINITY, NAN, FLT_MAX, -FLT_MAX,
                              FLT_MIN, 1e30f, -1e30f, 0.0f};
    enum { N = sizeof(specials) / sizeof(specials[0]) };
    float in[N * N];
    for (int y = 0; y < N; y++)
        for (int x = 0; x < N; x++)
            in[y * N + x] = specials[(x + 3 * y) % N];
    static const int sizes[][2] = {{N, 2 * N}, {2 * N + 1, N}, {3, 4}, {1, 1}, {40, 7}};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        int dh = sizes[s][0], dw = sizes[s][1];
        float *out = malloc(sizeof(float) * dh * dw);
        mms_resize_plane(in, N, N, out, dh, dw);
        int bad = 0;
        for (int i = 0; i < dh * dw; i++)
            bad += !isfinite(out[i]);
        CHECK_MSG(bad == 0, "%dx%d: %d non-finite values", dw, dh, bad);
        free(out);
    }

    const float ts[] = {0.5f, 0.0f, 1.0f, -1.0f, 2.0f, 1e-30f, 0.99999994f, NAN};
    uint8_t m[30 * 20];
    for (size_t k = 0; k < sizeof(ts) / sizeof(ts[0]); k++) {
        mms_post_mask(in, N, N, m, 30, 20, 30, ts[k]);
        int bad = 0;
        for (int i = 0; i < 30 * 20; i++)
            bad += m[i] != 0 && m[i] != 255;
        CHECK_MSG(bad == 0, "t=%g: %d bytes not 0/255", ts[k], bad);
    }
    /* A probability threshold at or past the ends decides every pixel. */
    const float two[2] = {-50.0f, 50.0f};
    mms_post_mask(two, 1, 2, m, 2, 1, 2, 0.0f);
    CHECK(m[0] == 255 && m[1] == 255);
    mms_post_mask(two, 1, 2, m, 2, 1, 2, 1.0f);
    CHECK(m[0] == 0 && m[1] == 0);

    /* Extreme normalisation still gives finite input values. */
    const uint8_t px[6] = {0, 255, 128, 255, 0, 1};
    const float tiny_std[3] = {1e-6f, 1e-6f, 1e-6f};
    const float big_mean[3] = {1e6f, -1e6f, 0};
    float p[3 * 12];
    mms_pre_rgb24(px, 2, 1, 6, p, 3, 4, big_mean, tiny_std);
    int bad = 0;
    for (int i = 0; i < 36; i++)
        bad += !isfinite(p[i]);
    CHECK_MSG(bad == 0, "%d non-finite inputs", bad);
}

static void degenerate_sizes_do_nothing(void)
{
    float in[4] = {1, 2, 3, 4}, out[4] = {9, 9, 9, 9};
    mms_resize_plane(in, 0, 2, out, 2, 2);
    mms_resize_plane(in, 2, 2, out, 0, 2);
    uint8_t m[4] = {7, 7, 7, 7};
    mms_post_mask(in, 2, 2, m, 0, 2, 2, 0.5f);
    CHECK(out[0] == 9 && out[3] == 9 && m[0] == 7);
}

MMS_TESTS(T(identity_is_exact_normalise), T(constant_stays_constant),
          T(upsample_2x2_matches_pytorch), T(downsample_3_to_2),
          T(split_survives_downscale), T(threshold_half_is_logit_positive),
          T(threshold_matches_sigmoid), T(split_survives_mask_upscale),
          T(extremes_make_no_nan), T(degenerate_sizes_do_nothing))
