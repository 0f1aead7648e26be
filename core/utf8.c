#include "core/utf8.h"

#include <stdlib.h>
#include <string.h>

int mms_utf8_len(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    int n = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
    /* The second byte's range rules out overlong forms (E0, F0),
     * surrogates (ED) and what lies past U+10FFFF (F4). */
    unsigned char lo = c == 0xe0 ? 0xa0 : c == 0xf0 ? 0x90 : 0x80;
    unsigned char hi = c == 0xed ? 0x9f : c == 0xf4 ? 0x8f : 0xbf;
    for (int i = 1; i < n; i++) {
        unsigned char l = i == 1 ? lo : 0x80, h = i == 1 ? hi : 0xbf;
        if (s[i] < l || s[i] > h) /* a NUL ends it here too: never read past */
            return 0;
    }
    return n;
}

char *mms_utf8_clean(const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (size_t i = 0; in[i];) {
        int n = mms_utf8_len(in + i);
        size_t take = n ? (size_t)n : 1;
        if (o + take >= size)
            break;
        if (n)
            memcpy(out + o, in + i, take);
        else
            out[o] = '?';
        o += take;
        i += take;
    }
    out[o] = 0;
    return out;
}

char *mms_utf8_dup(const char *in)
{
    size_t n = strlen(in) + 1;
    char *out = malloc(n);
    return out ? mms_utf8_clean(in, out, n) : NULL;
}
