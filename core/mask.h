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

/* How two masks of one frame agree (`mms calibrate`: int8 against fp32). */
struct mms_mask_agreement {
    double dice;   /* 2|A and B| / (|A| + |B|); 1 when both are empty */
    double differ; /* pixels that are tool in one mask only, / (w * h) */
    int64_t tool_a; /* tool pixels of the first mask */
};

/* a, b: h rows of w bytes, sa and sb bytes apart; the caller checks its
 * arguments as for mms_mask_stats. */
void mms_mask_agreement(const uint8_t *a, int sa, const uint8_t *b, int sb, int w, int h,
                        struct mms_mask_agreement *out);

/*
 * Agreement over a set of frames, as `mms calibrate` judges int8: the
 * mean Dice over every frame, and the lowest over the frames that differ
 * on more than `speck` of their pixels. Dice is a poor judge of two tiny
 * masks: a 30-pixel false speck that moves by a few pixels reads 0.8.
 * Zero-initialise, set min_dice and speck, then add each frame.
 */
struct mms_mask_tally {
    double min_dice; /* in: the per-frame floor the caller will apply */
    double speck;    /* in: frames apart by at most this share are not judged by Dice */
    int frames;
    double sum;      /* of every frame's Dice */
    double worst;    /* lowest Dice among frames apart by more than speck (1 if none) */
    double lowest;   /* lowest Dice of all frames (both 0 before the first frame) */
    int specks;      /* frames under min_dice but at most speck apart */
    int with_tool;   /* frames whose first mask holds a tool: only these judge
                        anything, two empty masks agree whatever the nets do */
};

void mms_mask_tally_add(struct mms_mask_tally *t, const struct mms_mask_agreement *m);

#endif
