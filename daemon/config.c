#include "daemon/config.h"

#include <errno.h>
#include <ini.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/redact.h"

enum section { SEC_NONE, SEC_MMSD, SEC_PIPELINE };

/* [mmsd] keys that a pipeline takes when its own section sets none. */
static const char *const inherited[] = {"model", "threads"};
#define NINHERITED (sizeof(inherited) / sizeof(inherited[0]))

struct parse {
    struct mmsd_config *c;
    FILE *f;
    int line; /* the line inih is parsing */
    int max_line; /* the longest line read_line takes */
    int read_errno;
    enum section sec;
    int mmsd_line; /* of the [mmsd] header; 0: none yet */
    int listen_line;
    int *key_line; /* current section, per option: where it was set */
    int nkeys;
    unsigned *own; /* per pipeline: bit i set when it sets inherited[i] itself */
    int cap;
    int err_line; /* the first error; later ones are noise */
    int err_code;
    struct mms_err err;
};

__attribute__((format(printf, 4, 5))) static int refuse(struct parse *p, int line, int code,
                                                        const char *fmt, ...)
{
    if (p->err_line)
        return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err.msg, sizeof(p->err.msg), fmt, ap);
    va_end(ap);
    p->err_line = line;
    p->err_code = code;
    return code;
}

static int table_size(void)
{
    int n = 0, m = 0;
    while (mms_pipeline_options[n].name)
        n++;
    while (mmsd_option_table[m].name)
        m++;
    return n > m ? n : m;
}

const struct mmsd_pipeline_conf *mmsd_config_find(const struct mmsd_config *c, const char *name)
{
    for (int i = 0; i < c->npipelines; i++)
        if (!strcmp(c->pipelines[i].name, name))
            return &c->pipelines[i];
    return NULL;
}

int mmsd_pipeline_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (!n || n > MMSD_PIPELINE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        /* Not isalnum(): the locale must not widen what a URL may carry. */
        char ch = s[i];
        int alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || !strchr("-_.", ch)))
            return 0;
    }
    return 1;
}

static int add_pipeline(struct parse *p, const char *name)
{
    struct mmsd_config *c = p->c;
    if (c->npipelines == p->cap) {
        int cap = p->cap ? 2 * p->cap : 4;
        struct mmsd_pipeline_conf *pl = realloc(c->pipelines, (size_t)cap * sizeof(*pl));
        if (!pl)
            return -ENOMEM;
        c->pipelines = pl;
        unsigned *own = realloc(p->own, (size_t)cap * sizeof(*own));
        if (!own)
            return -ENOMEM;
        p->own = own;
        p->cap = cap;
    }
    struct mmsd_pipeline_conf *pc = &c->pipelines[c->npipelines];
    memset(pc, 0, sizeof(*pc));
    p->own[c->npipelines] = 0;
    /* Counted before it is filled, so a failure halfway is still freed. */
    c->npipelines++;
    pc->line = p->line;
    if (!(pc->name = strdup(name)))
        return -ENOMEM;
    return mms_options_defaults(&pc->o);
}

static int open_pipeline(struct parse *p, const char *name)
{
    if (!*name)
        return refuse(p, p->line, -EINVAL, "[pipeline] needs a name: [pipeline NAME]");
    if (!mmsd_pipeline_name_valid(name))
        return refuse(p, p->line, -EINVAL,
                      "pipeline name '%s': up to %d letters, digits, '-', '_' or '.', "
                      "starting with a letter or digit",
                      name, MMSD_PIPELINE_NAME_MAX);
    const struct mmsd_pipeline_conf *first = mmsd_config_find(p->c, name);
    if (first)
        return refuse(p, p->line, -EINVAL, "duplicate [pipeline %s] (the first is on line %d)",
                      name, first->line);
    int rc = add_pipeline(p, name);
    if (rc)
        return refuse(p, p->line, rc, "out of memory");
    p->sec = SEC_PIPELINE;
    return 0;
}

