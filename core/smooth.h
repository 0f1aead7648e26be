#ifndef MMS_SMOOTH_H
#define MMS_SMOOTH_H

/*
 * Temporal smoothing of the tool probability on video: a mask that
 * flickers from frame to frame is worse to watch than a steady one.
 *
 *   s_t = a * s_(t-1) + (1 - a) * sigmoid(logit_t)   per pixel, a = alpha,
 *
 * except where the picture itself moved: a pixel whose brightness changed
 * by more than `motion` (0-1 scale) since the previous frame takes the new
 * probability as it is (a = 0), so a moving instrument leaves no trail;
 * and when more than half the picture moved (a cut, a camera swing) every
 * pixel starts afresh. Works on the network's output grid, before the
 * resize to the frame, so its cost does not grow with the video size.
 */

#include <stdint.h>

struct mms_smooth;

/* alpha in [0, 1) (0 = off: logits pass through untouched), motion in
 * (0, 1]; h x w the logit grid. 0, -EINVAL or -ENOMEM. */
int mms_smooth_create(struct mms_smooth **out, int h, int w, float alpha, float motion,
                      const float mean[3], const float std[3]);
void mms_smooth_free(struct mms_smooth **s);

/* The next frame starts afresh: a new source, a seek, a reconnect. */
void mms_smooth_reset(struct mms_smooth *s);
/* A runtime change of alpha (same range as create; others are ignored). */
void mms_smooth_set_alpha(struct mms_smooth *s, float alpha);

/* Takes this frame's logits (h x w) and the network input it came from
 * (3 x ih x iw, normalised with mean/std); returns the logits to threshold,
 * owned by s and valid until the next call (the input itself when alpha is
 * 0). */
const float *mms_smooth_apply(struct mms_smooth *s, const float *logits, const float *input,
                              int ih, int iw);

#endif
