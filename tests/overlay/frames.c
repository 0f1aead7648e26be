#include "frames.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

AVFrame *frame_make(int w, int h, int pad)
{
    AVFrame *f = av_frame_alloc();
    if (!f)
        abort();
    f->format = AV_PIX_FMT_YUV420P;
    f->width = w;
    f->height = h;
    for (int p = 0; p < 3; p++) {
        int pw = p ? (w + 1) / 2 : w, ph = p ? (h + 1) / 2 : h;
        f->linesize[p] = pw + pad;
        f->data[p] = malloc((size_t)f->linesize[p] * ph);
        if (!f->data[p])
            abort();
        memset(f->data[p], FRAME_SENTINEL, (size_t)f->linesize[p] * ph);
    }
    return f;
}

void frame_free(AVFrame **f)
{
    if (!*f)
        return;
    for (int p = 0; p < 3; p++)
        free((*f)->data[p]);
    /* The planes are ours, not buffers av_frame_free() would unref. */
    memset((*f)->data, 0, sizeof((*f)->data));
    av_frame_free(f);
}

int frame_plane_w(const AVFrame *f, int p) { return p ? (f->width + 1) / 2 : f->width; }
int frame_plane_h(const AVFrame *f, int p) { return p ? (f->height + 1) / 2 : f->height; }

uint8_t *frame_px(const AVFrame *f, int p, int x, int y)
{
    return f->data[p] + (ptrdiff_t)y * f->linesize[p] + x;
}

AVFrame *frame_clone(const AVFrame *src, int pad)
{
    AVFrame *f = frame_make(src->width, src->height, pad);
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < frame_plane_h(f, p); y++)
            memcpy(frame_px(f, p, 0, y), src->data[p] + (ptrdiff_t)y * src->linesize[p],
                   (size_t)frame_plane_w(f, p));
    return f;
}

int frame_same_pixels(const AVFrame *a, const AVFrame *b)
{
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < frame_plane_h(a, p); y++)
            if (memcmp(frame_px(a, p, 0, y), frame_px(b, p, 0, y), (size_t)frame_plane_w(a, p)))
                return 0;
    return 1;
}

int frame_padding_intact(const AVFrame *f)
{
    for (int p = 0; p < 3; p++)
        for (int y = 0; y < frame_plane_h(f, p); y++)
            for (int x = frame_plane_w(f, p); x < f->linesize[p]; x++)
                if (*frame_px(f, p, x, y) != FRAME_SENTINEL)
                    return 0;
    return 1;
}
