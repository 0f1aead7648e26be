#include "overlay/text.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ft2build.h>
#include FT_FREETYPE_H
#include FT_SIZES_H
#include <libavutil/log.h>
#include <libavutil/pixfmt.h>

#include "overlay/font.h"

/* A font file bigger than this is not a UI font (DejaVu Sans is 740 kB). */
#define MAX_FONT_BYTES (32 << 20)
/* Sizes cached at once: the HUD and NO SIGNAL of a few frame sizes. The
 * least recently used goes when another is needed. */
#define NSIZES 8
/* Glyph slots per size (a power of two), open addressing. At most
 * MAX_CACHED are kept, so a probe always ends; ASCII needs 95. Rarer
 * characters past that are rendered on each use. */
#define NSLOTS 256
#define MAX_CACHED 192
/* The size the font is tried at when it is loaded. */
#define PROBE_PX 24

struct glyph {
    uint32_t cp;   /* 0: an empty slot */
    int left, top; /* the bitmap's top-left from the pen on the baseline, y up */
    int w, h;
    long adv;      /* pen advance, 26.6 */
    uint8_t *cov;  /* w x h coverage */
};

struct size_cache {
    int px;
    unsigned long used; /* the draw that last used it, for eviction */
    FT_Size size;       /* the face's scaling at this size, switched to per miss */
    int asc, desc;      /* line extent above and below the baseline, pixels */
    int nglyphs;
    struct glyph slots[NSLOTS];
};

struct font {
    FT_Library lib;
    FT_Face face;
    uint8_t *file; /* the face reads from it for its whole life */
    struct size_cache *sizes[NSIZES];
    unsigned long tick;
    struct glyph spare; /* a glyph past MAX_CACHED, until the next one */
};

/* FreeType objects are not thread-safe, and the cache and scratch mask are
 * shared, so everything below runs under one lock. A draw holds it
 * throughout (a HUD line at 4K takes well under a millisecond, see the
 * benchmark in tests/overlay/test_text.c), which keeps a font swap from
 * freeing glyphs that a draw is still copying. */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int chosen;          /* a font was chosen, or tried, since the start or a shutdown */
static struct font *font;   /* NULL: the bitmap font */
static uint8_t *scratch;    /* one draw's coverage */
static size_t scratch_cap;

/* ---- loading ---- */

static void size_free(struct size_cache *sc)
{
    if (!sc)
        return;
    for (int i = 0; i < NSLOTS; i++)
        free(sc->slots[i].cov);
    if (sc->size)
        FT_Done_Size(sc->size);
    free(sc);
}

static void font_free(struct font *f)
{
    if (!f)
        return;
    for (int i = 0; i < NSIZES; i++)
        size_free(f->sizes[i]);
    free(f->spare.cov);
    if (f->face)
        FT_Done_Face(f->face);
    if (f->lib)
        FT_Done_FreeType(f->lib);
    free(f->file);
    free(f);
}

/* The whole file in memory rather than FreeType's mmap: a font replaced
 * or truncated on disk while mapped would kill the daemon with SIGBUS. */
static int read_file(const char *path, uint8_t **out, size_t *len, struct mms_err *err)
{
    struct stat st;
    uint8_t *buf = NULL;
    int rc, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return mms_err_set(err, -errno, "font %s: %s", path, strerror(errno));
    if (fstat(fd, &st) < 0) {
        rc = mms_err_set(err, -errno, "font %s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(st.st_mode) || !st.st_size || st.st_size > MAX_FONT_BYTES) {
        rc = mms_err_set(err, st.st_size > MAX_FONT_BYTES ? -EFBIG : -EINVAL,
                         "font %s: not a font file (%s)", path,
                         !S_ISREG(st.st_mode) ? "not a regular file"
                         : !st.st_size        ? "empty"
                                              : "over 32 MiB");
        goto fail;
    }
    if (!(buf = malloc((size_t)st.st_size))) {
        rc = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = mms_err_set(err, n ? -errno : -EIO, "font %s: %s", path,
                             n ? strerror(errno) : "shorter than its size");
            goto fail;
        }
        got += (size_t)n;
    }
    close(fd);
    *out = buf;
    *len = got;
    return 0;

fail:
    free(buf);
    close(fd);
    return rc;
}

