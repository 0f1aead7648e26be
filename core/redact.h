#ifndef MMS_REDACT_H
#define MMS_REDACT_H

/*
 * What may be shown of a URL. Sources and outputs are URLs that may carry
 * credentials, and FFmpeg's errors repeat them; whatever shows one (the
 * health reasons, the API, metric labels, logs, a printed config) passes
 * it through here first. Each secret becomes "***":
 *
 *   - the whole userinfo, user included (some services put the key
 *     there): admin:pw in rtsp://admin:pw@cam/s1. The userinfo is what
 *     FFmpeg takes for one: up to the last '@' before the first '/', '?'
 *     or '#' after "//";
 *   - the value of every query or fragment parameter whose name holds, in
 *     any case, pass, pwd, secret, token, key, auth, sig, cred, session,
 *     cookie, header, srtp or streamid (an SRT publish key on many ingest
 *     servers): x in
 *     srt://h:9000?passphrase=x. Such a value runs to the next '&' or
 *     ';', past a '#': FFmpeg's SRT takes streamid=#!::r=live/KEY whole;
 *   - the stream key of an rtmp, rtmps, rtmpe, rtmpt, rtmpte or rtmpts
 *     URL, its last non-empty path element: KEY in rtmp://h/live/KEY.
 *
 * Everything else is kept, so a message still says which camera failed.
 * Redacting twice gives the same text. Both functions write a
 * NUL-terminated result into buf and return 0, or -ENOSPC when it was cut
 * to fit (what was written is still redacted), or -EINVAL.
 */

#include <stddef.h>

/* One URL, all of it; text without "://" is copied as it is. */
int mms_redact_url(const char *url, char *buf, size_t size);

/* Free text (an error message): every URL found in it, each running from
 * its scheme to the next blank or quote, less trailing punctuation. */
int mms_redact_text(const char *text, char *buf, size_t size);

/* For a text that was cut short before it could be redacted (a message
 * longer than its buffer): a URL that runs to the cut may have lost the
 * '@' that marks its userinfo ("rtsp://admin:secr"), so everything after
 * its "://" becomes "***", in place. Other text is left to
 * mms_redact_text. */
void mms_redact_cut_tail(char *text);

/* 1 when a parameter named name (n bytes) holds a secret, by the rule
 * above; for KEY=VALUE settings that are not URLs. */
int mms_redact_secret_key(const char *name, size_t n);

#endif
