/*
 * overlay/text.c and the bitmap font it falls back to: FreeType text that
 * is anti-aliased, sized by the frame, placed where Pillow places the same
 * font's ink, clipped at every edge; what is not ASCII; a missing or
 * corrupt font falling back to the bitmap font with the reason given;
 * drawing from several threads; and what a HUD line costs per frame.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libavutil/frame.h>
#include <libavutil/log.h>

#include "frames.h"
#include "harness.h"
#include "overlay/compose.h"
#include "overlay/font.h"
#include "overlay/text.h"

#define HUD "fps 24.9  infer 19.6 ms  mask age 40 ms"
#define BLACK_Y 16 /* 0x000000, darkened or not */
#define WHITE_Y 235

/* The ink on a black frame: luma above black, as a half-open box. */
struct box {
    int x0, y0, x1, y1;
};

static struct box ink(const AVFrame *f)
{
    struct box b = {INT_MAX, INT_MAX, -1, -1};
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++)
            if (*frame_px(f, 0, x, y) > BLACK_Y) {
                b.x0 = x < b.x0 ? x : b.x0;
                b.y0 = y < b.y0 ? y : b.y0;
                b.x1 = x + 1 > b.x1 ? x + 1 : b.x1;
                b.y1 = y + 1 > b.y1 ? y + 1 : b.y1;
            }
    if (b.x1 < 0)
        b = (struct box){0, 0, 0, 0};
    return b;
}

/* Luma values strictly between black and white: anti-aliasing's grey. */
static int greys(const AVFrame *f, int *distinct)
{
    int n = 0, seen[256] = {0};
    for (int y = 0; y < f->height; y++)
        for (int x = 0; x < f->width; x++) {
            int v = *frame_px(f, 0, x, y);
            if (v > BLACK_Y && v < WHITE_Y) {
                n++;
                seen[v] = 1;
            }
        }
    *distinct = 0;
    for (int v = 0; v < 256; v++)
        *distinct += seen[v];
    return n;
}

static void use_font(const char *path)
{
    struct mms_err err = {{0}};
    int rc = mms_text_set_font(path, &err);
    CHECK_MSG(rc == 0, "%s: %d %s", path ? path : "(default)", rc, err.msg);
}

/* A file under the test's temporary directory holding `len` bytes. */
static const char *write_file(const char *name, const void *data, size_t len)
{
    static char path[512];
    snprintf(path, sizeof(path), "%s/%s", mms_test_tmpdir(), name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f)) {
        perror(path);
        abort();
    }
    return path;
}

static uint8_t *read_default_font(size_t *len)
{
    FILE *f = fopen(MMS_FONT_DEFAULT, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)n);
    if (!b || fread(b, 1, (size_t)n, f) != (size_t)n)
        abort();
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* ---- the bitmap font ---- */

static void test_bitmap_glyphs(void)
{
    CHECK(MMS_FONT_W == 8 && MMS_FONT_H == 8);
    const uint8_t *space = mms_font_glyph(' ');
    for (int r = 0; r < 8; r++)
        CHECK(space[r] == 0);
    for (int ch = 33; ch <= 126; ch++) {
        const uint8_t *g = mms_font_glyph((unsigned char)ch);
        int bits = 0;
        for (int r = 0; r < 8; r++)
            bits |= g[r];
        CHECK_MSG(bits, "'%c' has an empty glyph", ch);
        /* Every printable character looks different from every other. */
        for (int o = 32; o < ch; o++)
            CHECK_MSG(memcmp(g, mms_font_glyph((unsigned char)o), 8), "'%c' looks like '%c'", ch,
                      o);
    }
    static const unsigned char odd[] = {0, 9, 31, 127, 128, 255};
    for (size_t i = 0; i < sizeof(odd); i++)
        CHECK(!memcmp(mms_font_glyph(odd[i]), mms_font_glyph('?'), 8));
}

/* The bitmap font as it always drew: px 8 is scale 1, px 16 scale 2, the
 * box two font pixels out, text pixels exactly the colour. */
