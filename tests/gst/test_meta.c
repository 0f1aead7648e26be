/*
 * mmsseg inside an application: the GstMmsMaskMeta on every buffer read
 * through gst/gstmmsmeta.h alone (the plugin is loaded, not linked), held
 * to the frame mmsseg drew (style=mask) and to itself (0/255 bytes, the
 * fraction and box recomputed, the ROI meta's box), kept by a buffer copy
 * and dropped by a partial one; every=3 fresh on
 * frames 0, 3, 6 and the same mask buffer in between; properties refused
 * where they should be (out of range, unknown names, the model while
 * PLAYING); a missing model failing the state change with the library's
 * message on the bus; a flush starting the every-N count again.
 *
 * Usage: test_meta VIDEO MODEL (VIDEO "-": videotestsrc). GST_PLUGIN_PATH
 * must reach libgstmms.so.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include "gst/gstmmsmeta.h"

static int failures;

#define CHECK(cond, ...)                                                                     \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);         \
            fprintf(stderr, __VA_ARGS__);                                                    \
            fputc('\n', stderr);                                                             \
            failures++;                                                                      \
        }                                                                                    \
    } while (0)

#define FRAMES 12 /* at most what the clip has, and videotestsrc makes */
#define EVERY 3

static const char *video, *model;

static GstElement *make_pipeline(const char *seg_props)
{
    gchar *desc;
    /* A small frame keeps the test quick; odd sizes exercise rounding. */
    const char *tail = "videoconvert ! videoscale ! "
                       "video/x-raw,format=I420,width=322,height=181,pixel-aspect-ratio=1/1 ! "
                       "mmsseg name=seg %s ! appsink name=sink sync=false";
    gchar *t = g_strdup_printf(tail, seg_props);
    if (!strcmp(video, "-"))
        desc = g_strdup_printf("videotestsrc num-buffers=%d ! %s", FRAMES, t);
    else
        desc = g_strdup_printf("filesrc location=\"%s\" ! decodebin ! %s", video, t);
    g_free(t);
    GError *err = NULL;
    GstElement *p = gst_parse_launch(desc, &err);
    CHECK(p && !err, "gst_parse_launch(%s): %s", desc, err ? err->message : "?");
    g_clear_error(&err);
    g_free(desc);
    return p;
}

