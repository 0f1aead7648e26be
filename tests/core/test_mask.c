/* core/mask.c: the count, share and box of tool pixels that --meta, the
 * library and the GStreamer element report. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/mask.h"
#include "harness.h"

/* Wider than one 64-byte counting block, with a tail after the last. */
#define W 150
#define H 7

/* Exactly stride x h bytes, so that AddressSanitizer sees a read past them. */
static uint8_t *alloc_mask(int stride, int h, uint8_t v)
{
    uint8_t *m = malloc((size_t)stride * h);
    if (!m)
        abort();
    memset(m, v, (size_t)stride * h);
    return m;
}

static void check_box(const struct mms_mask_stats *st, int x0, int y0, int x1, int y1)
{
    CHECK_EQ(st->x0, x0);
    CHECK_EQ(st->y0, y0);
    CHECK_EQ(st->x1, x1);
    CHECK_EQ(st->y1, y1);
}

static void check_single_pixel(int x, int y)
{
    uint8_t *m = alloc_mask(W, H, 0);
    m[(size_t)y * W + x] = 255;
    struct mms_mask_stats st;
    mms_mask_stats(m, W, H, W, &st);
    CHECK_EQ(st.count, 1);
    CHECK(st.fraction == 1.0 / (W * H));
    check_box(&st, x, y, x, y);
    free(m);
}

/* The straightforward scan the implementation must agree with. */
static void reference(const uint8_t *m, int w, int h, int stride, struct mms_mask_stats *out)
{
    *out = (struct mms_mask_stats){0, 0, -1, -1, -1, -1};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            if (!m[(size_t)y * stride + x])
                continue;
            if (!out->count++) {
                out->x0 = out->x1 = x;
                out->y0 = y;
            }
            out->x0 = x < out->x0 ? x : out->x0;
            out->x1 = x > out->x1 ? x : out->x1;
            out->y1 = y;
        }
    out->fraction = (double)out->count / ((double)w * h);
}

static void test_empty_mask(void)
{
    uint8_t *m = alloc_mask(W, H, 0);
    struct mms_mask_stats st;
    mms_mask_stats(m, W, H, W, &st);
    CHECK_EQ(st.count, 0);
    CHECK(st.fraction == 0);
    check_box(&st, -1, -1, -1, -1);
    free(m);
}

static void test_full_mask(void)
{
    uint8_t *m = alloc_mask(W, H, 255);
    struct mms_mask_stats st;
    mms_mask_stats(m, W, H, W, &st);
    CHECK_EQ(st.count, W * H);
    CHECK(st.fraction == 1);
    check_box(&st, 0, 0, W - 1, H - 1);
    free(m);
}

static void test_top_left_pixel(void) { check_single_pixel(0, 0); }
static void test_top_right_pixel(void) { check_single_pixel(W - 1, 0); }
static void test_bottom_left_pixel(void) { check_single_pixel(0, H - 1); }
static void test_bottom_right_pixel(void) { check_single_pixel(W - 1, H - 1); }

/* Bytes past the width are another picture's, or garbage: not tool. */
static void test_stride_padding_is_ignored(void)
{
    const int stride = W + 37;
    uint8_t *m = alloc_mask(stride, H, 0);
    for (int y = 0; y < H; y++)
        memset(m + (size_t)y * stride + W, 255, stride - W);
    m[(size_t)3 * stride + 5] = 255;
    struct mms_mask_stats st;
    mms_mask_stats(m, W, H, stride, &st);
    CHECK_EQ(st.count, 1);
    check_box(&st, 5, 3, 5, 3);
    free(m);
}

/* Tool is any non-zero byte, not only mms_mask()'s 255. */
static void test_any_nonzero_value_is_tool(void)
{
    static const uint8_t values[] = {1, 2, 127, 128, 254};
    uint8_t *m = alloc_mask(W, H, 0);
    for (int i = 0; i < (int)sizeof(values); i++)
        m[(size_t)(i + 1) * W + 10 * i + 3] = values[i];
    struct mms_mask_stats st;
    mms_mask_stats(m, W, H, W, &st);
    CHECK_EQ(st.count, (int)sizeof(values));
    check_box(&st, 3, 1, 43, 5);
    free(m);
}

/* A later row whose tool lies inside the box so far in one direction and
 * beyond it in the other still widens the box. */
