#include "daemon/preview.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/jpeg.h"
#include "overlay/compose.h"
#include "overlay/text.h"
#include "pipeline/stats.h"

#define MAX_VIEWERS 16
#define PREVIEW_MAX_W 640
#define PREVIEW_QUALITY 70
#define WATCHED_INTERVAL_MS 100.0 /* 10 fps: plenty for a glance, cheap to encode */
#define IDLE_INTERVAL_MS 1000.0
#define BOUNDARY "mmsdframe"

struct mmsd_preview {
    uv_async_t async;
    uv_timer_t tick;
    /* Compose thread only. */
    double last_ms;
    /* The frame to encode next: a one-slot mailbox from the compose thread
     * to the encoder thread, so a slow JPEG never holds up the outputs. */
    pthread_mutex_t mail_lock;
    pthread_cond_t mail_cond;
    AVFrame *mail;
    int quit, held;
    atomic_llong encoded;
    pthread_t thread;
    int started;
    /* The encoder thread's (the loop's before it starts and after it ends). */
    struct mms_jpeg *enc;
    AVFrame *work;
    /* The newest JPEG, handed from the compose thread to the loop. */
    pthread_mutex_t lock;
    uint8_t *jpeg;
    size_t len, cap;
    uint64_t seq;
    /* Loop thread only. */
    uint64_t sent_seq, tick_seq;
    uint8_t *placeholder; /* NO SIGNAL, for viewers who come before any frame */
    size_t placeholder_len;
    struct mmsd_http_stream *viewers[MAX_VIEWERS];
    atomic_int nviewers;
    int closing, handles_open;
    void (*done)(void *);
    void *done_arg;
};

/* Each part ends with the next boundary: a browser shows a part only once
 * it sees the boundary after it, and the next frame may be long coming
 * (NO SIGNAL). */
static void send_part(struct mmsd_http_stream *s, const uint8_t *jpeg, size_t len)
{
    char head[96];
    int n = snprintf(head, sizeof(head), "Content-Type: image/jpeg\r\nContent-Length: %zu\r\n\r\n",
                     len);
    uv_buf_t bufs[3] = {uv_buf_init(head, (unsigned)n), uv_buf_init((char *)jpeg, (unsigned)len),
                        uv_buf_init("\r\n--" BOUNDARY "\r\n", sizeof(BOUNDARY) + 5)};
    /* -EAGAIN: this viewer is behind; it gets a later frame instead. */
    mmsd_http_stream_writev(s, bufs, 3);
}

/* Without frames (a source not up, a pipeline that ended) viewers get the
 * NO SIGNAL card every second: a browser shows a part only once the next
 * one starts, and a stream with no traffic looks dead to proxies. */
static void on_tick(uv_timer_t *t)
{
    struct mmsd_preview *pv = t->data;
    pthread_mutex_lock(&pv->lock);
    int fresh = pv->seq != pv->tick_seq;
    pv->tick_seq = pv->seq;
    pthread_mutex_unlock(&pv->lock);
    if (fresh)
        return;
    for (int i = 0; i < MAX_VIEWERS; i++)
        if (pv->viewers[i])
            send_part(pv->viewers[i], pv->placeholder, pv->placeholder_len);
}

static void on_async(uv_async_t *a)
{
    struct mmsd_preview *pv = a->data;
    pthread_mutex_lock(&pv->lock);
    if (pv->seq != pv->sent_seq && !pv->closing) {
        pv->sent_seq = pv->seq;
        for (int i = 0; i < MAX_VIEWERS; i++)
            if (pv->viewers[i])
                send_part(pv->viewers[i], pv->jpeg, pv->len);
    }
    pthread_mutex_unlock(&pv->lock);
}

/* A viewer who arrives while the source is not up yet sees why at once,
 * rather than a broken image (and a browser waiting on an empty stream). */
