/*
 * mmsseg (gst/gstmmsseg.h): a GstVideoFilter in place on I420.
 *
 * Threads: properties are set from the application's threads while the
 * streaming thread reads them, so all of them live under the object lock;
 * the streaming thread copies what it needs once per frame. The engine,
 * the frame counter and the last mask belong to the streaming thread
 * (start/stop run while it does not).
 */
#include "gst/gstmmsseg.h"

#include <errno.h>
#include <string.h>

#include "gst/gstmmsmeta.h"

GST_DEBUG_CATEGORY_STATIC(gst_mms_seg_debug);
#define GST_CAT_DEFAULT gst_mms_seg_debug

#define DEFAULT_PRECISION MMS_PRECISION_AUTO
#define DEFAULT_THREADS 0
#define DEFAULT_STYLE MMS_DRAW_FILL
#define DEFAULT_ALPHA 0.45f
#define DEFAULT_COLOR 0x00ff66
#define DEFAULT_EVERY 1
#define DEFAULT_TTA MMS_FLIP_AUTO
/* As `mms run`'s options allow. */
#define MAX_THREADS 256
#define MAX_EVERY 1000

struct _GstMmsSeg {
    GstVideoFilter parent;

    /* Properties, under the object lock. */
    gchar *model;
    gint precision;
    guint threads;
    gint style;
    gfloat alpha;
    guint color;
    guint every;
    gint tta;
    gboolean started; /* model, precision and threads are fixed */

    /* The streaming thread's. */
    struct mms_engine *engine;
    struct mms_frame tmpl; /* format, size and colorimetry of the negotiated caps */
    guint64 count;         /* frames seen since start, for every=N */
    GstBuffer *mask;       /* the last mask, shared with the buffers that carry it */
    struct mms_mask_info stats; /* of that mask */
    gint tta_set;               /* the flip the engine was given */
};

enum {
    PROP_0,
    PROP_MODEL,
    PROP_PRECISION,
    PROP_THREADS,
    PROP_STYLE,
    PROP_ALPHA,
    PROP_COLOR,
    PROP_EVERY,
    PROP_TTA,
};

#define gst_mms_seg_parent_class parent_class
G_DEFINE_TYPE(GstMmsSeg, gst_mms_seg, GST_TYPE_VIDEO_FILTER);
GST_ELEMENT_REGISTER_DEFINE(mmsseg, "mmsseg", GST_RANK_NONE, GST_TYPE_MMS_SEG);

/* mms_draw_mask() draws on YUV420P only; the network would take NV12 too,
 * but a frame it cannot be drawn on is no use to an overlay element. The
 * sizes are the library's, so that a scaler before the element is asked
 * for a size it takes, rather than the first frame failing. */
#define MMSSEG_SIDES "(int) [ 1, " G_STRINGIFY(MMS_FRAME_MAX_SIDE) " ]"
#define MMSSEG_CAPS                                                                          \
    "video/x-raw, format = (string) I420, width = " MMSSEG_SIDES ", height = " MMSSEG_SIDES \
    ", framerate = " GST_VIDEO_FPS_RANGE
static GstStaticPadTemplate sink_template =
    GST_STATIC_PAD_TEMPLATE("sink", GST_PAD_SINK, GST_PAD_ALWAYS, GST_STATIC_CAPS(MMSSEG_CAPS));
static GstStaticPadTemplate src_template =
    GST_STATIC_PAD_TEMPLATE("src", GST_PAD_SRC, GST_PAD_ALWAYS, GST_STATIC_CAPS(MMSSEG_CAPS));

#define GST_TYPE_MMS_SEG_PRECISION (gst_mms_seg_precision_get_type())
static GType gst_mms_seg_precision_get_type(void)
{
    static gsize type;
    static const GEnumValue values[] = {
        {MMS_PRECISION_AUTO,
         "int8 if the model's calibration passed and is not slower, else bf16 where the CPU has "
         "it, else fp32",
         "auto"},
        {MMS_PRECISION_FP32, "fp32", "fp32"},
        {MMS_PRECISION_INT8, "int8 (a model from mms calibrate)", "int8"},
        {MMS_PRECISION_BF16, "bf16 (avx512_bf16 or AMX; else fp32)", "bf16"},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type))
        g_once_init_leave(&type, g_enum_register_static("GstMmsSegPrecision", values));
    return type;
}