static void test_box_widens_on_later_rows(void)
{
    uint8_t *m = alloc_mask(W, H, 0);
    memset(m + (size_t)1 * W + 60, 255, 10);  /* 60..69 */
    memset(m + (size_t)2 * W + 65, 255, 70);  /* 65..134: right only */
    memset(m + (size_t)4 * W + 20, 255, 50);  /* 20..69: left only */
    memset(m + (size_t)5 * W + 30, 255, 10);  /* inside */
    struct mms_mask_stats st;
    mms_mask_stats(m, W, H, W, &st);
    CHECK_EQ(st.count, 10 + 70 + 50 + 10);
    check_box(&st, 20, 1, 134, 5);
    free(m);
}

/* Random masks at widths around the counting block, against the reference. */
static void test_matches_reference_scan(void)
{
    static const int widths[] = {1, 2, 63, 64, 65, 127, 128, 129, 200};
    uint32_t s = 4242;
    for (size_t i = 0; i < sizeof(widths) / sizeof(*widths); i++) {
        int w = widths[i], h = 9, stride = w + 3;
        uint8_t *m = alloc_mask(stride, h, 0);
        for (int k = 0; k < stride * h; k++) {
            s = s * 1103515245u + 12345u;
            m[k] = (s >> 16) % 23 == 0 ? (uint8_t)(s >> 8) | 1 : 0;
        }
        struct mms_mask_stats got, want;
        mms_mask_stats(m, w, h, stride, &got);
        reference(m, w, h, stride, &want);
        CHECK_MSG(got.count == want.count && got.fraction == want.fraction &&
                      got.x0 == want.x0 && got.y0 == want.y0 && got.x1 == want.x1 &&
                      got.y1 == want.y1,
                  "width %d: %lld %g [%d,%d,%d,%d], want %lld %g [%d,%d,%d,%d]", w,
                  (long long)got.count, got.fraction, got.x0, got.y0, got.x1, got.y1,
                  (long long)want.count, want.fraction, want.x0, want.y0, want.x1, want.y1);
        free(m);
    }
}

/* ---- agreement of two masks ---- */

/* Measures a (stride sa) against b (stride sb), checks the Dice and the
 * number of differing pixels, and frees both. */
static void expect_agreement(uint8_t *a, int sa, uint8_t *b, int sb, double dice, int differ)
{
    struct mms_mask_agreement m;
    mms_mask_agreement(a, sa, b, sb, W, H, &m);
    CHECK_MSG(m.dice == dice, "dice %g, want %g", m.dice, dice);
    CHECK_MSG(m.differ == (double)differ / (W * H), "differ %g, want %d pixels", m.differ, differ);
    free(a);
    free(b);
}

static void test_agreement_both_empty(void)
{
    expect_agreement(alloc_mask(W, H, 0), W, alloc_mask(W, H, 0), W, 1.0, 0);
}

static void test_agreement_identical(void)
{
    uint8_t *a = alloc_mask(W, H, 0), *b = alloc_mask(W, H, 0);
    memset(a + W, 7, 30);
    memset(b + W, 255, 30); /* any non-zero byte is tool */
    expect_agreement(a, W, b, W, 1.0, 0);
}

static void test_agreement_disjoint(void)
{
    uint8_t *a = alloc_mask(W, H, 0), *b = alloc_mask(W, H, 0);
    memset(a, 1, 10);
    memset(b + 2 * W, 1, 20);
    expect_agreement(a, W, b, W, 0.0, 30);
}

static void test_agreement_partial_overlap(void)
{
    uint8_t *a = alloc_mask(W, H, 0), *b = alloc_mask(W, H, 0);
    memset(a + 3 * W, 1, 40);      /* columns 0-39 */
    memset(b + 3 * W + 20, 1, 40); /* columns 20-59: 20 shared */
    expect_agreement(a, W, b, W, 2.0 * 20 / 80, 40);
}

static void test_agreement_ignores_stride_padding(void)
{
    int stride = W + 5;
    uint8_t *a = alloc_mask(stride, H, 0), *b = alloc_mask(stride, H, 0);
    for (int y = 0; y < H; y++)
        memset(b + (size_t)y * stride + W, 1, 5); /* tool past w in b only */
    expect_agreement(a, stride, b, stride, 1.0, 0);
}

