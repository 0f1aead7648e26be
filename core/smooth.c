/* Temporal smoothing of the tool probability, motion-gated. */
#include "core/smooth.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct mms_smooth {
    int h, w;
    float alpha, motion;
    float mean[3], std[3];
    int primed;   /* s and gray hold a previous frame */
    float *prob;  /* h x w, the smoothed probability */
    float *gray;  /* h x w, the previous frame's brightness on the logit grid */
    float *now;   /* h x w, this frame's brightness */
    float *out;   /* h x w, logits handed back */
};

int mms_smooth_create(struct mms_smooth **out, int h, int w, float alpha, float motion,
                      const float mean[3], const float std[3])
{
    *out = NULL;
    if (h < 1 || w < 1 || !(alpha >= 0.0f && alpha < 1.0f) || !(motion > 0.0f && motion <= 1.0f))
        return -EINVAL;
    for (int c = 0; c < 3; c++)
        if (!(std[c] > 0.0f))
            return -EINVAL;
    struct mms_smooth *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    size_t n = (size_t)h * w;
    s->prob = malloc(n * sizeof(float));
    s->gray = malloc(n * sizeof(float));
    s->now = malloc(n * sizeof(float));
    s->out = malloc(n * sizeof(float));
    if (!s->prob || !s->gray || !s->now || !s->out) {
        mms_smooth_free(&s);
        return -ENOMEM;
    }
    s->h = h;
    s->w = w;
    s->alpha = alpha;
    s->motion = motion;
    memcpy(s->mean, mean, sizeof(s->mean));
    memcpy(s->std, std, sizeof(s->std));
    *out = s;
    return 0;
}

void mms_smooth_free(struct mms_smooth **ps)
{
    struct mms_smooth *s = *ps;
    if (!s)
        return;
    free(s->prob);
    free(s->gray);
    free(s->now);
    free(s->out);
    free(s);
    *ps = NULL;
}

void mms_smooth_reset(struct mms_smooth *s)
{
    s->primed = 0;
}

void mms_smooth_set_alpha(struct mms_smooth *s, float alpha)
{
    if (alpha >= 0.0f && alpha < 1.0f)
        s->alpha = alpha;
}

/* The input's brightness (0-1, mean of R, G, B) at each logit pixel's
 * nearest input pixel; returns how many pixels moved. */
static size_t brightness(struct mms_smooth *s, const float *in, int ih, int iw)
{
    size_t plane = (size_t)ih * iw, moved = 0;
    for (int y = 0; y < s->h; y++) {
        size_t iy = (size_t)((2 * (int64_t)y + 1) * ih / (2 * s->h));
        for (int x = 0; x < s->w; x++) {
            size_t i = iy * iw + (size_t)((2 * (int64_t)x + 1) * iw / (2 * s->w));
            float g = 0.0f;
            for (int c = 0; c < 3; c++)
                g += in[c * plane + i] * s->std[c] + s->mean[c];
            g *= 1.0f / 3.0f;
            size_t o = (size_t)y * s->w + x;
            s->now[o] = g;
            moved += s->primed && fabsf(g - s->gray[o]) > s->motion;
        }
    }
    return moved;
}

static float sigmoid(float z)
{
    return 1.0f / (1.0f + expf(-z));
}

/* Back to a logit for the threshold test, clamped so that exact 0 and 1
 * stay finite. */
static float logit(float p)
{
    const float eps = 1e-6f;
    p = p < eps ? eps : p > 1.0f - eps ? 1.0f - eps : p;
    return logf(p / (1.0f - p));
}

const float *mms_smooth_apply(struct mms_smooth *s, const float *logits, const float *input,
                              int ih, int iw)
{
    if (s->alpha <= 0.0f) {
        s->primed = 0; /* switched back on later, it starts afresh */
        return logits;
    }
    size_t n = (size_t)s->h * s->w;
    size_t moved = brightness(s, input, ih, iw);
    int fresh = !s->primed || moved * 2 > n;
    for (size_t i = 0; i < n; i++) {
        float p = sigmoid(logits[i]);
        float a = fresh || fabsf(s->now[i] - s->gray[i]) > s->motion ? 0.0f : s->alpha;
        /* Fresh, the past is not weighed at all: 0 x a NaN left over
         * (never-written memory, a broken frame) would still be NaN. */
        s->prob[i] = a > 0.0f ? a * s->prob[i] + (1.0f - a) * p : p;
        s->out[i] = a > 0.0f ? logit(s->prob[i]) : logits[i];
    }
    float *t = s->gray;
    s->gray = s->now;
    s->now = t;
    s->primed = 1;
    return s->out;
}