#define GST_TYPE_MMS_SEG_TTA (gst_mms_seg_tta_get_type())
static GType gst_mms_seg_tta_get_type(void)
{
    static gsize type;
    static const GEnumValue values[] = {
        {MMS_FLIP_AUTO,
         "flip where int8 runs, at least twice as fast as fp32 (as mms run --tta auto)", "auto"},
        {MMS_FLIP_OFF, "one network run per frame", "off"},
        {MMS_FLIP_ON, "the mean of the frame's and its mirror's logits (two runs)", "flip"},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type))
        g_once_init_leave(&type, g_enum_register_static("GstMmsSegTta", values));
    return type;
}

#define GST_TYPE_MMS_SEG_STYLE (gst_mms_seg_style_get_type())
static GType gst_mms_seg_style_get_type(void)
{
    static gsize type;
    static const GEnumValue values[] = {
        {MMS_DRAW_FILL, "the colour blended over the tool at alpha", "fill"},
        {MMS_DRAW_OUTLINE, "the tool's contour, 2 px, opaque colour", "outline"},
        {MMS_DRAW_MASK, "the mask as video: white tool on black", "mask"},
        {MMS_DRAW_OFF, "the video untouched (the mask still attached as meta)", "off"},
        {0, NULL, NULL},
    };
    if (g_once_init_enter(&type))
        g_once_init_leave(&type, g_enum_register_static("GstMmsSegStyle", values));
    return type;
}

static void gst_mms_seg_init(GstMmsSeg *self)
{
    self->model = NULL;
    self->precision = DEFAULT_PRECISION;
    self->threads = DEFAULT_THREADS;
    self->style = DEFAULT_STYLE;
    self->alpha = DEFAULT_ALPHA;
    self->color = DEFAULT_COLOR;
    self->every = DEFAULT_EVERY;
    self->tta = DEFAULT_TTA;
}

static void gst_mms_seg_finalize(GObject *object)
{
    GstMmsSeg *self = GST_MMS_SEG(object);
    g_free(self->model);
    /* stop() has run unless the element never left NULL. */
    mms_close(self->engine);
    gst_clear_buffer(&self->mask);
    G_OBJECT_CLASS(parent_class)->finalize(object);
}

/* Returns TRUE where a property that shapes the engine may still change:
 * the engine is opened in start() with what they say then. */
static gboolean settable_locked(GstMmsSeg *self, const char *name)
{
    if (!self->started)
        return TRUE;
    GST_WARNING_OBJECT(self, "%s can only be changed in the NULL or READY state", name);
    return FALSE;
}

static void gst_mms_seg_set_property(GObject *object, guint id, const GValue *value,
                                     GParamSpec *pspec)
{
    GstMmsSeg *self = GST_MMS_SEG(object);
    gboolean refused = FALSE;

    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_MODEL:
        if ((refused = !settable_locked(self, pspec->name)))
            break;
        g_free(self->model);
        self->model = g_value_dup_string(value);
        break;
    case PROP_PRECISION:
        if (!(refused = !settable_locked(self, pspec->name)))
            self->precision = g_value_get_enum(value);
        break;
    case PROP_THREADS:
        if (!(refused = !settable_locked(self, pspec->name)))
            self->threads = g_value_get_uint(value);
        break;
    case PROP_STYLE:
        self->style = g_value_get_enum(value);
        break;
    case PROP_ALPHA:
        self->alpha = g_value_get_float(value);
        break;
    case PROP_COLOR:
        self->color = g_value_get_uint(value);
        break;
    case PROP_EVERY:
        self->every = g_value_get_uint(value);
        break;
    case PROP_TTA:
        self->tta = g_value_get_enum(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
        break;
    }
    GST_OBJECT_UNLOCK(self);
    /* Said on the bus, outside the lock, so that the application hears of
     * a setting that did not take rather than wondering why. */
    if (refused)
        GST_ELEMENT_WARNING(self, CORE, STATE_CHANGE,
                            ("%s can only be changed in the NULL or READY state", pspec->name),
                            (NULL));
}

