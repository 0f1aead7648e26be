#ifndef MMS_TEST_API_FIXTURE_H
#define MMS_TEST_API_FIXTURE_H

/*
 * mmsd's HTTP handler (daemon/api.c) on a real server on 127.0.0.1, over a
 * daemon state built by hand: pipelines that are known but not running,
 * so the API, the metrics and the previews are tested without a model or
 * a source. The loop runs on a thread of its own; requests come from the
 * test's thread over a socket, one at a time.
 */

#include <pthread.h>

#include "daemon/internal.h"

struct fixture {
    uv_loop_t loop;
    struct mmsd d;
    uv_async_t wake;
    pthread_t thread;
    int port;
    int previews; /* set before fixture_start: every pipeline gets a preview */
    char head[4096]; /* the last answer's status line and headers */
};

/* Before fixture_start: a pipeline named `name`, in `state`. A test may set
 * its p to a pipeline it created (not started): the fixture gives it an
 * event queue, and fixture_stop destroys it. */
struct mmsd_pipe *fixture_add_pipe(struct fixture *f, const char *name, enum mmsd_pipe_state s);
int fixture_start(struct fixture *f);
/* Stops the loop, frees the pipelines (and their previews). */
void fixture_stop(struct fixture *f);

/* A GET that stays open (a preview stream): its status, the socket left
 * open in *fd (-1 when none came). */
int fixture_open_stream(struct fixture *f, const char *path, int *fd);

/* One request (body NULL for none); the status, or -1 when none came, and
 * the body (malloc'd, NUL-terminated) in *out. */
int fixture_request(struct fixture *f, const char *method, const char *path, const char *body,
                    char **out, size_t *len);

/* The same with the head lines `headers` (each ending in CRLF; a Host
 * line replaces the fixture's own) and blen bytes of body. */
int fixture_request_raw(struct fixture *f, const char *method, const char *path,
                        const char *headers, const char *body, size_t blen, char **out,
                        size_t *len);

#endif
