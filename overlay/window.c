#include "overlay/window.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <SDL.h>
#include <libavutil/pixfmt.h>

#include "overlay/text.h"

/* The window opens no larger than this; the video keeps its size in the
 * texture and is scaled on screen. */
#define FIT_W 1280
#define FIT_H 720
/* The HUD's text height: a thirtieth of the picture, as the frame's own
 * text (overlay/text.h), but never below what reads on a small window. */
#define HUD_LINES 30
#define HUD_MIN_PX 12

struct window {
    SDL_Window *win;
    SDL_Renderer *ren;
    SDL_Texture *tex;
    int video_up; /* SDL_InitSubSystem(VIDEO) succeeded: quit it once */
    int w, h;
    int fullscreen;
    SDL_YUV_CONVERSION_MODE yuv_mode;
    /* Paused, the texture is the frozen frame: writes leave it alone. */
    int paused;
    int have_frame;              /* the texture holds a frame */
    struct mms_frame_meta meta;  /* of the frame shown, for a redraw */
    unsigned events;             /* MMS_SINK_EVENT_* not yet checked */
    /* The HUD's text: its coverage, then a texture white in colour with the
     * coverage as alpha, both grown to the largest line drawn so far, so
     * frames allocate nothing. */
    uint8_t *cov;
    size_t cov_cap;
    SDL_Texture *text_tex;
    int text_w, text_h;
};

int mms_window_available(void)
{
    const char *x = getenv("DISPLAY"), *wl = getenv("WAYLAND_DISPLAY");
    return (x && *x) || (wl && *wl);
}

/* The window is a monitor in an operating room, among other software:
 * it must not take the audio device, keep a compositor from compositing
 * it, minimise itself when focus moves to another screen, or take Ctrl-C
 * away from the pipeline (which finalises its recordings on SIGINT). */
static void set_hints(void)
{
    SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
    SDL_SetHint(SDL_HINT_AUDIODRIVER, "dummy");
    SDL_SetHint(SDL_HINT_VIDEO_X11_NET_WM_BYPASS_COMPOSITOR, "0");
    SDL_SetHint(SDL_HINT_VIDEO_MINIMIZE_ON_FOCUS_LOSS, "0");
    SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "linear");
}

static void teardown(struct window *wd)
{
    if (wd->text_tex)
        SDL_DestroyTexture(wd->text_tex);
    wd->text_tex = NULL;
    wd->text_w = wd->text_h = 0;
    free(wd->cov);
    wd->cov = NULL;
    wd->cov_cap = 0;
    if (wd->tex)
        SDL_DestroyTexture(wd->tex);
    if (wd->ren)
        SDL_DestroyRenderer(wd->ren);
    if (wd->win)
        SDL_DestroyWindow(wd->win);
    if (wd->video_up) {
        SDL_QuitSubSystem(SDL_INIT_VIDEO);
        /* The last SDL user in the process also lets go of what SDL keeps
         * for it (its D-Bus connection): a window opened and closed again,
         * say on a display hot-plug, must not leak. */
        if (!SDL_WasInit(SDL_INIT_EVERYTHING))
            SDL_Quit();
    }
    wd->tex = NULL;
    wd->ren = NULL;
    wd->win = NULL;
    wd->video_up = 0;
}

/* The video's size, shrunk (aspect kept) until it fits FIT_W x FIT_H. */
static void initial_size(int w, int h, int *ww, int *wh)
{
    *ww = w;
    *wh = h;
    if (w > FIT_W || h > FIT_H) {
        if ((long long)w * FIT_H > (long long)h * FIT_W) {
            *ww = FIT_W;
            *wh = (int)((long long)h * FIT_W / w);
        } else {
            *wh = FIT_H;
            *ww = (int)((long long)w * FIT_H / h);
        }
        if (*ww < 1)
            *ww = 1;
        if (*wh < 1)
            *wh = 1;
    }
}

static int window_open(struct mms_sink *s, const char *url, const struct mms_sink_params *p,
                       struct mms_err *err)
{
    struct window *wd = s->priv;
    (void)url;
    if (p->width < 2 || p->height < 2 || p->width > 16384 || p->height > 16384)
        return mms_err_set(err, -EINVAL, "window: bad video size %dx%d", p->width, p->height);
    if (!mms_window_available())
        return mms_err_set(err, -ENODEV,
                           "no display: cannot open a window (DISPLAY is not set)");