static void gst_mms_seg_get_property(GObject *object, guint id, GValue *value,
                                     GParamSpec *pspec)
{
    GstMmsSeg *self = GST_MMS_SEG(object);

    GST_OBJECT_LOCK(self);
    switch (id) {
    case PROP_MODEL: g_value_set_string(value, self->model); break;
    case PROP_PRECISION: g_value_set_enum(value, self->precision); break;
    case PROP_THREADS: g_value_set_uint(value, self->threads); break;
    case PROP_STYLE: g_value_set_enum(value, self->style); break;
    case PROP_ALPHA: g_value_set_float(value, self->alpha); break;
    case PROP_COLOR: g_value_set_uint(value, self->color); break;
    case PROP_EVERY: g_value_set_uint(value, self->every); break;
    case PROP_TTA: g_value_set_enum(value, self->tta); break;
    default: G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec); break;
    }
    GST_OBJECT_UNLOCK(self);
}

static gboolean gst_mms_seg_start(GstBaseTransform *trans)
{
    GstMmsSeg *self = GST_MMS_SEG(trans);
    struct mms_options opts = {0};
    struct mms_error err = {{0}};
    gchar *model;

    GST_OBJECT_LOCK(self);
    model = g_strdup(self->model);
    opts.precision = self->precision;
    opts.threads = (int)self->threads;
    GST_OBJECT_UNLOCK(self);

    int ret = mms_open(model, &opts, &self->engine, &err);
    if (ret < 0) {
        /* The library's one line is the message: it names the file and
         * what is wrong with it. */
        if (ret == -ENOENT)
            GST_ELEMENT_ERROR(self, RESOURCE, NOT_FOUND, ("%s", err.msg),
                              ("mms_open(%s): %d", model ? model : "(shipped model)", ret));
        else
            GST_ELEMENT_ERROR(self, RESOURCE, OPEN_READ, ("%s", err.msg),
                              ("mms_open(%s): %d", model ? model : "(shipped model)", ret));
        g_free(model);
        return FALSE;
    }
    const struct mms_info *info = mms_info(self->engine);
    GST_INFO_OBJECT(self, "model %s (%s), input %dx%d, %s: %s", info->path, info->arch,
                    info->in_width, info->in_height,
                    info->precision == MMS_PRECISION_INT8   ? "int8"
                    : info->precision == MMS_PRECISION_BF16 ? "bf16"
                                                            : "fp32",
                    info->precision_why);
    g_free(model);

    self->count = 0;
    self->tta_set = MMS_FLIP_AUTO; /* mms_open's */
    gst_clear_buffer(&self->mask);
    GST_OBJECT_LOCK(self);
    self->started = TRUE;
    GST_OBJECT_UNLOCK(self);
    return TRUE;
}

static gboolean gst_mms_seg_stop(GstBaseTransform *trans)
{
    GstMmsSeg *self = GST_MMS_SEG(trans);
    mms_close(self->engine);
    self->engine = NULL;
    gst_clear_buffer(&self->mask);
    GST_OBJECT_LOCK(self);
    self->started = FALSE;
    GST_OBJECT_UNLOCK(self);
    return TRUE;
}

/* GStreamer's colorimetry in libmms's terms, as mmsd reads FFmpeg's
 * (io/av_common.c): an unknown matrix is BT.601; chroma siting unknown is
 * centred for full range (JPEG) and left-sited otherwise, which is where
 * H.264 and MPEG-2 put it; only "jpeg"/"none" (midway both ways) is
 * centred when it is said. */
