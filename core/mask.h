#ifndef MMS_MASK_H
#define MMS_MASK_H

/*
 * What a mask holds, in the numbers `mms run --meta`, mmsd and the
 * GStreamer element report: the share of the frame that is tool and the
 * box around it. One implementation for all of them, so that the same
 * mask gives the same numbers wherever it is measured.
 */

#include <stdint.h>

struct mms_mask_stats {
    int64_t count;      /* tool pixels: non-zero bytes */
    double fraction;    /* count / (w * h), 0..1 */
    int x0, y0, x1, y1; /* the box around them, inclusive; all -1 when there is none */
};

/* mask: h rows of w bytes, `stride` bytes apart (the bytes past w are not
 * read); any non-zero byte is tool. The caller checks its arguments:
 * w, h > 0, stride >= w. */
void mms_mask_stats(const uint8_t *mask, int w, int h, int stride, struct mms_mask_stats *out);

#endif