static int open_section(struct parse *p, const char *name)
{
    memset(p->key_line, 0, (size_t)p->nkeys * sizeof(*p->key_line));
    if (!strcmp(name, "mmsd")) {
        if (p->mmsd_line)
            return refuse(p, p->line, -EINVAL, "second [mmsd] section (the first is on line %d)",
                          p->mmsd_line);
        p->mmsd_line = p->line;
        p->sec = SEC_MMSD;
        return 0;
    }
    if (!strncmp(name, "pipeline", 8) && (!name[8] || name[8] == ' ' || name[8] == '\t'))
        return open_pipeline(p, name + 8 + strspn(name + 8, " \t"));
    return refuse(p, p->line, -EINVAL, "unknown section [%s] (expected [mmsd] or [pipeline NAME])",
                  name);
}

/* inih has no callback for a section header, yet an empty or repeated
 * section must be seen, so headers are picked out of the line here. */
static void scan_header(struct parse *p, const char *s)
{
    const char *close = strchr(s, ']');
    char name[128];
    if (!close)
        return; /* inih refuses the line */
    const char *after = close + 1 + strspn(close + 1, " \t\r\n");
    if (*after && *after != ';' && *after != '#') {
        refuse(p, p->line, -EINVAL, "text after the section header");
        return;
    }
    s += 1 + strspn(s + 1, " \t");
    size_t n = (size_t)(close - s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= sizeof(name)) {
        refuse(p, p->line, -EINVAL, "section name too long");
        return;
    }
    memcpy(name, s, n);
    name[n] = '\0';
    open_section(p, name);
}

/* The fgets-like reader inih calls once per line: it counts lines (the
 * handler gets no line number in Debian's build), refuses lines inih
 * would silently split, and drops leading blanks so an indented key is
 * a key rather than inih's continuation of the previous value. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse *p = stream;
    if (p->err_line)
        return NULL;
    if (!fgets(str, num, p->f)) {
        if (ferror(p->f))
            p->read_errno = errno ? errno : EIO;
        return NULL;
    }
    p->line++;
    p->max_line = num - 3;
    size_t n = strlen(str);
    if (n == (size_t)num - 1 && str[n - 1] != '\n') {
        int ch = getc(p->f);
        if (ch != EOF) {
            refuse(p, p->line, -EINVAL, "line longer than %d characters", num - 3);
            return NULL;
        }
    }
    if (p->line == 1 && !strncmp(str, "\xEF\xBB\xBF", 3))
        memmove(str, str + 3, strlen(str + 3) + 1);
    /* inih's lskip() takes every isspace() character as indentation: a
     * line led by \v or \f would otherwise continue the previous value,
     * inline comment and all, and print as a different value. */
    size_t blank = strspn(str, " \t\v\f\r");
    memmove(str, str + blank, strlen(str + blank) + 1);
    if (str[0] == '[')
        scan_header(p, str);
    return p->err_line ? NULL : str;
}

/* The tables' messages name the option as the table spells it; say it as
 * the file did, so that a search for it in the file finds it. */
static int refuse_value(struct parse *p, int rc, const struct mms_err *e, const char *canon,
                        const char *written)
{
    size_t n = strlen(canon);
    if (rc == -ENOMEM)
        return refuse(p, p->line, rc, "out of memory");
    if (!strncmp(e->msg, canon, n))
        return refuse(p, p->line, rc, "%s%s", written, e->msg + n);
    return refuse(p, p->line, rc, "%s", e->msg);
}

static int set_once(struct parse *p, int idx, const char *name)
{
    if (p->key_line[idx])
        return refuse(p, p->line, -EINVAL, "'%s' is already set on line %d", name,
                      p->key_line[idx]);
    p->key_line[idx] = p->line;
    return 0;
}

static int set_mmsd(struct parse *p, const char *name, const char *value)
{
    const struct mms_option *opt = mmsd_option_find(name);
    struct mms_err e;
    int rc;
    if (!opt)
        return refuse(p, p->line, -EINVAL, "unknown key '%s' in [mmsd]%s", name,
                      mms_option_find(name) ? " (it belongs in [pipeline NAME])" : "");
    if ((rc = set_once(p, (int)(opt - mmsd_option_table), name)))
        return rc;
    if ((rc = mmsd_option_set(&p->c->d, opt->name, value, &e)))
        return refuse_value(p, rc, &e, opt->name, name);
    if (!strcmp(opt->name, "listen"))
        p->listen_line = p->line;
    return 0;
}