/* The size whose line (ascender to descender) is px high. */
static struct size_cache *size_get(struct font *f, int px)
{
    struct size_cache **victim = NULL;
    for (int i = 0; i < NSIZES; i++) {
        struct size_cache *sc = f->sizes[i];
        if (sc && sc->px == px) {
            sc->used = ++f->tick;
            return sc;
        }
        if (!victim || (*victim && (!sc || sc->used < (*victim)->used)))
            victim = &f->sizes[i];
    }
    size_free(*victim);
    *victim = NULL;

    struct size_cache *sc = calloc(1, sizeof(*sc));
    if (!sc)
        return NULL;
    FT_Face face = f->face;
    long em = ((long)px * face->units_per_EM + (face->ascender - face->descender) / 2) /
              (face->ascender - face->descender);
    if (FT_New_Size(face, &sc->size) || FT_Activate_Size(sc->size) ||
        FT_Set_Pixel_Sizes(face, 0, (FT_UInt)(em < 1 ? 1 : em))) {
        size_free(sc);
        return NULL;
    }
    sc->px = px;
    sc->asc = (int)((face->size->metrics.ascender + 63) >> 6);
    sc->desc = (int)((-face->size->metrics.descender + 63) >> 6);
    sc->used = ++f->tick;
    *victim = sc;
    return sc;
}

/* Renders cp into g: 0, -ENOENT where the font lacks it, -EINVAL where
 * FreeType cannot render it (a damaged font), -ENOMEM. */
static int glyph_render(struct font *f, struct size_cache *sc, uint32_t cp, struct glyph *g)
{
    FT_UInt idx = FT_Get_Char_Index(f->face, cp);
    if (!idx)
        return -ENOENT;
    /* Light hinting fits stems to the pixel grid vertically only: crisp
     * baselines and x-heights, letter shapes and spacing as designed. No
     * embedded bitmaps: they would be 1-bit, not coverage. */
    if (FT_Activate_Size(sc->size) ||
        FT_Load_Glyph(f->face, idx, FT_LOAD_RENDER | FT_LOAD_TARGET_LIGHT | FT_LOAD_NO_BITMAP))
        return -EINVAL;
    const FT_GlyphSlot s = f->face->glyph;
    const FT_Bitmap *b = &s->bitmap;
    int w = (int)b->width, h = (int)b->rows;
    /* A damaged outline can ask for a bitmap of many megabytes: no real
     * letter is more than a few lines across. */
    if (w > 4 * sc->px || h > 4 * sc->px)
        return -EINVAL;
    if (w && h && (b->pixel_mode != FT_PIXEL_MODE_GRAY || b->num_grays != 256))
        return -EINVAL;
    uint8_t *cov = NULL;
    if (w && h) {
        if (!(cov = malloc((size_t)w * h)))
            return -ENOMEM;
        /* Rows go down by pitch; a negative pitch starts at the last. */
        const uint8_t *top = b->pitch < 0 ? b->buffer - (ptrdiff_t)(h - 1) * b->pitch : b->buffer;
        for (int r = 0; r < h; r++)
            memcpy(cov + (size_t)r * w, top + (ptrdiff_t)r * b->pitch, (size_t)w);
    }
    free(g->cov);
    *g = (struct glyph){.cp = cp, .left = s->bitmap_left, .top = s->bitmap_top, .w = w,
                        .h = h, .adv = s->advance.x, .cov = cov};
    return 0;
}

static unsigned slot_of(uint32_t cp)
{
    return (cp * 2654435761u) >> 24 & (NSLOTS - 1);
}

/* cp's glyph at this size, rendered on first use; '?' for what the font
 * lacks or cannot render; NULL only when even '?' fails. */
