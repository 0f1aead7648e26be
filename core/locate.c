#include "core/locate.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/version.h"

static int put(char *buf, size_t len, const char *path)
{
    if ((size_t)snprintf(buf, len, "%s", path) >= len)
        return -ENAMETOOLONG;
    return 0;
}

static int readable(const char *path)
{
    return access(path, R_OK) == 0;
}

/* True when `path` is `dir` or inside it, component-wise ("/a/bc" is not
 * inside "/a/b"). */
static int is_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0');
}

/* A build tree is the directory holding CMakeCache.txt; a binary sits in
 * it or a few levels below (tests/, a configuration subdirectory). */
static int in_build_tree(const char *exe)
{
    char dir[PATH_MAX], probe[PATH_MAX + 32];
    if ((size_t)snprintf(dir, sizeof(dir), "%s", exe) >= sizeof(dir))
        return 0;
    for (int depth = 0; depth < 4; depth++) {
        char *slash = strrchr(dir, '/');
        if (!slash || slash == dir)
            return 0;
        *slash = '\0';
        snprintf(probe, sizeof(probe), "%s/CMakeCache.txt", dir);
        if (readable(probe))
            return 1;
    }
    return 0;
}

/* A binary run from where it was built, rather than installed, uses the
 * model in the source tree it was configured from. */
static int from_source_tree(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    return is_under(exe, MMS_SOURCE_DIR) || in_build_tree(exe);
}

int mms_locate_model_in(const char *installed, const char *source, int dev, char *buf,
                        size_t len)
{
    /* An explicit choice is never second-guessed: if it does not exist,
     * opening it says so with its name rather than silently running
     * another model. */
    const char *env = getenv("MMS_MODEL");
    if (env && *env)
        return put(buf, len, env);
    /* A binary built from a checkout runs that checkout's model: one
     * installed earlier may be older than the code (a model retrained,
     * a card changed). */
    if (dev && readable(source))
        return put(buf, len, source);
    if (readable(installed))
        return put(buf, len, installed);
    snprintf(buf, len, "no default model (set MMS_MODEL or use --model); tried %s%s%s",
             dev ? source : installed, dev ? ", " : "", dev ? installed : "");
    return -ENOENT;
}

int mms_locate_default_model(char *buf, size_t len)
{
    return mms_locate_model_in(MMS_DATADIR "/models/" MMS_DEFAULT_MODEL_NAME,
                               MMS_SOURCE_DIR "/models/" MMS_DEFAULT_MODEL_NAME,
                               from_source_tree(), buf, len);
}
