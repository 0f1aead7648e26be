#ifndef GST_MMS_META_H
#define GST_MMS_META_H

/*
 * GstMmsMaskMeta: the tool mask mmsseg computed for a video frame,
 * attached to every buffer it pushes.
 *
 *   mask           a read-only GstBuffer of height * stride bytes, 0 where
 *                  there is background and 255 where there is tool, at the
 *                  frame's own size: what mms_mask() writes, and what
 *                  `mms segment` writes and mmsd draws for the same frame.
 *                  With every=N the frames between two network runs carry
 *                  the same buffer (a reference each), as they are drawn
 *                  with the same mask.
 *   width, height  the mask's size, equal to the video frame's
 *   stride         bytes a row (= width)
 *   tool_fraction  the share of tool pixels, 0..1
 *   x0 y0 x1 y1    the tool's bounding box, inclusive pixel coordinates;
 *                  x0 = -1 (and the others meaningless) when there is none.
 *                  The same numbers as the "tool_fraction" and "bbox" of
 *                  `mms run --meta`. The box is also attached as a
 *                  GstVideoRegionOfInterestMeta of type "tool" when there
 *                  is tool in the frame.
 *   fresh          TRUE where the network ran on this very frame, FALSE
 *                  where the mask was carried over (every > 1)
 *
 * The API type is registered as "GstMmsMaskMetaAPI", tagged "video" and
 * "size": an element that scales the video drops it, since the mask would
 * no longer fit; one that copies buffers keeps it (a new reference).
 *
 * An application need not link the plugin to read it: this header alone
 * is enough once the plugin is loaded (the element created), through
 * gst_buffer_get_mms_mask_meta() below, which finds the API type by name.
 */

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_MMS_MASK_META_API_NAME "GstMmsMaskMetaAPI"

typedef struct {
    GstMeta meta;
    GstBuffer *mask;
    guint width, height, stride;
    gdouble tool_fraction;
    gint x0, y0, x1, y1;
    gboolean fresh;
} GstMmsMaskMeta;

static inline GstMmsMaskMeta *gst_buffer_get_mms_mask_meta(GstBuffer *buffer)
{
    GType api = g_type_from_name(GST_MMS_MASK_META_API_NAME);
    return api ? (GstMmsMaskMeta *)gst_buffer_get_meta(buffer, api) : NULL;
}

/* The plugin's own (gst/gstmmsmeta.c), not exported from libgstmms.so:
 * applications use gst_buffer_get_mms_mask_meta() above. */
GType gst_mms_mask_meta_api_get_type(void);
const GstMetaInfo *gst_mms_mask_meta_get_info(void);
/* Takes a reference to mask. */
GstMmsMaskMeta *gst_buffer_add_mms_mask_meta(GstBuffer *buffer, GstBuffer *mask, guint width,
                                             guint height, guint stride);

G_END_DECLS

#endif
