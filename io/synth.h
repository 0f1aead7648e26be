#ifndef MMS_SYNTH_H
#define MMS_SYNTH_H

/*
 * A synthetic endoscopy-like clip with exact ground truth, so `mms run`
 * and its tests have a real-looking input without a download: pink tissue
 * with vessels and fat, wet specular glints, the black surround of a round
 * scope, and one or two grey metal instruments that enter from outside the
 * view, move and open their jaws.
 *
 * The mask is the instrument pixels (pixel centre inside the instrument)
 * inside the scope circle. Frame i depends only on the size, seed, rate
 * and i, so any frame can be made again alone, in any order.
 */

#include <stdint.h>

#include <libavutil/frame.h>

#include "core/error.h"

struct mms_synth_info {
    int width, height;
    int tools;                 /* instruments in the clip: 1 or 2 */
    double cx, cy, radius;     /* the scope circle, in pixels */
};

struct mms_synth;

/* w and h even, 32..8192; fps > 0 sets how fast things move per frame
 * (0: 25). Precomputes the tissue, so it takes a moment at large sizes. */
int mms_synth_create(int w, int h, uint32_t seed, double fps, struct mms_synth **out,
                     struct mms_err *err);
void mms_synth_free(struct mms_synth *s);

const struct mms_synth_info *mms_synth_info(const struct mms_synth *s);

/* Draws frame `index` (>= 0) into `yuv`, a writable YUV420P frame of the
 * synth's size, and, when mask is not NULL, its mask: 255 tool, 0 not,
 * `mask_stride` bytes per row. Allocates nothing; one thread at a time
 * per synth. -EINVAL for a frame of the wrong size or format. */
int mms_synth_frame(struct mms_synth *s, int index, AVFrame *yuv, uint8_t *mask,
                    int mask_stride);

#endif
