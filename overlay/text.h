#ifndef MMS_OVERLAY_TEXT_H
#define MMS_OVERLAY_TEXT_H

/*
 * Text on video frames (the NO SIGNAL card) and for the window's HUD:
 * UTF-8 drawn with FreeType in a TrueType font, hinted (light: vertical
 * only, so letters keep their shapes) and anti-aliased, on a dark box.
 * When no font could be loaded, the built-in 8x8 bitmap font (font.h)
 * draws instead, so text never goes missing.
 *
 * Sizes are in pixels of the frame drawn on; mms_text_px() turns a frame
 * height into one, so the same text reads the same from 360p to 4K.
 *
 * One font for the process, chosen once at start-up (mms_text_set_font),
 * else loaded on first use from $MMS_FONT or MMS_FONT_DEFAULT. Every
 * function here may be called from any thread: pipelines are created on
 * libuv's thread pool, several at once, and each draws its NO SIGNAL card.
 */

#include <stdint.h>

#include <libavutil/frame.h>

#include "core/error.h"

/* Debian's fonts-dejavu-core puts it here. */
#define MMS_FONT_DEFAULT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
/* The name that asks for the bitmap font on purpose. */
#define MMS_FONT_BUILTIN "builtin"

#define MMS_TEXT_MIN_PX 6
#define MMS_TEXT_MAX_PX 512

/* Loads `path` for all text drawn from now on: NULL means $MMS_FONT if
 * set and not empty, else MMS_FONT_DEFAULT; MMS_FONT_BUILTIN the bitmap
 * font. A missing, unreadable, oversized or corrupt file (one FreeType
 * cannot open or render letters from) gives -errno and the reason in err,
 * and text is drawn with the bitmap font until a later call succeeds:
 * the caller logs err, drawing goes on. */
int mms_text_set_font(const char *path, struct mms_err *err);

/* 1 while text is drawn with FreeType, 0 with the bitmap font. Loads the
 * default font first if none was chosen yet. */
int mms_text_freetype(void);

/* Lets go of the font and every cached glyph; the next text drawn loads
 * the default again. For leak checkers and tests. */
void mms_text_shutdown(void);

/* A text size in pixels for a frame `frame_h` high that `lines` lines of
 * text would fill: the HUD uses 30, the NO SIGNAL card 10. Clamped to
 * MMS_TEXT_MIN_PX..MMS_TEXT_MAX_PX. */
int mms_text_px(int frame_h, int lines);

/* The box margin around text of size px, in pixels. */
int mms_text_pad(int px);

/* Width and height in pixels that mms_draw_text() covers with `text` at
 * size px, without the box margin: its widest line and all its lines. */
void mms_text_extent(int px, const char *text, int *w, int *h);

/* Draws UTF-8 `text` in place on a YUV420P frame, colour 0xRRGGBB, its
 * first line's top-left at (x, y), on a dark box mms_text_pad(px) wider
 * all round; '\n' starts a new line. px is the height of a line (the
 * font's ascender to descender), clamped as mms_text_px() clamps. Bytes
 * that are not UTF-8, control characters and characters the font lacks
 * draw as '?'. Anything outside the frame is clipped; nothing is
 * allocated once a size's glyphs are cached. */
void mms_draw_text(AVFrame *frame, int x, int y, int px, const char *text, uint32_t rgb);

/* The text's coverage, 0..255 per pixel, into a caller's w x h buffer
 * (`stride` bytes a row, zeroed first), the first line's top-left at
 * (x, y), clipped to the buffer: for the window, which draws its HUD
 * through SDL rather than into the frame. Returns 0 or -EINVAL. */
int mms_text_coverage(uint8_t *buf, int w, int h, int stride, int x, int y, int px,
                      const char *text);

#endif
