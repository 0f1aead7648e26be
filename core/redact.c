#include "core/redact.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#define HIDDEN "***"

struct out {
    char *p;
    size_t size, len;
    int cut;
};

static void put(struct out *o, const char *s, size_t n)
{
    size_t room = o->size - 1 - o->len;
    if (n > room) {
        n = room;
        o->cut = 1;
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* The first of `set` in [s, e), or e. */
static const char *span_to(const char *s, const char *e, const char *set)
{
    while (s < e && !strchr(set, *s))
        s++;
    return s;
}

int mms_redact_secret_key(const char *name, size_t n)
{
    /* streamid: many SRT ingest servers take the publish key there;
     * header and cookie: FFmpeg's HTTP "headers" and "cookies" options
     * carry session cookies and API keys under any header name; srtp: the
     * SRTP master key is the value of srtp_in_params. */
    static const char *const words[] = {"pass", "pwd",      "secret", "token",  "key",
                                        "auth", "sig",      "cred",   "streamid", "session",
                                        "cookie", "header", "srtp"};
    for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
        size_t wl = strlen(words[w]);
        for (size_t i = 0; i + wl <= n; i++)
            if (!strncasecmp(name + i, words[w], wl))
                return 1;
    }
    return 0;
}

/* The query and fragment, [s, e): the values of secret parameters hidden.
 * A parameter ends at '&', ';' or '#', a secret value only at '&' or ';':
 * FFmpeg's SRT reads "streamid=#!::r=live/KEY" whole, '#' included. */
static void params(struct out *o, const char *s, const char *e)
{
    while (s < e) {
        const char *end = span_to(s, e, "&;#");
        const char *eq = span_to(s, end, "=");
        if (eq < end && mms_redact_secret_key(s, (size_t)(eq - s))) {
            put(o, s, (size_t)(eq + 1 - s));
            puts_(o, HIDDEN);
            end = span_to(eq, e, "&;");
        } else {
            put(o, s, (size_t)(end - s));
        }
        if (end < e)
            put(o, end, 1);
        s = end + (end < e);
    }
}

/* A path, [s, e); for rtmp its last non-empty element is the stream key. */
static void path(struct out *o, const char *s, const char *e, int rtmp)
{
    const char *last = e;
    while (last > s && last[-1] == '/')
        last--;
    const char *start = last;
    while (start > s && start[-1] != '/')
        start--;
    if (!rtmp || start == s || start == last) {
        put(o, s, (size_t)(e - s));
        return;
    }
    put(o, s, (size_t)(start - s));
    puts_(o, HIDDEN);
    put(o, last, (size_t)(e - last));
}

/* rtmp, rtmps, rtmpe, rtmpt, rtmpte, rtmpts: the scheme ends in one. */
static int is_rtmp(const char *s, const char *sep)
{
    for (long k = 4; k <= 6; k++)
        if (sep - s >= k && !strncasecmp(sep - k, "rtmp", 4))
            return 1;
    return 0;
}

/* [s, e) is one URL and sep its "://". */
static void url(struct out *o, const char *s, const char *sep, const char *e)
{
    const char *auth = sep + 3;
    const char *ls = span_to(auth, e, "/?#");
    const char *host = auth;
    for (const char *c = auth; c < ls; c++)
        if (*c == '@')
            host = c + 1;
    put(o, s, (size_t)(auth - s));
    if (host != auth)
        puts_(o, HIDDEN "@");
    const char *q = span_to(ls, e, "?#");
    put(o, host, (size_t)(ls - host));
    path(o, ls, q, is_rtmp(s, sep));
    if (q < e) { /* '?' query, then '#' fragment; or the fragment alone */
        put(o, q, 1);
        params(o, q + 1, e);
    }
}

static int is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_scheme_char(char c)
{
    return is_alpha(c) || (c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.';
}

/* Where the scheme before sep starts, not before floor; sep if none. */
static const char *scheme_start(const char *floor, const char *sep)
{
    const char *s = sep;
    while (s > floor && is_scheme_char(s[-1]))
        s--;
    while (s < sep && !is_alpha(*s))
        s++;
    return s;
}

static int finish(struct out *o)
{
    return o->cut ? -ENOSPC : 0;
}

int mms_redact_url(const char *u, char *buf, size_t size)
{
    if (!u || !buf || !size)
        return -EINVAL;
    struct out o = {buf, size, 0, 0};
    buf[0] = '\0';
    const char *sep = strstr(u, "://");
    if (!sep || scheme_start(u, sep) != u)
        return mms_redact_text(u, buf, size);
    url(&o, u, sep, u + strlen(u));
    return finish(&o);
}

void mms_redact_cut_tail(char *text)
{
    char *sep = NULL;
    for (char *p = text; (p = strstr(p, "://")); p += 3)
        sep = p;
    /* The same end as mms_redact_text's: the URL reaches the cut only if
     * nothing ends it before. */
    if (!sep || sep[3 + strcspn(sep + 3, " \t\r\n\"'<>`")])
        return;
    size_t n = strlen(sep + 3);
    if (n >= 3)
        memcpy(sep + 3, "***", 4);
    else
        memset(sep + 3, '*', n);
}

int mms_redact_text(const char *text, char *buf, size_t size)
{
    if (!text || !buf || !size)
        return -EINVAL;
    struct out o = {buf, size, 0, 0};
    buf[0] = '\0';
    const char *p = text;
    for (const char *sep; (sep = strstr(p, "://"));) {
        const char *s = scheme_start(p, sep);
        const char *e = sep + 3 + strcspn(sep + 3, " \t\r\n\"'<>`");
        while (e > sep + 3 && strchr(".,;:!)]}", e[-1]))
            e--;
        put(&o, p, (size_t)(s - p));
        url(&o, s, sep, e); /* with no scheme too: "://user:pw@host" is no less secret */
        p = e;
    }
    puts_(&o, p);
    return finish(&o);
}