static const struct glyph *glyph_get(struct font *f, struct size_cache *sc, uint32_t cp)
{
    unsigned i = slot_of(cp);
    while (sc->slots[i].cp) {
        if (sc->slots[i].cp == cp)
            return &sc->slots[i];
        i = (i + 1) & (NSLOTS - 1);
    }
    struct glyph *g = sc->nglyphs < MAX_CACHED ? &sc->slots[i] : &f->spare;
    int rc = glyph_render(f, sc, cp, g);
    if (!rc) {
        sc->nglyphs += g != &f->spare;
        return g;
    }
    return cp == '?' || rc == -ENOMEM ? NULL : glyph_get(f, sc, '?');
}

static int font_open(const char *path, struct font **out, struct mms_err *err)
{
    int rc;
    FT_Error e;
    size_t len = 0;
    struct font *f = calloc(1, sizeof(*f));
    if (!f)
        return mms_err_set(err, -ENOMEM, "out of memory");
    if ((rc = read_file(path, &f->file, &len, err)))
        goto fail;
    if ((e = FT_Init_FreeType(&f->lib))) {
        f->lib = NULL;
        rc = mms_err_set(err, -ENOMEM, "font %s: FreeType does not start (error %d)", path, e);
        goto fail;
    }
    if ((e = FT_New_Memory_Face(f->lib, f->file, (FT_Long)len, 0, &f->face))) {
        f->face = NULL;
        rc = mms_err_set(err, -EINVAL, "font %s: not a font FreeType can read (error 0x%02x)",
                         path, e);
        goto fail;
    }
    FT_Face face = f->face;
    if (!FT_IS_SCALABLE(face) || FT_Select_Charmap(face, FT_ENCODING_UNICODE) ||
        !face->units_per_EM || face->ascender - face->descender <= 0) {
        rc = mms_err_set(err, -EINVAL, "font %s: not a scalable font with a Unicode map", path);
        goto fail;
    }
    /* Tried now, so a damaged font is reported at start-up, not
     * discovered (as '?' everywhere) on the operating room's monitor. */
    struct size_cache *sc = size_get(f, PROBE_PX);
    const struct glyph *h = sc ? glyph_get(f, sc, 'H') : NULL;
    const struct glyph *q = sc ? glyph_get(f, sc, '?') : NULL;
    if (!h || h->cp != 'H' || !h->w || !q || !q->w || h->adv <= 0) {
        rc = mms_err_set(err, -EINVAL, "font %s: FreeType cannot render its letters", path);
        goto fail;
    }
    *out = f;
    return 0;

fail:
    font_free(f);
    return rc;
}

/* Under the lock. */
static int choose(const char *path, struct mms_err *err)
{
    if (!path) {
        const char *env = getenv("MMS_FONT");
        path = env && *env ? env : MMS_FONT_DEFAULT;
    }
    struct font *f = NULL;
    int rc = strcmp(path, MMS_FONT_BUILTIN) ? font_open(path, &f, err) : 0;
    font_free(font);
    font = f;
    chosen = 1;
    return rc;
}

/* Under the lock: the default font on first use, when start-up chose none
 * (tools, tests). Its failure is logged here, once, as no caller is there
 * to hear it. */
static void ensure_chosen(void)
{
    struct mms_err err = {{0}};
    if (!chosen && choose(NULL, &err))
        av_log(NULL, AV_LOG_ERROR, "%s; text is drawn with the built-in 8x8 font\n", err.msg);
}

int mms_text_set_font(const char *path, struct mms_err *err)
{
    pthread_mutex_lock(&lock);
    int rc = choose(path, err);
    pthread_mutex_unlock(&lock);
    return rc;
}

int mms_text_freetype(void)
{
    pthread_mutex_lock(&lock);
    ensure_chosen();
    int ft = font != NULL;
    pthread_mutex_unlock(&lock);
    return ft;
}