static int make_placeholder(struct mmsd_preview *pv, struct mms_err *err)
{
    AVFrame *f = av_frame_alloc();
    int rc = -ENOMEM;
    if (!f)
        return mms_err_set(err, rc, "out of memory");
    f->format = AV_PIX_FMT_YUV420P;
    f->width = PREVIEW_MAX_W;
    f->height = PREVIEW_MAX_W * 9 / 16;
    if (av_frame_get_buffer(f, 0) < 0) {
        mms_err_set(err, rc, "out of memory");
        goto fail;
    }
    mms_fill_frame(f, 0x303030);
    int px = mms_text_px(f->height, 10), tw, th;
    mms_text_extent(px, "NO SIGNAL", &tw, &th);
    mms_draw_text(f, (f->width - tw) / 2, (f->height - th) / 2, px, "NO SIGNAL", 0xffffff);
    const uint8_t *data;
    size_t len;
    if ((rc = mms_jpeg_encode(pv->enc, f, &data, &len, err)))
        goto fail;
    if (!(pv->placeholder = malloc(len))) {
        rc = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(pv->placeholder, data, len);
    pv->placeholder_len = len;
fail:
    av_frame_free(&f);
    return rc;
}

static void stop_encoder(struct mmsd_preview *pv)
{
    if (!pv->started)
        return;
    pthread_mutex_lock(&pv->mail_lock);
    pv->quit = 1;
    pthread_cond_signal(&pv->mail_cond);
    pthread_mutex_unlock(&pv->mail_lock);
    pthread_join(pv->thread, NULL);
    pv->started = 0;
}

static void free_parts(struct mmsd_preview *pv)
{
    mms_jpeg_free(pv->enc);
    av_frame_free(&pv->mail);
    av_frame_free(&pv->work);
    pthread_cond_destroy(&pv->mail_cond);
    pthread_mutex_destroy(&pv->mail_lock);
    pthread_mutex_destroy(&pv->lock);
    free(pv->jpeg);
    free(pv->placeholder);
    free(pv);
}

static void publish(struct mmsd_preview *pv, const uint8_t *data, size_t len)
{
    pthread_mutex_lock(&pv->lock);
    if (len > pv->cap) {
        uint8_t *b = realloc(pv->jpeg, len);
        if (!b) {
            pthread_mutex_unlock(&pv->lock);
            return;
        }
        pv->jpeg = b;
        pv->cap = len;
    }
    memcpy(pv->jpeg, data, len);
    pv->len = len;
    pv->seq++;
    pthread_mutex_unlock(&pv->lock);
    uv_async_send(&pv->async);
}

/* Takes the newest frame from the mailbox; 0 once asked to quit. */
static int take(struct mmsd_preview *pv)
{
    pthread_mutex_lock(&pv->mail_lock);
    while (!pv->quit && (pv->held || !pv->mail->data[0]))
        pthread_cond_wait(&pv->mail_cond, &pv->mail_lock);
    int quit = pv->quit;
    if (!quit)
        av_frame_move_ref(pv->work, pv->mail);
    pthread_mutex_unlock(&pv->mail_lock);
    return !quit;
}

static void *encoder_main(void *arg)
{
    struct mmsd_preview *pv = arg;
    while (take(pv)) {
        const uint8_t *data;
        size_t len;
        struct mms_err err;
        int rc = mms_jpeg_encode(pv->enc, pv->work, &data, &len, &err);
        av_frame_unref(pv->work);
        atomic_fetch_add(&pv->encoded, 1);
        if (!rc) /* a preview frame lost is not worth a log line per frame */
            publish(pv, data, len);
    }
    return NULL;
}

int mmsd_preview_create(uv_loop_t *loop, struct mmsd_preview **out, struct mms_err *err)
{
    struct mmsd_preview *pv = calloc(1, sizeof(*pv));
    int rc;
    if (!pv)
        return mms_err_set(err, -ENOMEM, "out of memory");
    pthread_mutex_init(&pv->lock, NULL);
    pthread_mutex_init(&pv->mail_lock, NULL);
    pthread_cond_init(&pv->mail_cond, NULL);
    if (!(pv->mail = av_frame_alloc()) || !(pv->work = av_frame_alloc())) {
        rc = mms_err_set(err, -ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = mms_jpeg_create(PREVIEW_MAX_W, PREVIEW_QUALITY, &pv->enc, err)) ||
        (rc = make_placeholder(pv, err)))
        goto fail;
    if ((rc = -pthread_create(&pv->thread, NULL, encoder_main, pv))) {
        mms_err_set(err, rc, "preview: cannot start a thread: %s", strerror(-rc));
        goto fail;
    }
    pv->started = 1;
    if ((rc = uv_async_init(loop, &pv->async, on_async))) {
        mms_err_set(err, rc, "preview: %s", uv_strerror(rc));
        goto fail;
    }
    pv->async.data = pv;
    uv_timer_init(loop, &pv->tick);
    pv->tick.data = pv;
    uv_timer_start(&pv->tick, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)&pv->tick);
    pv->handles_open = 2;
    pv->last_ms = -1e9;
    *out = pv;
    return 0;
fail:
    stop_encoder(pv);
    free_parts(pv);
    return rc;
}