static int set_pipeline(struct parse *p, const char *name, const char *value)
{
    const struct mms_option *opt = mms_option_find(name);
    int last = p->c->npipelines - 1;
    struct mms_err e;
    int rc;
    if (!opt)
        return refuse(p, p->line, -EINVAL, "unknown key '%s' in [pipeline %s]%s", name,
                      p->c->pipelines[last].name,
                      mmsd_option_find(name) ? " (it belongs in [mmsd])" : "");
    if (opt->type != MMS_OPT_STRINGS && (rc = set_once(p, (int)(opt - mms_pipeline_options), name)))
        return rc;
    if ((rc = mms_option_set(&p->c->pipelines[last].o, opt->name, value, &e)))
        return refuse_value(p, rc, &e, opt->name, name);
    for (size_t i = 0; i < NINHERITED; i++)
        if (!strcmp(opt->name, inherited[i]))
            p->own[last] |= 1u << i;
    return 0;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;
    (void)section; /* scan_header keeps the section, with what inih does not know */
    /* inih reads "key =;x" as ";x" but "key = ;x", as a printed config
     * writes it, as a comment: such a value would not load back. */
    if (p->sec != SEC_NONE && value[0] == ';') {
        refuse(p, p->line, -EINVAL, "%s: a value may not start with ';' (after a blank, ';' "
                                    "starts a comment)", name);
        return 0;
    }
    /* A printed config writes "key = value": that line must load too. */
    if (p->sec != SEC_NONE && strlen(name) + 3 + strlen(value) > (size_t)p->max_line) {
        refuse(p, p->line, -EINVAL, "%s: value too long (\"%s = VALUE\" must fit in %d "
                                    "characters)", name, name, p->max_line);
        return 0;
    }
    switch (p->sec) {
    case SEC_NONE:
        refuse(p, p->line, -EINVAL, "'%s' is outside any section ([mmsd] or [pipeline NAME])",
               name);
        break;
    case SEC_MMSD:
        set_mmsd(p, name, value);
        break;
    case SEC_PIPELINE:
        set_pipeline(p, name, value);
        break;
    }
    return !p->err_line;
}

static int inherit(struct parse *p, int i)
{
    struct mmsd_pipeline_conf *pc = &p->c->pipelines[i];
    for (size_t k = 0; k < NINHERITED; k++) {
        if (p->own[i] & (1u << k))
            continue;
        int rc = mms_opt_copy_as(mms_option_find(inherited[k]), &pc->o,
                                 mmsd_option_find(inherited[k]), &p->c->d);
        if (rc)
            return refuse(p, pc->line, rc, "[pipeline %s]: [mmsd] %s: %s", pc->name,
                          inherited[k], strerror(-rc));
    }
    return 0;
}

/* What only the whole file can tell. */
static int finish(struct parse *p)
{
    struct mmsd_config *c = p->c;
    int rc;
    for (int i = 0; i < c->npipelines; i++) {
        if (!c->pipelines[i].o.input)
            return refuse(p, c->pipelines[i].line, -EINVAL, "[pipeline %s] has no input",
                          c->pipelines[i].name);
        if ((rc = inherit(p, i)))
            return rc;
    }
    struct sockaddr_storage ss;
    if (!c->d.token_file && !mmsd_listen_parse(c->d.listen, &ss, NULL) &&
        !mmsd_listen_is_loopback(&ss))
        return refuse(p, p->listen_line, -EINVAL,
                      "listen=\"%s\" is not loopback, so token_file is required", c->d.listen);
    return 0;
}

static int parse_file(struct parse *p)
{
    int rc = ini_parse_stream(read_line, p, on_key, p);
    if (rc > 0 && (!p->err_line || rc < p->err_line)) {
        p->err_line = 0; /* inih's error is on an earlier line */
        refuse(p, rc, -EINVAL, "malformed line (expected [SECTION], KEY = VALUE or a comment)");
    }
    if (rc < 0 && !p->err_line)
        return -ENOMEM;
    if (!p->err_line && !p->read_errno)
        finish(p);
    return p->err_line ? p->err_code : 0;
}

