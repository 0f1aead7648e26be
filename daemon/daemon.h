#ifndef MMSD_DAEMON_H
#define MMSD_DAEMON_H

/*
 * mmsd's event loop (libuv): the HTTP API, the pipelines of the config
 * file, signals (SIGTERM/SIGINT stop and finalise every recording, SIGHUP
 * reloads the file), systemd notifications and the watchdog.
 */

#include "daemon/config.h"

/* Runs until stopped by a signal. Takes the loaded config (left empty).
 * Returns the process exit status: 0 after a clean stop, 1 when the
 * daemon could not start (the HTTP address, the token, the model). */
int mmsd_daemon_run(struct mmsd_config *cfg);

/* What a start would refuse after the file loads, without starting: the
 * listen address and the token it needs, the token file, each pipeline's
 * model. Not the port (the running daemon may hold it) nor the sources
 * (a camera may be off now and on at start). */
int mmsd_daemon_check(const struct mmsd_config *cfg, struct mms_err *err);

#endif
