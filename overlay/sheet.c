/* The contact sheet of an evaluation: frames beside their error maps. */
#include "overlay/sheet.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "overlay/font.h"

#define GAP 4                      /* pixels between tiles and around the sheet */
#define CAPTION (MMS_FONT_H + 4)   /* the band above each pair of tiles */
#define LEGEND (MMS_FONT_H + 8)    /* the band at the top of the sheet */
#define BACKGROUND 0x202020u

enum { CLS_BG, CLS_TP, CLS_FP, CLS_FN };

struct tile {
    int h;
    uint8_t *rgb; /* tile_w x h x 3, the scaled frame */
    uint8_t *cls; /* tile_w x h, one CLS_* per pixel */
    char caption[128];
};

struct mms_sheet {
    int tile_w, per_row;
    struct tile *tiles;
    int n, cap;
};

int mms_sheet_create(struct mms_sheet **out, int tile_w, int per_row)
{
    *out = NULL;
    if (tile_w < 32 || tile_w > 2048 || per_row < 1 || per_row > 16)
        return -EINVAL;
    struct mms_sheet *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->tile_w = tile_w;
    s->per_row = per_row;
    *out = s;
    return 0;
}

void mms_sheet_free(struct mms_sheet **ps)
{
    struct mms_sheet *s = *ps;
    if (!s)
        return;
    for (int i = 0; i < s->n; i++) {
        free(s->tiles[i].rgb);
        free(s->tiles[i].cls);
    }
    free(s->tiles);
    free(s);
    *ps = NULL;
}

static int same_size(const struct mms_image *a, const struct mms_image *b)
{
    return a->w == b->w && a->h == b->h;
}

/* Nearest sample at pixel centres: the error map must show each class as
 * it is, never a blend of two. */
static void scale_tile(struct tile *t, int tw, const struct mms_image *rgb,
                       const struct mms_image *pred, const struct mms_image *gt)
{
    for (int y = 0; y < t->h; y++) {
        int sy = (int)(((int64_t)(2 * y + 1) * rgb->h) / (2 * t->h));
        const uint8_t *r = rgb->data + (size_t)sy * rgb->stride;
        const uint8_t *p = pred->data + (size_t)sy * pred->stride;
        const uint8_t *g = gt->data + (size_t)sy * gt->stride;
        for (int x = 0; x < tw; x++) {
            int sx = (int)(((int64_t)(2 * x + 1) * rgb->w) / (2 * tw));
            int pp = p[sx] != 0, gg = g[sx] > 127;
            memcpy(t->rgb + ((size_t)y * tw + x) * 3, r + (size_t)sx * 3, 3);
            t->cls[(size_t)y * tw + x] = pp && gg ? CLS_TP : pp ? CLS_FP : gg ? CLS_FN : CLS_BG;
        }
    }
}

int mms_sheet_add(struct mms_sheet *s, const struct mms_image *rgb, const struct mms_image *pred,
                  const struct mms_image *gt, const char *caption, struct mms_err *err)
{
    if (rgb->fmt != MMS_IMAGE_RGB24 || pred->fmt != MMS_IMAGE_GRAY8 ||
        gt->fmt != MMS_IMAGE_GRAY8 || rgb->w < 1 || rgb->h < 1)
        return mms_err_set(err, -EINVAL, "sheet: expected an RGB frame and two gray masks");
    if (!same_size(rgb, pred) || !same_size(rgb, gt))
        return mms_err_set(err, -EINVAL, "sheet: frame %dx%d, prediction %dx%d, truth %dx%d",
                           rgb->w, rgb->h, pred->w, pred->h, gt->w, gt->h);
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 16;
        struct tile *t = realloc(s->tiles, sizeof(*t) * cap);
        if (!t)
            return mms_err_set(err, -ENOMEM, "sheet: out of memory");
        s->tiles = t;
        s->cap = cap;
    }
    struct tile *t = &s->tiles[s->n];
    memset(t, 0, sizeof(*t));
    int64_t h = ((int64_t)rgb->h * s->tile_w + rgb->w / 2) / rgb->w;
    t->h = h < 1 ? 1 : h > 4 * s->tile_w ? 4 * s->tile_w : (int)h;
    t->rgb = malloc((size_t)s->tile_w * t->h * 3);
    t->cls = malloc((size_t)s->tile_w * t->h);
    if (!t->rgb || !t->cls) {
        free(t->rgb);
        free(t->cls);
        return mms_err_set(err, -ENOMEM, "sheet: out of memory");
    }
    scale_tile(t, s->tile_w, rgb, pred, gt);
    snprintf(t->caption, sizeof(t->caption), "%s", caption ? caption : "");
    s->n++;
    return 0;
}

/* ---- drawing on the RGB sheet ---- */