static void test_bitmap_draws(void)
{
    use_font(MMS_FONT_BUILTIN);
    CHECK(!mms_text_freetype());
    AVFrame *f = frame_make(64, 32, 3);
    mms_fill_frame(f, 0x808080);
    AVFrame *orig = frame_clone(f, 0);
    mms_draw_text(f, 2, 2, 8, "Hi", 0xffffff);
    int text = 0, dark = 0, grey = 0, distinct;
    for (int y = 0; y < 32; y++)
        for (int x = 0; x < 64; x++) {
            int v = *frame_px(f, 0, x, y);
            text += v == WHITE_Y;
            dark += v < *frame_px(orig, 0, x, y);
            grey += v == *frame_px(orig, 0, x, y);
        }
    CHECK_MSG(text > 10, "%d text pixels", text);
    CHECK_MSG(dark > 10, "%d darkened pixels", dark);
    CHECK(grey > 64 * 32 / 2);
    CHECK(*frame_px(f, 0, 63, 31) == *frame_px(orig, 0, 63, 31));
    CHECK(frame_padding_intact(f));

    /* 'H' at px 16 (scale 2): its top row 0x33 lights font columns 0, 1, 4, 5. */
    mms_fill_frame(f, 0x808080);
    mms_draw_text(f, 10, 6, 16, "H", 0xffffff);
    int grey_y = *frame_px(orig, 0, 0, 0);
    CHECK(*frame_px(f, 0, 10, 6) == WHITE_Y && *frame_px(f, 0, 13, 7) == WHITE_Y &&
          *frame_px(f, 0, 18, 6) == WHITE_Y);
    CHECK(*frame_px(f, 0, 14, 6) < grey_y && *frame_px(f, 0, 14, 6) != WHITE_Y);
    CHECK(*frame_px(f, 0, 6, 2) < grey_y && *frame_px(f, 0, 29, 25) < grey_y);
    CHECK(*frame_px(f, 0, 5, 2) == grey_y && *frame_px(f, 0, 6, 1) == grey_y);
    CHECK(*frame_px(f, 0, 30, 2) == grey_y && *frame_px(f, 0, 6, 26) == grey_y);
    int w, h;
    mms_text_extent(16, "Hi\nabc", &w, &h);
    CHECK_EQ(w, 3 * 16);
    CHECK_EQ(h, 16 + 4 + 16);
    CHECK_EQ(mms_text_pad(16), 4);

    /* No grey: the bitmap font is never anti-aliased. */
    mms_fill_frame(f, 0x000000);
    mms_draw_text(f, 4, 4, 16, "Hx", 0xffffff);
    CHECK_EQ(greys(f, &distinct), 0);
    frame_free(&orig);
    frame_free(&f);
    use_font(NULL);
}

/* ---- FreeType ---- */

static void test_default_font(void)
{
    mms_text_shutdown();
    unsetenv("MMS_FONT");
    CHECK_MSG(mms_text_freetype(), "%s does not load (fonts-dejavu-core)", MMS_FONT_DEFAULT);
    /* $MMS_FONT is what a NULL path means. */
    setenv("MMS_FONT", MMS_FONT_DEFAULT, 1);
    use_font(NULL);
    CHECK(mms_text_freetype());
    unsetenv("MMS_FONT");
    CHECK_EQ(mms_text_px(720, 30), 24);
    CHECK_EQ(mms_text_px(2160, 30), 72);
    CHECK_EQ(mms_text_px(1, 30), MMS_TEXT_MIN_PX);
    CHECK_EQ(mms_text_px(INT_MAX, 1), MMS_TEXT_MAX_PX);
    CHECK_EQ(mms_text_px(720, 0), MMS_TEXT_MIN_PX);
    CHECK_EQ(mms_text_px(-5, -5), MMS_TEXT_MIN_PX);
}

static void test_antialiased(void)
{
    use_font(NULL);
    static const int sizes[] = {12, 24, 72};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(*sizes); i++) {
        AVFrame *f = frame_make(sizes[i] * 12, sizes[i] * 2, 0);
        mms_fill_frame(f, 0x000000);
        mms_draw_text(f, sizes[i] / 2, sizes[i] / 2, sizes[i], "HTEAaWwo/", 0xffffff);
        int distinct, n = greys(f, &distinct);
        CHECK_MSG(n > 20 && distinct > 16, "px %d: %d grey pixels, %d values", sizes[i], n,
                  distinct);
        int solid = 0;
        for (int y = 0; y < f->height; y++)
            for (int x = 0; x < f->width; x++)
                solid += *frame_px(f, 0, x, y) >= BLACK_Y + (WHITE_Y - BLACK_Y) * 3 / 4;
        /* Strokes mostly covered (hinting puts bars on pixel rows), not
         * all blur. */
        CHECK_MSG(solid > 2 * sizes[i], "px %d: %d solid pixels", sizes[i], solid);
        frame_free(&f);
    }
}

