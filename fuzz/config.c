/* mmsd's INI config file through mmsd_config_load. What loads must print
 * (mmsd --print-config) as a file that loads back to the same config and
 * prints the same again. A config with secrets prints them as "***"
 * (core/redact.h): it need not load back the same, nor load at all, but
 * if it loads it must print the same again. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "daemon/config.h"

static char *print(const struct mmsd_config *c, size_t *len)
{
    char *buf = NULL;
    FILE *f = open_memstream(&buf, len);
    if (!f)
        fuzz_fail("open_memstream failed");
    int rc = mmsd_config_print(c, f);
    if (fclose(f) || rc)
        fuzz_fail("mmsd_config_print: %d", rc);
    return buf;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mmsd_config c, back;
    struct mms_err err = {{0}};
    int rc = mmsd_config_load(&c, fuzz_file(data, size), &err);
    fuzz_check_err(rc, err.msg, "mmsd_config_load");
    if (rc) {
        mmsd_config_free(&c); /* documented as safe */
        return 0;
    }
    for (int i = 0; i < c.npipelines; i++)
        if (mmsd_config_find(&c, c.pipelines[i].name) == NULL)
            fuzz_fail("pipeline '%s' is not found by its name", c.pipelines[i].name);

    size_t len1, len2;
    char *text = print(&c, &len1);
    int redacted = strstr(text, "***") != NULL;
    memset(&err, 0, sizeof(err));
    rc = mmsd_config_load(&back, fuzz_file((const uint8_t *)text, len1), &err);
    if (rc && redacted) {
        /* "***" may be longer than the secret it hides (a line too long),
         * and is no value to load back anyway. */
        free(text);
        mmsd_config_free(&c);
        return 0;
    }
    if (rc)
        fuzz_fail("the printed config does not load: %s\n--- printed:\n%s", err.msg, text);
    if (back.npipelines != c.npipelines)
        fuzz_fail("%d pipelines loaded, %d after printing", c.npipelines, back.npipelines);
    for (int i = 0; i < c.npipelines && !redacted; i++)
        if (!mmsd_pipeline_conf_same(&c.pipelines[i], &back.pipelines[i]))
            fuzz_fail("pipeline '%s' changed through printing\n--- printed:\n%s",
                      c.pipelines[i].name, text);
    char *again = print(&back, &len2);
    if (len1 != len2 || memcmp(text, again, len1))
        fuzz_fail("printing is not stable\n--- first:\n%s\n--- second:\n%s", text, again);
    free(again);
    free(text);
    mmsd_config_free(&back);
    mmsd_config_free(&c);
    return 0;
}
