/* Text made fit for JSON (core/utf8.h): UTF-8 kept as it is, every other
 * byte '?', and a cut never splits a character. */
#include <stdlib.h>
#include <string.h>

#include "core/utf8.h"
#include "harness.h"

static void clean_is(const char *in, size_t size, const char *want)
{
    char out[64];
    CHECK_STR_EQ(mms_utf8_clean(in, out, size), want);
}

static void utf8_is_kept(void)
{
    clean_is("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa7", 64, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\xa7");
    clean_is("", 64, "");
    CHECK_EQ(mms_utf8_len("\xf4\x8f\xbf\xbf"), 4); /* U+10FFFF, the last */
}

static void bad_bytes_become_question_marks(void)
{
    clean_is("a\xff" "b", 64, "a?b");
    clean_is("\x80\xbf", 64, "??");             /* continuation bytes alone */
    clean_is("\xc0\xaf", 64, "??");             /* an overlong '/' */
    clean_is("\xe0\x80\xaf", 64, "???");        /* another */
    clean_is("\xed\xa0\x80", 64, "???");        /* a surrogate */
    clean_is("\xf4\x90\x80\x80", 64, "????");   /* past U+10FFFF */
    clean_is("x\xe2\x82", 64, "x??");           /* cut by the string's end */
}

/* Cut to fit: at a character's end, never inside one. */
static void a_cut_keeps_whole_characters(void)
{
    clean_is("ab\xe2\x82\xac", 5, "ab");
    clean_is("ab\xe2\x82\xac", 6, "ab\xe2\x82\xac");
    clean_is("abc", 1, "");
}

static void dup_is_the_same(void)
{
    char *s = mms_utf8_dup("a\xff\xc3\xa9");
    CHECK(s && !strcmp(s, "a?\xc3\xa9"));
    free(s);
}

MMS_TESTS(T(utf8_is_kept), T(bad_bytes_become_question_marks), T(a_cut_keeps_whole_characters),
          T(dup_is_the_same))
