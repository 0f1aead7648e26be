#ifndef MMS_FUZZ_HTTP_SERVER_H
#define MMS_FUZZ_HTTP_SERVER_H

/*
 * mmsd's HTTP server and API handler (daemon/http.c, daemon/api.c) in the
 * fuzzer's process, over a daemon state built by hand as
 * tests/daemon/api_fixture.c builds it: pipelines known but not running
 * (one with a preview that holds a frame), no model, no source. The loop
 * runs on the fuzzer's thread, so every callback is on its stack.
 *
 * Two servers on 127.0.0.1, port 0, both with mmsd's own options
 * (mmsd_api_http_opts): FUZZ_OPEN as mmsd runs by default (no token), and
 * FUZZ_TOKEN with token FUZZ_TOKEN_VALUE and allowed_hosts
 * FUZZ_ALLOWED_HOSTS.
 */

#include <stddef.h>

enum { FUZZ_OPEN, FUZZ_TOKEN };
#define FUZZ_TOKEN_VALUE "fuzz-Token_0123456789"
#define FUZZ_ALLOWED_HOSTS "mmsd.example, cam.local"

/* Once, from LLVMFuzzerInitialize. */
void fuzz_http_init(void);

/* Puts the pipelines' runtime settings back as configured, so that one
 * input's PATCH does not change how the next is answered. */
void fuzz_http_reset(void);

/* One connection to `server`: sends the len bytes, half-closes, runs the
 * loop until the server has closed the connection, and returns what came
 * back (malloc'd, NUL-terminated; *out_len bytes). fuzz_fail if the server
 * keeps the connection for more than 10 s after the client's FIN. */
char *fuzz_http_exchange(int server, const void *req, size_t len, size_t *out_len);

#endif
