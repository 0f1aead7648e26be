/* Raw bytes into mmsd's HTTP server and API router (fuzz/http_server.h):
 * the first byte picks the server (bit 0: the one with a token), the rest
 * is what a client sends on one connection before half-closing it.
 *
 * Beyond the sanitizers: what comes back is a sequence of well-framed
 * HTTP/1.1 answers, and the server
 * with a token answers 2xx only to a request that holds the token (after
 * percent-decoding, as the query's access_token may be sent) or asks for
 * /healthz, the one open path. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common.h"
#include "http_server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_http_init();
    return 0;
}

static int hex(int c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* Every %XX decoded, repeatedly until nothing changes: a superset of what
 * any one decoding could reveal. */
static size_t decode_all(char *s, size_t n)
{
    for (int changed = 1; changed;) {
        changed = 0;
        size_t o = 0;
        for (size_t i = 0; i < n; i++) {
            int h, l;
            if (s[i] == '%' && i + 2 < n && (h = hex((unsigned char)s[i + 1])) >= 0 &&
                (l = hex((unsigned char)s[i + 2])) >= 0) {
                s[o++] = (char)(h * 16 + l);
                i += 2;
                changed = 1;
            } else {
                s[o++] = s[i];
            }
        }
        n = o;
    }
    return n;
}

/* The answers on the connection, one after the other: a status line, the
 * head, then Content-Length bytes (none after a 1xx or, for a HEAD, none
 * at all), until one without a length (a stream, to the end). Returns how
 * many were 2xx; fuzz_fail when the framing breaks. The last one may be
 * cut short (the server may reset a connection it closed unread). */
static int walk(const char *a, size_t n)
{
    int ok2xx = 0;
    size_t o = 0;
    while (o < n) {
        if (n - o < 13 || memcmp(a + o, "HTTP/1.1 ", 9))
            fuzz_fail("answer at byte %zu is not an HTTP/1.1 status line: %.40s", o, a + o);
        int status = atoi(a + o + 9);
        if (status < 100 || status > 599)
            fuzz_fail("status %d at byte %zu", status, o);
        ok2xx += status / 100 == 2;
        const char *end = memmem(a + o, n - o, "\r\n\r\n", 4);
        if (!end)
            return ok2xx; /* cut short */
        size_t body = (size_t)(end + 4 - a);
        if (status / 100 == 1) {
            o = body;
            continue;
        }
        const char *cl = NULL;
        for (const char *p = a + o; p < end; p++)
            if ((p[0] == '\n') && !strncasecmp(p + 1, "Content-Length:", 15)) {
                cl = p + 16;
                break;
            }
        if (!cl)
            return ok2xx; /* a stream: the rest is its parts */
        size_t len = strtoul(cl, NULL, 10);
        if (body + len <= n && (body + len == n || !memcmp(a + body + len, "HTTP/1.1 ", 9)))
            o = body + len;
        else if (body == n || !memcmp(a + body, "HTTP/1.1 ", 9))
            o = body; /* the answer to a HEAD */
        else if (body + len > n)
            return ok2xx; /* cut short */
        else
            fuzz_fail("bytes after an answer's Content-Length are not an answer: %.40s",
                      a + body + len);
    }
    return ok2xx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int server = data[0] & 1 ? FUZZ_TOKEN : FUZZ_OPEN;
    fuzz_http_reset();
    size_t alen;
    char *answer = fuzz_http_exchange(server, data + 1, size - 1, &alen);
    if (walk(answer, alen) && server == FUZZ_TOKEN) {
        char *req = malloc(size);
        memcpy(req, data + 1, size - 1);
        size_t n = decode_all(req, size - 1);
        if (!memmem(req, n, FUZZ_TOKEN_VALUE, strlen(FUZZ_TOKEN_VALUE)) &&
            !memmem(req, n, "/healthz", 8))
            fuzz_fail("2xx without the token:\n%.400s", answer);
        free(req);
    }
    free(answer);
    return 0;
}