void mms_text_shutdown(void)
{
    pthread_mutex_lock(&lock);
    font_free(font);
    font = NULL;
    free(scratch);
    scratch = NULL;
    scratch_cap = 0;
    chosen = 0;
    pthread_mutex_unlock(&lock);
}

/* ---- layout ---- */

int mms_text_px(int frame_h, int lines)
{
    long long px = lines > 0 ? (long long)frame_h / lines : MMS_TEXT_MIN_PX;
    return px < MMS_TEXT_MIN_PX ? MMS_TEXT_MIN_PX : px > MMS_TEXT_MAX_PX ? MMS_TEXT_MAX_PX : (int)px;
}

static int clamp_px(int px)
{
    return px < MMS_TEXT_MIN_PX ? MMS_TEXT_MIN_PX : px > MMS_TEXT_MAX_PX ? MMS_TEXT_MAX_PX : px;
}

/* The bitmap font's scale for size px: its 8 rows fill the line. */
static int bitmap_scale(int px)
{
    return px < MMS_FONT_H ? 1 : px / MMS_FONT_H;
}

/* Two bitmap-font pixels, as the box always had: the same for FreeType,
 * so the box does not change size when the font does. */
int mms_text_pad(int px)
{
    return 2 * bitmap_scale(clamp_px(px));
}

/* How one draw lays out lines: FreeType at one size, or the bitmap font
 * scaled by s. */
struct layout {
    struct font *f;
    struct size_cache *sc; /* NULL: the bitmap font */
    int s;
    int asc, line_h, gap;
};

/* Under the lock. A size FreeType cannot set up draws in the bitmap font. */
static void layout_init(struct layout *L, int px)
{
    px = clamp_px(px);
    *L = (struct layout){.f = font, .sc = font ? size_get(font, px) : NULL, .s = bitmap_scale(px)};
    L->gap = 2 * L->s;
    if (L->sc) {
        L->asc = L->sc->asc;
        L->line_h = L->sc->asc + L->sc->desc;
    } else {
        L->asc = L->line_h = MMS_FONT_H * L->s;
    }
}

/* The next character of *s, which moves past it. Control characters are
 * '?', and so is each ill-formed part of the UTF-8: a stray byte, or the
 * start of a sequence up to the byte that breaks it (which then starts the
 * next), or a whole overlong or surrogate sequence. */
static uint32_t next_char(const char **s)
{
    static const uint32_t least[] = {0, 0x80, 0x800, 0x10000};
    const unsigned char *p = (const unsigned char *)*s;
    uint32_t c = p[0];
    int n = c < 0x80 ? 0 : (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    *s += 1;
    if (n <= 0)
        return n < 0 || c < 32 || c == 127 ? '?' : c;
    c &= 0x3fu >> n;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xc0) != 0x80) { /* a NUL ends it here too */
            *s += i - 1;
            return '?';
        }
        c = c << 6 | (p[i] & 0x3f);
    }
    *s += n;
    if (c < least[n] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff) || c < 0xa0)
        return '?';
    return c;
}

/* Where the glyph goes and how far the pen moves; NULL g: nothing to draw. */
static long advance_of(const struct layout *L, uint32_t cp, const struct glyph **g)
{
    if (!L->sc) {
        *g = NULL;
        return (long)MMS_FONT_W * L->s * 64;
    }
    *g = glyph_get(L->f, L->sc, cp);
    return *g ? (*g)->adv : 0;
}

static void measure(const struct layout *L, const char *text, long long *w, long long *h)
{
    long long widest = 0, pen = 0, lines = 1;
    for (const char *p = text; *p;) {
        if (*p == '\n') {
            p++;
            lines++;
            pen = 0;
            continue;
        }
        const struct glyph *g;
        pen += advance_of(L, next_char(&p), &g);
        if (pen > widest)
            widest = pen;
    }
    *w = (widest + 63) >> 6;
    *h = lines * L->line_h + (lines - 1) * L->gap;
}

/* A destination for coverage: w x h bytes, `stride` apart. */
struct canvas {
    uint8_t *buf;
    long long w, h;
    long long stride;
};