int mmsd_config_load(struct mmsd_config *c, const char *path, struct mms_err *err)
{
    struct parse p = {.c = c, .nkeys = table_size()};
    int rc;
    memset(c, 0, sizeof(*c));
    if (!(p.f = fopen(path, "r"))) {
        rc = -errno;
        return mms_err_set(err, rc, "%s: %s", path, strerror(-rc));
    }
    rc = mmsd_options_defaults(&c->d);
    if (!rc && (!(c->path = strdup(path)) || !(p.key_line = calloc((size_t)p.nkeys, sizeof(int)))))
        rc = -ENOMEM;
    if (rc) {
        mms_err_set(err, rc, "%s: out of memory", path);
        goto fail;
    }
    rc = parse_file(&p);
    if (p.err_line) {
        mms_err_set(err, rc, "%s:%d: %s", path, p.err_line, p.err.msg);
        goto fail;
    }
    if (p.read_errno || rc) {
        rc = p.read_errno ? -p.read_errno : rc;
        mms_err_set(err, rc, "%s: %s", path, strerror(-rc));
        goto fail;
    }
    fclose(p.f);
    free(p.key_line);
    free(p.own);
    return 0;
fail:
    fclose(p.f);
    free(p.key_line);
    free(p.own);
    mmsd_config_free(c);
    return rc;
}

void mmsd_config_free(struct mmsd_config *c)
{
    for (int i = 0; i < c->npipelines; i++) {
        free(c->pipelines[i].name);
        mms_options_free(&c->pipelines[i].o);
    }
    free(c->pipelines);
    mmsd_options_free(&c->d);
    free(c->path);
    memset(c, 0, sizeof(*c));
}

static int strings_count(const struct mms_pipeline_opts *o, const struct mms_option *opt)
{
    return *(const int *)((const char *)o + opt->count_offset);
}

static const char *strings_at(const struct mms_pipeline_opts *o, const struct mms_option *opt,
                              int i)
{
    return ((char *const *)((const char *)o + opt->offset))[i];
}

int mmsd_pipeline_conf_same(const struct mmsd_pipeline_conf *a, const struct mmsd_pipeline_conf *b)
{
    return !strcmp(a->name, b->name) && mms_options_equal(&a->o, &b->o);
}

int mmsd_pipeline_conf_same_but_runtime(const struct mmsd_pipeline_conf *a,
                                        const struct mmsd_pipeline_conf *b)
{
    if (strcmp(a->name, b->name))
        return 0;
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++)
        if (!opt->runtime && !mms_opt_equal_one(opt, &a->o, &b->o))
            return 0;
    return 1;
}

/* Files are written with '_', the INI habit; the tables use '-' where the
 * command line does. */
static const char *file_key(const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s", name);
    for (char *s = buf; *s; s++)
        if (*s == '-')
            *s = '_';
    return buf;
}

static int is_inherited(const char *name)
{
    for (size_t k = 0; k < NINHERITED; k++)
        if (!strcmp(name, inherited[k]))
            return 1;
    return 0;
}

/* One option: its help as a comment, then its value, or the key commented
 * out when unset so that the file still names it. */
static void print_entry(FILE *f, const char *name, const char *help, const char *def,
                        const char *note, const char *value)
{
    char key[64];
    file_key(name, key, sizeof(key));
    fprintf(f, "\n# %s", help);
    if (def)
        fprintf(f, " [default: %s]", def);
    fprintf(f, "%s\n", note);
    if (value)
        fprintf(f, "%s = %s\n", key, value);
}

static void print_unset(FILE *f, const char *name, const char *arg)
{
    char key[64];
    fprintf(f, "#%s = %s\n", file_key(name, key, sizeof(key)), arg ? arg : "");
}

static void print_mmsd(const struct mmsd_options *d, FILE *f)
{
    char buf[4096];
    fprintf(f, "[mmsd]\n");
    for (const struct mms_option *opt = mmsd_option_table; opt->name; opt++) {
        mmsd_option_format(d, opt, buf, sizeof(buf));
        print_entry(f, opt->name, opt->help, opt->def, opt->runtime ? "" : " (needs a restart)",
                    buf[0] ? buf : NULL);
        if (!buf[0])
            print_unset(f, opt->name, opt->arg);
    }
}

/* A value as a printed config may show it: URLs redacted (core/redact.h),
 * and an input option KEY=VALUE hidden when it names a secret ("passphrase=",
 * "headers=Authorization: ..."). KEY and VALUE are redacted apart, so that
 * the printed config prints the same again. An input option without '='
 * (refused on loading, so only one put together in code) is hidden whole:
 * it may be a secret typed with ':' for '='. */
