#ifndef MMSD_NOTIFY_H
#define MMSD_NOTIFY_H

/*
 * The systemd notification protocol (Type=notify): READY=1, STATUS=,
 * WATCHDOG=1, STOPPING=1. Without $NOTIFY_SOCKET every call is a no-op, so
 * mmsd runs the same from a shell.
 */

#include <stdint.h>

void mmsd_notify(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The watchdog period systemd asked for in microseconds, 0 when none. */
uint64_t mmsd_notify_watchdog_usec(void);

#endif
