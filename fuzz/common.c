#include "common.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Through the sanitizers' report channel, which stays open when libFuzzer
 * closes the target's stderr (-close_fd_mask, as fuzz/run.sh runs). */
void __sanitizer_report_error_summary(const char *summary);

void fuzz_fail(const char *fmt, ...)
{
    char msg[2048];
    int n = snprintf(msg, sizeof(msg), "fuzz: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
    va_end(ap);
    __sanitizer_report_error_summary(msg);
    abort();
}

const char *fuzz_file(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        if ((fd = memfd_create("mms-fuzz", MFD_CLOEXEC)) < 0)
            fuzz_fail("memfd_create: %s", strerror(errno));
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0)
        fuzz_fail("ftruncate: %s", strerror(errno));
    for (size_t off = 0; off < size;) {
        ssize_t n = pwrite(fd, data + off, size - off, (off_t)off);
        if (n <= 0)
            fuzz_fail("pwrite: %s", strerror(errno));
        off += (size_t)n;
    }
    return path;
}

void fuzz_check_err(int rc, const char *msg, const char *what)
{
    if (rc < 0 && !msg[0])
        fuzz_fail("%s failed (%d) without saying why", what, rc);
    if (rc > 0)
        fuzz_fail("%s returned %d: neither 0 nor a negative errno", what, rc);
}
