/* GstMmsMaskMeta (gst/gstmmsmeta.h): registration, init, free, transform. */
#include "gst/gstmmsmeta.h"

#include <gst/video/video.h>

GType gst_mms_mask_meta_api_get_type(void)
{
    static GType type;
    /* Size: a scaled frame's mask would no longer fit it. */
    static const gchar *tags[] = {GST_META_TAG_VIDEO_STR, GST_META_TAG_VIDEO_SIZE_STR, NULL};
    if (g_once_init_enter(&type)) {
        GType t = gst_meta_api_type_register(GST_MMS_MASK_META_API_NAME, tags);
        g_once_init_leave(&type, t);
    }
    return type;
}

static gboolean mask_meta_init(GstMeta *meta, gpointer params, GstBuffer *buffer)
{
    (void)params, (void)buffer;
    GstMmsMaskMeta *m = (GstMmsMaskMeta *)meta;
    m->mask = NULL;
    m->width = m->height = m->stride = 0;
    m->tool_fraction = 0;
    m->x0 = -1;
    m->y0 = m->x1 = m->y1 = -1;
    m->fresh = FALSE;
    return TRUE;
}

static void mask_meta_free(GstMeta *meta, GstBuffer *buffer)
{
    (void)buffer;
    GstMmsMaskMeta *m = (GstMmsMaskMeta *)meta;
    gst_clear_buffer(&m->mask);
}

/* A copy of the whole frame keeps the mask; a copy of part of its memory
 * is not the same picture any more, and anything else (a scale) changes
 * its size: those drop it. */
static gboolean mask_meta_transform(GstBuffer *dst, GstMeta *meta, GstBuffer *src, GQuark type,
                                    gpointer data)
{
    GstMmsMaskMeta *m = (GstMmsMaskMeta *)meta;
    if (!GST_META_TRANSFORM_IS_COPY(type))
        return FALSE;
    const GstMetaTransformCopy *copy = data;
    if (copy->region && (copy->offset != 0 || copy->size < gst_buffer_get_size(src)))
        return FALSE;
    GstMmsMaskMeta *d = gst_buffer_add_mms_mask_meta(dst, m->mask, m->width, m->height, m->stride);
    if (!d)
        return FALSE;
    d->tool_fraction = m->tool_fraction;
    d->x0 = m->x0, d->y0 = m->y0, d->x1 = m->x1, d->y1 = m->y1;
    d->fresh = m->fresh;
    return TRUE;
}

const GstMetaInfo *gst_mms_mask_meta_get_info(void)
{
    static const GstMetaInfo *info;
    if (g_once_init_enter(&info)) {
        const GstMetaInfo *i = gst_meta_register(
            gst_mms_mask_meta_api_get_type(), "GstMmsMaskMeta", sizeof(GstMmsMaskMeta),
            mask_meta_init, mask_meta_free, mask_meta_transform);
        g_once_init_leave(&info, i);
    }
    return info;
}

GstMmsMaskMeta *gst_buffer_add_mms_mask_meta(GstBuffer *buffer, GstBuffer *mask, guint width,
                                             guint height, guint stride)
{
    g_return_val_if_fail(GST_IS_BUFFER(buffer) && GST_IS_BUFFER(mask), NULL);
    g_return_val_if_fail(stride >= width && gst_buffer_get_size(mask) >= (gsize)stride * height,
                         NULL);
    GstMmsMaskMeta *m =
        (GstMmsMaskMeta *)gst_buffer_add_meta(buffer, gst_mms_mask_meta_get_info(), NULL);
    if (!m)
        return NULL;
    m->mask = gst_buffer_ref(mask);
    m->width = width;
    m->height = height;
    m->stride = stride;
    return m;
}
