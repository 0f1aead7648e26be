#ifndef MMSD_STATE_H
#define MMSD_STATE_H

/*
 * What mmsd keeps across its own restarts (a crash, the watchdog,
 * `systemctl restart`, an upgrade): today the pipelines whose recording
 * was stopped through the API, since a recording stopped for privacy must
 * not start again by itself. One file, STATE_DIR/recording-off: a '#'
 * comment line, then one pipeline name a line.
 *
 * mmsd_state_read and mmsd_state_write block on the disk; the writer runs
 * mmsd_state_write on libuv's thread pool, so the event loop never waits
 * on a slow or hung state directory (an NFS mount).
 */

#include <stddef.h>

#include <uv.h>

#include "core/error.h"
#include "daemon/config.h"

#define MMSD_STATE_FILE "recording-off"
#define MMSD_STATE_LOCK "lock"
/* Past this the file is not one mmsd wrote (a few names a line each). */
#define MMSD_STATE_MAX_BYTES 65536

/* A set of pipeline names, owned; zeroed is empty. */
struct mmsd_state_names {
    char (*name)[MMSD_PIPELINE_NAME_MAX + 1];
    int n, cap;
};

/* Adds `name` unless it is there: 0, -EINVAL for a name no pipeline may
 * have, -ENOMEM. */
int mmsd_state_names_add(struct mmsd_state_names *s, const char *name);
int mmsd_state_names_has(const struct mmsd_state_names *s, const char *name);
/* Removes `name` if it is there. */
void mmsd_state_names_remove(struct mmsd_state_names *s, const char *name);
void mmsd_state_names_free(struct mmsd_state_names *s);

/* The directory the state lives in, into buf: `configured` ([mmsd]
 * state_dir) when set, else the first of systemd's $STATE_DIRECTORY
 * (colon-separated when a unit names several). -ENOENT when neither names
 * one: nothing is kept. -ENAMETOOLONG when it does not fit. */
int mmsd_state_dir(const char *configured, char *buf, size_t len);

/* Reads dir/recording-off into *out (emptied first). 0: read, and a
 * missing file or directory is read as empty (nothing was stopped). Lines that are not
 * pipeline names are skipped, counted in *malformed with the first one's
 * number in *first_bad (0 when none). A negative errno when the file is
 * there but cannot be read (-EACCES, -EIO, -EISDIR, -EINVAL for one that
 * is not a regular file, -EFBIG past MMSD_STATE_MAX_BYTES); *out is then
 * empty and err says why. */
int mmsd_state_read(const char *dir, struct mmsd_state_names *out, int *malformed,
                    int *first_bad, struct mms_err *err);

/* Takes dir/lock (an flock, with this process's pid in the file) for as
 * long as *fd stays open; the kernel lets go when the process ends, a
 * crash included. Two mmsd given one state_dir would each write only its
 * own stops over the other's, so the second is refused. 0; -EBUSY when
 * another process holds it, with its pid in *holder (0 when the file does
 * not say); another negative errno when no lock can be taken there (no
 * such directory, a read-only one: then nothing can be saved there
 * either). err says why in every case. */
int mmsd_state_lock(const char *dir, int *fd, long *holder, struct mms_err *err);

/* Replaces dir/recording-off with `names`, atomically: written to
 * recording-off.tmp, synced, renamed over it, the directory synced. 0, or
 * a negative errno with err naming the step; but for a directory that
 * cannot be synced after the rename, the old file is then as it was, and
 * no .tmp is left either way. */
int mmsd_state_write(const char *dir, const struct mmsd_state_names *names, struct mms_err *err);

/*
 * The writer: loop thread only. Saves the newest set, one write at a time,
 * off the loop: a set given while one is being written is written after
 * it (sets given meanwhile coalesce into the newest). libuv's loop runs
 * until the work is done, so a stop given just before SIGTERM reaches the
 * disk before mmsd exits.
 */
struct mmsd_state_writer {
    uv_loop_t *loop;
    char *dir;                       /* NULL: nothing is kept; every call does nothing */
    uv_work_t work;
    int busy;                        /* a write is in flight */
    int dirty;                       /* `next` has not been handed to a write yet */
    struct mmsd_state_names next;    /* the newest set */
    struct mmsd_state_names writing; /* the worker's while busy */
    int work_rc;
    struct mms_err work_err;
    /* After each write, on the loop: rc 0 or its error and the message. */
    void (*done)(void *opaque, int rc, const char *msg);
    void *opaque;
    /* Sets handed to save, in all; and of those, the newest that a
     * finished write was given (saved or failed): a set counted `given`
     * after a change has that change, so the change is settled once
     * `settled` reaches it. */
    unsigned long long given, settled, writing_seq;
    long long failures;              /* writes that failed, in all */
    char error[512];                 /* the last write's failure; "" after a success */
};

/* 0, or -ENOMEM (w is then zeroed: nothing is kept). */
int mmsd_state_writer_init(struct mmsd_state_writer *w, uv_loop_t *loop, const char *dir,
                           void (*done)(void *opaque, int rc, const char *msg), void *opaque);
/* Takes the names (*names is left empty) and saves them, now or after the
 * write in flight. */
void mmsd_state_writer_save(struct mmsd_state_writer *w, struct mmsd_state_names *names);
/* Once the loop has run out: writes a set still waiting, here and now,
 * then frees. Harmless on a zeroed writer. */
void mmsd_state_writer_close(struct mmsd_state_writer *w);

#endif
