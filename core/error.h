#ifndef MMS_ERROR_H
#define MMS_ERROR_H

/*
 * Error reporting for the engine. Functions return 0 or a negative errno;
 * where the user needs to know more, they also fill a caller-owned
 * mms_err with one line. core/ never prints.
 */

#include <stddef.h>

struct mms_err {
    char msg[512];
};

/* Sets err->msg (err may be NULL) and returns code, so a failure reads
 * `return mms_err_set(err, -EINVAL, "...")`. */
int mms_err_set(struct mms_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message ("model.safetensors: " + msg). */
void mms_err_prefix(struct mms_err *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
