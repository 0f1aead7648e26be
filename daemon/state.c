#include "daemon/state.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER "# mmsd: pipelines whose recording was stopped through the API, one a line\n"

/* ------------------------------------------------------------ names */

int mmsd_state_names_has(const struct mmsd_state_names *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->name[i], name))
            return 1;
    return 0;
}

int mmsd_state_names_add(struct mmsd_state_names *s, const char *name)
{
    if (!mmsd_pipeline_name_valid(name))
        return -EINVAL;
    if (mmsd_state_names_has(s, name))
        return 0;
    if (s->n == s->cap) {
        int cap = s->cap ? 2 * s->cap : 8;
        void *p = realloc(s->name, (size_t)cap * sizeof(*s->name));
        if (!p)
            return -ENOMEM;
        s->name = p;
        s->cap = cap;
    }
    snprintf(s->name[s->n++], sizeof(*s->name), "%s", name);
    return 0;
}

void mmsd_state_names_remove(struct mmsd_state_names *s, const char *name)
{
    for (int i = 0; i < s->n; i++) {
        if (strcmp(s->name[i], name))
            continue;
        memmove(s->name[i], s->name[i + 1], (size_t)(s->n - i - 1) * sizeof(*s->name));
        s->n--;
        return;
    }
}

void mmsd_state_names_free(struct mmsd_state_names *s)
{
    free(s->name);
    memset(s, 0, sizeof(*s));
}

static void names_move(struct mmsd_state_names *dst, struct mmsd_state_names *src)
{
    mmsd_state_names_free(dst);
    *dst = *src;
    memset(src, 0, sizeof(*src));
}

/* ------------------------------------------------------------ files */

int mmsd_state_dir(const char *configured, char *buf, size_t len)
{
    const char *env = getenv("STATE_DIRECTORY");
    size_t n;
    if (configured && *configured) {
        n = strlen(configured);
    } else if (env && *env) {
        configured = env;
        n = strcspn(env, ":");
    } else {
        return -ENOENT;
    }
    if (!n || n >= len)
        return n ? -ENAMETOOLONG : -ENOENT;
    memcpy(buf, configured, n);
    buf[n] = '\0';
    return 0;
}

static int file_path(char *buf, size_t len, const char *dir, const char *suffix,
                     struct mms_err *err)
{
    int n = snprintf(buf, len, "%s/" MMSD_STATE_FILE "%s", dir, suffix);
    if (n < 0 || (size_t)n >= len)
        return mms_err_set(err, -ENAMETOOLONG, "%s/" MMSD_STATE_FILE ": %s", dir,
                           strerror(ENAMETOOLONG));
    return 0;
}

/* The whole file, up to MMSD_STATE_MAX_BYTES; *len bytes, NUL-terminated. */
static int slurp(int fd, char *buf, size_t *len)
{
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, MMSD_STATE_MAX_BYTES + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -errno;
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > MMSD_STATE_MAX_BYTES)
            return -EFBIG;
    }
    buf[n] = '\0';
    *len = n;
    return 0;
}

/* Blanks around a line are forgiven (a hand edit); anything else that is
 * not a name is counted, never guessed at. 0 or -ENOMEM. */
static int parse(char *text, size_t len, struct mmsd_state_names *out, int *malformed,
                 int *first_bad)
{
    int line = 0;
    for (char *s = text, *end = text + len; s < end;) {
        char *nl = memchr(s, '\n', (size_t)(end - s));
        char *e = nl ? nl : end;
        line++;
        int nul = memchr(s, '\0', (size_t)(e - s)) != NULL;
        while (e > s && strchr(" \t\r", e[-1]))
            e--;
        s += strspn(s, " \t");
        if (s < e && *s != '#') {
            char name[MMSD_PIPELINE_NAME_MAX + 1];
            size_t n = (size_t)(e - s);
            int rc = nul || n >= sizeof(name) ? -EINVAL : 0;
            if (!rc) {
                memcpy(name, s, n);
                name[n] = '\0';
                rc = mmsd_state_names_add(out, name);
            }
            if (rc == -ENOMEM)
                return rc;
            if (rc && !(*malformed)++)
                *first_bad = line;
        }
        s = nl ? nl + 1 : end;
    }
    return 0;
}

