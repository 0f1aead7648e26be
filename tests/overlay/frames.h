#ifndef MMS_TEST_OVERLAY_FRAMES_H
#define MMS_TEST_OVERLAY_FRAMES_H

/*
 * YUV420P frames with exact-size planes, for the tests that draw on
 * frames (test_compose.c, test_text.c). Each plane is its own allocation
 * of linesize x rows bytes, so with pad = 0 AddressSanitizer sees any
 * write past a plane; with pad > 0 the bytes past the width hold
 * FRAME_SENTINEL, which must survive.
 */

#include <stdint.h>

#include <libavutil/frame.h>

#define FRAME_SENTINEL 0xA5

/* w x h, every byte FRAME_SENTINEL; aborts when out of memory. */
AVFrame *frame_make(int w, int h, int pad);
/* Frees a frame_make()'s or frame_clone()'s frame; *f NULL: a no-op. */
void frame_free(AVFrame **f);
/* A copy of src's pixels, planes sized as frame_make() sizes them, in a
 * frame_make(pad) frame. */
AVFrame *frame_clone(const AVFrame *src, int pad);

int frame_plane_w(const AVFrame *f, int p);
int frame_plane_h(const AVFrame *f, int p);
uint8_t *frame_px(const AVFrame *f, int p, int x, int y);

/* 1 when the pixels (not the padding) of every plane are equal. */
int frame_same_pixels(const AVFrame *a, const AVFrame *b);
/* 1 when every byte past each plane's width is still FRAME_SENTINEL. */
int frame_padding_intact(const AVFrame *f);

#endif
