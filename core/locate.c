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

/* A binary run from where it was built, rather than installed, uses the
 * model in the source tree it was configured from. Only this build's own
 * tree counts: a program of someone else's built with CMake and linked
 * to an installed libmms is an installed user, whatever tree it is in. */
static int from_source_tree(void)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        return 0;
    exe[n] = '\0';
    return is_under(exe, MMS_SOURCE_DIR) || is_under(exe, MMS_BINARY_DIR);
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