/* Runs text_ref.py: Pillow's ink box of `text` at each px. */
static int pil_boxes(const char *text, const int *pxs, int n, int *em, struct box *out)
{
    const char *py = getenv("PYTHON");
    char cmd[1024];
    int len = snprintf(cmd, sizeof(cmd), "%s %s/tests/overlay/text_ref.py %s '%s'",
                       py ? py : "/usr/bin/python3", mms_test_srcdir(), MMS_FONT_DEFAULT, text);
    for (int i = 0; i < n; i++)
        len += snprintf(cmd + len, sizeof(cmd) - (size_t)len, " %d", pxs[i]);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -errno;
    int got = 0;
    for (int i = 0; i < n; i++) {
        int rpx;
        struct box *b = &out[i];
        if (fscanf(p, "%d %d %d %d %d %d", &rpx, &em[i], &b->x0, &b->y0, &b->x1, &b->y1) != 6 ||
            rpx != pxs[i])
            break;
        got++;
    }
    int st = pclose(p);
    return got == n && st == 0 ? 0 : -EIO;
}

/* The same text on frames from 360p to 4K, sized by mms_text_px(): its
 * ink grows with the frame, and sits where Pillow (the same font through
 * its own FreeType path) puts it, to a pixel or two. */
static void test_scales_like_reference(void)
{
    use_font(NULL);
    static const int heights[] = {360, 480, 720, 1080, 1440, 2160};
    enum { N = sizeof(heights) / sizeof(*heights) };
    static const char *texts[] = {"H", "Hxg", "NO SIGNAL"};
    int pxs[N], em[N];
    struct box ref[N];
    for (int i = 0; i < N; i++)
        pxs[i] = mms_text_px(heights[i], 30);
    for (size_t t = 0; t < sizeof(texts) / sizeof(*texts); t++) {
        int rc = pil_boxes(texts[t], pxs, N, em, ref);
        CHECK_MSG(rc == 0, "tests/overlay/text_ref.py failed (python3-pil installed?)");
        if (rc)
            return;
        double ratio0 = 0;
        for (int i = 0; i < N; i++) {
            int h = heights[i], w = h * 16 / 9, x = h / 10, y = h / 10;
            AVFrame *f = frame_make(w, h, 0);
            mms_fill_frame(f, 0x000000);
            mms_draw_text(f, x, y, pxs[i], texts[t], 0xffffff);
            struct box b = ink(f);
            b.x0 -= x, b.x1 -= x, b.y0 -= y, b.y1 -= y;
            int tol = 1 + pxs[i] / 24; /* hinting differs: light here, Pillow's default there */
            CHECK_MSG(abs(b.y0 - ref[i].y0) <= tol && abs(b.y1 - ref[i].y1) <= tol &&
                          abs(b.x0 - ref[i].x0) <= tol && abs(b.x1 - ref[i].x1) <= 2 * tol,
                      "'%s' at %dp (px %d, em %d): ink %d,%d..%d,%d, Pillow %d,%d..%d,%d",
                      texts[t], h, pxs[i], em[i], b.x0, b.y0, b.x1, b.y1, ref[i].x0, ref[i].y0,
                      ref[i].x1, ref[i].y1);
            /* Height as a share of the frame's: the same at every size. */
            double ratio = (double)(b.y1 - b.y0) / h;
            if (i == 0)
                ratio0 = ratio;
            CHECK_MSG(ratio > ratio0 * 0.85 && ratio < ratio0 * 1.15,
                      "'%s' at %dp: ink %d px high, %.4f of the frame (%.4f at 360p)", texts[t],
                      h, b.y1 - b.y0, ratio, ratio0);
            /* What mms_text_extent() says is what was drawn. */
            int tw, th;
            mms_text_extent(pxs[i], texts[t], &tw, &th);
            CHECK_MSG(b.x1 <= tw + 1 && b.x1 >= tw - pxs[i] / 2 && b.y1 <= th + 1,
                      "'%s' px %d: extent %dx%d, ink to %d,%d", texts[t], pxs[i], tw, th, b.x1,
                      b.y1);
            CHECK(abs(th - pxs[i]) <= 1);
            frame_free(&f);
        }
    }
}

