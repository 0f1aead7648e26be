#ifndef MMS_OVERLAY_SHEET_H
#define MMS_OVERLAY_SHEET_H

/*
 * A contact sheet of an evaluation, so a person sees where a model fails:
 * per frame, the frame itself beside the prediction over the ground truth
 * (true positives green, false positives magenta, misses yellow), with its
 * name and Dice above. Frames go in rows of `per_row`, each tile scaled to
 * `tile_w` pixels wide; the sheet is one RGB image written as PNG.
 */

#include "core/error.h"
#include "io/image.h"

#define MMS_SHEET_TP 0x00c800u /* green */
#define MMS_SHEET_FP 0xff00ffu /* magenta */
#define MMS_SHEET_FN 0xffdc00u /* yellow */

struct mms_sheet;

/* tile_w 32..2048, per_row 1..16; -EINVAL otherwise, -ENOMEM. */
int mms_sheet_create(struct mms_sheet **out, int tile_w, int per_row);
void mms_sheet_free(struct mms_sheet **s);

/* Adds one frame: rgb (RGB24), pred (GRAY8, tool != 0) and gt (GRAY8,
 * tool > 127), all of one size, or -EINVAL. The sheet keeps scaled copies
 * only; the caller keeps its images. */
int mms_sheet_add(struct mms_sheet *s, const struct mms_image *rgb, const struct mms_image *pred,
                  const struct mms_image *gt, const char *caption, struct mms_err *err);

/* Lays out every frame added so far (-EINVAL with none) into one image,
 * allocated into `out`. */
int mms_sheet_render(const struct mms_sheet *s, struct mms_image *out, struct mms_err *err);

/* Renders and writes the sheet as PNG. */
int mms_sheet_write_png(const struct mms_sheet *s, const char *path, struct mms_err *err);

#endif
