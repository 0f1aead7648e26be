#ifndef GST_MMS_SEG_H
#define GST_MMS_SEG_H

/*
 * mmsseg: surgical tool segmentation on I420 video, in place, through
 * libmms. Each frame (or every Nth) goes through the network as a
 * YUV420P frame with its own colorimetry; the mask at the frame's size is
 * drawn as mmsd draws it (mms_draw_mask) and attached as GstMmsMaskMeta
 * (gst/gstmmsmeta.h).
 */

#include <gst/video/gstvideofilter.h>
#include <gst/video/video.h>

#include <mms/mms.h>

G_BEGIN_DECLS

#define GST_TYPE_MMS_SEG (gst_mms_seg_get_type())
G_DECLARE_FINAL_TYPE(GstMmsSeg, gst_mms_seg, GST, MMS_SEG, GstVideoFilter)

GST_ELEMENT_REGISTER_DECLARE(mmsseg);

G_END_DECLS

#endif