/* The mask's bytes, fraction and box, and the frame drawn as a mask. */
static void check_sample(GstSample *s, int i, GstBuffer **last_mask)
{
    GstBuffer *buf = gst_sample_get_buffer(s);
    GstVideoInfo vi;
    gst_video_info_from_caps(&vi, gst_sample_get_caps(s));
    int w = GST_VIDEO_INFO_WIDTH(&vi), h = GST_VIDEO_INFO_HEIGHT(&vi);

    GstMmsMaskMeta *m = gst_buffer_get_mms_mask_meta(buf);
    CHECK(m, "frame %d has no GstMmsMaskMeta", i);
    if (!m)
        return;
    CHECK((int)m->width == w && (int)m->height == h && (int)m->stride == w,
          "frame %d: meta %ux%u stride %u, frame %dx%d", i, m->width, m->height, m->stride, w, h);
    gboolean fresh = i % EVERY == 0;
    CHECK(m->fresh == fresh, "frame %d: fresh %d", i, m->fresh);
    if (fresh)
        *last_mask = m->mask;
    else
        CHECK(m->mask == *last_mask, "frame %d: not the mask of frame %d", i, i - i % EVERY);

    /* A copy of the buffer keeps the meta (the same mask, a reference);
     * a copy of half its memory is no longer the picture: dropped. */
    GstBuffer *copy = gst_buffer_copy(buf);
    GstMmsMaskMeta *cm = gst_buffer_get_mms_mask_meta(copy);
    CHECK(cm && cm->mask == m->mask && cm->x0 == m->x0 && cm->tool_fraction == m->tool_fraction &&
              cm->fresh == m->fresh,
          "frame %d: a copied buffer lost or changed the meta", i);
    gst_buffer_unref(copy);
    copy = gst_buffer_copy_region(buf, GST_BUFFER_COPY_ALL, 0, gst_buffer_get_size(buf) / 2);
    CHECK(!gst_buffer_get_mms_mask_meta(copy), "frame %d: half a buffer kept the meta", i);
    gst_buffer_unref(copy);

    GstMapInfo mm;
    if (!gst_buffer_map(m->mask, &mm, GST_MAP_READ)) {
        CHECK(0, "frame %d: the mask does not map", i);
        return;
    }
    CHECK(mm.size >= (gsize)m->stride * m->height, "frame %d: mask of %zu bytes", i, mm.size);
    long n = 0, bad = 0;
    int x0 = w, y0 = h, x1 = -1, y1 = -1;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            guint8 v = mm.data[(gsize)y * m->stride + x];
            bad += v != 0 && v != 255;
            if (v) {
                n++;
                x0 = MIN(x0, x), x1 = MAX(x1, x), y0 = MIN(y0, y), y1 = MAX(y1, y);
            }
        }
    CHECK(!bad, "frame %d: %ld mask bytes neither 0 nor 255", i, bad);
    CHECK(fabs(m->tool_fraction - (double)n / ((double)w * h)) < 1e-12,
          "frame %d: fraction %f, the mask has %ld of %d", i, m->tool_fraction, n, w * h);
    if (n)
        CHECK(m->x0 == x0 && m->y0 == y0 && m->x1 == x1 && m->y1 == y1,
              "frame %d: box %d,%d,%d,%d, the mask's %d,%d,%d,%d", i, m->x0, m->y0, m->x1, m->y1,
              x0, y0, x1, y1);
    else
        CHECK(m->x0 == -1, "frame %d: a box %d,%d,%d,%d with no tool", i, m->x0, m->y0, m->x1,
              m->y1);

    GstVideoRegionOfInterestMeta *roi = gst_buffer_get_video_region_of_interest_meta(buf);
    if (n)
        CHECK(roi && roi->roi_type == g_quark_from_string("tool") && (int)roi->x == x0 &&
                  (int)roi->y == y0 && (int)roi->w == x1 - x0 + 1 && (int)roi->h == y1 - y0 + 1,
              "frame %d: ROI meta %p does not hold the box", i, (void *)roi);
    else
        CHECK(!roi, "frame %d: an ROI meta with no tool", i);

    /* style=mask: Y is 235 on the tool and 16 elsewhere (limited range). */
    GstVideoFrame vf;
    if (!gst_video_frame_map(&vf, &vi, buf, GST_MAP_READ)) {
        CHECK(0, "frame %d does not map", i);
    } else {
        long off = 0;
        for (int y = 0; y < h; y++) {
            const guint8 *row = (const guint8 *)GST_VIDEO_FRAME_COMP_DATA(&vf, 0) +
                                (gsize)y * GST_VIDEO_FRAME_COMP_STRIDE(&vf, 0);
            for (int x = 0; x < w; x++)
                off += row[x] != (mm.data[(gsize)y * m->stride + x] ? 235 : 16);
        }
        CHECK(!off, "frame %d: %ld luma pixels are not the mask drawn", i, off);
        gst_video_frame_unmap(&vf);
    }
    gst_buffer_unmap(m->mask, &mm);
}

static void test_meta(void)
{
    gchar *props = g_strdup_printf("model=\"%s\" style=mask every=%d", model, EVERY);
    GstElement *p = make_pipeline(props);
    g_free(props);
    if (!p)
        return;
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    GstElement *seg = gst_bin_get_by_name(GST_BIN(p), "seg");
    CHECK(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE,
          "the pipeline does not start");
    GstBuffer *last = NULL;
    int i = 0, tool_frames = 0;
    for (; i < FRAMES; i++) {
        GstSample *s = gst_app_sink_pull_sample(GST_APP_SINK(sink));
        if (!s)
            break;
        check_sample(s, i, &last);
        GstMmsMaskMeta *m = gst_buffer_get_mms_mask_meta(gst_sample_get_buffer(s));
        tool_frames += m && m->x0 >= 0;
        gst_sample_unref(s);
        if (i == 1) {
            /* Fixed once started: refused, with a warning on the bus. */
            g_object_set(seg, "model", "/elsewhere.safetensors", NULL);
            gchar *now = NULL;
            g_object_get(seg, "model", &now, NULL);
            CHECK(!g_strcmp0(now, model), "model changed while PLAYING to %s", now);
            g_free(now);
            GstBus *bus = gst_element_get_bus(p);
            GstMessage *msg = gst_bus_timed_pop_filtered(bus, GST_SECOND, GST_MESSAGE_WARNING);
            CHECK(msg, "no warning on the bus for a model set while PLAYING");
            gst_clear_message(&msg);
            gst_object_unref(bus);
        }
    }
    CHECK(i == FRAMES, "%d frames, expected %d", i, FRAMES);
    /* The real video has tools in its first frames; videotestsrc need not. */
    if (strcmp(video, "-"))
        CHECK(tool_frames > 0, "no tool in any of %d frames", i);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(seg);
    gst_object_unref(p);
}

