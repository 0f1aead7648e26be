#!/bin/sh
# scripts/man-commands.sh MMS OUT: a help2man --include file with one
# section per `mms COMMAND --help`, so the man page carries every command's
# options as the program prints them (the option tables stay the source).
set -eu
mms=$1 out=$2
cmds=$("$mms" --help 2>&1 | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z]*\) .*/\1/p')
[ -n "$cmds" ] || { echo "man-commands: no commands in $mms --help" >&2; exit 1; }
{
    echo "[COMMANDS IN DETAIL]"
    for c in $cmds; do
        echo ".SS \"mms $c\""
        echo ".nf"
        # roff: a leading . or ' starts a request, \ an escape.
        "$mms" "$c" --help 2>&1 | sed -e 's/\\/\\e/g' -e "s/^\([.']\)/\\\\\&\1/"
        echo ".fi"
    done
} >"$out.tmp"
mv "$out.tmp" "$out"