/* The box: dark around the text, mms_text_pad() out, nothing beyond. */
static void test_box(void)
{
    use_font(NULL);
    AVFrame *f = frame_make(320, 120, 0);
    mms_fill_frame(f, 0x808080);
    int grey = *frame_px(f, 0, 0, 0), pad = mms_text_pad(24), tw, th;
    mms_text_extent(24, "Box", &tw, &th);
    mms_draw_text(f, 40, 30, 24, "Box", 0xffffff);
    CHECK(*frame_px(f, 0, 40 - pad, 30 - pad) < grey);
    CHECK(*frame_px(f, 0, 40 + tw + pad - 1, 30 + th + pad - 1) < grey);
    CHECK(*frame_px(f, 0, 40 - pad - 1, 30) == grey && *frame_px(f, 0, 40, 30 - pad - 1) == grey);
    CHECK(*frame_px(f, 0, 40 + tw + pad, 30) == grey && *frame_px(f, 0, 40, 30 + th + pad) == grey);
    /* Chroma: grey stays grey under white text (no colour fringes), and
     * coloured text tints only where it covers. */
    for (int y = 0; y < frame_plane_h(f, 1); y++)
        for (int x = 0; x < frame_plane_w(f, 1); x++)
            if (*frame_px(f, 1, x, y) != 128 || *frame_px(f, 2, x, y) != 128) {
                CHECK_MSG(0, "chroma at %d,%d is %d,%d", x, y, *frame_px(f, 1, x, y),
                          *frame_px(f, 2, x, y));
                y = INT_MAX - 1;
                break;
            }
    mms_fill_frame(f, 0x808080);
    mms_draw_text(f, 40, 30, 24, "Box", 0xffcc00);
    int tinted = 0;
    for (int y = 0; y < frame_plane_h(f, 1); y++)
        for (int x = 0; x < frame_plane_w(f, 1); x++)
            tinted += *frame_px(f, 2, x, y) > 128;
    CHECK(tinted > 10);
    CHECK(*frame_px(f, 2, 0, 0) == 128);
    frame_free(&f);
}

/* Text at and past every edge, on odd and tiny frames with exact-size
 * planes (ASan catches a byte written outside), at sizes beyond the
 * limits; and on a padded frame the slack is never touched. */
static void test_clipping(void)
{
    static const int sizes[][2] = {{37, 21}, {1, 1}, {2, 3}, {3, 2}, {64, 64}, {101, 7}};
    static const int pos[] = {INT_MIN, INT_MIN + 1, -100000, -1000, -17, -9, -1, 0, 1, 5,
                              19, 30, 36, 37, 60, 1000, INT_MAX - 1, INT_MAX};
    static const int pxs[] = {INT_MIN, -3, 0, 8, 13, 31, 100, INT_MAX};
    static const char *texts[] = {HUD, "NO SIGNAL", "a\nbc\n\nd", "", "\x01\x7f\xff~",
                                  "j\xc3\xa9\xe2\x98\x83g"};
    static const char *fonts[] = {NULL, MMS_FONT_BUILTIN};
    for (size_t fo = 0; fo < 2; fo++) {
        use_font(fonts[fo]);
        for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
            AVFrame *f = frame_make(sizes[s][0], sizes[s][1], 0);
            mms_fill_frame(f, 0x808080);
            for (size_t i = 0; i < sizeof(pos) / sizeof(*pos); i++)
                for (size_t j = 0; j < sizeof(pos) / sizeof(*pos); j++)
                    for (size_t k = 0; k < sizeof(pxs) / sizeof(*pxs); k++)
                        for (size_t t = 0; t < sizeof(texts) / sizeof(*texts); t++)
                            mms_draw_text(f, pos[i], pos[j], pxs[k], texts[t], 0xffffff);
            frame_free(&f);
        }
        AVFrame *f = frame_make(37, 21, 9);
        for (size_t i = 0; i < sizeof(pos) / sizeof(*pos); i++)
            for (size_t j = 0; j < sizeof(pos) / sizeof(*pos); j++)
                mms_draw_text(f, pos[i], pos[j], 24, "Wide text", 0x00ff66);
        CHECK(frame_padding_intact(f));
        frame_free(&f);
    }
    use_font(NULL);

    /* Cut at the right and bottom edges, drawn up to the last pixel. */
    AVFrame *f = frame_make(101, 51, 5);
    mms_fill_frame(f, 0x000000);
    mms_draw_text(f, 80, 38, 24, "HHHH", 0xffffff);
    int right = 0, bottom = 0;
    for (int y = 0; y < 51; y++)
        right += *frame_px(f, 0, 100, y) > BLACK_Y;
    for (int x = 0; x < 101; x++)
        bottom += *frame_px(f, 0, x, 50) > BLACK_Y;
    CHECK_MSG(right > 0 && bottom > 0, "right %d, bottom %d", right, bottom);
    CHECK(frame_padding_intact(f));
    frame_free(&f);

    mms_draw_text(NULL, 0, 0, 24, "x", 0);
    AVFrame *nv12 = frame_make(16, 16, 0);
    nv12->format = AV_PIX_FMT_NV12;
    mms_fill_frame(nv12, 0x808080);
    AVFrame *before = frame_clone(nv12, 0);
    mms_draw_text(nv12, 0, 0, 24, "x", 0xffffff);
    CHECK(frame_same_pixels(nv12, before));
    frame_free(&before);
    frame_free(&nv12);
    CHECK_EQ(mms_text_coverage(NULL, 4, 4, 4, 0, 0, 24, "x"), -EINVAL);
    uint8_t small[16];
    CHECK_EQ(mms_text_coverage(small, 4, 4, 3, 0, 0, 24, "x"), -EINVAL);
    CHECK_EQ(mms_text_coverage(small, 0, 4, 4, 0, 0, 24, "x"), -EINVAL);
}