static void frame_colorimetry(const GstVideoInfo *vi, struct mms_frame *f)
{
    switch (GST_VIDEO_INFO_COLORIMETRY(vi).matrix) {
    case GST_VIDEO_COLOR_MATRIX_BT709: f->colorspace = MMS_COLOR_BT709; break;
    case GST_VIDEO_COLOR_MATRIX_BT2020: f->colorspace = MMS_COLOR_BT2020; break;
    case GST_VIDEO_COLOR_MATRIX_SMPTE240M: f->colorspace = MMS_COLOR_SMPTE240M; break;
    case GST_VIDEO_COLOR_MATRIX_FCC: f->colorspace = MMS_COLOR_FCC; break;
    default: f->colorspace = MMS_COLOR_BT601; break;
    }
    f->full_range = GST_VIDEO_INFO_COLORIMETRY(vi).range == GST_VIDEO_COLOR_RANGE_0_255;
    GstVideoChromaSite site = GST_VIDEO_INFO_CHROMA_SITE(vi);
    if (site == GST_VIDEO_CHROMA_SITE_UNKNOWN)
        f->chroma_loc = f->full_range ? MMS_CHROMA_CENTER : MMS_CHROMA_LEFT;
    else if (site == GST_VIDEO_CHROMA_SITE_NONE)
        f->chroma_loc = MMS_CHROMA_CENTER;
    else
        f->chroma_loc = MMS_CHROMA_LEFT;
}

static gboolean gst_mms_seg_set_info(GstVideoFilter *filter, GstCaps *incaps,
                                     GstVideoInfo *in_info, GstCaps *outcaps,
                                     GstVideoInfo *out_info)
{
    GstMmsSeg *self = GST_MMS_SEG(filter);
    (void)incaps, (void)outcaps, (void)out_info;

    self->tmpl = (struct mms_frame){
        .format = MMS_FRAME_YUV420P,
        .width = GST_VIDEO_INFO_WIDTH(in_info),
        .height = GST_VIDEO_INFO_HEIGHT(in_info),
    };
    frame_colorimetry(in_info, &self->tmpl);
    /* A mask of another size cannot be drawn on these frames. */
    gst_clear_buffer(&self->mask);
    GST_DEBUG_OBJECT(self, "%dx%d, matrix %d, full range %d, chroma %s", self->tmpl.width,
                     self->tmpl.height, self->tmpl.colorspace, self->tmpl.full_range,
                     self->tmpl.chroma_loc == MMS_CHROMA_CENTER ? "center" : "left");
    return TRUE;
}

/* Runs the network on the frame and keeps its mask. */
static GstFlowReturn segment(GstMmsSeg *self, const struct mms_frame *f, gint tta)
{
    struct mms_error err = {{0}};
    GstMapInfo map;
    int w = f->width, h = f->height;

    if (tta != self->tta_set) {
        if (mms_set_flip(self->engine, tta, &err) < 0) {
            GST_ELEMENT_ERROR(self, STREAM, FAILED, ("%s", err.msg), ("mms_set_flip failed"));
            return GST_FLOW_ERROR;
        }
        self->tta_set = tta;
        GST_INFO_OBJECT(self, "tta: %s", mms_info(self->engine)->flip_why);
    }
    if (mms_run(self->engine, f, &err) < 0) {
        GST_ELEMENT_ERROR(self, STREAM, FAILED, ("%s", err.msg), ("mms_run failed"));
        return GST_FLOW_ERROR;
    }
    GstBuffer *mask = gst_buffer_new_allocate(NULL, (gsize)w * h, NULL);
    if (!mask || !gst_buffer_map(mask, &map, GST_MAP_WRITE)) {
        gst_clear_buffer(&mask);
        GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("out of memory for a %dx%d mask", w, h),
                          (NULL));
        return GST_FLOW_ERROR;
    }
    int ret = mms_mask(self->engine, map.data, w, h, w, &err);
    /* Cannot fail where mms_mask() took the same sizes. */
    if (ret >= 0)
        mms_mask_measure(map.data, w, h, w, &self->stats, NULL);
    gst_buffer_unmap(mask, &map);
    if (ret < 0) {
        gst_buffer_unref(mask);
        GST_ELEMENT_ERROR(self, STREAM, FAILED, ("%s", err.msg), ("mms_mask failed"));
        return GST_FLOW_ERROR;
    }
    gst_clear_buffer(&self->mask);
    self->mask = mask;
    return GST_FLOW_OK;
}

/* A second mmsseg downstream (another model, another every) speaks for
 * the frame as it leaves: a reader finds one mask and one tool box, this
 * element's, not two that disagree. */
