/* mmsd's state kept across its restarts (daemon/state.h): the recording
 * stops file read (missing, valid, malformed, unreadable), written
 * atomically (round trip, no .tmp left, a failed write leaves the old file
 * alone), where it lives, the lock that keeps a second mmsd off it, and
 * the writer that saves off the loop. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/state.h"
#include "harness.h"

/* A fresh directory in the test's own. */
static const char *new_dir(const char *name)
{
    static char path[8][512];
    static int next;
    char *p = path[next++ % 8];
    snprintf(p, sizeof(path[0]), "%s/%s", mms_test_tmpdir(), name);
    CHECK_MSG(mkdir(p, 0755) == 0, "mkdir %s: %s", p, strerror(errno));
    return p;
}

static void put(const char *dir, const char *name, const char *text, size_t len)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK_MSG(f != NULL, "%s: %s", path, strerror(errno));
    if (!f)
        return;
    CHECK(fwrite(text, 1, len, f) == len);
    CHECK(fclose(f) == 0);
}

static void put_state(const char *dir, const char *text)
{
    put(dir, MMSD_STATE_FILE, text, strlen(text));
}

/* The file's contents, or "" (static). */
static const char *slurp(const char *dir, const char *name)
{
    static char buf[4096];
    char path[1100];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    buf[0] = '\0';
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int exists(const char *dir, const char *name)
{
    char path[1100];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

static struct mmsd_state_names names_of(const char *const *list)
{
    struct mmsd_state_names s = {0};
    for (; *list; list++)
        CHECK(mmsd_state_names_add(&s, *list) == 0);
    return s;
}

/* ------------------------------------------------------------ names */

static void names_refuse_what_no_pipeline_is_called(void)
{
    static const char *const bad[] = {"",    "a b",  "-x",   "../etc", "a/b",
                                      "x\n", "\xc3\xa9", "012345678901234567890123456789012"};
    struct mmsd_state_names s = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CHECK_MSG(mmsd_state_names_add(&s, bad[i]) == -EINVAL, "accepted '%s'", bad[i]);
    CHECK_EQ(s.n, 0);
    mmsd_state_names_free(&s);
}

static void names_are_kept_once(void)
{
    struct mmsd_state_names s = {0};
    CHECK(mmsd_state_names_add(&s, "or1") == 0 && mmsd_state_names_add(&s, "or1") == 0);
    CHECK(mmsd_state_names_add(&s, "01234567890123456789012345678901") == 0);
    CHECK_EQ(s.n, 2);
    CHECK(mmsd_state_names_has(&s, "or1") && !mmsd_state_names_has(&s, "or2"));
    mmsd_state_names_free(&s);
    CHECK(s.n == 0 && !s.name);
}

/* ------------------------------------------------------------ where */

/* Removing keeps the others in order; a name not there changes nothing. */
static void names_remove_one(void)
{
    struct mmsd_state_names s = {0};
    CHECK(!mmsd_state_names_add(&s, "a") && !mmsd_state_names_add(&s, "b") &&
          !mmsd_state_names_add(&s, "c"));
    mmsd_state_names_remove(&s, "b");
    CHECK(s.n == 2 && !strcmp(s.name[0], "a") && !strcmp(s.name[1], "c"));
    mmsd_state_names_remove(&s, "zz");
    CHECK_EQ(s.n, 2);
    mmsd_state_names_remove(&s, "c");
    mmsd_state_names_remove(&s, "a");
    CHECK_EQ(s.n, 0);
    mmsd_state_names_remove(&s, "a");
    CHECK_EQ(s.n, 0);
    mmsd_state_names_free(&s);
}

static void dir_configured_wins(void)
{
    char buf[64];
    setenv("STATE_DIRECTORY", "/var/lib/mmsd/or1", 1);
    CHECK(mmsd_state_dir("/srv/state", buf, sizeof(buf)) == 0);
    CHECK_STR_EQ(buf, "/srv/state");
}

static void dir_from_systemd(void)
{
    char buf[64];
    /* A unit naming several StateDirectory= gets them colon-separated. */
    setenv("STATE_DIRECTORY", "/var/lib/mmsd/or1:/var/lib/other", 1);
    CHECK(mmsd_state_dir(NULL, buf, sizeof(buf)) == 0);
    CHECK_STR_EQ(buf, "/var/lib/mmsd/or1");
}

static void dir_none(void)
{
    char buf[64];
    unsetenv("STATE_DIRECTORY");
    CHECK_EQ(mmsd_state_dir(NULL, buf, sizeof(buf)), -ENOENT);
    setenv("STATE_DIRECTORY", "", 1);
    CHECK_EQ(mmsd_state_dir(NULL, buf, sizeof(buf)), -ENOENT);
    CHECK_EQ(mmsd_state_dir("/a/much/longer/path/than/the/buffer/holds", buf, 8),
             -ENAMETOOLONG);
    unsetenv("STATE_DIRECTORY");
}

/* ------------------------------------------------------------ read */

static void read_missing_file_is_empty(void)
{
    const char *dir = new_dir("missing");
    struct mmsd_state_names s = {0};
    struct mms_err err = {{0}};
    int bad = -1, first = -1;
    CHECK_EQ(mmsd_state_read(dir, &s, &bad, &first, &err), 0);
    CHECK(s.n == 0 && bad == 0 && first == 0);
    mmsd_state_names_free(&s);
}

static void read_missing_dir_is_empty(void)
{
    char dir[600];
    struct mmsd_state_names s = {0};
    struct mms_err err = {{0}};
    int bad, first;
    snprintf(dir, sizeof(dir), "%s/never-made", mms_test_tmpdir());
    CHECK_EQ(mmsd_state_read(dir, &s, &bad, &first, &err), 0);
    CHECK_EQ(s.n, 0);
}

static void read_valid_names(void)
{
    const char *dir = new_dir("valid");
    struct mmsd_state_names s = {0};
    struct mms_err err = {{0}};
    int bad, first;
    put_state(dir, "# mmsd: stopped\nor1\nor-2.b_c\n01234567890123456789012345678901\n");
    CHECK_EQ(mmsd_state_read(dir, &s, &bad, &first, &err), 0);
    CHECK_EQ(s.n, 3);
    CHECK_EQ(bad, 0);
    if (s.n == 3) {
        CHECK_STR_EQ(s.name[0], "or1");
        CHECK_STR_EQ(s.name[1], "or-2.b_c");
        CHECK_STR_EQ(s.name[2], "01234567890123456789012345678901");
    }
    mmsd_state_names_free(&s);
}

/* A hand edit: blanks around names, CRLF, blank lines, no final newline. */
static void read_forgives_blanks(void)
{
    const char *dir = new_dir("blanks");
    struct mmsd_state_names s = {0};
    struct mms_err err = {{0}};
    int bad, first;
    put_state(dir, "\r\n  or1 \t\r\n\n\t# a comment\nor2");
    CHECK_EQ(mmsd_state_read(dir, &s, &bad, &first, &err), 0);
    CHECK_EQ(bad, 0);
    CHECK(s.n == 2 && mmsd_state_names_has(&s, "or1") && mmsd_state_names_has(&s, "or2"));
    mmsd_state_names_free(&s);
}

static void read_skips_malformed_lines(void)
{
    const char *dir = new_dir("malformed");
    struct mmsd_state_names s = {0};
    struct mms_err err = {{0}};
    int bad, first;
    /* Lines 2, 4, 5, 6 and 7 are no name; line 8 holds a NUL. */
    static const char text[] = "or1\nor 2\nor3\n../etc/passwd\n-lead\n"
                               "012345678901234567890123456789012\n\xc3\xa9t\xc3\xa9\nor\0x\nor4\n";
    put(dir, MMSD_STATE_FILE, text, sizeof(text) - 1);
    CHECK_EQ(mmsd_state_read(dir, &s, &bad, &first, &err), 0);
    CHECK_EQ(bad, 6);
    CHECK_EQ(first, 2);
    CHECK_EQ(s.n, 3);
    CHECK(mmsd_state_names_has(&s, "or1") && mmsd_state_names_has(&s, "or3") &&
          mmsd_state_names_has(&s, "or4"));
    CHECK(!mmsd_state_names_has(&s, "or"));
    mmsd_state_names_free(&s);
}

static void read_a_directory_fails(void)
{
    const char *dir = new_dir("isdir");
    char sub[600];
    struct mmsd_state_names s = {0};
    struct mms_err err = {{0}};
    int bad, first;
    snprintf(sub, sizeof(sub), "%s/" MMSD_STATE_FILE, dir);
    CHECK(mkdir(sub, 0755) == 0);
    CHECK_EQ(mmsd_state_read(dir, &s, &bad, &first, &err), -EISDIR);
    CHECK(s.n == 0 && strstr(err.msg, MMSD_STATE_FILE));
}

/* A FIFO in its place neither holds the read up nor reads as empty. */
static void read_a_fifo_fails(void)
{
    const char *dir = new_dir("fifo");
    char path[1100];
    struct mmsd_state_names s = {0};
    struct mms_err err = {{0}};
    int bad, first;
    snprintf(path, sizeof(path), "%s/" MMSD_STATE_FILE, dir);
    CHECK(mkfifo(path, 0644) == 0);
    CHECK_EQ(mmsd_state_read(dir, &s, &bad, &first, &err), -EINVAL);
    CHECK_MSG(strstr(err.msg, "not a regular file"), "%s", err.msg);
}

static void read_oversized_file_fails(void)
{
    const char *dir = new_dir("big");
    size_t len = MMSD_STATE_MAX_BYTES + 1;
    char *text = malloc(len);
    struct mmsd_state_names s = {0};
    struct mms_err err = {{0}};
    int bad, first;
    CHECK(text != NULL);
    if (!text)
        return;
    for (size_t i = 0; i < len; i++)
        text[i] = i % 4 == 3 ? '\n' : 'a';
    put(dir, MMSD_STATE_FILE, text, len);
    free(text);
    CHECK_EQ(mmsd_state_read(dir, &s, &bad, &first, &err), -EFBIG);
    CHECK_EQ(s.n, 0);
}

/* Runs fn(dir) where permissions hold: as nobody in a child when root
 * (root reads and writes anywhere). dir must be reachable by nobody. */
static int as_nobody(int (*fn)(const char *dir), const char *dir)
{
    if (geteuid() != 0)
        return fn(dir);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(setgid(65534) || setuid(65534) ? 2 : fn(dir));
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* In /tmp itself: nobody cannot enter the test's own 0700 directory. */
static char *public_dir(char *tmpl)
{
    if (!mkdtemp(tmpl) || chmod(tmpl, 0755))
        return NULL;
    return tmpl;
}

static int read_fails_eacces(const char *dir)
{
    struct mmsd_state_names s = {0};
    struct mms_err err = {{0}};
    int bad, first;
    int rc = mmsd_state_read(dir, &s, &bad, &first, &err);
    CHECK_EQ(rc, -EACCES);
    CHECK(s.n == 0 && strstr(err.msg, strerror(EACCES)));
    return rc != -EACCES;
}

static void read_unreadable_file_fails(void)
{
    char tmpl[] = "/tmp/mms-state-ro-XXXXXX";
    const char *dir = public_dir(tmpl);
    CHECK(dir != NULL);
    if (!dir)
        return;
    put_state(dir, "or1\n");
    char path[1100];
    snprintf(path, sizeof(path), "%s/" MMSD_STATE_FILE, dir);
    CHECK(chmod(path, 0) == 0);
    CHECK_MSG(as_nobody(read_fails_eacces, dir) == 0, "an unreadable file read");
    unlink(path);
    rmdir(dir);
}

/* ------------------------------------------------------------ write */

static void write_read_round_trip(void)
{
    static const char *const list[] = {"or1", "b.2", "c_3-x", NULL};
    const char *dir = new_dir("round");
    struct mmsd_state_names s = names_of(list), back = {0};
    struct mms_err err = {{0}};
    int bad, first;
    CHECK_MSG(mmsd_state_write(dir, &s, &err) == 0, "%s", err.msg);
    CHECK_EQ(mmsd_state_read(dir, &back, &bad, &first, &err), 0);
    CHECK_EQ(bad, 0);
    CHECK_EQ(back.n, 3);
    for (int i = 0; i < back.n && i < 3; i++)
        CHECK_STR_EQ(back.name[i], list[i]);
    /* A comment first, then one name a line. */
    CHECK_MSG(!strncmp(slurp(dir, MMSD_STATE_FILE), "# ", 2) &&
                  strstr(slurp(dir, MMSD_STATE_FILE), "\nor1\nb.2\nc_3-x\n"),
              "%s", slurp(dir, MMSD_STATE_FILE));
    mmsd_state_names_free(&s);
    mmsd_state_names_free(&back);
}

static void write_empty_set(void)
{
    static const char *const list[] = {"or1", NULL};
    const char *dir = new_dir("emptied");
    struct mmsd_state_names s = names_of(list), none = {0}, back = {0};
    struct mms_err err = {{0}};
    int bad, first;
    CHECK(mmsd_state_write(dir, &s, &err) == 0);
    CHECK_MSG(mmsd_state_write(dir, &none, &err) == 0, "%s", err.msg);
    CHECK(exists(dir, MMSD_STATE_FILE));
    CHECK_EQ(mmsd_state_read(dir, &back, &bad, &first, &err), 0);
    CHECK(back.n == 0 && bad == 0);
    mmsd_state_names_free(&s);
}

static void write_leaves_no_tmp(void)
{
    static const char *const list[] = {"or1", NULL};
    const char *dir = new_dir("notmp");
    struct mmsd_state_names s = names_of(list);
    struct mms_err err = {{0}};
    /* One left by a write that a power cut ended is replaced too. */
    put(dir, MMSD_STATE_FILE ".tmp", "half", 4);
    CHECK(mmsd_state_write(dir, &s, &err) == 0);
    CHECK(mmsd_state_write(dir, &s, &err) == 0);
    CHECK(exists(dir, MMSD_STATE_FILE));
    CHECK(!exists(dir, MMSD_STATE_FILE ".tmp"));
    mmsd_state_names_free(&s);
}

/* The new file takes the old one's name in one step: a reader that had the
 * old one open still reads it whole, never a half-written new one. */
static void write_replaces_by_rename(void)
{
    static const char *const list[] = {"or1", "or2", NULL};
    const char *dir = new_dir("rename");
    char path[1100], old[64] = "";
    struct mmsd_state_names s = names_of(list);
    struct mms_err err = {{0}};
    put_state(dir, "# old\nor9\n");
    snprintf(path, sizeof(path), "%s/" MMSD_STATE_FILE, dir);
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    CHECK(mmsd_state_write(dir, &s, &err) == 0);
    ssize_t n = fd >= 0 ? pread(fd, old, sizeof(old) - 1, 0) : -1;
    old[n > 0 ? n : 0] = '\0';
    CHECK_STR_EQ(old, "# old\nor9\n");
    CHECK(strstr(slurp(dir, MMSD_STATE_FILE), "\nor1\nor2\n") != NULL);
    if (fd >= 0)
        close(fd);
    mmsd_state_names_free(&s);
}

static void write_into_missing_dir_fails(void)
{
    static const char *const list[] = {"or1", NULL};
    char dir[600];
    struct mmsd_state_names s = names_of(list);
    struct mms_err err = {{0}};
    snprintf(dir, sizeof(dir), "%s/not-there", mms_test_tmpdir());
    CHECK_EQ(mmsd_state_write(dir, &s, &err), -ENOENT);
    CHECK_MSG(strstr(err.msg, "not-there") && strstr(err.msg, strerror(ENOENT)), "%s", err.msg);
    CHECK(access(dir, F_OK) != 0);
    mmsd_state_names_free(&s);
}

static int write_fails_eacces(const char *dir)
{
    static const char *const list[] = {"or2", NULL};
    struct mmsd_state_names s = names_of(list);
    struct mms_err err = {{0}};
    int rc = mmsd_state_write(dir, &s, &err);
    CHECK_EQ(rc, -EACCES);
    CHECK_MSG(strstr(err.msg, strerror(EACCES)), "%s", err.msg);
    mmsd_state_names_free(&s);
    return rc != -EACCES;
}

static void write_into_read_only_dir_keeps_the_old_file(void)
{
    char tmpl[] = "/tmp/mms-state-ro-XXXXXX";
    const char *dir = public_dir(tmpl);
    CHECK(dir != NULL);
    if (!dir)
        return;
    put_state(dir, "# old\nor1\n");
    CHECK(chmod(dir, 0555) == 0);
    CHECK_MSG(as_nobody(write_fails_eacces, dir) == 0, "a read-only directory was written");
    CHECK_STR_EQ(slurp(dir, MMSD_STATE_FILE), "# old\nor1\n");
    CHECK(!exists(dir, MMSD_STATE_FILE ".tmp"));
    chmod(dir, 0755);
    char path[1100];
    snprintf(path, sizeof(path), "%s/" MMSD_STATE_FILE, dir);
    unlink(path);
    rmdir(dir);
}

/* A link in the .tmp's place is not written through. */
static void write_through_a_link_fails(void)
{
    static const char *const list[] = {"or1", NULL};
    const char *dir = new_dir("link");
    char link[600], target[600];
    struct mmsd_state_names s = names_of(list);
    struct mms_err err = {{0}};
    put_state(dir, "# old\nor9\n");
    put(dir, "target", "keep", 4);
    snprintf(link, sizeof(link), "%s/" MMSD_STATE_FILE ".tmp", dir);
    snprintf(target, sizeof(target), "%s/target", dir);
    CHECK(symlink(target, link) == 0);
    CHECK_EQ(mmsd_state_write(dir, &s, &err), -ELOOP);
    CHECK_STR_EQ(slurp(dir, "target"), "keep");
    CHECK_STR_EQ(slurp(dir, MMSD_STATE_FILE), "# old\nor9\n");
    mmsd_state_names_free(&s);
}

/* ------------------------------------------------------------ writer */

struct saves {
    int done, failed;
    char last[512];
    const struct mmsd_state_writer *w;
    unsigned long long settled[4]; /* w->settled at each callback */
};

static void on_saved(void *opaque, int rc, const char *msg)
{
    struct saves *sv = opaque;
    if (sv->w && sv->done < 4)
        sv->settled[sv->done] = sv->w->settled;
    sv->done++;
    sv->failed += rc != 0;
    snprintf(sv->last, sizeof(sv->last), "%s", msg);
}

/* Sets given while one is written coalesce: the file ends with the newest,
 * in two writes at most, all before the loop runs out. */
static void writer_saves_the_newest(void)
{
    static const char *const a[] = {"a", NULL}, *const b[] = {"a", "b", NULL},
                             *const c[] = {"c", NULL};
    const char *dir = new_dir("writer");
    uv_loop_t loop;
    struct mmsd_state_writer w;
    struct saves sv = {0};
    struct mmsd_state_names s;
    CHECK(uv_loop_init(&loop) == 0);
    CHECK(mmsd_state_writer_init(&w, &loop, dir, on_saved, &sv) == 0);
    s = names_of(a);
    mmsd_state_writer_save(&w, &s);
    CHECK(s.n == 0 && !s.name);
    s = names_of(b);
    mmsd_state_writer_save(&w, &s);
    s = names_of(c);
    mmsd_state_writer_save(&w, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(sv.done, 2);
    CHECK_EQ(sv.failed, 0);
    CHECK(!w.busy && !w.dirty && !w.error[0] && w.failures == 0);
    const char *text = slurp(dir, MMSD_STATE_FILE);
    CHECK_MSG(strstr(text, "\nc\n") && !strstr(text, "\na\n"), "%s", text);
    mmsd_state_writer_close(&w);
    CHECK(!w.dir);
    CHECK_EQ(sv.done, 2);
    uv_loop_close(&loop);
}

/* A failure is counted and said; the next success clears it. */
static void writer_reports_failures(void)
{
    static const char *const a[] = {"a", NULL};
    char dir[600];
    uv_loop_t loop;
    struct mmsd_state_writer w;
    struct saves sv = {0};
    struct mmsd_state_names s;
    snprintf(dir, sizeof(dir), "%s/writer-later", mms_test_tmpdir());
    CHECK(uv_loop_init(&loop) == 0);
    CHECK(mmsd_state_writer_init(&w, &loop, dir, on_saved, &sv) == 0);
    s = names_of(a);
    mmsd_state_writer_save(&w, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(sv.done == 1 && sv.failed == 1 && w.failures == 1);
    CHECK_MSG(strstr(w.error, "writer-later") && strstr(sv.last, strerror(ENOENT)), "%s",
              w.error);
    CHECK(mkdir(dir, 0755) == 0);
    s = names_of(a);
    mmsd_state_writer_save(&w, &s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(sv.done == 2 && sv.failed == 1 && w.failures == 1 && !w.error[0]);
    CHECK(strstr(slurp(dir, MMSD_STATE_FILE), "\na\n") != NULL);
    mmsd_state_writer_close(&w);
    uv_loop_close(&loop);
}

/* Each callback says which sets are settled: the first write's, then the
 * newest of those that coalesced behind it, so an answer waiting for the
 * second set is released with the second write and not before. */
static void writer_settles_sets_in_order(void)
{
    static const char *const a[] = {"a", NULL};
    const char *dir = new_dir("writer-seq");
    uv_loop_t loop;
    struct mmsd_state_writer w;
    struct saves sv = {.w = &w};
    struct mmsd_state_names s;
    CHECK(uv_loop_init(&loop) == 0);
    CHECK(mmsd_state_writer_init(&w, &loop, dir, on_saved, &sv) == 0);
    for (int i = 0; i < 3; i++) {
        s = names_of(a);
        mmsd_state_writer_save(&w, &s);
    }
    CHECK(w.given == 3 && w.settled == 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_EQ(sv.done, 2);
    CHECK(sv.settled[0] == 1 && sv.settled[1] == 3 && w.settled == 3);
    mmsd_state_writer_close(&w);
    uv_loop_close(&loop);
}

/* No directory: nothing is written, no callback, and closing is harmless. */
static void writer_without_dir_does_nothing(void)
{
    static const char *const a[] = {"a", NULL};
    struct mmsd_state_writer w = {0};
    struct mmsd_state_names s = names_of(a);
    mmsd_state_writer_save(&w, &s);
    CHECK(!w.busy && !w.dirty && s.n == 0 && !s.name);
    mmsd_state_writer_close(&w);
    mmsd_state_writer_close(&w);
}

/* ------------------------------------------------------------ lock */

/* Taken: the fd is kept and the file names this process. */
static void lock_is_taken_with_the_pid(void)
{
    const char *dir = new_dir("lock-taken");
    struct mms_err err;
    char want[32];
    long holder = -1;
    int fd;
    CHECK(mmsd_state_lock(dir, &fd, &holder, &err) == 0);
    CHECK(fd >= 0 && holder == 0);
    snprintf(want, sizeof(want), "%ld\n", (long)getpid());
    CHECK_MSG(!strcmp(slurp(dir, MMSD_STATE_LOCK), want), "%s", slurp(dir, MMSD_STATE_LOCK));
    if (fd >= 0)
        close(fd);
}

/* flock belongs to the open file, so a second open in this process is
 * refused as another mmsd would be, and told who holds it. */
static void lock_held_is_busy_and_names_the_holder(void)
{
    const char *dir = new_dir("lock-busy");
    struct mms_err err;
    long holder;
    int fd, fd2;
    CHECK(mmsd_state_lock(dir, &fd, &holder, &err) == 0);
    CHECK(mmsd_state_lock(dir, &fd2, &holder, &err) == -EBUSY);
    CHECK(fd2 == -1 && holder == (long)getpid());
    char want[64];
    snprintf(want, sizeof(want), "another mmsd (pid %ld)", (long)getpid());
    CHECK_MSG(strstr(err.msg, want) && strstr(err.msg, "lock-busy/" MMSD_STATE_LOCK), "%s",
              err.msg);
    close(fd);
}

/* Closing (or the process ending) lets go: the next mmsd takes it. */
static void lock_is_free_again_once_closed(void)
{
    const char *dir = new_dir("lock-again");
    struct mms_err err;
    long holder;
    int fd;
    CHECK(mmsd_state_lock(dir, &fd, &holder, &err) == 0);
    close(fd);
    CHECK(mmsd_state_lock(dir, &fd, &holder, &err) == 0);
    CHECK(fd >= 0);
    close(fd);
}

/* A pid left by a crash is stale: the kernel let the lock go, so the file's
 * text alone refuses nothing, and is replaced. */
static void lock_left_by_a_crash_is_taken(void)
{
    const char *dir = new_dir("lock-stale");
    struct mms_err err;
    long holder;
    int fd;
    put(dir, MMSD_STATE_LOCK, "999999999\n", 10);
    CHECK(mmsd_state_lock(dir, &fd, &holder, &err) == 0);
    CHECK(fd >= 0 && atol(slurp(dir, MMSD_STATE_LOCK)) == (long)getpid());
    close(fd);
}

/* Held by something that wrote no pid: still refused, without a pid. */
static void lock_held_without_a_pid_is_busy(void)
{
    const char *dir = new_dir("lock-nopid");
    char path[1100];
    struct mms_err err;
    long holder = -1;
    int fd;
    snprintf(path, sizeof(path), "%s/" MMSD_STATE_LOCK, dir);
    int other = open(path, O_RDWR | O_CREAT, 0640);
    CHECK(other >= 0 && flock(other, LOCK_EX) == 0);
    CHECK(mmsd_state_lock(dir, &fd, &holder, &err) == -EBUSY);
    CHECK(fd == -1 && holder == 0);
    CHECK_MSG(strstr(err.msg, "held by another process") != NULL, "%s", err.msg);
    close(other);
}

static void lock_in_missing_dir_fails(void)
{
    char dir[600];
    struct mms_err err;
    long holder;
    int fd;
    snprintf(dir, sizeof(dir), "%s/lock-none", mms_test_tmpdir());
    CHECK(mmsd_state_lock(dir, &fd, &holder, &err) == -ENOENT);
    CHECK(fd == -1 && holder == 0);
    CHECK_MSG(strstr(err.msg, "lock-none/" MMSD_STATE_LOCK), "%s", err.msg);
}

/* A link in its place is not followed (it could point anywhere). */
static void lock_through_a_link_fails(void)
{
    const char *dir = new_dir("lock-link");
    char path[1100], target[1100];
    struct mms_err err;
    long holder;
    int fd;
    snprintf(path, sizeof(path), "%s/" MMSD_STATE_LOCK, dir);
    snprintf(target, sizeof(target), "%s/elsewhere", dir);
    CHECK(symlink(target, path) == 0);
    CHECK(mmsd_state_lock(dir, &fd, &holder, &err) == -ELOOP);
    CHECK(fd == -1 && access(target, F_OK) != 0);
}

static void lock_that_is_a_directory_fails(void)
{
    const char *dir = new_dir("lock-dir");
    char path[1100];
    struct mms_err err;
    long holder;
    int fd;
    snprintf(path, sizeof(path), "%s/" MMSD_STATE_LOCK, dir);
    CHECK(mkdir(path, 0755) == 0);
    CHECK(mmsd_state_lock(dir, &fd, &holder, &err) < 0);
    CHECK(fd == -1 && holder == 0);
}

MMS_TESTS(T(names_refuse_what_no_pipeline_is_called), T(names_are_kept_once), T(names_remove_one),
          T(dir_configured_wins), T(dir_from_systemd), T(dir_none),
          T(read_missing_file_is_empty), T(read_missing_dir_is_empty), T(read_valid_names),
          T(read_forgives_blanks), T(read_skips_malformed_lines), T(read_a_directory_fails),
          T(read_a_fifo_fails), T(read_oversized_file_fails), T(read_unreadable_file_fails),
          T(write_read_round_trip), T(write_empty_set), T(write_leaves_no_tmp), T(write_replaces_by_rename),
          T(write_into_missing_dir_fails), T(write_into_read_only_dir_keeps_the_old_file),
          T(write_through_a_link_fails), T(writer_saves_the_newest),
          T(writer_settles_sets_in_order),
          T(writer_reports_failures), T(writer_without_dir_does_nothing),
          T(lock_is_taken_with_the_pid), T(lock_held_is_busy_and_names_the_holder),
          T(lock_is_free_again_once_closed), T(lock_left_by_a_crash_is_taken),
          T(lock_held_without_a_pid_is_busy), T(lock_in_missing_dir_fails),
          T(lock_through_a_link_fails), T(lock_that_is_a_directory_fails))
