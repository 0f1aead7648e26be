#ifndef MMS_UTF8_H
#define MMS_UTF8_H

/*
 * Text from outside (a file name, a request's path, an FFmpeg message) made
 * fit for JSON, which must be UTF-8: a name in another encoding, or cut in
 * the middle of a character, would make the whole answer unreadable.
 */

#include <stddef.h>

/* Bytes of the well-formed UTF-8 character at s, 1 to 4 (NUL counts as
 * one); 0 when none starts there: a stray continuation byte, an overlong
 * form, a surrogate, a code point past U+10FFFF, or a character cut by
 * the string's end. */
int mms_utf8_len(const char *s);

/* `in` into `out` (size > 0, NUL-terminated), each byte that starts no
 * character as '?', cut at a character's end when it does not fit.
 * Returns out. */
char *mms_utf8_clean(const char *in, char *out, size_t size);

/* The same into a new string of in's length (free() it); NULL without
 * memory. */
char *mms_utf8_dup(const char *in);

#endif
