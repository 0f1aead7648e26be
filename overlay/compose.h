#ifndef MMS_COMPOSE_H
#define MMS_COMPOSE_H

/*
 * Drawing the tool mask onto the video, in the frame's own YUV420P planes
 * (no conversion): the colour is converted to Y'CbCr once (BT.601, limited
 * range, which is what H.264 sources and the encoders here use).
 *
 *   fill     alpha-blended colour over the mask (default 0x00ff66, 0.45)
 *   outline  the mask's contour, 2 px, opaque colour
 *   mask     the binary mask as video: white tool on black
 *   off      the frame untouched
 *
 * Chroma is subsampled 2x2: a chroma sample is blended by the share of its
 * four luma pixels that are tool, so edges do not bleed colour.
 */

#include <stdint.h>

#include <libavutil/frame.h>

enum mms_style_kind { MMS_STYLE_FILL, MMS_STYLE_OUTLINE, MMS_STYLE_MASK, MMS_STYLE_OFF };

#define MMS_STYLE_COUNT 4
#define MMS_DEFAULT_COLOR 0x00ff66
#define MMS_DEFAULT_ALPHA 0.45f

struct mms_style {
    enum mms_style_kind kind;
    float alpha;  /* 0..1, fill only */
    uint32_t rgb; /* 0xRRGGBB */
};

/* "fill" -> MMS_STYLE_FILL; -EINVAL for an unknown name. */
int mms_style_parse(const char *name, enum mms_style_kind *kind);
const char *mms_style_name(enum mms_style_kind kind);
/* "RRGGBB" or "#RRGGBB" or "0xRRGGBB"; -EINVAL otherwise. */
int mms_color_parse(const char *s, uint32_t *rgb);

/* Draws mask (frame-sized, 0 or 255, `stride` bytes per row) onto the
 * YUV420P frame in place. Allocates nothing. */
void mms_compose(AVFrame *frame, const uint8_t *mask, int stride, const struct mms_style *st);

/* Text on frames: overlay/text.h. */

/* Fills the frame with one colour (the NO SIGNAL background). */
void mms_fill_frame(AVFrame *frame, uint32_t rgb);

#endif