    int ret;
    set_hints();
    if (SDL_InitSubSystem(SDL_INIT_VIDEO) < 0) {
        const char *d = getenv("DISPLAY");
        return mms_err_set(err, -ENODEV, "cannot open a window on display '%s': %s",
                           d ? d : "", SDL_GetError());
    }
    wd->video_up = 1;
    wd->w = p->width;
    wd->h = p->height;

    int ww, wh;
    initial_size(p->width, p->height, &ww, &wh);
    wd->win = SDL_CreateWindow(p->title ? p->title : "mms", SDL_WINDOWPOS_CENTERED,
                               SDL_WINDOWPOS_CENTERED, ww, wh,
                               SDL_WINDOW_RESIZABLE | SDL_WINDOW_ALLOW_HIGHDPI);
    if (!wd->win) {
        ret = mms_err_set(err, -ENODEV, "cannot create a window: %s", SDL_GetError());
        goto fail;
    }
    /* A GPU if there is one; otherwise SDL's software renderer (Xvfb, a
     * bare VM) still shows every frame, only at more CPU. */
    wd->ren = SDL_CreateRenderer(wd->win, -1, SDL_RENDERER_ACCELERATED);
    if (!wd->ren)
        wd->ren = SDL_CreateRenderer(wd->win, -1, SDL_RENDERER_SOFTWARE);
    if (!wd->ren) {
        ret = mms_err_set(err, -ENODEV, "cannot create a renderer: %s", SDL_GetError());
        goto fail;
    }
    wd->tex = SDL_CreateTexture(wd->ren, SDL_PIXELFORMAT_IYUV, SDL_TEXTUREACCESS_STREAMING,
                                p->width, p->height);
    if (!wd->tex) {
        ret = mms_err_set(err, -ENOMEM, "cannot create a %dx%d video texture: %s", p->width,
                          p->height, SDL_GetError());
        goto fail;
    }
    wd->yuv_mode = SDL_YUV_CONVERSION_BT601;
    SDL_SetYUVConversionMode(wd->yuv_mode);
    return 0;

fail:
    teardown(wd);
    return ret;
}

static void on_key(struct window *wd, const SDL_KeyboardEvent *k)
{
    switch (k->keysym.sym) {
    case SDLK_q:
    case SDLK_ESCAPE:
        wd->events |= MMS_SINK_EVENT_CLOSED;
        break;
    case SDLK_SPACE:
        /* A held key must not flicker pause on and off; two presses
         * between checks are no change. */
        if (!k->repeat)
            wd->events ^= MMS_SINK_EVENT_PAUSE;
        break;
    case SDLK_o:
        if (!k->repeat)
            wd->events |= MMS_SINK_EVENT_NEXT_STYLE;
        break;
    case SDLK_f:
        if (!k->repeat) {
            wd->fullscreen = !wd->fullscreen;
            SDL_SetWindowFullscreen(wd->win,
                                    wd->fullscreen ? SDL_WINDOW_FULLSCREEN_DESKTOP : 0);
        }
        break;
    default:
        break;
    }
}

/* 1 when the window must be drawn again: uncovered or resized, which
 * matters while paused, when no frame comes to draw it. */
static int poll_events(struct window *wd)
{
    SDL_Event ev;
    int damaged = 0;
    while (SDL_PollEvent(&ev)) {
        if (ev.type == SDL_QUIT ||
            (ev.type == SDL_WINDOWEVENT && ev.window.event == SDL_WINDOWEVENT_CLOSE))
            wd->events |= MMS_SINK_EVENT_CLOSED;
        else if (ev.type == SDL_KEYDOWN)
            on_key(wd, &ev.key);
        else if (ev.type == SDL_WINDOWEVENT && (ev.window.event == SDL_WINDOWEVENT_EXPOSED ||
                                                ev.window.event == SDL_WINDOWEVENT_SIZE_CHANGED))
            damaged = 1;
    }
    return damaged;
}

/* SDL converts to RGB itself; it must use the frame's own matrix. The
 * overlay colours are computed in BT.601, which is what untagged frames
 * are taken to be. */
static void set_yuv_mode(struct window *wd, const AVFrame *f)
{
    SDL_YUV_CONVERSION_MODE m = SDL_YUV_CONVERSION_BT601;
    if (f->color_range == AVCOL_RANGE_JPEG)
        m = SDL_YUV_CONVERSION_JPEG;
    else if (f->colorspace == AVCOL_SPC_BT709)
        m = SDL_YUV_CONVERSION_BT709;
    if (m != wd->yuv_mode) {
        wd->yuv_mode = m;
        SDL_SetYUVConversionMode(m);
    }
}