static void test_agreement_counts_any_nonzero_byte(void)
{
    uint8_t *a = alloc_mask(W, H, 0), *b = alloc_mask(W, H, 0);
    memset(a + W, 200, 30);
    expect_agreement(a, W, b, W, 0.0, 30);
}

static void test_agreement_with_two_strides(void)
{
    int sb = W + 9;
    uint8_t *a = alloc_mask(W, H, 0), *b = alloc_mask(sb, H, 0);
    for (int y = 0; y < H; y++) {
        memset(a + (size_t)y * W + 10, 1, 5);
        memset(b + (size_t)y * sb + 10, 1, 5);
    }
    expect_agreement(a, W, b, sb, 1.0, 0);
}

/* ---- the tally over frames that `mms calibrate` judges by ---- */

static struct mms_mask_tally tally(void)
{
    return (struct mms_mask_tally){.min_dice = 0.9, .speck = 0.001};
}

static void add(struct mms_mask_tally *t, double dice, double differ)
{
    struct mms_mask_agreement m = {dice, differ, 100};
    mms_mask_tally_add(t, &m);
}

/* Frames whose first mask is empty are counted apart: they judge
 * nothing. */
static void test_tally_counts_frames_with_a_tool(void)
{
    struct mms_mask_tally t = tally();
    struct mms_mask_agreement empty = {1.0, 0.0, 0}, tool = {0.97, 0.002, 350};
    mms_mask_tally_add(&t, &empty);
    mms_mask_tally_add(&t, &tool);
    mms_mask_tally_add(&t, &empty);
    CHECK_EQ(t.frames, 3);
    CHECK_EQ(t.with_tool, 1);
    uint8_t a[4] = {0, 255, 255, 0}, b[4] = {0, 255, 0, 0};
    struct mms_mask_agreement m;
    mms_mask_agreement(a, 4, b, 4, 4, 1, &m);
    CHECK_EQ(m.tool_a, 2);
}

static void test_tally_mean_and_lowest_take_every_frame(void)
{
    struct mms_mask_tally t = tally();
    add(&t, 1.0, 0.0);
    add(&t, 0.95, 0.01);
    add(&t, 0.5, 0.0005); /* a speck */
    CHECK_EQ(t.frames, 3);
    CHECK(fabs(t.sum - 2.45) < 1e-12);
    CHECK(t.lowest == 0.5);
}

static void test_tally_speck_is_not_the_worst(void)
{
    struct mms_mask_tally t = tally();
    add(&t, 0.95, 0.01);
    add(&t, 0.5, 0.001); /* at the limit: still a speck */
    CHECK(t.worst == 0.95);
    CHECK_EQ(t.specks, 1);
}

static void test_tally_frame_past_the_speck_share_is_judged(void)
{
    struct mms_mask_tally t = tally();
    add(&t, 0.95, 0.01);
    add(&t, 0.5, 0.0011);
    CHECK(t.worst == 0.5);
    CHECK_EQ(t.specks, 0);
}

static void test_tally_speck_above_the_floor_is_not_counted(void)
{
    struct mms_mask_tally t = tally();
    add(&t, 0.92, 0.0001);
    CHECK_EQ(t.specks, 0);
    CHECK(t.worst == 1.0 && t.lowest == 0.92);
}

MMS_TESTS(T(test_empty_mask), T(test_full_mask), T(test_top_left_pixel), T(test_top_right_pixel),
          T(test_bottom_left_pixel), T(test_bottom_right_pixel),
          T(test_stride_padding_is_ignored), T(test_any_nonzero_value_is_tool),
          T(test_box_widens_on_later_rows), T(test_matches_reference_scan),
          T(test_agreement_both_empty), T(test_agreement_identical), T(test_agreement_disjoint),
          T(test_agreement_partial_overlap), T(test_agreement_ignores_stride_padding),
          T(test_agreement_counts_any_nonzero_byte), T(test_agreement_with_two_strides),
          T(test_tally_mean_and_lowest_take_every_frame), T(test_tally_speck_is_not_the_worst),
          T(test_tally_frame_past_the_speck_share_is_judged),
          T(test_tally_speck_above_the_floor_is_not_counted), T(test_tally_counts_frames_with_a_tool))