static const char *shown(const struct mms_option *opt, const char *value, char *buf, size_t len)
{
    const char *eq = strchr(value, '=');
    if (strcmp(opt->name, "input-option")) {
        mms_redact_url(value, buf, len);
        return buf;
    }
    if (!eq) {
        snprintf(buf, len, "***");
        return buf;
    }
    char key[1024];
    snprintf(key, sizeof(key), "%.*s", (int)(eq - value), value);
    mms_redact_url(key, buf, len);
    size_t n = strlen(buf);
    if (mms_redact_secret_key(value, strlen(value)))
        snprintf(buf + n, len - n, "=***");
    else if (n + 2 < len) {
        buf[n++] = '=';
        mms_redact_url(eq + 1, buf + n, len - n);
    }
    return buf;
}

static void print_pipeline(const struct mmsd_pipeline_conf *pc, FILE *f)
{
    char buf[4096], val[4096];
    fprintf(f, "\n[pipeline %s]\n", pc->name);
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++) {
        const char *def = is_inherited(opt->name) ? "the [mmsd] value" : opt->def;
        const char *note = opt->runtime ? " (changeable while running)" : "";
        if (opt->type == MMS_OPT_STRINGS) {
            int n = strings_count(&pc->o, opt);
            print_entry(f, opt->name, opt->help, def, note, NULL);
            for (int i = 0; i < n; i++)
                fprintf(f, "%s = %s\n", file_key(opt->name, buf, sizeof(buf)),
                        shown(opt, strings_at(&pc->o, opt, i), val, sizeof(val)));
            if (!n)
                print_unset(f, opt->name, opt->arg);
            continue;
        }
        mms_option_format(&pc->o, opt, buf, sizeof(buf));
        print_entry(f, opt->name, opt->help, def, note,
                    buf[0] ? shown(opt, buf, val, sizeof(val)) : NULL);
        if (!buf[0])
            print_unset(f, opt->name, opt->arg);
    }
}

int mmsd_config_print(const struct mmsd_config *c, FILE *f)
{
    fprintf(f,
            "# mmsd configuration, as `mmsd --print-config` prints it: every key with\n"
            "# its value; keys commented out are unset. One [mmsd] section and one\n"
            "# [pipeline NAME] section per video source (NAME: up to %d letters, digits,\n"
            "# '-', '_' or '.'). Keys may be written with '_' or '-'. Lines starting\n"
            "# with '#' or ';' are comments, and so is the rest of a line after \" ;\".\n"
            "# A [pipeline] without model or threads takes those of [mmsd].\n\n",
            MMSD_PIPELINE_NAME_MAX);
    print_mmsd(&c->d, f);
    for (int i = 0; i < c->npipelines; i++)
        print_pipeline(&c->pipelines[i], f);
    if (fflush(f) || ferror(f))
        return errno ? -errno : -EIO;
    return 0;
}

static void help_line(FILE *f, const char *name, const char *arg, const char *help, const char *def,
                      const char *note)
{
    char key[64], left[80];
    snprintf(left, sizeof(left), "%s = %s", file_key(name, key, sizeof(key)), arg ? arg : "yes|no");
    fprintf(f, "  %-26s %s", left, help);
    if (def)
        fprintf(f, " [%s]", def);
    fprintf(f, "%s\n", note);
}

void mmsd_config_help(FILE *f)
{
    fprintf(f, "Config file (INI; keys may be written with '_' or '-'):\n\n[mmsd]\n");
    for (const struct mms_option *opt = mmsd_option_table; opt->name; opt++)
        help_line(f, opt->name, opt->arg, opt->help, opt->def,
                  opt->runtime ? "" : " (needs a restart)");
    fprintf(f,
            "\n[pipeline NAME]  one per video source; NAME: up to %d letters, digits, "
            "'-', '_' or '.'\n",
            MMSD_PIPELINE_NAME_MAX);
    for (const struct mms_option *opt = mms_pipeline_options; opt->name; opt++)
        help_line(f, opt->name, opt->arg, opt->help,
                  is_inherited(opt->name) ? "the [mmsd] value" : opt->def,
                  opt->runtime ? " (changeable while running)" : "");
}