static AVFrame *draw_alone(const char *text, int size)
{
    AVFrame *f = frame_make(size * 3, size * 2, 0);
    mms_fill_frame(f, 0x000000);
    mms_draw_text(f, size / 2, size / 2, size, text, 0xffffff);
    return f;
}

/* UTF-8 the font has draws as itself, one character per sequence; what
 * the font lacks, bytes that are not UTF-8 and control characters draw
 * as '?'. */
static void test_non_ascii(void)
{
    static const char *fonts[] = {NULL, MMS_FONT_BUILTIN};
    for (int fo = 0; fo < 2; fo++) {
        use_font(fonts[fo]);
        int ft = mms_text_freetype();
        AVFrame *q = draw_alone("?", 24), *e = draw_alone("e", 24);
        /* é (U+00E9), µ (U+00B5) and ° (U+00B0): in DejaVu Sans. */
        static const char *known[] = {"\xc3\xa9", "\xc2\xb5", "\xc2\xb0", "\xd0\x96"};
        for (size_t i = 0; i < sizeof(known) / sizeof(*known); i++) {
            AVFrame *f = draw_alone(known[i], 24);
            CHECK_MSG(frame_same_pixels(f, q) == !ft, "%s: '%s' vs '?'", ft ? "FreeType" : "bitmap",
                      known[i]);
            frame_free(&f);
        }
        int w1, w2, h;
        mms_text_extent(24, "e", &w1, &h);
        mms_text_extent(24, "\xc3\xa9", &w2, &h);
        CHECK_MSG(w1 == w2, "'é' is %d wide, 'e' %d: one character, not two", w2, w1);
        AVFrame *acute = draw_alone("\xc3\xa9", 24);
        CHECK(!frame_same_pixels(acute, e));
        frame_free(&acute);
        /* U+4E2D and U+1F9C0 (not in DejaVu Sans), U+E000 (private use), a
         * stray continuation byte, 0xff, an overlong '/', a surrogate, a
         * truncated sequence, a control character, DEL, C1. */
        static const char *odd[] = {"\xe4\xb8\xad", "\xf0\x9f\xa7\x80", "\xee\x80\x80", "\x80", "\xff",
                                    "\xc0\xaf", "\xed\xa0\x80", "\xe2\x98", "\x01", "\x7f",
                                    "\xc2\x85"};
        for (size_t i = 0; i < sizeof(odd) / sizeof(*odd); i++) {
            AVFrame *f = draw_alone(odd[i], 24);
            CHECK_MSG(frame_same_pixels(f, q), "odd text %zu does not draw as '?'", i);
            frame_free(&f);
        }
        /* A malformed byte is one '?', and what follows it still draws. */
        int wq, wbad;
        mms_text_extent(24, "?A", &wq, &h);
        mms_text_extent(24, "\xe2" "A", &wbad, &h);
        CHECK_EQ(wbad, wq);
        frame_free(&q);
        frame_free(&e);
    }
    use_font(NULL);
}

/* More distinct characters than a size caches: the ones past the cache
 * still draw right, and the cached ones stay right. */
static void test_cache_overflow(void)
{
    use_font(NULL);
    AVFrame *zhe = draw_alone("\xd0\x96", 30), *last = NULL, *again;
    char many[4 * 400 + 1], *p = many;
    uint32_t cps[400];
    int n = 0;
    for (uint32_t cp = 0x100; cp < 0x250 && n < 300; cp++) /* Latin Extended */
        cps[n++] = cp;
    for (uint32_t cp = 0x400; cp < 0x460 && n < 400; cp++) /* Cyrillic */
        cps[n++] = cp;
    for (int i = 0; i < n; i++) {
        *p++ = (char)(0xc0 | cps[i] >> 6);
        *p++ = (char)(0x80 | (cps[i] & 0x3f));
    }
    *p = 0;
    AVFrame *big = frame_make(640, 360, 0);
    for (int r = 0; r < 3; r++)
        mms_draw_text(big, 0, 0, 30, many, 0xffffff);
    frame_free(&big);
    char lastc[3] = {(char)(0xc0 | cps[n - 1] >> 6), (char)(0x80 | (cps[n - 1] & 0x3f)), 0};
    last = draw_alone(lastc, 30);
    again = draw_alone("\xd0\x96", 30);
    CHECK(frame_same_pixels(zhe, again));
    /* The same character from a fresh cache. */
    mms_text_shutdown();
    AVFrame *fresh = draw_alone(lastc, 30);
    CHECK(frame_same_pixels(last, fresh));
    CHECK(mms_text_freetype());
    frame_free(&fresh);
    frame_free(&again);
    frame_free(&last);
    frame_free(&zhe);

    /* More sizes than are cached, round and round: each still the same. */
    AVFrame *first = draw_alone("Ag", 20);
    for (int r = 0; r < 3; r++)
        for (int s = 10; s < 40; s++) {
            AVFrame *f = draw_alone("Ag", s);
            frame_free(&f);
        }
    AVFrame *later = draw_alone("Ag", 20);
    CHECK(frame_same_pixels(first, later));
    frame_free(&first);
    frame_free(&later);
}

