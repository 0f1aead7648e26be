#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/frame.h>

#include "harness.h"
#include "io/image.h"
#include "io/synth.h"

#define W 320
#define H 180

static AVFrame *new_frame(int w, int h)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        return NULL;
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    if (av_frame_get_buffer(f, 0) < 0)
        av_frame_free(&f);
    return f;
}

static int same_picture(const AVFrame *a, const AVFrame *b)
{
    for (int p = 0; p < 3; p++) {
        int w = p ? a->width / 2 : a->width, h = p ? a->height / 2 : a->height;
        for (int y = 0; y < h; y++)
            if (memcmp(a->data[p] + y * a->linesize[p], b->data[p] + y * b->linesize[p], w))
                return 0;
    }
    return 1;
}

static struct mms_synth *make(uint32_t seed)
{
    struct mms_synth *s = NULL;
    struct mms_err err = {{0}};
    int ret = mms_synth_create(W, H, seed, 25, &s, &err);
    CHECK_MSG(ret == 0 && s, "%s", err.msg);
    return s;
}

/* Same seed, same frame, in whatever order frames are asked for. */
static void test_deterministic(void)
{
    struct mms_synth *a = make(42), *b = make(42), *c = make(43);
    AVFrame *fa = new_frame(W, H), *fb = new_frame(W, H), *fc = new_frame(W, H);
    uint8_t *ma = malloc(W * H), *mb = malloc(W * H);
    if (!a || !b || !c || !fa || !fb || !fc || !ma || !mb)
        goto done;
    CHECK(mms_synth_frame(a, 17, fa, ma, W) == 0);
    CHECK(mms_synth_frame(b, 3, fb, mb, W) == 0);
    CHECK(mms_synth_frame(b, 17, fb, mb, W) == 0);
    CHECK(same_picture(fa, fb));
    CHECK(!memcmp(ma, mb, W * H));
    CHECK(mms_synth_frame(c, 17, fc, NULL, 0) == 0);
    CHECK(!same_picture(fa, fc));
    /* Things move. */
    CHECK(mms_synth_frame(b, 30, fb, mb, W) == 0);
    CHECK(!same_picture(fa, fb));
    CHECK(memcmp(ma, mb, W * H));
done:
    free(ma);
    free(mb);
    av_frame_free(&fa);
    av_frame_free(&fb);
    av_frame_free(&fc);
    mms_synth_free(a);
    mms_synth_free(b);
    mms_synth_free(c);
}

/* The mask: present, inside the scope, and over grey pixels. */
static void check_frame(const struct mms_synth *s, const AVFrame *f, const uint8_t *m,
                        int index)
{
    const struct mms_synth_info *in = mms_synth_info(s);
    long tool = 0, outside = 0, other = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t v = m[y * W + x];
            double dx = x + 0.5 - in->cx, dy = y + 0.5 - in->cy;
            if (v == 255) {
                tool++;
                outside += dx * dx + dy * dy >= in->radius * in->radius;
            } else {
                other += v != 0;
            }
        }
    CHECK_MSG(tool > W * H / 200, "frame %d: %ld tool pixels", index, tool);
    CHECK_MSG(tool < W * H / 2, "frame %d: %ld tool pixels", index, tool);
    CHECK_MSG(!outside, "frame %d: %ld tool pixels outside the scope", index, outside);
    CHECK_MSG(!other, "frame %d: %ld mask values not 0 or 255", index, other);

    /* Chroma samples whose four pixels are all tool are neutral grey;
     * tissue well inside the scope is red. */
    long grey = 0, not_grey = 0, red = 0, tissue = 0;
    for (int y = 0; y < H / 2; y++)
        for (int x = 0; x < W / 2; x++) {
            const uint8_t *r0 = m + 2 * y * W + 2 * x, *r1 = r0 + W;
            int n = (r0[0] + r0[1] + r1[0] + r1[1]) / 255;
            int u = f->data[1][y * f->linesize[1] + x], v = f->data[2][y * f->linesize[2] + x];
            double dx = 2 * x + 1 - in->cx, dy = 2 * y + 1 - in->cy;
            if (n == 4) {
                grey++;
                not_grey += abs(u - 128) > 2 || abs(v - 128) > 2;
            } else if (n == 0 && dx * dx + dy * dy < 0.6 * in->radius * in->radius) {
                tissue++;
                red += v > 140;
            }
        }
    CHECK(grey > 0);
    CHECK_MSG(!not_grey, "frame %d: %ld of %ld tool chroma samples not grey", index,
              not_grey, grey);
    CHECK_MSG(red > tissue * 9 / 10, "frame %d: only %ld of %ld tissue samples red", index,
              red, tissue);
    /* Black outside the scope. */
    CHECK(f->data[0][0] <= 20 && f->data[1][0] == 128);
}

static void test_mask(void)
{
    for (uint32_t seed = 1; seed <= 6; seed++) {
        struct mms_synth *s = make(seed);
        AVFrame *f = new_frame(W, H);
        uint8_t *m = malloc(W * H);
        if (s && f && m) {
            int tools = mms_synth_info(s)->tools;
            CHECK(tools == 1 || tools == 2);
            for (int i = 0; i < 300; i += 37) {
                CHECK(mms_synth_frame(s, i, f, m, W) == 0);
                check_frame(s, f, m, i);
            }
        }
        free(m);
        av_frame_free(&f);
        mms_synth_free(s);
    }
}

static void test_refusals(void)
{
    struct mms_synth *s = NULL;
    struct mms_err err = {{0}};
    CHECK(mms_synth_create(321, 180, 1, 25, &s, &err) == -EINVAL && !s);
    CHECK(strstr(err.msg, "321x180") != NULL);
    CHECK(mms_synth_create(16, 16, 1, 25, &s, &err) == -EINVAL && !s);
    CHECK(mms_synth_create(W, H, 1, -1, &s, &err) == -EINVAL && !s);
    s = make(1);
    AVFrame *wrong = new_frame(W / 2, H / 2);
    if (s && wrong) {
        CHECK(mms_synth_frame(s, 0, wrong, NULL, 0) == -EINVAL);
        wrong->format = AV_PIX_FMT_NV12;
        CHECK(mms_synth_frame(s, 0, wrong, NULL, 0) == -EINVAL);
    }
    av_frame_free(&wrong);
    mms_synth_free(s);
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Reported, not enforced: a loaded machine or a sanitizer build is slow. */
static void test_speed(void)
{
    struct mms_synth *s = NULL;
    struct mms_err err = {{0}};
    double t0 = now();
    CHECK_MSG(mms_synth_create(1280, 720, 1, 25, &s, &err) == 0, "%s", err.msg);
    double t1 = now();
    AVFrame *f = new_frame(1280, 720);
    uint8_t *m = malloc(1280 * 720);
    int n = 50;
    if (s && f && m) {
        for (int i = 0; i < n; i++)
            CHECK(mms_synth_frame(s, i, f, m, 1280) == 0);
        printf("synth 1280x720: create %.2f s, %.0f frames/s\n", t1 - t0, n / (now() - t1));
    }
    free(m);
    av_frame_free(&f);
    mms_synth_free(s);
}

/* Errors reach the checks through mms_err, as they reach the CLI's user;
 * FFmpeg's own complaints about the damage done on purpose are noise. */
__attribute__((constructor)) static void quiet(void)
{
    mms_image_quiet(1);
}

MMS_TESTS(T(test_deterministic), T(test_mask), T(test_refusals), T(test_speed))
