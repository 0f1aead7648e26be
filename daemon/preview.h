#ifndef MMSD_PREVIEW_H
#define MMSD_PREVIEW_H

/*
 * A pipeline's browser preview: the annotated frames as JPEGs, streamed as
 * multipart/x-mixed-replace (MJPEG), which every browser shows in an <img>.
 *
 * The pipeline's compose thread hands frames on (mmsd_preview_frame), at
 * most 10 a second while someone watches and one a second otherwise, and
 * the preview's own thread encodes them, so a snapshot is always at hand
 * and a slow JPEG never slows the outputs; the loop thread fans the newest JPEG out to
 * the viewers. A slow viewer skips frames and never slows the pipeline.
 */

#include <stdint.h>

#include <libavutil/frame.h>
#include <uv.h>

#include "core/error.h"
#include "daemon/http.h"

struct mmsd_preview;

/* Loop thread. */
int mmsd_preview_create(uv_loop_t *loop, struct mmsd_preview **out, struct mms_err *err);

/* Pipeline compose thread: takes a reference to f into a one-slot mailbox
 * (a newer frame replaces one not yet encoded) and returns; the preview's
 * own thread encodes. Never blocks on the encoder nor on viewers. */
void mmsd_preview_frame(struct mmsd_preview *pv, const AVFrame *f);

/* Tests: while held, the encoder takes no frame from the mailbox; and how
 * many frames it has encoded. */
void mmsd_preview_hold(struct mmsd_preview *pv, int held);
int64_t mmsd_preview_encoded(const struct mmsd_preview *pv);

/* Loop thread: turns res into an MJPEG stream; the newest JPEG goes out at
 * once. -EBUSY when the preview has its maximum of viewers. */
int mmsd_preview_serve(struct mmsd_preview *pv, struct mmsd_http_response *res);

/* Loop thread: the newest JPEG as the whole response; -EAGAIN when no frame
 * has been encoded yet. */
int mmsd_preview_snapshot(struct mmsd_preview *pv, struct mmsd_http_response *res);

int mmsd_preview_viewers(const struct mmsd_preview *pv);

/* Loop thread, once the pipeline's threads are joined: ends every stream
 * and frees pv when its handle is closed; then done(arg). */
void mmsd_preview_close(struct mmsd_preview *pv, void (*done)(void *arg), void *arg);

#endif
