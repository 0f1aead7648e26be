/* ThreadSanitizer annotations for FFmpeg's frame buffers; nothing in other
 * builds.
 *
 * FFmpeg counts references to a buffer with atomics inside libavutil,
 * which is not built with TSan, so TSan cannot see that a writer thread
 * dropping its reference to a frame happens before the source takes the
 * same buffer out of its pool for a later frame (the count's acq_rel
 * decrement is that edge; the pool's mutex only orders the last holder).
 * Without these it reports the decoder's copy into a recycled buffer as a
 * race with the window's read of the frame that buffer held before. They
 * say exactly what the count guarantees: release where a thread that read
 * a frame drops it, acquire where a buffer comes out of a pool. */
#ifndef MMS_IO_TSAN_H
#define MMS_IO_TSAN_H

#include <libavutil/buffer.h>
#include <libavutil/frame.h>

#ifdef __SANITIZE_THREAD__
#include <sanitizer/tsan_interface.h>

static inline void mms_tsan_frame_release(const AVFrame *f)
{
    for (int i = 0; i < AV_NUM_DATA_POINTERS && f->buf[i]; i++)
        __tsan_release(f->buf[i]->data);
}

static inline void mms_tsan_buffer_acquire(const AVBufferRef *b)
{
    if (b)
        __tsan_acquire(b->data);
}
#else
static inline void mms_tsan_frame_release(const AVFrame *f) { (void)f; }
static inline void mms_tsan_buffer_acquire(const AVBufferRef *b) { (void)b; }
#endif

#endif