/* ---- a font that does not load ---- */

static char logged[4096];

static void capture_log(void *avcl, int level, const char *fmt, va_list vl)
{
    (void)avcl;
    if (level > AV_LOG_ERROR)
        return;
    size_t n = strlen(logged);
    vsnprintf(logged + n, sizeof(logged) - n, fmt, vl);
}

/* Drawn with the bitmap font: no grey, and exactly the built-in's pixels. */
static int draws_bitmap(void)
{
    AVFrame *f = draw_alone("Hg", 24);
    int distinct, n = greys(f, &distinct);
    struct mms_err err;
    mms_text_set_font(MMS_FONT_BUILTIN, &err);
    AVFrame *b = draw_alone("Hg", 24);
    int same = frame_same_pixels(f, b);
    frame_free(&f);
    frame_free(&b);
    return n == 0 && same;
}

static void expect_fallback(const char *path, int want_rc, const char *want_msg)
{
    struct mms_err err = {{0}};
    use_font(NULL); /* a working font first: the failure must replace it */
    int rc = mms_text_set_font(path, &err);
    CHECK_MSG(rc == want_rc, "%s: got %d (%s), want %d", path, rc, err.msg, want_rc);
    CHECK_MSG(strstr(err.msg, path) && strstr(err.msg, want_msg), "%s: \"%s\" lacks \"%s\"",
              path, err.msg, want_msg);
    CHECK_MSG(!mms_text_freetype(), "%s: still FreeType", path);
    CHECK_MSG(draws_bitmap(), "%s: not drawn with the bitmap font", path);
}

static void test_missing_font(void)
{
    expect_fallback("/nonexistent/DejaVuSans.ttf", -ENOENT, "No such file");
    expect_fallback(mms_test_tmpdir(), -EINVAL, "not a regular file");
    /* Picked up from $MMS_FONT on first use, with nobody to tell: logged. */
    mms_text_shutdown();
    setenv("MMS_FONT", "/nonexistent/font.ttf", 1);
    logged[0] = 0;
    av_log_set_callback(capture_log);
    AVFrame *f = draw_alone("Hg", 24);
    av_log_set_callback(av_log_default_callback);
    int distinct;
    CHECK_EQ(greys(f, &distinct), 0);
    CHECK_MSG(strstr(logged, "/nonexistent/font.ttf") && strstr(logged, "No such file") &&
                  strstr(logged, "built-in 8x8 font"),
              "logged: \"%s\"", logged);
    frame_free(&f);
    /* Once, not per draw. */
    logged[0] = 0;
    av_log_set_callback(capture_log);
    f = draw_alone("Hg", 24);
    av_log_set_callback(av_log_default_callback);
    CHECK_STR_EQ(logged, "");
    frame_free(&f);
    unsetenv("MMS_FONT");
    use_font(NULL);
    CHECK(mms_text_freetype());
}

static void test_corrupt_font(void)
{
    size_t len;
    uint8_t *ttf = read_default_font(&len);
    CHECK(ttf != NULL);
    if (!ttf)
        return;
    expect_fallback(write_file("empty.ttf", "", 0), -EINVAL, "empty");
    uint8_t noise[4096];
    uint32_t s = 99;
    for (size_t i = 0; i < sizeof(noise); i++)
        noise[i] = (uint8_t)((s = s * 1103515245u + 12345u) >> 16);
    expect_fallback(write_file("noise.ttf", noise, sizeof(noise)), -EINVAL, "not a font");
    /* A font's start: its table directory, the tables past the end. */
    expect_fallback(write_file("cut.ttf", ttf, 4096), -EINVAL, "font");
    /* Text, not a font. */
    static const char txt[] = "DejaVu Sans, honest\n";
    expect_fallback(write_file("text.ttf", txt, sizeof(txt) - 1), -EINVAL, "not a font");
    /* The header intact, the outlines garbage: opens, cannot render. */
    uint8_t *bad = malloc(len);
    memcpy(bad, ttf, len);
    uint16_t ntables = (uint16_t)(bad[4] << 8 | bad[5]);
    for (int i = 0; i < ntables; i++) {
        const uint8_t *e = bad + 12 + 16 * i;
        if (!memcmp(e, "glyf", 4) || !memcmp(e, "loca", 4)) {
            uint32_t off = (uint32_t)e[8] << 24 | e[9] << 16 | e[10] << 8 | e[11];
            uint32_t n = (uint32_t)e[12] << 24 | e[13] << 16 | e[14] << 8 | e[15];
            for (uint32_t k = 0; k < n && off + k < len; k++)
                bad[off + k] = (uint8_t)((s = s * 1103515245u + 12345u) >> 24);
        }
    }
    expect_fallback(write_file("garbled.ttf", bad, len), -EINVAL, "cannot render");
    free(bad);
    free(ttf);
    use_font(NULL);
    CHECK(mms_text_freetype());
}