int mmsd_state_read(const char *dir, struct mmsd_state_names *out, int *malformed,
                    int *first_bad, struct mms_err *err)
{
    char path[PATH_MAX], *buf = NULL;
    struct stat st;
    size_t len = 0;
    int fd = -1, rc;
    mmsd_state_names_free(out);
    *malformed = *first_bad = 0;
    if ((rc = file_path(path, sizeof(path), dir, "", err)))
        return rc;
    /* O_NONBLOCK: a FIFO put in its place must not hold the start up. */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    /* No file, or no directory to hold one: nothing was ever stopped. */
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
        return 0;
    if (fd < 0) {
        rc = -errno;
        goto fail;
    }
    if (fstat(fd, &st)) {
        rc = -errno;
        goto fail;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        goto fail;
    }
    if (!(buf = malloc(MMSD_STATE_MAX_BYTES + 2))) {
        rc = -ENOMEM;
        goto fail;
    }
    if ((rc = slurp(fd, buf, &len)))
        goto fail;
    close(fd);
    fd = -1;
    /* A name lost to a lack of memory would let its recording start. */
    if ((rc = parse(buf, len, out, malformed, first_bad)))
        goto fail;
    free(buf);
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    free(buf);
    mmsd_state_names_free(out);
    if (rc == -EINVAL)
        return mms_err_set(err, rc, "%s: not a regular file", path);
    if (rc == -EFBIG)
        return mms_err_set(err, rc, "%s: larger than %d bytes: not a file mmsd wrote", path,
                           MMSD_STATE_MAX_BYTES);
    return mms_err_set(err, rc, "%s: %s", path, strerror(-rc));
}

/* The pid the holder wrote, 0 when the file holds none (it may be
 * between its open and its write). */
static long lock_holder(int fd)
{
    char buf[32];
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    char *end;
    long pid = strtol(buf, &end, 10);
    return pid > 0 && *end == '\n' ? pid : 0;
}

int mmsd_state_lock(const char *dir, int *fd, long *holder, struct mms_err *err)
{
    char path[PATH_MAX], pid[32];
    struct stat st;
    int rc, n = snprintf(path, sizeof(path), "%s/" MMSD_STATE_LOCK, dir);
    *fd = -1;
    *holder = 0;
    if (n < 0 || (size_t)n >= sizeof(path))
        return mms_err_set(err, -ENAMETOOLONG, "%s/" MMSD_STATE_LOCK ": %s", dir,
                           strerror(ENAMETOOLONG));
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW | O_NONBLOCK, 0640);
    if (f < 0)
        return mms_err_set(err, -errno, "%s: %s", path, strerror(errno));
    if (fstat(f, &st) || !S_ISREG(st.st_mode)) {
        rc = -EINVAL;
        goto fail;
    }
    while ((rc = flock(f, LOCK_EX | LOCK_NB)) && errno == EINTR)
        ;
    if (rc && errno == EWOULDBLOCK) {
        *holder = lock_holder(f);
        close(f);
        if (*holder)
            return mms_err_set(err, -EBUSY, "%s is held by another mmsd (pid %ld)", path,
                               *holder);
        return mms_err_set(err, -EBUSY, "%s is held by another process", path);
    }
    if (rc) {
        rc = -errno;
        goto fail;
    }
    /* The pid is only for the message of the one refused. */
    n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(f, 0)) {
        rc = -errno;
        goto fail;
    }
    ssize_t w = pwrite(f, pid, (size_t)n, 0);
    if (w != n) {
        rc = w < 0 ? -errno : -EIO;
        goto fail;
    }
    *fd = f;
    return 0;
fail:
    close(f);
    if (rc == -EINVAL)
        return mms_err_set(err, rc, "%s: not a regular file", path);
    return mms_err_set(err, rc, "%s: %s", path, strerror(-rc));
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

static int write_text(int fd, const struct mmsd_state_names *names)
{
    size_t cap = sizeof(HEADER) + (size_t)names->n * (MMSD_PIPELINE_NAME_MAX + 1), len;
    char *text = malloc(cap);
    if (!text)
        return -ENOMEM;
    len = (size_t)snprintf(text, cap, "%s", HEADER);
    for (int i = 0; i < names->n; i++)
        len += (size_t)snprintf(text + len, cap - len, "%s\n", names->name[i]);
    int rc = write_all(fd, text, len);
    free(text);
    return rc;
}

/* The rename is only durable once the directory's entry is on disk. */
static int sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    /* Some file systems cannot sync a directory, and say so: nothing more
     * can be done there. */
    int rc = fsync(fd) && errno != EINVAL ? -errno : 0;
    close(fd);
    return rc;
}