static void put(struct mms_image *img, int x, int y, uint32_t rgb)
{
    if (x < 0 || y < 0 || x >= img->w || y >= img->h)
        return;
    uint8_t *d = img->data + (size_t)y * img->stride + (size_t)x * 3;
    d[0] = rgb >> 16;
    d[1] = rgb >> 8;
    d[2] = rgb;
}

struct pen {
    struct mms_image *img;
    int x, y;
    uint32_t rgb;
};

static int pen_run(void *ctx, int c0, int c1, int row)
{
    struct pen *p = ctx;
    for (int c = c0; c < c1; c++)
        put(p->img, p->x + c, p->y + row, p->rgb);
    return 0;
}

/* Draws at most max_chars of text; returns the x after it. */
static int text(struct mms_image *img, int x, int y, const char *s, int max_chars, uint32_t rgb)
{
    struct pen p = {img, x, y, rgb};
    for (int i = 0; s[i] && i < max_chars; i++, p.x += MMS_FONT_W)
        mms_font_runs((unsigned char)s[i], pen_run, &p);
    return p.x;
}

static uint8_t mix(uint8_t a, uint8_t b)
{
    return (uint8_t)((2 * a + 3 * b + 2) / 5); /* 60 % of the class colour */
}

static void blit(struct mms_image *img, const struct tile *t, int tw, int x0, int y0, int errors)
{
    static const uint32_t colour[] = {0, MMS_SHEET_TP, MMS_SHEET_FP, MMS_SHEET_FN};
    for (int y = 0; y < t->h; y++) {
        uint8_t *d = img->data + (size_t)(y0 + y) * img->stride + (size_t)x0 * 3;
        const uint8_t *s = t->rgb + (size_t)y * tw * 3;
        const uint8_t *c = t->cls + (size_t)y * tw;
        for (int x = 0; x < tw; x++, d += 3, s += 3) {
            uint32_t k = errors ? colour[c[x]] : 0;
            if (!k) {
                memcpy(d, s, 3);
                continue;
            }
            d[0] = mix(s[0], k >> 16);
            d[1] = mix(s[1], (k >> 8) & 0xff);
            d[2] = mix(s[2], k & 0xff);
        }
    }
}

static int row_height(const struct mms_sheet *s, int first)
{
    int h = 0;
    for (int i = first; i < s->n && i < first + s->per_row; i++)
        if (s->tiles[i].h > h)
            h = s->tiles[i].h;
    return CAPTION + h + GAP;
}

static void legend(struct mms_image *img)
{
    int x = GAP, y = GAP;
    x = text(img, x, y, "tool found", 64, MMS_SHEET_TP) + 2 * MMS_FONT_W;
    x = text(img, x, y, "false tool", 64, MMS_SHEET_FP) + 2 * MMS_FONT_W;
    text(img, x, y, "missed", 64, MMS_SHEET_FN);
}

int mms_sheet_render(const struct mms_sheet *s, struct mms_image *out, struct mms_err *err)
{
    if (!s->n)
        return mms_err_set(err, -EINVAL, "sheet: no frames");
    int cell_w = 2 * s->tile_w + GAP, cols = s->n < s->per_row ? s->n : s->per_row;
    int64_t h = LEGEND;
    for (int i = 0; i < s->n; i += s->per_row)
        h += row_height(s, i);
    int64_t w = (int64_t)cols * (cell_w + GAP) + GAP;
    if (w > 16384 || h > 16384)
        return mms_err_set(err, -E2BIG, "sheet: %lldx%lld is too large for one image; "
                                        "fewer frames or smaller tiles",
                           (long long)w, (long long)h);
    int ret = mms_image_alloc(out, (int)w, (int)h, MMS_IMAGE_RGB24);
    if (ret < 0)
        return mms_err_set(err, ret, "sheet: cannot allocate %lldx%lld", (long long)w,
                           (long long)h);
    for (int y = 0; y < out->h; y++)
        for (int x = 0; x < out->w; x++)
            put(out, x, y, BACKGROUND);
    legend(out);
    int y = LEGEND;
    for (int i = 0; i < s->n; i += s->per_row) {
        for (int j = i; j < s->n && j < i + s->per_row; j++) {
            const struct tile *t = &s->tiles[j];
            int x = GAP + (j - i) * (cell_w + GAP);
            text(out, x, y + 2, t->caption, cell_w / MMS_FONT_W, 0xffffffu);
            blit(out, t, s->tile_w, x, y + CAPTION, 0);
            blit(out, t, s->tile_w, x + s->tile_w + GAP, y + CAPTION, 1);
        }
        y += row_height(s, i);
    }
    return 0;
}

int mms_sheet_write_png(const struct mms_sheet *s, const char *path, struct mms_err *err)
{
    struct mms_image img = {0};
    int ret = mms_sheet_render(s, &img, err);
    if (ret < 0)
        return ret;
    ret = mms_image_write_png(path, &img, err);
    mms_image_free(&img);
    return ret;
}