/* Only a reference into the mailbox: the newest frame replaces one the
 * encoder has not taken yet. The lock is held for a pointer swap at most. */
void mmsd_preview_frame(struct mmsd_preview *pv, const AVFrame *f)
{
    double now = mms_now_ms();
    double interval = atomic_load(&pv->nviewers) ? WATCHED_INTERVAL_MS : IDLE_INTERVAL_MS;
    if (now - pv->last_ms < interval)
        return;
    pv->last_ms = now;
    pthread_mutex_lock(&pv->mail_lock);
    av_frame_unref(pv->mail);
    if (av_frame_ref(pv->mail, f) == 0)
        pthread_cond_signal(&pv->mail_cond);
    pthread_mutex_unlock(&pv->mail_lock);
}

void mmsd_preview_hold(struct mmsd_preview *pv, int held)
{
    pthread_mutex_lock(&pv->mail_lock);
    pv->held = held;
    pthread_cond_signal(&pv->mail_cond);
    pthread_mutex_unlock(&pv->mail_lock);
}

int64_t mmsd_preview_encoded(const struct mmsd_preview *pv)
{
    return atomic_load(&((struct mmsd_preview *)pv)->encoded);
}

/* Freed once its handle and every viewer's stream are gone: a stream's
 * close callback arrives later than the end asked for it. */
static void maybe_free(struct mmsd_preview *pv)
{
    if (!pv->closing || pv->handles_open || atomic_load(&pv->nviewers))
        return;
    void (*done)(void *) = pv->done;
    void *arg = pv->done_arg;
    free_parts(pv);
    if (done)
        done(arg);
}

static void viewer_gone(struct mmsd_http_stream *s, void *arg)
{
    struct mmsd_preview *pv = arg;
    for (int i = 0; i < MAX_VIEWERS; i++) {
        if (pv->viewers[i] == s) {
            pv->viewers[i] = NULL;
            atomic_fetch_sub(&pv->nviewers, 1);
        }
    }
    maybe_free(pv);
}

int mmsd_preview_serve(struct mmsd_preview *pv, struct mmsd_http_response *res)
{
    int slot = -1;
    for (int i = 0; i < MAX_VIEWERS && slot < 0; i++)
        if (!pv->viewers[i])
            slot = i;
    if (slot < 0 || pv->closing)
        return -EBUSY;
    mmsd_http_res_header(res, "Cache-Control", "no-cache, no-store");
    struct mmsd_http_stream *s;
    int rc = mmsd_http_stream_begin(res, "multipart/x-mixed-replace; boundary=" BOUNDARY,
                                    viewer_gone, pv, &s);
    if (rc)
        return rc;
    pv->viewers[slot] = s;
    atomic_fetch_add(&pv->nviewers, 1);
    mmsd_http_stream_write(s, "--" BOUNDARY "\r\n", sizeof(BOUNDARY) + 3);
    pthread_mutex_lock(&pv->lock);
    if (pv->len)
        send_part(s, pv->jpeg, pv->len);
    else
        send_part(s, pv->placeholder, pv->placeholder_len);
    pthread_mutex_unlock(&pv->lock);
    return 0;
}

int mmsd_preview_snapshot(struct mmsd_preview *pv, struct mmsd_http_response *res)
{
    int rc = -EAGAIN;
    pthread_mutex_lock(&pv->lock);
    if (pv->len) {
        mmsd_http_res_content_type(res, "image/jpeg");
        mmsd_http_res_header(res, "Cache-Control", "no-cache, no-store");
        rc = mmsd_http_res_append(res, pv->jpeg, pv->len);
    }
    pthread_mutex_unlock(&pv->lock);
    return rc;
}

int mmsd_preview_viewers(const struct mmsd_preview *pv)
{
    return atomic_load(&((struct mmsd_preview *)pv)->nviewers);
}

static void closed(uv_handle_t *h)
{
    struct mmsd_preview *pv = h->data;
    pv->handles_open--;
    maybe_free(pv);
}

void mmsd_preview_close(struct mmsd_preview *pv, void (*done)(void *arg), void *arg)
{
    /* The pipeline's threads are joined: no frame comes any more, and the
     * encode in progress, if any, is the last wait. */
    stop_encoder(pv);
    pv->closing = 1;
    pv->done = done;
    pv->done_arg = arg;
    for (int i = 0; i < MAX_VIEWERS; i++)
        if (pv->viewers[i])
            mmsd_http_stream_end(pv->viewers[i]);
    uv_close((uv_handle_t *)&pv->async, closed);
    uv_close((uv_handle_t *)&pv->tick, closed);
}