/* Coverage is combined by maximum: where two glyphs overlap, the pixel is
 * as covered as the more covering one, never darker than either. */
static void put_cov(const struct canvas *c, long long x, long long y, const uint8_t *src, int w,
                    int h)
{
    long long x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    long long x1 = x + w > c->w ? c->w : x + w, y1 = y + h > c->h ? c->h : y + h;
    for (long long r = y0; r < y1; r++) {
        uint8_t *d = c->buf + r * c->stride;
        for (long long q = x0; q < x1; q++) {
            uint8_t v = src ? src[(r - y) * w + (q - x)] : 255;
            if (v > d[q])
                d[q] = v;
        }
    }
}

struct bitmap_pen {
    const struct canvas *c;
    long long x, y;
    int s;
};

static int bitmap_run(void *ctx, int c0, int c1, int row)
{
    const struct bitmap_pen *b = ctx;
    put_cov(b->c, b->x + (long long)c0 * b->s, b->y + (long long)row * b->s, NULL,
            (c1 - c0) * b->s, b->s);
    return 0;
}

/* The text's coverage onto c, the first line's top-left at (x, y) in c. */
static void rasterize(const struct layout *L, const char *text, const struct canvas *c,
                      long long x, long long y)
{
    long long top = y, pen = 0;
    for (const char *p = text; *p;) {
        if (*p == '\n') {
            p++;
            top += L->line_h + L->gap;
            pen = 0;
            continue;
        }
        uint32_t cp = next_char(&p);
        const struct glyph *g;
        long adv = advance_of(L, cp, &g);
        long long gx = x + ((pen + 32) >> 6);
        /* Glyphs wholly off the canvas cost nothing but this test (a
         * glyph reaches at most a line beyond its cell: accents, 'j'). */
        if (gx - L->line_h < c->w && gx + 2LL * L->line_h > 0 && top - L->line_h < c->h &&
            top + 2LL * L->line_h > 0) {
            if (g && g->cov)
                put_cov(c, gx + g->left, top + L->asc - g->top, g->cov, g->w, g->h);
            else if (!L->sc) {
                struct bitmap_pen b = {c, gx, top, L->s};
                mms_font_runs(cp <= 126 ? (unsigned char)cp : '?', bitmap_run, &b);
            }
        }
        pen += adv;
    }
}

/* ---- onto the frame ---- */

/* x / 255 rounded, for x in 0..65535, without a division. */
static inline unsigned div255(unsigned x)
{
    x += 128;
    return (x + (x >> 8)) >> 8;
}

/* The box darkened (luma towards black, chroma towards grey, to 3/8: dark
 * enough for white text on a bright surgical scene, and the scene still
 * shows), then the colour blended in by coverage. Box: [x0, x1) x [y0, y1)
 * inside the frame; cov holds its coverage, (x1 - x0) bytes a row. A
 * chroma sample belongs to the box if its top-left luma pixel does, and
 * takes the mean coverage of its four luma pixels, so letter edges do
 * not bleed colour. */
