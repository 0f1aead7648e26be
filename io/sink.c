#include "io/sink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libavutil/error.h>

#include "core/redact.h"

/* The drivers chosen by URL; the window is opened by name. */
static const struct mms_sink_driver *const drivers[] = {
    &mms_sink_file,
    &mms_sink_stream,
    &mms_sink_null,
    NULL,
};

const struct mms_sink_driver *mms_sink_find(const char *url)
{
    const struct mms_sink_driver *best = NULL;
    int best_score = 0;
    for (const struct mms_sink_driver *const *d = drivers; *d; d++) {
        int score = (*d)->probe ? (*d)->probe(url) : 0;
        if (score > best_score) {
            best = *d;
            best_score = score;
        }
    }
    return best;
}

static void sink_free(struct mms_sink *s)
{
    if (!s)
        return;
    free(s->priv);
    free(s->url);
    free(s);
}

/* fd < 0: the driver opens `url` itself. */
static int sink_open(const struct mms_sink_driver *driver, const char *url, int fd,
                     const struct mms_sink_params *p, struct mms_sink **out,
                     struct mms_err *err)
{
    *out = NULL;
    if (!driver && !(driver = mms_sink_find(url))) {
        /* A scheme mistyped (rtmpz://) still carries its password. */
        char shown[1024];
        mms_redact_url(url, shown, sizeof(shown));
        return mms_err_set(err, AVERROR(EINVAL),
                           "%s: not an output this program writes (a file ending .mp4, "
                           ".mov, .mkv or .ts, udp://, tcp://, srt://, rtmp://, rtsp:// or null)",
                           shown);
    }
    if (p->width < 1 || p->height < 1)
        return mms_err_set(err, AVERROR(EINVAL), "%s: bad output size %dx%d", url, p->width,
                           p->height);
    if (p->encoder && !driver->write_packet)
        return mms_err_set(err, AVERROR(EINVAL), "%s: a %s output cannot share an encoder",
                           url, driver->name);
    if (fd >= 0 && !driver->open_fd)
        return mms_err_set(err, AVERROR(EINVAL), "%s: a %s output cannot write to an open "
                           "file", url, driver->name);
    struct mms_sink *s = calloc(1, sizeof(*s));
    /* Secrets hidden ("***" may be longer than one): s->url is for
     * messages, which are cut at their length, possibly inside a secret
     * that a later redaction would then no longer see. */
    size_t shown = 2 * strlen(url) + 8;
    int ret;
    if (!s || !(s->url = malloc(shown)) || mms_redact_url(url, s->url, shown) < 0 ||
        (driver->priv_size && !(s->priv = calloc(1, driver->priv_size)))) {
        ret = mms_err_set(err, AVERROR(ENOMEM), "out of memory");
        goto fail;
    }
    s->driver = driver;
    ret = fd >= 0 ? driver->open_fd(s, url, fd, p, err) : driver->open(s, url, p, err);
    if (ret < 0)
        goto fail;
    *out = s;
    return 0;
fail:
    sink_free(s);
    return ret;
}

int mms_sink_open(const struct mms_sink_driver *driver, const char *url,
                  const struct mms_sink_params *p, struct mms_sink **out,
                  struct mms_err *err)
{
    return sink_open(driver, url, -1, p, out, err);
}

int mms_sink_open_fd(const struct mms_sink_driver *driver, const char *url, int fd,
                     const struct mms_sink_params *p, struct mms_sink **out,
                     struct mms_err *err)
{
    *out = NULL;
    if (fd < 0)
        return mms_err_set(err, AVERROR(EBADF), "%s: no file to write to", url);
    return sink_open(driver, url, fd, p, out, err);
}

int mms_sink_write(struct mms_sink *s, const AVFrame *frame, const struct mms_frame_meta *m,
                   struct mms_err *err)
{
    static const struct mms_frame_meta none;
    return s->driver->write(s, frame, m ? m : &none, err);
}

int mms_sink_write_packet(struct mms_sink *s, const AVPacket *pkt, struct mms_err *err)
{
    if (!s->driver->write_packet)
        return mms_err_set(err, AVERROR(EINVAL), "%s: takes no packets", s->url);
    return s->driver->write_packet(s, pkt, err);
}

int mms_sink_control(struct mms_sink *s, int request, void *data, struct mms_err *err)
{
    return s->driver->control ? s->driver->control(s, request, data, err) : -ENOTSUP;
}

int mms_sink_encoding(const struct mms_sink_driver *driver, const char *url,
                      const struct mms_sink_params *p, struct mms_enc_settings *s)
{
    if (!driver && !(driver = mms_sink_find(url)))
        return 0;
    return driver->encoding ? driver->encoding(url, p, s) : 0;
}

int mms_sink_close(struct mms_sink *s, struct mms_err *err)
{
    if (!s)
        return 0;
    int ret = s->driver->close ? s->driver->close(s, err) : 0;
    sink_free(s);
    return ret;
}
