#ifndef MMS_OPTION_H
#define MMS_OPTION_H

/*
 * The engine behind every declarative option table, as FFmpeg's AVOption
 * is behind every AVClass: a table says, per setting, its name, type,
 * where it lives in a struct, default, range and help; these functions
 * take the table and the struct, and parse, check, print, copy, compare
 * and free by it. Each type knows how to copy (deep: strings are
 * duplicated) and compare its values, as mpv's m_option_type does, so
 * nothing is ever printed only to be parsed back. A runtime option may
 * carry an apply hook, as Redis's config table does: a change to a running
 * thing goes through the table, and its owner names no option in code.
 * Pipelines (pipeline/options.h), the daemon's [mmsd] section
 * (daemon/options.h) and the mms commands (cli/args.h) are such tables.
 *
 * Names compare with '-' and '_' as the same character, so the command
 * line's record-dir and a config file's record_dir are one option.
 */

#include <stddef.h>
#include <stdio.h>

#include "core/error.h"

enum mms_opt_type {
    MMS_OPT_STRING,  /* char *, owned, never empty */
    MMS_OPT_STRINGS, /* char *[max_count] and an int counter: each setting appends */
    MMS_OPT_BOOL,    /* int: yes|no, also 1|0, true|false, on|off */
    MMS_OPT_INT,     /* int in min..max */
    MMS_OPT_FLOAT,   /* float in min..max */
    MMS_OPT_ENUM,    /* int: names[i] stands for min + i */
    MMS_OPT_COLOR,   /* uint32_t 0xRRGGBB, printed RRGGBB; read by the entry's parse */
    MMS_OPT_SIZE,    /* int[2], height then width: HxW; 0x0 = unset */
};

struct mms_option {
    const char *name;
    enum mms_opt_type type;
    size_t offset;       /* of the field in the table's struct */
    size_t count_offset; /* STRINGS: of the int that counts the entries */
    int max_count;       /* STRINGS: the array's length */
    const char *def;     /* default, in the option's own syntax; NULL: unset */
    double min, max;     /* INT and FLOAT: the range; ENUM: min is names[0]'s value */
    /* NULL-terminated. ENUM: the values' names; STRING: the only words it
     * takes. Either way a refusal lists them. */
    const char *const *names;
    /* Optional: the option's own syntax where the type's is not enough (a
     * colour's spellings, a socket address). Called with every non-empty
     * value before anything is stored. For STRING and STRINGS it only
     * checks (field is NULL; the engine stores the string); for the others
     * it stores into field in place of the type's parser. 0, or a negative
     * errno with err filled (mms_opt_invalid). */
    int (*parse)(const struct mms_option *opt, const char *value, void *field,
                 struct mms_err *err);
    /* May change without a restart: a pipeline's while it runs (the
     * control API), the daemon's on a SIGHUP reload. */
    int runtime;
    /* Optional, for runtime options: puts obj's value of this option in
     * force in target, the running thing its owner passes to
     * mms_opt_change, mms_opt_update or mms_opt_apply. Called once per
     * change, after obj holds the new value; 0, or a negative errno with
     * err filled, and then obj gets its old value back (so a hook that
     * fails must have changed nothing). */
    int (*apply)(const struct mms_option *opt, const void *obj, void *target,
                 struct mms_err *err);
    const char *arg; /* metavariable for help; NULL for BOOL */
    const char *help;
};

/* '-' and '_' compare equal; otherwise exact. */
int mms_opt_name_eq(const char *a, const char *b);

/* The table ends with an entry whose name is NULL. */
const struct mms_option *mms_opt_find(const struct mms_option *table, const char *name);

/* Parses and validates `value` for option `name` and stores it in obj.
 * -ENOENT for an unknown name, -EINVAL for a bad value, -E2BIG when a
 * repeatable option is full, -ENOMEM; but for -ENOENT the message starts
 * with the option's name as the table spells it (so a command line can put
 * its dashes in front) and names the value. obj is untouched on failure. */
int mms_opt_set(const struct mms_option *table, void *obj, const char *name, const char *value,
                struct mms_err *err);

/* The current value in the option's own syntax ("fill", "00ff66",
 * "0.45"), which mms_opt_set takes back; "" when unset. Repeatable
 * options print comma-separated. Truncated to len. */
void mms_opt_format(const struct mms_option *opt, const void *obj, char *buf, size_t len);

/* Sets every option that has a default. obj must hold no values yet (zeroed
 * or freed); only the table's fields are written, so the struct may carry
 * more. On failure obj is freed. */
int mms_opt_defaults(const struct mms_option *table, void *obj);

/* Frees the strings and leaves them NULL and the counters 0. */
void mms_opt_free(const struct mms_option *table, void *obj);

/* One option's value from src into dst, deep: dst's old strings are freed,
 * src's duplicated, so each may be freed without the other. dst must hold
 * values (set, defaults or zeroed). 0, or -ENOMEM with dst as it was. */
int mms_opt_copy_one(const struct mms_option *opt, void *dst, const void *src);

/* The same across two tables, for one setting that lives in both (the
 * daemon's model handed down to a pipeline): -EINVAL unless both entries
 * have the same type, -E2BIG when dst cannot hold src's repeated values. */
int mms_opt_copy_as(const struct mms_option *dopt, void *dst, const struct mms_option *sopt,
                    const void *src);

/* 1 when the option has the same value in a and b: strings by content,
 * NULL only equal to NULL, repeatable ones entry by entry in order. */
int mms_opt_equal_one(const struct mms_option *opt, const void *a, const void *b);

/* mms_opt_copy_one for every option of the table; the first failure stops
 * it, leaving each option of dst either old or new, never half-copied. */
int mms_opt_copy(const struct mms_option *table, void *dst, const void *src);

/* 1 when every option of the table is equal in a and b. */
int mms_opt_equal(const struct mms_option *table, const void *a, const void *b);

/* Changes runtime option `name` of a running thing: parses value as
 * mms_opt_set does (a repeatable option is replaced by the one value),
 * stores it and calls the entry's apply hook with target, once. Also when
 * obj already held the value: the target may have moved on its own (a
 * window's style key). -EPERM for an option that is not runtime; on any
 * refusal obj is untouched and no hook is called. */
int mms_opt_change(const struct mms_option *table, void *obj, const char *name,
                   const char *value, void *target, struct mms_err *err);

/* Every runtime option whose value in src differs from dst's: copied into
 * dst and applied to target, as one mms_opt_change each. Stops at the first
 * failure. */
int mms_opt_update(const struct mms_option *table, void *dst, const void *src, void *target,
                   struct mms_err *err);

/* Calls every apply hook with obj's values: puts a whole struct in force
 * in a target that has just been made. */
int mms_opt_apply(const struct mms_option *table, const void *obj, void *target,
                  struct mms_err *err);

/* One line per option for --help: prefix, name, arg, help, default, and
 * whether it changes without a restart. */
void mms_opt_help(const struct mms_option *table, FILE *f, const char *prefix);

/* Fills err with `NAME="VALUE": why` and returns -EINVAL: every refused
 * value reads the same, in the engine and in a table's parse hook. */
int mms_opt_invalid(struct mms_err *err, const struct mms_option *opt, const char *value,
                    const char *why);

#endif