static void composite(AVFrame *f, int x0, int y0, int x1, int y1, const uint8_t *cov,
                      const uint8_t ycc[3])
{
    int w = x1 - x0;
    for (int y = y0; y < y1; y++) {
        uint8_t *row = f->data[0] + (ptrdiff_t)y * f->linesize[0] + x0;
        const uint8_t *a = cov + (size_t)(y - y0) * w;
        for (int i = 0; i < w; i++) {
            unsigned d = (unsigned)(16 + (row[i] - 16) * 3 / 8);
            row[i] = (uint8_t)(a[i] ? div255(d * (255u - a[i]) + ycc[0] * a[i]) : d);
        }
    }
    int cx0 = (x0 + 1) / 2, cy0 = (y0 + 1) / 2, cx1 = (x1 + 1) / 2, cy1 = (y1 + 1) / 2;
    for (int cy = cy0; cy < cy1; cy++) {
        const uint8_t *a0 = cov + (size_t)(2 * cy - y0) * w;
        const uint8_t *a1 = 2 * cy + 1 < y1 ? a0 + w : NULL;
        for (int p = 1; p <= 2; p++) {
            uint8_t *row = f->data[p] + (ptrdiff_t)cy * f->linesize[p];
            for (int cx = cx0; cx < cx1; cx++) {
                int i = 2 * cx - x0, right = 2 * cx + 1 < x1;
                unsigned sum = a0[i] + (right ? a0[i + 1] : 0u);
                if (a1)
                    sum += a1[i] + (right ? a1[i + 1] : 0u);
                unsigned a = (sum + 2) / 4;
                unsigned d = (unsigned)(128 + (row[cx] - 128) * 3 / 8);
                row[cx] = (uint8_t)(a ? div255(d * (255u - a) + ycc[p] * a) : d);
            }
        }
    }
}

void mms_text_extent(int px, const char *text, int *w, int *h)
{
    long long lw = 0, lh = 0;
    if (text) {
        struct layout L;
        pthread_mutex_lock(&lock);
        ensure_chosen();
        layout_init(&L, px);
        measure(&L, text, &lw, &lh);
        pthread_mutex_unlock(&lock);
    }
    if (w)
        *w = lw > INT32_MAX ? INT32_MAX : (int)lw;
    if (h)
        *h = lh > INT32_MAX ? INT32_MAX : (int)lh;
}

void mms_draw_text(AVFrame *frame, int x, int y, int px, const char *text, uint32_t rgb)
{
    if (!frame || frame->format != AV_PIX_FMT_YUV420P || !text || frame->width < 1 ||
        frame->height < 1 || !frame->data[0] || !frame->data[1] || !frame->data[2])
        return;
    uint8_t ycc[3];
    mms_rgb_to_ycbcr(rgb, ycc);
    struct layout L;
    long long tw, th;
    pthread_mutex_lock(&lock);
    ensure_chosen();
    layout_init(&L, px);
    measure(&L, text, &tw, &th);

    /* Wide integers: callers may place text anywhere, INT_MIN included. */
    long long pad = mms_text_pad(px);
    long long bx0 = x - pad, by0 = y - pad, bx1 = x + tw + pad, by1 = y + th + pad;
    bx0 = bx0 < 0 ? 0 : bx0;
    by0 = by0 < 0 ? 0 : by0;
    bx1 = bx1 > frame->width ? frame->width : bx1;
    by1 = by1 > frame->height ? frame->height : by1;
    if (bx0 >= bx1 || by0 >= by1)
        goto done;
    /* The box is inside the frame, so this stays within its size. */
    size_t need = (size_t)(bx1 - bx0) * (size_t)(by1 - by0);
    if (need > scratch_cap) {
        uint8_t *b = realloc(scratch, need);
        if (!b)
            goto done; /* no text rather than a half-drawn box */
        scratch = b;
        scratch_cap = need;
    }
    memset(scratch, 0, need);
    struct canvas c = {scratch, bx1 - bx0, by1 - by0, bx1 - bx0};
    rasterize(&L, text, &c, x - bx0, y - by0);
    composite(frame, (int)bx0, (int)by0, (int)bx1, (int)by1, scratch, ycc);
done:
    pthread_mutex_unlock(&lock);
}

int mms_text_coverage(uint8_t *buf, int w, int h, int stride, int x, int y, int px,
                      const char *text)
{
    if (!buf || w < 1 || h < 1 || stride < w)
        return -EINVAL;
    for (int r = 0; r < h; r++)
        memset(buf + (size_t)r * stride, 0, (size_t)w);
    if (!text)
        return 0;
    struct layout L;
    struct canvas c = {buf, w, h, stride};
    pthread_mutex_lock(&lock);
    ensure_chosen();
    layout_init(&L, px);
    rasterize(&L, text, &c, x, y);
    pthread_mutex_unlock(&lock);
    return 0;
}