/* style and every changed while PLAYING take effect on the frames that
 * follow. appsink holds one buffer and blocks the streaming thread on the
 * next, so at most two frames past the one pulled have been through
 * mmsseg when the change is made; 4 leaves slack. */
static void test_runtime_change(void)
{
    enum { CHANGE_AT = 2, SLACK = 4, N = 10 };
    gchar *props = g_strdup_printf("model=\"%s\" style=mask every=1000", model);
    GstElement *p = make_pipeline(props);
    g_free(props);
    if (!p)
        return;
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    GstElement *seg = gst_bin_get_by_name(GST_BIN(p), "seg");
    g_object_set(sink, "max-buffers", 1u, NULL);
    CHECK(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE,
          "the pipeline does not start");
    int i = 0;
    for (; i < N; i++) {
        GstSample *s = gst_app_sink_pull_sample(GST_APP_SINK(sink));
        if (!s)
            break;
        GstBuffer *buf = gst_sample_get_buffer(s);
        GstMmsMaskMeta *m = gst_buffer_get_mms_mask_meta(buf);
        GstVideoInfo vi;
        gst_video_info_from_caps(&vi, gst_sample_get_caps(s));
        GstVideoFrame vf;
        long drawn = -1;
        if (m && gst_video_frame_map(&vf, &vi, buf, GST_MAP_READ)) {
            /* Luma pixels that are neither 16 nor 235: none when drawn as a mask. */
            drawn = 0;
            for (int y = 0; y < GST_VIDEO_INFO_HEIGHT(&vi); y++) {
                const guint8 *row = (const guint8 *)GST_VIDEO_FRAME_COMP_DATA(&vf, 0) +
                                    (gsize)y * GST_VIDEO_FRAME_COMP_STRIDE(&vf, 0);
                for (int x = 0; x < GST_VIDEO_INFO_WIDTH(&vi); x++)
                    drawn += row[x] != 16 && row[x] != 235;
            }
            gst_video_frame_unmap(&vf);
        }
        CHECK(m && drawn >= 0, "frame %d: no meta or no frame", i);
        if (m && i <= CHANGE_AT)
            CHECK(m->fresh == (i == 0) && drawn == 0, "frame %d (every=1000, mask): fresh %d, "
                  "%ld pixels not the mask", i, m->fresh, drawn);
        if (m && i >= CHANGE_AT + SLACK)
            CHECK(m->fresh && drawn > 0, "frame %d (every=1, off): fresh %d, the mask drawn",
                  i, m->fresh);
        gst_sample_unref(s);
        if (i == CHANGE_AT)
            gst_util_set_object_arg(G_OBJECT(seg), "style", "off"),
                g_object_set(seg, "every", 1u, NULL);
    }
    CHECK(i == N, "%d frames, expected %d", i, N);
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(sink);
    gst_object_unref(seg);
    gst_object_unref(p);
}

static int warnings;

static void count_warning(const gchar *domain, GLogLevelFlags level, const gchar *msg,
                          gpointer data)
{
    (void)domain, (void)level, (void)data;
    if (strstr(msg, "out of range") || strstr(msg, "invalid"))
        warnings++;
}