int mmsd_state_write(const char *dir, const struct mmsd_state_names *names, struct mms_err *err)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    const char *step = "create";
    int rc, fd = -1;
    if ((rc = file_path(path, sizeof(path), dir, "", err)) ||
        (rc = file_path(tmp, sizeof(tmp), dir, ".tmp", err)))
        return rc;
    /* O_NOFOLLOW: a link left in its place must not be written through. */
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
    if (fd < 0)
        return mms_err_set(err, -errno, "cannot create %s: %s", tmp, strerror(errno));
    step = "write";
    if ((rc = write_text(fd, names)))
        goto fail;
    step = "sync";
    if (fsync(fd)) {
        rc = -errno;
        goto fail;
    }
    step = "close";
    rc = close(fd) ? -errno : 0;
    fd = -1;
    if (rc)
        goto fail;
    step = "rename";
    if (rename(tmp, path)) {
        rc = -errno;
        goto fail;
    }
    if ((rc = sync_dir(dir)))
        return mms_err_set(err, rc, "%s: renamed, but cannot sync %s: %s", path, dir,
                           strerror(-rc));
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    unlink(tmp);
    return mms_err_set(err, rc, "cannot %s %s: %s", step, tmp, strerror(-rc));
}

/* ------------------------------------------------------------ writer */

static void start_write(struct mmsd_state_writer *w);

static void write_work(uv_work_t *req)
{
    struct mmsd_state_writer *w = req->data;
    w->work_rc = mmsd_state_write(w->dir, &w->writing, &w->work_err);
}

static void finished(struct mmsd_state_writer *w, unsigned long long seq, int rc,
                     const char *msg)
{
    if (seq > w->settled)
        w->settled = seq;
    if (rc) {
        w->failures++;
        snprintf(w->error, sizeof(w->error), "%s", msg);
    } else {
        w->error[0] = '\0';
    }
    if (w->done)
        w->done(w->opaque, rc, msg);
}

static void write_done(uv_work_t *req, int status)
{
    struct mmsd_state_writer *w = req->data;
    (void)status; /* no cancel is ever asked */
    w->busy = 0;
    mmsd_state_names_free(&w->writing);
    finished(w, w->writing_seq, w->work_rc, w->work_rc ? w->work_err.msg : "");
    if (w->dirty)
        start_write(w);
}

static void start_write(struct mmsd_state_writer *w)
{
    names_move(&w->writing, &w->next);
    w->writing_seq = w->given;
    w->dirty = 0;
    w->busy = 1;
    w->work.data = w;
    int rc = uv_queue_work(w->loop, &w->work, write_work, write_done);
    if (rc) {
        /* Cannot happen on a valid loop; close writes it, if nothing sooner. */
        w->busy = 0;
        names_move(&w->next, &w->writing);
        w->dirty = 1;
        char msg[128];
        snprintf(msg, sizeof(msg), "cannot queue the write: %s", uv_strerror(rc));
        finished(w, w->writing_seq, rc, msg);
    }
}

int mmsd_state_writer_init(struct mmsd_state_writer *w, uv_loop_t *loop, const char *dir,
                           void (*done)(void *opaque, int rc, const char *msg), void *opaque)
{
    memset(w, 0, sizeof(*w));
    if (!(w->dir = strdup(dir)))
        return -ENOMEM;
    w->loop = loop;
    w->done = done;
    w->opaque = opaque;
    return 0;
}

void mmsd_state_writer_save(struct mmsd_state_writer *w, struct mmsd_state_names *names)
{
    if (!w->dir) {
        mmsd_state_names_free(names);
        return;
    }
    names_move(&w->next, names);
    w->given++;
    w->dirty = 1;
    if (!w->busy)
        start_write(w);
}

void mmsd_state_writer_close(struct mmsd_state_writer *w)
{
    if (w->dir && w->dirty && !w->busy) {
        struct mms_err err;
        int rc = mmsd_state_write(w->dir, &w->next, &err);
        finished(w, w->given, rc, rc ? err.msg : "");
    }
    /* Busy here would be a loop stopped by force: its worker still holds
     * `writing`, so that alone is left to the exit. */
    if (!w->busy)
        mmsd_state_names_free(&w->writing);
    mmsd_state_names_free(&w->next);
    free(w->dir);
    w->dir = NULL;
}