/* The window's text (coverage, drawn through SDL) is the frame's: on
 * black, a frame pixel's luma is black plus the coverage's share of the
 * way to white, at the same place. */
static void test_coverage_matches_frame(void)
{
    static const char *fonts[] = {NULL, MMS_FONT_BUILTIN};
    for (int fo = 0; fo < 2; fo++) {
        use_font(fonts[fo]);
        int w = 200, h = 60, bad = 0, lit = 0;
        AVFrame *f = frame_make(w, h, 0);
        mms_fill_frame(f, 0x000000);
        mms_draw_text(f, 7, 9, 20, "Agj \xc3\xa9?\n|x", 0xffffff);
        uint8_t *cov = malloc((size_t)(w + 3) * h);
        memset(cov, 0x5a, (size_t)(w + 3) * h); /* zeroed by the call */
        CHECK_EQ(mms_text_coverage(cov, w, h, w + 3, 7, 9, 20, "Agj \xc3\xa9?\n|x"), 0);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                int a = cov[y * (w + 3) + x];
                int want = BLACK_Y + ((WHITE_Y - BLACK_Y) * a + 127) / 255;
                bad += abs(*frame_px(f, 0, x, y) - want) > 1;
                lit += a > 0;
            }
        CHECK_MSG(bad == 0 && lit > 100, "%s: %d pixels differ, %d lit",
                  fonts[fo] ? fonts[fo] : "FreeType", bad, lit);
        /* Clipped to the buffer, whatever the position. */
        static const int pos[] = {INT_MIN, -1000, -5, 0, 150, 199, 1000, INT_MAX};
        for (size_t i = 0; i < sizeof(pos) / sizeof(*pos); i++)
            for (size_t j = 0; j < sizeof(pos) / sizeof(*pos); j++)
                CHECK_EQ(mms_text_coverage(cov, w, h, w, pos[i], pos[j], 40, HUD), 0);
        free(cov);
        frame_free(&f);
    }
    use_font(NULL);
}

/* Chroma is subsampled 2x2: each sample takes the colour by the mean
 * coverage of its four luma pixels, so edges are neither fringed nor
 * jagged. Red on black, against the coverage. */
static void test_chroma_edges(void)
{
    use_font(NULL);
    int w = 160, h = 48, bad = 0, partial = 0;
    AVFrame *f = frame_make(w, h, 0);
    mms_fill_frame(f, 0x000000);
    mms_draw_text(f, 9, 11, 24, "Sow/", 0xff0000);
    uint8_t *cov = malloc((size_t)w * h), ycc[3];
    mms_rgb_to_ycbcr(0xff0000, ycc);
    CHECK_EQ(mms_text_coverage(cov, w, h, w, 9, 11, 24, "Sow/"), 0);
    for (int y = 0; y < h / 2; y++)
        for (int x = 0; x < w / 2; x++) {
            int sum = cov[2 * y * w + 2 * x] + cov[2 * y * w + 2 * x + 1] +
                      cov[(2 * y + 1) * w + 2 * x] + cov[(2 * y + 1) * w + 2 * x + 1];
            int a = (sum + 2) / 4;
            for (int p = 1; p <= 2; p++) {
                int want = (128 * (255 - a) + ycc[p] * a + 127) / 255;
                bad += abs(*frame_px(f, p, x, y) - want) > 1;
            }
            partial += a > 0 && a < 255;
        }
    CHECK_MSG(bad == 0 && partial > 20, "%d chroma samples off, %d partly covered", bad, partial);
    free(cov);
    frame_free(&f);
}

/* ---- threads ---- */

struct worker {
    int size;
    AVFrame *want;
    int same;
};