/* set_and_get: after the refused value, the property still has `keep`. */
static void test_properties(void)
{
    GstElement *e = gst_element_factory_make("mmsseg", NULL);
    CHECK(e, "no mmsseg element (GST_PLUGIN_PATH?)");
    if (!e)
        return;
    guint handler = g_log_set_handler("GLib-GObject", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_CRITICAL,
                                      count_warning, NULL);
    guint every = 0, color = 0;
    gfloat alpha = 0;
    gint style = -1;
    gchar *m = NULL;

    g_object_get(e, "every", &every, "color", &color, "alpha", &alpha, "style", &style, "model",
                 &m, NULL);
    CHECK(every == 1 && color == 0x00ff66 && fabsf(alpha - 0.45f) < 1e-6f && style == 0 && !m,
          "defaults: every %u color %06x alpha %f style %d model %s", every, color, alpha, style,
          m);
    g_free(m);

    warnings = 0;
    g_object_set(e, "every", 0u, NULL);
    g_object_set(e, "every", 1001u, NULL);
    g_object_set(e, "alpha", 1.5f, NULL);
    g_object_set(e, "color", 0x1000000u, NULL);
    g_object_set(e, "threads", 257u, NULL);
    CHECK(warnings == 5, "%d of 5 out-of-range values warned about", warnings);
    gst_util_set_object_arg(G_OBJECT(e), "style", "bogus");
    gst_util_set_object_arg(G_OBJECT(e), "precision", "fp64");
    g_object_get(e, "every", &every, "color", &color, "alpha", &alpha, "style", &style, NULL);
    CHECK(every == 1 && color == 0x00ff66 && fabsf(alpha - 0.45f) < 1e-6f && style == 0,
          "after refused values: every %u color %06x alpha %f style %d", every, color, alpha,
          style);

    /* And the good ones are taken, by their names as gst-launch gives them. */
    gst_util_set_object_arg(G_OBJECT(e), "style", "outline");
    gst_util_set_object_arg(G_OBJECT(e), "every", "7");
    gst_util_set_object_arg(G_OBJECT(e), "color", "0xff0000");
    gst_util_set_object_arg(G_OBJECT(e), "precision", "int8");
    gint prec = -1;
    g_object_get(e, "every", &every, "color", &color, "style", &style, "precision", &prec, NULL);
    CHECK(every == 7 && color == 0xff0000 && style == 1 && prec == 2,
          "set: every %u color %06x style %d precision %d", every, color, style, prec);
    g_log_remove_handler("GLib-GObject", handler);
    gst_object_unref(e);
}

/* A missing model: the state change fails and the bus has the library's
 * message, which names the file. */
static void test_missing_model(void)
{
    const char *missing = "/nonexistent/mms-test-missing.safetensors";
    gchar *props = g_strdup_printf("model=%s", missing);
    GstElement *p = make_pipeline(props);
    g_free(props);
    if (!p)
        return;
    GstStateChangeReturn r = gst_element_set_state(p, GST_STATE_PAUSED);
    if (r == GST_STATE_CHANGE_ASYNC)
        r = gst_element_get_state(p, NULL, NULL, 10 * GST_SECOND);
    CHECK(r == GST_STATE_CHANGE_FAILURE, "a missing model did not fail the pipeline (%d)", r);
    GstBus *bus = gst_element_get_bus(p);
    GstMessage *msg = gst_bus_timed_pop_filtered(bus, GST_SECOND, GST_MESSAGE_ERROR);
    gst_object_unref(bus);
    CHECK(msg, "no error on the bus");
    if (msg) {
        GError *err = NULL;
        gst_message_parse_error(msg, &err, NULL);
        CHECK(err && strstr(err->message, missing) &&
                  g_error_matches(err, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND),
              "error '%s' does not name the file as not found", err ? err->message : "");
        g_clear_error(&err);
        gst_message_unref(msg);
    }
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
}

/* Pushes one grey 64x48 I420 frame at pts i and pulls it back, or NULL
 * when none came. */
static GstSample *push_pull_sample(GstElement *src, GstElement *sink, int i)
{
    GstBuffer *b = gst_buffer_new_allocate(NULL, 64 * 48 * 3 / 2, NULL);
    gst_buffer_memset(b, 0, 0x80, 64 * 48 * 3 / 2);
    GST_BUFFER_PTS(b) = (GstClockTime)i * GST_SECOND / 25;
    GST_BUFFER_DURATION(b) = GST_SECOND / 25;
    CHECK(gst_app_src_push_buffer(GST_APP_SRC(src), b) == GST_FLOW_OK, "push %d", i);
    return gst_app_sink_try_pull_sample(GST_APP_SINK(sink), 10 * GST_SECOND);
}

/* The same, for the frame's mask meta's fresh flag, or -1 when none came. */
static int push_pull(GstElement *src, GstElement *sink, int i)
{
    GstSample *s = push_pull_sample(src, sink, i);
    if (!s)
        return -1;
    GstMmsMaskMeta *m = gst_buffer_get_mms_mask_meta(gst_sample_get_buffer(s));
    int fresh = m ? m->fresh : -1;
    gst_sample_unref(s);
    return fresh;
}

/* appsrc (64x48 I420 at 25 fps) ! ELEMENTS ! appsink, or NULL. */
static GstElement *appsrc_pipeline(const char *elements)
{
    gchar *desc = g_strdup_printf(
        "appsrc name=src format=time caps=video/x-raw,format=I420,width=64,height=48,"
        "framerate=25/1 ! %s ! appsink name=sink sync=false",
        elements);
    GError *err = NULL;
    GstElement *p = gst_parse_launch(desc, &err);
    CHECK(p && !err, "gst_parse_launch(%s): %s", desc, err ? err->message : "?");
    g_free(desc);
    g_clear_error(&err);
    return p;
}