/* The largest rectangle of the video's aspect inside out_w x out_h,
 * centred: black bars rather than a stretched picture. */
static SDL_Rect letterbox(int vw, int vh, int out_w, int out_h)
{
    SDL_Rect r = {0, 0, out_w, out_h};
    if ((long long)out_w * vh > (long long)out_h * vw)
        r.w = (int)((long long)vw * out_h / vh);
    else
        r.h = (int)((long long)vh * out_w / vw);
    r.x = (out_w - r.w) / 2;
    r.y = (out_h - r.h) / 2;
    return r;
}

/* ---- HUD: text from overlay/text.h, through a texture ---- */

/* A w x h texture to draw text through, the one kept if it is big enough. */
static SDL_Texture *text_texture(struct window *wd, int w, int h)
{
    if (wd->text_tex && w <= wd->text_w && h <= wd->text_h)
        return wd->text_tex;
    int tw = w > wd->text_w ? w : wd->text_w, th = h > wd->text_h ? h : wd->text_h;
    SDL_Texture *t = SDL_CreateTexture(wd->ren, SDL_PIXELFORMAT_ARGB8888,
                                       SDL_TEXTUREACCESS_STREAMING, tw, th);
    if (!t || SDL_SetTextureBlendMode(t, SDL_BLENDMODE_BLEND) < 0) {
        if (t)
            SDL_DestroyTexture(t);
        return NULL;
    }
    if (wd->text_tex)
        SDL_DestroyTexture(wd->text_tex);
    wd->text_tex = t;
    wd->text_w = tw;
    wd->text_h = th;
    return t;
}

/* Text with its top-left at (x, y), px high, on a translucent dark box
 * mms_text_pad(px) wider all round. The text is anti-aliased coverage,
 * drawn as the alpha of white pixels tinted to the colour. */
static int hud_text(struct window *wd, int x, int y, int px, const char *t, uint32_t rgb)
{
    int tw, th, pad = mms_text_pad(px);
    mms_text_extent(px, t, &tw, &th);
    SDL_Rect box = {x - pad, y - pad, tw + 2 * pad, th + 2 * pad};
    if (SDL_SetRenderDrawColor(wd->ren, 0, 0, 0, 160) < 0 ||
        SDL_RenderFillRect(wd->ren, &box) < 0)
        return -1;
    /* The box's size: ink that reaches past the text's advance (an italic
     * overhang, a trailing 'f') still shows. */
    int w = box.w, h = box.h;
    size_t need = (size_t)w * h;
    if (need > wd->cov_cap) {
        uint8_t *c = realloc(wd->cov, need);
        if (!c)
            return SDL_OutOfMemory();
        wd->cov = c;
        wd->cov_cap = need;
    }
    SDL_Texture *tex = text_texture(wd, w, h);
    if (!tex || mms_text_coverage(wd->cov, w, h, w, pad, pad, px, t) < 0)
        return -1;
    SDL_Rect src = {0, 0, w, h};
    void *pixels;
    int pitch;
    if (SDL_LockTexture(tex, &src, &pixels, &pitch) < 0)
        return -1;
    for (int r = 0; r < h; r++) {
        uint32_t *row = (uint32_t *)((uint8_t *)pixels + (size_t)r * pitch);
        const uint8_t *a = wd->cov + (size_t)r * w;
        for (int c = 0; c < w; c++)
            row[c] = (uint32_t)a[c] << 24 | 0xffffffu;
    }
    SDL_UnlockTexture(tex);
    if (SDL_SetTextureColorMod(tex, rgb >> 16 & 0xff, rgb >> 8 & 0xff, rgb & 0xff) < 0)
        return -1;
    return SDL_RenderCopy(wd->ren, tex, &src, &box);
}

