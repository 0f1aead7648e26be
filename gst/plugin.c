/* The "mms" plugin: libgstmms.so, one element, mmsseg. */
#include <gst/gst.h>

#include "gst/gstmmsmeta.h"
#include "gst/gstmmsseg.h"

static gboolean plugin_init(GstPlugin *plugin)
{
    /* Registered with the plugin, so that an application reading the meta
     * by its name finds it once the plugin is loaded. */
    gst_mms_mask_meta_get_info();
    return GST_ELEMENT_REGISTER(mmsseg, plugin);
}

/* The repository names no licence: "unknown" is GStreamer's word for it.
 * The macro leaves GstPluginDesc's reserved padding to zero-initialisation,
 * which -Wextra reports as a missing initializer. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, mms,
                  "mmsd's surgical tool segmentation (libmms)", plugin_init, MMS_GST_VERSION,
                  "unknown", "mmsd", "Unknown package origin")
#pragma GCC diagnostic pop