static void *draw_many(void *arg)
{
    struct worker *w = arg;
    w->same = 1;
    for (int i = 0; i < 40; i++) {
        AVFrame *f = draw_alone(i & 1 ? HUD : "NO SIGNAL", w->size);
        if (!(i & 1))
            w->same &= frame_same_pixels(f, w->want);
        frame_free(&f);
    }
    return NULL;
}

static void *swap_fonts(void *arg)
{
    struct mms_err err;
    (void)arg;
    for (int i = 0; i < 20; i++)
        mms_text_set_font(i & 1 ? NULL : MMS_FONT_BUILTIN, &err);
    return NULL;
}

/* Pipelines draw from the thread pool, several at once: the same pixels
 * as alone, at sizes that evict each other; and a font swapped under
 * them harms nothing (ASan, TSan). */
static void test_threads(void)
{
    use_font(NULL);
    enum { N = 12 };
    struct worker w[N];
    pthread_t t[N + 1];
    for (int i = 0; i < N; i++) {
        w[i].size = 10 + 3 * i;
        w[i].want = draw_alone("NO SIGNAL", w[i].size);
    }
    for (int i = 0; i < N; i++)
        CHECK(!pthread_create(&t[i], NULL, draw_many, &w[i]));
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        CHECK_MSG(w[i].same, "px %d drew differently on a thread", w[i].size);
    }
    for (int i = 0; i < N; i++)
        CHECK(!pthread_create(&t[i], NULL, draw_many, &w[i]));
    CHECK(!pthread_create(&t[N], NULL, swap_fonts, NULL));
    for (int i = 0; i <= N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++)
        frame_free(&w[i].want);
    use_font(NULL);
}

/* ---- cost: printed, not judged (CI machines vary) ---- */

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void bench(const char *font, int w, int h)
{
    use_font(font);
    mms_text_shutdown();
    use_font(font);
    AVFrame *f = frame_make(w, h, 0);
    mms_fill_frame(f, 0x406080);
    int size = mms_text_px(h, 30), m = size / 2;
    double t0 = now_ms();
    mms_draw_text(f, m, m, size, HUD, 0xffffff);
    double cold = now_ms() - t0, best = 1e9, sum = 0;
    int n = 200;
    for (int r = 0; r < n; r++) {
        t0 = now_ms();
        mms_draw_text(f, m, m, size, HUD, 0xffffff);
        double dt = now_ms() - t0;
        sum += dt;
        best = dt < best ? dt : best;
    }
    int tw, th;
    mms_text_extent(size, HUD, &tw, &th);
    printf("HUD %-8s %4dx%-4d px %3d (text %dx%d): first %.3f ms, then %.3f ms mean, %.3f ms "
           "best of %d\n",
           font ? font : "FreeType", w, h, size, tw, th, cold, sum / n, best, n);
    frame_free(&f);
}

/* The window's share of the work: the line's coverage (then SDL's). */
static void bench_coverage(int h)
{
    use_font(NULL);
    int size = mms_text_px(h, 30), tw, th, pad = mms_text_pad(size);
    mms_text_extent(size, HUD, &tw, &th);
    int w = tw + 2 * pad, bh = th + 2 * pad, n = 200;
    uint8_t *cov = malloc((size_t)w * bh);
    double best = 1e9, sum = 0;
    for (int r = 0; r < n; r++) {
        double t0 = now_ms();
        mms_text_coverage(cov, w, bh, w, pad, pad, size, HUD);
        double dt = now_ms() - t0;
        sum += dt;
        best = dt < best ? dt : best;
    }
    printf("HUD coverage for a %dp window, px %d (%dx%d): %.3f ms mean, %.3f ms best of %d\n", h,
           size, w, bh, sum / n, best, n);
    free(cov);
}

static void test_speed_hud(void)
{
    bench(NULL, 1280, 720);
    bench(NULL, 3840, 2160);
    bench(MMS_FONT_BUILTIN, 1280, 720);
    bench(MMS_FONT_BUILTIN, 3840, 2160);
    bench_coverage(720);
    bench_coverage(2160);
    use_font(NULL);
}

static void test_shutdown(void)
{
    /* Twice is harmless; the next draw loads the default again. */
    mms_text_shutdown();
    mms_text_shutdown();
    CHECK(mms_text_freetype());
    mms_text_shutdown();
}

MMS_TESTS(T(test_bitmap_glyphs), T(test_bitmap_draws), T(test_default_font),
          T(test_antialiased), T(test_scales_like_reference), T(test_box), T(test_clipping),
          T(test_non_ascii), T(test_cache_overflow), T(test_missing_font), T(test_corrupt_font),
          T(test_coverage_matches_frame), T(test_chroma_edges), T(test_threads), T(test_speed_hud), T(test_shutdown))