static int draw_hud(struct window *wd, const SDL_Rect *pic, const struct mms_frame_meta *m)
{
    /* Sized by the picture on screen, so it reads the same from across the
     * room whatever the window's size; still fits on a small window. */
    int px = mms_text_px(pic->h, HUD_LINES);
    px = px < HUD_MIN_PX ? HUD_MIN_PX : px;
    int margin = px / 2 + mms_text_pad(px);
    char line[96];
    snprintf(line, sizeof(line), "fps %.1f  infer %.1f ms  mask age %.0f ms", m->fps,
             m->infer_ms, m->mask_age_ms);
    if (SDL_SetRenderDrawBlendMode(wd->ren, SDL_BLENDMODE_BLEND) < 0 ||
        hud_text(wd, pic->x + margin, pic->y + margin, px, line, 0xffffff) < 0)
        return -1;
    if (wd->paused) {
        int th;
        mms_text_extent(px, "PAUSED", NULL, &th);
        if (hud_text(wd, pic->x + margin, pic->y + pic->h - margin - th, px, "PAUSED",
                     0xffcc00) < 0)
            return -1;
    }
    if (m->no_signal) {
        static const char msg[] = "NO SIGNAL";
        int big = 4 * px, tw, th;
        mms_text_extent(big, msg, &tw, &th);
        if (hud_text(wd, pic->x + (pic->w - tw) / 2, pic->y + (pic->h - th) / 2, big, msg,
                     0xffcc00) < 0)
            return -1;
    }
    return 0;
}

/* The texture (the frame shown last, or black before the first) and
 * the HUD of that frame. */
static int render(struct window *wd, struct mms_err *err)
{
    int ow, oh;
    if (SDL_GetRendererOutputSize(wd->ren, &ow, &oh) < 0)
        goto sdl_fail;
    SDL_Rect pic = letterbox(wd->w, wd->h, ow, oh);
    if (SDL_SetRenderDrawColor(wd->ren, 0, 0, 0, 255) < 0 || SDL_RenderClear(wd->ren) < 0)
        goto sdl_fail;
    if (wd->have_frame && (SDL_RenderCopy(wd->ren, wd->tex, NULL, &pic) < 0 ||
                           draw_hud(wd, &pic, &wd->meta) < 0))
        goto sdl_fail;
    SDL_RenderPresent(wd->ren);
    return 0;

sdl_fail:
    return mms_err_set(err, -EIO, "window: %s", SDL_GetError());
}

/* Paused, the frame is taken and not shown: the frozen one is drawn again
 * (the HUD's numbers stay those of the frozen frame). */
static int window_write(struct mms_sink *s, const AVFrame *f, const struct mms_frame_meta *m,
                        struct mms_err *err)
{
    struct window *wd = s->priv;
    if (f->format != AV_PIX_FMT_YUV420P || f->width != wd->w || f->height != wd->h)
        return mms_err_set(err, -EINVAL, "window: got a %dx%d frame, opened for %dx%d YUV420P",
                           f->width, f->height, wd->w, wd->h);
    if (!wd->paused) {
        set_yuv_mode(wd, f);
        if (SDL_UpdateYUVTexture(wd->tex, NULL, f->data[0], f->linesize[0], f->data[1],
                                 f->linesize[1], f->data[2], f->linesize[2]) < 0)
            return mms_err_set(err, -EIO, "window: %s", SDL_GetError());
        wd->have_frame = 1;
        wd->meta = *m;
    }
    return render(wd, err);
}

static int window_control(struct mms_sink *s, int request, void *data, struct mms_err *err)
{
    struct window *wd = s->priv;
    switch (request) {
    case MMS_SINK_CTRL_PAUSE:
    case MMS_SINK_CTRL_RESUME:
        if (wd->paused == (request == MMS_SINK_CTRL_PAUSE))
            return 0;
        wd->paused = request == MMS_SINK_CTRL_PAUSE;
        /* At once, so that PAUSED shows (or goes) even with no frame coming. */
        return render(wd, err);
    case MMS_SINK_CTRL_REDRAW:
        return render(wd, err);
    case MMS_SINK_CTRL_CHECK_EVENTS:
        if (!data)
            return mms_err_set(err, -EINVAL, "window: nowhere to put the events");
        if (poll_events(wd) && render(wd, err) < 0)
            return -EIO;
        *(unsigned *)data = wd->events;
        wd->events = 0;
        return 0;
    default:
        return -ENOTSUP;
    }
}

static int window_close(struct mms_sink *s, struct mms_err *err)
{
    (void)err;
    teardown(s->priv);
    return 0;
}

const struct mms_sink_driver mms_sink_window = {
    .name = "window",
    .probe = NULL,
    .priv_size = sizeof(struct window),
    .realtime = 1,
    .open = window_open,
    .write = window_write,
    .control = window_control,
    .close = window_close,
};