static gboolean drop_mms_meta(GstBuffer *buffer, GstMeta **meta, gpointer user_data)
{
    (void)buffer;
    GType mask_api = *(GType *)user_data;
    GType api = (*meta)->info->api;
    if (api == mask_api)
        *meta = NULL;
    else if (api == GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE &&
             ((GstVideoRegionOfInterestMeta *)*meta)->roi_type == g_quark_from_static_string("tool"))
        *meta = NULL;
    return TRUE;
}

static void drop_earlier_metas(GstBuffer *buffer)
{
    GType mask_api = gst_mms_mask_meta_api_get_type();
    gst_buffer_foreach_meta(buffer, drop_mms_meta, &mask_api);
}

static GstFlowReturn gst_mms_seg_transform_frame_ip(GstVideoFilter *filter,
                                                    GstVideoFrame *frame)
{
    GstMmsSeg *self = GST_MMS_SEG(filter);
    struct mms_draw_style st;
    struct mms_error err = {{0}};
    guint every;
    gint tta;
    GstMapInfo map;
    GstFlowReturn fr;

    GST_OBJECT_LOCK(self);
    st.style = self->style;
    st.alpha = self->alpha;
    st.color = self->color;
    every = self->every;
    tta = self->tta;
    GST_OBJECT_UNLOCK(self);

    struct mms_frame f = self->tmpl;
    for (int i = 0; i < 3; i++) {
        f.data[i] = GST_VIDEO_FRAME_COMP_DATA(frame, i);
        f.stride[i] = GST_VIDEO_FRAME_COMP_STRIDE(frame, i);
    }
    /* As mms run --every N: frames 0, N, 2N, ... since the start; those in
     * between are drawn with the last mask. Counted against the current
     * N, so a change takes effect at once. */
    gboolean fresh = self->count % every == 0 || !self->mask;
    self->count++;
    if (fresh && (fr = segment(self, &f, tta)) != GST_FLOW_OK)
        return fr;

    if (st.style != MMS_DRAW_OFF) {
        if (!gst_buffer_map(self->mask, &map, GST_MAP_READ)) {
            GST_ELEMENT_ERROR(self, RESOURCE, FAILED, ("cannot map the mask"), (NULL));
            return GST_FLOW_ERROR;
        }
        int ret = mms_draw_mask(&f, map.data, f.width, &st, &err);
        gst_buffer_unmap(self->mask, &map);
        if (ret < 0) {
            GST_ELEMENT_ERROR(self, STREAM, FAILED, ("%s", err.msg), ("mms_draw_mask failed"));
            return GST_FLOW_ERROR;
        }
    }

    drop_earlier_metas(frame->buffer);
    GstMmsMaskMeta *m =
        gst_buffer_add_mms_mask_meta(frame->buffer, self->mask, f.width, f.height, f.width);
    if (m) {
        m->tool_fraction = self->stats.fraction;
        m->x0 = self->stats.x0, m->y0 = self->stats.y0;
        m->x1 = self->stats.x1, m->y1 = self->stats.y1;
        m->fresh = fresh;
    }
    const struct mms_mask_info *mi = &self->stats;
    if (mi->x0 >= 0)
        gst_buffer_add_video_region_of_interest_meta(frame->buffer, "tool", (guint)mi->x0,
                                                     (guint)mi->y0, (guint)(mi->x1 - mi->x0 + 1),
                                                     (guint)(mi->y1 - mi->y0 + 1));
    return GST_FLOW_OK;
}

/* A flush (a seek) breaks the stream: the frames after it are other
 * pictures, so none is drawn with a mask from before it. */
static gboolean gst_mms_seg_sink_event(GstBaseTransform *trans, GstEvent *event)
{
    GstMmsSeg *self = GST_MMS_SEG(trans);
    if (GST_EVENT_TYPE(event) == GST_EVENT_FLUSH_STOP) {
        self->count = 0;
        gst_clear_buffer(&self->mask);
    }
    return GST_BASE_TRANSFORM_CLASS(parent_class)->sink_event(trans, event);
}

