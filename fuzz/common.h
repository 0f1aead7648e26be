#ifndef MMS_FUZZ_COMMON_H
#define MMS_FUZZ_COMMON_H

/*
 * What the fuzz targets share. Inputs that an API wants as a path go to
 * one memfd per process, named /proc/self/fd/N: nothing is written to the
 * file system and nothing is left behind.
 */

#include <stddef.h>
#include <stdint.h>

/* The input as a file: its path, valid until the next call. Aborts when
 * the memfd cannot be written (the harness, not the code under test). */
const char *fuzz_file(const uint8_t *data, size_t size);

/* Aborts with the message on stderr: a property of the code under test
 * failed (libFuzzer reports it as a crash and keeps the input). */
void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* fuzz_fail unless an error return came with a message, as every function
 * under test promises. */
void fuzz_check_err(int rc, const char *msg, const char *what);

#endif
