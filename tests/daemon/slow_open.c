/* LD_PRELOAD'ed into mmsd by test_reload.py: an open() of a path that
 * ends in $MMS_SLOW_OPEN waits until the file $MMS_SLOW_OPEN_GATE exists,
 * as an open on a hung network mount waits for the server; the directory
 * $MMS_SLOW_OPEN_GATE.held tells the test that one is waiting. Every
 * other open goes straight through. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void hold(const char *path)
{
    const char *slow = getenv("MMS_SLOW_OPEN"), *gate = getenv("MMS_SLOW_OPEN_GATE");
    if (!slow || !gate || !path)
        return;
    size_t n = strlen(path), m = strlen(slow);
    if (n < m || strcmp(path + n - m, slow))
        return;
    if (!access(gate, F_OK))
        return;
    char held[4096];
    snprintf(held, sizeof(held), "%s.held", gate);
    mkdir(held, 0700); /* not open(): that would come back here */
    /* A minute at most: a test that never opens the gate still ends. */
    for (int i = 0; i < 6000 && access(gate, F_OK); i++)
        usleep(10000);
}

/* The mode is there only with O_CREAT or O_TMPFILE. */
#define MODE_ARG(flags, mode)                                                                  \
    do {                                                                                       \
        if ((flags) & (O_CREAT | O_TMPFILE)) {                                                 \
            va_list ap;                                                                        \
            va_start(ap, flags);                                                               \
            (mode) = va_arg(ap, mode_t);                                                       \
            va_end(ap);                                                                        \
        }                                                                                      \
    } while (0)

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);

int open(const char *path, int flags, ...)
{
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    hold(path);
    return ((open_fn)dlsym(RTLD_NEXT, "open"))(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    hold(path);
    return ((open_fn)dlsym(RTLD_NEXT, "open64"))(path, flags, mode);
}

int openat(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    hold(path);
    return ((openat_fn)dlsym(RTLD_NEXT, "openat"))(dir, path, flags, mode);
}

int openat64(int dir, const char *path, int flags, ...)
{
    mode_t mode = 0;
    MODE_ARG(flags, mode);
    hold(path);
    return ((openat_fn)dlsym(RTLD_NEXT, "openat64"))(dir, path, flags, mode);
}