static void gst_mms_seg_class_init(GstMmsSegClass *klass)
{
    GObjectClass *gobject_class = G_OBJECT_CLASS(klass);
    GstElementClass *element_class = GST_ELEMENT_CLASS(klass);
    GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS(klass);
    GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS(klass);
    const GParamFlags rw = G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS;

    GST_DEBUG_CATEGORY_INIT(gst_mms_seg_debug, "mmsseg", 0, "surgical tool segmentation");

    gobject_class->set_property = gst_mms_seg_set_property;
    gobject_class->get_property = gst_mms_seg_get_property;
    gobject_class->finalize = gst_mms_seg_finalize;

    g_object_class_install_property(
        gobject_class, PROP_MODEL,
        g_param_spec_string("model", "Model",
                            "model file (safetensors); NULL: $MMS_MODEL, else the shipped mms-rt",
                            NULL, rw | GST_PARAM_MUTABLE_READY));
    g_object_class_install_property(
        gobject_class, PROP_PRECISION,
        g_param_spec_enum("precision", "Precision", "what the network computes in",
                          GST_TYPE_MMS_SEG_PRECISION, DEFAULT_PRECISION,
                          rw | GST_PARAM_MUTABLE_READY));
    g_object_class_install_property(
        gobject_class, PROP_THREADS,
        g_param_spec_uint("threads", "Threads", "inference threads; 0 = all cores", 0,
                          MAX_THREADS, DEFAULT_THREADS, rw | GST_PARAM_MUTABLE_READY));
    g_object_class_install_property(
        gobject_class, PROP_STYLE,
        g_param_spec_enum("style", "Style", "how the mask is drawn", GST_TYPE_MMS_SEG_STYLE,
                          DEFAULT_STYLE, rw | GST_PARAM_MUTABLE_PLAYING));
    g_object_class_install_property(
        gobject_class, PROP_ALPHA,
        g_param_spec_float("alpha", "Alpha", "fill opacity", 0, 1, DEFAULT_ALPHA,
                           rw | GST_PARAM_MUTABLE_PLAYING));
    g_object_class_install_property(
        gobject_class, PROP_COLOR,
        g_param_spec_uint("color", "Color", "overlay colour, 0xRRGGBB", 0, 0xffffff,
                          DEFAULT_COLOR, rw | GST_PARAM_MUTABLE_PLAYING));
    g_object_class_install_property(
        gobject_class, PROP_EVERY,
        g_param_spec_uint("every", "Every",
                          "run the network on every Nth frame, drawing the last mask in between",
                          1, MAX_EVERY, DEFAULT_EVERY, rw | GST_PARAM_MUTABLE_PLAYING));
    g_object_class_install_property(
        gobject_class, PROP_TTA,
        g_param_spec_enum("tta", "Test-time augmentation",
                          "test-time flip, as mms run --tta; takes effect with the next frame "
                          "segmented",
                          GST_TYPE_MMS_SEG_TTA, DEFAULT_TTA, rw | GST_PARAM_MUTABLE_PLAYING));

    gst_element_class_set_static_metadata(
        element_class, "Surgical tool segmentation", "Filter/Effect/Video/Analyzer",
        "Segments surgical tools with mmsd's network (libmms), draws the mask as mmsd does "
        "and attaches it as GstMmsMaskMeta",
        "mmsd");
    gst_element_class_add_static_pad_template(element_class, &sink_template);
    gst_element_class_add_static_pad_template(element_class, &src_template);

    trans_class->start = GST_DEBUG_FUNCPTR(gst_mms_seg_start);
    trans_class->stop = GST_DEBUG_FUNCPTR(gst_mms_seg_stop);
    trans_class->sink_event = GST_DEBUG_FUNCPTR(gst_mms_seg_sink_event);
    filter_class->set_info = GST_DEBUG_FUNCPTR(gst_mms_seg_set_info);
    filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR(gst_mms_seg_transform_frame_ip);

    gst_type_mark_as_plugin_api(GST_TYPE_MMS_SEG_PRECISION, 0);
    gst_type_mark_as_plugin_api(GST_TYPE_MMS_SEG_STYLE, 0);
}