/* A flush (what a flushing seek sends) starts the every-N count again:
 * the first frame after it is segmented, not drawn with a mask from
 * before the seek. */
static void test_flush_starts_afresh(void)
{
    gchar *seg_desc = g_strdup_printf("mmsseg name=seg model=\"%s\" every=5", model);
    GstElement *p = appsrc_pipeline(seg_desc);
    g_free(seg_desc);
    if (!p)
        return;
    GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    GstElement *seg = gst_bin_get_by_name(GST_BIN(p), "seg");
    CHECK(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE,
          "the pipeline does not start");
    CHECK(push_pull(src, sink, 0) == 1, "frame 0 is not fresh");
    CHECK(push_pull(src, sink, 1) == 0, "frame 1 is fresh with every=5");
    GstPad *pad = gst_element_get_static_pad(seg, "sink");
    CHECK(gst_pad_send_event(pad, gst_event_new_flush_start()), "flush-start refused");
    CHECK(gst_pad_send_event(pad, gst_event_new_flush_stop(TRUE)), "flush-stop refused");
    GstSegment segment;
    gst_segment_init(&segment, GST_FORMAT_TIME);
    CHECK(gst_pad_send_event(pad, gst_event_new_segment(&segment)), "segment refused");
    gst_object_unref(pad);
    int fresh = push_pull(src, sink, 2);
    CHECK(fresh == 1, "the first frame after a flush has fresh=%d, not 1", fresh);
    CHECK(push_pull(src, sink, 3) == 0, "the next frame is fresh with every=5");
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(src);
    gst_object_unref(sink);
    gst_object_unref(seg);
    gst_object_unref(p);
}

static int count_mask_metas(GstBuffer *b)
{
    /* By name, as applications find it (the plugin is not linked in). */
    GType api = g_type_from_name(GST_MMS_MASK_META_API_NAME);
    gpointer state = NULL;
    int n = 0;
    while (api && gst_buffer_iterate_meta_filtered(b, &state, api))
        n++;
    return n;
}

/* Two mmsseg in a row: the frame leaves with the second one's mask meta
 * only (every=1 makes each frame fresh there; the first, every=5, leaves
 * frame 1 stale). */
static void test_second_element_replaces_the_meta(void)
{
    gchar *segs = g_strdup_printf(
        "mmsseg model=\"%s\" every=5 style=off ! mmsseg model=\"%s\" every=1", model, model);
    GstElement *p = appsrc_pipeline(segs);
    g_free(segs);
    if (!p)
        return;
    GstElement *src = gst_bin_get_by_name(GST_BIN(p), "src");
    GstElement *sink = gst_bin_get_by_name(GST_BIN(p), "sink");
    CHECK(gst_element_set_state(p, GST_STATE_PLAYING) != GST_STATE_CHANGE_FAILURE,
          "the pipeline does not start");
    for (int i = 0; i < 2; i++) {
        GstSample *s = push_pull_sample(src, sink, i);
        CHECK(s, "frame %d did not come out", i);
        if (!s)
            break;
        GstBuffer *out = gst_sample_get_buffer(s);
        int n = count_mask_metas(out);
        CHECK(n == 1, "frame %d leaves two mmsseg with %d mask metas, not 1", i, n);
        GstMmsMaskMeta *m = gst_buffer_get_mms_mask_meta(out);
        CHECK(m && m->fresh == 1, "frame %d: the meta is not the second element's (fresh %d)", i,
              m ? m->fresh : -1);
        gst_sample_unref(s);
    }
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(src);
    gst_object_unref(sink);
    gst_object_unref(p);
}

int main(int argc, char **argv)
{
    gst_init(&argc, &argv);
    if (argc != 3) {
        fprintf(stderr, "usage: test_meta VIDEO|- MODEL\n");
        return 2;
    }
    video = argv[1];
    model = argv[2];
    test_properties();
    test_meta();
    test_runtime_change();
    test_missing_model();
    test_flush_starts_afresh();
    test_second_element_replaces_the_meta();
    /* Frees what GStreamer holds, so that LeakSanitizer sees ours. */
    gst_deinit();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("gst_meta: all checks passed\n");
    return 0;
}
