/* JSON bodies of mmsd's API, as a client sends them: the first byte picks
 * the route (PATCH /api/v1/pipelines/NAME, the settings; POST .../recording,
 * start or stop), the rest is the body, sent with Content-Type:
 * application/json through the HTTP server of fuzz/http_server.h.
 *
 * Beyond the sanitizers: the answer is one complete HTTP/1.1 answer whose
 * body is a JSON object, with a status the API gives for a body (200, 400,
 * 404, 409, 413), never a 5xx. */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "http_server.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_http_init();
    return 0;
}

static const struct {
    const char *method, *path;
} routes[] = {
    {"PATCH", "/api/v1/pipelines/cam"},
    {"POST", "/api/v1/pipelines/cam/recording"},
    {"PATCH", "/api/v1/pipelines/lab"},
    {"POST", "/api/v1/pipelines/x.y-z_9/recording"},
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int r = data[0] % (sizeof(routes) / sizeof(*routes));
    const char *body = (const char *)data + 1;
    size_t blen = size - 1;
    char head[256];
    int hlen = snprintf(head, sizeof(head),
                        "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                        "Connection: close\r\nContent-Length: %zu\r\n\r\n",
                        routes[r].method, routes[r].path, blen);
    char *req = malloc((size_t)hlen + blen);
    memcpy(req, head, (size_t)hlen);
    memcpy(req + hlen, body, blen);
    fuzz_http_reset();
    size_t alen;
    char *answer = fuzz_http_exchange(FUZZ_OPEN, req, (size_t)hlen + blen, &alen);
    free(req);

    int status = 0;
    if (sscanf(answer, "HTTP/1.1 %d ", &status) != 1)
        fuzz_fail("no status line in the answer: %.60s", answer);
    if (status != 200 && status != 400 && status != 404 && status != 409 && status != 413)
        fuzz_fail("%s %s answered %d", routes[r].method, routes[r].path, status);
    char *sep = strstr(answer, "\r\n\r\n");
    if (!sep)
        fuzz_fail("the answer has no end of head: %.200s", answer);
    struct json_tokener *tok = json_tokener_new();
    const char *js = sep + 4;
    struct json_object *o = json_tokener_parse_ex(tok, js, (int)(alen - (size_t)(js - answer)));
    if (!o || !json_object_is_type(o, json_type_object))
        fuzz_fail("the answer's body is not a JSON object: %.200s", js);
    json_object_put(o);
    json_tokener_free(tok);
    free(answer);
    return 0;
}
