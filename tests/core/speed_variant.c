#include "speed_variant.h"

#include <stdio.h>

#include "core/model.h"
#include "core/model_write.h"
#include "core/net.h"
#include "harness.h"

const char *mms_test_with_speed(const char *name, const char *speed)
{
    static char out[4][512], shipped[512];
    static int k;
    char *path = out[k++ % 4];
    snprintf(shipped, sizeof(shipped), "%s/models/mms-rt.safetensors", mms_test_srcdir());
    snprintf(path, sizeof(out[0]), "%s/%s", mms_test_tmpdir(), name);
    struct mms_model *m = NULL;
    struct mms_err err = {{0}};
    const char *meta[] = {MMS_INT8_SPEED, speed, NULL};
    int rc = mms_model_open(shipped, &m, &err);
    const struct mms_tensor *t = rc ? NULL : mms_model_find(m, MMS_INT8_TENSOR);
    CHECK(t != NULL);
    if (t)
        rc = mms_model_write_with(m, path, MMS_INT8_TENSOR, t->data, (int)t->numel, meta, &err);
    mms_model_close(m);
    CHECK_MSG(t && rc == 0, "%s", err.msg);
    return t && rc == 0 ? path : NULL;
}
